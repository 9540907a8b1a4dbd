"""Signed dataset manifests: their document, their signature, and the facts of each chunk.

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
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.integrity.hashing import (
    DEFAULT_ALGORITHM,
    FileDigest,
    auto_chunk_size,
    hash_file,
    leaf_hash,
    merkle_root,
)
from charter_guardrails.core.errors import (
    ConfigError,
    DatasetFileChanged,
    DatasetFileEmpty,
    DatasetFileMissing,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

MANIFEST_VERSION = 1
#: Domain separation of the signature: a manifest signature can't be replayed as an audit-head signature.
SIGNATURE_CONTEXT = b"charter-manifest-v1\n"


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
    :param chunk_size: bytes per leaf; default
        :func:`~charter_guardrails.checks.integrity.hashing.auto_chunk_size` of the file (of the largest
        file, for a directory), recorded in the manifest.
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
    document.update(
        _directory_document(path, algorithm=algorithm, chunk_size=chunk_size, workers=workers, on_chunk=on_chunk)
    )
    return document


def _directory_document(
    path: Path, *, algorithm: str, chunk_size: int, workers: int | None, on_chunk: Callable[[int], None] | None
) -> dict[str, Any]:
    """The manifest fields of a directory of Parquet files: one leaf per file (its name and its own root)."""
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
    return {
        "format": "parquet_dir",
        "size_bytes": sum(f["size_bytes"] for f in files),
        "row_count": sum(f["row_count"] or 0 for f in files),
        "merkle_root": merkle_root([file_leaf(f["name"], f["merkle_root"], algorithm) for f in files], algorithm).hex(),
        "leaf_count": len(files),
        "files": files,
        "schema_fingerprint": hashlib.new(algorithm, "\n".join(schemas).encode()).hexdigest() if schemas else None,
    }


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
