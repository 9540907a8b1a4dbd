"""A ``format: sql`` dataset's table: registering its signed manifest, and verifying the table against it.

The table counterpart of ``charter hash FILE`` and of :func:`.verification.verify_file`. The table is read in the
database of the settings' ``data_url``, as :func:`charter_guardrails.readers.files.read_sql_table` reads it; the
ordering key is the dataset's ``order_by``, else the table's primary key, and a key column the policy declares as
personal data is refused (its values would be the manifest's key boundaries).

Verification checks the signature first (public keys only, :func:`.verification.trust_fault`), then re-hashes the
rows over the registered key ranges (:func:`.table_manifest.compare_table`). Its outcome is the same
:class:`~.outcome.Verification` as a file's, marked ``table``: ``intact``, or ``data_changed`` with the schema
changes and the changed key ranges in its facts (counts, column names and key boundaries, never a cell value),
which become the same ``integrity`` CheckResult and security incident as a file's.

The verified root and row count are the run's pin of the table (:class:`PinnedTable`): a later step holds the
table to it with :func:`verify_pinned_table`, one more pass over the rows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.integrity.hashing import DEFAULT_ALGORITHM
from charter_guardrails.checks.integrity.manifest import Outcome
from charter_guardrails.checks.integrity.outcome import Verification
from charter_guardrails.checks.integrity.table_hashing import DEFAULT_ROWS_PER_LEAF, RowSink
from charter_guardrails.checks.integrity.table_manifest import TABLE_MANIFEST_KIND, TableComparison
from charter_guardrails.core.errors import ConfigError, ManifestUnusable

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from charter_guardrails.checks.integrity.verification import ManifestSnapshot
    from charter_guardrails.core.policy import UseCasePolicy

#: The outcomes whose message says "table" (the others are about the manifest and read the same for a file).
_TABLE_WORDED = (Outcome.INTACT, Outcome.DATA_CHANGED, Outcome.NO_MANIFEST)


@contextmanager
def data_engine(url: str | None = None) -> Iterator[Engine]:
    """An engine on the data database (default: the settings' ``data_url``), disposed of on exit."""
    from sqlalchemy import create_engine

    from charter_guardrails.core.settings import get_settings

    engine = create_engine(url or get_settings().data_url)
    try:
        yield engine
    finally:
        engine.dispose()


def table_of(policy: UseCasePolicy, dataset: str) -> str:
    """The table of a ``format: sql`` dataset; a file dataset is refused (it is hashed from its file)."""
    from charter_guardrails.core.policy_models import DatasetFormat

    spec = policy.dataset(dataset)
    if spec.format is not DatasetFormat.SQL or spec.table is None:
        raise ConfigError(
            f"dataset {policy.id}.{dataset} is a {spec.format.value} file, not a table: give its FILE "
            f"(`charter hash FILE --dataset {policy.id}.{dataset}`)"
        )
    return spec.table


def register_dataset_table(
    policy: UseCasePolicy,
    dataset: str,
    *,
    run_id: str | None = None,
    rows_per_leaf: int = DEFAULT_ROWS_PER_LEAF,
    algorithm: str = DEFAULT_ALGORITHM,
    url: str | None = None,
) -> dict[str, Any]:
    """Hash the table of ``dataset`` and return its (unsigned) manifest document."""
    from charter_guardrails.checks.integrity.table_manifest import register_table

    table, spec = table_of(policy, dataset), policy.dataset(dataset)
    with data_engine(url) as engine:
        return register_table(
            engine,
            table,
            dataset=f"{policy.id}.{dataset}",
            use_case=policy.id,
            order_by=spec.order_by,
            personal_columns=spec.personal_columns(),
            rows_per_leaf=rows_per_leaf,
            run_id=run_id,
            algorithm=algorithm,
        )


def _finding(comparison: TableComparison, root: str, keys: list[str]) -> tuple[Outcome, dict[str, Any]]:
    """Intact (the rows hash to ``root`` again), or what changed: roots, counts, key boundaries, never a value."""
    if comparison.intact and comparison.root_now == root:
        return Outcome.INTACT, {"merkle_root": root, "table": comparison.table, "key_columns": keys}
    return Outcome.DATA_CHANGED, {
        "expected_root": root,
        "actual_root": comparison.root_now,
        "key_columns": keys,
        **comparison.facts(),
    }


def _usable(manifest: ManifestSnapshot, ref: str, table: str) -> dict[str, Any]:
    """The manifest's document, if it is the manifest of ``table``."""
    document = manifest.document
    if document.get("kind") != TABLE_MANIFEST_KIND:
        raise ManifestUnusable(
            f"the manifest #{manifest.id} of {ref} is a file's ({document.get('file_name')}), but {ref} is the table "
            f"{table}: register the table with `charter hash --dataset {ref}`"
        )
    if document.get("table") != table:
        raise ManifestUnusable(
            f"the manifest #{manifest.id} of {ref} is of the table {document.get('table')}, but the policy now names "
            f"the table {table}: register it with `charter hash --dataset {ref}`"
        )
    return document


def verify_table(
    table: str,
    manifest: ManifestSnapshot | None,
    *,
    use_case: str,
    dataset: str,
    trusted_keys: dict[str, Any] | None = None,
    url: str | None = None,
) -> Verification:
    """Check the manifest's signature, then re-hash ``table`` over its key ranges and compare. Public keys only.

    :param manifest: the registered manifest, or None (outcome ``no_manifest``).
    :raises ManifestUnusable: the manifest is a file's, or another table's: register the table.
    :raises DatasetReadError: the table is gone. :raises InfrastructureError: the database cannot be reached.
    """
    from charter_guardrails.checks.integrity.table_manifest import compare_table
    from charter_guardrails.checks.integrity.verification import trust_fault

    started, ref = time.perf_counter(), f"{use_case}.{dataset}"

    def result(outcome: Outcome, summary: str, facts: dict[str, Any], seconds: float | None = None) -> Verification:
        verification = Verification(
            outcome,
            use_case,
            dataset,
            table,
            summary,
            facts,
            manifest_id=manifest.id if manifest else None,
            row_count=manifest.row_count if manifest else None,
            size_bytes=manifest.size_bytes if manifest else None,
            seconds=seconds,
            table=True,
        )
        if outcome in _TABLE_WORDED:
            verification.summary = verification.message().english
        return verification

    if manifest is None:
        return result(Outcome.NO_MANIFEST, "", {})
    fault = trust_fault(manifest, ref, trusted_keys)
    if fault is not None:
        return result(*fault)
    document = _usable(manifest, ref, table)
    with data_engine(url) as engine:
        comparison = compare_table(engine, document)
    outcome, facts = _finding(comparison, manifest.merkle_root, list(document["key_columns"]))
    return result(outcome, "", facts, time.perf_counter() - started)


@dataclass(frozen=True)
class PinnedTable:
    """The rows a run verified: the table's Merkle root and row count (digests and counts only: it goes through
    XCom). ``kind`` tells it from a :class:`~.pin.PinnedFile`."""

    use_case: str
    dataset: str
    table: str
    merkle_root: str
    rows: int
    manifest_id: int
    kind: str = TABLE_MANIFEST_KIND

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json_dict(cls, data: Any) -> PinnedTable:
        """The pin an upstream task pushed; refuses anything else (a clear error, never a guess)."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or set(data) != names or data["kind"] != TABLE_MANIFEST_KIND:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ConfigError(
                f"the pinned reference of the verified table is malformed (keys {keys}, expected {sorted(names)}); "
                "re-run the DAG from its integrity step"
            )
        return cls(**data)

    @classmethod
    def of(cls, verification: Verification) -> PinnedTable | None:
        """The pin of an intact verification of a table; None when it was not intact."""
        if not (verification.table and verification.intact and verification.manifest_id is not None):
            return None
        return cls(
            verification.use_case,
            verification.dataset,
            verification.path,
            str(verification.facts["merkle_root"]),
            int(verification.row_count or 0),
            verification.manifest_id,
        )


def verify_pinned_table(
    pin: PinnedTable, document: dict[str, Any], *, url: str | None = None, sink: RowSink | None = None
) -> Verification:
    """Whether the table still holds the rows of ``pin``: re-hashed over the key ranges of its manifest
    ``document`` (the signed manifest the pin was taken from, checked then), localised like a verification.
    ``sink`` sees the rows of that pass: what it builds from them is the pinned rows only if the result is intact."""
    from charter_guardrails.checks.integrity.table_manifest import compare_table

    if document.get("merkle_root") != pin.merkle_root or document.get("kind") != TABLE_MANIFEST_KIND:
        raise ManifestUnusable(
            f"{pin.use_case}.{pin.dataset}: the manifest #{pin.manifest_id} of the verified table is no longer in the "
            "ledger as it was; re-run the DAG from its integrity step"
        )
    started = time.perf_counter()
    with data_engine(url) as engine:
        comparison = compare_table(engine, document, sink=sink)
    outcome, facts = _finding(comparison, pin.merkle_root, list(document["key_columns"]))
    verification = Verification(
        outcome,
        pin.use_case,
        pin.dataset,
        pin.table,
        "",
        facts,
        manifest_id=pin.manifest_id,
        row_count=pin.rows,
        size_bytes=0,
        seconds=time.perf_counter() - started,
        table=True,
    )
    verification.summary = verification.message().english
    return verification
