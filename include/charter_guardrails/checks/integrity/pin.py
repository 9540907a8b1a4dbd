"""The file the guardrails checked is the file that gets used: a pinned reference to verified bytes.

Once a delivery is verified intact against its signed manifest, the run carries a :class:`PinnedFile`: where
the file is (relative to the data folder), the Merkle root and size of the bytes that were verified, with the
algorithm and chunk size that root was computed with, the manifest it matched and, for a store that versions
its objects, the version id (local files have none). It holds digests and sizes only, never a data value.

Every later read checks the file against it (:func:`verify_pinned`). The step that builds what is used (the
training input, an accepted batch) reads the delivery once into a private copy and uses the copy only if the
copy matches the pin (:func:`copy_pinned`): the bytes it uses are the bytes it hashed, with no gap between the
check and the use. A mismatch, a missing, emptied or changing file, is a ``data_changed``
:class:`~charter_guardrails.checks.integrity.outcome.Verification`: the integrity verdict and the incident of a
file that no longer matches its manifest.

The root is the manifest's RFC 6962 Merkle root (SHA-256 leaves by default) rather than a whole-file SHA-256:
it is what the verification computed from the very bytes it compared, so pinning it needs no second read (a
second read would not be the verified bytes), and the streaming hasher (:func:`.hashing.hash_file`: bounded
memory, every core, refuses a file that changes while it is read) checks it again.

Standard library only, like the rest of the ``charter verify`` path.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from charter_guardrails.checks.integrity.comparison import Comparison, compare_file
from charter_guardrails.checks.integrity.manifest import Outcome
from charter_guardrails.checks.integrity.outcome import Verification
from charter_guardrails.core.errors import (
    ConfigError,
    DatasetFileChanged,
    DatasetFileEmpty,
    DatasetFileMissing,
    DatasetFileUnreadable,
)

#: What to do after a mismatch, in every summary.
REMEDY = "deliver the file again, then re-run the DAG"


@dataclass(frozen=True)
class PinnedFile:
    """The bytes a run verified: digests and sizes only (it goes through XCom)."""

    use_case: str
    dataset: str
    #: the file, relative to the data folder (POSIX)
    path: str
    format: str
    algorithm: str
    chunk_size: int
    #: the Merkle root of the verified bytes (``algorithm`` leaves of ``chunk_size`` bytes)
    merkle_root: str
    size_bytes: int
    manifest_id: int
    row_count: int | None = None
    #: the object's version id where the store has one (local files have none)
    version_id: str | None = None

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json_dict(cls, data: Any) -> PinnedFile:
        """The pin an upstream task pushed; refuses anything else (a clear error, never a guess)."""
        names = {f.name for f in fields(cls)}
        required = {f.name for f in fields(cls) if f.name not in {"row_count", "version_id"}}
        if not isinstance(data, dict) or not required <= set(data) or not set(data) <= names:
            keys = sorted(data) if isinstance(data, dict) else type(data).__name__
            raise ConfigError(
                f"the pinned reference of the verified file is malformed (keys {keys}, expected {sorted(names)}); "
                "re-run the DAG from its integrity step"
            )
        return cls(**data)

    @property
    def ref(self) -> str:
        return f"{self.use_case}.{self.dataset}"

    def document(self) -> dict[str, Any]:
        """A manifest document with only what the pin knows (no chunk list: a mismatch is not localised)."""
        return {
            "format": self.format,
            "algorithm": self.algorithm,
            "chunk_size": self.chunk_size,
            "merkle_root": self.merkle_root,
            "size_bytes": self.size_bytes,
        }


def pin_of(
    verification: Verification, document: dict[str, Any], data_dir: Path, *, version_id: str | None = None
) -> PinnedFile | None:
    """The pin of an intact verification against the manifest ``document``; None when it was not intact.

    :param version_id: the version of the object the verified file was staged from (objects only).
    """
    if not verification.intact or verification.manifest_id is None:
        return None
    root = data_dir.resolve()
    path = Path(verification.path).resolve()
    if not path.is_relative_to(root):
        raise ConfigError(
            f"{verification.use_case}.{verification.dataset}: {path.name} is outside the data folder {root}; "
            "deliver it under the data folder (CHARTER_DATA_DIR)"
        )
    return PinnedFile(
        use_case=verification.use_case,
        dataset=verification.dataset,
        path=path.relative_to(root).as_posix(),
        format=str(document.get("format", "binary")),
        algorithm=str(document["algorithm"]),
        chunk_size=int(document["chunk_size"]),
        merkle_root=str(document["merkle_root"]),
        size_bytes=int(document["size_bytes"]),
        manifest_id=verification.manifest_id,
        row_count=verification.row_count,
        version_id=version_id,
    )


def _usable(pin: PinnedFile, document: dict[str, Any] | None) -> dict[str, Any]:
    """The manifest document to compare with (it localises a change), if it is the one the pin was taken from."""
    if document is not None and document.get("merkle_root") == pin.merkle_root:
        return document
    if pin.format == "parquet_dir":
        raise ConfigError(
            f"{pin.ref}: the manifest #{pin.manifest_id} of the verified directory is needed to check it again; "
            "register the dataset again with `charter hash`, then re-run the DAG"
        )
    return pin.document()


def _compare(path: Path, pin: PinnedFile, document: dict[str, Any]) -> tuple[Comparison, str | None]:
    """The comparison, and why the file could not be read as a whole (gone, emptied, changing) if it could not."""
    try:
        comparison = compare_file(path, document)
    except DatasetFileMissing:
        return Comparison(False), "it no longer exists"
    except DatasetFileEmpty:
        return Comparison(False, actual_size=0), "it is now empty"
    except DatasetFileChanged:
        return Comparison(False), "it was being changed while it was read"
    if "chunks" not in document and "files" not in document:
        comparison.changed_chunks, comparison.ranges = [], []  # no chunk list to localise against
    # the document is the pin's (same root): intact is the pin's root and size, checked again for clarity
    comparison.intact = comparison.intact and (comparison.actual_root, comparison.actual_size) == (
        pin.merkle_root,
        pin.size_bytes,
    )
    return comparison, None


def verify_pinned(
    path: str | os.PathLike[str],
    pin: PinnedFile,
    *,
    document: dict[str, Any] | None = None,
    shown_as: str | os.PathLike[str] | None = None,
) -> Verification:
    """Whether ``path`` still holds the bytes of ``pin``, streamed through the project's Merkle hasher.

    :param document: the signed manifest the pin was taken from (its chunk list localises a change; a directory
        needs it); ignored unless its root is the pin's.
    :param shown_as: the file to name in the verdict (default ``path``), e.g. the delivery a copy was made from.
    :return: ``intact``, or ``data_changed`` with where the file differs (chunks, rows) when the manifest says.
    :raises DatasetFileUnreadable: the file cannot be read (permissions): fix them, then retry.
    """
    from charter_guardrails.checks.integrity.verification import _describe

    path = Path(path)
    name = Path(shown_as or path).name
    expected = _usable(pin, document)
    comparison, unread = _compare(path, pin, expected)
    facts: dict[str, Any] = {"merkle_root": pin.merkle_root}
    if comparison.intact:
        summary = f"{pin.ref}: {name} is the file verified in this run (manifest #{pin.manifest_id})"
    else:
        what = unread or _describe(comparison, expected)
        summary = (
            f"{pin.ref}: {name} no longer matches the bytes verified in this run against manifest "
            f"#{pin.manifest_id}: {what}; {REMEDY}"
        )
        facts = {"expected_root": pin.merkle_root, "expected_size_bytes": pin.size_bytes, **comparison.facts()}
    return Verification(
        Outcome.INTACT if comparison.intact else Outcome.DATA_CHANGED,
        pin.use_case,
        pin.dataset,
        str(Path(shown_as or path)),
        summary,
        facts,
        manifest_id=pin.manifest_id,
        row_count=pin.row_count,
        size_bytes=pin.size_bytes,
    )


def copy_pinned(
    source: str | os.PathLike[str], pin: PinnedFile, target: str | os.PathLike[str], *, document: dict[str, Any] | None
) -> Verification:
    """Copy ``source`` to ``target`` (one read of the delivery) and keep the copy only if it matches ``pin``.

    The copy is checked, not the source: what the caller then reads at ``target`` is exactly what was hashed.
    On a mismatch nothing is written at ``target`` (a file already there is left as it was).

    :return: the verification of the copy, naming ``source``.
    :raises DatasetFileUnreadable: the delivery cannot be read (permissions) or the copy cannot be written.
    """
    source, target = Path(source), Path(target)
    partial = target.with_name(f".{target.name}.partial")
    discard(partial)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if source.is_dir():
            shutil.copytree(source, partial)
        else:
            shutil.copyfile(source, partial)
    except FileNotFoundError:
        discard(partial)  # the delivery is gone: verify_pinned says so on the (missing) copy
    except OSError as exc:
        discard(partial)
        raise DatasetFileUnreadable(
            f"{pin.ref}: {source.name} could not be copied for use ({exc.strerror}); check the permissions and the "
            "free space of the data and work folders, then retry"
        ) from None
    verification = verify_pinned(partial, pin, document=document, shown_as=source)
    if verification.intact:
        if target.is_dir():
            discard(target)  # a file replaces a file atomically; a directory must be moved out of the way
        os.replace(partial, target)
    else:
        discard(partial)
    return verification


def discard(path: Path) -> None:
    """Remove a copy (a file or a directory) if it is there."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
