"""Which use cases the reader of a request may see and act on, applied to every ledger read of the request.

A use case is in a reader's scope when the auth manager lets them read (``GET``) one of its DAGs: the DAGs
``dag_factory`` builds, ``<use_case>_<suffix>`` for each of :data:`USE_CASE_DAG_SUFFIXES`. The DAGs Airflow
knows come from ``get_authorized_dag_ids``; a use case of the ledger whose DAGs Airflow does not know (a
policy removed, DAGs not parsed yet) is asked with ``filter_authorized_dag_ids`` on the ids its DAGs have.
Acting on a use case (an incident's transition or decision, the kill switch) uses the same rule with ``PUT``
(:meth:`Scope.require_act`, asked by those actions: 403 on a use case the reader sees but may not edit). The
governance role (:func:`~charter_airflow.ui.security.can_govern`) reads every use case; it acts like anyone
else. A set that holds every use case of the ledger and the policies is ``None``: not restricted.

The scope is computed once per request by :func:`bind_scope`, a dependency of the app and of every router, so
a route added later cannot forget it, and recorded in a context variable. A SQLAlchemy ``do_orm_execute``
listener (the documented "global criteria" recipe, ``with_loader_criteria``) then adds ``use_case IN (…)`` to
every ORM read of a ledger row that belongs to a use case, in any session of the request: lists leave other
use cases out, and a page or an action on another use case's run, incident or model finds nothing, so
answers 404 (its existence is not revealed). The audit events are not filtered by the listener: the audit
chain is verified and extended over every event; the audit page asks for its own filter
(:func:`audit_events_filtered`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import event, or_, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from charter_airflow.ui import security

#: The suffixes of the DAG ids ``charter_airflow.dag_factory`` gives a use case's DAGs.
USE_CASE_DAG_SUFFIXES = ("policy_review", "model_refresh", "inference_guardrails")


def use_case_of_dag(dag_id: str) -> str | None:
    """The use case whose DAG is ``dag_id``; None for a DAG that is not a use case's (the relay, the monitor…)."""
    for suffix in USE_CASE_DAG_SUFFIXES:
        if dag_id.endswith(f"_{suffix}") and len(dag_id) > len(suffix) + 1:
            return dag_id[: -len(suffix) - 1]
    return None


def dag_ids_of(use_case: str) -> set[str]:
    return {f"{use_case}_{suffix}" for suffix in USE_CASE_DAG_SUFFIXES}


@dataclass(frozen=True)
class Scope:
    """The use cases a reader may see (``read``) and act on (``act``); ``None``: every use case."""

    read: frozenset[str] | None
    act: frozenset[str] | None

    @property
    def restricted(self) -> bool:
        return self.read is not None

    def may_read(self, use_case: str | None) -> bool:
        return self.read is None or use_case in self.read

    def may_act(self, use_case: str | None) -> bool:
        return self.act is None or use_case in self.act

    def visible(self, use_cases: Iterable[str]) -> list[str]:
        """``use_cases`` the reader may see, in their order: for names that come from elsewhere than a ledger
        row (the policy files of ``governance.use_cases``)."""
        return [use_case for use_case in use_cases if self.may_read(use_case)]

    def require_read(self, use_case: str | None, what: str) -> None:
        """404 (``what`` not found) when ``use_case`` is outside the scope: its existence is not revealed."""
        if not self.may_read(use_case):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{what} introuvable.")

    def require_act(self, use_case: str, what: str) -> None:
        """404 outside the reading scope, 403 for a use case the reader sees but may not change."""
        self.require_read(use_case, what)
        if not self.may_act(use_case):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"Action refusée : il faut pouvoir modifier les DAG du cas d'usage {use_case} dans Airflow.",
            )


EVERYTHING = Scope(read=None, act=None)
_current: ContextVar[Scope | None] = ContextVar("charter_view_scope", default=None)
_audit_filter: ContextVar[bool] = ContextVar("charter_view_audit_filter", default=False)


def current_scope() -> Scope:
    """The scope of the request being served; outside a request of the view (the CLI, the DAGs), everything."""
    return _current.get() or EVERYTHING


def _ledger_use_cases() -> set[str]:
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting.governance import use_cases

    with ledger_session() as session:
        return set(use_cases(session))


