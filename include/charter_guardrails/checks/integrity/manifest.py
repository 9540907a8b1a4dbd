"""Signed dataset manifests, and the comparison of a file against one.

A manifest is a JSON document: dataset id, use case, file name, size, row count, Merkle root,
chunk digests (with the byte and CSV line range of each chunk), schema fingerprint,
``created_at`` (UTC) and the Airflow run that produced it. It is signed with Ed25519 over its
canonical JSON; verifying needs only the public key.

A directory of Parquet files gets one manifest with one leaf per file:
``leaf = H(0x00 ‖ relative name ‖ 0x00 ‖ root of the file's own chunk tree)``, so renaming,
adding, removing or changing a file all change the root, and a mismatch names the file.

Verification never imports pandas, pyarrow, Great Expectations or Presidio; pyarrow is used
only to register a Parquet dataset (row count and schema).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.integrity.hashing import (
    DEFAULT_ALGORITHM,
    DatasetFileChanged,
    DatasetFileEmpty,
    DatasetFileMissing,
    FileDigest,
    auto_chunk_size,
    hash_file,
    leaf_hash,
    merkle_root,
)
from charter_guardrails.core.settings import ConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST_VERSION = 1
#: Domain separation of the signature: a manifest signature can't be replayed as an audit-head signature.
SIGNATURE_CONTEXT = b"charter-manifest-v1\n"
#: How many changed chunks a verdict lists one by one (the count is always exact).
MAX_LISTED_CHUNKS = 20


class Outcome(StrEnum):
    """The named result of a verification; each names which side is at fault."""

    INTACT = "intact"
    #: The data no longer matches a valid manifest.
    DATA_CHANGED = "data_changed"
    #: The manifest document no longer matches its signature (edited without re-signing).
    MANIFEST_EDITED = "manifest_edited"
    #: The manifest is signed by a key that is not trusted (another or unknown key).
    UNKNOWN_KEY = "unknown_key"
    #: No public key is configured, so nothing can be verified (configuration).
    KEY_MISSING = "key_missing"
    #: No manifest was ever registered for the dataset (usage).
    NO_MANIFEST = "no_manifest"


#: Outcomes that are evidence of corruption: an incident is raised (Sûreté 2).
INCIDENT_OUTCOMES = frozenset({Outcome.DATA_CHANGED, Outcome.MANIFEST_EDITED, Outcome.UNKNOWN_KEY})


def canonical_json(document: dict[str, Any]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def detect_format(path: Path) -> str:
    """``csv``, ``parquet``, ``parquet_dir`` or ``binary`` (anything else is hashed all the same)."""
    if path.is_dir():
        return "parquet_dir"
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() in {".gz", ".zst"} else path.suffix.lower()
    if suffix in {".csv", ".tsv", ".txt"}:
        return "csv"
    if suffix in {".parquet", ".pq"}:
        return "parquet"
    return "binary"


def csv_header_fingerprint(path: Path, algorithm: str = DEFAULT_ALGORITHM) -> str | None:
    """SHA of the header line: renaming, adding or reordering a column changes it."""
    with path.open("rb") as handle:
        header = handle.readline(1 << 20).rstrip(b"\r\n")
    return hashlib.new(algorithm, b"csv-header\x00" + header).hexdigest() if header else None


def _parquet_facts(path: Path) -> tuple[int, str]:
    """(row count, schema fingerprint) of one Parquet file, from its footer."""
    import pyarrow.parquet as pq  # registration only: never on the verify path

    try:
        meta = pq.ParquetFile(path).metadata
        schema = pq.read_schema(path).remove_metadata()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad footer
        raise ConfigError(f"{path} is not a readable Parquet file: {type(exc).__name__}") from None
    return int(meta.num_rows), schema.to_string(show_field_metadata=False, show_schema_metadata=False)


def chunk_entries(digest: FileDigest) -> list[dict[str, Any]]:
    """The manifest's chunk list, with the physical CSV lines each chunk covers when newlines were counted.

    Lines are numbered from 1 (the header is line 1, so data row r is line r + 1). A quoted CSV
    field may contain a newline; such a record spans two physical lines, so the ranges are in
    physical lines. That is exact for localising bytes, and it is what an editor shows.
    """
    entries: list[dict[str, Any]] = []
    lines_before = 0
    for chunk in digest.chunks:
        entry: dict[str, Any] = {
            "index": chunk.index,
            "offset": chunk.offset,
            "length": chunk.length,
            "digest": chunk.digest,
        }
        if chunk.newlines is not None:
            last = lines_before + chunk.newlines + (0 if chunk.ends_with_newline else 1)
            entry["lines"] = [lines_before + 1, max(last, lines_before + 1)]
            lines_before += chunk.newlines
        entries.append(entry)
    return entries


def _file_document(digest: FileDigest, fmt: str) -> dict[str, Any]:
    row_count = schema = None
    if fmt == "csv":
        lines = (digest.newline_count or 0) + (0 if digest.ends_with_newline else 1)
        row_count = max(lines - 1, 0)
        schema = csv_header_fingerprint(digest.path, digest.algorithm)
    elif fmt == "parquet":
        row_count, schema_text = _parquet_facts(digest.path)
        schema = hashlib.new(digest.algorithm, b"parquet-schema\x00" + schema_text.encode()).hexdigest()
    return {
        "format": fmt,
        "size_bytes": digest.size,
        "row_count": row_count,
        "merkle_root": digest.root,
        "leaf_count": len(digest.chunks),
        "chunks": chunk_entries(digest),
        "schema_fingerprint": schema,
    }


def parquet_files(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in {".parquet", ".pq"})
    if not files:
        if not directory.exists():
            raise DatasetFileMissing(f"dataset directory {directory} does not exist")
        raise DatasetFileEmpty(f"dataset directory {directory} holds no .parquet file")
    return files


def file_leaf(relative_name: str, file_root: str, algorithm: str) -> bytes:
    """One leaf of a directory manifest: the file's name and the root of its own chunk tree."""
    return leaf_hash(relative_name.encode("utf-8") + b"\x00" + bytes.fromhex(file_root), algorithm)


