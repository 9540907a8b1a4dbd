"""Model artifacts on disk: written atomically, and read back only if their SHA-256 is the recorded one.

The artifact is a joblib pickle. Unpickling runs code, so :func:`load_model` checks the file's
SHA-256 against the one recorded at training *before* it unpickles anything.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from charter_guardrails.core.errors import ArtifactIntegrityError

if TYPE_CHECKING:
    import pandas as pd

ARTIFACT_NAME = "model.joblib"
HOLDOUT_NAME = "holdout.parquet"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_model(pipeline: Any, path: Path) -> str:
    """Write ``pipeline`` with joblib, atomically; return the file's SHA-256."""
    import joblib

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    joblib.dump(pipeline, tmp)
    os.replace(tmp, path)
    return file_sha256(path)


def load_model(path: Path | str, expected_sha256: str) -> Any:
    """Load a model artifact only if its SHA-256 is the one recorded at training.

    :param path: the joblib file.
    :param expected_sha256: the hex digest recorded in the ledger (``ModelVersion.artifact_sha256``).
    :raises ArtifactIntegrityError: the file is missing or differs; nothing was unpickled.
    """
    import joblib

    path = Path(path)
    if not path.is_file():
        raise ArtifactIntegrityError(path, expected_sha256, None)
    actual = file_sha256(path)
    if not hmac.compare_digest(actual, expected_sha256.lower()):
        raise ArtifactIntegrityError(path, expected_sha256, actual)
    return joblib.load(path)


def save_holdout(holdout: pd.DataFrame, path: Path) -> Path:
    """Write the held-out rows to Parquet, atomically (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    holdout.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path
