"""The kill switch in the governance view, on a real ``airflow api-server`` (simple auth manager): an ``op``
suspends and resumes the production model of ``waste_tonnage`` from the model page (with the page's CSRF token)
or the JSON API, with a written reason, as the audited actor; the suspension's Asset event lands in Airflow's
metadata database; a short reason, a missing or bad CSRF token, a viewer and a ``user`` not named by the policy
are refused; a ``user`` named in ``approval.kill_switch_roles`` may act.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import charte_server
import httpx
import pytest
from charte_ledger import LedgerRows
from charte_server import ApiServer, api_server, browser_login

PREFIX = "/charte"
USE_CASE = "waste_tonnage"
REASON = "Signalement du service de collecte : prévisions aberrantes depuis lundi."
RESUME_REASON = "Cause identifiée et corrigée : le modèle peut reprendre le service."
SUSPENSION_URI = f"charter://{USE_CASE}/model/suspended"
#: Added to the simple auth manager's users for these tests: an operator and a ``user``-role analyst.
EXTRA_USERS = {"op": ("op", "op-charte-2026"), "analyste": ("user", "analyste-charte-2026")}


@pytest.fixture
def kill_switch_server(
    ui_ledger: tuple[str, LedgerRows],
    charter_home: Path,
    airflow_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ApiServer]:
    """The view's api-server with the users ``op`` and ``analyste`` (role ``user``) besides ``admin`` and ``viewer``,
    on a copy of the policies where ``waste_tonnage`` names the role ``user`` in ``approval.kill_switch_roles``."""
    from charter_guardrails.core.settings import get_settings

    policies = tmp_path / "policies"
    shutil.copytree(get_settings().policies_dir, policies)
    waste = policies / f"{USE_CASE}.yaml"
    text = waste.read_text(encoding="utf-8")
    assert "approval:\n" in text
    waste.write_text(text.replace("approval:\n", "approval:\n  kill_switch_roles: [user]\n", 1), encoding="utf-8")
    for name, credentials in EXTRA_USERS.items():
        monkeypatch.setitem(charte_server.USERS, name, credentials)
    url, _ = ui_ledger
    env = {"CHARTER_HOME": str(charter_home), "CHARTER_LEDGER_URL": url, "CHARTER_POLICIES_DIR": str(policies)}
    with api_server(airflow_db, env, migrate=False) as server:
        yield server


def _bearer(server: ApiServer, user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token(user)}"}


def _csrf(page: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token, "the model page carries a CSRF token for a user who may act"
    return token.group(1)


def _model_row(use_case: str = USE_CASE) -> Any:
    from charter_guardrails.decision.model_registry import production_version
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        row = production_version(session, use_case)
        assert row is not None
        session.expunge(row)
        return row


def _audit(action: str) -> list[tuple[str, str | None, str | None]]:
    """(actor, use case, reason) of the audit events of ``action``."""
    from charter_guardrails.ledger.models import AuditEvent
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq))
        return [(e.actor, e.use_case, (e.payload or {}).get("reason")) for e in events]


def _asset_events(uri: str) -> list[dict[str, Any]]:
    """The Asset events of ``uri`` in Airflow's metadata database (the api-server's, shared with the tests)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent).join(AssetModel, AssetModel.id == AssetEvent.asset_id).where(AssetModel.uri == uri)
        )
        return [dict(row.extra or {}) for row in rows]


def _chain_ok() -> None:
    from charter_guardrails.ledger.audit import verify_chain
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        chain = verify_chain(session)
        assert chain.ok, chain.to_json_dict()


def _refused(client: httpx.Client, model_id: int, viewer: dict[str, str], cookies: dict[str, str]) -> str:
    """A viewer, a cookie request without a valid CSRF token and a short reason are refused; the page's token."""
    form = {"reason": REASON}
    # A viewer reads the model page without a form; the form and the API refuse them.
    page = client.get(f"/modeles/{model_id}", headers=viewer).text
    assert 'id="interrupteur"' in page
    assert 'id="form-suspendre"' not in page
    assert "pas de le suspendre" in page
    assert client.post(f"/modeles/cas/{USE_CASE}/suspendre", data=form, headers=viewer).status_code == 403
    assert client.post(f"/api/models/{USE_CASE}/suspend", json=form, headers=viewer).status_code == 403

    # The UI's cookie needs the page's CSRF token: missing or tampered, refused.
    missing = client.post(f"/modeles/cas/{USE_CASE}/suspendre", data=form, cookies=cookies)
    assert missing.status_code == 403
    assert "CSRF" in missing.text
    page = client.get(f"/modeles/{model_id}", cookies=cookies).text
    assert 'id="form-suspendre"' in page
    csrf = _csrf(page)
    bad = client.post(
        f"/modeles/cas/{USE_CASE}/suspendre", data={**form, "csrf_token": csrf[:-4] + "0000"}, cookies=cookies
    )
    assert bad.status_code == 403
    # No reason, or a short one: the page again with what to write.
    for reason in ("", "   ", "trop bref"):
        refused = client.post(
            f"/modeles/cas/{USE_CASE}/suspendre", data={"reason": reason, "csrf_token": csrf}, cookies=cookies
        )
        assert refused.status_code == 400, reason
        assert "Motif refusé" in refused.text
        assert "10 à 2000 caractères" in refused.text
    assert not _model_row().suspended
    assert _audit("model.suspended") == []
    return csrf


