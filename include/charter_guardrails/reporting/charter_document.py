"""The charter report as the document handed to the Comité de la Gouvernance Numérique.

:func:`build_document` takes :func:`~charter_guardrails.reporting.charter_report.charter_report` as it is
and adds what the committee reads first: a summary per principle (engagements per status) and per use
case (runs, results by verdict, overrides, incidents, model versions), the open risks at the end of the
period, and the head of the audit chain when the document was built.

The document is laid out as HTML by :mod:`~charter_guardrails.reporting.charter_document_html`, written
as HTML, JSON and PDF files by :mod:`~charter_guardrails.reporting.report_files` and each file signed by
:mod:`~charter_guardrails.reporting.report_signing`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from charter_guardrails.core.messages import render_summary
from charter_guardrails.ledger.models import (
    Approval,
    AuditCheckpoint,
    AuditEvent,
    CheckResultRecord,
    CheckRun,
    Incident,
    ModelVersion,
)
from charter_guardrails.reporting.charter_report import (
    OVERRIDE_DECISIONS,
    STATUS_NOT_EVALUATED,
    STATUSES,
    charter_report,
)
from charter_guardrails.reporting.ledger_rows import iso_utc
from charter_guardrails.reporting.scrubbing import mask_personal_values

DOCUMENT_FORMAT = "charter-document/1"
#: How an engagement that needs an attestation lacks a valid one (``open_risks.attestations``).
ATTESTATION_EXPIRED = "expired"
ATTESTATION_MISSING = "missing"


def build_document(session: Session, start: datetime, end: datetime, now: datetime | None = None) -> dict[str, Any]:
    """The charter report of [start, end) with its summaries, open risks and the audit chain head.

    JSON-safe: every key of :func:`charter_report` is kept as it is, and the document adds
    ``summary`` (``by_status``, ``principles``, ``use_cases``), ``open_risks`` (``incidents``,
    ``standing_failures``, ``not_evaluated``, ``attestations``) and ``chain_head``.
    """
    now = now or datetime.now(UTC)
    chain, chain_head = chain_section(session)
    report = charter_report(session, start=start, end=end, chain=chain, now=now)
    engagements: list[dict[str, Any]] = report["engagements"]
    return {
        **report,
        "document_format": DOCUMENT_FORMAT,
        "summary": {
            "by_status": _count_statuses(engagements),
            "principles": _principle_summary(engagements),
            "use_cases": _use_case_summary(session, start, end),
        },
        "open_risks": {
            "incidents": _open_incidents(session, end),
            "standing_failures": _standing_failures(session, start, end),
            "not_evaluated": [_engagement_ref(e) for e in engagements if e["status"] == STATUS_NOT_EVALUATED],
            "attestations": attestation_risks(engagements),
        },
        "chain_head": chain_head,
    }


def engagement_label(engagement: Mapping[str, Any]) -> str:
    """``Maîtrise humaine 6``: the charter's own numbering."""
    return f"{engagement['principle_label']} {engagement['number']}"


def status_reasons(engagement: Mapping[str, Any]) -> list[str]:
    """The reasons the report gives for the engagement's status, personal values masked."""
    return [mask_personal_values(reason) for reason in engagement["status_reasons"]]


def _engagement_ref(engagement: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": engagement["id"],
        "label": engagement_label(engagement),
        "status": engagement["status"],
        "reasons": status_reasons(engagement),
    }


