"""The governance view: pages and JSON API on the ledger, mounted at ``/charte`` in the api-server.

Every route depends on :func:`~charter_airflow.ui.security.require_reader` (set on the app, so no
route can be added without it); actions also need :func:`require_operator` and a CSRF token.
The pages only render what :mod:`charter_guardrails.reporting.governance` computes.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Form, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException

from charter_airflow.ui import charts
from charter_airflow.ui.security import (
    CSRF_FIELD,
    OperatorDep,
    ReaderDep,
    actor_name,
    can_act,
    check_csrf,
    issue_csrf_token,
    require_reader,
)

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).with_name("templates")
VERDICT_LABELS = {"pass": "réussi", "warn": "avertissement", "fail": "échec", None: "aucun résultat"}
STATUS_LABELS = {"open": "ouvert", "acknowledged": "pris en compte", "resolved": "résolu"}
DECISION_LABELS = {
    "published": "publié",
    "blocked": "bloqué",
    "overridden": "forcé par un humain",
    "quarantined": "en quarantaine",
    "passed": "validé",
    "rejected": "rejeté",
    "needs_approval": "en attente d'approbation",
    None: "en cours",
}


def _configure_ledger_from_airflow() -> None:
    """In the api-server, the ledger is the Airflow connection ``charter_ledger`` unless CHARTER_LEDGER_URL is set."""
    if os.environ.get("CHARTER_LEDGER_URL"):
        return
    try:
        from airflow.models.connection import Connection

        os.environ["CHARTER_LEDGER_URL"] = Connection.get_connection_from_secrets("charter_ledger").get_uri()
    except Exception:  # noqa: BLE001 - no connection: the embedded SQLite ledger under CHARTER_HOME applies
        pass


def _airflow_pending_approvals(use_cases: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Human-in-the-loop tasks still waiting for an answer, per use case (DAG ids start with the use case id).

    The gate's approval is an Airflow HITL task: while it waits, the ledger only knows a running
    check run, so Airflow's ``hitl_detail`` table is the source of truth for what is pending.
    """
    try:
        from airflow.models.hitl import HITLDetail
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            rows = session.execute(
                select(
                    TaskInstance.dag_id,
                    TaskInstance.run_id,
                    TaskInstance.task_id,
                    HITLDetail.subject,
                    HITLDetail.created_at,
                )
                .join(HITLDetail, HITLDetail.ti_id == TaskInstance.id)
                .where(HITLDetail.responded_at.is_(None))
                .order_by(HITLDetail.created_at.desc())
                .limit(200)
            ).all()
    except Exception as exc:  # noqa: BLE001 - the view must still render without Airflow's HITL table
        log.warning("cannot read pending human-in-the-loop tasks from Airflow: %s", exc)
        return {}
    pending: dict[str, list[dict[str, Any]]] = {}
    for dag_id, run_id, task_id, subject, created_at in rows:
        use_case = next(
            (u for u in sorted(use_cases, key=len, reverse=True) if dag_id == u or dag_id.startswith(f"{u}_")), None
        )
        if use_case:
            pending.setdefault(use_case, []).append(
                {
                    "dag_id": dag_id,
                    "run_id": run_id,
                    "task_id": task_id,
                    "subject": subject,
                    "started_at": created_at.isoformat() if created_at else None,
                    "source": "airflow",
                }
            )
    return pending


def _add_airflow_pending(overviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
    hitl = _airflow_pending_approvals([o["use_case"] for o in overviews])
    for item in overviews:
        item["pending_approvals"] = [*item["pending_approvals"], *hitl.get(item["use_case"], [])]
    return overviews


def _fmt_dt(value: str | datetime | None) -> str:
    if not value:
        return "—"
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return dt.astimezone(UTC).strftime("%d/%m/%Y %H:%M UTC")


def _fmt_num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else ("oui" if value else "non")
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    if isinstance(value, float):
        return f"{value:,.4g}".replace(",", "\u202f").replace(".", ",") if abs(value) < 1e6 else f"{value:.3e}"
    return str(value)


def _pct(value: Any) -> str:
    return "—" if not isinstance(value, int | float) else f"{value * 100:.1f} %".replace(".", ",")


def _environment() -> Environment:
    from charter_guardrails.reporting.governance import mask_personal_values

    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        mask=lambda v: mask_personal_values(str(v)) if v is not None else "",
        dt=_fmt_dt,
        num=_fmt_num,
        pct=_pct,
        verdict_label=lambda v: VERDICT_LABELS.get(v, str(v)),
        status_label=lambda v: STATUS_LABELS.get(v, str(v)),
        decision_label=lambda v: DECISION_LABELS.get(v, str(v)),
        tojson_pretty=lambda v: json.dumps(v, ensure_ascii=False, indent=2),
    )
    env.globals.update(grouped_bars=charts.grouped_bars, stacked_verdicts=charts.stacked_verdicts)
    return env