def _suspend_from_the_form(client: httpx.Client, model_id: int, csrf: str, cookies: dict[str, str]) -> None:
    """303 back to the model page, which says so and offers to resume; a second suspension is a 409."""
    form = {"reason": REASON, "csrf_token": csrf}
    done = client.post(f"/modeles/cas/{USE_CASE}/suspendre", data=form, cookies=cookies)
    assert done.status_code == 303, done.text
    assert done.headers["location"] == f"{PREFIX}/modeles/{model_id}?ok=suspendu#interrupteur"
    shown = client.get(f"/modeles/{model_id}?ok=suspendu", cookies=cookies).text
    assert "Modèle suspendu" in shown
    assert SUSPENSION_URI in shown
    assert "oui, par op" in shown
    assert 'id="form-reprendre"' in shown
    assert 'id="form-suspendre"' not in shown
    again = client.post(f"/modeles/cas/{USE_CASE}/suspendre", data=form, cookies=cookies)
    assert again.status_code == 409
    assert "déjà suspendu" in again.text


def _resume_then_suspend_through_the_api(client: httpx.Client, as_op: dict[str, str], viewer: dict[str, str]) -> None:
    """The API with a bearer token (no CSRF token): a reason is required, conflicts are 409."""
    api_again = client.post(f"/api/models/{USE_CASE}/suspend", json={"reason": REASON}, headers=as_op)
    assert api_again.status_code == 409
    assert "déjà suspendu" in api_again.json()["detail"]
    short = client.post(f"/api/models/{USE_CASE}/resume", json={"reason": "ok"}, headers=as_op)
    assert short.status_code == 400
    assert "Motif refusé" in short.json()["detail"]
    assert client.post(f"/api/models/{USE_CASE}/resume", json={}, headers=viewer).status_code == 403
    resumed = client.post(f"/api/models/{USE_CASE}/resume", json={"reason": RESUME_REASON}, headers=as_op)
    assert resumed.status_code == 200, resumed.text
    assert (resumed.json()["suspended"], resumed.json()["asset_event"]) == (False, None)
    assert _audit("model.resumed") == [("op", USE_CASE, RESUME_REASON)]
    assert not _model_row().suspended
    twice = client.post(f"/api/models/{USE_CASE}/resume", json={"reason": RESUME_REASON}, headers=as_op)
    assert twice.status_code == 409

    done = client.post(f"/api/models/{USE_CASE}/suspend", json={"reason": REASON}, headers=as_op)
    assert done.status_code == 200, done.text
    assert done.json()["suspended_by"] == "op"
    assert done.json()["asset_event"] == {"uri": SUSPENSION_URI, "emitted": True}
    none = client.post("/api/models/citizen_requests/suspend", json={"reason": REASON}, headers=as_op)
    assert none.status_code == 409
    assert "pas de modèle en production" in none.json()["detail"]


def test_an_operator_suspends_and_resumes_with_a_reason_and_the_csrf_token(
    kill_switch_server: ApiServer, ui_ledger: tuple[str, LedgerRows]
) -> None:
    _, rows = ui_ledger
    server = kill_switch_server
    viewer, op = _bearer(server, "viewer"), server.token("op")
    events_before = len(_asset_events(SUSPENSION_URI))
    with httpx.Client(base_url=server.base_url + PREFIX, timeout=60) as client:
        cookies = {"_token": op}
        csrf = _refused(client, rows.model_id, viewer, cookies)
        _suspend_from_the_form(client, rows.model_id, csrf, cookies)

        # Recorded as the CLI records it: the version, the approval and the audit event carry the actor.
        row = _model_row()
        assert (row.suspended, row.suspended_by, row.suspend_reason) == (True, "op", REASON)
        assert _audit("model.suspended") == [("op", USE_CASE, REASON)]
        assert _audit("approval.suspend")[-1][0] == "op"
        events = _asset_events(SUSPENSION_URI)
        assert len(events) == events_before + 1
        assert events[-1] == {"use_case": USE_CASE, "version": row.version}

        _resume_then_suspend_through_the_api(client, {"Authorization": f"Bearer {op}"}, viewer)
    assert len(_asset_events(SUSPENSION_URI)) == events_before + 2
    assert [actor for actor, _, _ in _audit("model.suspended")] == ["op", "op"]
    _chain_ok()


