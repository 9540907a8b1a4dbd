"""The governance view under Airflow's FAB auth manager, with the project's roles (``charter_airflow.fab_roles``).

One ``airflow api-server`` with ``FabAuthManager`` on its own SQLite metadata database, for the whole module: the
roles are created with FAB's security manager, one user per role plus a security officer of the "citoyens"
department, whose roles are limited to the DAGs of ``citizen_requests``. Each user logs in through FAB's login
page in headless Chromium and the test checks what they may and may not do; the JSON API is checked with tokens
from FAB's ``POST /auth/token``. The auth manager is the deployment's, ``charter_airflow.auth.CharterFabAuthManager``:
a HITL form assigned by user name (as the refresh's review assigns it) is answered by its approver, whose FAB id is
numeric, and refused to the approver who triggered the run (four eyes) and to the data engineer.
Run it alone with ``flock /tmp/topology.lock``: it starts an api-server.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from charte_ledger import PUBLISHED_DAG, PUBLISHED_RUN, LedgerRows
from charte_server import ApiServer, api_server, migrate_airflow, server_env
from charter_airflow.fab_roles import APPROVER, DATA_ENGINEER, GOVERNANCE, SECURITY_OFFICER, department_role

PREFIX = "/charte"
FAB = "charter_airflow.auth.CharterFabAuthManager"
HITL_DAG = "charte_fab_hitl"
HITL_RUN = "manual__fab_hitl"
DEPARTMENT = "citoyens"
USERS = {
    "ingenieur": DATA_ENGINEER,
    "rssi": SECURITY_OFFICER,
    "gouvernance": GOVERNANCE,
    "approbateur": APPROVER,
    # another approver, who triggered the run that asks for approval: the form is not assigned to them
    "approbateur_declencheur": APPROVER,
    "rssi_citoyens": department_role(SECURITY_OFFICER, DEPARTMENT),
}
#: A DAG whose task waits for a HITL answer, as the refresh's review does: assigned by user name (id = name).
HITL_DAG_FILE = f"""
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("{HITL_DAG}", schedule=None):
    EmptyOperator(task_id="human_review")
"""
HITL_SETUP = f"""
from pathlib import Path

from airflow._shared.timezones import timezone
from airflow.dag_processing.bundles.manager import DagBundlesManager
from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
from airflow.models.hitl import HITLDetail
from airflow.models.serialized_dag import SerializedDagModel
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState
from airflow.utils.types import DagRunTriggeredByType, DagRunType

def hitl_form(folder):
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    with create_session() as session:
        dag = SerializedDagModel.get_dag("{HITL_DAG}", session=session)
        run = dag.create_dagrun(
            run_id="{HITL_RUN}",
            run_type=DagRunType.MANUAL,
            triggered_by=DagRunTriggeredByType.TEST,
            triggering_user_name="approbateur_declencheur",
            state=DagRunState.RUNNING,
            run_after=timezone.utcnow(),
            session=session,
        )
        session.flush()
        [ti] = run.get_task_instances(session=session)
        session.add(HITLDetail(
            ti_id=ti.id, options=["Approve", "Reject"], subject="Valider ?", params={{}},
            assignees=[{{"id": "approbateur", "name": "approbateur"}}],
        ))
"""
SETUP = """
import sys

def password(name):
    return f"{name}-charte-fab-2026"

from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
from charter_airflow.fab_roles import sync_roles

users = dict(arg.split("=", 1) for arg in sys.argv[3:])
with get_application_builder() as appbuilder:
    sync_roles(appbuilder.sm, {sys.argv[1]: ["citizen_requests"]})
    for name, role in users.items():
        found = appbuilder.sm.find_role(role)
        assert found is not None, role
        appbuilder.sm.add_user(name, name, "Test", f"{name}@example.org", found, password(name))
