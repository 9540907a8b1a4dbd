"""The policy's ``register`` section (what the Art. 30 register needs beyond the rest of the policy) and the
``charter dpo`` commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.policy import json_schema, load_policy
from charter_guardrails.core.policy_register import RegisterPolicy


def _register(**changes: Any) -> dict[str, Any]:
    return {
        "controller": {
            "organisation": "Métropole Aix-Marseille-Provence",
            "representative": {"name": "Présidence", "email": "presidence@ampmetropole.example"},
        },
        "recipients": [{"name": "Hébergeur", "category": "processor"}],
        "transfers": [],
        **changes,
    }


def test_undeclared_and_declared_empty_are_different() -> None:

    undeclared = RegisterPolicy()
    assert undeclared.transfers is None
    assert undeclared.recipients is None
    declared = RegisterPolicy.model_validate(_register())
    assert declared.transfers == []
    assert declared.processors_without_contract() == ["Hébergeur"]


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"transfers": [{"country": "DE", "recipient": "x", "safeguard": "adequacy_decision"}]}, "is in the EEA"),
        ({"transfers": [{"country": "US", "recipient": "x", "safeguard": "trust_us"}]}, "Input should be"),
        (
            {"processor_contracts": [{"processor": "Inconnu", "contract_ref": "M-1", "art28_clauses": True}]},
            "not recipients of category processor",
        ),
        ({"recipients": [{"name": "Agents", "category": "friends"}]}, "Input should be"),
        ({"controler": {}}, "Extra inputs"),
    ],
)
def test_the_register_section_refuses_what_the_register_cannot_hold(changes: dict[str, Any], reason: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=reason):
        RegisterPolicy.model_validate(_register(**changes))


def test_the_shipped_policies_declare_their_register_and_the_schema_knows_it() -> None:
    citizen = load_policy("citizen_requests").processing
    assert citizen.transfers == []
    assert citizen.controller is not None
    assert citizen.processors_without_contract() == []
    waste = load_policy("waste_tonnage").processing
    assert waste.entry_ref is None
    assert waste.processor_contracts is None
    schema = json.loads(json_schema())
    assert "processing" in schema["properties"]
    assert "RegisterPolicy" in schema["$defs"]
    checked_in = Path(__file__).resolve().parents[2] / "include" / "policies" / "schema.json"
    assert (
        json.loads(checked_in.read_text(encoding="utf-8"))["$defs"]["RegisterPolicy"]
        == schema["$defs"]["RegisterPolicy"]
    ), "run `make schema`"


def test_charter_dpo_writes_the_documents_and_says_what_is_missing(
    charter_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from charter_guardrails.ledger import db

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    out = tmp_path / "dpo"
    assert charter(["dpo", "register", "--out", str(out), "--format", "json,html", "--json"]) == 0
    documents = json.loads(capsys.readouterr().out)["documents"]
    assert [d["use_case"] for d in documents] == ["citizen_requests", "waste_tonnage"]
    assert "processing.entry_ref" in documents[1]["completeness"]["missing"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("registre-waste")) == [
        "registre-waste_tonnage.html",
        "registre-waste_tonnage.html.sig.json",
        "registre-waste_tonnage.json",
        "registre-waste_tonnage.json.sig.json",
    ]
    assert charter(["dpo", "aipd", "waste_tonnage", "--out", str(out), "--format", "json"]) == 0
    printed = capsys.readouterr().out
    assert "waste_tonnage:" in printed
    assert "aipd-waste_tonnage.json" in printed
    assert charter(["dpo", "aipd", "no_such_case", "--out", str(out), "--format", "json"]) == 2
    assert "known use cases" in capsys.readouterr().err
    assert charter(["dpo", "register", "--use-case", "../keys", "--format", "json"]) == 2
    assert "invalid use case id" in capsys.readouterr().err
