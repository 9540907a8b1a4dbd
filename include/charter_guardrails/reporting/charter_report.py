"""The charter report for the Comité de la Gouvernance Numérique: each engagement of the charter with
the evidence the ledger holds for it over a period, and what that evidence says (its status).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from charter_guardrails.core.catalogue import CheckName
from charter_guardrails.core.engagements import Engagement, EngagementKind, load_engagements
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.messages import render_summary
from charter_guardrails.core.settings import get_settings
from charter_guardrails.core.stored_paths import from_stored
from charter_guardrails.ledger.models import Approval, AuditEvent, CheckResultRecord, CheckRun, Incident, ModelVersion
from charter_guardrails.ledger.models_predictions import PredictionBatch
from charter_guardrails.reporting.attestations import (
    ATTESTATION_ACTION,
    Attestation,
    current_attestations,
    latest_attestations,
    list_attestations,
)
from charter_guardrails.reporting.ledger_rows import iso_utc
from charter_guardrails.reporting.prediction_monitoring import prediction_evidence, scored_batches
from charter_guardrails.reporting.scrubbing import mask_personal_values

#: Approval decisions that set a failing guardrail aside (Maîtrise humaine 2).
OVERRIDE_DECISIONS = frozenset({"override", "overridden"})
#: Approval rows of the kill switch (``decision.model_registry.suspend`` and ``resume``), not decisions on a run.
KILL_SWITCH_DECISIONS = frozenset({"suspend", "resume"})
#: The files ``model_card.write_model_card`` writes beside a version's card: the AI label's badge and metadata.
AI_LABEL_FILES = ("ai_label.svg", "ai_label.json")

STATUS_COMPLIANT = "contrôlé — conforme"
STATUS_GAPS = "contrôlé — écarts"
STATUS_ATTESTED = "attesté"
STATUS_NOT_EVALUATED = "non évalué"
#: The statuses of an engagement over a period, in the order the report counts them.
STATUSES = (STATUS_COMPLIANT, STATUS_GAPS, STATUS_ATTESTED, STATUS_NOT_EVALUATED)
MISSING_ATTESTATION = "attestation du Comité manquante"


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


def last_day(end: datetime) -> date:
    """The last day (UTC) of a period that ends, excluded, at ``end``."""
    return (end - timedelta(microseconds=1)).astimezone(UTC).date()


@dataclass(frozen=True)
class _PeriodEvidence:
    """What the ledger holds for a period: results with their runs, human decisions, incidents, audit events,
    model versions published, and the attestations given up to its last day."""

    results: list[tuple[CheckResultRecord, CheckRun]]
    approvals: list[Approval]
    incidents: list[Incident]
    audit_count: int
    models: list[ModelVersion]
    attestations: list[Attestation]
    #: the accepted inference batches scored (or not) by the model in service: aggregates only
    predictions: list[PredictionBatch]

    @property
    def decisions(self) -> list[Approval]:
        """Human decisions on runs (approve, reject, override): the kill switch's rows left out."""
        return [a for a in self.approvals if a.decision not in KILL_SWITCH_DECISIONS]

    @property
    def overrides(self) -> list[Approval]:
        return [a for a in self.approvals if a.decision in OVERRIDE_DECISIONS]