hitl_form(Path(sys.argv[2]))
"""


def password(name: str) -> str:
    return f"{name}-charte-fab-2026"


def _setup_fab(env: dict[str, str], dags: Path) -> None:
    """Airflow's database (FAB's tables included), the roles and the users, in FAB's own model; a run of a DAG
    whose HITL form waits for ``approbateur``."""
    migrate_airflow(env)
    args = [f"{name}={role}" for name, role in USERS.items()]
    dags.mkdir()
    (dags / "charte_fab_hitl.py").write_text(HITL_DAG_FILE, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-c", HITL_SETUP + SETUP, DEPARTMENT, str(dags), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def _waste_incident(url: str) -> int:
    """An incident of ``waste_tonnage``: the department's officer must not see it."""
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.incidents.incident import BreachType, IncidentDraft, raise_incident
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session(url) as session:
        incident, _ = raise_incident(
            session,
            load_policy("waste_tonnage"),
            IncidentDraft(
                breach_type=BreachType.AVAILABILITY,
                severity="low",
                dataset="tonnage",
                run_id=PUBLISHED_RUN,
                title="Lot de tonnage arrivé en retard",
                nature="Le lot hebdomadaire est arrivé avec deux jours de retard.",
                facts={},
                likely_consequences="Prévision décalée d'une semaine.",
                measures_taken=["Relance du fournisseur"],
            ),
        )
        return int(incident.id)


