"""Attestations from the charter report page: the governance role records one and the engagement becomes
``attesté``; a viewer has no form and gets 403; a cookie POST without CSRF token gets 403.

The browser part runs a real ``airflow api-server`` (simple auth manager) and headless Chromium.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from charte_ledger import LedgerRows
from charte_server import ApiServer, browser_login

from tests.clock import in_days, today

PREFIX = "/charte"
STATEMENT = "Sensibilisation aux biais des 14 agents des équipes de conception, le 12 novembre."
DOCUMENT = "CR-CGN-2026-11"
ATTESTED_BY = "Présidence du Comité de la Gouvernance Numérique"


def _form(**changes: str) -> dict[str, str]:
    return {
        "engagement": "equite.3",
        "statement": STATEMENT,
        "document_ref": DOCUMENT,
        "attested_by": ATTESTED_BY,
        "attested_on": today().isoformat(),
        "expires_on": in_days(365).isoformat(),
        **changes,
    }


def _status(client: httpx.Client, token: str, engagement: str) -> str:
    report = client.get("/api/rapport-charte", headers={"Authorization": f"Bearer {token}"}).json()
    return str(next(e["status"] for e in report["engagements"] if e["id"] == engagement))


@pytest.mark.parametrize(("role", "governs"), [("viewer", False), ("user", False), ("op", True), ("admin", True)])
def test_the_governance_role_is_the_right_to_change_the_configuration(
    role: str, governs: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the simple auth manager, ``op`` and ``admin`` govern; ``viewer`` and ``user`` do not."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from charter_airflow.ui import security
    from fastapi import HTTPException

    monkeypatch.setattr(security, "_auth_manager", SimpleAuthManager)
    user = SimpleAuthManagerUser(username=role, role=role)
    assert security.can_govern(user) is governs
    if governs:
        assert security.require_governance(user) is user
    else:
        with pytest.raises(HTTPException) as refused:
            security.require_governance(user)
        assert refused.value.status_code == 403
        assert "gouvernance" in str(refused.value.detail)


def test_an_expired_attestation_is_shown_as_expired_and_counts_as_missing(
    charter_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, with the reader check stubbed: the page a viewer gets after an attestation expired."""
    from types import SimpleNamespace

    from charte_ledger import populate_ledger
    from charter_airflow.ui.app import create_app
    from charter_airflow.ui.scope import EVERYTHING, bind_scope
    from charter_airflow.ui.security import require_reader
    from charter_guardrails.ledger import db
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.attestations import record_attestation
    from fastapi.testclient import TestClient

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    populate_ledger(url, charter_home / "reports")
    with ledger_session() as session:
        record_attestation(
            session,
            engagement_id="maitrise_humaine.5",
            statement="Plan de formation adopté et trois sessions tenues pour les agents.",
            document_ref="PLAN-FORMATION-IA-2025",
            attested_by=ATTESTED_BY,
            attested_on=in_days(-400),
            expires_on=in_days(-35),
        )
    app = create_app()
    app.dependency_overrides[require_reader] = lambda: SimpleNamespace(get_name=lambda: "viewer")
    app.dependency_overrides[bind_scope] = lambda: EVERYTHING  # the stubbed reader sees all
    monkeypatch.setattr("charter_airflow.ui.templating.can_act", lambda user: False)
    monkeypatch.setattr("charter_airflow.ui.templating.issue_csrf_token", lambda user: "token")
    page = TestClient(app).get("/rapport-charte", headers={"Accept": "text/html"})
    assert page.status_code == 200
    row = page.text.split('id="engagement-maitrise_humaine.5"', 1)[1].split("</tr>", 1)[0]
    assert '<span class="badge statut-ecarts">expirée</span>' in row
    assert f"valable jusqu'au {in_days(-35):%d/%m/%Y}" in row
    assert '<span class="badge statut statut-non-evalue">non évalué</span>' in row
    assert "attestation expirée le" in row
    assert "Attester un engagement" not in page.text, "the forms are for the governance role only"


def test_governance_attests_from_the_charter_report(
    ui_server: ApiServer, ui_ledger: tuple[str, LedgerRows], browser: Any, artifacts: Path
) -> None:
    admin, viewer = ui_server.token("admin"), ui_server.token("viewer")
    with httpx.Client(base_url=ui_server.base_url + PREFIX, timeout=30) as client:
        assert _status(client, viewer, "equite.3") == "non évalué"

        # The viewer reads the report but is offered no form, and the route refuses it.
        page = client.get("/rapport-charte", headers={"Authorization": f"Bearer {viewer}"}).text
        assert 'tr class="engagement" id="engagement-equite.3"' in page
        assert "rapport-charte/attestations" not in page
        assert "Attester un engagement" not in page
        as_viewer = client.post(
            "/rapport-charte/attestations", data=_form(), headers={"Authorization": f"Bearer {viewer}"}
        )
        assert as_viewer.status_code == 403

        # The UI's cookie needs the page's CSRF token, even for the governance role.
        cookies = {"_token": admin}
        no_token = client.post("/rapport-charte/attestations", data=_form(), cookies=cookies)
        assert no_token.status_code == 403
        assert "CSRF" in no_token.text
        page = client.get("/rapport-charte", cookies=cookies).text
        assert 'data-engagement="equite.3"' in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, "the report carries a CSRF token for the governance role"

        # A refused attestation says what to correct and records nothing.
        too_short = client.post(
            "/rapport-charte/attestations",
            data={**_form(statement="Fait."), "csrf_token": token.group(1)},
            cookies=cookies,
            headers={"Accept": "text/html"},
        )
        assert too_short.status_code == 400
        assert "Attestation refusée" in too_short.text
        assert "at least 20 characters" in too_short.text
        assert _status(client, admin, "equite.3") == "non évalué", "refused requests changed nothing"

    page = browser_login(browser, ui_server.base_url)

    page.goto(f"{ui_server.base_url}{PREFIX}/rapport-charte")
    row = page.locator("tr[data-engagement='equite.3']")
    assert row.locator(".statut").inner_text() == "non évalué"
    form = page.locator("form[data-engagement='equite.3']")
    form.locator("textarea[name='statement']").fill(STATEMENT)
    form.locator("input[name='document_ref']").fill(DOCUMENT)
    form.locator("input[name='attested_by']").fill(ATTESTED_BY)
    form.locator("input[name='expires_on']").fill(in_days(365).isoformat())
    form.get_by_role("button", name="Enregistrer l'attestation de equite.3").click()
    page.locator("#confirmation").wait_for()
    row = page.locator("tr[data-engagement='equite.3']")
    assert row.locator(".statut").inner_text() == "attesté"
    cell = row.locator("td.attestation").inner_text()
    assert ATTESTED_BY in cell
    assert f"valable jusqu'au {in_days(365):%d/%m/%Y}" in cell
    assert DOCUMENT in cell
    assert page.locator("tr[data-engagement='maitrise_humaine.5'] .statut").inner_text() == "non évalué"
    row.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "07-attestation-equite-3.png"))
    page.close()

    from charter_guardrails.ledger.audit import verify_chain
    from charter_guardrails.ledger.models import AuditEvent
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action == "attestation.recorded")))
        assert [(e.actor, e.payload["engagement"], e.payload["attested_by"]) for e in events] == [
            ("admin", "equite.3", ATTESTED_BY)
        ]
        assert verify_chain(session).ok