def test_a_role_named_in_the_policy_may_use_the_kill_switch_and_no_other(
    kill_switch_server: ApiServer, ui_ledger: tuple[str, LedgerRows]
) -> None:
    """``analyste`` has the role ``user``: it may change DAG runs but not create Asset events, so only a policy
    that names ``user`` in ``approval.kill_switch_roles`` (here ``waste_tonnage``, not ``citizen_requests``)
    lets it act."""
    _, rows = ui_ledger
    server = kill_switch_server
    analyst = _bearer(server, "analyste")
    with httpx.Client(base_url=server.base_url + PREFIX, timeout=60) as client:
        refused = client.post("/api/models/citizen_requests/suspend", json={"reason": REASON}, headers=analyst)
        assert refused.status_code == 403
        assert "approval.kill_switch_roles" in refused.json()["detail"]
        assert 'id="form-suspendre"' in client.get(f"/modeles/{rows.model_id}", headers=analyst).text
        done = client.post(f"/api/models/{USE_CASE}/suspend", json={"reason": REASON}, headers=analyst)
        assert done.status_code == 200, done.text
        assert done.json()["suspended_by"] == "analyste"
    assert _audit("model.suspended") == [("analyste", USE_CASE, REASON)]
    assert _model_row().suspended_by == "analyste"


def test_an_operator_suspends_from_the_page_in_a_browser(
    kill_switch_server: ApiServer, ui_ledger: tuple[str, LedgerRows], browser: Any, artifacts: Path
) -> None:
    _, rows = ui_ledger
    page = browser_login(browser, kill_switch_server.base_url, "op")
    page.goto(f"{kill_switch_server.base_url}{PREFIX}/modeles/{rows.model_id}")
    page.locator("#motif-suspendre").fill(REASON)
    page.locator("#suspendre").click()
    confirmation = page.locator("#confirmation")
    confirmation.wait_for()
    assert "Modèle suspendu" in confirmation.inner_text()
    assert SUSPENSION_URI in confirmation.inner_text()
    assert "oui, par op" in page.locator("body").inner_text()
    assert page.locator("#reprendre").is_visible()
    page.screenshot(path=str(artifacts / "10-interrupteur-suspendu.png"), full_page=True)
    assert _model_row().suspended_by == "op"
    assert _audit("model.suspended") == [("op", USE_CASE, REASON)]


@pytest.fixture
def server_without_asset_events(
    ui_ledger: tuple[str, LedgerRows],
    charter_home: Path,
    airflow_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ApiServer]:
    """The view's api-server on a copy of the Airflow metadata database whose ``asset_event`` table is gone: Airflow
    cannot record the suspension's Asset event."""
    import sqlite3

    home = tmp_path / "airflow-broken-assets"
    home.mkdir()
    # SQLite's backup API: a consistent copy even while another process writes the original (a file copy is not)
    with (
        closing(sqlite3.connect(airflow_db / "airflow.db")) as source,
        closing(sqlite3.connect(home / "airflow.db")) as db,
    ):
        source.backup(db)
        db.execute("DROP TABLE asset_event")
        db.commit()
    monkeypatch.setitem(charte_server.USERS, "op", EXTRA_USERS["op"])
    url, _ = ui_ledger
    with api_server(home, {"CHARTER_HOME": str(charter_home), "CHARTER_LEDGER_URL": url}, migrate=False) as server:
        yield server


def test_a_suspension_stands_when_its_asset_event_cannot_be_recorded(
    server_without_asset_events: ApiServer, ui_ledger: tuple[str, LedgerRows]
) -> None:
    _, rows = ui_ledger
    cookies = {"_token": server_without_asset_events.token("op")}
    with httpx.Client(base_url=server_without_asset_events.base_url + PREFIX, timeout=60) as client:
        csrf = _csrf(client.get(f"/modeles/{rows.model_id}", cookies=cookies).text)
        done = client.post(
            f"/modeles/cas/{USE_CASE}/suspendre", data={"reason": REASON, "csrf_token": csrf}, cookies=cookies
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"].endswith("?ok=suspendu-sans-evenement#interrupteur")
        shown = client.get(server_without_asset_events.base_url + done.headers["location"], cookies=cookies).text
    assert "n'a pas pu être émis" in shown
    assert "oui, par op" in shown
    assert _model_row().suspended_by == "op"
    assert _audit("model.suspended") == [("op", USE_CASE, REASON)]
    log = server_without_asset_events.log_path.read_text(errors="replace")
    assert f"Asset event {SUSPENSION_URI} was not recorded" in log
