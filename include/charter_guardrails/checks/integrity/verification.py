"""Register manifests in the ledger and verify files against them.

The file is hashed *outside* any database transaction (hashing 1 GiB takes about a second, and
SQLite takes its write lock at ``BEGIN``); only the short writes happen in a transaction.
Manifests are audited rows: registering or superseding one appends an audit-chain event whose
digest covers the row, so a manifest edited in the database is caught by ``charter audit verify``
as well as by its own signature.
"""

from __future__ import annotations

import ast
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.integrity.manifest import (
    INCIDENT_OUTCOMES,
    Comparison,
    Outcome,
    SignedManifest,
    check_signature,
    compare_file,
)
from charter_guardrails.core.settings import ConfigError, get_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from charter_guardrails.checks.integrity.hashing import FileDigest
    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.core.results import CheckResult
    from charter_guardrails.incidents.incident import IncidentDraft
    from charter_guardrails.ledger.models import DatasetRecord, Manifest

ENGAGEMENTS = ["surete.2"]
MEASURES_TAKEN = [
    "rafraîchissement bloqué (refresh blocked)",
    "jeu de données mis en quarantaine (dataset quarantined)",
]
ACTOR = "charter-guardrails"


def _head_revision_from_files() -> str | None:
    """The head migration id, read from the migration files without importing alembic (about 0.3 s of start-up).

    Returns None when the history is not a simple chain (then alembic itself decides).
    """
    from charter_guardrails.ledger.db import MIGRATIONS_DIR

    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target, expression = node.targets[0], node.value
            elif isinstance(node, ast.AnnAssign) and node.value is not None:
                target, expression = node.target, node.value
            else:
                continue
            if not isinstance(target, ast.Name) or target.id not in ("revision", "down_revision"):
                continue
            try:
                value = ast.literal_eval(expression)
            except ValueError:
                return None
            if target.id == "revision":
                revisions.add(str(value))
            elif value is not None:
                parents.update([value] if isinstance(value, str) else list(value))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


@functools.lru_cache(maxsize=8)
def _check_migrated(url: str) -> None:
    from charter_guardrails.ledger import db

    engine = db.get_engine(url)
    head = _head_revision_from_files()
    if head is None or db.current_revision(engine) != head:
        db.ensure_migrated(engine)  # alembic's own check, and its error message


@contextmanager
def light_ledger_session(url: str | None = None) -> Iterator[Session]:
    """:func:`charter_guardrails.ledger.store.ledger_session` for the ``charter verify`` path: the same
    transaction semantics and the same schema check, without importing alembic.
    """
    from sqlalchemy.orm import sessionmaker

    from charter_guardrails.ledger import db

    url = url or get_settings().ledger_url
    _check_migrated(url)
    factory = sessionmaker(db.get_engine(url), expire_on_commit=False)
    with factory() as session, session.begin():
        yield session


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
            f"dataset {dataset!r} needs its use case: write USE_CASE.DATASET (e.g. citizen_requests.training) or add --use-case"
        )
    return use_case, name


def load_policy(use_case: str) -> UseCasePolicy:
    """The policy of ``use_case`` from the policies folder; a clear error if there is none."""
    from charter_guardrails.core.policy import UseCasePolicy

    path = get_settings().policies_dir / f"{use_case}.yaml"
    if not path.exists():
        raise ConfigError(f"no policy for use case {use_case!r} (looked for {path})")
    return UseCasePolicy.from_file(path)


def ensure_dataset_record(session: Session, policy: UseCasePolicy, dataset: str, location: Path) -> DatasetRecord:
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
    record = ensure_dataset_record(session, policy, dataset, Path(doc["location"]))
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


@dataclass(frozen=True)
class ManifestSnapshot:
    """What verification needs of a manifest row, detached from any session."""

    id: int
    dataset_id: int
    document: dict[str, Any]
    signature: str
    key_id: str
    merkle_root: str
    size_bytes: int
    row_count: int | None

    @classmethod
    def of(cls, row: Manifest) -> ManifestSnapshot:
        return cls(
            row.id,
            row.dataset_id,
            dict(row.document),
            row.signature,
            row.key_id,
            row.merkle_root,
            int(row.size_bytes),
            row.row_count,
        )


