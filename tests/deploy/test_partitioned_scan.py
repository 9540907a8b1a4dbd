"""Partitioned scale-out: the mapped result (per-partition hash and scan, then combine) equals the single-task result.

The single-task reference is computed by the library alone: the directory manifest of
``charter_guardrails.checks.integrity.manifest.build_manifest`` and one exhaustive scan of the whole
table. The mapped result is computed by the ``partitioned_scan`` DAG itself, run with
``dag.test()`` on a throw-away Airflow metadata database, and by the partition functions directly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CHECKOUT_CONFIG

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 8

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(CHARTER_HOME, partition folder): the citizen requests sample split into 8 Parquet files."""
    from charter_airflow.partitions import write_partitions

    home = tmp_path_factory.mktemp("partitioned") / "charter"
    env = {**os.environ, "CHARTER_HOME": str(home)}
    subprocess.run(
        [
            str(Path(sys.executable).parent / "charter"),
            "data",
            "generate",
            "--use-case",
            "citizen_requests",
            "--rows",
            "480",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    directory = home / "data" / "citizen_requests" / "training_partitions"
    write_partitions(home / "data" / "citizen_requests" / "training.csv", directory, PARTITIONS)
    return home, directory


def _mapped(directory: Path) -> dict:
    from charter_airflow import partitions

    plan = partitions.plan(directory)
    hashes = [partitions.hash_partition(directory, n, chunk_size=plan["chunk_size"]) for n in plan["partitions"]]
    scans = [
        partitions.scan_partition(directory, n, free_text_columns=["message"]) for n in reversed(plan["partitions"])
    ]
    return partitions.combine(hashes, scans)


def test_partition_functions_equal_the_single_task(dataset: tuple[Path, Path]) -> None:
    from charter_airflow import partitions

    _, directory = dataset
    assert len(partitions.partition_files(directory)) == PARTITIONS
    mapped, single = _mapped(directory), partitions.single_task(directory, free_text_columns=["message"])
    assert mapped["partitions"] == single["partitions"] == PARTITIONS
    assert mapped["rows"] == single["rows"] == 480
    assert mapped["merkle_root"] == single["merkle_root"]
    assert partitions.comparable(mapped) == partitions.comparable(single)
    # The sample holds personal data in the free text: the comparison is not between two empty sets.
    entities = {(f["column"], f["entity_type"]) for f in single["findings"]}
    assert any(column == "message" for column, _ in entities), entities
    assert all("@" not in example or "*" in example for f in mapped["findings"] for example in f["masked_examples"])


def test_a_changed_partition_changes_the_root(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    from charter_airflow import partitions

    _, directory = dataset
    copy = tmp_path / "copy"
    shutil.copytree(directory, copy)
    plan = partitions.plan(copy)
    before = [partitions.hash_partition(copy, n, chunk_size=plan["chunk_size"]) for n in plan["partitions"]]
    target = copy / plan["partitions"][3]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))
    after = [partitions.hash_partition(copy, n, chunk_size=plan["chunk_size"]) for n in plan["partitions"]]
    assert [a["merkle_root"] == b["merkle_root"] for a, b in zip(after, before, strict=True)] == [
        i != 3 for i in range(PARTITIONS)
    ]
    empty: list[dict] = [{"name": h["name"], "rows": 0, "columns": {}} for h in before]
    assert partitions.combine(before, empty)["merkle_root"] != partitions.combine(after, empty)["merkle_root"]
    with pytest.raises(ValueError, match="differ"):
        partitions.combine(before, empty[1:])


DAG_RUN = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
from airflow.models.taskinstance import TaskInstance
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session
from sqlalchemy import select

dag = DagBag(dag_folder=sys.argv[1]).dags["partitioned_scan"]
run = dag.test(run_conf={"directory": "citizen_requests/training_partitions"})
with create_session() as session:
    states = {f"{ti.task_id}[{ti.map_index}]": ti.state for ti in session.scalars(
        select(TaskInstance).where(TaskInstance.dag_id == "partitioned_scan", TaskInstance.run_id == run.run_id))}
    value = session.scalar(select(XComModel.value).where(
        XComModel.dag_id == "partitioned_scan", XComModel.run_id == run.run_id,
        XComModel.task_id == "combine", XComModel.key == "return_value"))
result = XComModel.deserialize_value(type("X", (), {"value": value})()) if value is not None else None
print(json.dumps({"state": str(run.state), "states": {k: str(v) for k, v in states.items()}, "result": result}))
"""


def test_the_dag_maps_partitions_and_its_reduce_equals_the_single_task(
    dataset: tuple[Path, Path], tmp_path: Path
) -> None:
    from charter_airflow import partitions

    home, directory = dataset
    airflow_home = tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHARTER_", "AIRFLOW__DATABASE__"))}
    env.update(
        {
            **CHECKOUT_CONFIG,
            "CHARTER_HOME": str(home),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        }
    )
    airflow_home.mkdir()
    migrated = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True
    )
    assert migrated.returncode == 0, migrated.stderr[-3000:]
    ran = subprocess.run(
        [sys.executable, "-c", DAG_RUN, str(ROOT / "dags" / "partitioned_scan.py")],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert ran.returncode == 0, ran.stderr[-4000:]
    out = json.loads(ran.stdout.strip().splitlines()[-1])
    assert out["state"] == "success", out["states"]
    mapped = sorted(k for k in out["states"] if k.startswith(("hash_partition[", "scan_partition[")))
    assert len(mapped) == 2 * PARTITIONS, mapped
    assert all(out["states"][k] == "success" for k in mapped)

    single = partitions.single_task(directory, free_text_columns=["message"])
    assert out["result"]["merkle_root"] == single["merkle_root"]
    assert partitions.comparable(out["result"]) == partitions.comparable(single)
