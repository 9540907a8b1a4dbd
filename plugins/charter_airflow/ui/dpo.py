"""The DPO's documents in the governance view: each use case's Art. 30 register entry and draft AIPD.

Every route of this router needs the governance role (:func:`~charter_airflow.ui.security.require_governance`,
set on the router, besides the app's reader check): the documents describe the whole processing, its gaps and
its history, and are the DPO's working papers. The page lists the use cases of the policies folder with links to
each document built now from the policy and the ledger (HTML, JSON, and a PDF that is signed and written where
``charter dpo`` writes, ``<CHARTER_REPORTS_DIR>/dpo``), and the files already written there. A file is served
only when its name is one the writer gives, from that folder (:func:`charter_guardrails.core.stored_paths.confined`).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from charter_guardrails.core.errors import ConfigError, ReportWriteError
from charter_guardrails.core.stored_paths import confined
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse, Response

from charter_airflow.ui.scope import bind_scope
from charter_airflow.ui.security import GovernanceDep, require_governance, require_reader
from charter_airflow.ui.templating import page

router = APIRouter(dependencies=[Depends(require_reader), Depends(bind_scope), Depends(require_governance)])
log = logging.getLogger(__name__)
#: The documents by their name in the addresses: what builds each.
DOCUMENTS = {"registre": "registre des activités de traitement (art. 30)", "aipd": "analyse d'impact (AIPD), projet"}
FORMATS = ("html", "json", "pdf")
EXPORT_NAME = re.compile(r"(registre|aipd)-([a-z][a-z0-9_]{0,62})\.(html|json|pdf)")
FILE_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}


def _use_cases() -> list[dict[str, Any]]:
    """Each policy of the policies folder by id, with its title, or why it cannot be loaded."""
    from charter_guardrails.core.errors import PolicyError
    from charter_guardrails.core.policy import load_policy, policy_files

    items = []
    for path in policy_files():
        try:
            policy = load_policy(path.stem)
        except (PolicyError, ConfigError) as exc:
            log.warning("policy %s not loadable for the DPO page: %s", path.stem, exc)  # names the file: log only
            items.append({"id": path.stem, "title": None, "error": "politique invalide : `charter policy validate`"})
            continue
        items.append({"id": policy.id, "title": policy.title, "error": None})
    return items


@router.get("/dpo", response_class=HTMLResponse, name="dpo")
def dpo_page(request: Request, user: GovernanceDep) -> HTMLResponse:
    from charter_guardrails.reporting.dpo_files import written_files

    return page(
        request, "dpo.html", user, use_cases=_use_cases(), documents=DOCUMENTS, formats=FORMATS, written=written_files()
    )


def _document(document: str, use_case: str) -> dict[str, Any]:
    """The document built now from the policy and the ledger; 404 for an unknown document or use case."""
    from charter_guardrails.core.errors import PolicyError
    from charter_guardrails.core.policy import load_policy
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.dpo_aipd import build_aipd
    from charter_guardrails.reporting.dpo_register import build_register_entry

    try:
        policy = load_policy(use_case)
    except PolicyError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT, "La politique de ce cas d'usage est invalide : lancez `charter policy validate`."
        ) from exc
    except ConfigError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Cas d'usage inconnu dans le dossier des politiques.") from exc
    build = build_register_entry if document == "registre" else build_aipd
    with ledger_session() as session:
        return build(policy, session)


@router.get("/dpo/documents/{name}", name="dpo_export")
def dpo_export(user: GovernanceDep, name: str) -> Response:
    """The document named like its file (``registre-citizen_requests.pdf``): as HTML or JSON built now; as PDF,
    signed and written to the DPO folder first."""
    from charter_guardrails.reporting.dpo_files import default_folder, file_stem, render, write_dpo_document

    match = EXPORT_NAME.fullmatch(name)
    if match is None:
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, "Document inconnu : registre-<cas d'usage>.html|json|pdf ou aipd-<…>."
        )
    document, use_case, fmt = match.groups()
    doc = _document(document, use_case)
    disposition = {"Content-Disposition": f'inline; filename="{file_stem(doc)}.{fmt}"', **FILE_HEADERS}
    if fmt == "html":
        return HTMLResponse(render(doc, "html"), headers=disposition)
    if fmt == "json":
        return Response(render(doc, "json"), media_type="application/json", headers=disposition)
    try:
        path = write_dpo_document(doc, default_folder(), ["pdf"])["pdf"]
    except (ConfigError, ReportWriteError) as exc:
        log.warning("DPO document PDF not signed: %s", exc)  # names the key file or folder: for the log only
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "PDF non signé, donc non servi : la clé de signature ou le dossier des rapports est indisponible ; "
            "l'administrateur trouvera la cause dans le journal de l'api-server. L'export HTML reste disponible.",
        ) from exc
    return FileResponse(path, media_type="application/pdf", headers=disposition)


@router.get("/dpo/fichiers/{file_name}", name="dpo_file")
def dpo_file(user: GovernanceDep, file_name: str) -> Response:
    """A file of the DPO folder whose name is one the documents' writer gives (a document or its signature)."""
    from charter_guardrails.reporting.dpo_files import default_folder, is_dpo_file_name

    folder = default_folder()
    target = confined(folder / file_name, folder) if is_dpo_file_name(file_name) else None
    if target is None or target.parent != folder.resolve() or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Fichier introuvable parmi les documents du DPO.")
    return FileResponse(target, headers=FILE_HEADERS)
