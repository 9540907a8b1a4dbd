"""Zero-Python use cases: the one shipped DAG file builds every valid policy of the folder, and a broken policy
takes down its own use case only, with a stand-in DAG that names its file, key path and reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "plugins" / "charter_airflow"
#: The DAG files the package ships: the DAGs of the valid policies, and the import errors of the others.
SHIPPED_DAG_FILES = ("charter_dags.py", "charter_policy_errors.py")
THREE = ("policy_review", "model_refresh", "inference_guardrails")


def _policy(folder: Path, stem: str, **changes: object) -> Path:
    """A copy of the waste_tonnage policy named ``stem``, with top-level keys changed."""
    raw = yaml.safe_load((ROOT / "include" / "policies" / "waste_tonnage.yaml").read_text(encoding="utf-8"))
    raw.update({"id": stem, **changes})
    path = folder / f"{stem}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(folder))
    return folder


def _bag(tmp_path: Path):
    from airflow.dag_processing.dagbag import DagBag

    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    for name in SHIPPED_DAG_FILES:
        shutil.copy(SHIPPED / name, dags / name)
    return DagBag(dag_folder=str(dags))


def _import_error(bag) -> str:
    """The one import error: the invalid policies', never the file that builds the valid use cases' DAGs."""
    [(path, message)] = bag.import_errors.items()
    assert path.endswith("charter_policy_errors.py")
    return message


def test_adding_a_policy_file_adds_its_three_dags(policies: Path, tmp_path: Path) -> None:
    _policy(policies, "tonnage_nord")
    _policy(policies, "tonnage_sud", title="Tonnages du sud")
    bag = _bag(tmp_path)
    assert bag.import_errors == {}
    assert sorted(bag.dags) == sorted(f"tonnage_{side}_{suffix}" for side in ("nord", "sud") for suffix in THREE)
    assert "Tonnages du sud" in bag.dags["tonnage_sud_model_refresh"].description


def test_a_broken_policy_stops_its_own_use_case_only(policies: Path, tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    _policy(policies, "tonnage_nord")
    broken = _policy(policies, "tonnage_sud", legal_basis="whim")
    bag = _bag(tmp_path)

    # Airflow shows the broken policy among its import errors, on the file that builds no DAG: an import error
    # on charter_dags.py would make it mark the valid use case's DAGs stale.
    assert f"{broken}: legal_basis: Input should be 'consent', 'contract'" in _import_error(bag)
    assert {f"tonnage_nord_{suffix}" for suffix in THREE} <= set(bag.dags)
    assert all(bag.dags[f"tonnage_nord_{suffix}"].fileloc.endswith("charter_dags.py") for suffix in THREE)
    assert not [d for d in bag.dags if d.startswith("tonnage_sud_") and not d.endswith("_policy_invalid")]
    stand_in = bag.dags["tonnage_sud_policy_invalid"]
    assert "tonnage_sud.yaml" in stand_in.description
    assert "legal_basis" in stand_in.description
    assert str(broken) in stand_in.doc_md
    assert "`legal_basis`" in stand_in.doc_md
    assert stand_in.is_paused_upon_creation is True
    task = stand_in.get_task("policy_invalid")
    with pytest.raises(AirflowFailException, match=r"tonnage_sud\.yaml: legal_basis: "):
        task.python_callable()


def test_a_file_named_apart_from_its_id_is_refused(policies: Path, tmp_path: Path) -> None:
    """Tasks, the view and the ledger find a policy by ``<id>.yaml``: a second file declaring an id is refused."""
    _policy(policies, "tonnage_nord")
    _policy(policies, "tonnage_copie", id="tonnage_nord")
    bag = _bag(tmp_path)
    assert f"{policies / 'tonnage_copie.yaml'}: id: declares 'tonnage_nord'" in _import_error(bag)
    assert {f"tonnage_nord_{suffix}" for suffix in THREE} <= set(bag.dags)
    stand_in = bag.dags["tonnage_copie_policy_invalid"]
    assert stand_in.description == (
        "Invalid policy tonnage_copie.yaml: id: declares 'tonnage_nord': name the file tonnage_nord.yaml"
    )


def test_unreadable_yaml_names_the_file(policies: Path, tmp_path: Path) -> None:
    _policy(policies, "tonnage_nord")
    (policies / "cassé.yaml").write_text("id: [unclosed\n", encoding="utf-8")
    bag = _bag(tmp_path)
    assert f"{policies / 'cassé.yaml'}: <file>: invalid YAML" in _import_error(bag)
    assert {f"tonnage_nord_{suffix}" for suffix in THREE} <= set(bag.dags)
    stand_in = bag.dags["cass__policy_invalid"]
    assert "cassé.yaml" in stand_in.description
    assert "invalid YAML" in stand_in.description
