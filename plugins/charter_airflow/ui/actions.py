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


def _transition_routes(status: IncidentStatus, *, form_path: str, form_name: str, done: str, api_path: str) -> None:
    """The form action and the API action that move an incident to ``status``; both need an operator and CSRF."""

    @router.post(f"/incidents/{{incident_id}}/{form_path}", name=form_name)
    def form_action(
        request: Request,
        user: OperatorDep,
        incident_id: int,
        comment: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> RedirectResponse:
        check_csrf(request, user, csrf_token)
        transition(user, incident_id, status, comment)
        return _back_to_incident(request, incident_id, done)

    @router.post(f"/api/incidents/{{incident_id}}/{api_path}", name=f"api_{api_path}")
    def api_action(
        request: Request, user: OperatorDep, incident_id: int, body: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        check_csrf(request, user, None)
        return transition(user, incident_id, status, str((body or {}).get("comment") or ""))


_transition_routes(
    IncidentStatus.ACKNOWLEDGED,
    form_path="acquitter",
    form_name="acknowledge_form",
    done="acquitte",
    api_path="acknowledge",
)
_transition_routes(
    IncidentStatus.RESOLVED, form_path="resoudre", form_name="resolve_form", done="resolu", api_path="resolve"
)