@dataclass
class Verification:
    """The named outcome of verifying one file against one dataset's manifest."""

    outcome: Outcome
    use_case: str
    dataset: str
    path: str
    summary: str
    facts: dict[str, Any] = field(default_factory=dict)
    manifest_id: int | None = None
    row_count: int | None = None
    size_bytes: int | None = None
    seconds: float | None = None

    @property
    def intact(self) -> bool:
        return self.outcome is Outcome.INTACT

    @property
    def raises_incident(self) -> bool:
        return self.outcome in INCIDENT_OUTCOMES

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "dataset": f"{self.use_case}.{self.dataset}",
            "file": self.path,
            "summary": self.summary,
            "manifest_id": self.manifest_id,
            "row_count": self.row_count,
            "size_bytes": self.size_bytes,
            "facts": self.facts,
        }

    def to_check_result(self) -> CheckResult:
        """The verdict: pass when intact, fail otherwise (critical when it is evidence of corruption)."""
        from charter_guardrails.core.results import CheckResult, Severity, Verdict

        metrics: dict[str, float | int | None] = {
            "size_bytes": self.size_bytes,
            "rows": self.row_count,
            "changed_chunks": int(self.facts.get("changed_chunk_count", 0) or 0),
        }
        if self.seconds:
            metrics["seconds"] = round(self.seconds, 4)
        return CheckResult(
            check="integrity",
            verdict=Verdict.PASS if self.intact else Verdict.FAIL,
            severity=Severity.INFO if self.intact else (Severity.CRITICAL if self.raises_incident else Severity.ERROR),
            engagements=ENGAGEMENTS,
            summary=self.summary,
            metrics=metrics,
            evidence={
                "outcome": self.outcome.value,
                "file": Path(self.path).name,
                "manifest_id": self.manifest_id,
                **self.facts,
            },
            dataset=self.dataset,
        )

    def incident_draft(self, run_id: str | None) -> IncidentDraft | None:
        """The security incident this outcome calls for (Sûreté 2), or None when intact or a configuration problem."""
        if not self.raises_incident:
            return None
        from charter_guardrails.incidents.incident import (
            BreachType,
            IncidentDraft,
        )  # imports the policy model: only when needed

        nature = {
            Outcome.DATA_CHANGED: "altération des données : le fichier ne correspond plus à son manifeste signé",
            Outcome.MANIFEST_EDITED: "altération du manifeste : le document ne correspond plus à sa signature",
            Outcome.UNKNOWN_KEY: "manifeste signé par une clé inconnue ou non approuvée",
        }[self.outcome]
        return IncidentDraft(
            breach_type=BreachType.INTEGRITY,
            severity="critical",
            dataset=self.dataset,
            run_id=run_id,
            title=f"Corruption détectée sur {self.use_case}.{self.dataset} ({self.outcome.value})",
            nature=nature,
            facts={
                "outcome": self.outcome.value,
                "file": Path(self.path).name,
                "manifest_id": self.manifest_id,
                **self.facts,
            },
            likely_consequences=(
                "un modèle entraîné ou une inférence produite sur des données altérées (empoisonnement possible, "
                "décisions erronées pour les usagers)"
            ),
            measures_taken=list(MEASURES_TAKEN),
            approx_records=self.row_count,
        )


def _describe(comparison: Comparison, document: dict[str, Any]) -> str:
    ranges = comparison.ranges
    if not ranges:
        return "the Merkle root differs"
    first = ranges[0]
    where = f"bytes {first['bytes'][0]}–{first['bytes'][1]}"
    if "rows" in first:
        where += f", rows {first['rows'][0]}–{first['rows'][1]}"
    if "file" in first:
        where = f"file {first['file']}, {where}"
    more = comparison.changed_chunks[1:]
    return f"chunk {first['chunk']} ({where}) changed" + (f", and {len(more)} more chunk(s)" if more else "")


