"""Plan and apply retention: list what is past its lifetime, then delete it, each deletion audited first.

:func:`plan` has no side effect: it lists, per policy, every item past its retention with its size, digest,
rule and age, and whether a hold or an open incident keeps it. :func:`apply` deletes what the plan says, one
item at a time, in this order: the ledger row (:class:`~charter_guardrails.ledger.models_retention.DeletedFile`)
and its ``retention.deleted`` audit event are committed in one transaction, then the file is unlinked, then the
row is marked complete. A crash after the commit leaves a row without ``completed_at``: the next run unlinks
that file without a second event (:func:`finish_pending`), and a file already gone is planned no more. So each
file is deleted once and audited once, however often the run is interrupted.

``now`` is the clock the plan reads ages at: ``charter retention plan --as-of`` moves it to preview what a later
run will delete.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from charter_guardrails.core.errors import CharterError
from charter_guardrails.core.policy import UseCasePolicy, load_policy, policy_files
from charter_guardrails.core.settings import get_settings
from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.db import READ_SNAPSHOT
from charter_guardrails.ledger.models_retention import DeletedFile
from charter_guardrails.ledger.store import ledger_session
from charter_guardrails.retention.holds import Keepers
from charter_guardrails.retention.items import Item, Planned, path_key
from charter_guardrails.retention.kinds import KINDS, KINDS_BY_NAME, Scan

log = logging.getLogger(__name__)

#: Test hook, and only that: ``CHARTER_RETENTION_PAUSE_AFTER=N`` makes :func:`apply` stop for a minute once the
#: Nth deletion is recorded and before its file is unlinked, so that a test can kill the process there and
#: check that the next run finishes it. Never set it in a deployment.
PAUSE_AFTER_ENV = "CHARTER_RETENTION_PAUSE_AFTER"

_PG_RETENTION_LOCK = 0x52455445  # "RETE": serialises the claims of two retention runs on PostgreSQL

#: ``progress(done, total, bytes_deleted)``: called after each deletion.
Progress = Callable[[int, int, int], None]


@dataclass
class RetentionPlan:
    as_of: datetime
    items: list[Planned] = field(default_factory=list)
    #: Policies that could not be read: their use cases are left alone.
    skipped: dict[str, str] = field(default_factory=dict)

    def count(self, action: str) -> int:
        return sum(1 for p in self.items if p.action == action)

    def bytes(self, action: str) -> int:
        return sum(p.content.size_bytes for p in self.items if p.action == action)

    def summary(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            **{f"{a}_count": self.count(a) for a in ("delete", "finish", "keep")},
            **{f"{a}_bytes": self.bytes(a) for a in ("delete", "finish", "keep")},
            "skipped_policies": self.skipped,
        }

    def to_json_dict(self) -> dict[str, Any]:
        return {**self.summary(), "items": [p.to_json_dict() for p in self.items]}


@dataclass
class ApplyReport:
    plan: RetentionPlan
    deleted: int = 0
    deleted_bytes: int = 0
    #: Interrupted deletions of an earlier run finished now (no new event).
    finished: int = 0
    #: Recorded deletions whose file could not be removed yet (the next run tries again).
    failed: list[str] = field(default_factory=list)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            **self.plan.summary(),
            "deleted": self.deleted,
            "deleted_bytes": self.deleted_bytes,
            "finished": self.finished,
            "failed": self.failed,
            "kept": self.plan.count("keep"),
        }


@contextmanager
def reading_session() -> Iterator[Session]:
    """A ledger session that only reads: on SQLite a snapshot, so that hashing files does not hold the write lock."""
    with ledger_session() as session:
        session.connection(execution_options={READ_SNAPSHOT: True})
        yield session


def _policies(use_case: str | None) -> tuple[list[UseCasePolicy], dict[str, str]]:
    if use_case is not None:
        return [load_policy(use_case)], {}
    found, skipped = [], {}
    for path in policy_files():
        try:
            found.append(load_policy(path))
        except CharterError as exc:
            skipped[path.stem] = str(exc).splitlines()[0]
    return found, skipped


def plan(
    now: datetime,
    *,
    use_case: str | None = None,
    session: Session | None = None,
    measured: Callable[[int], None] | None = None,
) -> RetentionPlan:
    """Every item past its retention at ``now``, per policy (``use_case``: that one only); changes nothing.

    ``measured(count)`` is called after each item past its retention is hashed (a progress report: hashing is
    the long part)."""
    if now.tzinfo is None:
        raise ValueError("plan needs a timezone-aware time")
    if session is None:
        with reading_session() as own:
            return plan(now, use_case=use_case, session=own, measured=measured)
    policies, skipped = _policies(use_case)
    result = RetentionPlan(as_of=now.astimezone(UTC), skipped=skipped)
    scan = Scan(get_settings(), session)
    for policy in policies:
        keepers = Keepers.load(session, policy.id)
        pending = set(
            session.scalars(
                select(DeletedFile.path_key).where(
                    DeletedFile.use_case == policy.id, DeletedFile.completed_at.is_(None)
                )
            )
        )
        for kind in KINDS:
            for item in kind.items(policy, scan):
                if not item.expired(now):
                    continue
                result.items.append(
                    Planned(
                        item=item,
                        content=kind.content(item),
                        age_days=item.age_days(now),
                        kept_because=keepers.reasons(item),
                        recorded=path_key(item.use_case, item.rel) in pending,
                    )
                )
                if measured is not None:
                    measured(len(result.items))
    return result


def apply(
    now: datetime, *, use_case: str | None = None, actor: str = "charter-retention", progress: Progress | None = None
) -> ApplyReport:
    """Delete every item :func:`plan` lists as ``delete`` (recorded and audited first), after finishing the
    deletions an interrupted run recorded; return what was done."""
    finished = finish_pending(use_case=use_case)
    current = plan(now, use_case=use_case)
    report = ApplyReport(plan=current, finished=finished)
    todo = [p for p in current.items if p.action == "delete"]
    pause_after = int(os.environ.get(PAUSE_AFTER_ENV) or 0)
    for number, planned in enumerate(todo, start=1):
        with ledger_session() as session:
            row_id = _record(session, planned, now, actor)
        if row_id is None:  # another run (the DAG and a command at once) recorded or removed it meanwhile
            continue
        if number == pause_after:
            sys.stderr.write(f"retention: paused after recording deletion {number}\n")
            sys.stderr.flush()
            time.sleep(60)
        if _remove(row_id, planned):
            report.deleted += 1
            report.deleted_bytes += planned.content.size_bytes
        else:
            report.failed.append(planned.item.label)
        if progress is not None:
            progress(number, len(todo), report.deleted_bytes)
    return report


def _claimed(session: Session, planned: Planned, key: str) -> bool:
    """Whether another run got to the item first: its file is gone, or its deletion is recorded and pending.

    Asked under a lock held to the end of the transaction (SQLite's ``BEGIN IMMEDIATE``; on PostgreSQL an
    advisory lock of retention's own), so two runs at once record each deletion once."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_RETENTION_LOCK})
    if not KINDS_BY_NAME[planned.item.kind].exists(planned.item):
        return True
    pending = select(DeletedFile.id).where(DeletedFile.path_key == key, DeletedFile.completed_at.is_(None))
    return session.scalars(pending.limit(1)).first() is not None


def _record(session: Session, planned: Planned, now: datetime, actor: str) -> int | None:
    """Record the deletion and its audit event (the caller's transaction); None when another run claimed it."""
    item, content = planned.item, planned.content
    key = path_key(item.use_case, item.rel)
    if _claimed(session, planned, key):
        return None
    row = DeletedFile(
        use_case=item.use_case,
        kind=item.kind,
        path=item.label,
        path_key=key,
        run_id=item.run_id,
        dataset=item.dataset,
        model_version=item.model_version,
        size_bytes=content.size_bytes,
        sha256=content.sha256,
        files=content.files,
        rule=item.rule,
        as_of=now.astimezone(UTC),
        deleted_at=datetime.now(UTC),
    )
    session.add(row)
    retired = _retire_manifests(session, item, actor)
    append_event(
        session,
        actor=actor,
        action="retention.deleted",
        subject=row,
        use_case=item.use_case,
        run_id=item.run_id,
        payload={
            "kind": item.kind,
            "path": item.label,
            "size_bytes": content.size_bytes,
            "sha256": content.sha256,
            "files": content.files,
            "rule": item.rule,
            "age_days": round(planned.age_days, 1),
            "manifests_retired": retired,
        },
    )
    session.flush()
    return int(row.id)


def _retire_manifests(session: Session, item: Item, actor: str) -> list[int]:
    """Retire the active manifests of the file or folder being deleted (each audited), so that the integrity
    monitor stops verifying it: a file retention deleted is not a missing file, and raises no incident."""
    from charter_guardrails.ledger.models import DatasetRecord, Manifest

    target = item.path.resolve()
    rows = session.execute(
        select(Manifest, DatasetRecord.name)
        .join(DatasetRecord, DatasetRecord.id == Manifest.dataset_id)
        .where(DatasetRecord.use_case == item.use_case, Manifest.status == "active")
    ).all()
    retired: list[int] = []
    for manifest, dataset in rows:
        location = Path(str((manifest.document or {}).get("location") or ""))
        if not location.is_absolute() or not (location == target or location.is_relative_to(target)):
            continue
        manifest.status = "retired"
        append_event(
            session,
            actor=actor,
            action="manifest.retired",
            subject=manifest,
            use_case=item.use_case,
            payload={"dataset": dataset, "reason": "retention", "rule": item.rule},
        )
        retired.append(int(manifest.id))
    return retired


def _remove(row_id: int, planned: Planned) -> bool:
    """Delete the item's file and mark its row complete; False (logged) when the file could not be removed."""
    kind = KINDS_BY_NAME[planned.item.kind]
    try:
        kind.remove(planned.item)
    except OSError as exc:
        log.warning("retention: could not delete %s (%s); the next run tries again", planned.item.label, exc.strerror)
        return False
    with ledger_session() as session:
        row = session.get(DeletedFile, row_id)
        if row is not None:
            row.completed_at = datetime.now(UTC)
    return True


def finish_pending(*, use_case: str | None = None) -> int:
    """Unlink the files whose deletion is recorded but not complete (an interrupted run), with no new event.

    A pending file is removed only while it is what was recorded: a folder is removed whatever is left of it
    (an interrupted ``rmtree`` leaves part of it), a file only if its SHA-256 is the recorded one (a new file
    delivered under the same name since is a new item, for :func:`plan`). Returns how many were finished.
    """
    done = 0
    with ledger_session() as session:
        query = select(DeletedFile).where(DeletedFile.completed_at.is_(None)).order_by(DeletedFile.id)
        if use_case is not None:
            query = query.where(DeletedFile.use_case == use_case)
        pending = list(session.scalars(query))
    if not pending:
        return 0
    policies = {p.id: p for p in _policies(use_case)[0]}
    with ledger_session() as session:
        scan = Scan(get_settings(), session)
        for row in pending:
            policy = policies.get(row.use_case)
            kind = KINDS_BY_NAME.get(row.kind)
            if policy is None or kind is None:
                continue
            for item in kind.items(policy, scan):
                if path_key(item.use_case, item.rel) != row.path_key:
                    continue
                try:
                    if item.path.is_dir() or kind.content(item).sha256 == row.sha256:
                        kind.remove(item)
                except OSError as exc:
                    log.warning("retention: could not delete %s (%s); the next run tries again", row.path, exc.strerror)
                    break
            else:
                session.get_one(DeletedFile, row.id).completed_at = datetime.now(UTC)
                done += 1
    return done


def deleted(session: Session, use_case: str, path: str | Path) -> DeletedFile | None:
    """The latest recorded deletion of ``path`` or of a folder that held it; ``path`` is relative to the state
    folders (``models/uc/v1.joblib``, ``reports/uc/<run>/drift_inference.json``: a report's stored path with
    ``reports/`` before it)."""
    parts = PurePosixPath(Path(path).as_posix()).parts
    keys = [path_key(use_case, PurePosixPath(*parts[:n]).as_posix()) for n in range(1, len(parts) + 1)]
    return session.scalars(
        select(DeletedFile)
        .where(DeletedFile.use_case == use_case, DeletedFile.path_key.in_(keys))
        .order_by(DeletedFile.id.desc())
        .limit(1)
    ).first()


def deleted_artifact(session: Session, use_case: str, version: int) -> DeletedFile | None:
    """The deletion of a model version's artifact, if retention deleted it (the governance view shows it)."""
    return session.scalars(
        select(DeletedFile)
        .where(
            DeletedFile.use_case == use_case,
            DeletedFile.kind == "model_artifact",
            DeletedFile.model_version == version,
        )
        .order_by(DeletedFile.id.desc())
        .limit(1)
    ).first()


__all__ = [
    "PAUSE_AFTER_ENV",
    "ApplyReport",
    "RetentionPlan",
    "apply",
    "deleted",
    "deleted_artifact",
    "finish_pending",
    "plan",
]
