"""Where a use case keeps data about people: the files a data-subject request searches and may change.

Per use case (every policy of the policies folder):

- ``raw``: a file a dataset of the policy declares;
- ``delivery``: another CSV or Parquet file of its data folder (variants, earlier deliveries);
- ``accepted`` and ``quarantine``: the batches the inference guardrails passed on or held back
  (``<data>/<use case>/accepted/``, ``<data>/<use case>/quarantine/``);
- ``working_copy``: the pseudonymised (and minimised) copies the refresh runs wrote under
  ``$CHARTER_HOME/work/<use case>/<run>/``.

Each place knows how to read its file: the CSV dialect of the dataset it belongs to (the longest dataset
file stem its name holds; a file that matches none has its dialect detected), and for a working copy the
keys its pseudonyms were made with (:func:`~charter_guardrails.checks.privacy.pseudonymise.key_for_copy`).
SQL datasets are not files, and an object dataset lives in its store: both are listed as not searched (an object is
searched in its staged copies under the data folder, ``.objects/<scheme>/<bucket>/...``).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from charter_guardrails.core.errors import ConfigError
from charter_guardrails.core.settings import get_settings

if TYPE_CHECKING:
    from charter_guardrails.core.policy import UseCasePolicy
    from charter_guardrails.core.policy_models import CsvDialect

SUFFIXES = frozenset({".csv", ".parquet"})
KINDS = ("raw", "delivery", "accepted", "quarantine", "working_copy")


@dataclass(frozen=True)
class Place:
    use_case: str
    #: The dataset id of the policy the file belongs to ("" when none matches).
    dataset: str
    kind: str
    path: Path
    dialect: CsvDialect | None = None
    #: The keys that may have made this copy's pseudonyms (working copies only).
    keys: tuple[bytes, ...] = field(default=(), repr=False)

    @property
    def is_parquet(self) -> bool:
        return self.path.suffix.lower() == ".parquet"

    def shown_path(self) -> str:
        """The path relative to ``CHARTER_HOME`` or the data folder when inside one (reports stay portable)."""
        settings = get_settings()
        for root, prefix in ((settings.data_dir, "data"), (settings.home, "")):
            try:
                relative = self.path.resolve().relative_to(root.resolve())
            except ValueError:
                continue
            return f"{prefix}/{relative.as_posix()}" if prefix else relative.as_posix()
        return str(self.path)


def load_policies(use_case: str | None) -> list[UseCasePolicy]:
    """The policies to search: ``use_case`` alone, or every policy of the policies folder.

    :raises ConfigError: an unknown use case, or an empty policies folder.
    """
    from charter_guardrails.core.policy import load_policy, policy_files

    if use_case:
        return [load_policy(use_case)]
    files = policy_files()
    if not files:
        raise ConfigError(
            f"no policy in {get_settings().policies_dir}: set CHARTER_POLICIES_DIR to the folder of the policies"
        )
    return [load_policy(f) for f in files]


def data_folders(policy: UseCasePolicy) -> list[Path]:
    """The use case's folder of the data folder, and the folder of each declared file."""
    data_dir = get_settings().data_dir
    folders = {data_dir / policy.id}
    for dataset in policy.datasets:
        if dataset.path and len(Path(dataset.path).parts) > 1:
            folders.add(data_dir / Path(dataset.path).parts[0])
        if dataset.uri:  # an object's staged copies, and those of the batches delivered beside it
            folders.add(dataset.resolve_path(data_dir).parent)
    return sorted(f for f in folders if f.is_dir())


def _dataset_of(policy: UseCasePolicy, name: str) -> str:
    """The dataset whose file stem is the longest one in ``name`` (``inference_batch__drifted`` → inference)."""
    best, length = "", 0
    for dataset in policy.datasets:
        if dataset.path or dataset.uri:
            stem = PurePosixPath(dataset.path or dataset.uri or "").stem
            if stem in name and len(stem) > length:
                best, length = dataset.id, len(stem)
    return best


