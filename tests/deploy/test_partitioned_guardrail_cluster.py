"""The partitioned personal-data guardrail on the native Celery cluster (PostgreSQL + Redis, 2 workers).

A policy folder of this test sets ``privacy.partition_rows: 1000`` for ``citizen_requests``, whose training sample
has 4,000 rows: the refresh's personal-data scan plans 4 partitions, maps them over the workers, and records one
result. The test checks that this result (verdict, metrics, evidence, findings) equals the single-task result of
the library computed here on the same file, that the mapped partitions ran on both workers, and that a second
delivery with an undeclared personal-data column in one partition only blocks the refresh with an incident.

Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432 are required (CI starts them).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.test_celery_cluster import MODEL_REFRESH, ROOT, native_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.topology, pytest.mark.timeout(900)]

PARTITION_ROWS = 1000
UNDECLARED = "contact_agent"


@pytest.fixture
def partition_policies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A policies folder holding ``citizen_requests`` with ``privacy.partition_rows`` set low."""
    import yaml

    folder = tmp_path / "policies"
    folder.mkdir()
    raw = yaml.safe_load((ROOT / "include" / "policies" / "citizen_requests.yaml").read_text(encoding="utf-8"))
    raw["privacy"] = {**raw.get("privacy", {}), "partition_rows": PARTITION_ROWS}
    (folder / "citizen_requests.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    monkeypatch.setenv("CHARTER_POLICIES_DIR", str(folder))
    return folder


@pytest.fixture
def cluster(partition_policies: Path, tmp_path: Path) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """A started cluster on the policies folder of this test: (cluster.json, environment)."""
    with native_cluster(tmp_path, CHARTER_POLICIES_DIR=str(partition_policies)) as started:
        yield started


def _register(env: dict[str, str], data: Path) -> None:
    """A delivery is registered (signed manifest) before a refresh uses it."""
    charter = str(Path(sys.executable).parent / "charter")
    done = subprocess.run(
        [charter, "hash", str(data), "--dataset", "citizen_requests.training", "--json"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _wait_task(client: Any, run_id: str, task_id: str, timeout: float = 480) -> list[dict[str, Any]]:
    """The run's task instances once ``task_id`` has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        instances = client.task_instances(MODEL_REFRESH, run_id)
        states = {ti["task_id"]: ti["state"] for ti in instances if ti["map_index"] < 0}
        if states.get(task_id) in ("success", "failed", "upstream_failed"):
            return instances  # type: ignore[no-any-return]
        time.sleep(2)
    raise AssertionError(f"{task_id} did not end in {timeout} s: {states}")


def _recorded(ledger_url: str, run_id: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[Any]]:
    """The run's personal-data results, their findings, and its incidents, from the ledger on PostgreSQL."""
    import psycopg

    with psycopg.connect(ledger_url, connect_timeout=5) as conn:
        results = conn.execute(
            "SELECT r.id, r.verdict, r.metrics, r.evidence FROM check_results r JOIN check_runs c "
            "ON c.id = r.check_run_id WHERE c.dag_id = %s AND c.run_id = %s AND r.\"check\" = 'personal_data'",
            (MODEL_REFRESH, run_id),
        ).fetchall()
        findings = conn.execute(
            'SELECT "column", entity_type, count, share, mean_score, max_score, masked_examples, allowed '
            "FROM pii_findings WHERE check_result_id = ANY(%s) ORDER BY id",
            ([r[0] for r in results],),
        ).fetchall()
        incidents = conn.execute(
            "SELECT breach_type FROM incidents WHERE run_id = %s AND dataset = 'training'", (run_id,)
        ).fetchall()
    return results, findings, [i[0] for i in incidents]


def _single_task(policies: Path, data: Path) -> Any:
    """The library's check on the same file, in this process (no Airflow, no worker)."""
    from charter_guardrails.checks.privacy.verdict import check_personal_data
    from charter_guardrails.core.policy import load_policy

    return check_personal_data(load_policy(policies / "citizen_requests.yaml"), "training", path=data, reports=False)


def _without_seconds(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if k != "seconds"}


def _with_undeclared_column(source: Path, target: Path) -> None:
    """``source`` with one more column, holding an e-mail address in the rows of the third partition only."""
    import pandas as pd

    frame = pd.read_csv(source, sep=";", dtype=str, keep_default_na=False)
    rows = range(2 * PARTITION_ROWS, 3 * PARTITION_ROWS)
    frame[UNDECLARED] = ""
    frame.loc[frame.index.isin(rows), UNDECLARED] = [f"agent.{i}@exemple-mairie.fr" for i in rows]
    frame.to_csv(target, sep=";", index=False)


def test_refresh_maps_the_scan_and_records_the_single_task_result(cluster: Any, partition_policies: Path) -> None:
    from charter_demo.local_airflow import AirflowRestClient

    info, env = cluster
    env = {**env, "CHARTER_POLICIES_DIR": str(partition_policies)}
    data = Path(info["charter_home"]) / "data" / "citizen_requests" / "training.csv"
    leaky = data.with_name("training__undeclared_column.csv")
    _with_undeclared_column(data, leaky)
    client = AirflowRestClient(info["base_url"], "admin", info["users"]["admin"])
    try:
        client.wait_for_dag(MODEL_REFRESH, timeout=180)
        _register(env, data)
        clean_run = client.trigger(MODEL_REFRESH)
        clean = _wait_task(client, clean_run, "scan_personal_data")
        _register(env, leaky)
        leak_run = client.trigger(MODEL_REFRESH, {"training_file": leaky.relative_to(data.parents[1]).as_posix()})
        leak_state = client.wait_for_run(MODEL_REFRESH, leak_run, timeout=480)
        leak = client.task_instances(MODEL_REFRESH, leak_run)
    finally:
        client.close()

    # 4 partitions, mapped over both workers; the merge recorded one personal-data result.
    mapped = [ti for ti in clean if ti["task_id"] == "scan_personal_data_partition"]
    assert sorted(ti["map_index"] for ti in mapped) == [0, 1, 2, 3], mapped
    assert all(ti["state"] == "success" for ti in mapped), mapped
    workers = {f"charter-worker-{i}@{socket.gethostname()}" for i in (1, 2)}
    assert {ti["hostname"] for ti in mapped} == workers, [(ti["map_index"], ti["hostname"]) for ti in mapped]
    states = {ti["task_id"]: ti["state"] for ti in clean if ti["map_index"] < 0}
    assert states["plan_personal_data_scan"] == states["scan_personal_data"] == "success", states

    results, findings, incidents = _recorded(info["ledger_url"], clean_run)
    assert len(results) == 1, results
    single = _single_task(partition_policies, data)
    _, verdict, metrics, evidence = results[0]
    assert verdict == single.result.verdict.value == "pass"
    assert _without_seconds(metrics) == _without_seconds(single.result.metrics)
    assert Path(evidence.pop("reports")["json"]).is_file()  # the scan report of the run, written by the merge task
    assert evidence == json.loads(json.dumps(single.result.evidence))
    assert "4 partitions" in evidence["guarantee"], evidence["guarantee"]
    expected = [
        (c.name, f.entity_type, f.count, f.share, f.mean_score, f.max_score, f.masked_examples)
        for c in single.scan.columns
        for f in c.findings
    ]
    assert [f[:7] for f in findings] == expected
    assert any(f[0] == "message" for f in findings), findings  # not two empty sets
    assert incidents == []

    # The undeclared column in one partition fails the scan, with an incident, and blocks the refresh.
    _assert_blocked(info["ledger_url"], leak_run, leak_state, leak, _single_task(partition_policies, leaky))


def _assert_blocked(ledger_url: str, run_id: str, state: str, instances: list[dict[str, Any]], single: Any) -> None:
    """The run with the undeclared column: failed at the scan, one failing result, masked findings, an incident."""
    states = {ti["task_id"]: ti["state"] for ti in instances if ti["map_index"] < 0}
    assert state == "failed", states
    assert states["scan_personal_data"] == "failed", states
    assert states["pseudonymise"] == "upstream_failed", states
    assert states.get("publish") != "success", states
    results, findings, incidents = _recorded(ledger_url, run_id)
    assert [r[1] for r in results] == ["fail"]
    bad = {f[1]: f for f in findings if f[0] == UNDECLARED}
    assert "EMAIL_ADDRESS" in bad, bad
    assert not any(f[7] for f in bad.values()), bad  # none allowed
    assert 0 < bad["EMAIL_ADDRESS"][2] <= PARTITION_ROWS
    assert all("@" not in e or "*" in e for f in bad.values() for e in f[6]), bad  # masked examples only
    assert incidents == ["gdpr_compliance"], incidents
    assert single.result.verdict.value == "fail"
    assert _without_seconds(results[0][2]) == _without_seconds(single.result.metrics)
