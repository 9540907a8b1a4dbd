"""``charter attest add|list``: exit 0 with the attestation recorded, 2 with what to correct."""

from __future__ import annotations

import json

import pytest
from charter_guardrails.cli.main import main as charter

from tests.clock import in_days

STATEMENT = "Plan de formation à l'IA adopté et deux sessions tenues pour les agents."


def _add(*extra: str, engagement: str = "maitrise_humaine.5", statement: str = STATEMENT) -> list[str]:
    return [
        "attest",
        "add",
        "--engagement",
        engagement,
        "--statement",
        statement,
        "--document",
        "DELIB-2026-117",
        "--by",
        "Direction du numérique",
        *extra,
    ]


def test_attest_add_then_list(ledger_url: str, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    monkeypatch.setenv("CHARTER_ACTOR", "secretariat-comite")
    expires = in_days(365).isoformat()
    capsys.readouterr()
    assert charter([*_add("--expires", expires, "--on", in_days(-3).isoformat()), "--json"]) == 0
    added = json.loads(capsys.readouterr().out)
    assert added["engagement"] == "maitrise_humaine.5"
    assert added["attested_by"] == "Direction du numérique"
    assert added["recorded_by"] == "secretariat-comite"
    assert added["expires_on"] == expires

    assert charter(["attest", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["engagement"], a["valid_today"]) for a in listed] == [("maitrise_humaine.5", True)]

    assert charter(["attest", "list"]) == 0
    text = capsys.readouterr().out
    assert "maitrise_humaine.5" in text
    assert "valid" in text
    assert charter(["audit", "verify"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (_add("--expires", "2099-01-01", engagement="equite.9"), "equite.3, maitrise_humaine.5, durabilite.2"),
        (_add("--expires", "2099-01-01", engagement="surete.2"), "automated engagement"),
        (_add("--expires", "2099-01-01", statement="Oui."), "at least 20 characters"),
        (_add("--expires", "2000-01-01"), "give an expiry date after the attestation date"),
    ],
)
def test_attest_add_refuses_bad_input_with_exit_2(
    ledger_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    capsys.readouterr()
    assert charter(argv) == 2
    assert message in capsys.readouterr().err
    assert charter(["attest", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (_add("--expires", "31/12/2027"), "write it as YYYY-MM-DD"),
        (_add(), "--expires"),
    ],
)
def test_attest_add_usage_errors_exit_2(
    ledger_url: str, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        charter(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
