from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from charter_guardrails.cli.main import main as charter
from charter_guardrails.core.errors import PolicyError
from charter_guardrails.core.policy import UseCasePolicy, json_schema, policy_files

ROOT = Path(__file__).resolve().parents[2]
CITIZEN = ROOT / "include" / "policies" / "citizen_requests.yaml"


def _write(tmp_path: Path, data: dict, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _citizen() -> dict:
    return yaml.safe_load(CITIZEN.read_text(encoding="utf-8"))


def test_shipped_policies_validate() -> None:
    files = policy_files()
    assert {f.stem for f in files} >= {"citizen_requests", "waste_tonnage"}
    for path in files:
        policy = UseCasePolicy.from_file(path)
        assert policy.id == path.stem


def test_checked_in_schema_matches_the_model() -> None:
    checked_in = (ROOT / "include" / "policies" / "schema.json").read_text(encoding="utf-8")
    assert checked_in == json_schema(), "include/policies/schema.json drifted: run `make schema`"


def test_policy_is_frozen() -> None:
    policy = UseCasePolicy.from_file(CITIZEN)
    with pytest.raises(Exception, match="frozen"):
        policy.title = "x"  # type: ignore[misc]


def test_unknown_key_names_file_and_key_path(tmp_path: Path) -> None:
    data = _citizen()
    data["datasets"][0]["columns"][2]["pii_alowed"] = ["PERSON"]
    path = _write(tmp_path, data)
    with pytest.raises(PolicyError) as err:
        UseCasePolicy.from_file(path)
    assert err.value.key == "datasets[0].columns[2].pii_alowed"
    assert str(path) in str(err.value)
    assert "unknown key" in str(err.value)


def test_a_malformed_address_is_refused_without_being_repeated(tmp_path: Path) -> None:
    """An e-mail address is personal data: the error names the key, not the value (it reaches import errors)."""
    data = _citizen()
    data["owner"]["email"] = "jeanne.dupontel@ampmetropole"
    with pytest.raises(PolicyError) as err:
        UseCasePolicy.from_file(_write(tmp_path, data))
    assert err.value.key == "owner.email"
    assert err.value.reason == "must be an e-mail address"
    assert "dupontel" not in str(err.value)


def test_missing_purpose(tmp_path: Path) -> None:
    data = _citizen()
    del data["purpose"]
    with pytest.raises(PolicyError) as err:
        UseCasePolicy.from_file(_write(tmp_path, data))
    assert err.value.key == "purpose"
    assert "missing" in err.value.reason


def test_decision_support_requires_human_recourse(tmp_path: Path) -> None:
    data = _citizen()
    del data["human_recourse"]
    with pytest.raises(PolicyError) as err:
        UseCasePolicy.from_file(_write(tmp_path, data))
    assert "human_recourse" in err.value.reason


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "a/../../b.csv", "C:/data/x.csv"])
def test_dataset_path_cannot_leave_the_data_folder(tmp_path: Path, path: str) -> None:
    data = _citizen()
    data["datasets"][0]["path"] = path
    with pytest.raises(PolicyError) as err:
        UseCasePolicy.from_file(_write(tmp_path, data))
    assert err.value.key == "datasets[0].path"


def test_non_personal_dataset_cannot_declare_personal_columns(tmp_path: Path) -> None:
    data = yaml.safe_load((ROOT / "include" / "policies" / "waste_tonnage.yaml").read_text(encoding="utf-8"))
    data["datasets"][0]["columns"][0]["personal_data"] = "contact"
    with pytest.raises(PolicyError, match="non-personal"):
        UseCasePolicy.from_file(_write(tmp_path, data))


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\ntitle: [unclosed\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="line"):
        UseCasePolicy.from_file(path)


def test_cli_validate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert charter(["policy", "validate", *map(str, policy_files())]) == 0
    data = _citizen()
    data["surprise"] = 1
    bad = _write(tmp_path, data)
    assert charter(["policy", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err
    assert "surprise" in err
    assert charter(["policy", "validate", "--json", str(bad)]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out[0]["ok"] is False
    assert out[0]["errors"][0]["key"] == "surprise"


def test_a_delivery_stays_inside_the_data_folder(charter_home: Path) -> None:
    from charter_guardrails.core.errors import ConfigError
    from charter_guardrails.core.settings import get_settings

    dataset = UseCasePolicy.from_file(CITIZEN).training_dataset
    data_dir = get_settings().data_dir
    assert dataset.delivery() == data_dir / "citizen_requests" / "training.csv"
    assert (
        dataset.delivery("citizen_requests/training__biased.csv")
        == data_dir / "citizen_requests" / "training__biased.csv"
    )
    assert dataset.delivery(data_dir / "x" / "y.csv") == data_dir / "x" / "y.csv"
    for hostile in ("../../etc/passwd", "/etc/passwd", "citizen_requests/../../../etc/shadow"):
        with pytest.raises(ConfigError, match=r"data folder|invalid delivery"):
            dataset.delivery(hostile)