class Api:
    """The view's JSON API as one user, with a bearer token from FAB's token endpoint."""

    def __init__(self, server: ApiServer, user: str) -> None:
        response = httpx.post(
            f"{server.base_url}/auth/token", json={"username": user, "password": password(user)}, timeout=30
        )
        assert response.status_code == 201, response.text
        self.base = server.base_url
        self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.base}{path}", headers=self.headers, timeout=60)

    def post(self, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        return httpx.post(f"{self.base}{path}", headers=self.headers, json=body or {}, timeout=60)


def fab_login(browser: Any, base_url: str, user: str) -> Any:
    """A Chromium page logged into Airflow through FAB's login form (which sets the UI's JWT cookie)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="fr-FR")
    page.set_default_timeout(30_000)
    page.goto(f"{base_url}/auth/login/")
    page.fill("#username", user)
    page.fill("#password", password(user))
    page.click("input[type=submit]")
    page.wait_for_url(lambda url: "/auth/" not in url)
    return page


def test_each_role_under_the_fab_auth_manager(
    ui_ledger: tuple[str, LedgerRows], charter_home: Path, tmp_path: Path, browser: Any, artifacts: Path
) -> None:
    url, rows = ui_ledger
    waste_incident = _waste_incident(url)
    home = tmp_path / "airflow-fab"
    home.mkdir()
    charter_env = {"CHARTER_HOME": str(charter_home), "CHARTER_LEDGER_URL": url}
    fab_env = {"AIRFLOW__CORE__AUTH_MANAGER": FAB}
    _setup_fab({**server_env(home, charter_env, 0), **fab_env}, tmp_path / "hitl-dags")
    with api_server(home, charter_env, migrate=False, airflow_env=fab_env) as server:
        ids = {"blocked_run": rows.blocked_run_pk, "citizen_incident": rows.incident_id}
        ids |= {"waste_run": rows.published_run_pk, "waste_incident": waste_incident, "waste_model": rows.model_id}
        _data_engineer(server, browser, ids)
        _approver(server, ids)
        _department_officer(server, browser, ids, artifacts)
        _security_officer(server, browser, ids)
        _governance(server, browser, ids, artifacts)


def _reads_both_use_cases(api: Api) -> None:
    overview = api.get(f"{PREFIX}/api/vue-ensemble")
    assert overview.status_code == 200, overview.text
    assert {o["use_case"] for o in overview.json()} == {"citizen_requests", "waste_tonnage"}


def _data_engineer(server: ApiServer, browser: Any, ids: dict[str, int]) -> None:
    """Runs DAGs: reads the whole view, acknowledges no incident, records no attestation."""
    api = Api(server, "ingenieur")
    _reads_both_use_cases(api)
    assert api.post(f"{PREFIX}/api/incidents/{ids['citizen_incident']}/acknowledge").status_code == 403
    assert api.get(f"{PREFIX}/dpo").status_code == 403
    # Airflow itself: may trigger a use case's DAG run (404: the DAG is not parsed here, but authorised).
    trigger = api.post(f"/api/v2/dags/{PUBLISHED_DAG}/dagRuns", {"logical_date": None})
    assert trigger.status_code == 404, trigger.text
    page = fab_login(browser, server.base_url, "ingenieur")
    try:
        page.goto(f"{server.base_url}{PREFIX}/incidents/{ids['citizen_incident']}")
        assert page.locator("h1").count() >= 1
        assert page.locator("form[action$='/acquitter']").count() == 0
        assert "(lecture seule)" in page.content()
    finally:
        page.close()


def _answer(server: ApiServer, api: Api) -> httpx.Response:
    hitl = f"/api/v2/dags/{HITL_DAG}/dagRuns/{HITL_RUN}/taskInstances/human_review/-1/hitlDetails"
    body = {"chosen_options": ["Approve"]}
    return httpx.patch(f"{server.base_url}{hitl}", headers=api.headers, json=body, timeout=60)


def _approver(server: ApiServer, ids: dict[str, int]) -> None:
    """Answers the HITL form assigned to their name (FAB's id is numeric), triggers no DAG, acts on no incident;
    neither the approver who triggered the run nor the data engineer may answer."""
    api = Api(server, "approbateur")
    _reads_both_use_cases(api)
    assert api.post(f"{PREFIX}/api/incidents/{ids['citizen_incident']}/acknowledge").status_code == 403
    assert api.post(f"/api/v2/dags/{PUBLISHED_DAG}/dagRuns", {"logical_date": None}).status_code == 403
    engineer = _answer(server, Api(server, "ingenieur"))
    assert engineer.status_code == 403, engineer.text  # no "HITL Detail" edit permission
    trigger = _answer(server, Api(server, "approbateur_declencheur"))
    assert trigger.status_code == 403, trigger.text  # an approver, but not assigned: they triggered the run
    assert "is not a respondent" in trigger.text
    answered = _answer(server, api)
    assert answered.status_code == 200, answered.text
    responder = answered.json()["responded_by"]
    assert responder["name"] == "approbateur"
    assert responder["id"].isdigit(), responder  # FAB's ab_user.id: the name is what the check compared


def _department_officer(server: ApiServer, browser: Any, ids: dict[str, int], artifacts: Path) -> None:
    """Limited to citizen_requests: the other use case's run, incident and model are 404 and in no list."""
    api = Api(server, "rssi_citoyens")
    overview = api.get(f"{PREFIX}/api/vue-ensemble").json()
    assert [o["use_case"] for o in overview] == ["citizen_requests"]
    assert {r["use_case"] for r in api.get(f"{PREFIX}/api/executions").json()} == {"citizen_requests"}
    assert {i["use_case"] for i in api.get(f"{PREFIX}/api/incidents").json()} == {"citizen_requests"}
    for path in (
        f"/api/executions/{ids['waste_run']}",
        f"/api/incidents/{ids['waste_incident']}",
        f"/executions/{ids['waste_run']}",
        f"/incidents/{ids['waste_incident']}",
        f"/modeles/{ids['waste_model']}",
        f"/modeles/{ids['waste_model']}/fichiers/ai_label.svg",
        f"/ti?dag_id={PUBLISHED_DAG}&run_id={quote(PUBLISHED_RUN)}",
        "/ti?dag_id=waste_tonnage_model_refresh&run_id=manual__1",
    ):
        assert api.get(f"{PREFIX}{path}").status_code == 404, path
    assert api.post(f"{PREFIX}/api/incidents/{ids['waste_incident']}/acknowledge").status_code == 404
    assert api.post(f"{PREFIX}/api/models/waste_tonnage/suspend", {"reason": "x" * 20}).status_code == 404
    report = api.get(f"{PREFIX}/api/rapport-charte")
    assert report.status_code == 200, report.text
    assert "waste_tonnage" not in report.text
    assert "waste_tonnage" not in api.get(f"{PREFIX}/rapport-charte/export.json").text
    assert api.get(f"{PREFIX}/rapport-charte/export.pdf").status_code == 403
    page = fab_login(browser, server.base_url, "rssi_citoyens")
    try:
        for path in ("/", "/executions", "/incidents", "/modeles", "/rapport-charte"):
            page.goto(f"{server.base_url}{PREFIX}{path}")
            assert "waste_tonnage" not in page.content(), path
        response = page.goto(f"{server.base_url}{PREFIX}/modeles/{ids['waste_model']}")
        assert response is not None
        assert response.status == 404
        page.goto(f"{server.base_url}{PREFIX}/incidents/{ids['citizen_incident']}")
        page.fill("form[action$='/acquitter'] textarea[name=comment]", "Pris en charge par le RSSI des citoyens.")
        page.click("form[action$='/acquitter'] button")
        page.wait_for_url(lambda u: "ok=acquitte" in u)
        page.screenshot(path=str(artifacts / "fab-rssi-citoyens-incident.png"), full_page=True)
    finally:
        page.close()
    incident = api.get(f"{PREFIX}/api/incidents/{ids['citizen_incident']}").json()
    assert incident["status"] == "acknowledged"


def _security_officer(server: ApiServer, browser: Any, ids: dict[str, int]) -> None:
    """Acknowledges and resolves incidents of every use case; records no attestation, reads no DPO document."""
    api = Api(server, "rssi")
    _reads_both_use_cases(api)
    acknowledged = api.post(f"{PREFIX}/api/incidents/{ids['waste_incident']}/acknowledge", {"comment": "Vu."})
    assert acknowledged.status_code == 200, acknowledged.text
    assert api.get(f"{PREFIX}/dpo").status_code == 403
    attest = api.post(f"{PREFIX}/rapport-charte/attestations")
    assert attest.status_code == 403, attest.text
    page = fab_login(browser, server.base_url, "rssi")
    try:
        page.goto(f"{server.base_url}{PREFIX}/rapport-charte")
        assert page.locator("form[action$='/rapport-charte/attestations']").count() == 0
        page.goto(f"{server.base_url}{PREFIX}/incidents/{ids['waste_incident']}")
        assert page.locator("form[action$='/resoudre']").count() == 1
    finally:
        page.close()


def _governance(server: ApiServer, browser: Any, ids: dict[str, int], artifacts: Path) -> None:
    """Reads everything (the DPO's documents too) and records attestations; acts on no incident."""
    api = Api(server, "gouvernance")
    _reads_both_use_cases(api)
    assert api.get(f"{PREFIX}/dpo").status_code == 200
    assert api.get(f"{PREFIX}/modeles/{ids['waste_model']}").status_code == 200
    refused = api.post(f"{PREFIX}/api/incidents/{ids['citizen_incident']}/resolve")
    assert refused.status_code == 403, refused.text
    page = fab_login(browser, server.base_url, "gouvernance")
    try:
        page.goto(f"{server.base_url}{PREFIX}/rapport-charte")
        assert "waste_tonnage" in page.content()
        assert "citizen_requests" in page.content()
        form = page.locator("form[data-engagement='equite.3']")
        form.locator("textarea[name='statement']").fill("Revue d'équité du comité du 2 décembre, sans écart relevé.")
        form.locator("input[name='document_ref']").fill("CR-COMITE-2026-12")
        form.locator("input[name='attested_by']").fill("Comité de gouvernance")
        form.locator("input[name='expires_on']").fill(f"{date.today().year + 1}-12-31")
        form.get_by_role("button", name="Enregistrer l'attestation de equite.3").click()
        page.locator("#confirmation").wait_for()
        row = page.locator("tr[data-engagement='equite.3']")
        assert row.locator(".statut").inner_text() == "attesté"
        page.screenshot(path=str(artifacts / "fab-gouvernance-rapport.png"), full_page=True)
    finally:
        page.close()
