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
    from charter_airflow.ui.scope import EVERYTHING, bind_scope
    from charter_airflow.ui.security import require_governance, require_operator, require_reader
    from charter_guardrails.ledger import db
    from fastapi.testclient import TestClient

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    rows = populate_ledger(url, charter_home / "reports")
    app = create_app()
    reader = SimpleNamespace(get_name=lambda: "viewer")
    app.dependency_overrides[require_reader] = lambda: reader
    app.dependency_overrides[bind_scope] = lambda: EVERYTHING  # the stubbed reader sees all
    app.dependency_overrides[require_operator] = lambda: reader
    app.dependency_overrides[require_governance] = lambda: reader  # the governance pages render too
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


# --- confinement, CSRF, errors: in process, on the test's ledger ----------------------------------------------

#: Every error page carries the same Content-Security-Policy as the other pages.
PAGE_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'self'; base-uri 'none'"
)
HTML = {"Accept": "text/html"}


@pytest.fixture
def view(ui_ledger: tuple[str, Any], charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The view in process on the filled ledger, as a reader who may act; CSRF tokens are real."""
    from charter_airflow.ui.app import create_app
    from charter_airflow.ui.scope import EVERYTHING, bind_scope
    from charter_airflow.ui.security import require_operator, require_reader
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW__API__SECRET_KEY", "charte-ia-tests-secret-key")
    app = create_app()
    reader = SimpleNamespace(get_name=lambda: "admin")
    app.dependency_overrides[require_reader] = lambda: reader
    app.dependency_overrides[bind_scope] = lambda: EVERYTHING  # the stubbed reader sees all
    app.dependency_overrides[require_operator] = lambda: reader
    monkeypatch.setattr("charter_airflow.ui.templating.can_act", lambda user: True)
    return SimpleNamespace(
        app=app, client=TestClient(app, raise_server_exceptions=False), rows=ui_ledger[1], home=charter_home
    )


def _set_card_path(model_id: int, card_path: str) -> None:
    from charter_guardrails.ledger.models import ModelVersion
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        row = session.get(ModelVersion, model_id)
        assert row is not None
        row.card_path = card_path


def test_a_card_path_into_the_keys_folder_never_serves_the_private_key(view: Any) -> None:
    """Whoever can write ``model_versions.card_path`` must not get the signing key through the model's files."""
    keys_dir = view.home / "keys"
    private_key = (keys_dir / "signing_ed25519.pem").read_text(encoding="ascii")
    model = view.rows.model_id
    assert view.client.get(f"/modeles/{model}/fichiers/ai_label.svg").status_code == 200  # the card's own files
    models_link = view.home / "models" / "waste_tonnage" / "v9"
    models_link.symlink_to(keys_dir, target_is_directory=True)  # a folder of the models folder that is the keys
    for card_path in (
        str(keys_dir / "signing_ed25519.pem"),
        "../keys/signing_ed25519.pem",
        "keys/signing_ed25519.pem",
        str(models_link / "signing_ed25519.pem"),
        str(view.home / "audit" / "head.json"),
    ):
        _set_card_path(model, card_path)
        for name in ("signing_ed25519.pem", "pseudonymisation.key", "head.json"):
            response = view.client.get(f"/modeles/{model}/fichiers/{name}")
            assert response.status_code == 404, (card_path, name)
            assert "PRIVATE KEY" not in response.text
        page = view.client.get(f"/modeles/{model}", headers=HTML)
        assert page.status_code == 200
        assert private_key.splitlines()[1] not in page.text
        assert "pseudonymisation.key" not in page.text, "the page must not list the keys folder's files"
        assert "/fichiers/signing_ed25519.pem" not in page.text
        assert str(view.home) not in page.text, "the page must not show a server path"


def test_report_routes_never_serve_the_keys_or_the_audit_anchor(view: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when the reports folder is set to CHARTER_HOME itself, the keys and audit folders stay out of reach."""
    from charter_guardrails.ledger.audit import write_anchor

    write_anchor(view.home / "audit" / "head.json", {"seq": 1, "hash": "ab" * 32})
    (view.home / "rapport.html").write_text("<h1>Rapport</h1>", encoding="utf-8")
    monkeypatch.setenv("CHARTER_REPORTS_DIR", str(view.home))
    assert view.client.get("/rapports/rapport.html").status_code == 200
    for path in ("keys/signing_ed25519.pem", "keys/pseudonymisation.key", "audit/head.json", "keys/../keys/x"):
        response = view.client.get(f"/rapports/{path}")
        assert response.status_code == 404, path
        assert "PRIVATE KEY" not in response.text


def test_csrf_is_checked_whenever_the_identity_comes_from_the_cookie(
    view: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ``Authorization`` header that does not carry the identity must not waive the CSRF and Origin checks."""
    from charter_airflow.ui.security import require_operator, require_reader

    user = SimpleNamespace(get_name=lambda: "admin")

    class _AuthManager:
        async def get_user_from_token(self, token: str) -> Any:
            if token != "cookie-jwt":
                from jwt import InvalidTokenError

                raise InvalidTokenError("unknown token")
            return user

        def is_authorized_dag(self, **_: Any) -> bool:
            return True

        def is_authorized_configuration(self, **_: Any) -> bool:
            return True

    monkeypatch.setattr("airflow.api_fastapi.core_api.security.get_auth_manager", _AuthManager)
    monkeypatch.setattr("charter_airflow.ui.security._auth_manager", _AuthManager)
    view.app.dependency_overrides.pop(require_reader)
    view.app.dependency_overrides.pop(require_operator)
    incident = view.rows.pii_incident_id
    view.client.cookies.set("_token", "cookie-jwt")
    for header in ("Bearer ", "Bearer  ", "bearer \t"):
        refused = view.client.post(
            f"/incidents/{incident}/acquitter",
            data={"comment": "sans jeton"},
            headers={"Authorization": header, "Origin": "https://attaquant.example"},
            follow_redirects=False,
        )
        assert refused.status_code == 403, (header, refused.status_code, refused.text[:300])
    api = view.client.post(f"/api/incidents/{incident}/acknowledge", json={}, headers={"Authorization": "Bearer  "})
    assert api.status_code == 403
    page = view.client.get(f"/incidents/{incident}", headers=HTML).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    done = view.client.post(
        f"/incidents/{incident}/acquitter",
        data={"comment": "avec jeton", "csrf_token": token.group(1)},
        headers={"Authorization": "Bearer  "},
        follow_redirects=False,
    )
    assert done.status_code == 303


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/rapport-charte", {"fin": "9999-12-31"}),
        ("/rapport-charte", {"debut": "2026-13-01"}),
        ("/rapport-charte", {"debut": "2026-06-01", "fin": "2026-01-01"}),
        ("/api/rapport-charte", {"fin": "9999-12-31"}),
        ("/rapport-charte/export.html", {"fin": "9999-12-31"}),
        ("/rapport-charte/export.json", {"debut": "hier"}),
        ("/rapport-charte/export.pdf", {"fin": "9999-12-31"}),
        ("/incidents/registre", {"fin": "9999-12-31"}),
        ("/incidents/registre", {"debut": "31/12/2026"}),
    ],
)
def test_a_bad_date_is_a_422_that_says_what_to_type(view: Any, path: str, query: dict[str, str]) -> None:
    response = view.client.get(path, params=query, headers=HTML)
    assert response.status_code == 422, response.text[:500]
    assert "AAAA-MM-JJ" in response.text
    assert response.headers["content-security-policy"] == PAGE_CSP


