"""The view's per-use-case scope (``charter_airflow.ui.scope``), in process on the filled ledger.

The scope's ORM criteria are the real listener on the library's own queries; the auth manager is Airflow's simple
auth manager (the ``view`` fixture), whose users see every DAG. The FAB auth manager's users, one of them limited
to one use case, are in ``test_ui_fab_roles.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from charte_ledger import LedgerRows


def _citizen_only() -> Any:
    from charter_airflow.ui.scope import Scope

    citizen = frozenset({"citizen_requests"})
    return Scope(read=citizen, act=citizen)


def test_the_dag_ids_of_a_use_case_are_those_the_factory_builds() -> None:
    """The scope maps DAG ids to use cases with the suffixes ``dag_factory`` gives: a renamed DAG fails here."""
    from charter_airflow.policy_dags import build_all
    from charter_airflow.ui.scope import dag_ids_of, use_case_of_dag

    built = build_all({})
    for use_case in ("citizen_requests", "waste_tonnage"):
        assert dag_ids_of(use_case) == {dag_id for dag_id in built if dag_id.startswith(f"{use_case}_")}
    for dag_id in built:
        assert use_case_of_dag(dag_id) in ("citizen_requests", "waste_tonnage"), dag_id
    assert use_case_of_dag("incident_alert_relay") is None
    assert use_case_of_dag("_model_refresh") is None


def test_a_limited_scope_leaves_the_other_use_cases_out_of_every_read(ui_ledger: tuple[str, LedgerRows]) -> None:
    from charter_airflow.ui.scope import audit_events_filtered, limited_to
    from charter_guardrails.ledger.models import Approval, Incident, ModelVersion
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting import governance as gov
    from charter_guardrails.reporting.charter_document import build_document
    from charter_guardrails.reporting.report_files import render_json
    from sqlalchemy import select

    _, rows = ui_ledger
    end = datetime.now(UTC) + timedelta(days=1)
    with limited_to(_citizen_only()), ledger_session() as session:
        assert {r["use_case"] for r in gov.recent_runs(session)} == {"citizen_requests"}
        assert gov.run_report(session, rows.published_run_pk) is None
        assert gov.run_report(session, rows.blocked_run_pk) is not None
        assert session.get(ModelVersion, rows.model_id) is None
        assert list(session.scalars(select(Approval))) == []
        assert {i.use_case for i in session.scalars(select(Incident))} == {"citizen_requests"}
        assert {d["use_case"] for d in gov.manifests_by_dataset(session)} == {"citizen_requests"}
        document = render_json(build_document(session, end - timedelta(days=365), end))
        assert "waste_tonnage" not in document
        assert "citizen_requests" in document
        assert "waste_tonnage" in {e["use_case"] for e in gov.audit_events(session)}, "the chain is not filtered"
        with audit_events_filtered():
            assert {e["use_case"] for e in gov.audit_events(session)} <= {"citizen_requests", None}
    with ledger_session() as session:
        assert session.get(ModelVersion, rows.model_id) is not None, "outside the block, every use case"


def test_an_action_under_a_limited_scope_keeps_the_audit_chain_whole(ui_ledger: tuple[str, LedgerRows]) -> None:
    """The audit chain is read whole, even under a scope: the event appended links to the real head, and the
    chain's state a limited reader sees is the chain's."""
    from charter_airflow.ui.queries import chain_status
    from charter_airflow.ui.scope import limited_to
    from charter_guardrails.incidents.incident import IncidentStatus, transition_incident
    from charter_guardrails.ledger.audit import verify_chain
    from charter_guardrails.ledger.store import ledger_session

    _, rows = ui_ledger
    with limited_to(_citizen_only()):
        with ledger_session() as session:
            transition_incident(session, rows.incident_id, IncidentStatus.ACKNOWLEDGED, actor="rssi", comment="Vu.")
        with ledger_session() as session:
            assert chain_status(session)["ok"] is True
    with ledger_session() as session:
        report = verify_chain(session)
        assert report.ok, report.to_json_dict()


def test_the_simple_auth_manager_still_shows_every_use_case(view: Any) -> None:
    """``make run``'s auth manager: a viewer reads every use case, those whose DAGs Airflow has not parsed included
    (the ledger's use cases are asked by their DAG ids); a viewer still acts on none."""
    view.as_role("viewer")
    overview = view.client.get("/api/vue-ensemble")
    assert overview.status_code == 200, overview.text
    assert {o["use_case"] for o in overview.json()} >= {"citizen_requests", "waste_tonnage"}
    assert {r["use_case"] for r in view.client.get("/api/executions").json()} == {"citizen_requests", "waste_tonnage"}
    incident = view.client.get("/api/incidents").json()[0]["id"]
    assert view.client.get(f"/api/incidents/{incident}").status_code == 200
    assert view.client.post(f"/api/incidents/{incident}/acknowledge").status_code == 403


def test_the_fab_roles_of_a_department_name_only_its_use_cases_dags() -> None:
    """FAB's DAG-wide resource is replaced by the per-DAG ones of the department's use cases; the other rights
    stay those of the role."""
    from charter_airflow.fab_roles import GOVERNANCE, ROLES, SECURITY_OFFICER, department_role, role_configs

    configs = {c["role"]: set(c["perms"]) for c in role_configs({"citoyens": ["citizen_requests"]})}
    assert set(configs) == {*ROLES, *(department_role(role, "citoyens") for role in ROLES)}
    limited = configs[department_role(SECURITY_OFFICER, "citoyens")]
    assert ("can_read", "DAGs") not in limited
    assert ("can_edit", "DAGs") not in limited
    assert ("can_edit", "DAG:citizen_requests_model_refresh") in limited
    assert not any("waste_tonnage" in resource for _, resource in limited)
    assert limited - {p for p in limited if p[1].startswith("DAG:")} <= configs[SECURITY_OFFICER]
    assert ("can_edit", "Configurations") in configs[GOVERNANCE]
    assert ("can_edit", "DAGs") not in configs[GOVERNANCE], "governance reads everything but acts on no incident"
