"""The kinds of storage retention knows: one class per kind, each listing its items and deleting one.

A kind says where its items are, how old each is, which policy key sets its lifetime, and how to measure and
delete one. The four kinds here are files and folders under the state folders; objects in a bucket or
partitions of a table would each be one more :class:`StorageKind` (listing the objects or partitions,
reporting their size and digest, deleting one) added to :data:`KINDS`, with nothing else to change: the plan,
the holds, the ledger rows and the audit events work on :class:`~charter_guardrails.retention.items.Item`.
"""

from __future__ import annotations

import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from charter_guardrails.core.policy import UseCasePolicy
from charter_guardrails.core.policy_models import Dataset
from charter_guardrails.core.policy_storage import DEFAULT_BATCHES_DAYS
from charter_guardrails.core.settings import Settings
from charter_guardrails.ledger.models import AuditEvent, CheckRun, ModelVersion
from charter_guardrails.retention.items import Content, Item, content_of, hashed_name, newest_change, rel_path


@dataclass(frozen=True)
class Scan:
    """What a kind may read while listing: the settings and a read-only ledger session."""

    settings: Settings
    session: Session


class StorageKind(ABC):
    """One kind of storage: its items, and how to measure and delete one (local files by default)."""

    name: ClassVar[str]

    @abstractmethod
    def items(self, policy: UseCasePolicy, scan: Scan) -> Iterator[Item]:
        """Every item of ``policy``'s use case, expired or not."""

    def exists(self, item: Item) -> bool:
        return item.path.exists() or item.path.is_symlink()

    def content(self, item: Item) -> Content:
        return content_of(item.path)

    def remove(self, item: Item) -> None:
        """Delete the item; deleting what is already gone is not an error (a rerun finishes a deletion)."""
        if item.path.is_dir() and not item.path.is_symlink():
            shutil.rmtree(item.path)
        else:
            item.path.unlink(missing_ok=True)


def _children(folder: Path) -> list[Path]:
    return sorted(folder.iterdir()) if folder.is_dir() else []


class _RunFolders(StorageKind):
    """One folder per run under ``<state folder>/<use case>/``, kept for the days of one ``storage`` key."""

    #: The state folder's name as paths are shown (``work``, ``reports``), and the ``storage`` key of the lifetime.
    shown_as: ClassVar[str]
    days_key: ClassVar[str]

    @abstractmethod
    def root(self, scan: Scan) -> Path:
        """The state folder that holds the use cases' run folders."""

    def items(self, policy: UseCasePolicy, scan: Scan) -> Iterator[Item]:
        root = self.root(scan)
        days = int(getattr(policy.storage, self.days_key))
        for path in _children(root / policy.id):
            rel = rel_path(self.shown_as, root, path)
            yield Item(
                kind=self.name,
                use_case=policy.id,
                path=path,
                rel=rel,
                label=rel,
                since=newest_change(path),
                rule=f"storage.{self.days_key}={days}",
                days=days,
                run_id=path.name,
            )


class WorkingCopies(_RunFolders):
    """``work/<use case>/<run>/``: the pseudonymised and minimised copies and the candidate of a run."""

    name = "working_copy"
    shown_as = "work"
    days_key = "working_copies_days"

    def root(self, scan: Scan) -> Path:
        return scan.settings.home / "work"


class Reports(_RunFolders):
    """``reports/<use case>/<run>/``: a run's check reports and Great Expectations Data Docs."""

    name = "report"
    shown_as = "reports"
    days_key = "reports_days"

    def root(self, scan: Scan) -> Path:
        return scan.settings.reports_dir


class Batches(StorageKind):
    """Every file under ``data/<use case>/``: deliveries, and the ``accepted/<run>__<file>`` and
    ``quarantine/<run>__<file>`` batches.

    A file belongs to the dataset whose declared path it is (or lies under), else to the dataset whose file name
    starts its name (``inference_batch__drifted.csv`` to the dataset at ``…/inference_batch.csv``). Its lifetime
    is ``storage.batches_days``, else that dataset's ``retention.days``, else the longest retention the policy
    declares, else :data:`~charter_guardrails.core.policy_storage.DEFAULT_BATCHES_DAYS`.
    """

    name = "batch"
    #: Folders the project itself makes under ``data/<use case>/``: their names are shown as they are.
    OWN_FOLDERS: ClassVar[frozenset[str]] = frozenset({"quarantine", "accepted"})

    def items(self, policy: UseCasePolicy, scan: Scan) -> Iterator[Item]:
        root = scan.settings.data_dir
        folder = root / policy.id
        if not folder.is_dir():
            return
        runs = _run_prefixes(scan.session, policy.id)
        for dirpath, _dirs, files in os.walk(folder):
            for name in sorted(files):
                path = Path(dirpath) / name
                if path.is_symlink() or not path.is_file():
                    continue
                yield self._item(policy, root, path, runs)

    def _item(self, policy: UseCasePolicy, root: Path, path: Path, runs: list[str]) -> Item:
        inside = path.relative_to(root).as_posix()
        parts = path.relative_to(root / policy.id).parts
        run, name = None, path.name
        if parts[0] in self.OWN_FOLDERS and len(parts) == 2:  # <run>__<file>, and its predictions beside it
            run, name = _split_run_file(path.name, runs)
        dataset = _dataset_of(policy, inside, name)
        days, rule = _batch_days(policy, dataset)
        declared = any(inside == d.path or inside.startswith(f"{d.path}/") for d in policy.datasets if d.path)
        if declared:
            label = f"data/{inside}"
        else:
            shown = [p if p in self.OWN_FOLDERS else hashed_name(policy.id, p) for p in parts[:-1]]
            last = f"{run}__{hashed_name(policy.id, name)}" if run else hashed_name(policy.id, name)
            label = "/".join(["data", policy.id, *shown, last])
        return Item(
            kind=self.name,
            use_case=policy.id,
            path=path,
            rel=f"data/{inside}",
            label=label,
            since=newest_change(path),
            rule=rule,
            days=days,
            run_id=run,
            dataset=dataset.id if dataset else None,
        )


