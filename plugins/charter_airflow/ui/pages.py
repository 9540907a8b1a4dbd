"""The view's HTML pages (GET): overview, runs, incidents, manifests, audit, models, charter report.

Pages only render what :mod:`charter_guardrails.reporting.governance` computes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from charter_guardrails.ledger.models import Incident, ModelVersion
from charter_guardrails.ledger.store import ledger_session
from charter_guardrails.reporting import governance as gov
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from charter_airflow.ui import files, queries, templating
from charter_airflow.ui.scope import (
    ScopeDep,
    audit_events_filtered,
    bind_scope,
    current_scope,
    unscoped,
    use_case_of_dag,
)
from charter_airflow.ui.security import ReaderDep, can_govern, may_stop_models, require_reader
from charter_airflow.ui.templating import page

router = APIRouter(dependencies=[Depends(require_reader), Depends(bind_scope)])
log = logging.getLogger(__name__)


@router.get("/", response_class=HTMLResponse, name="overview")
def overview(request: Request, user: ReaderDep, scope: ScopeDep, use_case: str | None = None) -> HTMLResponse:
    now = datetime.now(UTC)
    with ledger_session() as session:
        names = scope.visible(gov.use_cases(session))
        chosen = [use_case] if use_case in names else names
        overviews = [gov.use_case_overview(session, name, now) for name in chosen]
        days = gov.pass_rates(session, start=now - timedelta(days=30), end=now + timedelta(seconds=1))
        runs = gov.recent_runs(session, limit=10)
    queries.add_airflow_pending(overviews)
    return page(
        request,
        "overview.html",
        user,
        overviews=overviews,
        use_cases=names,
        chosen=use_case,
        days=days,
        runs=runs,
        principles=gov.principle_labels(),
    )


@router.get("/executions", response_class=HTMLResponse, name="runs")
def runs_page(request: Request, user: ReaderDep, use_case: str | None = None) -> HTMLResponse:
    with ledger_session() as session:
        runs = gov.recent_runs(session, use_case=use_case, limit=200)
    return page(request, "runs.html", user, runs=runs, use_case=use_case)


@router.get("/executions/{run_pk}", response_class=HTMLResponse, name="run")
def run_page(request: Request, user: ReaderDep, run_pk: int, tache: str | None = None) -> HTMLResponse:
    with ledger_session() as session:
        report = gov.run_report(session, run_pk)
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Aucune exécution n°{run_pk} dans le registre.")
    return page(request, "run.html", user, report=report, task_id=tache)


@router.get("/ti", response_class=HTMLResponse, name="task_instance")
def task_instance(
    request: Request, user: ReaderDep, scope: ScopeDep, dag_id: str, run_id: str, task_id: str | None = None
) -> Response:
    """Target of the task-instance tab: the report of the run the task belongs to. A run, or a use case's DAG,
    outside the reader's scope is a 404."""
    with unscoped(), ledger_session() as session:
        found = gov.find_check_run(session, dag_id=dag_id, run_id=run_id)
        use_case = found.use_case if found is not None else use_case_of_dag(dag_id)
    if use_case is not None:
        scope.require_read(use_case, "DAG")
    with ledger_session() as session:
        run = gov.find_check_run(session, dag_id=dag_id, run_id=run_id)
        report = gov.run_report(session, run.id) if run else None
    # Airflow shows this tab in an iframe sandboxed without allow-same-origin: requests made from
    # inside it carry no session cookie, so the page is rendered without links (embedded=True).
    if report is None:
        return page(request, "no_report.html", user, dag_id=dag_id, run_id=run_id, task_id=task_id, embedded=True)
    return page(request, "run.html", user, report=report, task_id=task_id, embedded=True)


@router.get("/incidents", response_class=HTMLResponse, name="incidents")
def incidents_page(request: Request, user: ReaderDep, statut: str | None = None) -> HTMLResponse:
    now = datetime.now(UTC)
    with ledger_session() as session:
        query = select(Incident).order_by(Incident.detected_at.desc())
        if statut:
            query = query.where(Incident.status == statut)
        incidents = [gov.incident_dict(i, now) for i in session.scalars(query.limit(500))]
    return page(request, "incidents.html", user, incidents=incidents, statut=statut)


# Declared before ``/incidents/{incident_id}``, which would otherwise take ``registre`` for an incident number.
@router.get("/incidents/registre", name="incident_register")
def incident_register(
    user: ReaderDep,
    debut: str | None = None,
    fin: str | None = None,
    kind: Annotated[str, Query(alias="format")] = "html",
) -> Response:
    """The register of breaches (GDPR Art. 33(5)) of the period, as an HTML, JSON or CSV download."""
    from charter_guardrails.incidents.register import register_file_name, render_csv, render_html, render_json

    if kind not in ("html", "json", "csv"):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Format inconnu : choisissez html, json ou csv.")
    register = queries.incident_register(debut, fin)
    disposition = {"Content-Disposition": f'attachment; filename="{register_file_name(register)}.{kind}"'}
    if kind == "json":
        return Response(render_json(register), media_type="application/json", headers=disposition)
    if kind == "csv":
        # A byte-order mark, so that spreadsheets read the accents right.
        body = render_csv(register).encode("utf-8-sig")
        return Response(body, media_type="text/csv; charset=utf-8", headers=disposition)
    return HTMLResponse(
        render_html(register),
        headers={**disposition, "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'"},
    )