def _period_evidence(session: Session, start: datetime, end: datetime) -> _PeriodEvidence:
    results = session.execute(
        select(CheckResultRecord, CheckRun)
        .join(CheckRun, CheckResultRecord.check_run_id == CheckRun.id)
        .where(CheckResultRecord.created_at >= start, CheckResultRecord.created_at < end)
        .order_by(CheckResultRecord.created_at, CheckResultRecord.id)
    ).all()
    audit_count = (
        session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.ts >= start, AuditEvent.ts < end, AuditEvent.action != ATTESTATION_ACTION)
        )
        or 0
    )
    return _PeriodEvidence(
        results=[(r, run) for r, run in results],
        approvals=list(
            session.scalars(
                select(Approval)
                .where(Approval.decided_at >= start, Approval.decided_at < end)
                .order_by(Approval.decided_at, Approval.id)
            )
        ),
        incidents=list(
            session.scalars(select(Incident).where(Incident.detected_at >= start, Incident.detected_at < end))
        ),
        audit_count=int(audit_count),
        models=list(
            session.scalars(
                select(ModelVersion)
                .where(ModelVersion.created_at >= start, ModelVersion.created_at < end)
                .order_by(ModelVersion.use_case, ModelVersion.version)
            )
        ),
        attestations=list_attestations(session),
        predictions=scored_batches(session, start, end),
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


@dataclass
class _Assessment:
    """The evidence of one engagement, what shows it kept and what it falls short of."""

    evidence: dict[str, Any]
    #: short French sentences: the automated evidence found (empty: none in the period)
    found: list[str]
    #: short French sentences: the failures left standing
    gaps: list[str]


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _check_evidence(eng: Engagement, period: _PeriodEvidence, out: _Assessment) -> None:
    """The results of the engagement's controls, and the overrides that set one of them aside.

    Only checks named in ``controls`` count: a result that merely carries the engagement's id in its
    ``engagements`` is not evidence for it.
    """
    controls = set(eng.controls)
    matched = [(r, run) for r, run in period.results if r.check in controls]
    counts = {"pass": 0, "warn": 0, "fail": 0}
    for r, _ in matched:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    # A kill switch "fail" is a run refused because a person suspended the model: human control at
    # work (Maîtrise humaine 2), counted with the suspensions, not a failure left standing.
    failed = [(r, run) for r, run in matched if r.verdict == "fail" and r.check != CheckName.KILL_SWITCH]
    overridden = [a for a in period.overrides if set(a.overridden_checks or []) & controls]
    overrides = period.overrides if "overrides" in eng.sources else overridden
    out.evidence.update(
        {
            "results": len(matched),
            "runs": len({run.id for _, run in matched}),
            **counts,
            "checks": sorted({r.check for r, _ in matched}),
            "last_run": _last_run(matched[-1] if matched else None),
            "failures": [
                {
                    "run_pk": run.id,
                    "use_case": run.use_case,
                    "run_id": run.run_id,
                    "check": r.check,
                    "dataset": r.dataset or None,
                    "summary": mask_personal_values(render_summary(r.summary, r.message_id, r.message_params, "fr")),
                    "at": iso_utc(r.created_at),
                }
                for r, run in failed
            ][-20:],
            "overrides": len(overrides),
        }
    )
    if matched:
        out.found.append(f"{_plural(len(matched), 'résultat', 'résultats')} de {', '.join(sorted(controls))}")
    for check in sorted({r.check for r, _ in failed}):
        use_cases = sorted({run.use_case for r, run in failed if r.check == check})
        n = sum(1 for r, _ in failed if r.check == check)
        out.gaps.append(f"{check} en échec {n} fois ({', '.join(use_cases)})")
    if "overrides" in eng.sources:
        if overrides:
            out.found.append(_plural(len(overrides), "dérogation justifiée", "dérogations justifiées"))
    else:
        for a in overridden:
            checks = ", ".join(sorted(set(a.overridden_checks or []) & controls))
            out.gaps.append(f"dérogation sur {checks} ({a.use_case})")


def _card_folder(card_path: str) -> Path:
    """The card's folder: stored relative to the models folder, or absolute in rows written before."""
    return (from_stored(card_path, get_settings().models_dir) or Path(card_path)).parent


def _has_ai_label(version: ModelVersion) -> bool:
    """The version's AI label (badge and metadata) lies beside its model card."""
    if not version.card_path:
        return False
    folder = _card_folder(version.card_path)
    return all((folder / name).is_file() for name in AI_LABEL_FILES)


def _source_evidence(eng: Engagement, period: _PeriodEvidence, chain: dict[str, Any] | None, out: _Assessment) -> None:
    """The engagement's other evidence, per its ``sources``."""
    evidence = out.evidence
    if "approvals" in eng.sources:
        evidence["approvals"] = len(period.decisions)
        if period.decisions:
            out.found.append(_plural(len(period.decisions), "décision humaine", "décisions humaines"))
    if "kill_switch" in eng.sources:
        suspensions = [a for a in period.approvals if a.decision == "suspend"]
        resumptions = [a for a in period.approvals if a.decision == "resume"]
        evidence["suspensions"], evidence["resumptions"] = len(suspensions), len(resumptions)
        if suspensions or resumptions:
            out.found.append(
                f"coupe-circuit : {_plural(len(suspensions), 'suspension', 'suspensions')}, "
                f"{_plural(len(resumptions), 'reprise', 'reprises')}"
            )
    if "incidents" in eng.sources:
        relevant = [i for i in period.incidents if not eng.incident_types or i.breach_type in eng.incident_types]
        still_open = [i for i in relevant if i.status != "resolved"]
        evidence["incidents"] = len(relevant)
        evidence["incidents_open"] = len(still_open)
        if relevant:
            out.found.append(_plural(len(relevant), "incident traité", "incidents traités"))
        if still_open:
            out.gaps.append(_plural(len(still_open), "incident non résolu", "incidents non résolus"))
    if "audit" in eng.sources:
        evidence["audit_events"] = period.audit_count
        if chain is not None:
            evidence["audit_chain_ok"] = chain.get("ok")
        if period.audit_count:
            out.found.append(_plural(period.audit_count, "événement d'audit", "événements d'audit"))
        if chain is not None and chain.get("ok") is False:
            out.gaps.append("chaîne d'audit rompue")
    if "predictions" in eng.sources:
        evidence_of_batches, found = prediction_evidence(period.predictions)
        out.evidence.update(evidence_of_batches)
        out.found.extend(found)
    if "model_cards" in eng.sources or "ai_labels" in eng.sources:
        evidence["model_versions"] = len(period.models)
        if period.models:
            out.found.append(_plural(len(period.models), "version de modèle publiée", "versions de modèle publiées"))
    if "model_cards" in eng.sources:
        evidence["model_cards"] = sum(1 for m in period.models if m.card_path)
        out.gaps.extend(
            f"{m.use_case} v{m.version} publiée sans fiche modèle" for m in period.models if not m.card_path
        )
    if "ai_labels" in eng.sources:
        labelled = [m for m in period.models if _has_ai_label(m)]
        evidence["ai_labels"] = len(labelled)
        out.gaps.extend(
            f"{m.use_case} v{m.version} publiée sans étiquette IA" for m in period.models if m not in labelled
        )


def _attestation_dict(attestation: Attestation, day: date) -> dict[str, Any]:
    return {
        **attestation.to_json_dict(),
        "valid": attestation.valid_on(day),
        "expired": attestation.expires_on < day,
    }


def _status(
    eng: Engagement, out: _Assessment, valid: Attestation | None, latest: Attestation | None
) -> tuple[str, list[str]]:
    """The engagement's status over the period and the reasons for it (see :func:`charter_report`)."""
    attestation_reasons: list[str] = []
    if valid is not None:
        attestation_reasons.append(
            mask_personal_values(
                f"attesté par {valid.attested_by} le {valid.attested_on:%d/%m/%Y}, valable jusqu'au "
                f"{valid.expires_on:%d/%m/%Y} ({valid.document_ref})"
            )
        )
    elif latest is not None:
        attestation_reasons.append(f"attestation expirée le {latest.expires_on:%d/%m/%Y}")
    if eng.kind is EngagementKind.ORGANISATIONAL:
        if valid is not None:
            return STATUS_ATTESTED, attestation_reasons
        return STATUS_NOT_EVALUATED, [*attestation_reasons, "aucune attestation valide sur la période"]
    automated = bool(out.found or out.gaps)
    if eng.kind is EngagementKind.MIXED:
        if not automated:
            if valid is not None:
                return STATUS_ATTESTED, [*attestation_reasons, "aucune preuve automatique sur la période"]
            return STATUS_NOT_EVALUATED, [*attestation_reasons, "aucune preuve ni attestation sur la période"]
        if valid is None:
            return STATUS_GAPS, [*out.gaps, MISSING_ATTESTATION, *attestation_reasons]
        if out.gaps:
            return STATUS_GAPS, [*out.gaps, *attestation_reasons]
        return STATUS_COMPLIANT, [*out.found, *attestation_reasons]
    if out.gaps:
        return STATUS_GAPS, out.gaps
    if out.found:
        return STATUS_COMPLIANT, out.found
    return STATUS_NOT_EVALUATED, ["aucun résultat de ses contrôles ni autre preuve sur la période"]


def _engagement_entries(period: _PeriodEvidence, chain: dict[str, Any] | None, day: date) -> list[dict[str, Any]]:
    """Each engagement with its evidence, its status and reasons, and the attestation shown for it."""
    current = current_attestations(period.attestations, day)
    latest = latest_attestations(period.attestations, day)
    entries = []
    for eng in load_engagements():
        assessment = _Assessment(evidence={}, found=[], gaps=[])
        _check_evidence(eng, period, assessment)
        _source_evidence(eng, period, chain, assessment)
        valid = current.get(eng.id)
        shown = valid or latest.get(eng.id)
        status, reasons = _status(eng, assessment, valid, latest.get(eng.id))
        entries.append(
            {
                **eng.to_json_dict(),
                "needs_attestation": eng.needs_attestation,
                "status": status,
                "status_reasons": reasons,
                "attestation": _attestation_dict(shown, day) if shown and eng.needs_attestation else None,
                "evidence": assessment.evidence,
            }
        )
    return entries


def charter_report(
    session: Session,
    *,
    start: datetime,
    end: datetime,
    chain: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Each of the charter's engagements with its controls, the evidence from [start, end) and its status.

    Evidence of an engagement is only what its definition names: the results of the checks in its
    ``controls`` (counted by verdict, the last run and the failures) and, per its ``sources``, human
    decisions, overrides, the kill switch's suspensions and resumptions, incidents of its
    ``incident_types``, audit events and the chain's state, model versions published with their card
    and with their AI label (``ai_label.svg`` and ``ai_label.json`` beside the card). A check that
    merely carries the engagement's id in ``engagements`` does not count.

    Failures left standing, listed in ``status_reasons``: any ``fail`` of a control in the period (a later
    pass does not erase it), any override of one of its controls (for an engagement whose sources
    include ``overrides``, overrides are its evidence instead), any incident of its types not resolved,
    a broken audit chain, a version published in the period without its card or its AI label.

    Status, exactly one of :data:`STATUSES`:

    * automated: ``contrôlé — écarts`` with a failure; ``contrôlé — conforme`` with evidence and no
      failure; ``non évalué`` when its controls never ran and its sources hold nothing;
    * organisational: ``attesté`` with an attestation valid on the period's last day (given on or
      before it, not expired), else ``non évalué``; an expired attestation counts as missing;
    * mixed: the automated part as above, and then ``contrôlé — conforme`` only with a valid
      attestation (``contrôlé — écarts`` with "attestation du Comité manquante" without one);
      ``attesté`` with the attestation alone; ``non évalué`` with neither.
    """
    period = _period_evidence(session, start, end)
    engagements = _engagement_entries(period, chain, last_day(end))
    statuses = [e["status"] for e in engagements]
    return {
        "title": "Rapport de la charte IA — Métropole Aix-Marseille-Provence",
        "period": {"start": iso_utc(start), "end": iso_utc(end)},
        "generated_at": iso_utc(now or datetime.now(UTC)),
        "audit_chain": chain,
        "totals": {
            "engagements": len(engagements),
            "runs": len({run.id for _, run in period.results}),
            "results": len(period.results),
            "approvals": len(period.decisions),
            "overrides": len(period.overrides),
            "incidents": len(period.incidents),
            "attestations": sum(1 for e in engagements if e["attestation"] and e["attestation"]["valid"]),
            "by_status": {s: statuses.count(s) for s in STATUSES},
        },
        "engagements": engagements,
    }
