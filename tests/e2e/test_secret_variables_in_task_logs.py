"""The keys as Airflow Variables, on real Airflow processes (api-server, scheduler, dag-processor,
LocalExecutor): a task reads them through :func:`charter_airflow.runtime.configure_from_airflow`, logs them
carelessly, and its task log holds ``***`` instead; the REST API lists the Variables without their values.

``dag.test()`` runs tasks without Airflow's task-log pipeline (its console output is not masked), so this test
starts Airflow for real: the masking under test is the one a deployment's task logs go through.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

DAG_ID = "charter_secret_probe"
USERS = {"admin": ("admin", "pw-admin-secret-probe")}
VARIABLES = {
    "CHARTER_SIGNING_KEY": "charter_signing_key_secret",
    "CHARTER_PSEUDONYMISATION_KEY": "charter_pseudonymisation_key_secret",
}
PROBE_DAG = """
from __future__ import annotations

import hashlib
import logging
import os
from datetime import datetime

from airflow.sdk import dag, task


@dag(dag_id="charter_secret_probe", schedule=None, start_date=datetime(2026, 1, 1), catchup=False)
def probe():
    @task
    def read_keys(expected: str) -> None:
        import json

        from charter_airflow.runtime import configure_from_airflow

        configure_from_airflow()
        log = logging.getLogger("charter.probe")
        for env, digest in json.loads(expected).items():
            value = os.environ.get(env) or ""
            assert hashlib.sha256(value.encode()).hexdigest() == digest, f"{env} was not read from its Variable"
            log.info("careless log of %s: %s", env, value)
            for line in value.splitlines():
                log.info("one line of %s: %s", env, line)
            print(f"careless print of {env}: {value}")

    read_keys(expected="{{ dag_run.conf['expected'] }}")


probe()
"""


def _pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return (
        Ed25519PrivateKey.generate()
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode("ascii")
    )


@pytest.fixture
def airflow(charter_home: Path, airflow_db: Path, tmp_path: Path) -> Iterator[Any]:
    from charter_demo.local_airflow import LocalAirflow

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "secret_probe.py").write_text(PROBE_DAG, encoding="utf-8")
    extra = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "CHARTER_LEDGER_URL": f"sqlite:///{charter_home / 'ledger.db'}",
        # the task's careless INFO lines must reach its log whatever level the caller set (`make` sets WARNING)
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    with LocalAirflow(home=airflow_db, users=USERS, extra_env=extra) as running:
        running.client("admin").wait_for_dag(DAG_ID)
        yield running


def test_a_task_log_and_the_variables_list_never_show_the_keys(airflow: Any) -> None:
    values = {
        "CHARTER_SIGNING_KEY": _pem(),
        "CHARTER_PSEUDONYMISATION_KEY": base64.b64encode(os.urandom(32)).decode("ascii"),
    }
    client = airflow.client("admin")
    for env, name in VARIABLES.items():
        client._call("POST", "/variables", json={"key": name, "value": values[env]})
    listed = client._call("GET", "/variables", params={"limit": 100})
    shown = {v["key"]: v["value"] for v in listed["variables"]}
    assert {name: shown[name] for name in VARIABLES.values()} == {name: "***" for name in VARIABLES.values()}

    expected = {env: hashlib.sha256(v.encode()).hexdigest() for env, v in values.items()}
    run_id = client.trigger(DAG_ID, {"expected": json.dumps(expected)})
    state = client.wait_for_run(DAG_ID, run_id, timeout=600)
    logs = sorted((airflow.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}").rglob("attempt=*.log"))
    text = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in logs)
    assert state == "success", text[-3000:]
    assert "careless log of CHARTER_SIGNING_KEY" in text, "the task logged nothing: the search below would be blind"
    secrets = [values["CHARTER_PSEUDONYMISATION_KEY"]]
    secrets += [line for line in values["CHARTER_SIGNING_KEY"].splitlines() if not line.startswith("-----")]
    for secret in secrets:
        assert secret not in text
        assert json.dumps(secret)[1:-1] not in text
    assert text.count("***") >= 4