def verify_file(
    path: str | os.PathLike[str],
    manifest: ManifestSnapshot | None,
    *,
    use_case: str,
    dataset: str,
    trusted_keys: dict[str, Any] | None = None,
    digest: FileDigest | None = None,
    workers: int | None = None,
) -> Verification:
    """Check the manifest's signature, then recompute the file and compare. Needs only public keys.

    :param manifest: the registered manifest, or None (outcome ``no_manifest``).
    :param trusted_keys: public keys by key id (default: :func:`charter_guardrails.core.keys.load_trusted_public_keys`).
    :param digest: a digest computed in advance with the manifest's parameters, to skip a second pass.
    :raises DatasetFileError: the file is missing, unreadable, empty or changed while hashed.
    """
    import time

    from charter_guardrails.core.keys import KeyError_, load_trusted_public_keys

    started = time.perf_counter()
    path = Path(path)
    ref = f"{use_case}.{dataset}"

    def result(
        outcome: Outcome, summary: str, facts: dict[str, Any] | None = None, seconds: float | None = None
    ) -> Verification:
        return Verification(
            outcome,
            use_case,
            dataset,
            str(path),
            summary,
            facts or {},
            manifest_id=manifest.id if manifest else None,
            row_count=manifest.row_count if manifest else None,
            size_bytes=manifest.size_bytes if manifest else None,
            seconds=seconds,
        )

    if manifest is None:
        return result(
            Outcome.NO_MANIFEST, f"no manifest registered for {ref}: run `charter hash FILE --dataset {ref}` first"
        )
    if trusted_keys is None:
        try:
            trusted_keys = load_trusted_public_keys()
        except KeyError_ as exc:
            return result(Outcome.KEY_MISSING, f"cannot verify {ref}: {exc}", {"key_id": manifest.key_id})
    if not trusted_keys:
        return result(Outcome.KEY_MISSING, f"cannot verify {ref}: no trusted public key", {"key_id": manifest.key_id})
    fault = check_signature(manifest.document, manifest.signature, manifest.key_id, trusted_keys)
    if fault is None and (
        manifest.document.get("merkle_root") != manifest.merkle_root
        or manifest.document.get("size_bytes") != manifest.size_bytes
    ):
        fault = Outcome.MANIFEST_EDITED  # the row's columns were edited, the signed document was not
    if fault is Outcome.UNKNOWN_KEY:
        return result(
            fault,
            f"the manifest of {ref} is signed by key {manifest.key_id}, which is not a trusted key",
            {"key_id": manifest.key_id, "trusted_key_ids": sorted(trusted_keys)},
        )
    if fault is Outcome.MANIFEST_EDITED:
        return result(
            fault,
            f"the manifest of {ref} was edited: it no longer matches its signature (key {manifest.key_id})",
            {"key_id": manifest.key_id},
        )
    comparison = compare_file(path, manifest.document, digest=digest, workers=workers)
    seconds = time.perf_counter() - started + (digest.seconds if digest is not None else 0.0)
    if comparison.intact:
        return result(
            Outcome.INTACT,
            f"{ref}: {path.name} matches its signed manifest #{manifest.id} "
            f"({manifest.size_bytes} bytes, root {manifest.merkle_root[:16]}…)",
            {"merkle_root": manifest.merkle_root},
            seconds,
        )
    facts = {"expected_root": manifest.merkle_root, "expected_size_bytes": manifest.size_bytes, **comparison.facts()}
    return result(
        Outcome.DATA_CHANGED,
        f"{ref}: {path.name} differs from its signed manifest #{manifest.id}: "
        f"{_describe(comparison, manifest.document)}",
        facts,
        seconds,
    )


def record_verification(session: Session, verification: Verification, *, dataset_id: int, run_id: str | None) -> None:
    """One row in ``manifest_verifications`` per verification, whatever its outcome; a retry of the same run adds none."""
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
