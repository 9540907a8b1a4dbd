"""JSON API (security officers' tools) and downloads: the charter report as HTML, JSON and PDF (one document,
one template: :mod:`charter_guardrails.reporting.charter_document`), the signed PDF and its signature,
report and model-card files."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from charter_guardrails.core.errors import ConfigError, ReportWriteError
from charter_guardrails.core.stored_paths import confined
from charter_guardrails.ledger.models import Incident, ModelVersion
from charter_guardrails.ledger.store import ledger_session
from charter_guardrails.reporting import governance as gov
from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import select

from charter_airflow.ui import files, queries
from charter_airflow.ui.errors import period
from charter_airflow.ui.scope import ScopeDep, bind_scope
from charter_airflow.ui.security import ReaderDep, require_reader
from charter_airflow.ui.templating import base_path

router = APIRouter(dependencies=[Depends(require_reader), Depends(bind_scope)])
log = logging.getLogger(__name__)
RESTRICTED_PDF = (
    "Le PDF signé de la charte couvre tous les cas d'usage : il est réservé au rôle de gouvernance. "
    "Vos cas d'usage sont dans l'export HTML ou JSON."
)
#: Files we did not write ourselves (Data Docs) are third-party HTML: sandboxed so that their scripts
#: cannot act with the user's session.
FILE_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}


@router.get("/modeles/{model_id}/fichiers/{name}", name="model_file")
def model_file(user: ReaderDep, model_id: int, name: str) -> Response:
    """A file of the model card's folder (card as HTML, AI label badge) inside the models folder, nothing else:
    a ``card_path`` elsewhere (the keys, the audit anchor) serves nothing, whatever the ledger says."""
    with ledger_session() as session:
        row = session.get(ModelVersion, model_id)
        card_path = row.card_path if row else None
    target = files.model_file(card_path, name)
    if target is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Fichier introuvable parmi les fichiers de la fiche modèle.")
    return FileResponse(target, headers=FILE_HEADERS)


def _charter_document(debut: str | None, fin: str | None) -> dict[str, Any]:
    """The committee's charter document of the period: one document for the HTML, JSON and PDF exports."""
    from charter_guardrails.reporting.charter_document import build_document

    start, end = period(debut, fin)
    with ledger_session() as session:
        return build_document(session, start, end)


def _attachment(doc: dict[str, Any], extension: str) -> str:
    from charter_guardrails.reporting.report_files import export_name

    return f'attachment; filename="{export_name(doc)}.{extension}"'


@router.get("/rapport-charte/export.html", name="charter_report_html")
def charter_report_html(user: ReaderDep, debut: str | None = None, fin: str | None = None) -> Response:
    from charter_guardrails.reporting.charter_document_html import render_html

    doc = _charter_document(debut, fin)
    return HTMLResponse(
        render_html(doc),
        headers={
            "Content-Disposition": _attachment(doc, "html"),
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


@router.get("/rapport-charte/export.json", name="charter_report_json")
def charter_report_json(user: ReaderDep, debut: str | None = None, fin: str | None = None) -> Response:
    from charter_guardrails.reporting.report_files import render_json

    doc = _charter_document(debut, fin)
    return Response(
        render_json(doc),
        media_type="application/json",
        headers={"Content-Disposition": _attachment(doc, "json")},
    )


@router.get("/rapport-charte/export.pdf", name="charter_report_pdf")
def charter_report_pdf(
    user: ReaderDep, scope: ScopeDep, request: Request, debut: str | None = None, fin: str | None = None
) -> Response:
    """The same document as the HTML export, laid out by WeasyPrint on A4 landscape pages and signed.

    The PDF and its ``.sig.json`` are written where ``charter report charter`` writes by default
    (``<CHARTER_REPORTS_DIR>/charte``), with the ledger's signing key; the response is the PDF that was
    signed, and its ``Link`` header (``rel="signature"``) gives the address of the signature file.
    """
    from charter_guardrails.reporting.report_files import default_folder, write_signed_pdf
    from charter_guardrails.reporting.report_signing import signature_path

    if scope.restricted:
        raise HTTPException(status.HTTP_403_FORBIDDEN, RESTRICTED_PDF)
    doc = _charter_document(debut, fin)
    try:
        path, pdf = write_signed_pdf(doc, default_folder())
    except (ConfigError, ReportWriteError) as exc:
        log.warning("charter report PDF not signed: %s", exc)  # names the key file or folder: for the log only
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, _unsigned_pdf_message(exc)) from exc
    signature = f"{base_path(request)}/rapport-charte/fichiers/{signature_path(path).name}"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": _attachment(doc, "pdf"),
            "X-Content-Type-Options": "nosniff",
            "Link": f'<{signature}>; rel="signature"',
        },
    )


