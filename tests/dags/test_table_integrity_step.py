"""The integrity step of the refresh DAG on a ``format: sql`` training dataset, run in this process as Airflow runs
it (``run_step`` with a task instance stand-in that serves the XComs of the tasks before), on SQLite and PostgreSQL:
an intact table passes and is pinned (its Merkle root and rows); a changed row fails the step with the integrity
verdict and incident, localised to its key range; a table changed after the step passed is refused by the next step
that reads it, before that step's own check runs."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.sql_dataset import (
    CORRUPTIONS,
    REF,
    ROWS,
    SECRET,
    TABLE,
    corrupt,
    create_table,
    data_url,
    range_of,
    write_policies,
)

USE_CASE = "citizen_requests"


class TaskInstance:
    """The XCom side of a task instance: the return values of the tasks that ran before."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_pull(self, task_ids: str) -> Any:
        return self.xcoms.get(task_ids)


@pytest.fixture
def table(ledger_url: str, charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The training table, registered with ``charter hash --dataset`` (rows per leaf: 50)."""
    from charter_guardrails.cli.main import main as charter

    url = data_url(ledger_url, charter_home)
    monkeypatch.setenv("CHARTER_DATA_URL", url)
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(write_policies(charter_home / "policies")))
    create_table(url)
    assert charter(["hash", "--dataset", REF, "--rows-per-leaf", "50", "--quiet"]) == 0
    return url


def _context(run_id: str) -> dict[str, Any]:
    return {
        "dag_run": SimpleNamespace(dag_id=f"{USE_CASE}_model_refresh", run_id=run_id),
        "params": {},
        "ti": TaskInstance(),
    }


def _run(task_id: str, context: dict[str, Any]) -> Any:
    from charter_airflow.dag_factory import REFRESH_STEPS
    from charter_airflow.guardrail_tasks import run_step
    from charter_airflow.runtime import load_policy

    step = next(s for s in REFRESH_STEPS if s.task_id == task_id)
    output = run_step(step, policy=load_policy(USE_CASE), context=context)
    context["ti"].xcoms[task_id] = output
    return output


def _ledger(run_id: str) -> dict[str, Any]:
    from charter_guardrails.ledger.models import CheckResultRecord, CheckRun, Incident, ManifestVerification
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        run = session.scalars(select(CheckRun).where(CheckRun.run_id == run_id)).one()
        results = session.scalars(select(CheckResultRecord).where(CheckResultRecord.check_run_id == run.id)).all()
        incidents = session.scalars(select(Incident).where(Incident.run_id == run_id)).all()
        verifications = session.scalars(select(ManifestVerification).where(ManifestVerification.run_id == run_id))
        return {
            "results": [(r.check, r.verdict, r.evidence.get("outcome")) for r in results],
            "evidence": [r.evidence for r in results],
            "incidents": [(i.breach_type, i.dataset, i.severity) for i in incidents],
            "incident_facts": [i.facts for i in incidents],
            "verifications": [v.outcome for v in verifications],
        }


def _document() -> dict[str, Any]:
    from charter_guardrails.checks.integrity.manifest_registry import active_manifest
    from charter_guardrails.ledger.store import ledger_session

    with ledger_session() as session:
        row = active_manifest(session, USE_CASE, "training")
        assert row is not None
        return dict(row.document)


def test_the_integrity_step_passes_an_intact_table_and_fails_a_changed_row_with_an_incident(table: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    context = _context("manual__table_intact")
    verified = _run("verify_integrity", context)
    assert verified["verdict"] == "pass"
    assert verified["evidence"]["outcome"] == "intact"
    assert verified["evidence"]["file"] == TABLE
    pin = verified["pin"]
    assert (pin["kind"], pin["table"], pin["rows"]) == ("table", TABLE, ROWS)
    assert pin["merkle_root"] == _document()["merkle_root"]
    assert _ledger("manual__table_intact")["incidents"] == []

    key, _delta = CORRUPTIONS["changed cell"]
    corrupt(table, "changed cell")
    context = _context("manual__table_changed")
    with pytest.raises(AirflowFailException, match="guardrail integrity failed") as failed:
        _run("verify_integrity", context)
    assert f"table {TABLE} differs from its signed manifest" in str(failed.value)
    ledger = _ledger("manual__table_changed")
    assert ledger["results"] == [("integrity", "fail", "data_changed")]
    assert [r["index"] for r in ledger["evidence"][0]["changed_ranges"]] == [range_of(_document(), key)]
    assert ledger["incidents"] == [("integrity", "training", "critical")]
    assert ledger["verifications"] == ["data_changed"]
    shown = json.dumps([ledger, str(failed.value)], ensure_ascii=False, default=str)
    assert SECRET not in shown
    assert "Quatrebarbe" not in shown


def test_a_table_changed_after_verification_is_refused_by_the_next_step_that_reads_it(table: str) -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from charter_airflow.dag_factory import REFRESH_STEPS
    from charter_airflow.pinned_steps import enforce_pin
    from charter_airflow.runtime import load_policy

    context = _context("manual__table_pinned")
    assert _run("verify_integrity", context)["verdict"] == "pass"
    policy = load_policy(USE_CASE)
    quality = next(s for s in REFRESH_STEPS if s.task_id == "validate_quality")
    # Intact: the step goes on (nothing raised, nothing recorded).
    enforce_pin(quality, policy=policy, context=context, file=None, dataset=policy.dataset("training"))
    assert _ledger("manual__table_pinned")["results"] == [("integrity", "pass", "intact")]

    key, delta = CORRUPTIONS["deleted row"]
    corrupt(table, "deleted row")
    with pytest.raises(AirflowFailException, match="guardrail integrity failed"):
        _run("validate_quality", context)
    ledger = _ledger("manual__table_pinned")
    assert ledger["results"] == [("integrity", "fail", "data_changed")]  # before quality ran: no quality result
    changed = ledger["evidence"][0]["changed_ranges"]
    assert [(r["index"], r["rows_now"] - r["rows_registered"]) for r in changed] == [
        (range_of(_document(), key), delta)
    ]
    assert ledger["incidents"] == [("integrity", "training", "critical")]
    assert ledger["verifications"] == ["intact", "data_changed"]
    assert SECRET not in json.dumps(ledger, ensure_ascii=False, default=str)
