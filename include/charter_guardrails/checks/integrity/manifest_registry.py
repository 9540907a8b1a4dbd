"""Manifests in the ledger: registering them, finding the active one, recording each verification.

Manifests are audited rows: registering or superseding one appends an audit-chain event whose
digest covers the row, so a manifest edited in the database is caught by ``charter audit verify``
as well as by its own signature. SQLAlchemy and the ledger modules are imported inside the
functions, so that ``charter verify`` can import this module before it has started hashing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from charter_guardrails.core.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from charter_guardrails.checks.integrity.manifest import SignedManifest
    from charter_guardrails.checks.integrity.outcome import Verification
    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.ledger.models import DatasetRecord, Manifest

ACTOR = "charter-guardrails"


def parse_dataset_ref(dataset: str, use_case: str | None = None) -> tuple[str, str]:
    """``citizen_requests.training`` or (``--use-case citizen_requests``, ``training``) → (use case, dataset).

    :raises ConfigError: when the use case is missing or contradicts the dotted form.
    """
    if "." in dataset:
        prefix, _, name = dataset.partition(".")
        if use_case and use_case != prefix:
            raise ConfigError(f"--use-case {use_case!r} contradicts the dataset id {dataset!r}")
        use_case = prefix
    else:
        name = dataset
    if not use_case or not name:
        raise ConfigError(
            f"dataset {dataset!r} needs its use case: "
            "write USE_CASE.DATASET (e.g. citizen_requests.training) or add --use-case"
        )
    return use_case, name


def load_policy(use_case: str) -> UseCasePolicy:
    """The policy of ``use_case`` (:func:`charter_guardrails.core.policy.load_policy`), imported on first use."""
    from charter_guardrails.core.policy import load_policy as load

    return load(use_case)


def ensure_dataset_record(session: Session, policy: UseCasePolicy, dataset: str, location: str | Path) -> DatasetRecord:
    """The ledger's row of ``dataset``; ``location`` is its file, or its table for ``format: sql``."""
    from charter_guardrails.ledger.store import ensure_dataset

    spec = policy.dataset(dataset)
    return ensure_dataset(
        session,
        use_case=policy.id,
        name=dataset,
        format=spec.format.value,
        location=str(location),
        personal_data=spec.personal_data,
    )


def find_dataset_record(session: Session, use_case: str, dataset: str) -> DatasetRecord | None:
    from sqlalchemy import select

    from charter_guardrails.ledger.models import DatasetRecord

    return session.scalars(
        select(DatasetRecord).where(DatasetRecord.use_case == use_case, DatasetRecord.name == dataset)
    ).first()


def active_manifest(session: Session, use_case: str, dataset: str) -> Manifest | None:
    """The latest active manifest of a dataset, if one was registered."""
    from sqlalchemy import select

    from charter_guardrails.ledger.models import DatasetRecord, Manifest

    return session.scalars(
        select(Manifest)
        .join(DatasetRecord, DatasetRecord.id == Manifest.dataset_id)
        .where(DatasetRecord.use_case == use_case, DatasetRecord.name == dataset, Manifest.status == "active")
        .order_by(Manifest.id.desc())
        .limit(1)
    ).first()


def store_manifest(
    session: Session, signed: SignedManifest, *, policy: UseCasePolicy, dataset: str, actor: str = ACTOR
) -> Manifest:
    """Record ``signed`` as the dataset's active manifest; the previous one becomes ``superseded``. Both are audited."""
    from sqlalchemy import select

    from charter_guardrails.ledger.audit import append_event
    from charter_guardrails.ledger.models import Manifest

    doc = signed.document
    record = ensure_dataset_record(session, policy, dataset, doc.get("location") or doc["table"])
    for old in session.scalars(select(Manifest).where(Manifest.dataset_id == record.id, Manifest.status == "active")):
        old.status = "superseded"
        append_event(
            session,
            actor=actor,
            action="manifest.superseded",
            subject=old,
            use_case=policy.id,
            run_id=doc.get("run_id"),
            payload={"dataset": dataset},
        )
    row = Manifest(
        dataset_id=record.id,
        run_id=doc.get("run_id"),
        file_name=doc["file_name"],
        size_bytes=doc["size_bytes"],
        row_count=doc.get("row_count"),
        algorithm=doc["algorithm"],
        chunk_size=doc["chunk_size"],
        merkle_root=doc["merkle_root"],
        schema_fingerprint=doc.get("schema_fingerprint"),
        document=doc,
        signature=signed.signature,
        key_id=signed.key_id,
        status="active",
    )
    session.add(row)
    append_event(
        session,
        actor=actor,
        action="manifest.registered",
        subject=row,
        use_case=policy.id,
        run_id=doc.get("run_id"),
        payload={
            "dataset": dataset,
            "merkle_root": doc["merkle_root"],
            "size_bytes": doc["size_bytes"],
            "key_id": signed.key_id,
        },
    )
    return row


def record_verification(session: Session, verification: Verification, *, dataset_id: int, run_id: str | None) -> None:
    """One row in ``manifest_verifications`` per verification, whatever its outcome.

    A retry of the same run adds none.
    """
    from sqlalchemy import select

    from charter_guardrails.ledger.models import ManifestVerification

    details = verification.to_json_dict()
    if run_id is not None and any(
        row.details == details
        for row in session.scalars(
            select(ManifestVerification).where(
                ManifestVerification.run_id == run_id,
                ManifestVerification.dataset_id == dataset_id,
                ManifestVerification.manifest_id == verification.manifest_id,
                ManifestVerification.outcome == verification.outcome.value,
            )
        )
    ):
        return
    session.add(
        ManifestVerification(
            manifest_id=verification.manifest_id,
            dataset_id=dataset_id,
            run_id=run_id,
            outcome=verification.outcome.value,
            details=details,
        )
    )
    session.flush()
