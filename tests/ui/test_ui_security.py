"""Every route of the Charte IA app needs an authenticated Airflow user; actions need the right to
change DAG runs and, with the session cookie, a CSRF token.

Routes are enumerated from the app object, so a route added later is covered without editing
this file. Identities are real: tokens come from the api-server's ``POST /auth/token``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from charte_ledger import BLOCKED_DAG, BLOCKED_RUN, LedgerRows
from charte_server import ApiServer

PREFIX = "/charte"


def _routes() -> list[tuple[str, str, Any]]:
    from charter_airflow.ui.app import create_app
    from fastapi.routing import APIRoute

    app = create_app()
    routes = [(method, route.path, route) for route in app.routes if isinstance(route, APIRoute) for method in sorted(route.methods)]
    # Any other kind of route (a Mount, static files, /docs) would escape the app-level dependency.
    assert all(isinstance(r, APIRoute) for r in app.routes), [r for r in app.routes if not isinstance(r, APIRoute)]
    return routes


def _fill(path: str, rows: LedgerRows) -> str:
    values = {"run_pk": rows.blocked_run_pk, "incident_id": rows.incident_id, "model_id": rows.model_id,
              "path": "data_docs/citizen_requests/index.html", "name": "ai_label.svg"}
    filled = re.sub(r"\{(\w+)(?::path)?\}", lambda m: str(values[m.group(1)]), path)
    if filled == "/ti":
        filled += "?" + httpx.QueryParams({"dag_id": BLOCKED_DAG, "run_id": BLOCKED_RUN, "task_id": "check_integrity"}).__str__()
    return filled


def _depends_on(dependant: Any, target: Any) -> bool:
    return any(d.call is target or _depends_on(d, target) for d in dependant.dependencies)


@pytest.fixture
def app_routes(charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    monkeypatch.setenv("CHARTER_LEDGER_URL", f"sqlite:///{charter_home / 'ledger.db'}")
    return _routes()


def test_every_route_of_the_app_requires_a_reader_and_refuses_anonymous_requests(app_routes: list[tuple[str, str, Any]]) -> None:
    from charter_airflow.plugin import governance_app
    from charter_airflow.ui.security import require_operator, require_reader
    from fastapi.testclient import TestClient

    assert len(app_routes) >= 20
    client = TestClient(governance_app.get_app())
    for method, path, route in app_routes:
        assert _depends_on(route.dependant, require_reader), f"{method} {path} does not depend on require_reader"
        if method == "POST":
            assert _depends_on(route.dependant, require_operator), f"{method} {path} changes state without require_operator"
        url = re.sub(r"\{(\w+)(?::path)?\}", "1", path)
        response = client.request(method, url)
        assert response.status_code == 401, f"anonymous {method} {path} -> {response.status_code}"


def test_api_server_enforces_authentication_roles_and_csrf(ui_server: ApiServer, ui_ledger: tuple[str, LedgerRows]) -> None:
    _, rows = ui_ledger
    routes = _routes()
    admin, viewer = ui_server.token("admin"), ui_server.token("viewer")
    forged = jwt.encode({"sub": "admin", "role": "ADMIN", "aud": "apache-airflow", "exp": 4102444800}, "not-the-secret-" * 8, algorithm="HS512")
    with httpx.Client(base_url=ui_server.base_url + PREFIX, timeout=30) as client:
        for method, path, _ in routes:
            url = _fill(path, rows)
            anonymous = client.request(method, url)
            assert anonymous.status_code == 401, f"anonymous {method} {url} -> {anonymous.status_code}"
            bad = client.request(method, url, headers={"Authorization": f"Bearer {forged}"})
            assert bad.status_code in (401, 403), f"forged token {method} {url} -> {bad.status_code}"
            as_viewer = client.request(method, url, headers={"Authorization": f"Bearer {viewer}"},
                                       **({"json": {"comment": "lecture seule"}} if method == "POST" and "/api/" in path else {}))
            if method == "POST":
                assert as_viewer.status_code == 403, f"viewer {method} {url} -> {as_viewer.status_code}"
            else:
                assert as_viewer.status_code == 200, f"viewer {method} {url} -> {as_viewer.status_code}: {as_viewer.text[:300]}"

        # The viewer sees the incident but is offered no action.
        page = client.get(f"/incidents/{rows.incident_id}", headers={"Authorization": f"Bearer {viewer}"}).text
        assert "Prendre en compte" not in page and "lecture seule" in page

        # Cookie sessions (the UI) need the page's CSRF token, and a foreign Origin is refused even with it.
        cookies = {"_token": admin}
        no_token = client.post(f"/incidents/{rows.incident_id}/acquitter", data={"comment": "sans jeton"}, cookies=cookies)
        assert no_token.status_code == 403 and "CSRF" in no_token.text
        page = client.get(f"/incidents/{rows.incident_id}", cookies=cookies).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, "the incident page carries a CSRF token for an operator"
        foreign = client.post(f"/incidents/{rows.incident_id}/acquitter", data={"comment": "x", "csrf_token": token.group(1)},
                              cookies=cookies, headers={"Origin": "https://attaquant.example"})
        assert foreign.status_code == 403
        tampered = client.post(f"/incidents/{rows.incident_id}/acquitter", data={"comment": "x", "csrf_token": token.group(1)[:-2] + "00"},
                               cookies=cookies)
        assert tampered.status_code == 403
        incident = client.get(f"/api/incidents/{rows.incident_id}", headers={"Authorization": f"Bearer {admin}"}).json()
        assert incident["status"] == "open", "refused requests changed nothing"

        # The JSON API for security officers' tools: bearer token, no CSRF token needed (no ambient credential).
        feed = client.get("/api/incidents", params={"status": "open"}, headers={"Authorization": f"Bearer {viewer}"}).json()
        assert [i["id"] for i in feed] == [rows.incident_id]
        assert feed[0]["time_left"]["seconds"] > 71 * 3600 and feed[0]["dpo_contact"]
        done = client.post(f"/api/incidents/{rows.incident_id}/resolve", json={"comment": "Fichier restauré depuis la sauvegarde"},
                           headers={"Authorization": f"Bearer {admin}"})
        assert done.status_code == 200 and done.json()["status"] == "resolved" and done.json()["resolved_by"] == "admin"
        again = client.post(f"/api/incidents/{rows.incident_id}/acknowledge", json={}, headers={"Authorization": f"Bearer {admin}"})
        assert again.status_code == 409

    from charter_guardrails.ledger.audit import verify_chain
    from charter_guardrails.ledger.models import AuditEvent
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        events = list(session.scalars(select(AuditEvent).where(AuditEvent.action.like("incident.%")).order_by(AuditEvent.seq)))
        assert [(e.action, e.actor) for e in events] == [("incident.raised", "charter-guardrails"), ("incident.resolved", "admin")]
        assert events[-1].payload["comment"] == "Fichier restauré depuis la sauvegarde"
        assert verify_chain(session).ok
