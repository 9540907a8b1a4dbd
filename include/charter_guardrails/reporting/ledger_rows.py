"""Ledger rows as JSON-safe dicts for the governance view, with every free text masked.

A check result's ``summary`` is in French (rendered from its message), ``summary_en`` is the stored English one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from charter_guardrails.core.messages import render_summary
from charter_guardrails.ledger.models import Approval, CheckResultRecord, CheckRun, Incident, ModelVersion, PiiFinding
from charter_guardrails.reporting.scrubbing import mask_personal_values, mask_tree


def iso_utc(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="seconds") if value else None


def run_dict(run: CheckRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "use_case": run.use_case,
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "started_at": iso_utc(run.started_at),
        "finished_at": iso_utc(run.finished_at),
        "decision": run.decision,
        "blocked_by": list(run.blocked_by or []),
        "reports": mask_tree(run.reports or {}),
    }


def result_dict(row: CheckResultRecord) -> dict[str, Any]:
    return {
        "id": row.id,
        "check_run_id": row.check_run_id,
        "check": row.check,
        "dataset": row.dataset or None,
        "verdict": row.verdict,
        "severity": row.severity,
        "engagements": list(row.engagements or []),
        # The view reads French: the summary rendered from its message, the stored English one otherwise.
        "summary": mask_personal_values(render_summary(row.summary, row.message_id, row.message_params, "fr")),
        "summary_en": mask_personal_values(row.summary),
        "message_id": row.message_id,
        "metrics": dict(row.metrics or {}),
        "evidence": mask_tree(row.evidence or {}),
        "report_path": row.report_path,
        "created_at": iso_utc(row.created_at),
    }


def finding_dict(row: PiiFinding) -> dict[str, Any]:
    # masked_examples are masked by the scanner; masked again here in case a raw one slipped in.
    return {
        "column": row.column,
        "entity_type": row.entity_type,
        "count": row.count,
        "share": row.share,
        "mean_score": row.mean_score,
        "max_score": row.max_score,
        "allowed": row.allowed,
        "masked_examples": [mask_personal_values(str(e)) for e in (row.masked_examples or [])],
    }


def time_left(deadline: datetime, now: datetime | None = None) -> dict[str, Any]:
    """Time left on the GDPR Art. 33 72-hour deadline, with a French label."""
    now = now or datetime.now(UTC)
    seconds = int((deadline - now).total_seconds())
    hours, minutes = divmod(abs(seconds) // 60, 60)
    span = f"{hours} h {minutes:02d} min"
    return {
        "seconds": seconds,
        "overdue": seconds < 0,
        "label": f"dépassé de {span}" if seconds < 0 else f"{span} restantes",
    }


def incident_dict(row: Incident, now: datetime | None = None) -> dict[str, Any]:
    """Every GDPR Art. 33(3) field of an incident, and the time left to notify."""
    data = {
        "id": row.id,
        "key": row.key,
        "breach_type": row.breach_type,
        "severity": row.severity,
        "use_case": row.use_case,
        "dataset": row.dataset,
        "run_id": row.run_id,
        "title": mask_personal_values(row.title),
        "status": row.status,
        "nature": mask_personal_values(row.nature),
        "facts": mask_tree(row.facts or {}),
        "data_subject_categories": list(row.data_subject_categories or []),
        "approx_data_subjects": row.approx_data_subjects,
        "personal_data_categories": list(row.personal_data_categories or []),
        "approx_records": row.approx_records,
        "likely_consequences": mask_personal_values(row.likely_consequences),
        "measures_taken": mask_tree(list(row.measures_taken or [])),
        "dpo_contact": row.dpo_contact,
        "detected_at": iso_utc(row.detected_at),
        "notify_deadline": iso_utc(row.notify_deadline),
        "acknowledged_by": row.acknowledged_by,
        "acknowledged_at": iso_utc(row.acknowledged_at),
        "resolved_by": row.resolved_by,
        "resolved_at": iso_utc(row.resolved_at),
        "comments": mask_tree(list(row.comments or [])),
    }
    data["time_left"] = None if row.status == "resolved" else time_left(row.notify_deadline, now)
    return data


def model_dict(row: ModelVersion) -> dict[str, Any]:
    return {
        "id": row.id,
        "use_case": row.use_case,
        "version": row.version,
        "run_id": row.run_id,
        "status": row.status,
        "metrics": dict(row.metrics or {}),
        "artifact_sha256": row.artifact_sha256,
        "card_path": row.card_path,
        "approved_by": row.approved_by,
        "suspended": bool(row.suspended),
        "suspended_by": row.suspended_by,
        "suspended_at": iso_utc(row.suspended_at),
        "suspend_reason": row.suspend_reason,
        "created_at": iso_utc(row.created_at),
    }


def approval_dict(row: Approval) -> dict[str, Any]:
    return {
        "id": row.id,
        "use_case": row.use_case,
        "run_id": row.run_id,
        "decision": row.decision,
        "actor": row.actor,
        "justification": mask_personal_values(row.justification or ""),
        "overridden_checks": list(row.overridden_checks or []),
        "decided_at": iso_utc(row.decided_at),
    }