def _kind(policy: UseCasePolicy, path: Path) -> str:
    data_dir = get_settings().data_dir.resolve()
    declared = {d.resolve_path(data_dir).resolve() for d in policy.datasets if d.path or d.uri}  # staged objects
    if path.resolve() in declared:
        return "raw"
    parts = set(path.resolve().relative_to(data_dir).parts[:-1]) if path.resolve().is_relative_to(data_dir) else set()
    return "quarantine" if "quarantine" in parts else "accepted" if "accepted" in parts else "delivery"


def _dialect(policy: UseCasePolicy, dataset: str, path: Path) -> CsvDialect | None:
    if path.suffix.lower() == ".parquet":
        return None
    if dataset:
        return policy.dataset(dataset).csv
    from charter_guardrails.core.errors import CharterError
    from charter_guardrails.readers.files import detect_csv_dialect

    try:
        return detect_csv_dialect(path).as_policy_dialect()
    except CharterError:  # an empty or unreadable file: the search reports it when it reads it
        return None


def data_places(policy: UseCasePolicy) -> list[Place]:
    """The CSV and Parquet files of the use case's data folders."""
    seen: set[Path] = set()
    places = []
    for folder in data_folders(policy):
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix.lower() not in SUFFIXES or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            dataset = _dataset_of(policy, path.name)
            places.append(Place(policy.id, dataset, _kind(policy, path), path, _dialect(policy, dataset, path)))
    return places


def copy_keys(policy: UseCasePolicy, path: Path) -> tuple[tuple[bytes, ...], str]:
    """The keys of a working copy, and its dataset: its record says; a file without one (a copy derived from a
    pseudonymised one, such as the minimised frame, or an old copy) is matched with both keys of the use case."""
    from charter_guardrails.checks.privacy.pseudonymise import key_for_copy, read_copy_metadata
    from charter_guardrails.core.keys import KEY_DERIVATION_HKDF, KEY_DERIVATION_MASTER, pseudonymisation_key_for

    # An unreadable record, or another use case's, says nothing of this use case's keys: both are tried then.
    with contextlib.suppress(ConfigError):
        metadata = read_copy_metadata(path)
        if metadata is not None:
            return (key_for_copy(path, policy.id),), metadata.get("dataset", "")
    both = (
        pseudonymisation_key_for(policy.id, KEY_DERIVATION_HKDF),
        pseudonymisation_key_for(policy.id, KEY_DERIVATION_MASTER),
    )
    return both, _dataset_of(policy, path.name.split(".")[0])


def working_copies(policy: UseCasePolicy) -> list[Place]:
    """The Parquet files (and CSV copies with their record) under ``$CHARTER_HOME/work/<use case>/``."""
    from charter_guardrails.checks.privacy.pseudonymise import COPY_RECORD_SUFFIX

    root = get_settings().home / "work" / policy.id
    places = []
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        suffix = path.suffix.lower()
        record = path.with_name(path.name + COPY_RECORD_SUFFIX)
        if not path.is_file() or not (suffix == ".parquet" or (suffix == ".csv" and record.is_file())):
            continue
        keys, dataset = copy_keys(policy, path)
        dialect = None
        if suffix == ".csv":  # a CSV copy is written in its dataset's dialect (write_frame's default otherwise)
            from charter_guardrails.core.policy_models import CsvDialect

            dialect = policy.dataset(dataset).csv if dataset else CsvDialect()
        places.append(Place(policy.id, dataset, "working_copy", path, dialect, keys))
    return places


#: Why a declared dataset that is no file of the data folder is not searched where it lives.
OBJECT_NOT_SEARCHED = "object in storage: its staged copies under the data folder are searched, not the store"


def not_searched(policy: UseCasePolicy) -> list[tuple[str, str]]:
    """Declared datasets that are no file (SQL tables, objects in storage), with why: named in the report."""
    return [
        (f"{policy.id}.{d.id}", "SQL table" if d.table else OBJECT_NOT_SEARCHED)
        for d in policy.datasets
        if d.path is None
    ]


def places_of(policy: UseCasePolicy) -> list[Place]:
    return [*data_places(policy), *working_copies(policy)]
