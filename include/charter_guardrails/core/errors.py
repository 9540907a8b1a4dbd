"""Every exception the library raises on purpose, under one base.

The families decide what happens next, so callers catch a family rather than a list of names:

- :class:`ConfigError`: a configuration or usage problem (policy, suite, keys, arguments, a manifest that
  cannot drive a verification, an unusable dataset file). Retrying cannot help; the CLI exits 2 and its
  message says what to fix.
- :class:`InfrastructureError`: a service or a disk failed (ledger unreachable, reports folder full, an
  alert not delivered). Transient: Airflow retries the task, the relay retries the alert.
- :class:`DatasetReadError`: a dataset cannot be read as tabular data; checks turn it into a failed
  verdict that names the file, never a cell value.
- :class:`ArtifactIntegrityError`: a model artifact changed since it was trained (an incident, not a retry).
- :class:`IncidentDecisionRequired`: an incident cannot be resolved before its Art. 33 decision is recorded.

This module imports only the standard library, so the light verify path can raise and catch all of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class CharterError(Exception):
    """Base of every exception raised on purpose by ``charter_guardrails``."""


# Configuration and usage: the CLI exits 2.


class ConfigError(CharterError):
    """A configuration problem: the message says what is wrong and what to do."""


class UsageError(ConfigError):
    """Wrong use of a command (exit 2)."""


class PolicyError(ConfigError):
    """A policy file is invalid. ``str()`` names the file, the key path and the reason."""

    def __init__(self, path: Path, key: str, reason: str, *, all_errors: list[tuple[str, str]] | None = None) -> None:
        self.path = Path(path)
        self.key = key
        self.reason = reason
        self.all_errors = all_errors or [(key, reason)]
        lines = [f"{self.path}: {k or '<file>'}: {r}" for k, r in self.all_errors]
        super().__init__("\n".join(lines))

    def to_json_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "errors": [{"key": k, "reason": r} for k, r in self.all_errors]}


class SuiteError(ConfigError):
    """A suite file is invalid; the message names the file, the expectation and the reason."""

    def __init__(self, path: Path, where: str, reason: str) -> None:
        self.path = Path(path)
        self.where = where
        self.reason = reason
        super().__init__(f"{self.path}: {where or '<file>'}: {reason}")

    def to_json_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "where": self.where, "reason": self.reason}


class KeyError_(ConfigError):
    """A key is missing or unreadable."""


class LedgerNotMigrated(ConfigError):
    """The database exists but its schema is not at the current migration."""


class ManifestUnusable(ConfigError):
    """A manifest (signed, so not edited since) whose fields cannot drive a verification: another tool's or
    version's."""


class DatasetFileError(ConfigError):
    """A dataset file cannot be hashed. Nothing is recorded (no partial manifest)."""


class DatasetFileMissing(DatasetFileError):
    """The file does not exist."""


class DatasetFileUnreadable(DatasetFileError):
    """The file exists but cannot be read (permissions, not a regular file, I/O error)."""


class DatasetFileEmpty(DatasetFileError):
    """The file is empty: there is nothing to protect, which is almost always a mistake upstream."""


class DatasetFileChanged(DatasetFileError):
    """The file changed while it was being hashed: the digest would describe no real state of it."""


# A state the user must complete first: the CLI exits 1, the view answers 409.


class IncidentDecisionRequired(CharterError):
    """An incident cannot be resolved while its GDPR Art. 33 notification decision is open; the message
    names the missing decision and the command and form that record it."""

    def __init__(self, incident_id: int, message: str) -> None:
        self.incident_id = incident_id
        super().__init__(message)

    def to_json_dict(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "missing": "art33_decision"}


# Infrastructure: transient, retried.


class InfrastructureError(CharterError):
    """A service or a disk failed; retrying later may succeed (Airflow retries the task)."""


class LedgerUnavailable(InfrastructureError):
    """The ledger database cannot be reached. Infrastructure: Airflow retries these."""


class ReportWriteError(InfrastructureError):
    """A report could not be written (reports folder full, read-only...). Infrastructure: Airflow retries it.

    Raised only after the verdict was recorded in the ledger, so the verdict is never lost with its report.
    """


class DeliveryError(InfrastructureError):
    """This attempt failed; the relay retries later with backoff."""


# Data: the input itself is the problem.


class DatasetReadError(CharterError):
    """A dataset cannot be read. ``kind`` is one of: missing, empty, binary (also archives), encoding, parse,
    schema, sql, too_large (a cell above :data:`~charter_guardrails.readers.files.MAX_CELL_CHARS`).

    Messages name the file and what to do; they never quote cell values.
    """

    def __init__(self, kind: str, message: str, *, path: str | None = None) -> None:
        self.kind = kind
        self.path = path
        super().__init__(message)

    def to_json_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "message": str(self)}


class ArtifactIntegrityError(CharterError):
    """A model artifact does not match the SHA-256 recorded when it was trained (Sûreté 2: an incident)."""

    def __init__(self, path: Path, expected: str, actual: str | None) -> None:
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        found = "the file is missing" if actual is None else f"its SHA-256 is {actual}"
        super().__init__(f"{path}: model artifact refused, expected SHA-256 {expected} but {found}; it was not loaded")


class LedgerTampered(CharterError):
    """Rows a decision rests on differ from the audit chain's last record of them: the decision is refused."""


def key_path(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a key path of the policy file: ``datasets[0].columns[2].role``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
