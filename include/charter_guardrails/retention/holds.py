"""Legal holds, and what keeps an item past its retention: an open hold, or an incident not yet resolved.

A hold covers a whole use case, or one dataset, one model version (its artifact and the folders of the run that
trained it) or one run of it. An incident that is not ``resolved`` keeps the items of its run and of its
dataset (an incident with neither keeps the whole use case): they may be evidence of the breach. Adding and
lifting a hold are audited (``hold.added``, ``hold.removed``); the reason stays in the ledger, and what
``plan`` prints names the hold or incident by number and scope only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from charter_guardrails.core.errors import ConfigError
from charter_guardrails.incidents.incident import IncidentStatus
from charter_guardrails.ledger.audit import append_event
from charter_guardrails.ledger.models import Incident, ModelVersion
from charter_guardrails.ledger.models_retention import LegalHold
from charter_guardrails.retention.items import Item


def same_run(a: str | None, b: str | None) -> bool:
    """Run ids compared as the folders name them (``:`` and ``+`` become ``_`` in folder and file names)."""
    if a is None or b is None:
        return False
    return re.sub(r"[^A-Za-z0-9]+", "_", a) == re.sub(r"[^A-Za-z0-9]+", "_", b)


def scope_of(hold: LegalHold) -> str:
    if hold.dataset:
        return f"dataset {hold.dataset}"
    if hold.model_version is not None:
        return f"model version v{hold.model_version}"
    if hold.run_id:
        return f"run {hold.run_id}"
    return "whole use case"


def add_hold(
    session: Session,
    *,
    use_case: str,
    reason: str,
    actor: str,
    dataset: str | None = None,
    model_version: int | None = None,
    run_id: str | None = None,
) -> LegalHold:
    """Place a hold (audited): retention deletes nothing in its scope until it is removed."""
    if not reason.strip():
        raise ConfigError("a legal hold needs a reason (--reason): why the files must be kept")
    if sum(x is not None for x in (dataset, model_version, run_id)) > 1:
        raise ConfigError("a hold covers one dataset, one model version or one run: give at most one of them")
    hold = LegalHold(
        use_case=use_case,
        dataset=dataset,
        model_version=model_version,
        run_id=run_id,
        reason=reason.strip(),
        created_by=actor,
        created_at=datetime.now(UTC),
    )
    session.add(hold)
    append_event(
        session,
        actor=actor,
        action="hold.added",
        subject=hold,
        use_case=use_case,
        run_id=run_id,
        payload={"scope": scope_of(hold), "reason": hold.reason},
    )
    return hold


def remove_hold(session: Session, hold_id: int, *, reason: str, actor: str) -> LegalHold:
    """Lift a hold (audited); its row stays, with who lifted it, when and why."""
    if not reason.strip():
        raise ConfigError("lifting a legal hold needs a reason (--reason)")
    hold = session.get(LegalHold, hold_id)
    if hold is None:
        raise ConfigError(f"no legal hold #{hold_id}; see `charter hold list`")
    if hold.released_at is not None:
        raise ConfigError(f"legal hold #{hold_id} was already removed on {hold.released_at:%Y-%m-%d}")
    hold.released_by, hold.released_at, hold.release_reason = actor, datetime.now(UTC), reason.strip()
    append_event(
        session,
        actor=actor,
        action="hold.removed",
        subject=hold,
        use_case=hold.use_case,
        run_id=hold.run_id,
        payload={"scope": scope_of(hold), "reason": hold.release_reason},
    )
    return hold


def holds(session: Session, use_case: str | None = None, *, active_only: bool = False) -> list[LegalHold]:
    query = select(LegalHold).order_by(LegalHold.id)
    if use_case:
        query = query.where(LegalHold.use_case == use_case)
    if active_only:
        query = query.where(LegalHold.released_at.is_(None))
    return list(session.scalars(query))


@dataclass
class Keepers:
    """The open holds and unresolved incidents of one use case, and the runs of its model versions."""

    holds: list[LegalHold] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)
    version_runs: dict[int, str | None] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, use_case: str) -> Keepers:
        incidents = session.scalars(
            select(Incident)
            .where(Incident.use_case == use_case, Incident.status != IncidentStatus.RESOLVED.value)
            .order_by(Incident.id)
        )
        versions = session.execute(
            select(ModelVersion.version, ModelVersion.run_id).where(ModelVersion.use_case == use_case)
        )
        return cls(holds(session, use_case, active_only=True), list(incidents), {v: r for v, r in versions})

    def reasons(self, item: Item) -> list[str]:
        """Why ``item`` is kept: one sentence per hold or incident that covers it; empty when none does."""
        found = [
            f"legal hold #{h.id} ({scope_of(h)}) since {h.created_at:%Y-%m-%d}"
            for h in self.holds
            if self._hold_covers(h, item)
        ]
        found += [
            f"incident #{i.id} ({i.status}) on {_incident_scope(i)}"
            for i in self.incidents
            if _incident_covers(i, item)
        ]
        return found

    def _hold_covers(self, hold: LegalHold, item: Item) -> bool:
        if hold.model_version is not None and item.model_version == hold.model_version:
            return True
        return self._covers(hold, item.dataset, item.run_id, None)

    def legal_holds_on(self, *, dataset: str | None, run_id: str | None = None, name: str | None = None) -> list[str]:
        """The open legal holds that cover a file of ``dataset`` written by ``run_id``, or whose ``name`` starts with
        a run id (a quarantined batch's); a data-subject erasure keeps such a file (GDPR Art. 17(3)(e))."""
        return [f"legal hold #{h.id} ({scope_of(h)})" for h in self.holds if self._covers(h, dataset, run_id, name)]

    def _covers(self, hold: LegalHold, dataset: str | None, run_id: str | None, name: str | None) -> bool:
        if hold.dataset:
            return dataset == hold.dataset
        run = self.version_runs.get(hold.model_version) if hold.model_version is not None else hold.run_id
        if hold.model_version is not None or hold.run_id:
            return same_run(run_id, run) or _named_after(name, run)
        return True


def _named_after(name: str | None, run_id: str | None) -> bool:
    """Whether a file's name starts with ``run_id`` (``<run>__<file>``, as quarantined batches are named)."""
    if not name or not run_id:
        return False
    return re.sub(r"[^A-Za-z0-9]+", "_", name).startswith(re.sub(r"[^A-Za-z0-9]+", "_", run_id) + "_")


def _incident_scope(incident: Incident) -> str:
    parts = [
        f"dataset {incident.dataset}" if incident.dataset else "",
        f"run {incident.run_id}" if incident.run_id else "",
    ]
    return ", ".join(p for p in parts if p) or "the whole use case"


def _incident_covers(incident: Incident, item: Item) -> bool:
    if not incident.dataset and not incident.run_id:
        return True
    return bool(incident.dataset and item.dataset == incident.dataset) or same_run(item.run_id, incident.run_id)


__all__ = ["Keepers", "add_hold", "holds", "remove_hold", "same_run", "scope_of"]
