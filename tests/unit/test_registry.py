"""Model registry and kill switch, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.errors import ConfigError
from charter_guardrails.decision.model_registry import (
    check_kill_switch,
    production_version,
    publish_version,
    record_approval,
)
from charter_guardrails.ledger.store import ledger_session


def _publish(run_id: str) -> int:
    with ledger_session() as s:
        return publish_version(
            s,
            use_case="citizen_requests",
            run_id=run_id,
            metrics={"f1_macro": 0.8},
            artifact_path=None,
            artifact_sha256=None,
            approved_by="claire",
        ).version


def test_publish_retires_previous_and_is_idempotent(ledger_url: str) -> None:
    assert _publish("r1") == 1
    assert _publish("r2") == 2
    assert _publish("r2") == 2
    with ledger_session() as s:
        assert production_version(s, "citizen_requests").version == 2


def test_kill_switch_cli_and_check(ledger_url: str, capsys) -> None:
    assert charter(["model", "suspend", "citizen_requests", "--reason", "x"]) == 2  # nothing to suspend yet
    _publish("r1")
    with ledger_session() as s:
        assert check_kill_switch(s, "citizen_requests").verdict == "pass"
    capsys.readouterr()
    assert (
        charter(
            ["model", "suspend", "citizen_requests", "--reason", "biais signalé par la médiation", "--actor", "dpo"]
        )
        == 0
    )
    with ledger_session() as s:
        result = check_kill_switch(s, "citizen_requests")
        assert result.verdict == "fail"
        assert "dpo" in result.summary
    with pytest.raises(ConfigError, match="suspended"):
        _publish("r2")
    capsys.readouterr()
    assert charter(["model", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["suspended"] is True
    assert listed[0]["suspended_by"] == "dpo"
    assert charter(["model", "resume", "citizen_requests", "--reason", "corrigé", "--actor", "dpo"]) == 0
    assert charter(["audit", "verify"]) == 0


def test_override_is_recorded_with_who_and_why(ledger_url: str, capsys) -> None:
    with ledger_session() as s:
        record_approval(
            s,
            use_case="citizen_requests",
            run_id="r1",
            decision="overridden",
            actor="karim",
            justification="Écart de représentativité connu, compensé par pondération",
            overridden_checks=["representativeness"],
        )
    capsys.readouterr()
    assert charter(["audit", "log", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert any(e["action"] == "approval.overridden" and e["actor"] == "karim" for e in events)