def _directory_listing(directory: Path) -> list[tuple[str, int, int]]:
    return [
        (p.relative_to(directory).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in parquet_files(directory)
    ]


def build_manifest(
    path: str | os.PathLike[str],
    *,
    use_case: str,
    dataset: str,
    run_id: str | None = None,
    algorithm: str = DEFAULT_ALGORITHM,
    chunk_size: int | None = None,
    workers: int | None = None,
    created_at: datetime | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Hash ``path`` (file or directory of Parquet files) and describe it; the document is not signed yet.

    :param path: the dataset file, or a directory of Parquet files.
    :param use_case: the policy id, e.g. ``citizen_requests``.
    :param dataset: the dataset id in the policy, e.g. ``training``.
    :param run_id: the Airflow run (or CLI invocation) that registers it.
    :param chunk_size: bytes per leaf; default :func:`~charter_guardrails.checks.integrity.hashing.auto_chunk_size` of the
        file (of the largest file, for a directory), recorded in the manifest.
    :param on_chunk: progress callback, called with each chunk index as it is hashed.
    :raises DatasetFileError: missing, unreadable, empty, or changed while hashed.
    """
    path = Path(path).resolve() if Path(path).exists() else Path(path)
    fmt = detect_format(path)
    if chunk_size is None:
        sizes = (
            [os.stat(p).st_size for p in parquet_files(path)]
            if fmt == "parquet_dir"
            else [path.stat().st_size if path.is_file() else 0]
        )
        chunk_size = auto_chunk_size(max(sizes))
    document: dict[str, Any] = {
        "version": MANIFEST_VERSION,
        "dataset": f"{use_case}.{dataset}",
        "use_case": use_case,
        "dataset_name": dataset,
        "file_name": path.name,
        "location": str(path),
        "algorithm": algorithm,
        "chunk_size": chunk_size,
        "created_at": (created_at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
        "run_id": run_id,
    }
    if fmt != "parquet_dir":
        digest = hash_file(
            path,
            algorithm=algorithm,
            chunk_size=chunk_size,
            count_newlines=fmt == "csv",
            workers=workers,
            on_chunk=on_chunk,
        )
        document.update(_file_document(digest, fmt))
        return document
    before = _directory_listing(path)
    files = []
    for name, _size, _mtime in before:
        digest = hash_file(path / name, algorithm=algorithm, chunk_size=chunk_size, workers=workers, on_chunk=on_chunk)
        files.append({"name": name, **_file_document(digest, "parquet")})
    if _directory_listing(path) != before:
        raise DatasetFileChanged(
            f"dataset directory {path} changed while it was hashed (files added, removed or modified)"
        )
    schemas = sorted({f["schema_fingerprint"] for f in files if f["schema_fingerprint"]})
    document.update(
        {
            "format": fmt,
            "size_bytes": sum(f["size_bytes"] for f in files),
            "row_count": sum(f["row_count"] or 0 for f in files),
            "merkle_root": merkle_root(
                [file_leaf(f["name"], f["merkle_root"], algorithm) for f in files], algorithm
            ).hex(),
            "leaf_count": len(files),
            "files": files,
            "schema_fingerprint": hashlib.new(algorithm, "\n".join(schemas).encode()).hexdigest() if schemas else None,
        }
    )
    return document


@dataclass(frozen=True)
class SignedManifest:
    document: dict[str, Any]
    signature: str
    key_id: str


def sign_manifest(document: dict[str, Any], key: Ed25519PrivateKey | None = None) -> SignedManifest:
    """Sign the canonical JSON of ``document`` with Ed25519; the key id is written into the document first."""
    from charter_guardrails.core import keys

    key = key or keys.load_signing_key()
    document = {**document, "key_id": keys.key_id(key.public_key())}
    signature, kid = keys.sign(SIGNATURE_CONTEXT + canonical_json(document), key)
    return SignedManifest(document, signature, kid)


def check_signature(
    document: dict[str, Any], signature: str, key_id: str, trusted: dict[str, Ed25519PublicKey]
) -> Outcome | None:
    """``None`` if the signature holds, else the outcome that names the fault (edited or unknown key)."""
    from charter_guardrails.core import keys

    public_key = trusted.get(key_id)
    if public_key is None:
        return Outcome.UNKNOWN_KEY
    if document.get("key_id") != key_id or not keys.verify_signature(
        SIGNATURE_CONTEXT + canonical_json(document), signature, public_key
    ):
        return Outcome.MANIFEST_EDITED
    return None


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


class ManifestUnusable(ConfigError):
    """A manifest (signed, so not edited since) whose fields cannot drive a verification: another tool's or version's."""


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
