"""What the view's routes read besides the governance read models: Airflow's pending approvals,
the audit chain's state, the charter report of a period, incident transitions and GDPR decisions, the register of
breaches and attestations. The files the view serves are in :mod:`.files`."""

from __future__ import annotations

import logging
import os
from datetime import UTC, date, datetime
from typing import Any

from charter_guardrails.core.errors import ConfigError, IncidentDecisionRequired
from charter_guardrails.incidents.incident import IncidentStatus, transition_incident
from charter_guardrails.ledger.store import ledger_session
from charter_guardrails.reporting import governance as gov
from fastapi import HTTPException, status

from charter_airflow.ui.scope import current_scope, unscoped
from charter_airflow.ui.security import actor_name

log = logging.getLogger(__name__)


def configure_ledger_from_airflow() -> None:
    """In the api-server, the ledger is the Airflow connection ``charter_ledger`` unless CHARTER_LEDGER_URL is set."""
    if os.environ.get("CHARTER_LEDGER_URL"):
        return
    try:
        from airflow.models.connection import Connection

        os.environ["CHARTER_LEDGER_URL"] = Connection.get_connection_from_secrets("charter_ledger").get_uri()
    except Exception:  # noqa: BLE001 - no connection: the embedded SQLite ledger under CHARTER_HOME applies
        log.debug("no Airflow connection charter_ledger; the ledger is the one of CHARTER_HOME")


def _hitl_rows() -> list[Any]:
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return list(
            session.execute(
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
        )


def airflow_pending_approvals(use_cases: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Human-in-the-loop tasks still waiting for an answer, per use case (DAG ids start with the use case id).

    The gate's approval is an Airflow HITL task: while it waits, the ledger only knows a running
    check run, so Airflow's ``hitl_detail`` table is the source of truth for what is pending.
    """
    try:
        rows = _hitl_rows()
    except Exception as exc:  # noqa: BLE001 - the view must still render without Airflow's HITL table
        log.warning("cannot read pending human-in-the-loop tasks from Airflow: %s", exc)
        return {}
    pending: dict[str, list[dict[str, Any]]] = {}
    by_length = sorted(use_cases, key=len, reverse=True)
    for dag_id, run_id, task_id, subject, created_at in rows:
        use_case = next((u for u in by_length if dag_id == u or dag_id.startswith(f"{u}_")), None)
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


def add_airflow_pending(overviews: list[dict[str, Any]]) -> list[dict[str, Any]]:
    hitl = airflow_pending_approvals([o["use_case"] for o in overviews])
    for item in overviews:
        item["pending_approvals"] = [*item["pending_approvals"], *hitl.get(item["use_case"], [])]
    return overviews


def chain_status(session: Any) -> dict[str, Any]:
    """The audit chain for a page: verified from the last signed verification on (a bounded number of events,
    never the whole chain), with the last full verification (``last_full``), which the integrity monitor runs
    once a day. ``ok`` is None with ``error`` when it cannot be verified within the request."""
    from charter_guardrails.ledger.audit_verify import chain_summary

    data = chain_summary(session)
    if data.get("error"):
        data["error"] = f"non vérifiée : {data['error']}"
    return data


def charter_report(debut: str | None, fin: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The charter report of the period and its verdicts per day; a bad period is a 422 that says what to type."""
    from charter_airflow.ui.errors import period

    start, end = period(debut, fin)
    with ledger_session() as session:
        report = gov.charter_report(session, start=start, end=end, chain=chain_status(session))
        days = gov.pass_rates(session, start=start, end=end)
    return report, days


def export_name(report: dict[str, Any]) -> str:
    return f"rapport-charte-{report['period']['start'][:10]}-{report['period']['end'][:10]}"


def require_act_on_incident(incident_id: int) -> None:
    """404 for an incident the reader may not see (or none), 403 for one of a use case they see but may not change."""
    from charter_guardrails.ledger.models import Incident

    with unscoped(), ledger_session() as session:
        row = session.get(Incident, incident_id)
        use_case = row.use_case if row is not None else None
    if use_case is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"Aucun incident n°{incident_id}.")
    current_scope().require_act(use_case, f"Incident n°{incident_id}")


def transition(user: Any, incident_id: int, to: IncidentStatus, comment: str | None) -> dict[str, Any]:
    """Move an incident to ``to`` as ``user``; an impossible move is a 409, an unknown incident a 404."""
    require_act_on_incident(incident_id)
    comment = (comment or "").strip()[:2000] or None
    try:
        with ledger_session() as session:
            row = transition_incident(session, incident_id, to, actor=actor_name(user), comment=comment)
            return gov.incident_dict(row)
    except IncidentDecisionRequired as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, decision_required_message(exc.incident_id)) from exc
    except ConfigError as exc:
        raise HTTPException(
            status.HTTP_409_CONFLICT if "cannot become" in str(exc) else status.HTTP_404_NOT_FOUND, str(exc)
        ) from exc