def attestation_risks(engagements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The engagements that need an attestation and have no valid one on the period's last day.

    ``attestation`` says which: :data:`ATTESTATION_EXPIRED` (the newest one given has expired; its last
    valid day is ``expires_on``) or :data:`ATTESTATION_MISSING` (none was given).
    """
    risks = []
    for e in engagements:
        attestation = e["attestation"]
        if not e["needs_attestation"] or (attestation is not None and attestation["valid"]):
            continue
        expired = attestation is not None and attestation["expired"]
        risks.append(
            {
                **_engagement_ref(e),
                "attestation": ATTESTATION_EXPIRED if expired else ATTESTATION_MISSING,
                "expires_on": attestation["expires_on"] if attestation is not None else None,
            }
        )
    return risks


def _count_statuses(engagements: list[dict[str, Any]]) -> dict[str, int]:
    """Engagements per status, every status of :data:`STATUSES` in its order."""
    counts = Counter(e["status"] for e in engagements)
    return {s: counts[s] for s in STATUSES}


def _principle_summary(engagements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per principle, in charter order: how many engagements, and how many per status."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in engagements:
        groups.setdefault(e["principle"], []).append(e)
    return [
        {
            "principle": principle,
            "label": items[0]["principle_label"],
            "engagements": len(items),
            "by_status": dict(Counter(e["status"] for e in items)),
        }
        for principle, items in groups.items()
    ]


def _use_case_row(use_case: str) -> dict[str, Any]:
    return {
        "use_case": use_case,
        "runs": 0,
        "decisions": {},
        "results": {"pass": 0, "warn": 0, "fail": 0},
        "overrides": 0,
        "approvals": 0,
        "incidents": {"open": 0, "total": 0},
        "model_versions": 0,
    }


def _use_case_summary(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per use case over [start, end): runs and their decisions, results by verdict, overrides,
    incidents (open and total) and model versions published."""
    rows: dict[str, dict[str, Any]] = {}

    def row(use_case: str) -> dict[str, Any]:
        return rows.setdefault(use_case, _use_case_row(use_case))

    results = session.execute(
        select(CheckRun.id, CheckRun.use_case, CheckRun.decision, CheckResultRecord.verdict)
        .join(CheckRun, CheckResultRecord.check_run_id == CheckRun.id)
        .where(CheckResultRecord.created_at >= start, CheckResultRecord.created_at < end)
    ).all()
    runs: dict[str, dict[int, str | None]] = {}
    for run_pk, use_case, decision, verdict in results:
        counts = row(use_case)["results"]
        counts[verdict] = counts.get(verdict, 0) + 1
        runs.setdefault(use_case, {})[run_pk] = decision
    for use_case, decisions in runs.items():
        row(use_case)["runs"] = len(decisions)
        row(use_case)["decisions"] = dict(Counter(d or "running" for d in decisions.values()))
    for approval in session.scalars(select(Approval).where(Approval.decided_at >= start, Approval.decided_at < end)):
        item = row(approval.use_case)
        item["approvals"] += 1
        item["overrides"] += approval.decision in OVERRIDE_DECISIONS
    for incident in session.scalars(select(Incident).where(Incident.detected_at >= start, Incident.detected_at < end)):
        counts = row(incident.use_case)["incidents"]
        counts["total"] += 1
        counts["open"] += incident.status != "resolved"
    for model in session.scalars(
        select(ModelVersion).where(ModelVersion.created_at >= start, ModelVersion.created_at < end)
    ):
        row(model.use_case)["model_versions"] += 1
    return [rows[name] for name in sorted(rows)]


def _open_incidents(session: Session, end: datetime) -> list[dict[str, Any]]:
    """Incidents detected before the end of the period and not resolved now."""
    query = (
        select(Incident)
        .where(Incident.detected_at < end, Incident.status != "resolved")
        .order_by(Incident.detected_at, Incident.id)
    )
    return [
        {
            "id": i.id,
            "use_case": i.use_case,
            "breach_type": i.breach_type,
            "severity": i.severity,
            "status": i.status,
            "title": mask_personal_values(i.title),
            "detected_at": iso_utc(i.detected_at),
            "notify_deadline": iso_utc(i.notify_deadline),
        }
        for i in session.scalars(query.limit(200))
    ]


def _standing_failures(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Failures of the period that no later result of the same check on the same use case and dataset
    turned around before the end of the period; with whether a human overrode them."""
    latest: dict[tuple[str, str, str], tuple[CheckResultRecord, CheckRun]] = {}
    for result, run in session.execute(
        select(CheckResultRecord, CheckRun)
        .join(CheckRun, CheckResultRecord.check_run_id == CheckRun.id)
        .where(CheckResultRecord.created_at < end)
        .order_by(CheckResultRecord.created_at, CheckResultRecord.id)
    ).all():
        latest[(run.use_case, result.check, result.dataset or "")] = (result, run)
    standing = [(r, run) for r, run in latest.values() if r.verdict == "fail" and r.created_at >= start]
    overridden = {
        (a.use_case, a.run_id, check)
        for a in session.scalars(select(Approval).where(Approval.decided_at < end))
        if a.decision in OVERRIDE_DECISIONS
        for check in a.overridden_checks or []
    }
    standing.sort(key=lambda item: (item[0].created_at, item[0].id))
    return [
        {
            "use_case": run.use_case,
            "check": r.check,
            "dataset": r.dataset or None,
            "run_id": run.run_id,
            "summary": mask_personal_values(render_summary(r.summary, r.message_id, r.message_params, "fr")),
            "at": iso_utc(r.created_at),
            "overridden": (run.use_case, run.run_id, r.check) in overridden,
        }
        for r, run in standing
    ]


def chain_section(session: Session) -> tuple[dict[str, Any], dict[str, Any]]:
    """The audit chain's section of the document: its state (the charter report's ``audit_chain``) and its head
    (``chain_head``), from an incremental verification bounded like a page's, with the last full verification."""
    chain = _chain_status(session)
    return chain, _chain_head(session, chain)


def _chain_status(session: Session) -> dict[str, Any]:
    """The audit chain verified with the public key(s) from its last signed verification on, a bounded number
    of events (never the whole chain: that is the integrity monitor's daily run); ``ok`` is ``None`` when it
    cannot be verified here."""
    from charter_guardrails.ledger.audit_verify import chain_summary

    data = chain_summary(session)
    if data.get("error"):
        data["error"] = f"non vérifiable : {data['error']}"
    data["problems"] = data["problems"][:20]
    return data


def _chain_head(session: Session, chain: Mapping[str, Any]) -> dict[str, Any]:
    """The last event of the audit chain when the document is built, its signed checkpoint, the verification, and
    when the chain was last verified in full (and its result)."""
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).first()
    checkpoint = session.get(AuditCheckpoint, last.seq) if last is not None else None
    return {
        "seq": last.seq if last is not None else None,
        "hash": last.hash if last is not None else None,
        "at": iso_utc(last.ts) if last is not None else None,
        "signed": checkpoint is not None and checkpoint.head_hash == (last.hash if last else None),
        "key_id": checkpoint.key_id if checkpoint is not None else None,
        "verified": chain.get("ok"),
        "events": chain.get("events"),
        "problems": len(chain.get("problems") or []),
        "error": chain.get("error"),
        #: Verified from this event on (0: from the first one); the last full verification, or None.
        "since_seq": chain.get("since_seq"),
        "last_full_verification": chain.get("last_full"),
    }


__all__ = [
    "ATTESTATION_EXPIRED",
    "ATTESTATION_MISSING",
    "DOCUMENT_FORMAT",
    "attestation_risks",
    "build_document",
    "chain_section",
    "engagement_label",
    "status_reasons",
]