def _reports_dir() -> Path:
    from charter_guardrails.core.settings import get_settings

    return get_settings().reports_dir


def _report_link(path: str | None) -> str | None:
    """The ``/rapports/...`` address of a report file, if it lies inside the reports folder."""
    if not path:
        return None
    root = _reports_dir()
    target = (root / path).resolve() if not Path(path).is_absolute() else Path(path).resolve()
    return target.relative_to(root).as_posix() if target.is_relative_to(root) else None


def create_app() -> FastAPI:
    from charter_guardrails.core.settings import ConfigError
    from charter_guardrails.incidents.incident import IncidentStatus, transition_incident
    from charter_guardrails.ledger.db import LedgerNotMigrated, LedgerUnavailable
    from charter_guardrails.ledger.models import Incident, ModelVersion
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting import governance as gov
    from sqlalchemy import select

    _configure_ledger_from_airflow()
    env = _environment()
    # No /docs or /openapi.json: every route is a page or an API call that needs a user.
    app = FastAPI(
        title="Charte IA", docs_url=None, redoc_url=None, openapi_url=None, dependencies=[Depends(require_reader)]
    )

    def page(request: Request, template: str, user: Any, status_code: int = 200, **context: Any) -> HTMLResponse:
        base = request.scope.get("root_path", "").rstrip("/")
        context.setdefault("embedded", False)
        html = env.get_template(template).render(
            base=base,
            user=actor_name(user) if user else None,
            can_act=bool(user) and can_act(user),
            csrf_token=issue_csrf_token(user) if user else "",
            csrf_field=CSRF_FIELD,
            report_link=_report_link,
            **context,
        )
        # Our pages run no script; a strict policy keeps it so even if a value escaped the escaping.
        return HTMLResponse(
            html,
            status_code=status_code,
            headers={
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
                "frame-ancestors 'self'; base-uri 'none'",
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "same-origin",
                "Cache-Control": "no-store",
            },
        )

    def wants_html(request: Request) -> bool:
        return not request.url.path.removeprefix(request.scope.get("root_path", "")).startswith(
            "/api/"
        ) and "text/html" in request.headers.get("accept", "")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if wants_html(request) and exc.status_code in (401, 403, 404, 409):
            html = env.get_template("error.html").render(
                base=request.scope.get("root_path", "").rstrip("/"),
                status=exc.status_code,
                detail=exc.detail,
                login="/auth/login" if exc.status_code == 401 else None,
                user=None,
            )
            return HTMLResponse(html, status_code=exc.status_code, headers=getattr(exc, "headers", None))
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(LedgerNotMigrated)
    async def not_migrated(request: Request, exc: LedgerNotMigrated) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.exception_handler(LedgerUnavailable)
    async def unavailable(request: Request, exc: LedgerUnavailable) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    def chain_status(session: Any) -> dict[str, Any]:
        from charter_guardrails.ledger.audit import verify_chain

        try:
            report = verify_chain(session)
        except (ConfigError, OSError, ValueError) as exc:
            return {"ok": None, "events": None, "head_seq": None, "problems": [], "error": f"non vérifiable : {exc}"}
        data = report.to_json_dict()
        data["ok"] = not report.problems
        return data

    # --- pages -------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse, name="overview")
    def overview(request: Request, user: ReaderDep, use_case: str | None = None) -> HTMLResponse:
        now = datetime.now(UTC)
        with ledger_session() as session:
            names = gov.use_cases(session)
            chosen = [use_case] if use_case in names else names
            overviews = [gov.use_case_overview(session, name, now) for name in chosen]
            days = gov.pass_rates(session, start=now - timedelta(days=30), end=now + timedelta(seconds=1))
            runs = gov.recent_runs(session, limit=10)
        _add_airflow_pending(overviews)
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

    @app.get("/executions", response_class=HTMLResponse, name="runs")
    def runs_page(request: Request, user: ReaderDep, use_case: str | None = None) -> HTMLResponse:
        with ledger_session() as session:
            runs = gov.recent_runs(session, use_case=use_case, limit=200)
        return page(request, "runs.html", user, runs=runs, use_case=use_case)

    @app.get("/executions/{run_pk}", response_class=HTMLResponse, name="run")
    def run_page(request: Request, user: ReaderDep, run_pk: int, tache: str | None = None) -> HTMLResponse:
        with ledger_session() as session:
            report = gov.run_report(session, run_pk)
        if report is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"Aucune exécution n°{run_pk} dans le registre.")
        return page(request, "run.html", user, report=report, task_id=tache)

    @app.get("/ti", response_class=HTMLResponse, name="task_instance")
    def task_instance(
        request: Request, user: ReaderDep, dag_id: str, run_id: str, task_id: str | None = None
    ) -> Response:
        """Target of the task-instance tab: the report of the run the task belongs to."""
        with ledger_session() as session:
            run = gov.find_check_run(session, dag_id=dag_id, run_id=run_id)
            report = gov.run_report(session, run.id) if run else None
        # Airflow shows this tab in an iframe sandboxed without allow-same-origin: requests made from
        # inside it carry no session cookie, so the page is rendered without links (embedded=True).
        if report is None:
            return page(request, "no_report.html", user, dag_id=dag_id, run_id=run_id, task_id=task_id, embedded=True)
        return page(request, "run.html", user, report=report, task_id=task_id, embedded=True)

    @app.get("/incidents", response_class=HTMLResponse, name="incidents")
    def incidents_page(request: Request, user: ReaderDep, statut: str | None = None) -> HTMLResponse:
        now = datetime.now(UTC)
        with ledger_session() as session:
            query = select(Incident).order_by(Incident.detected_at.desc())
            if statut:
                query = query.where(Incident.status == statut)
            incidents = [gov.incident_dict(i, now) for i in session.scalars(query.limit(500))]
        return page(request, "incidents.html", user, incidents=incidents, statut=statut)

    @app.get("/incidents/{incident_id}", response_class=HTMLResponse, name="incident")
    def incident_page(request: Request, user: ReaderDep, incident_id: int, ok: str | None = None) -> HTMLResponse:
        with ledger_session() as session:
            row = session.get(Incident, incident_id)
            incident = gov.incident_dict(row) if row else None
            check_run = gov.find_check_run_for(session, row.use_case, row.run_id) if row and row.run_id else None
        if incident is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"Aucun incident n°{incident_id}.")
        return page(request, "incident.html", user, incident=incident, ok=ok, run_pk=check_run)

    def _transition(user: Any, incident_id: int, to: IncidentStatus, comment: str | None) -> dict[str, Any]:
        comment = (comment or "").strip()[:2000] or None
        try:
            with ledger_session() as session:
                row = transition_incident(session, incident_id, to, actor=actor_name(user), comment=comment)
                return gov.incident_dict(row)
        except ConfigError as exc:
            raise HTTPException(
                status.HTTP_409_CONFLICT if "cannot become" in str(exc) else status.HTTP_404_NOT_FOUND, str(exc)
            ) from exc

    @app.post("/incidents/{incident_id}/acquitter", name="acknowledge_form")
    def acknowledge_form(
        request: Request,
        user: OperatorDep,
        incident_id: int,
        comment: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        check_csrf(request, user, csrf_token)
        _transition(user, incident_id, IncidentStatus.ACKNOWLEDGED, comment)
        return RedirectResponse(
            f"{request.scope.get('root_path', '')}/incidents/{incident_id}?ok=acquitte", status_code=303
        )

    @app.post("/incidents/{incident_id}/resoudre", name="resolve_form")
    def resolve_form(
        request: Request,
        user: OperatorDep,
        incident_id: int,
        comment: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        check_csrf(request, user, csrf_token)
        _transition(user, incident_id, IncidentStatus.RESOLVED, comment)
        return RedirectResponse(
            f"{request.scope.get('root_path', '')}/incidents/{incident_id}?ok=resolu", status_code=303
        )

    @app.get("/manifestes", response_class=HTMLResponse, name="manifests")
    def manifests_page(request: Request, user: ReaderDep) -> HTMLResponse:
        with ledger_session() as session:
            datasets = gov.manifests_by_dataset(session)
        return page(request, "manifests.html", user, datasets=datasets)

    @app.get("/audit", response_class=HTMLResponse, name="audit")
    def audit_page(request: Request, user: ReaderDep, avant: int | None = None) -> HTMLResponse:
        with ledger_session() as session:
            chain = chain_status(session)
            events = gov.audit_events(session, limit=100, before=avant)
        return page(request, "audit.html", user, chain=chain, events=events)

    @app.get("/modeles", response_class=HTMLResponse, name="models")
    def models_page(request: Request, user: ReaderDep) -> HTMLResponse:
        with ledger_session() as session:
            models = [
                gov.model_dict(m)
                for m in session.scalars(
                    select(ModelVersion).order_by(ModelVersion.use_case, ModelVersion.version.desc())
                )
            ]
        return page(request, "models.html", user, models=models)

    @app.get("/modeles/{model_id}", response_class=HTMLResponse, name="model")
    def model_page(request: Request, user: ReaderDep, model_id: int) -> HTMLResponse:
        with ledger_session() as session:
            row = session.get(ModelVersion, model_id)
            model = gov.model_dict(row) if row else None
        if model is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"Aucune version de modèle n°{model_id}.")
        card, label = _card_documents(model["card_path"])
        return page(request, "model.html", user, model=model, card=card, label=label)

    @app.get("/modeles/{model_id}/fichiers/{name}", name="model_file")
    def model_file(user: ReaderDep, model_id: int, name: str) -> Response:
        """A file of the model card's folder (card as HTML, AI label badge), nothing else."""
        with ledger_session() as session:
            row = session.get(ModelVersion, model_id)
            folder = _card_dir(row.card_path) if row else None
        target = (folder / name).resolve() if folder else None
        if target is None or folder is None or target.parent != folder or not target.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Fichier introuvable.")
        return FileResponse(target, headers={"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"})

    @app.get("/rapport-charte", response_class=HTMLResponse, name="charter_report")
    def charter_report_page(
        request: Request, user: ReaderDep, debut: str | None = None, fin: str | None = None
    ) -> HTMLResponse:
        report, days = _charter_report(debut, fin)
        return page(
            request,
            "charter_report.html",
            user,
            report=report,
            days=days,
            debut=debut or report["period"]["start"][:10],
            fin=fin or "",
            standalone=False,
        )

    @app.get("/rapport-charte/export.html", name="charter_report_html")
    def charter_report_html(
        request: Request, user: ReaderDep, debut: str | None = None, fin: str | None = None
    ) -> Response:
        report, days = _charter_report(debut, fin)
        html = env.get_template("charter_report_export.html").render(
            report=report, days=days, base="", user=actor_name(user)
        )
        return HTMLResponse(
            html,
            headers={
                "Content-Disposition": f'attachment; filename="{_export_name(report)}.html"',
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            },
        )

    @app.get("/rapport-charte/export.json", name="charter_report_json")
    def charter_report_json(
        request: Request, user: ReaderDep, debut: str | None = None, fin: str | None = None
    ) -> Response:
        report, _ = _charter_report(debut, fin)
        return Response(
            json.dumps(report, ensure_ascii=False, indent=2),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{_export_name(report)}.json"'},
        )

    def _charter_report(debut: str | None, fin: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        try:
            start, end = gov.parse_period(debut, fin)
        except ConfigError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc
        with ledger_session() as session:
            report = gov.charter_report(session, start=start, end=end, chain=chain_status(session))
            days = gov.pass_rates(session, start=start, end=end)
        return report, days

    def _export_name(report: dict[str, Any]) -> str:
        return f"rapport-charte-{report['period']['start'][:10]}-{report['period']['end'][:10]}"

    @app.get("/rapports/{path:path}", name="report_file")
    def report_file(user: ReaderDep, path: str) -> Response:
        """Reports and Data Docs written under CHARTER_REPORTS_DIR, nothing outside it."""
        root = _reports_dir()
        target = (root / path).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            raise HTTPException(status.HTTP_404_NOT_FOUND, "Rapport introuvable.")
        # Data Docs are third-party HTML: sandboxed so that their scripts cannot act with the user's session.
        return FileResponse(target, headers={"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"})

    # --- JSON API (security officers' tools) ------------------------------------------------------------

    @app.get("/api/incidents", name="api_incidents")
    def api_incidents(
        user: ReaderDep, statut: Annotated[str | None, Query(alias="status")] = None, use_case: str | None = None
    ) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        with ledger_session() as session:
            query = select(Incident).order_by(Incident.detected_at.desc())
            if statut:
                query = query.where(Incident.status == statut)
            if use_case:
                query = query.where(Incident.use_case == use_case)
            return [gov.incident_dict(i, now) for i in session.scalars(query.limit(1000))]

    @app.get("/api/incidents/{incident_id}", name="api_incident")
    def api_incident(user: ReaderDep, incident_id: int) -> dict[str, Any]:
        with ledger_session() as session:
            row = session.get(Incident, incident_id)
            if row is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, f"no incident #{incident_id}")
            return gov.incident_dict(row)

    @app.post("/api/incidents/{incident_id}/acknowledge", name="api_acknowledge")
    def api_acknowledge(
        request: Request, user: OperatorDep, incident_id: int, body: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        check_csrf(request, user, None)
        return _transition(user, incident_id, IncidentStatus.ACKNOWLEDGED, str((body or {}).get("comment") or ""))

    @app.post("/api/incidents/{incident_id}/resolve", name="api_resolve")
    def api_resolve(
        request: Request, user: OperatorDep, incident_id: int, body: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        check_csrf(request, user, None)
        return _transition(user, incident_id, IncidentStatus.RESOLVED, str((body or {}).get("comment") or ""))

    @app.get("/api/executions", name="api_runs")
    def api_runs(user: ReaderDep, use_case: str | None = None) -> list[dict[str, Any]]:
        with ledger_session() as session:
            return gov.recent_runs(session, use_case=use_case, limit=500)

    @app.get("/api/executions/{run_pk}", name="api_run")
    def api_run(user: ReaderDep, run_pk: int) -> dict[str, Any]:
        with ledger_session() as session:
            report = gov.run_report(session, run_pk)
        if report is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run #{run_pk}")
        return report

    @app.get("/api/vue-ensemble", name="api_overview")
    def api_overview(user: ReaderDep) -> list[dict[str, Any]]:
        with ledger_session() as session:
            overviews = [gov.use_case_overview(session, name) for name in gov.use_cases(session)]
        return _add_airflow_pending(overviews)

    @app.get("/api/rapport-charte", name="api_charter_report")
    def api_charter_report(user: ReaderDep, debut: str | None = None, fin: str | None = None) -> dict[str, Any]:
        return _charter_report(debut, fin)[0]

    return app


def _card_dir(card_path: str | None) -> Path | None:
    """The folder of a model card, if it lies under CHARTER_HOME (cards live in ``models/<use case>/v<n>``)."""
    from charter_guardrails.core.settings import get_settings

    if not card_path:
        return None
    settings = get_settings()
    path = (Path(card_path) if Path(card_path).is_absolute() else settings.home / card_path).resolve()
    if not (path.is_relative_to(settings.home) or path.is_relative_to(settings.reports_dir)) or not path.is_file():
        return None
    return path.parent


def _card_documents(card_path: str | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The model card and, next to it, the AI label (files whose name contains ``label``), masked."""
    from charter_guardrails.reporting.governance import mask_personal_values, mask_tree

    folder = _card_dir(card_path)
    if card_path is None:
        return None, None
    if folder is None:
        return {"path": card_path, "missing": True, "files": []}, None
    card = Path(card_path).name
    names = sorted(p.name for p in folder.iterdir() if p.is_file())

    def read(p: Path, files: list[str]) -> dict[str, Any]:
        text = p.read_text(encoding="utf-8", errors="replace")[:200_000]
        doc: dict[str, Any] = {"path": p.name, "files": files}
        if p.suffix == ".json":
            try:
                return {**doc, "json": mask_tree(json.loads(text))}
            except ValueError:
                pass
        if p.suffix in (".md", ".txt"):
            doc["text"] = mask_personal_values(text)
        return doc

    label_files = [n for n in names if "label" in n]
    card_files = [n for n in names if n not in label_files and n.rsplit(".", 1)[0] == card.rsplit(".", 1)[0]] or [card]
    label_main = next((n for n in label_files if n.endswith(".json")), label_files[0] if label_files else None)
    return read(folder / card, card_files), (read(folder / label_main, label_files) if label_main else None)