def _unsigned_pdf_message(exc: Exception) -> str:
    """Why no PDF was served, and who does what, without the server's paths (the log has them)."""
    from charter_guardrails.core.errors import KeyError_

    if isinstance(exc, KeyError_):
        cause = (
            "la clé de signature est absente ou illisible ; l'administrateur doit la fournir "
            "(CHARTER_SIGNING_KEY, la Variable charter_signing_key_secret ou `charter keys init`)"
        )
    elif isinstance(exc, ReportWriteError):
        cause = (
            "le dossier des rapports n'accepte pas le fichier (plein ou en lecture seule) ; "
            "l'administrateur doit le libérer"
        )
    else:
        cause = (
            "le document n'a pas pu être mis en page ; "
            "l'administrateur trouvera la cause dans le journal de l'api-server"
        )
    return f"PDF non signé, donc non servi : {cause}. L'export HTML reste disponible."


@router.get("/rapport-charte/fichiers/{file_name}", name="charter_report_file")
def charter_report_file(user: ReaderDep, scope: ScopeDep, file_name: str) -> Response:
    """A file of the charter report's folder whose name is one the report's writer gives (a document or its
    signature), nothing else; none for a reader restricted to some use cases (the signed documents cover all)."""
    from charter_guardrails.reporting.report_files import default_folder, is_report_file_name

    folder = default_folder()
    served = is_report_file_name(file_name) and not scope.restricted
    target = confined(folder / file_name, folder) if served else None
    if target is None or target.parent != folder.resolve() or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Fichier introuvable parmi les rapports de la charte.")
    return FileResponse(target, headers=FILE_HEADERS)


@router.get("/rapports/{path:path}", name="report_file")
def report_file(user: ReaderDep, scope: ScopeDep, path: str) -> Response:
    """Reports and Data Docs written under CHARTER_REPORTS_DIR, nothing outside it, nothing in the keys or audit
    folders even when the reports folder contains them. A reader restricted to some use cases gets the files of
    their use cases' folders (``<use_case>/<run>/…``, as the checks write them), nothing else."""
    first = path.strip("/").split("/", 1)[0]
    target = files.report_file(path) if not scope.restricted or scope.may_read(first) else None
    if target is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Rapport introuvable dans le dossier des rapports.")
    return FileResponse(target, headers=FILE_HEADERS)


@router.get("/api/incidents", name="api_incidents")
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


@router.get("/api/incidents/{incident_id}", name="api_incident")
def api_incident(user: ReaderDep, incident_id: int) -> dict[str, Any]:
    """Every Art. 33(3) field of an incident, and its GDPR Art. 33 and Art. 34 decisions."""
    from charter_guardrails.incidents.decisions import decisions_dict

    with ledger_session() as session:
        row = session.get(Incident, incident_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no incident #{incident_id}")
        return {**gov.incident_dict(row), "decisions": decisions_dict(row)}


@router.get("/api/executions", name="api_runs")
def api_runs(user: ReaderDep, use_case: str | None = None) -> list[dict[str, Any]]:
    with ledger_session() as session:
        return gov.recent_runs(session, use_case=use_case, limit=500)


@router.get("/api/executions/{run_pk}", name="api_run")
def api_run(user: ReaderDep, run_pk: int) -> dict[str, Any]:
    with ledger_session() as session:
        report = gov.run_report(session, run_pk)
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no run #{run_pk}")
    return report


@router.get("/api/vue-ensemble", name="api_overview")
def api_overview(user: ReaderDep, scope: ScopeDep) -> list[dict[str, Any]]:
    with ledger_session() as session:
        overviews = [gov.use_case_overview(session, name) for name in scope.visible(gov.use_cases(session))]
    return queries.add_airflow_pending(overviews)


@router.get("/api/rapport-charte", name="api_charter_report")
def api_charter_report(user: ReaderDep, debut: str | None = None, fin: str | None = None) -> dict[str, Any]:
    return queries.charter_report(debut, fin)[0]
