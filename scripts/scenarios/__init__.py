"""Shared helpers for the `make run` scenarios. Each scenario module ``NN_name.py`` has ``run(ctx)``."""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def step(title: str) -> None:
    print(f"\n==> {title}", flush=True)


@dataclass
class Context:
    root: Path
    #: Scenario outcomes that differ from what the scenario expects; make run exits 1 if any.
    unexpected: list[str] = field(default_factory=list)
    _dagbag: Any = None

    def dag(self, dag_id: str) -> Any:
        if self._dagbag is None:
            from airflow.dag_processing.dagbag import DagBag

            self._dagbag = DagBag(dag_folder=str(self.root / "dags"))
            if self._dagbag.import_errors:
                raise RuntimeError(f"DAG import errors: {self._dagbag.import_errors}")
        dag = self._dagbag.get_dag(dag_id)
        if dag is None:
            raise KeyError(f"no DAG {dag_id}; known: {sorted(self._dagbag.dags)}")
        return dag

    def dag_test(self, dag_id: str, conf: dict[str, Any] | None = None, *, expect: str = "success") -> Any:
        """Run one DAG in-process with ``dag.test()``; its task logs go to a buffer (shown on surprise)."""
        buffer = io.StringIO()
        root_logger = logging.getLogger()
        level = root_logger.level
        root_logger.setLevel(logging.WARNING)
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                dag_run = self.dag(dag_id).test(run_conf=conf or {})
        finally:
            root_logger.setLevel(level)
        state = str(getattr(dag_run.state, "value", dag_run.state))
        print(f"    {dag_id}: run {dag_run.run_id} -> {state}" + ("" if state == expect else f" (expected {expect})"))
        if state != expect:
            self.unexpected.append(f"{dag_id} ended {state}, expected {expect}")
            print(buffer.getvalue()[-3000:])
        return dag_run

    def expect(self, ok: bool, message: str) -> None:
        print(f"    {'ok ' if ok else 'UNEXPECTED'} {message}")
        if not ok:
            self.unexpected.append(message)

    def verdict_table(self) -> str:
        from charter_guardrails.cli.main import table
        from charter_guardrails.ledger.models import CheckResultRecord, CheckRun
        from charter_guardrails.ledger.store import ledger_session
        from sqlalchemy import select

        with ledger_session() as session:
            rows = session.execute(
                select(
                    CheckRun.use_case,
                    CheckRun.dag_id,
                    CheckRun.run_id,
                    CheckResultRecord.check,
                    CheckResultRecord.dataset,
                    CheckResultRecord.verdict,
                    CheckResultRecord.summary,
                )
                .join(CheckResultRecord, CheckResultRecord.check_run_id == CheckRun.id)
                .order_by(CheckRun.id, CheckResultRecord.id)
            ).all()
        return table(
            [[r.use_case, r.dag_id, r.check, r.dataset or "-", r.verdict.upper(), _short(r.summary)] for r in rows],
            ["use case", "dag", "check", "dataset", "verdict", "summary"],
        )


def _short(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
