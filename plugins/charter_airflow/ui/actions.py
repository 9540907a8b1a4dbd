"""What changes state (POST): acknowledging and resolving an incident and recording its GDPR Art. 33 and
Art. 34 decisions, from the page's forms or the JSON API, and recording an attestation from the charter
report's forms. The security-officer role that decides on notification is the operator role here.

The kill switch suspends and resumes a use case's production model (:mod:`charter_guardrails.decision.model_registry`,
as ``charter model suspend|resume`` does) with a written reason; besides the operator's right it needs the right
to create Asset events or a role named in the policy (:func:`~charter_airflow.ui.queries.require_kill_switch`), and a
suspension emits the use case's suspension Asset event.

Every action needs :func:`~charter_airflow.ui.security.require_operator` (an attestation, also
:func:`~charter_airflow.ui.security.require_governance`) and passes
:func:`~charter_airflow.ui.security.check_csrf`: forms carry the synchronizer token; API calls whose
identity comes from a bearer token (a header no browser adds by itself) need none, and any request whose
identity comes from the cookie needs it, whatever other headers it carries.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from charter_guardrails.core.errors import ConfigError
from charter_guardrails.incidents.incident import IncidentStatus
from fastapi import APIRouter, Body, Depends, Form, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse

from charter_airflow.ui.pages import render_charter_report, render_incident, render_model
from charter_airflow.ui.queries import (
    ART33_FIELDS,
    ART34_FIELDS,
    ATTESTATION_FIELDS,
    record_attestation,
    record_decision,
    require_kill_switch,
    switch_model,
    transition,
)
from charter_airflow.ui.scope import bind_scope
from charter_airflow.ui.security import GovernanceDep, OperatorDep, check_csrf, require_reader

router = APIRouter(dependencies=[Depends(require_reader), Depends(bind_scope)])


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


def _decision_routes(article: str, *, form_path: str, fields: tuple[str, ...]) -> None:
    """The form action and the API action that record the ``article`` decision; both need an operator and CSRF.

    A refused decision shows the page again with what to correct (400); the API answers 400 with it.
    """

    @router.post(f"/incidents/{{incident_id}}/{form_path}", name=f"{article}_form", response_model=None)
    def form_action(
        request: Request,
        user: OperatorDep,
        incident_id: int,
        decision: Annotated[str, Form()] = "",
        notified_on: Annotated[str, Form()] = "",
        authority: Annotated[str, Form()] = "",
        reference: Annotated[str, Form()] = "",
        rationale: Annotated[str, Form()] = "",
        communicated_on: Annotated[str, Form()] = "",
        channel: Annotated[str, Form()] = "",
        ground: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> RedirectResponse | HTMLResponse:
        check_csrf(request, user, csrf_token)
        sent = {
            "decision": decision,
            "notified_on": notified_on,
            "authority": authority,
            "reference": reference,
            "rationale": rationale,
            "communicated_on": communicated_on,
            "channel": channel,
            "ground": ground,
        }
        form = {name: sent[name] for name in fields}
        try:
            record_decision(user, incident_id, article, form, from_form=True)
        except ConfigError as exc:
            return render_incident(
                request,
                user,
                incident_id,
                form={**form, "article": article},
                error=f"Décision refusée : {exc}",
                status_code=status.HTTP_400_BAD_REQUEST,
            )
        return _back_to_incident(request, incident_id, f"decision-{article}")

    @router.post(f"/api/incidents/{{incident_id}}/{article}", name=f"api_{article}")
    def api_action(
        request: Request, user: OperatorDep, incident_id: int, body: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        check_csrf(request, user, None)
        try:
            return record_decision(user, incident_id, article, body or {})
        except ConfigError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from exc


_decision_routes("art33", form_path="decision-art33", fields=ART33_FIELDS)
_decision_routes("art34", form_path="decision-art34", fields=ART34_FIELDS)


@router.post("/rapport-charte/attestations", name="attest_form", response_model=None)
def attest_form(
    request: Request,
    user: GovernanceDep,
    engagement: Annotated[str, Form()] = "",
    statement: Annotated[str, Form()] = "",
    document_ref: Annotated[str, Form()] = "",
    attested_by: Annotated[str, Form()] = "",
    attested_on: Annotated[str, Form()] = "",
    expires_on: Annotated[str, Form()] = "",
    debut: Annotated[str, Form()] = "",
    fin: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> RedirectResponse | HTMLResponse:
    """Record an attestation of an engagement, then back to the report (303); a refused one shows the page
    again with what to correct (400)."""
    check_csrf(request, user, csrf_token)
    form = dict(
        zip(
            ATTESTATION_FIELDS,
            (engagement, statement, document_ref, attested_by, attested_on, expires_on),
            strict=True,
        )
    )
    try:
        engagement_id = record_attestation(user, form)
    except ConfigError as exc:
        return render_charter_report(
            request,
            user,
            debut or None,
            fin or None,
            form=form,
            error=str(exc),
            status_code=status.HTTP_400_BAD_REQUEST,
        )
    query = urlencode({"debut": debut, "fin": fin, "ok": "atteste"})
    return RedirectResponse(
        f"{request.scope.get('root_path', '')}/rapport-charte?{query}#engagement-{engagement_id}", status_code=303
    )


def _model_of(use_case: str) -> int | None:
    """The version whose page shows the kill switch of ``use_case``: the production one, else the latest."""
    from charter_guardrails.decision.model_registry import production_version, versions
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        row = production_version(session, use_case) or next(reversed(versions(session, use_case)), None)
        return row.id if row else None


def _kill_switch_routes(*, suspend: bool, form_path: str, api_path: str) -> None:
    """The form action and the API action that suspend (or resume) the production model of a use case."""

    @router.post(f"/modeles/cas/{{use_case}}/{form_path}", name=f"{api_path}_model_form", response_model=None)
    def form_action(
        request: Request,
        user: OperatorDep,
        use_case: str,
        reason: Annotated[str, Form()] = "",
        csrf_token: Annotated[str, Form()] = "",
    ) -> RedirectResponse | HTMLResponse:
        check_csrf(request, user, csrf_token)
        require_kill_switch(user, use_case)
        try:
            result = switch_model(user, use_case, suspend=suspend, reason=reason)
        except HTTPException as exc:
            model_id = _model_of(use_case)
            if model_id is None:
                raise
            return render_model(
                request, user, model_id, error=str(exc.detail), reason=reason, status_code=exc.status_code
            )
        event = result["asset_event"]
        ok = "repris" if not suspend else ("suspendu" if event["emitted"] else "suspendu-sans-evenement")
        return RedirectResponse(
            f"{request.scope.get('root_path', '')}/modeles/{result['id']}?ok={ok}#interrupteur", status_code=303
        )

    @router.post(f"/api/models/{{use_case}}/{api_path}", name=f"api_{api_path}_model")
    def api_action(
        request: Request, user: OperatorDep, use_case: str, body: Annotated[dict[str, Any] | None, Body()] = None
    ) -> dict[str, Any]:
        check_csrf(request, user, None)
        require_kill_switch(user, use_case)
        return switch_model(user, use_case, suspend=suspend, reason=str((body or {}).get("reason") or ""))


_kill_switch_routes(suspend=True, form_path="suspendre", api_path="suspend")
_kill_switch_routes(suspend=False, form_path="reprendre", api_path="resume")
