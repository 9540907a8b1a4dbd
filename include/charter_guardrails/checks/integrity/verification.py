"""Verify a file against its registered manifest: the signature first, then the content.

The file is hashed *outside* any database transaction (hashing 1 GiB takes about a second, and
SQLite takes its write lock at ``BEGIN``); only the short writes happen in a transaction.
Verification needs only public keys. Its outcome is a :class:`~.outcome.Verification`; the
manifests and the verification rows live in the ledger through :mod:`.registry`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.checks.integrity.comparison import Comparison, compare_file
from charter_guardrails.checks.integrity.manifest import Outcome, check_signature
from charter_guardrails.checks.integrity.outcome import Verification

if TYPE_CHECKING:
    from charter_guardrails.checks.integrity.hashing import FileDigest
    from charter_guardrails.ledger.models import Manifest

#: An outcome with its summary and the facts behind it.
_Finding = tuple[Outcome, str, dict[str, Any]]


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


def _manifest_fault(manifest: ManifestSnapshot, ref: str, trusted_keys: dict[str, Any]) -> _Finding | None:
    """Why the manifest itself cannot be trusted (no key, unknown key, edited), or None when it can."""
    if not trusted_keys:
        return Outcome.KEY_MISSING, f"cannot verify {ref}: no trusted public key", {"key_id": manifest.key_id}
    fault = check_signature(manifest.document, manifest.signature, manifest.key_id, trusted_keys)
    if fault is None and (
        manifest.document.get("merkle_root") != manifest.merkle_root
        or manifest.document.get("size_bytes") != manifest.size_bytes
    ):
        fault = Outcome.MANIFEST_EDITED  # the row's columns were edited, the signed document was not
    if fault is Outcome.UNKNOWN_KEY:
        return (
            fault,
            f"the manifest of {ref} is signed by key {manifest.key_id}, which is not a trusted key",
            {"key_id": manifest.key_id, "trusted_key_ids": sorted(trusted_keys)},
        )
    if fault is Outcome.MANIFEST_EDITED:
        return (
            fault,
            f"the manifest of {ref} was edited: it no longer matches its signature (key {manifest.key_id})",
            {"key_id": manifest.key_id},
        )
    return None


def trust_fault(manifest: ManifestSnapshot, ref: str, trusted_keys: dict[str, Any] | None) -> _Finding | None:
    """Why the manifest cannot be trusted (no key configured, unknown key, edited), or None when it can.

    :param trusted_keys: public keys by key id (None: :func:`charter_guardrails.core.keys.load_trusted_public_keys`).
    """
    from charter_guardrails.core.errors import KeyError_
    from charter_guardrails.core.keys import load_trusted_public_keys

    if trusted_keys is None:
        try:
            trusted_keys = load_trusted_public_keys()
        except KeyError_ as exc:
            return Outcome.KEY_MISSING, f"cannot verify {ref}: {exc}", {"key_id": manifest.key_id}
    return _manifest_fault(manifest, ref, trusted_keys)


def _content_finding(comparison: Comparison, manifest: ManifestSnapshot, ref: str, path: Path) -> _Finding:
    """Intact, or where the file differs from what the manifest signed."""
    if comparison.intact:
        return (
            Outcome.INTACT,
            f"{ref}: {path.name} matches its signed manifest #{manifest.id} "
            f"({manifest.size_bytes} bytes, root {manifest.merkle_root[:16]}…)",
            {"merkle_root": manifest.merkle_root},
        )
    facts = {"expected_root": manifest.merkle_root, "expected_size_bytes": manifest.size_bytes, **comparison.facts()}
    return (
        Outcome.DATA_CHANGED,
        f"{ref}: {path.name} differs from its signed manifest #{manifest.id}: "
        f"{_describe(comparison, manifest.document)}",
        facts,
    )


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

    from charter_guardrails.core.errors import ManifestUnusable

    started = time.perf_counter()
    path = Path(path)
    ref = f"{use_case}.{dataset}"

    def result(finding: _Finding, seconds: float | None = None) -> Verification:
        outcome, summary, facts = finding
        return Verification(
            outcome,
            use_case,
            dataset,
            str(path),
            summary,
            facts,
            manifest_id=manifest.id if manifest else None,
            row_count=manifest.row_count if manifest else None,
            size_bytes=manifest.size_bytes if manifest else None,
            seconds=seconds,
        )

    if manifest is None:
        return result(
            (
                Outcome.NO_MANIFEST,
                f"no manifest registered for {ref}: run `charter hash FILE --dataset {ref}` first",
                {},
            )
        )
    fault = trust_fault(manifest, ref, trusted_keys)
    if fault is not None:
        return result(fault)
    if manifest.document.get("kind") == "table":
        raise ManifestUnusable(
            f"the manifest of {ref} is a table's: verify the table itself (`charter verify --dataset {ref}`, "
            "or the integrity step without a file)"
        )
    comparison = compare_file(path, manifest.document, digest=digest, workers=workers)
    seconds = time.perf_counter() - started + (digest.seconds if digest is not None else 0.0)
    return result(_content_finding(comparison, manifest, ref, path), seconds)
