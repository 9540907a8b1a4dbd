"""Every route of the Charte IA app depends on the reader check and refuses an anonymous request.

Routes are enumerated from the app object, so a route added later is covered without editing this
file. The same enumeration is replayed against a real api-server in ``test_ui_browser.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from charte_server import app_routes


def _depends_on(dependant: Any, target: Any) -> bool:
    return any(d.call is target or _depends_on(d, target) for d in dependant.dependencies)


@pytest.fixture
def routes(charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    monkeypatch.setenv("CHARTER_LEDGER_URL", f"sqlite:///{charter_home / 'ledger.db'}")
    return app_routes()


def test_every_route_of_the_app_requires_a_reader_and_refuses_anonymous_requests(
    routes: list[tuple[str, str, Any]],
) -> None:
    from charter_airflow.plugin import governance_app
    from charter_airflow.ui.security import require_operator, require_reader
    from fastapi.testclient import TestClient

    assert len(routes) >= 20
    client = TestClient(governance_app.get_app())
    for method, path, route in routes:
        assert _depends_on(route.dependant, require_reader), f"{method} {path} does not depend on require_reader"
        if method == "POST":
            assert _depends_on(route.dependant, require_operator), (
                f"{method} {path} changes state without require_operator"
            )
        url = re.sub(r"\{(\w+)(?::path)?\}", "1", path)
        response = client.request(method, url)
        assert response.status_code == 401, f"anonymous {method} {path} -> {response.status_code}"


def test_airflow_loads_the_plugin_from_the_plugins_folder_without_heavy_imports() -> None:
    """Every Airflow process loads plugins: ours must not drag pandas, GX, Presidio or FastAPI in."""
    import json
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    probe = (
        "import json, sys\n"
        "from airflow import plugins_manager\n"
        "plugins, errors = plugins_manager._get_plugins()\n"
        "ours = [p for p in plugins if p.name == 'charter_governance']\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules}"
        " & {'pandas', 'great_expectations', 'presidio_analyzer', 'fastapi'})\n"
        "views = [(v['name'], v['destination']) for p in ours for v in p.external_views]\n"
        "print(json.dumps({'ours': len(ours), 'errors': errors, 'heavy': heavy, 'views': views,\n"
        "                  'prefixes': [a['url_prefix'] for p in ours for a in p.fastapi_apps]}))\n"
    )
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins")}
    proc = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["ours"] == 1
    assert found["prefixes"] == ["/charte"]
    assert [e for e in found["errors"] if "charter_airflow/ui" in e or "plugin.py" in e] == []
    assert found["heavy"] == [], f"plugin loading imported {found['heavy']}"
    assert found["views"] == [["Charte IA", "nav"], ["Rapport charte", "task_instance"]]


def test_every_get_route_renders_for_a_reader_with_strict_templates(
    charter_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process, with the reader check stubbed: every page renders (templates are strict: a missing
    variable is an error, not a blank) and speaks the shared vocabulary."""
    from charte_ledger import populate_ledger
    from charte_server import fill_path
    from charter_airflow.ui.app import create_app
    from charter_airflow.ui.security import require_operator, require_reader
    from charter_guardrails.ledger import db
    from fastapi.testclient import TestClient

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    rows = populate_ledger(url, charter_home / "reports")
    app = create_app()
    reader = SimpleNamespace(get_name=lambda: "viewer")
    app.dependency_overrides[require_reader] = lambda: reader
    app.dependency_overrides[require_operator] = lambda: reader
    monkeypatch.setattr("charter_airflow.ui.templating.can_act", lambda user: False)
    monkeypatch.setattr("charter_airflow.ui.templating.issue_csrf_token", lambda user: "token")
    values = {
        "run_pk": rows.blocked_run_pk,
        "incident_id": rows.incident_id,
        "model_id": rows.model_id,
        "path": "data_docs/citizen_requests/index.html",
        "name": "ai_label.svg",
        "file_name": "rapport-charte-2026-01-01-2026-06-30.pdf",  # not written here: 404 is expected
    }
    query = {"/ti": {"dag_id": "x", "run_id": "y"}}
    client = TestClient(app)
    pages = {}
    for method, path, _ in app_routes():
        if method != "GET":
            continue
        response = client.get(fill_path(path, values, query), headers={"Accept": "text/html"})
        assert response.status_code in (200, 404), f"GET {path} -> {response.status_code}: {response.text[:500]}"
        pages[path] = response.text
    assert "bloqué" in pages["/"]
    assert "réussi" not in pages["/"]
    missing = client.get("/executions/999999", headers={"Accept": "text/html"})
    assert missing.status_code == 404
    assert "Introuvable" in missing.text
