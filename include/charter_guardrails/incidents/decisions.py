"""The GDPR decisions on an incident, each recorded with who and when in the incident and the audit chain.

- Art. 33, notification to the supervisory authority: ``to_notify`` (the notification is owed and not
  made yet), ``notified`` (the day, the authority, e.g. CNIL, and its reference) or ``not_required``
  (the breach is unlikely to result in a risk, Art. 33(1): a rationale of at least
  :data:`MIN_RATIONALE_CHARS` characters).
- Art. 34, communication to the data subjects: ``communicated`` (the day and the channel) or
  ``not_required`` with its Art. 34(3) ground: ``a`` protective measures such as encryption, ``b``
  subsequent measures so that the high risk is no longer likely, ``c`` a disproportionate effort (a
  public communication is made instead).

The Art. 33 decision is *open* while nobody decided or while the notification is still owed
(:func:`art33_open`); an incident is resolved only once it is closed. Free text (authority, reference,
rationale, channel) is masked with :func:`~charter_guardrails.reporting.scrubbing.mask_personal_values`
before it is stored or written to the audit chain.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from charter_guardrails.core.errors import ConfigError, IncidentDecisionRequired
from charter_guardrails.incidents.siem import queue_siem_events_for
from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.models import Incident
from charter_guardrails.reporting.scrubbing import mask_personal_values

_Choice = TypeVar("_Choice", bound=StrEnum)

#: Art. 33(1): a decision not to notify says why the breach is unlikely to result in a risk.
MIN_RATIONALE_CHARS = 50


class Art33Decision(StrEnum):
    TO_NOTIFY = "to_notify"
    NOTIFIED = "notified"
    NOT_REQUIRED = "not_required"


class Art34Decision(StrEnum):
    COMMUNICATED = "communicated"
    NOT_REQUIRED = "not_required"


class Art34Ground(StrEnum):
    """The Art. 34(3) cases where the data subjects need not be told individually."""

    PROTECTED = "a"
    RISK_NO_LONGER_LIKELY = "b"
    DISPROPORTIONATE_EFFORT = "c"


#: Each decision in French, for the register and the view.
ART33_LABELS = {
    "to_notify": "à notifier (notification due, pas encore faite)",
    "notified": "notifiée à l'autorité de contrôle",
    "not_required": "notification non requise (risque improbable, art. 33-1)",
}
ART34_LABELS = {
    "communicated": "communiquée aux personnes concernées",
    "not_required": "communication non requise (art. 34-3)",
}

#: What each Art. 34(3) ground means, for the register and the view.
ART34_GROUND_LABELS = {
    "a": "art. 34-3-a : mesures de protection (chiffrement…) rendant les données incompréhensibles",
    "b": "art. 34-3-b : mesures ultérieures, le risque élevé n'est plus susceptible de se matérialiser",
    "c": "art. 34-3-c : efforts disproportionnés, communication publique à la place",
}

#: The fields each decision needs, and those it takes (the others are refused, never silently dropped).
_ART33_FIELDS = {
    Art33Decision.TO_NOTIFY: (),
    Art33Decision.NOTIFIED: ("notified_on", "authority", "reference"),
    Art33Decision.NOT_REQUIRED: ("rationale",),
}
_ART34_FIELDS = {
    Art34Decision.COMMUNICATED: ("communicated_on", "channel"),
    Art34Decision.NOT_REQUIRED: ("ground",),
}
_OPTION = {
    "notified_on": "--on",
    "authority": "--authority",
    "reference": "--reference",
    "rationale": "--rationale",
    "communicated_on": "--on",
    "channel": "--channel",
    "ground": "--ground",
}
_MAX_CHARS = {"authority": 128, "reference": 256, "channel": 256, "rationale": 4000}


def decision_fields(article: str, decision: str) -> tuple[str, ...]:
    """The fields the ``article`` (``art33`` or ``art34``) ``decision`` takes; none for an unknown one."""
    table: dict[Any, tuple[str, ...]] = _ART33_FIELDS if article == "art33" else _ART34_FIELDS
    return table.get(decision, ())


def art33_open(incident: Incident) -> bool:
    """True while the Art. 33 notification is owed: no decision yet, or ``to_notify``."""
    return incident.art33_decision in (None, Art33Decision.TO_NOTIFY.value)


def art34_open(incident: Incident) -> bool:
    """True while nobody decided whether the data subjects are told (Art. 34)."""
    return incident.art34_decision is None


def record_art33_hint(incident_id: int) -> str:
    """How to record the Art. 33 decision of an incident, from the command line or the view."""
    return (
        f"record it with `charter incidents notify {incident_id} --decision notified --on YYYY-MM-DD "
        f"--authority CNIL --reference REF --by NAME` (or `--decision not_required --rationale TEXT --by NAME`), "
        f"or with the form « Décision de notification (art. 33) » of the incident's page"
    )


def require_art33_decision(incident: Incident) -> None:
    """Refuse to go on while the Art. 33 decision of ``incident`` is open.

    :raises IncidentDecisionRequired: naming what is missing and how to record it.
    """
    if not art33_open(incident):
        return
    state = (
        "no GDPR Art. 33 notification decision is recorded"
        if incident.art33_decision is None
        else "its GDPR Art. 33 decision is `to_notify`: the notification to the supervisory authority is still owed"
    )
    raise IncidentDecisionRequired(
        incident.id, f"incident #{incident.id} cannot be resolved: {state}; {record_art33_hint(incident.id)}"
    )


def record_art33(
    session: Session,
    incident_id: int,
    decision: Art33Decision | str,
    *,
    actor: str,
    notified_on: date | str | None = None,
    authority: str | None = None,
    reference: str | None = None,
    rationale: str | None = None,
) -> Incident:
    """Record the Art. 33 decision of an incident as ``actor``, with its audit event ``incident.art33_decision``.

    :raises ConfigError: an unknown incident or decision, a missing or extra field (named), a date in the
        future or before the detection, a rationale under :data:`MIN_RATIONALE_CHARS` characters, or a
        ``notified`` decision changed into another one.
    """
    chosen = _choice(Art33Decision, decision, "Art. 33 decision")
    incident = _incident(session, incident_id)
    who = _actor(actor)
    given = {"notified_on": notified_on, "authority": authority, "reference": reference, "rationale": rationale}
    values = _fields(incident, f"Art. 33 `{chosen.value}`", _ART33_FIELDS[chosen], given)
    rationale_text = values.get("rationale")
    if rationale_text is not None and len(rationale_text) < MIN_RATIONALE_CHARS:
        raise ConfigError(
            f"the rationale of a `not_required` Art. 33 decision has {len(rationale_text)} characters; "
            f"write at least {MIN_RATIONALE_CHARS}: why the breach is unlikely to result in a risk to people "
            f"(Art. 33(1)), e.g. the data were restored from a verified backup before any use"
        )
    _keep_notified(incident.art33_decision, chosen.value, Art33Decision.NOTIFIED.value, "notified the authority")
    previous = incident.art33_decision
    incident.art33_decision = chosen.value
    incident.art33_decided_by, incident.art33_decided_at = who, datetime.now(UTC)
    incident.art33_notified_on = values.get("notified_on")
    incident.art33_authority = values.get("authority")
    incident.art33_reference = values.get("reference")
    incident.art33_rationale = rationale_text
    _audit(session, incident, who, "incident.art33_decision", chosen.value, previous, values)
    return incident


def record_art34(
    session: Session,
    incident_id: int,
    decision: Art34Decision | str,
    *,
    actor: str,
    communicated_on: date | str | None = None,
    channel: str | None = None,
    ground: Art34Ground | str | None = None,
) -> Incident:
    """Record the Art. 34 decision of an incident as ``actor``, with its audit event ``incident.art34_decision``.

    :raises ConfigError: an unknown incident, decision or ground, a missing or extra field (named), a date in
        the future or before the detection, or a ``communicated`` decision changed into another one.
    """
    chosen = _choice(Art34Decision, decision, "Art. 34 decision")
    incident = _incident(session, incident_id)
    who = _actor(actor)
    given = {"communicated_on": communicated_on, "channel": channel, "ground": ground}
    values = _fields(incident, f"Art. 34 `{chosen.value}`", _ART34_FIELDS[chosen], given)
    if "ground" in values:
        values["ground"] = _choice(Art34Ground, values["ground"], "Art. 34(3) ground").value
    _keep_notified(incident.art34_decision, chosen.value, Art34Decision.COMMUNICATED.value, "told the data subjects")
    previous = incident.art34_decision
    incident.art34_decision = chosen.value
    incident.art34_decided_by, incident.art34_decided_at = who, datetime.now(UTC)
    incident.art34_communicated_on = values.get("communicated_on")
    incident.art34_channel = values.get("channel")
    incident.art34_ground = values.get("ground")
    _audit(session, incident, who, "incident.art34_decision", chosen.value, previous, values)
    return incident


def decisions_dict(incident: Incident) -> dict[str, Any]:
    """Both decisions of an incident, JSON-ready, with whether each is still open."""
    return {
        "art33": {
            "decision": incident.art33_decision,
            "open": art33_open(incident),
            "decided_by": incident.art33_decided_by,
            "decided_at": _iso(incident.art33_decided_at),
            "notified_on": _iso(incident.art33_notified_on),
            "authority": incident.art33_authority,
            "reference": incident.art33_reference,
            "rationale": incident.art33_rationale,
        },
        "art34": {
            "decision": incident.art34_decision,
            "open": art34_open(incident),
            "decided_by": incident.art34_decided_by,
            "decided_at": _iso(incident.art34_decided_at),
            "communicated_on": _iso(incident.art34_communicated_on),
            "channel": incident.art34_channel,
            "ground": incident.art34_ground,
            "ground_label": ART34_GROUND_LABELS.get(incident.art34_ground or ""),
        },
    }


def _iso(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value.isoformat()


def _choice(kind: type[_Choice], value: _Choice | str, what: str) -> _Choice:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(e.value for e in kind)
        raise ConfigError(f"unknown {what} {str(value)!r}; choose one of: {choices}") from None


def _incident(session: Session, incident_id: int) -> Incident:
    incident = session.get(Incident, incident_id)
    if incident is None:
        raise ConfigError(f"no incident #{incident_id}; list them with `charter incidents list`")
    return incident


def _actor(actor: str | None) -> str:
    name = (actor or "").strip()
    if not name:
        raise ConfigError("a decision is taken by a named person: give who decides (`--by NAME`)")
    if len(name) > 256:
        raise ConfigError("the name of who decides has more than 256 characters; give a shorter name (`--by`)")
    return mask_personal_values(name)


def _fields(incident: Incident, decision: str, needed: tuple[str, ...], given: dict[str, Any]) -> dict[str, Any]:
    """The fields ``decision`` needs, checked and cleaned; a missing or an extra field is refused by name."""
    blank = {name for name, value in given.items() if value is None or (isinstance(value, str) and not value.strip())}
    missing = [name for name in needed if name in blank]
    if missing:
        names = ", ".join(f"{name} (`{_OPTION[name]}`)" for name in missing)
        raise ConfigError(f"the {decision} decision needs {names}; give it and record the decision again")
    extra = [name for name in given if name not in needed and name not in blank]
    if extra:
        names = ", ".join(f"{name} (`{_OPTION[name]}`)" for name in extra)
        raise ConfigError(f"{names} does not apply to the {decision} decision; leave it out or choose another decision")
    values: dict[str, Any] = {}
    for name in needed:
        value = given[name]
        if name.endswith("_on"):
            values[name] = _day(incident, name, value)
        elif name == "ground":
            values[name] = str(value).strip()
        else:
            values[name] = _text(name, str(value))
    return values


def _day(incident: Incident, name: str, value: date | str) -> date:
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(value.strip())
        except ValueError:
            raise ConfigError(f"{name} (`{_OPTION[name]}`) {value!r} is not a date; write it as YYYY-MM-DD") from None
    if day > datetime.now(UTC).date():
        raise ConfigError(f"{name} (`{_OPTION[name]}`) {day.isoformat()} is in the future; give the day it happened")
    detected = incident.detected_at.astimezone(UTC).date()
    if day < detected:
        raise ConfigError(
            f"{name} (`{_OPTION[name]}`) {day.isoformat()} is before the incident was detected "
            f"({detected.isoformat()}); give the day it happened"
        )
    return day


def _text(name: str, value: str) -> str:
    text = " ".join(value.split()) if name != "rationale" else value.strip()
    limit = _MAX_CHARS[name]
    if len(text) > limit:
        raise ConfigError(f"{name} (`{_OPTION[name]}`) has {len(text)} characters; shorten it to at most {limit}")
    return mask_personal_values(text)


def _keep_notified(current: str | None, chosen: str, done: str, what: str) -> None:
    """A notification or a communication that was made stays made: only its details may be corrected."""
    if current == done and chosen != done:
        raise ConfigError(
            f"the decision is `{done}`: someone {what} already, which cannot be undone; "
            f"record `{done}` again to correct its details"
        )


def _audit(
    session: Session,
    incident: Incident,
    actor: str,
    action: str,
    decision: str,
    previous: str | None,
    values: dict[str, Any],
) -> None:
    payload: dict[str, Any] = {"decision": decision, "previous": previous}
    payload.update({name: _iso(v) if isinstance(v, date) else v for name, v in values.items()})
    append_event(
        session,
        actor=actor,
        action=action,
        subject=incident,
        use_case=incident.use_case,
        run_id=incident.run_id,
        payload=payload,
    )
    queue_siem_events_for(session, incident, action)
