"""The comparison of a file, or a directory of Parquet files, against its manifest: which chunks differ.

Only digests, offsets and line ranges are compared and reported, never a data value. Like
:mod:`charter_guardrails.checks.integrity.manifest`, it sits on the ``charter verify`` path: standard library only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter_guardrails.checks.integrity.hashing import FileDigest, hash_file, merkle_root
from charter_guardrails.checks.integrity.manifest import csv_header_fingerprint, file_leaf, parquet_files
from charter_guardrails.core.errors import DatasetFileMissing, ManifestUnusable

#: How many changed chunks a verdict lists one by one (the count is always exact).
MAX_LISTED_CHUNKS = 20


@dataclass
class Comparison:
    """Where a file differs from its manifest."""

    intact: bool
    changed_chunks: list[int] = field(default_factory=list)
    ranges: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, list[str]] = field(default_factory=dict)
    actual_root: str | None = None
    actual_size: int | None = None
    schema_changed: bool | None = None

    def facts(self) -> dict[str, Any]:
        """JSON-safe facts for the verdict and the incident: chunks, byte and line ranges. Never a data value."""
        out: dict[str, Any] = {
            "changed_chunks": self.changed_chunks[:MAX_LISTED_CHUNKS],
            "changed_chunk_count": len(self.changed_chunks),
            "first_changed_chunk": self.changed_chunks[0] if self.changed_chunks else None,
            "ranges": self.ranges[:MAX_LISTED_CHUNKS],
            "actual_root": self.actual_root,
            "actual_size_bytes": self.actual_size,
        }
        if self.files:
            out["files"] = self.files
        if self.schema_changed is not None:
            out["schema_changed"] = self.schema_changed
        return out


def _range_entry(
    chunk: dict[str, Any] | None, index: int, actual: dict[str, Any] | None, file_name: str | None = None
) -> dict[str, Any]:
    source = chunk or actual or {}
    start = int(source.get("offset", 0))
    # The range covers the chunk as registered and as found, whichever is longer (appended bytes).
    length = max(int((chunk or {}).get("length", 0)), int((actual or {}).get("length", 0)))
    entry: dict[str, Any] = {"chunk": index, "bytes": [start, start + max(length, 1) - 1]}
    if chunk is None:
        entry["note"] = "bytes beyond the registered end of the file"
    elif actual is None:
        entry["note"] = "chunk missing: the file is shorter than registered"
    if chunk and chunk.get("lines"):
        first, last = chunk["lines"]
        entry["lines"] = [first, last]
        entry["rows"] = [max(first - 1, 0), max(last - 1, 0)]  # data rows: the header is line 1 (row 0)
    if file_name is not None:
        entry["file"] = file_name
    return entry


def compare_chunks(
    expected: list[dict[str, Any]], actual: FileDigest, file_name: str | None = None
) -> tuple[list[int], list[dict[str, Any]]]:
    """Indices and ranges of the leaves that differ (including missing or extra ones)."""
    actual_entries = [
        {"index": c.index, "offset": c.offset, "length": c.length, "digest": c.digest} for c in actual.chunks
    ]
    changed: list[int] = []
    ranges: list[dict[str, Any]] = []
    for index in range(max(len(expected), len(actual_entries))):
        old = expected[index] if index < len(expected) else None
        new = actual_entries[index] if index < len(actual_entries) else None
        if old is None or new is None or old["digest"] != new["digest"] or old["length"] != new["length"]:
            changed.append(index)
            if len(ranges) < MAX_LISTED_CHUNKS:
                ranges.append(_range_entry(old, index, new, file_name))
    return changed, ranges


def compare_file(
    path: str | os.PathLike[str],
    document: dict[str, Any],
    *,
    digest: FileDigest | None = None,
    workers: int | None = None,
) -> Comparison:
    """Recompute ``path`` with the manifest's algorithm and chunk size and localise any difference.

    :param digest: a digest already computed (e.g. in the background while the ledger was queried);
        used only if it was taken with the manifest's algorithm and chunk size.
    :raises DatasetFileError: missing, unreadable, empty, or changed while hashed.
    :raises ManifestUnusable: the document lacks a field, or holds one of the wrong type.
    """
    try:
        return _compare_file(Path(path), document, digest=digest, workers=workers)
    except (LookupError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        raise ManifestUnusable(
            f"the manifest of {document.get('dataset', '?')!s:.80} cannot be used to verify {Path(path).name}: "
            f"{type(exc).__name__} on its fields ({str(exc)[:120]}); register the dataset again with `charter hash`"
        ) from None


def _compare_file(
    path: Path, document: dict[str, Any], *, digest: FileDigest | None, workers: int | None
) -> Comparison:
    algorithm, chunk_size = document["algorithm"], int(document["chunk_size"])
    if document.get("format") == "parquet_dir":
        return _compare_directory(path, document, workers=workers)
    if path.is_dir():
        return Comparison(
            intact=False,
            changed_chunks=[0],
            ranges=[{"chunk": 0, "bytes": [0, 0], "note": "a directory replaced the file"}],
        )
    if digest is None or digest.algorithm != algorithm or digest.chunk_size != chunk_size:
        digest = hash_file(path, algorithm=algorithm, chunk_size=chunk_size, workers=workers)
    if digest.root == document["merkle_root"] and digest.size == document["size_bytes"]:
        return Comparison(intact=True, actual_root=digest.root, actual_size=digest.size)
    changed, ranges = compare_chunks(document.get("chunks", []), digest)
    schema_changed = None
    if document.get("format") == "csv" and document.get("schema_fingerprint"):
        schema_changed = csv_header_fingerprint(path, algorithm) != document["schema_fingerprint"]
    return Comparison(
        False, changed, ranges, actual_root=digest.root, actual_size=digest.size, schema_changed=schema_changed
    )


def _compare_directory(path: Path, document: dict[str, Any], *, workers: int | None) -> Comparison:
    algorithm, chunk_size = document["algorithm"], int(document["chunk_size"])
    expected = {f["name"]: f for f in document.get("files", [])}
    present = {p.relative_to(path).as_posix(): p for p in parquet_files(path)} if path.is_dir() else {}
    if not path.exists():
        raise DatasetFileMissing(f"dataset directory {path} does not exist")
    report: dict[str, list[str]] = {
        "missing": sorted(set(expected) - set(present)),
        "added": sorted(set(present) - set(expected)),
        "changed": [],
    }
    leaves: list[bytes] = []
    changed_leaves: list[int] = []
    ranges: list[dict[str, Any]] = []
    names = sorted(set(expected) | set(present))
    size = 0
    for index, name in enumerate(names):
        if name not in present:
            changed_leaves.append(index)
            ranges.append(
                {
                    "chunk": index,
                    "file": name,
                    "bytes": [0, int(expected[name]["size_bytes"]) - 1],
                    "note": "file missing",
                }
            )
            continue
        digest = hash_file(present[name], algorithm=algorithm, chunk_size=chunk_size, workers=workers)
        size += digest.size
        leaves.append(file_leaf(name, digest.root, algorithm))
        if name not in expected:
            changed_leaves.append(index)
            ranges.append({"chunk": index, "file": name, "bytes": [0, digest.size - 1], "note": "file added"})
        elif digest.root != expected[name]["merkle_root"]:
            changed_leaves.append(index)
            report["changed"].append(name)
            _chunks, file_ranges = compare_chunks(expected[name].get("chunks", []), digest, name)
            ranges.extend(file_ranges)
    root = merkle_root(leaves, algorithm).hex() if leaves else None
    intact = not changed_leaves and root == document["merkle_root"]
    return Comparison(
        intact, changed_leaves, ranges, files={k: v for k, v in report.items() if v}, actual_root=root, actual_size=size
    )
