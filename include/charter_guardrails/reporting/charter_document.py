"""The charter report as the document handed to the Comité de la Gouvernance Numérique: HTML, JSON and PDF,
each file signed with the ledger's Ed25519 key.

:func:`build_document` takes :func:`~charter_guardrails.reporting.charter_report.charter_report` as it is
and adds what the committee reads first: a summary per principle (engagements per status) and per use
case (runs, results by verdict, overrides, incidents, model versions), the open risks at the end of the
period, and the head of the audit chain when the document was built.

:func:`write_report` writes the formats asked for. The HTML comes from one template
(``templates/charter_document.html``, inline CSS, nothing to fetch); the PDF is that HTML laid out by
WeasyPrint on A4 landscape pages, with a URL fetcher that refuses anything but ``data:`` URLs. Beside
each file, ``<file>.sig.json`` holds its SHA-256, the chain head and an Ed25519 signature over both;
:func:`verify_report` checks it with the public key alone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from charter_guardrails.core import keys
from charter_guardrails.core.errors import ConfigError, ReportWriteError
from charter_guardrails.ledger.models import (
    Approval,
    AuditCheckpoint,
    AuditEvent,
    CheckResultRecord,
    CheckRun,
    Incident,
    ModelVersion,
)
from charter_guardrails.reporting.charter_report import OVERRIDE_DECISIONS, charter_report
from charter_guardrails.reporting.ledger_rows import iso_utc
from charter_guardrails.reporting.rendering import environment, fmt_date
from charter_guardrails.reporting.scrubbing import mask_personal_values
from charter_guardrails.reporting.vocabulary import (
    BREACH_TYPE_LABELS,
    DECISION_LABELS,
    PRINCIPLE_LABELS,
    SEVERITY_LABELS,
    STATUS_LABELS,
    VERDICT_LABELS,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMATS = ("html", "json", "pdf")
TEMPLATE = "charter_document.html"
SIGNATURE_SUFFIX = ".sig.json"
SIGNATURE_FORMAT = "charter-report-signature/1"
SIGNATURE_ALGORITHM = "Ed25519"
DOCUMENT_FORMAT = "charter-document/1"

#: Engagement statuses in the order the document lists them; a status not listed here follows them.
STATUS_ORDER = (
    "contrôlé — conforme",
    "contrôlé — écarts",
    "attesté",
    "non évalué",
    "respecté",
    "à surveiller",
    "manquement",
    "sans preuve",
)
#: Statuses that say no evidence was assessed for the engagement over the period.
NOT_EVALUATED = frozenset({"non évalué", "sans preuve"})
#: The colour class of each status in the HTML; unknown statuses are neutral.
_STATUS_CLASS = {
    "contrôlé — conforme": "ok",
    "respecté": "ok",
    "attesté": "attest",
    "contrôlé — écarts": "fail",
    "manquement": "fail",
    "à surveiller": "warn",
    "non évalué": "none",
    "sans preuve": "none",
}
_KIND_LABELS = {"automated": "automatisé", "organisational": "organisationnel", "mixed": "mixte"}
_EXPIRED = frozenset({"expired", "expirée", "expiré", "périmée", "périmé"})
_MISSING = frozenset({"missing", "manquante", "manquant", "absente", "absent", "none"})
_ATTESTATION_KEYS = ("attestation", "attestations")
_OTHER_EVIDENCE = (
    ("approvals", "décisions humaines"),
    ("incidents", "incidents"),
    ("incidents_open", "incidents non résolus"),
    ("audit_events", "événements d'audit"),
    ("audit_chain_ok", "chaîne d'audit vérifiée"),
    ("model_versions", "versions de modèle"),
    ("model_cards", "fiches modèle"),
)

log = logging.getLogger(__name__)


# --- the document -------------------------------------------------------------------------------------


def build_document(session: Session, start: datetime, end: datetime, now: datetime | None = None) -> dict[str, Any]:
    """The charter report of [start, end) with its summaries, open risks and the audit chain head.

    JSON-safe: every key of :func:`charter_report` is kept as it is, and the document adds
    ``summary`` (``principles``, ``use_cases``, ``by_status``), ``open_risks`` and ``chain_head``.
    """
    now = now or datetime.now(UTC)
    chain = _chain_status(session)
    report = charter_report(session, start=start, end=end, chain=chain, now=now)
    engagements = report.get("engagements") or []
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
            "not_evaluated": [_engagement_ref(e) for e in engagements if engagement_status(e) in NOT_EVALUATED],
            "attestations": _attestation_risks(report, now),
        },
        "chain_head": _chain_head(session, chain),
    }


def engagement_status(engagement: Mapping[str, Any]) -> str:
    """The engagement's status, wherever the report puts it (on the engagement or in its evidence)."""
    evidence = engagement.get("evidence") or {}
    return str(engagement.get("status") or evidence.get("status") or "non évalué")


