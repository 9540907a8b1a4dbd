"""The charter report for the Comité de la Gouvernance Numérique: each engagement of the charter with
the evidence the ledger holds for it over a period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charter_guardrails.core.engagements import Engagement, load_engagements
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.ledger.models import Approval, AuditEvent, CheckResultRecord, CheckRun, Incident, ModelVersion
from charter_guardrails.reporting.ledger_rows import iso_utc
from charter_guardrails.reporting.scrubbing import mask_personal_values

#: Approval decisions that set a failing guardrail aside (Maîtrise humaine 2).
OVERRIDE_DECISIONS = frozenset({"override", "overridden"})


def parse_period(start: str | None, end: str | None, *, default_days: int = 183) -> tuple[datetime, datetime]:
    """A [start, end) period in UTC from ISO dates; by default the last six months (the Comité meets twice a year)."""
    try:
        end_dt = datetime.fromisoformat(end).replace(tzinfo=UTC) + timedelta(days=1) if end else datetime.now(UTC)
        start_dt = datetime.fromisoformat(start).replace(tzinfo=UTC) if start else end_dt - timedelta(days=default_days)
    except ValueError as exc:
        raise ConfigError(f"invalid period: {exc}; use dates like 2026-01-31") from exc
    if start_dt >= end_dt:
        raise ConfigError("the period starts after it ends")
    return start_dt, end_dt


@dataclass(frozen=True)
class _PeriodEvidence:
    """What the ledger holds for a period: results with their runs, approvals, incidents, audit events, models."""

    results: list[tuple[CheckResultRecord, CheckRun]]
    approvals: list[Approval]
    incidents: list[Incident]
    audit_count: int
    models: list[ModelVersion]


def _period_evidence(session: Session, start: datetime, end: datetime) -> _PeriodEvidence:
    results = session.execute(
        select(CheckResultRecord, CheckRun)
        .join(CheckRun, CheckResultRecord.check_run_id == CheckRun.id)
        .where(CheckResultRecord.created_at >= start, CheckResultRecord.created_at < end)
        .order_by(CheckResultRecord.created_at, CheckResultRecord.id)
    ).all()
    audit_count = (
        session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.ts >= start, AuditEvent.ts < end))
        or 0
    )
    return _PeriodEvidence(
        results=[(r, run) for r, run in results],
        approvals=list(
            session.scalars(select(Approval).where(Approval.decided_at >= start, Approval.decided_at < end))
        ),
        incidents=list(
            session.scalars(select(Incident).where(Incident.detected_at >= start, Incident.detected_at < end))
        ),
        audit_count=int(audit_count),
        models=list(session.scalars(select(ModelVersion).where(ModelVersion.created_at < end))),
    )


def _last_run(last: tuple[CheckResultRecord, CheckRun] | None) -> dict[str, Any] | None:
    if last is None:
        return None
    result, run = last
    return {
        "run_pk": run.id,
        "use_case": run.use_case,
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "verdict": result.verdict,
        "at": iso_utc(result.created_at),
    }


def _check_evidence(eng: Engagement, period: _PeriodEvidence) -> dict[str, Any]:
    """Results of the checks that declare the engagement or are one of its controls, and their overrides."""
    controls = set(eng.controls)
    matched = [(r, run) for r, run in period.results if eng.id in (r.engagements or []) or r.check in controls]
    counts = {"pass": 0, "warn": 0, "fail": 0}
    for r, _ in matched:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    checks_seen = {r.check for r, _ in matched}
    overrides = [
        a
        for a in period.approvals
        if a.decision in OVERRIDE_DECISIONS
        and ("overrides" in eng.sources or set(a.overridden_checks or []) & (controls | checks_seen))
    ]
    return {
        "results": len(matched),
        "runs": len({run.id for _, run in matched}),
        **counts,
        "checks": sorted(checks_seen),
        "last_run": _last_run(matched[-1] if matched else None),
        "failures": [
            {
                "run_pk": run.id,
                "use_case": run.use_case,
                "run_id": run.run_id,
                "check": r.check,
                "dataset": r.dataset or None,
                "summary": mask_personal_values(r.summary),
                "at": iso_utc(r.created_at),
            }
            for r, run in matched
            if r.verdict == "fail"
        ][-20:],
        "overrides": len(overrides),
    }


def _source_evidence(eng: Engagement, period: _PeriodEvidence, chain: dict[str, Any] | None) -> dict[str, Any]:
    """The engagement's other evidence, per its ``sources``: approvals, incidents, the audit chain, model cards."""
    evidence: dict[str, Any] = {}
    if "approvals" in eng.sources:
        evidence["approvals"] = len(period.approvals)
    if "incidents" in eng.sources:
        relevant = [i for i in period.incidents if not eng.incident_types or i.breach_type in eng.incident_types]
        evidence["incidents"] = len(relevant)
        evidence["incidents_open"] = sum(1 for i in relevant if i.status != "resolved")
    if "audit" in eng.sources:
        evidence["audit_events"] = period.audit_count
        if chain is not None:
            evidence["audit_chain_ok"] = chain.get("ok")
    if "model_cards" in eng.sources:
        evidence["model_versions"] = len(period.models)
        evidence["model_cards"] = sum(1 for m in period.models if m.card_path)
    return evidence


def charter_report(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    chain: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Each of the charter's engagements with its controls and the evidence from runs in [start, end).

    Evidence of an engagement: the results of checks that declare it (``engagements``) or that are
    one of its controls, counted by verdict, the last run and the failures; the overrides of those
    checks; and, per the engagement's ``sources``, approvals, incidents, audit events and model versions.
    """
    period = _period_evidence(session, start, end)
    engagements = []
    for eng in load_engagements():
        evidence = {**_check_evidence(eng, period), **_source_evidence(eng, period, chain)}
        evidence["status"] = _engagement_status(evidence, eng)
        engagements.append({**eng.to_json_dict(), "evidence": evidence})
    statuses = [e["evidence"]["status"] for e in engagements]
    return {
        "title": "Rapport de la charte IA — Métropole Aix-Marseille-Provence",
        "period": {"start": iso_utc(start), "end": iso_utc(end)},
        "generated_at": iso_utc(now or datetime.now(UTC)),
        "audit_chain": chain,
        "totals": {
            "engagements": len(engagements),
            "runs": len({run.id for _, run in period.results}),
            "results": len(period.results),
            "approvals": len(period.approvals),
            "overrides": sum(1 for a in period.approvals if a.decision in OVERRIDE_DECISIONS),
            "incidents": len(period.incidents),
            "by_status": {s: statuses.count(s) for s in ("respecté", "à surveiller", "manquement", "sans preuve")},
        },
        "engagements": engagements,
    }


def _engagement_status(evidence: dict[str, Any], eng: Engagement) -> str:
    """A reading aid for the committee; the counts are the evidence."""
    if evidence["fail"] or evidence.get("incidents_open") or evidence.get("audit_chain_ok") is False:
        return "manquement"
    if evidence["warn"] or evidence["overrides"]:
        return "à surveiller"
    if evidence["results"] or any(evidence.get(k) for k in ("approvals", "audit_events", "model_cards", "incidents")):
        return "respecté"
    return "sans preuve"