def render_incident(
    request: Request,
    user: Any,
    incident_id: int,
    *,
    ok: str | None = None,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The incident page; after a refused decision, with the error and the form as it was sent."""
    from charter_guardrails.incidents.decisions import ART33_LABELS, ART34_GROUND_LABELS, ART34_LABELS, decisions_dict

    with ledger_session() as session:
        row = session.get(Incident, incident_id)
        incident = gov.incident_dict(row) if row else None
        decisions = decisions_dict(row) if row else None
        check_run = gov.find_check_run_for(session, row.use_case, row.run_id) if row and row.run_id else None
    if incident is None or decisions is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Aucun incident n°{incident_id}.")
    return page(
        request,
        "incident.html",
        user,
        can_act=bool(user) and templating.can_act(user) and current_scope().may_act(incident["use_case"]),
        status_code=status_code,
        incident=incident,
        decisions=decisions,
        art33_labels=ART33_LABELS,
        art34_labels=ART34_LABELS,
        ground_labels=ART34_GROUND_LABELS,
        today=datetime.now(UTC).date().isoformat(),
        ok=ok,
        run_pk=check_run,
        form=form or {},
        error=error,
    )


@router.get("/incidents/{incident_id}", response_class=HTMLResponse, name="incident")
def incident_page(request: Request, user: ReaderDep, incident_id: int, ok: str | None = None) -> HTMLResponse:
    return render_incident(request, user, incident_id, ok=ok)


@router.get("/manifestes", response_class=HTMLResponse, name="manifests")
def manifests_page(request: Request, user: ReaderDep) -> HTMLResponse:
    with ledger_session() as session:
        datasets = gov.manifests_by_dataset(session)
    return page(request, "manifests.html", user, datasets=datasets)


@router.get("/audit", response_class=HTMLResponse, name="audit")
def audit_page(request: Request, user: ReaderDep, avant: int | None = None) -> HTMLResponse:
    with ledger_session() as session:
        chain = queries.chain_status(session)
        with audit_events_filtered():
            events = gov.audit_events(session, limit=100, before=avant)
    return page(request, "audit.html", user, chain=chain, events=events)


@router.get("/modeles", response_class=HTMLResponse, name="models")
def models_page(request: Request, user: ReaderDep) -> HTMLResponse:
    query = select(ModelVersion).order_by(ModelVersion.use_case, ModelVersion.version.desc())
    with ledger_session() as session:
        models = [gov.model_dict(m) for m in session.scalars(query)]
    return page(request, "models.html", user, models=models)


def may_stop(user: Any, use_case: str) -> bool:
    """Whether to show the kill-switch forms: the rights the kill-switch routes ask for, in their order (the routes
    check again), the use case's included. Fails closed: without an auth manager to ask (the app outside the
    api-server), no form."""
    if not (bool(user) and templating.can_act(user) and current_scope().may_act(use_case)):
        return False
    try:
        return may_stop_models(user, queries.kill_switch_roles(use_case))
    except RuntimeError as exc:  # Airflow's "Auth Manager has not been initialized yet"
        log.warning("kill-switch forms hidden: the auth manager cannot answer (%s)", exc)
        return False


def render_model(
    request: Request,
    user: Any,
    model_id: int,
    *,
    ok: str | None = None,
    error: str | None = None,
    reason: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    """A model version's page; the production version's carries the kill switch (after a refused suspension or
    resumption, with the error and the reason as it was sent)."""
    from charter_airflow.dag_factory import model_suspended_asset_uri

    with ledger_session() as session:
        row = session.get(ModelVersion, model_id)
        model = gov.model_dict(row) if row else None
    if model is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Aucune version de modèle n°{model_id}.")
    card, label = files.card_documents(model["card_path"])
    production = model["status"] == "production"
    return page(
        request,
        "model.html",
        user,
        status_code=status_code,
        model=model,
        card=card,
        label=label,
        kill_switch=production and may_stop(user, model["use_case"]),
        suspension_asset=model_suspended_asset_uri(model["use_case"]),
        artifact_deletion=queries.artifact_deletion(model["use_case"], model["version"]),
        ok=ok,
        error=error,
        reason=reason,
    )


@router.get("/modeles/{model_id}", response_class=HTMLResponse, name="model")
def model_page(request: Request, user: ReaderDep, model_id: int, ok: str | None = None) -> HTMLResponse:
    return render_model(request, user, model_id, ok=ok)


def may_attest(user: Any) -> bool:
    """Whether to show the attestation forms: both rights the attestation route asks for, in its order."""
    return bool(user) and templating.can_act(user) and can_govern(user)


def render_charter_report(
    request: Request,
    user: Any,
    debut: str | None,
    fin: str | None,
    *,
    ok: str | None = None,
    form: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The charter report page; after a refused attestation, with the error and the form as it was sent."""
    report, days = queries.charter_report(debut, fin)
    return page(
        request,
        "charter_report.html",
        user,
        status_code=status_code,
        report=report,
        days=days,
        debut=debut or report["period"]["start"][:10],
        fin=fin or "",
        standalone=False,
        may_attest=may_attest(user),
        today=datetime.now(UTC).date().isoformat(),
        ok=ok,
        form=form or {},
        error=error,
    )


@router.get("/rapport-charte", response_class=HTMLResponse, name="charter_report")
def charter_report_page(
    request: Request, user: ReaderDep, debut: str | None = None, fin: str | None = None, ok: str | None = None
) -> HTMLResponse:
    return render_charter_report(request, user, debut, fin, ok=ok)