def decision_required_message(incident_id: int) -> str:
    """Why an incident cannot be resolved yet, and how to record what is missing (shown with the 409)."""
    return (
        f"Résolution refusée : la décision de notification à l'autorité de contrôle (RGPD art. 33) de l'incident "
        f"n°{incident_id} est en attente (aucune décision, ou « à notifier » sans notification faite). "
        f"Enregistrez-la d'abord avec le formulaire « Décision de notification (art. 33) » de la page de "
        f"l'incident, l'API POST /api/incidents/{incident_id}/art33 ou la commande "
        f"`charter incidents notify {incident_id} --decision notified|not_required … --by NOM`."
    )


#: The fields of each decision form, as the page names them.
ART33_FIELDS = ("decision", "notified_on", "authority", "reference", "rationale")
ART34_FIELDS = ("decision", "communicated_on", "channel", "ground")


def record_decision(
    user: Any, incident_id: int, article: str, form: dict[str, Any], *, from_form: bool = False
) -> dict[str, Any]:
    """Record the Art. 33 or Art. 34 decision sent by a form or the API, as ``user``; both decisions after it.

    A form shows every field of every decision, so only the fields of the chosen decision are read from it;
    the API refuses a field that does not apply.

    :raises ConfigError: with what to correct; an unknown incident is a 404.
    """
    from charter_guardrails.incidents.decisions import decision_fields, decisions_dict, record_art33, record_art34
    from charter_guardrails.ledger.models import Incident

    require_act_on_incident(incident_id)
    fields = ART33_FIELDS if article == "art33" else ART34_FIELDS
    values = {name: (str(form.get(name) or "").strip() or None) for name in fields}
    decision = values.pop("decision") or ""
    if from_form:
        values = {name: value if name in decision_fields(article, decision) else None for name, value in values.items()}
    with ledger_session() as session:
        if session.get(Incident, incident_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"Aucun incident n°{incident_id}.")
        if article == "art33":
            row = record_art33(session, incident_id, decision, actor=actor_name(user), **values)
        else:
            row = record_art34(session, incident_id, decision, actor=actor_name(user), **values)
        return {"incident_id": row.id, **decisions_dict(row)}


def incident_register(debut: str | None, fin: str | None) -> dict[str, Any]:
    """The register of breaches of the period (default: the last six months); a bad period is a 422."""
    from charter_guardrails.incidents.register import build_register

    from charter_airflow.ui.errors import period

    start, end = period(debut, fin)
    with ledger_session() as session:
        return build_register(session, start, end)


#: The fields of the attestation form, as the page names them.
ATTESTATION_FIELDS = ("engagement", "statement", "document_ref", "attested_by", "attested_on", "expires_on")


def _form_day(value: str, label: str, default: date | None = None) -> date:
    value = value.strip()
    if not value and default is not None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{label} : « {value} » n'est pas une date ; saisissez-la au format AAAA-MM-JJ") from None


def record_attestation(user: Any, form: dict[str, str]) -> str:
    """Record the attestation sent by the report's form, as ``user``; the engagement's id.

    :raises ConfigError: with what to correct (the page shows it above the form).
    """
    from charter_guardrails.reporting.attestations import record_attestation as record

    with ledger_session() as session:
        attestation = record(
            session,
            engagement_id=form["engagement"].strip(),
            statement=form["statement"],
            document_ref=form["document_ref"],
            attested_by=form["attested_by"],
            attested_on=_form_day(form["attested_on"], "Date de l'attestation", datetime.now(UTC).date()),
            expires_on=_form_day(form["expires_on"], "Valable jusqu'au"),
            recorded_by=actor_name(user),
        )
    return attestation.engagement_id


#: A suspension or a resumption says why in a sentence at least: the audit trail keeps it.
KILL_SWITCH_MIN_REASON = 10
KILL_SWITCH_MAX_REASON = 2000


def kill_switch_roles(use_case: str) -> list[str]:
    """The roles the use case's policy lets use the kill switch (``approval.kill_switch_roles``); none when the
    use case has no readable policy."""
    from charter_guardrails.core.errors import CharterError
    from charter_guardrails.core.policy import load_policy

    try:
        return list(load_policy(use_case).approval.kill_switch_roles)
    except CharterError as exc:
        log.warning("kill switch of %r: no policy roles apply (%s)", use_case, type(exc).__name__)
        return []


