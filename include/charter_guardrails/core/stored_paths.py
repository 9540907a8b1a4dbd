"""Paths as the ledger stores them, and the folders a reader may open.

A path written to the ledger (a model card, a model artifact, a report, a dataset's location) is stored
**relative to its folder** (``$CHARTER_HOME/models``, ``CHARTER_REPORTS_DIR``, ``CHARTER_DATA_DIR``) when it
lies inside it, so that a state restored from a backup or mounted elsewhere keeps its links: a reader joins
the stored value to the folder of the current settings. Rows written before hold absolute paths; they are
read as they are. A path outside its folder is stored as given (absolute): nothing is lost.

Reading a file on behalf of someone (the governance view serves model cards and reports) goes through
:func:`confined`: the path, symlinks resolved, must lie inside the one folder the route serves and outside the
keys and audit folders, whatever the ledger says.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from charter_guardrails.core.settings import Settings, get_settings


def to_stored(path: str | Path | None, folder: Path) -> str | None:
    """``path`` as the ledger stores it: relative (POSIX separators) when it lies inside ``folder``.

    A relative ``path`` is taken as already relative to ``folder`` and kept. The comparison resolves
    symlinks on both sides, so ``/srv/state -> /mnt/disk1/state`` gives the same relative path.
    """
    if path is None or str(path) == "":
        return None if path is None else ""
    candidate = Path(path)
    if not candidate.is_absolute():
        return PurePosixPath(*candidate.parts).as_posix()
    root = folder.resolve()
    resolved = candidate.resolve()
    for inner, outer in ((candidate, folder), (resolved, root)):
        if inner.is_relative_to(outer):
            return inner.relative_to(outer).as_posix()
    return str(candidate)


def from_stored(value: str | None, folder: Path) -> Path | None:
    """The file a stored value names: an absolute value (an older row) as it is, a relative one inside ``folder``."""
    if not value:
        return None
    path = Path(value)
    return path if path.is_absolute() else folder / path


def private_folders(settings: Settings | None = None) -> tuple[Path, ...]:
    """Folders no route of the view ever serves from: the keys and the audit anchor's folder."""
    settings = settings or get_settings()
    return (settings.keys_dir.resolve(), settings.audit_anchor.parent.resolve())


def confined(path: Path, folder: Path, settings: Settings | None = None) -> Path | None:
    """``path`` with its symlinks resolved, if it lies inside ``folder`` and outside the private folders; else ``None``.

    The check is on the resolved path (``Path.resolve`` + ``is_relative_to``): ``..`` and links that lead out of
    ``folder``, or into the keys from inside it, are refused.
    """
    target = path.resolve()
    if not target.is_relative_to(folder.resolve()):
        return None
    if any(target.is_relative_to(private) for private in private_folders(settings)):
        return None
    return target
