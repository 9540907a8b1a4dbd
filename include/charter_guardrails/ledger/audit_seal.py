"""``charter audit seal``: bring the rows a ledger held before their table was audited into the audit chain.

Check runs (with their results and findings) and the alert outbox are audited since a later version than the
other tables: on a ledger upgraded from an earlier version their existing rows have no event, and
``charter audit verify`` reports each of them as not recorded, naming this command. Sealing appends one signed
event per such row (``run.sealed``, ``alert.sealed``) carrying its digest, from then on verified like any other.

Sealing vouches for the rows as they are: check them first. It seals only the rows older than the table's first
audited row (a lower id), the rows written before the upgrade; a row inserted behind the ledger's back later has
a higher id and stays reported, unless ``everything`` is asked for after checking it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import String, cast, exists, func, select
from sqlalchemy.orm import Session

from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.audit_rows import SEALABLE, outbox_event
from charter_guardrails.ledger.models import AUDITED_MODELS, AlertOutbox, AuditEvent, CheckRun

ACTOR = "charter-audit-seal"
_ACTIONS = {"check_runs": "run.sealed", "alert_outbox": "alert.sealed"}
#: Ids listed per table in the report; the counts are always complete.
MAX_LISTED = 50


@dataclass
class SealReport:
    """Rows sealed per table, and the unsealed rows left because they are newer than the first audited row."""

    sealed: dict[str, int] = field(default_factory=dict)
    left: dict[str, int] = field(default_factory=dict)
    left_ids: dict[str, list[int]] = field(default_factory=dict)

    def to_json_dict(self) -> dict[str, Any]:
        return {"sealed": self.sealed, "left": self.left, "left_ids": self.left_ids}


def _recorded(table: str, model: Any) -> Any:
    events = AuditEvent.__table__
    return exists().where(events.c.subject_type == table, events.c.subject_id == cast(model.__table__.c.id, String))


def unsealed_ids(session: Session, table: str) -> list[int]:
    """The ids of the rows of ``table`` that no event is about, in order."""
    model = AUDITED_MODELS[table]
    column = model.__table__.c.id
    return [int(i) for i in session.scalars(select(column).where(~_recorded(table, model)).order_by(column))]


def seal(session: Session, *, actor: str = ACTOR, everything: bool = False) -> SealReport:
    """Append one event per unsealed row of the tables audited since a later version (needs the signing key).

    Without ``everything``, only the rows with an id lower than the table's first audited row are sealed.
    """
    report = SealReport()
    for table in SEALABLE:
        model = AUDITED_MODELS[table]
        first_audited = session.scalar(select(func.min(model.__table__.c.id)).where(_recorded(table, model)))
        sealed, left = 0, []
        for row_id in unsealed_ids(session, table):
            if not everything and first_audited is not None and row_id > first_audited:
                left.append(row_id)
                continue
            _seal_row(session, table, row_id, actor)
            sealed += 1
        report.sealed[table], report.left[table] = sealed, len(left)
        report.left_ids[table] = left[:MAX_LISTED]
    return report


def _seal_row(session: Session, table: str, row_id: int, actor: str) -> None:
    note = {"sealed": "written before this table was audited"}
    if table == CheckRun.__tablename__:
        run = session.get(CheckRun, row_id)
        assert run is not None  # noqa: S101 - listed in this transaction
        append_event(
            session,
            actor=actor,
            action=_ACTIONS[table],
            subject=run,
            use_case=run.use_case,
            run_id=run.run_id,
            payload={"dag_id": run.dag_id, **note},
        )
    else:
        row = session.get(AlertOutbox, row_id)
        assert row is not None  # noqa: S101 - listed in this transaction
        outbox_event(session, row, actor=actor, action=_ACTIONS[table], payload=note)