def _authorized_use_cases(user: Any, method: str, ledger_use_cases: set[str]) -> frozenset[str]:
    """The use cases with a DAG ``user`` may ``method``: those Airflow knows, then the ledger's others."""
    manager = security._auth_manager()
    known = manager.get_authorized_dag_ids(user=user, method=method)
    found = {u for u in map(use_case_of_dag, known) if u is not None}
    unknown = {dag_id for use_case in ledger_use_cases - found for dag_id in dag_ids_of(use_case)}
    if unknown:
        extra = manager.filter_authorized_dag_ids(dag_ids=unknown, user=user, method=method)
        found |= {u for u in map(use_case_of_dag, extra) if u is not None}
    return frozenset(found)


def _unless_all(use_cases: frozenset[str], known: set[str]) -> frozenset[str] | None:
    return None if use_cases >= known else use_cases


def compute_scope(user: Any) -> Scope:
    """The scope of ``user``. A set that holds every use case of the ledger and the
    policies is ``None``: such a reader (any user of the simple auth manager) is not restricted."""
    known = _ledger_use_cases()
    editable = _authorized_use_cases(user, "PUT", known)
    act = _unless_all(editable, known)
    read = (
        None if security.can_govern(user) else _unless_all(_authorized_use_cases(user, "GET", known) | editable, known)
    )
    return Scope(read=read, act=act)


async def bind_scope(user: Annotated[Any, Depends(security.require_reader)]) -> Scope:
    """The reader's scope, recorded for the request's ledger reads. Async so that the context variable is set in
    the request's own context, which FastAPI copies into the thread of a synchronous route."""
    scope = await run_in_threadpool(compute_scope, user)
    _current.set(scope)
    return scope


ScopeDep = Annotated[Scope, Depends(bind_scope)]


@contextmanager
def limited_to(scope: Scope | None) -> Iterator[None]:
    """Within the block, ledger reads are limited to ``scope`` (``None``: every use case)."""
    token = _current.set(scope)
    try:
        yield
    finally:
        _current.reset(token)


def unscoped() -> Any:
    """Within the block, ledger reads see every use case: to find which use case a row belongs to before asking
    :meth:`Scope.require_act`, which answers 404 for a use case the reader may not see."""
    return limited_to(None)


@contextmanager
def audit_events_filtered() -> Iterator[None]:
    """Within the block, the audit events read are those of the scope's use cases and those of no use case."""
    token = _audit_filter.set(True)
    try:
        yield
    finally:
        _audit_filter.reset(token)


def _criteria(allowed: frozenset[str]) -> list[Any]:
    from charter_guardrails.ledger import models, models_retention

    runs = select(models.CheckRun.id).where(models.CheckRun.use_case.in_(allowed))
    results = select(models.CheckResultRecord.id).where(models.CheckResultRecord.check_run_id.in_(runs))
    datasets = select(models.DatasetRecord.id).where(models.DatasetRecord.use_case.in_(allowed))
    incidents = select(models.Incident.id).where(models.Incident.use_case.in_(allowed))
    options: list[Any] = [
        with_loader_criteria(model, model.use_case.in_(allowed), include_aliases=True)
        for model in (
            models.CheckRun,
            models.Incident,
            models.Approval,
            models.ModelVersion,
            models.DatasetRecord,
            models_retention.LegalHold,
            models_retention.DeletedFile,
        )
    ]
    options += [
        with_loader_criteria(models.CheckResultRecord, models.CheckResultRecord.check_run_id.in_(runs)),
        with_loader_criteria(models.PiiFinding, models.PiiFinding.check_result_id.in_(results)),
        with_loader_criteria(models.Manifest, models.Manifest.dataset_id.in_(datasets)),
        with_loader_criteria(models.ManifestVerification, models.ManifestVerification.dataset_id.in_(datasets)),
        with_loader_criteria(
            models.AlertOutbox,
            or_(models.AlertOutbox.incident_id.is_(None), models.AlertOutbox.incident_id.in_(incidents)),
        ),
    ]
    return options


@event.listens_for(Session, "do_orm_execute")
def _limit_to_scope(state: ORMExecuteState) -> None:
    """Add the scope's criteria to an ORM read of the request (not to column or relationship loads, which the
    criteria of the read that loaded the row already cover)."""
    scope = _current.get()
    if scope is None or scope.read is None or not state.is_select or state.is_column_load or state.is_relationship_load:
        return
    options = _criteria(scope.read)
    if _audit_filter.get():
        from charter_guardrails.ledger.models import AuditEvent

        allowed = scope.read
        options.append(
            with_loader_criteria(AuditEvent, or_(AuditEvent.use_case.is_(None), AuditEvent.use_case.in_(allowed)))
        )
    state.statement = state.statement.options(*options)
