"""What retention deletes: an item (one file, or one run folder), its age, its size and its digest.

An item is named three ways. ``path`` is where it is on disk. ``rel`` is its path relative to the state
folders, rooted at the folder's name (``work/…``, ``reports/…``, ``data/…``, ``models/…``): the same as
relative to ``CHARTER_HOME`` in the default layout, and stable when a folder is configured elsewhere. ``label``
is ``rel`` with every name that may come from outside the project (the name of a delivered file, which a
sender may have made from a person's name) replaced by a keyed hash: the only form written to the audit chain,
the ledger and the command's output. ``path_key`` is the keyed hash of ``rel``, with the use case's
pseudonymisation key, that finds the ledger row of a deleted file again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from charter_guardrails.core.keys import pseudonymisation_key_for


@dataclass(frozen=True)
class Item:
    """Something of a use case that retention may delete, and the rule that sets its lifetime."""

    #: The storage kind's name (``working_copy``, ``report``, ``batch``, ``model_artifact``).
    kind: str
    use_case: str
    path: Path
    rel: str
    label: str
    #: When its retention period started: its last change, or a model version's retirement.
    since: datetime
    #: The policy key that applied, and the number of days it gives.
    rule: str
    days: int
    run_id: str | None = None
    dataset: str | None = None
    model_version: int | None = None

    def age_days(self, now: datetime) -> float:
        return (now - self.since).total_seconds() / 86400

    def expired(self, now: datetime) -> bool:
        return self.age_days(now) > self.days


@dataclass(frozen=True)
class Content:
    """Size and digest of an item as it is on disk now."""

    size_bytes: int
    sha256: str
    files: int


@dataclass
class Planned:
    """An item past its retention: deleted by ``apply`` unless something keeps it."""

    item: Item
    content: Content
    age_days: float
    #: Why it is kept (legal holds, open incidents); empty: it is deleted.
    kept_because: list[str] = field(default_factory=list)
    #: Its deletion is already recorded (an interrupted run): ``apply`` unlinks it without a new event.
    recorded: bool = False

    @property
    def action(self) -> str:
        if self.kept_because:
            return "keep"
        return "finish" if self.recorded else "delete"

    def to_json_dict(self) -> dict[str, Any]:
        item = self.item
        return {
            "action": self.action,
            "kind": item.kind,
            "use_case": item.use_case,
            "path": item.label,
            "run_id": item.run_id,
            "dataset": item.dataset,
            "model_version": item.model_version,
            "size_bytes": self.content.size_bytes,
            "files": self.content.files,
            "sha256": self.content.sha256,
            "rule": item.rule,
            "days": item.days,
            "age_days": round(self.age_days, 1),
            "since": item.since.isoformat(),
            "kept_because": self.kept_because,
        }


def mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def newest_change(path: Path) -> datetime:
    """The last change under ``path``: a folder still being written to is as young as its newest file."""
    newest = path.stat().st_mtime
    if path.is_dir():
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                try:
                    newest = max(newest, (Path(root) / name).stat().st_mtime)
                except FileNotFoundError:  # removed while we walk: it no longer counts
                    continue
    return datetime.fromtimestamp(newest, UTC)


def _file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def content_of(path: Path) -> Content:
    """Size and SHA-256 of a file; of a folder, the SHA-256 of its files' relative paths and SHA-256.

    A folder's digest is over the sorted lines ``<relative path>\\0<sha256>\\n`` of its regular files, so that it
    changes when any file is renamed, added, removed or edited; symbolic links are not followed.
    """
    if not path.is_dir():
        return Content(path.stat().st_size, _file_sha256(path), 1)
    lines: list[str] = []
    size = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if file.is_symlink() or not file.is_file():
                continue
            size += file.stat().st_size
            lines.append(f"{file.relative_to(path).as_posix()}\0{_file_sha256(file)}\n")
    digest = hashlib.sha256("".join(sorted(lines)).encode("utf-8")).hexdigest()
    return Content(size, digest, len(lines))


def path_key(use_case: str, rel: str) -> str:
    """The keyed hash (HMAC-SHA256, the use case's pseudonymisation key) of an item's relative path."""
    return hmac.new(pseudonymisation_key_for(use_case), rel.encode("utf-8"), hashlib.sha256).hexdigest()


def hashed_name(use_case: str, name: str) -> str:
    """A file name that may carry personal data, as ``k-<keyed hash>`` plus its (short, plain) extension."""
    suffix = PurePosixPath(name).suffix
    keep = suffix if 1 < len(suffix) <= 9 and suffix[1:].isalnum() else ""
    return f"k-{path_key(use_case, name)[:16]}{keep}"


def rel_path(root_name: str, root: Path, path: Path) -> str:
    return PurePosixPath(root_name, *path.relative_to(root).parts).as_posix()


__all__ = [
    "Content",
    "Item",
    "Planned",
    "content_of",
    "hashed_name",
    "mtime",
    "newest_change",
    "path_key",
    "rel_path",
]
