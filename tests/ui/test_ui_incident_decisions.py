"""The GDPR decisions on the incident page, on a real ``airflow api-server`` (simple auth manager): an operator
records the Art. 33 and Art. 34 decisions through the forms (with the page's CSRF token) or the JSON API, a
viewer is refused, resolving before the Art. 33 decision is a 409 that says what to record, and the register
of breaches downloads as CSV.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import date

import httpx
from charte_ledger import LedgerRows
from charte_server import ApiServer

PREFIX = "/charte"
RATIONALE = (
    "Fichier restauré depuis la sauvegarde vérifiée avant tout entraînement : risque improbable pour les usagers."
)


def _art33_form(token: str | None = None, **changes: str) -> dict[str, str]:
    form = {"decision": "not_required", "rationale": RATIONALE, "authority": "CNIL", **changes}
    return {**form, "csrf_token": token} if token else form


def _detected_on(client: httpx.Client, incident: int, headers: dict[str, str]) -> str:
    """The day (UTC) the incident was detected, as the API gives it: a decision's date may not be earlier, and a
    register of that day holds it, even when the test runs across midnight."""
    return str(client.get(f"/api/incidents/{incident}", headers=headers).json()["detected_at"])[:10]


def test_the_operator_records_both_decisions_before_resolving_and_downloads_the_register(
    ui_server: ApiServer, ui_ledger: tuple[str, LedgerRows]
) -> None:
    _, rows = ui_ledger
    incident = rows.incident_id
    admin, viewer = ui_server.token("admin"), ui_server.token("viewer")
    as_viewer = {"Authorization": f"Bearer {viewer}"}
    with httpx.Client(base_url=ui_server.base_url + PREFIX, timeout=60) as client:
        # The viewer reads the decisions but is offered no form, and both routes refuse it.
        page = client.get(f"/incidents/{incident}", headers=as_viewer).text
        assert 'id="decision-art33"' in page
        assert "aucune décision" in page
        assert 'id="form-art33"' not in page
        assert (
            client.post(f"/incidents/{incident}/decision-art33", data=_art33_form(), headers=as_viewer).status_code
            == 403
        )
        assert client.post(f"/api/incidents/{incident}/art33", json=_art33_form(), headers=as_viewer).status_code == 403

        # The UI's cookie needs the page's CSRF token.
        cookies = {"_token": admin}
        no_token = client.post(f"/incidents/{incident}/decision-art33", data=_art33_form(), cookies=cookies)
        assert no_token.status_code == 403
        assert "CSRF" in no_token.text
        page = client.get(f"/incidents/{incident}", cookies=cookies).text
        assert 'id="form-art33"' in page
        assert 'id="form-art34"' in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, "the incident page carries a CSRF token for an operator"
        csrf = token.group(1)

        # Resolving while the Art. 33 decision is open: 409 with what to record, from the form and the API.
        early = client.post(
            f"/incidents/{incident}/resoudre",
            data={"comment": "trop tôt", "csrf_token": csrf},
            cookies=cookies,
            headers={"Accept": "text/html"},
        )
        assert early.status_code == 409
        assert "Résolution refusée" in early.text
        assert "Décision de notification (art. 33)" in early.text
        api_early = client.post(
            f"/api/incidents/{incident}/resolve", json={}, headers={"Authorization": f"Bearer {admin}"}
        )
        assert api_early.status_code == 409
        assert f"charter incidents notify {incident}" in api_early.json()["detail"]

        # A refused decision shows the page again with what to correct, and records nothing.
        short = client.post(
            f"/incidents/{incident}/decision-art33",
            data=_art33_form(csrf, rationale="Pas de risque."),
            cookies=cookies,
        )
        assert short.status_code == 400
        assert "Décision refusée" in short.text
        assert "at least 50" in short.text
        assert client.get(f"/api/incidents/{incident}", headers=as_viewer).json()["status"] == "open"

        # The forms record both decisions, shown with who and when.
        # (the form's pre-filled authority is not read for a decision that takes none)
        day = _detected_on(client, incident, as_viewer)
        done = client.post(f"/incidents/{incident}/decision-art33", data=_art33_form(csrf), cookies=cookies)
        assert done.status_code == 303
        assert done.headers["location"].endswith(f"/incidents/{incident}?ok=decision-art33")
        art34 = client.post(
            f"/incidents/{incident}/decision-art34",
            data={"decision": "communicated", "communicated_on": day, "channel": "courrier", "csrf_token": csrf},
            cookies=cookies,
        )
        assert art34.status_code == 303
        page = client.get(f"/incidents/{incident}?ok=decision-art34", headers=as_viewer).text
        assert "notification non requise" in page
        assert "communiquée aux personnes concernées" in page
        assert page.count(", par admin le ") == 2
        assert f"Communiquée le {date.fromisoformat(day):%d/%m/%Y} par courrier" in page

        # The JSON API records a decision with a bearer token.
        api = client.post(
            f"/api/incidents/{rows.pii_incident_id}/art34",
            json={"decision": "not_required", "ground": "c"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert api.status_code == 200, api.text
        assert (api.json()["art34"]["decision"], api.json()["art34"]["decided_by"]) == ("not_required", "admin")
        bad = client.post(
            f"/api/incidents/{rows.pii_incident_id}/art33",
            json={"decision": "notified", "authority": "CNIL"},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert bad.status_code == 400
        assert "notified_on" in bad.json()["detail"]

        # Once decided, the incident resolves.
        resolved = client.post(
            f"/incidents/{incident}/resoudre", data={"comment": "restauré", "csrf_token": csrf}, cookies=cookies
        )
        assert resolved.status_code == 303
        after = client.get(f"/api/incidents/{incident}", headers=as_viewer).json()
        assert after["status"] == "resolved"
        assert (after["decisions"]["art33"]["decision"], after["decisions"]["art33"]["open"]) == ("not_required", False)

        # The register of breaches, linked from the incidents list, downloads as CSV for a reader.
        assert "/incidents/registre" in client.get("/incidents", headers=as_viewer).text
        first, last = sorted([day, _detected_on(client, rows.pii_incident_id, as_viewer)])
        download = client.get(
            "/incidents/registre", params={"debut": first, "fin": last, "format": "csv"}, headers=as_viewer
        )
        assert download.status_code == 200, download.text[:300]
        assert download.headers["content-type"].startswith("text/csv")
        assert f'filename="registre-violations-{first}-{last}.csv"' in download.headers["content-disposition"]
        register = {
            int(r["id"]): r for r in csv.DictReader(io.StringIO(download.content.decode("utf-8-sig")), delimiter=";")
        }
        assert sorted(register) == sorted([incident, rows.pii_incident_id])
        row = register[incident]
        assert (row["art33_decision"], row["art33_decided_by"], row["status"]) == ("not_required", "admin", "resolved")
        assert (row["art34_decision"], row["art34_channel"]) == ("communicated", "courrier")
        assert register[rows.pii_incident_id]["art34_ground"] == "c"
        assert client.get("/incidents/registre", params={"format": "xlsx"}, headers=as_viewer).status_code == 400
        anonymous = client.get("/incidents/registre", params={"format": "csv"})
        assert anonymous.status_code == 401

    from charter_guardrails.ledger.audit import verify_chain
    from charter_guardrails.ledger.models import AuditEvent
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        events = [
            (e.action, e.actor, e.subject_id, e.payload["decision"])
            for e in session.scalars(
                select(AuditEvent).where(AuditEvent.action.like("incident.art3%")).order_by(AuditEvent.seq)
            )
        ]
        assert events == [
            ("incident.art33_decision", "admin", str(incident), "not_required"),
            ("incident.art34_decision", "admin", str(incident), "communicated"),
            ("incident.art34_decision", "admin", str(rows.pii_incident_id), "not_required"),
        ]
        assert verify_chain(session).ok