def _run_prefixes(session: Session, use_case: str) -> list[str]:
    """The use case's run ids as a quarantined file name starts with them, longest first."""
    runs = session.scalars(select(CheckRun.run_id).where(CheckRun.use_case == use_case).distinct())
    return sorted({r.replace(":", "_") for r in runs}, key=len, reverse=True)


def _split_run_file(file_name: str, runs: list[str]) -> tuple[str | None, str]:
    """``<run>__<file>`` into the run and the file; the run is one the ledger knows, else what precedes the last
    ``__`` before the delivered name (an Airflow run id holds ``__`` itself)."""
    for run in runs:
        if file_name.startswith(f"{run}__"):
            return run, file_name[len(run) + 2 :]
    match = re.match(r"^(?P<run>[a-z_]+__\d{4}-\d\d-\d\dT[0-9_.+-]+?)__(?P<name>.+)$", file_name)
    if match:
        return match["run"], match["name"]
    run, sep, rest = file_name.partition("__")
    return (run, rest) if sep and rest else (None, file_name)


def _dataset_of(policy: UseCasePolicy, inside: str, name: str) -> Dataset | None:
    with_path = [d for d in policy.datasets if d.path]
    for dataset in with_path:
        if inside == dataset.path or inside.startswith(f"{dataset.path}/"):
            return dataset
    stems = [(Path(d.path or "").stem, d) for d in with_path]
    matching = [(len(stem), d) for stem, d in stems if stem and name.startswith(stem)]
    return max(matching, key=lambda m: m[0])[1] if matching else None


def _batch_days(policy: UseCasePolicy, dataset: Dataset | None) -> tuple[int, str]:
    if policy.storage.batches_days is not None:
        return policy.storage.batches_days, f"storage.batches_days={policy.storage.batches_days}"
    if dataset is not None and dataset.retention is not None:
        return dataset.retention.days, f"datasets.{dataset.id}.retention.days={dataset.retention.days}"
    declared = [d.retention.days for d in policy.datasets if d.retention is not None]
    if declared:
        return max(declared), f"datasets.*.retention.days (longest)={max(declared)}"
    return DEFAULT_BATCHES_DAYS, f"default batches_days={DEFAULT_BATCHES_DAYS}"


class RetiredModelArtifacts(StorageKind):
    """``models/<use case>/v<n>.joblib`` of a version retired for longer than ``storage.retired_models_days``.

    The model card (``models/<use case>/v<n>/``) is kept: it documents what ran in production, and holds no data.
    """

    name = "model_artifact"

    def items(self, policy: UseCasePolicy, scan: Scan) -> Iterator[Item]:
        root = scan.settings.models_dir
        days = policy.storage.retired_models_days
        retired = scan.session.scalars(
            select(ModelVersion).where(ModelVersion.use_case == policy.id, ModelVersion.status == "retired")
        )
        for version in retired:
            path = root / version.artifact_path if version.artifact_path else None
            if path is None or not path.resolve().is_relative_to(root.resolve()) or not path.is_file():
                continue  # nothing stored, or a file outside the models folder (an older row): never ours to delete
            since = version.retired_at or _retired_event_time(scan.session, version)
            if since is None:
                continue  # no known retirement time: it cannot be past its retention
            rel = rel_path("models", root, path)
            yield Item(
                kind=self.name,
                use_case=policy.id,
                path=path,
                rel=rel,
                label=rel,
                since=since,
                rule=f"storage.retired_models_days={days}",
                days=days,
                run_id=version.run_id,
                model_version=version.version,
            )


def _retired_event_time(session: Session, version: ModelVersion) -> datetime | None:
    """When an older row (without ``retired_at``) was retired: its ``model.retired`` audit event."""
    return session.scalar(
        select(AuditEvent.ts)
        .where(
            AuditEvent.subject_type == "model_versions",
            AuditEvent.subject_id == str(version.id),
            AuditEvent.action == "model.retired",
        )
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    )


#: The kinds retention runs, in this order.
KINDS: tuple[StorageKind, ...] = (WorkingCopies(), Reports(), Batches(), RetiredModelArtifacts())
KINDS_BY_NAME: dict[str, StorageKind] = {kind.name: kind for kind in KINDS}

__all__ = [
    "KINDS",
    "KINDS_BY_NAME",
    "Batches",
    "Reports",
    "RetiredModelArtifacts",
    "Scan",
    "StorageKind",
    "WorkingCopies",
]
