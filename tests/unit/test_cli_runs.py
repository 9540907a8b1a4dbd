"""A run recorded from the command line (a scan, a quality check, a verification) is closed with its decision
when the command ends: the overview never lists it as running (``en cours``) forever."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from charter_demo.sample_data import generate
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.settings import get_settings


@pytest.fixture
def data(ledger_url: str, policies: dict[str, Any]) -> Path:
    data_dir = get_settings().data_dir
    generate(data_dir, policies, rows=120)  # type: ignore[arg-type]
    return data_dir


def _policy(use_case: str) -> str:
    return str(get_settings().policies_dir / f"{use_case}.yaml")


def _run(run_id: str) -> Any:
    from charter_guardrails.ledger.models import CheckRun
    from charter_guardrails.ledger.store import ledger_session
    from sqlalchemy import select

    with ledger_session() as session:
        run = session.scalars(select(CheckRun).where(CheckRun.run_id == run_id)).one()
        session.expunge(run)
        return run


def _overview_labels() -> dict[str, str]:
    from charter_guardrails.ledger.store import ledger_session
    from charter_guardrails.reporting import governance as gov
    from charter_guardrails.reporting.vocabulary import DECISION_LABELS

    with ledger_session() as session:
        return {r["run_id"]: DECISION_LABELS[r["decision"]] for r in gov.recent_runs(session, limit=50)}


def test_a_scan_from_the_command_line_closes_its_run_with_its_decision(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    leak = data / "waste_tonnage" / "training__pii_leak.csv"
    assert charter(["scan", str(leak), "--policy", _policy("waste_tonnage"), "--run-id", "cli-fuite"]) == 1
    run = _run("cli-fuite")
    assert (run.decision, run.blocked_by) == ("blocked", ["personal_data"])
    assert run.finished_at is not None

    clean = data / "waste_tonnage" / "training.csv"
    assert (
        charter(["scan", str(clean), "--policy", _policy("waste_tonnage"), "--record", "--run-id", "cli-propre"]) == 0
    )
    run = _run("cli-propre")
    assert (run.decision, run.blocked_by) == ("passed", [])
    assert run.finished_at is not None
    capsys.readouterr()
    labels = _overview_labels()
    assert labels["cli-fuite"] == "bloqué"
    assert labels["cli-propre"] == "validé"
    assert "en cours" not in labels.values()


def test_a_quality_check_from_the_command_line_closes_its_run_and_a_later_failure_reopens_the_decision(
    data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    training = data / "citizen_requests" / "training.csv"
    code = charter(["representativeness", str(training), "--policy", _policy("citizen_requests"), "--run-id", "cli-q"])
    assert code in (0, 1)
    run = _run("cli-q")
    assert run.finished_at is not None
    assert (run.decision, run.blocked_by) == (("passed", []) if code == 0 else ("blocked", ["representativeness"]))

    # A second command on the same run: the decision covers every result of the run.
    leak = data / "waste_tonnage" / "training__pii_leak.csv"
    assert charter(["scan", str(leak), "--policy", _policy("waste_tonnage"), "--run-id", "cli-q2"]) == 1
    assert charter(["scan", str(leak), "--policy", _policy("waste_tonnage"), "--run-id", "cli-q2", "--record"]) == 1
    assert _run("cli-q2").decision == "blocked"
    capsys.readouterr()
    assert "en cours" not in _overview_labels().values()
