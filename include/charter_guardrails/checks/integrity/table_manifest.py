"""The signed manifest of a SQL table, and a table compared with it: which key ranges changed.

The document has the facts of :class:`~.table_hashing.TableDigest`: the table, its key columns, its schema and
fingerprint, the row count, the Merkle root and, per leaf, its row count, digest and first key. It is signed like
a file manifest (:func:`~.manifest.sign_manifest`, Ed25519 over the canonical JSON). It holds no value but the
key boundaries, and :func:`~.table_hashing.hash_table` refuses a key the policy declares as personal data.

:func:`compare_table` re-reads the table over the registered key ranges and names what changed: the schema
(a column added, removed, or of another type), and each range whose rows differ, with the row count then and
now, so that a changed row (same count), an inserted row (one more) and a deleted row (one fewer) are told apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from charter_guardrails.checks.integrity.hashing import DEFAULT_ALGORITHM
from charter_guardrails.checks.integrity.table_hashing import (
    DEFAULT_ROWS_PER_LEAF,
    RowSink,
    TableDigest,
    hash_table,
    key_from_json,
    key_to_json,
    table_columns,
)
from charter_guardrails.core.errors import ManifestUnusable

TABLE_MANIFEST_KIND = "table"


def table_document(
    digest: TableDigest,
    *,
    dataset: str,
    use_case: str,
    run_id: str | None = None,
    rows_per_leaf: int = DEFAULT_ROWS_PER_LEAF,
) -> dict[str, Any]:
    """The manifest document of a hashed table (unsigned: :func:`~.manifest.sign_manifest` signs it).

    Besides the table's facts it has the columns of the ledger's ``manifests`` row: ``file_name`` is the table,
    ``size_bytes`` is 0 (a table has no bytes of its own: its size is its ``row_count``), ``chunk_size`` is the
    number of rows per leaf at registration.
    """
    return {
        "manifest_version": 1,
        "kind": TABLE_MANIFEST_KIND,
        "dataset": dataset,
        "use_case": use_case,
        "table": digest.table,
        "algorithm": digest.algorithm,
        "key_columns": digest.key_columns,
        "schema": [list(c) for c in digest.schema],
        "schema_fingerprint": digest.schema_fingerprint,
        "rows": digest.rows,
        "merkle_root": digest.root,
        "leaves": [
            {"rows": leaf.rows, "digest": leaf.digest, "start": None if leaf.start is None else key_to_json(leaf.start)}
            for leaf in digest.leaves
        ],
        "format": "sql",
        "file_name": digest.table,
        "size_bytes": 0,
        "row_count": digest.rows,
        "chunk_size": rows_per_leaf,
        "leaf_count": len(digest.leaves),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
    }


def register_table(
    engine: Any,
    table: str,
    *,
    dataset: str,
    use_case: str,
    order_by: Sequence[str] | None = None,
    personal_columns: Sequence[str] = (),
    rows_per_leaf: int = DEFAULT_ROWS_PER_LEAF,
    run_id: str | None = None,
    algorithm: str = DEFAULT_ALGORITHM,
) -> dict[str, Any]:
    """Hash ``table`` and return its manifest document."""
    digest = hash_table(
        engine,
        table,
        order_by=order_by,
        personal_columns=personal_columns,
        rows_per_leaf=rows_per_leaf,
        algorithm=algorithm,
    )
    return table_document(digest, dataset=dataset, use_case=use_case, run_id=run_id, rows_per_leaf=rows_per_leaf)


@dataclass(frozen=True)
class ChangedRange:
    """A registered key range whose rows differ now. ``start``/``end``: its first key, and the next range's
    (``None``: the table's start, or its end), as the manifest stores them."""

    index: int
    start: list[list[str]] | None
    end: list[list[str]] | None
    rows_registered: int
    rows_now: int

    @property
    def change(self) -> str:
        delta = self.rows_now - self.rows_registered
        if delta == 0:
            return "rows changed"
        return f"{abs(delta)} row(s) {'inserted' if delta > 0 else 'deleted'}"


@dataclass(frozen=True)
class TableComparison:
    table: str
    rows_registered: int
    rows_now: int | None
    schema_changes: list[str] = field(default_factory=list)
    ranges: list[ChangedRange] = field(default_factory=list)
    #: the Merkle root of the rows now, over the registered key ranges (None: the key columns are gone)
    root_now: str | None = None

    @property
    def intact(self) -> bool:
        return not self.schema_changes and not self.ranges

    def facts(self) -> dict[str, Any]:
        """What a verdict's evidence and an incident carry: counts, column names and key boundaries."""
        return {
            "table": self.table,
            "rows_registered": self.rows_registered,
            "rows_now": self.rows_now,
            "schema_changes": self.schema_changes,
            "changed_ranges": [
                {
                    "index": r.index,
                    "start": r.start,
                    "end": r.end,
                    "rows_registered": r.rows_registered,
                    "rows_now": r.rows_now,
                    "change": r.change,
                }
                for r in self.ranges
            ],
        }


def schema_changes(registered: Sequence[Sequence[str]], now: Sequence[Sequence[str]]) -> list[str]:
    """Each column added, removed or of another type, in words (names and types only)."""
    before, after = dict((str(n), str(t)) for n, t in registered), dict((str(n), str(t)) for n, t in now)
    changes = [f"column {n} removed" for n in before if n not in after]
    changes += [f"column {n} added ({after[n]})" for n in after if n not in before]
    changes += [
        f"column {n}: type {before[n]} is now {after[n]}" for n in before if n in after and before[n] != after[n]
    ]
    if not changes and list(before) != list(after):
        changes.append("the columns are in another order")
    return changes


def compare_table(engine: Any, document: dict[str, Any], *, sink: RowSink | None = None) -> TableComparison:
    """``table`` now against its manifest ``document`` (whose signature the caller has checked). ``sink`` sees the
    rows of that pass (none when the key columns are gone)."""
    if document.get("kind") != TABLE_MANIFEST_KIND:
        raise ManifestUnusable(f"the manifest of {document.get('dataset')!r} is not a table manifest")
    table, keys = str(document["table"]), list(document["key_columns"])
    schema_now = table_columns(engine, table)
    changes = schema_changes(document["schema"], schema_now)
    if any(k not in {n for n, _ in schema_now} for k in keys):
        return TableComparison(table, int(document["rows"]), None, changes)
    leaves = document["leaves"]
    starts = [None if leaf["start"] is None else key_from_json(leaf["start"]) for leaf in leaves]
    digest = hash_table(engine, table, order_by=keys, starts=starts, algorithm=str(document["algorithm"]), sink=sink)
    ranges = [
        ChangedRange(
            i,
            leaves[i]["start"],
            leaves[i + 1]["start"] if i + 1 < len(leaves) else None,
            int(leaves[i]["rows"]),
            now.rows,
        )
        for i, now in enumerate(digest.leaves)
        if now.digest != leaves[i]["digest"]
    ]
    return TableComparison(table, int(document["rows"]), digest.rows, changes, ranges, digest.root)
