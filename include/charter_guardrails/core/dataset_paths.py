"""Where a dataset's bytes are read from: a file of the data folder, or the staged copy of an object.

A dataset has one source (``Dataset._one_source``): a ``path`` under the data folder, the ``uri`` of an object
(staged under ``<data folder>/.objects/``, :mod:`charter_guardrails.readers.objects`), or a ``table``. A delivery
(an inference batch named by the run's parameters or an asset event) is another file of the data folder, or,
for an object dataset, another object of the same store. Nothing here leaves the data folder or the dataset's
store: a path with ``..``, an absolute path elsewhere, or a batch in another bucket is refused with a clear error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from charter_guardrails.core.errors import ConfigError

if TYPE_CHECKING:
    from charter_guardrails.core.policy_models import Dataset


def checked_uri(value: str | None) -> str | None:
    """A dataset's ``uri`` as the policy takes it: an object URI (``ValueError`` with the reason otherwise)."""
    if value is not None:
        from charter_guardrails.readers.objects import parse_uri

        try:
            parse_uri(value)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
    return value


def check_one_source(dataset: Dataset) -> None:
    """A dataset has one source (``path``, ``uri`` or ``table``); ``conn_id`` goes with a ``uri`` only."""
    from charter_guardrails.core.policy_models import DatasetFormat

    sources = [key for key in ("path", "uri", "table") if getattr(dataset, key)]
    if len(sources) > 1:
        raise ValueError(f"a dataset has one source: path, uri or table, not {' and '.join(sources)}")
    if dataset.format is not DatasetFormat.SQL and not (dataset.path or dataset.uri):
        raise ValueError(f"a dataset with format: {dataset.format.value} needs a path (or the uri of an object)")
    if dataset.conn_id and not dataset.uri:
        raise ValueError("conn_id names the credentials of an object: only a dataset with a uri has it")


def resolved_path(dataset: Dataset, data_dir: Path) -> Path:
    """The dataset's own file (an object's staged copy); refuses a path that leaves the data folder."""
    if dataset.uri is not None:
        from charter_guardrails.readers.objects import staged_path

        return staged_path(dataset.uri, data_dir)
    if dataset.path is None:
        raise ConfigError(f"dataset {dataset.id!r} is a SQL table and has no path")
    root = data_dir.resolve()
    target = (root / dataset.path).resolve()
    if not target.is_relative_to(root):
        raise ConfigError(f"dataset {dataset.id!r}: path {dataset.path!r} leaves the data folder {root}")
    return target


def delivery_path(dataset: Dataset, path: str | Path | None, data_dir: Path) -> Path:
    """The file of the delivery at ``path`` (relative to the data folder, or absolute inside it), or of the object
    ``path`` names (its staged copy); the dataset's own file when ``path`` is empty."""
    from charter_guardrails.core.policy_models import validation_reason

    if path is None or str(path) == "":
        return resolved_path(dataset, data_dir)
    if dataset.is_object or "://" in str(path):
        from charter_guardrails.readers.objects import staged_path

        return staged_path(object_uri(dataset, str(path)), data_dir)
    root = data_dir.resolve()
    candidate = Path(path)
    if candidate.is_absolute():
        if not candidate.resolve().is_relative_to(root):
            raise ConfigError(f"dataset {dataset.id!r}: {candidate} is outside the data folder {root}")
        candidate = candidate.resolve().relative_to(root)
    try:
        other = type(dataset).model_validate({**dataset.model_dump(mode="json"), "path": candidate.as_posix()})
    except ValidationError as exc:
        raise ConfigError(
            f"dataset {dataset.id!r}: invalid delivery path {str(path)!r}: {validation_reason(exc.errors()[0])}"
        ) from None
    return resolved_path(other, data_dir)


def object_uri(dataset: Dataset, delivery: str | None = None) -> str:
    """The object a run of ``dataset`` reads: ``delivery`` if given (it must be in the store of the dataset's
    ``uri``: same scheme and bucket), else the dataset's ``uri``."""
    from charter_guardrails.readers.objects import parse_uri

    if dataset.uri is None:
        raise ConfigError(
            f"dataset {dataset.id!r} reads files of the data folder, not {delivery!r}: give it the uri of an object "
            "in that store (and its conn_id) to read deliveries there"
        )
    if not delivery:
        return dataset.uri
    try:
        scheme, bucket, _ = parse_uri(delivery)
    except ConfigError as exc:
        raise ConfigError(f"dataset {dataset.id!r}: {exc}") from None
    if (scheme, bucket) != parse_uri(dataset.uri)[:2]:
        where = f"{scheme}://{bucket}" if bucket else f"{scheme}://"
        raise ConfigError(
            f"dataset {dataset.id!r}: the delivery is in {where}, outside the store of the dataset's uri; deliver "
            "it there, or change the policy's uri"
        )
    return delivery
