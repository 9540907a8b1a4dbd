"""What changes state (POST): acknowledging and resolving an incident, from the page's forms or the JSON API.

Every action needs :func:`~charter_airflow.ui.security.require_operator` and passes
:func:`~charter_airflow.ui.security.check_csrf`: forms carry the synchronizer token; API calls,
authenticated by an ``Authorization`` header that no browser adds by itself, need none.
"""

from __future__ import annotations

from typing import Annotated, Any

from charter_guardrails.incidents.incident import IncidentStatus
from fastapi import APIRouter, Body, Depends, Form, Request
from fastapi.responses import RedirectResponse

from charter_airflow.ui.queries import transition
from charter_airflow.ui.security import OperatorDep, check_csrf, require_reader

router = APIRouter(dependencies=[Depends(require_reader)])


def _back_to_incident(request: Request, incident_id: int, ok: str) -> RedirectResponse:
    # 303: the browser follows with a GET, so reloading the page does not post the form again.
    return RedirectResponse(f"{request.scope.get('root_path', '')}/incidents/{incident_id}?ok={ok}", status_code=303)


@router.post("/incidents/{incident_id}/acquitter", name="acknowledge_form")
def acknowledge_form(
    request: Request,
    user: OperatorDep,
    incident_id: int,
    comment: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> RedirectResponse:
    check_csrf(request, user, csrf_token)
    transition(user, incident_id, IncidentStatus.ACKNOWLEDGED, comment)
    return _back_to_incident(request, incident_id, "acquitte")


@router.post("/incidents/{incident_id}/resoudre", name="resolve_form")
def resolve_form(
    request: Request,
    user: OperatorDep,
    incident_id: int,
    comment: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> RedirectResponse:
    check_csrf(request, user, csrf_token)
    transition(user, incident_id, IncidentStatus.RESOLVED, comment)
    return _back_to_incident(request, incident_id, "resolu")


@router.post("/api/incidents/{incident_id}/acknowledge", name="api_acknowledge")
def api_acknowledge(
    request: Request, user: OperatorDep, incident_id: int, body: Annotated[dict[str, Any] | None, Body()] = None
) -> dict[str, Any]:
    check_csrf(request, user, None)
    return transition(user, incident_id, IncidentStatus.ACKNOWLEDGED, str((body or {}).get("comment") or ""))


@router.post("/api/incidents/{incident_id}/resolve", name="api_resolve")
def api_resolve(
    request: Request, user: OperatorDep, incident_id: int, body: Annotated[dict[str, Any] | None, Body()] = None
) -> dict[str, Any]:
    check_csrf(request, user, None)
    return transition(user, incident_id, IncidentStatus.RESOLVED, str((body or {}).get("comment") or ""))