def require_kill_switch(user: Any, use_case: str) -> None:
    """403 unless ``user`` may suspend and resume the production model of ``use_case``."""
    from charter_airflow.ui.security import may_stop_models

    current_scope().require_act(use_case, f"Cas d'usage {use_case}")
    if not may_stop_models(user, kill_switch_roles(use_case)):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "Action refusée : suspendre ou reprendre le modèle de production demande le droit de créer des "
            "événements d'Asset dans Airflow (rôles op et admin) ou un rôle nommé dans approval.kill_switch_roles "
            f"de la politique de {use_case}.",
        )


def _valid_reason(reason: str | None, verb: str) -> str:
    reason = (reason or "").strip()
    if len(reason) < KILL_SWITCH_MIN_REASON or len(reason) > KILL_SWITCH_MAX_REASON:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"Motif refusé : pour {verb} le modèle, écrivez pourquoi en {KILL_SWITCH_MIN_REASON} à "
            f"{KILL_SWITCH_MAX_REASON} caractères ; il est inscrit au journal d'audit.",
        )
    return reason


def switch_model(user: Any, use_case: str, *, suspend: bool, reason: str | None) -> dict[str, Any]:
    """Suspend or resume the production model of ``use_case`` as ``user`` (audited by the model registry); a
    suspension then emits the use case's suspension Asset event.

    :raises HTTPException: 400 for a missing or short reason, 409 when there is nothing to suspend or resume.
    """
    from charter_guardrails.decision import model_registry

    verb = "suspendre" if suspend else "reprendre"
    reason = _valid_reason(reason, verb)
    with ledger_session() as session:
        current = model_registry.production_version(session, use_case)
        if current is None:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"{use_case} n'a pas de modèle en production : rien à {verb}."
            )
        if current.suspended == suspend:
            state = "déjà suspendu" if suspend else "n'est pas suspendu"
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"Le modèle en production de {use_case} (v{current.version}) {state} : rien à {verb}.",
            )
        change = model_registry.suspend if suspend else model_registry.resume
        try:
            version = change(session, use_case, actor=actor_name(user), reason=reason)
        except ConfigError as exc:  # changed by someone else meanwhile
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
        result = gov.model_dict(version)
    result["asset_event"] = emit_suspension_event(user, use_case, result["version"]) if suspend else None
    return result


def emit_suspension_event(user: Any, use_case: str, version: int) -> dict[str, Any]:
    """Record the suspension Asset event in Airflow's metadata database, as Airflow's ``POST /assets/events``
    does; a failure is logged and reported (the suspension itself is already recorded in the ledger)."""
    from charter_airflow.dag_factory import model_suspended_asset_uri

    uri = model_suspended_asset_uri(use_case)
    try:
        _register_asset_event(user, uri, {"use_case": use_case, "version": version})
    except Exception as exc:  # noqa: BLE001 - the suspension stands; the page says the event failed
        # the exception's type only: a database error's text can name the server, its user and the parameters
        log.warning(
            "model of %s suspended, but the Asset event %s was not recorded (%s)", use_case, uri, type(exc).__name__
        )
        return {"uri": uri, "emitted": False}
    return {"uri": uri, "emitted": True}


def _register_asset_event(user: Any, uri: str, extra: dict[str, Any]) -> None:
    """The event through Airflow's ``AssetManager``, creating (and activating) the Asset when no DAG declared it
    yet (the ``kill_switch`` tasks declare it once the DAG processor parsed them)."""
    from airflow.assets.manager import asset_manager
    from airflow.configuration import conf
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.serialization.definitions.assets import SerializedAsset
    from airflow.utils.session import create_session
    from sqlalchemy import select

    teams: set[str] = set()
    if conf.getboolean("core", "multi_team"):
        from airflow.api_fastapi.app import get_auth_manager

        teams = set(get_auth_manager().get_authorized_teams(user=user))
    with create_session() as session:
        model = session.scalar(select(AssetModel).where(AssetModel.name == uri, AssetModel.uri == uri))
        if model is None:
            declared = SerializedAsset(name=uri, uri=uri, group="asset", extra={}, watchers=[])
            (model,) = asset_manager.create_assets([declared], session=session)
            session.flush()
            session.add(AssetActive.for_asset(model))
            session.flush()
        event = asset_manager.register_asset_change(
            asset=model, extra=extra, source_is_api=True, api_user_teams=teams, session=session
        )
        if event is None:
            raise RuntimeError(f"Airflow recorded no event for the Asset {uri}")


def artifact_deletion(use_case: str, version: int) -> dict[str, Any] | None:
    """When and under which rule retention deleted the artifact of ``use_case``'s version ``version``; None while
    it is kept. The model page shows it, since the version's row (and its recorded SHA-256) outlives the file."""
    from charter_guardrails.retention import deleted_artifact

    with ledger_session() as session:
        row = deleted_artifact(session, use_case, version)
        if row is None:
            return None
        return {"deleted_at": row.deleted_at, "rule": row.rule, "path": row.path, "sha256": row.sha256}
