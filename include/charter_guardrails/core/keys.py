"""Secrets: the Ed25519 signing key and the pseudonymisation key (and the per-use-case keys derived from it).

Resolution order, first found wins:

1. environment variables ``CHARTER_SIGNING_KEY`` (PEM, PKCS#8) and ``CHARTER_PSEUDONYMISATION_KEY``
   (base64); an Airflow deployment fills them from a connection, variable or secrets backend
   (see ``charter_airflow.secrets``);
2. files in ``CHARTER_KEYS_DIR`` (default ``$CHARTER_HOME/keys``), created by ``charter keys init``.

Verification needs only the public key (``CHARTER_PUBLIC_KEY`` or ``signing_ed25519.pub``).
Keys are never logged: errors name the variable or file, never the content.

Pseudonyms are made with a key **per use case**, derived from the pseudonymisation (master) key with HKDF
(RFC 5869, SHA-256, salt :data:`PSEUDONYM_KDF_SALT`, info ``b"charter-pseudonym:" + use case id``): the same
person gets unrelated pseudonyms in two use cases, so two training copies cannot be joined on them, and one
master key is still all there is to keep. The derivation is named (:data:`KEY_DERIVATION_HKDF`) and recorded
with each copy; copies made before it existed were made with the master key itself (:data:`KEY_DERIVATION_MASTER`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from charter_guardrails.core.errors import KeyError_
from charter_guardrails.core.settings import get_settings

SIGNING_KEY_FILE = "signing_ed25519.pem"
PUBLIC_KEY_FILE = "signing_ed25519.pub"
PSEUDONYMISATION_KEY_FILE = "pseudonymisation.key"
#: HKDF salt of the per-use-case pseudonymisation keys. Fixed and public (RFC 5869 allows a non-secret salt):
#: changing it would change every pseudonym, so a new salt is a new derivation name, never an edit of this one.
PSEUDONYM_KDF_SALT = b"charter-guardrails/pseudonymisation/hkdf-sha256/v1"
#: HKDF ``info`` prefix; the use case id follows it.
PSEUDONYM_KDF_INFO = b"charter-pseudonym:"
#: The per-use-case key: HKDF-SHA256(master, salt, info + use case id), 32 bytes.
KEY_DERIVATION_HKDF = "hkdf-sha256-v1"
#: The master key itself: what every copy made before the per-use-case keys used.
KEY_DERIVATION_MASTER = "master"
KEY_DERIVATIONS = (KEY_DERIVATION_HKDF, KEY_DERIVATION_MASTER)


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short stable id of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class KeyInitResult:
    keys_dir: Path
    created: list[str]
    kept: list[str]
    key_id: str


def init_keys(keys_dir: Path | None = None, *, force: bool = False) -> KeyInitResult:
    """Create a local signing key pair and pseudonymisation key; keep existing ones unless ``force``."""
    keys_dir = keys_dir or get_settings().keys_dir
    keys_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(keys_dir, 0o700)
    created: list[str] = []
    kept: list[str] = []
    private_path = keys_dir / SIGNING_KEY_FILE
    if force or not private_path.exists():
        _new_signing_key(keys_dir)
        created += [SIGNING_KEY_FILE, PUBLIC_KEY_FILE]
    else:
        kept += [SIGNING_KEY_FILE, PUBLIC_KEY_FILE]
    pseudo_path = keys_dir / PSEUDONYMISATION_KEY_FILE
    if force or not pseudo_path.exists():
        _write_secret(pseudo_path, base64.b64encode(secrets.token_bytes(32)) + b"\n")
        created.append(PSEUDONYMISATION_KEY_FILE)
    else:
        kept.append(PSEUDONYMISATION_KEY_FILE)
    return KeyInitResult(keys_dir, created, kept, key_id(load_public_key(keys_dir)))


def rotate_signing_key(keys_dir: Path | None = None) -> tuple[str, str]:
    """A new signing key pair; the current public key moves to ``retired/`` and stays trusted, so manifests and
    audit heads signed before keep verifying. The pseudonymisation key is kept (pseudonyms must not change).
    Returns (retired key id, new key id)."""
    keys_dir = keys_dir or get_settings().keys_dir
    if not (keys_dir / PUBLIC_KEY_FILE).exists():
        raise KeyError_(f"no key to rotate in {keys_dir}: run `charter keys init` first")
    old = key_id(load_public_key(keys_dir))
    return old, _new_signing_key(keys_dir)


def _new_signing_key(keys_dir: Path) -> str:
    """Write a new signing key pair, retiring the current public key (if any) first; return the new key id."""
    public_path = keys_dir / PUBLIC_KEY_FILE
    if public_path.exists():
        current = serialization.load_pem_public_key(public_path.read_bytes())
        if isinstance(current, Ed25519PublicKey):
            retired = keys_dir / "retired"
            retired.mkdir(exist_ok=True)
            (retired / f"{key_id(current)}.pub").write_bytes(public_path.read_bytes())
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_secret(keys_dir / SIGNING_KEY_FILE, pem)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tmp = public_path.with_suffix(".tmp")
    tmp.write_bytes(public_pem)
    os.replace(tmp, public_path)
    return key_id(private.public_key())


def _write_secret(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def load_signing_key(keys_dir: Path | None = None) -> Ed25519PrivateKey:
    pem = os.environ.get("CHARTER_SIGNING_KEY")
    source = "environment variable CHARTER_SIGNING_KEY"
    if not pem:
        path = (keys_dir or get_settings().keys_dir) / SIGNING_KEY_FILE
        source = str(path)
        if not path.exists():
            raise KeyError_(f"no signing key: set CHARTER_SIGNING_KEY or run `charter keys init` (looked for {path})")
        pem = path.read_text(encoding="ascii")
    try:
        key = serialization.load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"the signing key in {source} is not a PEM Ed25519 private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"the signing key in {source} is not an Ed25519 key")
    return key


def load_public_key(keys_dir: Path | None = None) -> Ed25519PublicKey:
    pem = os.environ.get("CHARTER_PUBLIC_KEY")
    source = "environment variable CHARTER_PUBLIC_KEY"
    if not pem:
        path = (keys_dir or get_settings().keys_dir) / PUBLIC_KEY_FILE
        source = str(path)
        if not path.exists():
            if os.environ.get("CHARTER_SIGNING_KEY"):
                return load_signing_key(keys_dir).public_key()
            raise KeyError_(f"no public key: set CHARTER_PUBLIC_KEY or run `charter keys init` (looked for {path})")
        pem = path.read_text(encoding="ascii")
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, TypeError) as exc:
        raise KeyError_(f"the public key in {source} is not a PEM Ed25519 public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise KeyError_(f"the public key in {source} is not an Ed25519 key")
    return key


def load_trusted_public_keys(keys_dir: Path | None = None) -> dict[str, Ed25519PublicKey]:
    """The current public key plus retired ones (``retired/*.pub``), by key id.

    Rotation keeps old signatures verifiable.
    """
    keys = {}
    current = load_public_key(keys_dir)
    keys[key_id(current)] = current
    retired_dir = (keys_dir or get_settings().keys_dir) / "retired"
    for path in sorted(retired_dir.glob("*.pub")) if retired_dir.is_dir() else []:
        key = serialization.load_pem_public_key(path.read_bytes())
        if isinstance(key, Ed25519PublicKey):
            keys[key_id(key)] = key
    return keys


def sign(data: bytes, key: Ed25519PrivateKey | None = None) -> tuple[str, str]:
    """Sign ``data``; return (base64 signature, key id)."""
    key = key or load_signing_key()
    return base64.b64encode(key.sign(data)).decode("ascii"), key_id(key.public_key())


def verify_signature(data: bytes, signature_b64: str, public_key: Ed25519PublicKey) -> bool:
    try:
        public_key.verify(base64.b64decode(signature_b64, validate=True), data)
    except (InvalidSignature, ValueError):
        return False
    return True


def load_pseudonymisation_key(keys_dir: Path | None = None) -> bytes:
    value = os.environ.get("CHARTER_PSEUDONYMISATION_KEY")
    source = "environment variable CHARTER_PSEUDONYMISATION_KEY"
    if not value:
        path = (keys_dir or get_settings().keys_dir) / PSEUDONYMISATION_KEY_FILE
        source = str(path)
        if not path.exists():
            raise KeyError_(
                "no pseudonymisation key: set CHARTER_PSEUDONYMISATION_KEY or run `charter keys init` "
                f"(looked for {path})"
            )
        value = path.read_text(encoding="ascii")
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except ValueError as exc:
        raise KeyError_(f"the pseudonymisation key in {source} is not base64") from exc
    if len(key) < 32:
        raise KeyError_(f"the pseudonymisation key in {source} is shorter than 32 bytes")
    return key


def derive_use_case_key(master: bytes, use_case: str) -> bytes:
    """The pseudonymisation key of ``use_case``: HKDF-SHA256 of the master key (see the module's docstring)."""
    if not use_case:
        raise KeyError_("a per-use-case pseudonymisation key needs the use case id")
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=PSEUDONYM_KDF_SALT, info=PSEUDONYM_KDF_INFO + use_case.encode()
    )
    return hkdf.derive(master)


def pseudonymisation_key_for(
    use_case: str, derivation: str = KEY_DERIVATION_HKDF, keys_dir: Path | None = None
) -> bytes:
    """The key that pseudonymises ``use_case``'s data under ``derivation``: new copies use the default, a copy
    made with the master key (:data:`KEY_DERIVATION_MASTER`) is matched with the master key."""
    if derivation not in KEY_DERIVATIONS:
        raise KeyError_(
            f"unknown pseudonymisation key derivation {derivation!r}: use one of {', '.join(KEY_DERIVATIONS)}"
        )
    master = load_pseudonymisation_key(keys_dir)
    return master if derivation == KEY_DERIVATION_MASTER else derive_use_case_key(master, use_case)