def _status_reasons(engagement: Mapping[str, Any]) -> list[str]:
    evidence = engagement.get("evidence") or {}
    reasons = engagement.get("status_reasons") or evidence.get("status_reasons") or []
    if isinstance(reasons, str):
        reasons = [reasons]
    return [mask_personal_values(str(r)) for r in reasons]


def _label(engagement: Mapping[str, Any]) -> str:
    """``Maîtrise humaine 6``: the charter's own numbering."""
    principle = str(engagement.get("principle", ""))
    label = engagement.get("principle_label") or PRINCIPLE_LABELS.get(principle, principle)
    return f"{label} {engagement.get('number', '')}".strip()


def _engagement_ref(engagement: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": engagement.get("id"),
        "label": _label(engagement),
        "status": engagement_status(engagement),
        "reasons": _status_reasons(engagement),
    }


def ordered_statuses(statuses: Iterable[str]) -> list[str]:
    """The statuses present, known ones in :data:`STATUS_ORDER`, then any other in order of appearance."""
    present = list(dict.fromkeys(statuses))
    return [s for s in STATUS_ORDER if s in present] + [s for s in present if s not in STATUS_ORDER]


def _count_statuses(engagements: list[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(engagement_status(e) for e in engagements)
    return {s: counts[s] for s in ordered_statuses(engagement_status(e) for e in engagements)}


def _principle_summary(engagements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per principle, in charter order: how many engagements, and how many per status."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in engagements:
        groups.setdefault(str(e.get("principle")), []).append(e)
    return [
        {
            "principle": principle,
            "label": items[0].get("principle_label") or PRINCIPLE_LABELS.get(principle, principle),
            "engagements": len(items),
            "by_status": dict(Counter(engagement_status(e) for e in items)),
        }
        for principle, items in groups.items()
    ]


def _use_case_summary(session: Session, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Per use case over [start, end): runs and their decisions, results by verdict, overrides,
    incidents (open and total) and model versions published."""
    rows: dict[str, dict[str, Any]] = {}

    def row(use_case: str) -> dict[str, Any]:
        return rows.setdefault(
            use_case,
            {
                "use_case": use_case,
                "runs": 0,
                "decisions": {},
                "results": {"pass": 0, "warn": 0, "fail": 0},
                "overrides": 0,
                "approvals": 0,
                "incidents": {"open": 0, "total": 0},
                "model_versions": 0,
            },
        )

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
            "summary": mask_personal_values(r.summary),
            "at": iso_utc(r.created_at),
            "overridden": (run.use_case, run.run_id, r.check) in overridden,
        }
        for r, run in standing
    ]


def _attestations_of(engagement: Mapping[str, Any]) -> list[Any] | None:
    """The engagement's attestation(s) when the report carries any (``None`` when it has no such key)."""
    evidence = engagement.get("evidence") or {}
    for source in (engagement, evidence):
        for key in _ATTESTATION_KEYS:
            if key in source:
                value = source[key]
                if value is None:
                    return []
                return list(value) if isinstance(value, list | tuple) else [value]
    return None


def _expiry(attestation: Mapping[str, Any]) -> datetime | None:
    for key in ("expires_on", "valid_until", "expires_at", "expires"):
        value = attestation.get(key)
        if isinstance(value, str) and value:
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                continue
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _attestation_state(attestation: Any, now: datetime) -> str:
    """``valid``, ``expired`` or ``missing`` for one attestation as the report gives it."""
    if not isinstance(attestation, Mapping):
        return "missing" if not attestation or str(attestation).lower() in _MISSING else "valid"
    status = str(attestation.get("status") or attestation.get("state") or "").lower()
    if status in _EXPIRED or attestation.get("expired") is True:
        return "expired"
    if status in _MISSING or attestation.get("missing") is True or attestation.get("valid") is False:
        return "missing"
    expiry = _expiry(attestation)
    if expiry is not None and expiry <= now:
        return "expired"
    return "valid"


def _attestation_risks(report: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """Engagements whose attestation expired, or which need one and have none.

    Only when the report carries attestations (on its engagements, or an ``attestations`` key at the top):
    a report without them says nothing about attestations, so the document does not either.
    """
    engagements = report.get("engagements") or []
    carried = {str(e.get("id")): _attestations_of(e) for e in engagements}
    if "attestations" not in report and all(v is None for v in carried.values()):
        return []
    risks = []
    for e in engagements:
        items = carried[str(e.get("id"))] or []
        states = [_attestation_state(a, now) for a in items]
        if "valid" in states:
            continue
        needs = bool(e.get("needs_attestation", str(e.get("kind", "automated")) != "automated"))
        if "expired" in states:
            state = "expired"
        elif needs or "missing" in states:
            state = "missing"
        else:
            continue
        risks.append({**_engagement_ref(e), "attestation": state})
    return risks


def _chain_status(session: Session) -> dict[str, Any]:
    """The audit chain verified with the public key(s); ``ok`` is ``None`` when it cannot be verified."""
    from charter_guardrails.ledger.audit import verify_chain

    try:
        report = verify_chain(session)
    except (ConfigError, OSError, ValueError) as exc:
        return {"ok": None, "events": None, "head_seq": None, "problems": [], "error": f"non vérifiable : {exc}"}
    data = report.to_json_dict()
    data["problems"] = data["problems"][:20]
    return data


def _chain_head(session: Session, chain: Mapping[str, Any]) -> dict[str, Any]:
    """The last event of the audit chain when the document is built, its signed checkpoint, and the verification."""
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
    }


# --- rendering ---------------------------------------------------------------------------------------


def _fmt_dt(value: Any) -> str:
    """An ISO date-time as ``dd/mm/yyyy HH:MM UTC``, an ISO date as ``dd/mm/yyyy``; ``—`` when there is none."""
    if not value:
        return "—"
    if isinstance(value, str) and len(value) == 10:
        return fmt_date(value)
    try:
        dt = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC).strftime("%d/%m/%Y %H:%M UTC")


def _fmt_value(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, int):
        return f"{value:,}".replace(",", "\u202f")
    return str(value)


def status_class(status: str) -> str:
    return _STATUS_CLASS.get(status, "other")


def _attestation_lines(engagement: Mapping[str, Any], now: datetime) -> list[str]:
    lines = []
    for a in _attestations_of(engagement) or []:
        if isinstance(a, Mapping):
            who = a.get("attested_by") or a.get("by")
            when = a.get("attested_on") or a.get("attested_at") or a.get("at")
            until = a.get("expires_on") or a.get("valid_until") or a.get("expires_at")
            state = {"valid": "valide", "expired": "expirée", "missing": "manquante"}[_attestation_state(a, now)]
            parts = [f"attestation {state}"]
            if who:
                parts.append(f"par {mask_personal_values(str(who))}")
            if when:
                parts.append(f"le {_fmt_dt(when)}")
            if until:
                parts.append(f"jusqu'au {_fmt_dt(until)}")
            lines.append(" ".join(parts))
        elif a:
            lines.append(f"attestation : {mask_personal_values(str(a))}")
    return lines


def _engagement_row(e: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """What one row of the engagements table shows, from the report's engagement as it is."""
    ev = e.get("evidence") or {}
    last = ev.get("last_run") or None
    status = engagement_status(e)
    results = int(ev.get("results") or 0)
    other = [f"dérogations : {_fmt_value(ev.get('overrides', 0))}"]
    other += [f"{label} : {_fmt_value(ev[key])}" for key, label in _OTHER_EVIDENCE if key in ev]
    return {
        "id": e.get("id"),
        "label": _label(e),
        "kind": _KIND_LABELS.get(str(e.get("kind")), str(e.get("kind") or "")),
        "text": e.get("text", ""),
        "evidence_kind": e.get("evidence_kind") or "",
        "controls": ", ".join(e.get("controls") or []) or "—",
        "sources": ", ".join(e.get("sources") or []),
        "results": (
            f"{results} ({VERDICT_LABELS['pass']} : {ev.get('pass', 0)}, {VERDICT_LABELS['warn']} : "
            f"{ev.get('warn', 0)}, {VERDICT_LABELS['fail']} : {ev.get('fail', 0)}) "
            f"sur {ev.get('runs', 0)} exécution(s)"
            if results
            else "aucun résultat"
        ),
        "last_run": (
            f"{_fmt_dt(last.get('at'))} · {last.get('use_case')} · "
            f"{VERDICT_LABELS.get(last.get('verdict'), str(last.get('verdict')))}"
            if isinstance(last, Mapping)
            else "—"
        ),
        "failures": [
            f"{f.get('use_case')} · {f.get('check')} : {mask_personal_values(str(f.get('summary', '')))}"
            for f in (ev.get("failures") or [])[-5:]
        ],
        "other": other,
        "attestations": _attestation_lines(e, now),
        "status": status,
        "status_class": status_class(status),
        "status_reasons": _status_reasons(e),
    }


def html_context(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The template's context: the document, and each engagement as the row it shows."""
    generated = doc.get("generated_at")
    now = datetime.fromisoformat(generated) if isinstance(generated, str) else datetime.now(UTC)
    now = now if now.tzinfo else now.replace(tzinfo=UTC)
    engagements = doc.get("engagements") or []
    principles: list[dict[str, Any]] = []
    for e in engagements:
        if not principles or principles[-1]["principle"] != e.get("principle"):
            principles.append({"principle": e.get("principle"), "label": e.get("principle_label"), "rows": []})
        principles[-1]["rows"].append(_engagement_row(e, now))
    summary = doc.get("summary") or {}
    return {
        "doc": doc,
        "statuses": list((summary.get("by_status") or {}).keys()),
        "groups": principles,
        "dt": _fmt_dt,
        "value": _fmt_value,
        "status_class": status_class,
        "labels": {
            "decision": DECISION_LABELS,
            "breach": BREACH_TYPE_LABELS,
            "severity": SEVERITY_LABELS,
            "incident_status": STATUS_LABELS,
        },
    }


def render_html(doc: Mapping[str, Any]) -> str:
    """The document as one standalone HTML page: inline CSS, no script, nothing to fetch."""
    return environment().get_template(TEMPLATE).render(**html_context(doc))


class _ProgressHandler(logging.Handler):
    def __init__(self, progress: Callable[[str], None]) -> None:
        super().__init__(logging.INFO)
        self._progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        self._progress(record.getMessage())


def render_pdf(html: str, *, progress: Callable[[str], None] | None = None) -> bytes:
    """``html`` laid out by WeasyPrint as a PDF (the template's ``@page``: A4 landscape).

    The URL fetcher accepts ``data:`` URLs only and any other URL stops the rendering: the PDF is made
    of the HTML alone, nothing is fetched. ``progress`` receives WeasyPrint's steps.
    """
    try:
        from weasyprint import HTML, PROGRESS_LOGGER
        from weasyprint.urls import URLFetcher
    except (ImportError, OSError) as exc:
        raise ConfigError(
            f"cannot render the PDF: WeasyPrint or its Pango library is missing ({exc}); "
            "install the pinned requirements (`make install`) and Debian's libpango-1.0-0"
        ) from exc
    handler = _ProgressHandler(progress) if progress else None
    previous_level = PROGRESS_LOGGER.level
    if handler:
        PROGRESS_LOGGER.addHandler(handler)
        PROGRESS_LOGGER.setLevel(logging.INFO)
    try:
        fetcher = URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)
        document = HTML(string=html, base_url=None, url_fetcher=fetcher).render()
        if progress:
            progress(f"{len(document.pages)} pages laid out")
        pdf = document.write_pdf()
    finally:
        if handler:
            PROGRESS_LOGGER.removeHandler(handler)
            PROGRESS_LOGGER.setLevel(previous_level)
    if not isinstance(pdf, bytes):
        raise ReportWriteError("WeasyPrint returned no PDF")
    return pdf


def render_json(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=2) + "\n"


# --- files and signatures ----------------------------------------------------------------------------


def export_name(doc: Mapping[str, Any]) -> str:
    """``rapport-charte-2026-01-01-2026-07-01``: the file name of the document, without its extension."""
    period = doc.get("period") or {}
    return f"rapport-charte-{str(period.get('start', ''))[:10]}-{str(period.get('end', ''))[:10]}"


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def _signed_message(fields: Mapping[str, Any]) -> bytes:
    """The bytes the signature covers: every field of the signature file but ``signature``, as canonical JSON."""
    payload = {k: v for k, v in fields.items() if k != "signature"}
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sign_report(path: Path, chain_head: Mapping[str, Any] | None = None, *, now: datetime | None = None) -> Path:
    """Write ``<path>.sig.json``: the file's SHA-256 and the chain head, signed with the ledger's Ed25519 key."""
    key = keys.load_signing_key()
    fields: dict[str, Any] = {
        "format": SIGNATURE_FORMAT,
        "file": path.name,
        "algorithm": SIGNATURE_ALGORITHM,
        "hash_algorithm": "SHA-256",
        "sha256": _sha256(path),
        "key_id": keys.key_id(key.public_key()),
        "signed_at": iso_utc(now or datetime.now(UTC)),
        "chain_head": {k: (chain_head or {}).get(k) for k in ("seq", "hash", "verified")},
    }
    fields["signature"], _ = keys.sign(_signed_message(fields), key)
    target = signature_path(path)
    _write_bytes(target, (json.dumps(fields, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    return target


@dataclass(frozen=True)
class VerifyResult:
    """The verification of a report file against its ``.sig.json``.

    ``ok``: the file is the one that was signed. Otherwise ``usable`` says whether a signature file
    could be read at all (``False``: missing or unreadable; ``True``: the file or the signature does not match).
    """

    ok: bool
    reason: str
    usable: bool
    path: Path
    signature_file: Path
    key_id: str | None = None
    signed_at: str | None = None
    chain_head: dict[str, Any] | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "reason": self.reason,
            "file": str(self.path),
            "signature_file": str(self.signature_file),
            "key_id": self.key_id,
            "signed_at": self.signed_at,
            "chain_head": self.chain_head,
        }


def verify_report(
    path: Path, public_key: Ed25519PublicKey | Mapping[str, Ed25519PublicKey], *, signature_file: Path | None = None
) -> VerifyResult:
    """Recompute the file's SHA-256 and check the Ed25519 signature of ``<path>.sig.json``.

    Needs only public keys: one key, or trusted keys by key id (the current key and retired ones).
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig_path = signature_file or signature_path(path)

    def result(ok: bool, reason: str, usable: bool, fields: Mapping[str, Any] | None = None) -> VerifyResult:
        fields = fields or {}
        head = fields.get("chain_head")
        return VerifyResult(
            ok,
            reason,
            usable,
            path,
            sig_path,
            key_id=fields.get("key_id"),
            signed_at=fields.get("signed_at"),
            chain_head=dict(head) if isinstance(head, Mapping) else None,
        )

    if not path.is_file():
        return result(False, f"{path} does not exist", usable=False)
    if not sig_path.is_file():
        return result(False, f"no signature file {sig_path}", usable=False)
    try:
        fields = json.loads(sig_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return result(False, f"the signature file {sig_path} is unreadable ({type(exc).__name__})", usable=False)
    if not isinstance(fields, dict) or not all(
        isinstance(fields.get(k), str) for k in ("sha256", "signature", "key_id")
    ):
        return result(False, f"the signature file {sig_path} lacks sha256, signature or key_id", usable=False)
    if fields.get("algorithm") != SIGNATURE_ALGORITHM:
        return result(False, f"unsupported signature algorithm {fields.get('algorithm')!r}", False, fields)
    trusted = {keys.key_id(public_key): public_key} if isinstance(public_key, Ed25519PublicKey) else dict(public_key)
    key = trusted.get(fields["key_id"])
    if key is None:
        return result(
            False,
            f"signed with key {fields['key_id']}, which is not the public key given ({', '.join(trusted) or 'none'})",
            True,
            fields,
        )
    actual = _sha256(path)
    if actual != fields["sha256"]:
        return result(
            False, f"the file changed after it was signed: SHA-256 {actual} instead of {fields['sha256']}", True, fields
        )
    if not keys.verify_signature(_signed_message(fields), fields["signature"], key):
        return result(False, "the signature does not match the signature file's content", True, fields)
    return result(True, f"signed by key {fields['key_id']} on {fields.get('signed_at')}", True, fields)


def _write_bytes(target: Path, data: bytes) -> None:
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportWriteError(f"cannot write {target}: {exc.strerror or exc}") from exc


def write_report(
    doc: Mapping[str, Any],
    out_dir: Path,
    formats: Iterable[str] = FORMATS,
    *,
    progress: Callable[[str], None] | None = None,
    sign: bool = True,
) -> dict[str, Path]:
    """Write the document in ``formats`` (``html``, ``json``, ``pdf``) into ``out_dir``, each signed beside it.

    Returns the path of each format written; its signature is ``<path>.sig.json``.
    """
    wanted = list(dict.fromkeys(formats))
    if unknown := sorted(set(wanted) - set(FORMATS)):
        raise ConfigError(f"unknown report format(s) {unknown}; use {', '.join(FORMATS)}")
    if not wanted:
        raise ConfigError(f"no report format asked for; use {', '.join(FORMATS)}")
    if sign:
        keys.load_signing_key()  # a missing key is a config error before anything is written
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReportWriteError(f"cannot create {out_dir}: {exc.strerror or exc}") from exc
    name = export_name(doc)
    html = render_html(doc) if {"html", "pdf"} & set(wanted) else ""
    written: dict[str, Path] = {}
    for fmt in wanted:
        target = out_dir / f"{name}.{fmt}"
        if fmt == "html":
            data = html.encode("utf-8")
        elif fmt == "json":
            data = render_json(doc).encode("utf-8")
        else:
            if progress:
                progress(f"rendering {target.name} with WeasyPrint")
            data = render_pdf(html, progress=progress)
        _write_bytes(target, data)
        if sign:
            sign_report(target, doc.get("chain_head"))
        written[fmt] = target
    return written


__all__ = [
    "FORMATS",
    "SIGNATURE_SUFFIX",
    "VerifyResult",
    "build_document",
    "engagement_status",
    "export_name",
    "html_context",
    "render_html",
    "render_json",
    "render_pdf",
    "sign_report",
    "signature_path",
    "verify_report",
    "write_report",
]