def test_every_error_page_has_the_pages_csp_and_names_no_host_user_database_or_path(
    view: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter_airflow.ui.security import require_reader
    from charter_guardrails.core.errors import LedgerNotMigrated, LedgerUnavailable
    from fastapi import HTTPException

    client = view.client
    seen: dict[int, list[Any]] = {}

    def collect(response: Any) -> None:
        seen.setdefault(response.status_code, []).append(response)

    for accept in ("text/html", "application/json"):
        collect(client.get("/executions/999999", headers={"Accept": accept}))
        collect(client.get("/api/executions/999999", headers={"Accept": accept}))
        collect(client.get("/executions/pas-un-nombre", headers={"Accept": accept}))
        collect(
            client.post(
                f"/api/incidents/{view.rows.incident_id}/resolve",
                json={},
                headers={"Accept": accept, "X-CSRF-Token": _csrf(view)},
            )
        )
    secret_url = "postgresql+psycopg://charte_app:***@ledger-db.interne.example:5432/charte_registre"

    def unreachable(*_: Any, **__: Any) -> Any:
        raise LedgerUnavailable(f"cannot reach the ledger at {secret_url}: connection refused")

    def not_migrated(*_: Any, **__: Any) -> Any:
        raise LedgerNotMigrated(f"the ledger at {secret_url} is at revision 0002; run `charter ledger migrate`")

    def broken(*_: Any, **__: Any) -> Any:
        raise RuntimeError(f"boom in {view.home}/ledger.db for charte_app")

    for failure in (unreachable, not_migrated, broken):
        monkeypatch.setattr("charter_airflow.ui.pages.ledger_session", failure)
        for accept in ("text/html", "application/json"):
            collect(client.get("/executions", headers={"Accept": accept}))
    monkeypatch.undo()

    def refuse() -> Any:
        raise HTTPException(403, "Accès refusé : il faut pouvoir lire les exécutions de DAG.")

    view.app.dependency_overrides[require_reader] = refuse
    for accept in ("text/html", "application/json"):
        collect(client.get("/", headers={"Accept": accept}))
    assert {404, 403, 409, 422, 500, 503} <= set(seen), sorted(seen)
    for status, responses in seen.items():
        for response in responses:
            assert response.headers.get("content-security-policy") == PAGE_CSP, (status, response.text[:200])
            for leak in ("ledger-db.interne.example", "charte_app", "charte_registre", "5432", str(view.home)):
                assert leak not in response.text, (status, leak, response.text[:300])
    html_503 = [r for r in seen[503] if r.headers["content-type"].startswith("text/html")]
    assert html_503
    assert all("réessayez" in r.text.lower() or "charter ledger migrate" in r.text for r in html_503)


def _csrf(view: Any) -> str:
    page = view.client.get(f"/incidents/{view.rows.incident_id}", headers=HTML).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    return token.group(1)


def test_no_page_shows_a_server_path(view: Any) -> None:
    """A card that is missing, a report outside the reports folder: the pages say so without the server's paths."""
    from charter_guardrails.ledger.models import CheckResultRecord, CheckRun
    from charter_guardrails.ledger.store import ledger_session

    model = view.rows.model_id
    _set_card_path(model, str(view.home / "models" / "citizen_requests" / "v1" / "model_card.html"))
    with ledger_session() as session:
        run = session.get(CheckRun, view.rows.blocked_run_pk)
        assert run is not None
        run.reports = {**(run.reports or {}), "lot": "/srv/partage/lots/batch_2026_11.csv"}
        result = session.query(CheckResultRecord).filter_by(check_run_id=run.id, check="quality").one()
        result.report_path = "/srv/partage/data_docs/index.html"
    pages = [
        view.client.get(f"/modeles/{model}", headers=HTML),
        view.client.get(f"/executions/{view.rows.blocked_run_pk}", headers=HTML),
    ]
    for page in pages:
        assert page.status_code == 200
        assert str(view.home) not in page.text
        assert "/srv/partage" not in page.text
    assert "model_card.html" in pages[0].text
    assert "introuvable" in pages[0].text
