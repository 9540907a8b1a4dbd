"""The compose topology, natively: CeleryExecutor on PostgreSQL and Redis, driven through the REST API.

``scripts/cluster.py start`` (what ``make cluster`` runs) starts the scheduler, dag-processor,
triggerer, api-server and 2 Celery workers on fresh PostgreSQL databases this test creates (the
Airflow metadata and the ledger, separately) and drops afterwards. The test triggers the model
refresh of ``citizen_requests``, a named approver answers the HITL form through the API, and the
run must succeed with every task executed by one of the cluster's Celery workers and the run
recorded in the ledger on PostgreSQL. Every process started is stopped, also on failure.

Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432 are required (CI starts them).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHECKOUT_CONFIG

ROOT = Path(__file__).resolve().parents[2]
PG = os.environ.get("CHARTER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres").rsplit("/", 1)[0]
MODEL_REFRESH = "citizen_requests_model_refresh"

# About 4 minutes on an idle 2-core machine; the bound leaves room for a loaded one.
pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.topology, pytest.mark.timeout(900)]


def _cluster(state: Path, *args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cluster.py"), *args, "--state-dir", str(state)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def _refresh_dag(client) -> str:
    """The model refresh of citizen_requests, parsed by the cluster's dag-processor: the test fails without it (it
    does not fall back to another DAG)."""
    client.wait_for_dag(MODEL_REFRESH, timeout=180)
    return MODEL_REFRESH


@contextlib.contextmanager
def native_cluster(tmp_path: Path, **config: str) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """A started cluster of 2 Celery workers on fresh PostgreSQL databases: (cluster.json, environment of the
    cluster), with ``config`` over the checkout's policies, suites and references (e.g. another
    ``CHARTER_POLICIES_DIR``). Stopped and its databases dropped after, also on failure."""
    from charter_demo.local_airflow import running_from_pid_dir, stop_pid_dir

    sys.path.insert(0, str(ROOT / "scripts"))
    from cluster import drop_database

    suffix = uuid.uuid4().hex[:10]
    metadata_db, ledger_db = f"charter_ci_airflow_{suffix}", f"charter_ci_ledger_{suffix}"
    state, home = tmp_path / "cluster", tmp_path / "charter"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARTER_")}
    env.update(
        {"CHARTER_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__UNIT_TEST_MODE": "False"}
    )
    env.update({**CHECKOUT_CONFIG, **config})
    args = ["--workers", "2", "--charter-home", str(home), "--pg", PG]
    try:
        started = _cluster(state, "start", *args, "--metadata-db", metadata_db, "--ledger-db", ledger_db, env=env)
        assert started.returncode == 0, f"cluster start failed:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}"
        info = json.loads((state / "cluster.json").read_text())
        assert set(running_from_pid_dir(state)) == {
            "api-server",
            "scheduler",
            "dag-processor",
            "triggerer",
            "celery-worker-1",
            "celery-worker-2",
        }
        env.update({"CHARTER_LEDGER_URL": info["ledger_url"]})
        yield info, env
    finally:
        stopped = _cluster(state, "stop", env=env, timeout=120)
        stop_pid_dir(state)  # in case the stop command itself failed
        assert not running_from_pid_dir(state)
        for name in (metadata_db, ledger_db):
            drop_database(PG, name)
        assert stopped.returncode == 0, stopped.stderr[-2000:]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[dict[str, Any], dict[str, str]]]:
    """A started cluster on the checkout's configuration: (cluster.json, environment of the cluster)."""
    with native_cluster(tmp_path) as started:
        yield started


def test_model_refresh_runs_on_celery_workers_and_lands_in_the_postgres_ledger(cluster) -> None:
    import psycopg
    from charter_airflow.dag_factory import REFRESH_STEPS
    from charter_demo.local_airflow import AirflowRestClient, AirflowRestError

    info, env = cluster
    client = AirflowRestClient(info["base_url"], "admin", info["users"]["admin"])
    try:
        dag_id = _refresh_dag(client)
        if dag_id == MODEL_REFRESH:
            # A delivery of the training data is registered (signed manifest) before a refresh uses it.
            data = Path(info["charter_home"]) / "data" / "citizen_requests" / "training.csv"
            registered = subprocess.run(
                [
                    str(Path(sys.executable).parent / "charter"),
                    "hash",
                    str(data),
                    "--dataset",
                    "citizen_requests.training",
                    "--json",
                ],
                env=env,
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            assert registered.returncode == 0, registered.stderr[-2000:]
        run_id = client.trigger(dag_id)
        try:
            if dag_id == MODEL_REFRESH:
                detail = client.wait_for_hitl(dag_id, run_id, "human_review", timeout=480)
                assert detail["options"] == ["Approve", "Override", "Reject"]
                # four eyes: an approver of the policy who did not trigger the run answers
                approver = AirflowRestClient(info["base_url"], "karim.haddad", info["users"]["karim.haddad"])
                approver.answer_hitl(dag_id, run_id, "human_review", "Approve")
                approver.close()
            state = client.wait_for_run(dag_id, run_id, timeout=240)
        except AirflowRestError as exc:
            states = {ti["task_id"]: (ti["state"], ti["try_number"]) for ti in client.task_instances(dag_id, run_id)}
            raise AssertionError(f"{exc}; task states: {states}; logs in {info['home']}/logs") from exc
        instances = client.task_instances(dag_id, run_id)
    finally:
        client.close()
    states = {ti["task_id"]: ti["state"] for ti in instances}
    assert state == "success", f"{dag_id} ended {state}: {states}"

    # Every task ran on a Celery worker of this cluster, through this cluster's queue, and both workers took tasks.
    workers = {f"charter-worker-{i}@{socket.gethostname()}" for i in (1, 2)}
    ran = [ti for ti in instances if ti["state"] == "success"]
    assert ran, states
    for ti in ran:
        assert ti["hostname"] in workers, (
            f"{ti['task_id']} ran on {ti['hostname']!r}, not on a Celery worker {sorted(workers)}"
        )
        assert ti["queue"] == info["queue"]
    assert {ti["hostname"] for ti in ran} == workers, {ti["task_id"]: ti["hostname"] for ti in ran}

    # Each worker loaded the personal data analysers once, before forking its pool, and reaps its
    # task processes as soon as they exit (celery_config.py, task_reaping.py).
    for i in (1, 2):
        log = (Path(info["home"]) / "logs" / f"celery-worker-{i}.log").read_text(errors="replace")
        assert "personal data analysers preloaded" in log, log[-2000:]
        assert "task processes are reaped as soon as they exit" in log, log[-2000:]

    # The ledger on PostgreSQL holds the run and its verdicts.
    with psycopg.connect(info["ledger_url"], connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT id, use_case FROM check_runs WHERE dag_id = %s AND run_id = %s", (dag_id, run_id)
        ).fetchone()
        assert row is not None, f"no check_runs row for {dag_id} {run_id}"
        assert row[1] == "citizen_requests"
        checks = {c for (c,) in conn.execute('SELECT "check" FROM check_results WHERE check_run_id = %s', (row[0],))}
    assert checks, "the run has no check results in the ledger"
    # every guardrail of the refresh recorded its result
    assert checks == {check.value for step in REFRESH_STEPS for check in step.checks}, checks
    assert states.get("publish") == "success"
    assert states.get("human_review") == "success"
