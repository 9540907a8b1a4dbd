"""Signatures of the charter report's files: ``<file>.sig.json`` beside each file, verified with public keys only.

A signature file is JSON (:data:`SIGNATURE_FORMAT`) with the signed file's name and SHA-256, the id of the
ledger's Ed25519 key, when it was signed, the head of the audit chain the report was built on, and the
Ed25519 signature over all of those fields as canonical JSON (sorted keys, no spaces).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.core import keys
from charter_guardrails.core.errors import ReportWriteError
from charter_guardrails.reporting.ledger_rows import iso_utc

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SIGNATURE_SUFFIX = ".sig.json"
SIGNATURE_FORMAT = "charter-report-signature/1"
SIGNATURE_ALGORITHM = "Ed25519"


def signature_path(path: Path) -> Path:
    """``<path>.sig.json``: where the signature of ``path`` lies."""
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file in the same folder, then rename it into place."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ReportWriteError(f"cannot write {target}: {exc.strerror or exc}") from exc


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
    write_atomic(target, (json.dumps(fields, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
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


def _result(
    path: Path, sig_path: Path, ok: bool, reason: str, usable: bool, fields: Mapping[str, Any] | None = None
) -> VerifyResult:
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


def _read_signature(path: Path, sig_path: Path) -> dict[str, Any] | VerifyResult:
    """The fields of the signature file, or the unusable result that says why they cannot be read."""
    if not path.is_file():
        return _result(path, sig_path, False, f"{path} does not exist", usable=False)
    if not sig_path.is_file():
        return _result(path, sig_path, False, f"no signature file {sig_path}", usable=False)
    try:
        fields = json.loads(sig_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        reason = f"the signature file {sig_path} is unreadable ({type(exc).__name__})"
        return _result(path, sig_path, False, reason, usable=False)
    if not isinstance(fields, dict) or not all(
        isinstance(fields.get(k), str) for k in ("sha256", "signature", "key_id")
    ):
        reason = f"the signature file {sig_path} lacks sha256, signature or key_id"
        return _result(path, sig_path, False, reason, usable=False)
    return fields


def verify_report(
    path: Path, public_key: Ed25519PublicKey | Mapping[str, Ed25519PublicKey], *, signature_file: Path | None = None
) -> VerifyResult:
    """Recompute the file's SHA-256 and check the Ed25519 signature of ``<path>.sig.json``.

    Needs only public keys: one key, or trusted keys by key id (the current key and retired ones).
    """
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    sig_path = signature_file or signature_path(path)
    fields = _read_signature(path, sig_path)
    if isinstance(fields, VerifyResult):
        return fields
    if fields.get("algorithm") != SIGNATURE_ALGORITHM:
        reason = f"unsupported signature algorithm {fields.get('algorithm')!r}"
        return _result(path, sig_path, False, reason, False, fields)
    trusted = {keys.key_id(public_key): public_key} if isinstance(public_key, Ed25519PublicKey) else dict(public_key)
    key = trusted.get(fields["key_id"])
    if key is None:
        reason = (
            f"signed with key {fields['key_id']}, which is not the public key given ({', '.join(trusted) or 'none'})"
        )
        return _result(path, sig_path, False, reason, True, fields)
    actual = _sha256(path)
    if actual != fields["sha256"]:
        reason = f"the file changed after it was signed: SHA-256 {actual} instead of {fields['sha256']}"
        return _result(path, sig_path, False, reason, True, fields)
    if not keys.verify_signature(_signed_message(fields), fields["signature"], key):
        return _result(path, sig_path, False, "the signature does not match the signature file's content", True, fields)
    return _result(path, sig_path, True, f"signed by key {fields['key_id']} on {fields.get('signed_at')}", True, fields)


__all__ = [
    "SIGNATURE_SUFFIX",
    "VerifyResult",
    "sign_report",
    "signature_path",
    "verify_report",
    "write_atomic",
]
