"""Dataset integrity (Sûreté 2): streaming Merkle hashing, signed manifests, verification.

``hashing`` and ``manifest`` import only the standard library (and ``cryptography`` to sign or
verify), so the verify path stays light: no pandas, Great Expectations or Presidio.
"""

from __future__ import annotations

from charter_guardrails.checks.integrity.comparison import compare_file
from charter_guardrails.checks.integrity.hashing import (
    DEFAULT_ALGORITHM,
    DEFAULT_CHUNK_SIZE,
    FileDigest,
    hash_file,
    leaf_hash,
    merkle_root,
    node_hash,
)
from charter_guardrails.checks.integrity.manifest import (
    Outcome,
    SignedManifest,
    build_manifest,
    check_signature,
    sign_manifest,
)

__all__ = [
    "DEFAULT_ALGORITHM",
    "DEFAULT_CHUNK_SIZE",
    "FileDigest",
    "Outcome",
    "SignedManifest",
    "build_manifest",
    "check_signature",
    "compare_file",
    "hash_file",
    "leaf_hash",
    "merkle_root",
    "node_hash",
    "sign_manifest",
]
