"""The ``charter_retention`` DAG: shipped for an existing Airflow, active from creation, daily, one task that
applies retention (here called directly, on a working copy aged past its 30 days)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_file_builds_the_daily_retention_dag(tmp_path: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "plugins" / "charter_airflow" / "charter_retention.py", dags / "charter_retention.py")
    bag = DagBag(dag_folder=str(dags))
    assert bag.import_errors == {}
    dag = bag.dags["charter_retention"]
    assert dag.is_paused_upon_creation is False
    assert dag.max_active_runs == 1
    assert [t.task_id for t in dag.tasks] == ["apply_retention"]
    assert dag.tasks[0].retries >= 1
    assert (ROOT / "dags" / "charter_retention.py").read_text().endswith("dag = build_retention_dag()\n")


def test_the_task_deletes_an_expired_working_copy_and_audits_it(ledger_url: str, charter_home: Path) -> None:
    from charter_airflow.retention import apply_retention
    from charter_guardrails.ledger.models import AuditEvent
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    old = charter_home / "work" / "waste_tonnage" / "scheduled__2026-01-01T00_00_00+00_00"
    (old / "candidate").mkdir(parents=True)
    copy = old / "training__pseudonymised.parquet"
    copy.write_bytes(b"copy")
    young = charter_home / "work" / "waste_tonnage" / "manual__today"
    young.mkdir()
    (young / "holdout.parquet").write_bytes(b"holdout")
    long_ago = time.time() - 31 * 86400
    for path in (copy, old / "candidate", old):
        os.utime(path, (long_ago, long_ago))
    summary = apply_retention.function()
    assert summary["deleted"] == 1
    assert not old.exists()
    assert young.exists()
    with ledger_session() as session:
        [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "retention.deleted"))
    assert event.payload["path"] == f"work/waste_tonnage/{old.name}"
    assert event.actor == "airflow:charter_retention"
