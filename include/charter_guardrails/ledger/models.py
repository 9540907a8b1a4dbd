"""The ledger's tables (SQLAlchemy 2). The schema is owned by the alembic migrations in
``migrations/versions``; a test fails when these models and the migrations drift apart.

Rows never carry a raw personal value: PII findings hold counts and masked examples.
Rows of the audited tables (manifests, incidents, approvals, model versions, check runs, the alert
outbox) are covered by the audit chain: each change appends an event with a digest of the row, so an
edit made behind the ledger's back is detected by ``charter audit verify``. A check run's digest also
covers its results and their PII findings (``__digest_children__``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the ledger; use timezone-aware UTC")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class DatasetRecord(Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("use_case", "name", name="uq_datasets_use_case_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    format: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(Text)
    personal_data: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Manifest(Base):
    __tablename__ = "manifests"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    run_id: Mapped[str | None] = mapped_column(String(250))
    file_name: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    row_count: Mapped[int | None] = mapped_column(BigInteger)
    algorithm: Mapped[str] = mapped_column(String(16))
    chunk_size: Mapped[int] = mapped_column(Integer)
    merkle_root: Mapped[str] = mapped_column(String(128))
    schema_fingerprint: Mapped[str | None] = mapped_column(String(128))
    #: The full signed manifest document (chunk digests, row ranges, ...).
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    signature: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ManifestVerification(Base):
    __tablename__ = "manifest_verifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    manifest_id: Mapped[int | None] = mapped_column(ForeignKey("manifests.id"), index=True)
    dataset_id: Mapped[int] = mapped_column(ForeignKey("datasets.id"), index=True)
    run_id: Mapped[str | None] = mapped_column(String(250))
    outcome: Mapped[str] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    verified_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckRun(Base):
    """One guardrail run: a DAG run (or a CLI invocation) of one use case."""

    __tablename__ = "check_runs"
    __audited__ = True
    #: The run's digest covers, in canonical order, the row digests of its results and of their PII findings
    #: (:mod:`charter_guardrails.ledger.audit_rows`): a verdict flipped in ``check_results`` or a finding
    #: edited, deleted or inserted no longer matches the run's last event.
    __digest_children__: ClassVar[tuple[str, ...]] = ("check_results", "pii_findings")
    __table_args__ = (UniqueConstraint("use_case", "dag_id", "run_id", name="uq_check_runs_run"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case: Mapped[str] = mapped_column(String(64), index=True)
    dag_id: Mapped[str] = mapped_column(String(250))
    run_id: Mapped[str] = mapped_column(String(250))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    #: published | blocked | overridden | quarantined | passed | rejected (None while running)
    decision: Mapped[str | None] = mapped_column(String(32))
    blocked_by: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reports: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CheckResultRecord(Base):
    __tablename__ = "check_results"
    __table_args__ = (UniqueConstraint("check_run_id", "check", "dataset", name="uq_check_results_check"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_run_id: Mapped[int] = mapped_column(ForeignKey("check_runs.id"), index=True)
    check: Mapped[str] = mapped_column(String(64))
    dataset: Mapped[str] = mapped_column(String(128), default="")
    verdict: Mapped[str] = mapped_column(String(8))
    severity: Mapped[str] = mapped_column(String(16))
    engagements: Mapped[list[Any]] = mapped_column(JSON, default=list)
    summary: Mapped[str] = mapped_column(Text)
    #: The summary as a message id with its parameters (``core.messages``), to render it in French; null for a
    #: free-text summary and for the rows written before messages existed.
    message_id: Mapped[str | None] = mapped_column(Text)
    message_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    report_path: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PiiFinding(Base):
    """Masked findings only: never a raw value."""

    __tablename__ = "pii_findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_result_id: Mapped[int] = mapped_column(ForeignKey("check_results.id"), index=True)
    column: Mapped[str] = mapped_column(String(256))
    entity_type: Mapped[str] = mapped_column(String(64))
    count: Mapped[int] = mapped_column(BigInteger)
    share: Mapped[float] = mapped_column(Float)
    mean_score: Mapped[float] = mapped_column(Float)
    max_score: Mapped[float] = mapped_column(Float)
    masked_examples: Mapped[list[Any]] = mapped_column(JSON, default=list)
    allowed: Mapped[bool] = mapped_column(Boolean, default=False)


class Incident(Base):
    """A security or GDPR incident, with the GDPR Art. 33(3) fields."""

    __tablename__ = "incidents"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: Idempotency key: one incident per (kind, dataset, run); re-running a task does not duplicate it.
    key: Mapped[str] = mapped_column(String(400), unique=True)
    #: integrity | confidentiality | availability | gdpr_compliance
    breach_type: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    use_case: Mapped[str] = mapped_column(String(64), index=True)
    dataset: Mapped[str | None] = mapped_column(String(128))
    run_id: Mapped[str | None] = mapped_column(String(250))
    title: Mapped[str] = mapped_column(Text)
    #: Art. 33(3)(a): nature of the breach.
    nature: Mapped[str] = mapped_column(Text)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    data_subject_categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    approx_data_subjects: Mapped[int | None] = mapped_column(BigInteger)
    personal_data_categories: Mapped[list[Any]] = mapped_column(JSON, default=list)
    approx_records: Mapped[int | None] = mapped_column(BigInteger)
    #: Art. 33(3)(c) and (d).
    likely_consequences: Mapped[str] = mapped_column(Text)
    measures_taken: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: Art. 33(3)(b).
    dpo_contact: Mapped[str] = mapped_column(Text)
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: Art. 33(1): 72 hours after detection.
    notify_deadline: Mapped[datetime] = mapped_column()
    #: open | acknowledged | resolved
    status: Mapped[str] = mapped_column(String(16), default="open")
    acknowledged_by: Mapped[str | None] = mapped_column(String(256))
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(256))
    resolved_at: Mapped[datetime | None] = mapped_column()
    comments: Mapped[list[Any]] = mapped_column(JSON, default=list)
    #: Art. 33: to_notify | notified | not_required (None while nobody decided), who and when.
    art33_decision: Mapped[str | None] = mapped_column(String(16))
    art33_decided_by: Mapped[str | None] = mapped_column(String(256))
    art33_decided_at: Mapped[datetime | None] = mapped_column()
    #: When ``notified``: the day, the supervisory authority (e.g. CNIL) and its reference.
    art33_notified_on: Mapped[date | None] = mapped_column(Date)
    art33_authority: Mapped[str | None] = mapped_column(String(128))
    art33_reference: Mapped[str | None] = mapped_column(String(256))
    #: When ``not_required``: why the breach is unlikely to result in a risk (Art. 33(1)).
    art33_rationale: Mapped[str | None] = mapped_column(Text)
    #: Art. 34: communicated | not_required (None while nobody decided), who and when.
    art34_decision: Mapped[str | None] = mapped_column(String(16))
    art34_decided_by: Mapped[str | None] = mapped_column(String(256))
    art34_decided_at: Mapped[datetime | None] = mapped_column()
    #: When ``communicated``: the day and the channel used to tell the data subjects.
    art34_communicated_on: Mapped[date | None] = mapped_column(Date)
    art34_channel: Mapped[str | None] = mapped_column(String(256))
    #: When ``not_required``: the Art. 34(3) ground, ``a``, ``b`` or ``c``.
    art34_ground: Mapped[str | None] = mapped_column(String(1))

    #: Columns added after the table's first rows were digested: a row digest that leaves them out while
    #: they are empty matches the audit events written before they existed.
    __digest_optional__: ClassVar[frozenset[str]] = frozenset(
        {
            "art33_decision",
            "art33_decided_by",
            "art33_decided_at",
            "art33_notified_on",
            "art33_authority",
            "art33_reference",
            "art33_rationale",
            "art34_decision",
            "art34_decided_by",
            "art34_decided_at",
            "art34_communicated_on",
            "art34_channel",
            "art34_ground",
        }
    )


class AlertOutbox(Base):
    """Alerts to deliver. Written in the incident's transaction; a relay delivers them at least once.

    An approval notice of a model refresh (``payload["kind"]`` ``approval_requested`` or
    ``approval_timed_out``) has no incident.
    """

    __tablename__ = "alert_outbox"
    __audited__ = True
    #: Delivery bookkeeping that changes on every attempt: left out of the row digest, so that a retry appends
    #: no event. The status (pending, delivered, dead, superseded) and ``delivered_at`` are covered.
    __digest_excluded__: ClassVar[frozenset[str]] = frozenset({"attempts", "next_attempt_at", "last_error"})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    recipient: Mapped[str] = mapped_column(Text)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: pending | delivered | dead | superseded (a reminder or escalation that no longer holds)
    status: Mapped[str] = mapped_column(String(16), default="pending", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Approval(Base):
    """A human decision: approve, reject, override (with justification), suspend or resume."""

    __tablename__ = "approvals"
    __audited__ = True

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str | None] = mapped_column(String(250))
    decision: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(256))
    justification: Mapped[str | None] = mapped_column(Text)
    overridden_checks: Mapped[list[Any]] = mapped_column(JSON, default=list)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __audited__ = True
    __table_args__ = (UniqueConstraint("use_case", "version", name="uq_model_versions_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    use_case: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(String(250))
    #: candidate | production | retired
    status: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    artifact_path: Mapped[str | None] = mapped_column(Text)
    artifact_sha256: Mapped[str | None] = mapped_column(String(64))
    card_path: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[str | None] = mapped_column(String(256))
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    suspended_by: Mapped[str | None] = mapped_column(String(256))
    suspended_at: Mapped[datetime | None] = mapped_column()
    suspend_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: When the version was retired (None for older rows: retention then reads the ``model.retired`` event).
    retired_at: Mapped[datetime | None] = mapped_column()
    __digest_optional__: ClassVar[frozenset[str]] = frozenset({"retired_at"})


class AuditEvent(Base):
    """Append-only, hash-chained: ``hash = SHA-256(canonical(event) ‖ prev_hash)``."""

    __tablename__ = "audit_events"
    #: The last event of each audited row is found through this index, without reading the whole chain.
    __table_args__ = (Index("ix_audit_events_subject", "subject_type", "subject_id", "seq"),)

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ts: Mapped[datetime] = mapped_column()
    actor: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(64))
    subject_type: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    use_case: Mapped[str | None] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(250))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditCheckpoint(Base):
    """A signed chain head: Ed25519 over (seq, hash)."""

    __tablename__ = "audit_checkpoints"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    head_hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(32))
    signed_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditVerification(Base):
    """A signed verification of the audit chain: how far (``seq``, ``head_hash``), how (``full`` or
    ``incremental``), when and with what result.

    An incremental verification starts after the latest one that passed, once its signature and the
    event at its ``seq`` are checked again; the view shows the latest ``full`` one. Signed with the
    ledger's Ed25519 key over every column but ``id``, ``signature`` and ``key_id``, so it verifies with
    the public key only and an edit behind the ledger's back is seen.
    """

    __tablename__ = "audit_verifications"
    __table_args__ = (
        Index("ix_audit_verifications_ok_seq", "ok", "seq"),
        Index("ix_audit_verifications_mode_verified_at", "mode", "verified_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: full | incremental
    mode: Mapped[str] = mapped_column(String(16))
    #: The last event verified (0 for an empty chain) and its hash.
    seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    ok: Mapped[bool] = mapped_column(Boolean)
    #: Events read by this verification, the problems it found and the first broken event.
    events: Mapped[int] = mapped_column(BigInteger)
    problems: Mapped[int] = mapped_column(Integer)
    first_broken: Mapped[int | None] = mapped_column(BigInteger)
    seconds: Mapped[float] = mapped_column(Float)
    verified_at: Mapped[datetime] = mapped_column()
    signature: Mapped[str] = mapped_column(Text)
    key_id: Mapped[str] = mapped_column(String(32))


from charter_guardrails.ledger.models_predictions import PredictionBatch  # noqa: E402 - it needs Base
from charter_guardrails.ledger.models_retention import DeletedFile, LegalHold  # noqa: E402 - they need Base

_AUDITED = (Manifest, Incident, Approval, ModelVersion, CheckRun, AlertOutbox, LegalHold, DeletedFile, PredictionBatch)
AUDITED_MODELS: dict[str, type[Base]] = {m.__tablename__: m for m in _AUDITED}
