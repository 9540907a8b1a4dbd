"""Run real Airflow processes on this machine and drive them through the REST API.

Used by ``make run`` (SQLite, LocalExecutor), by the end-to-end tests of the human approval
and by ``make cluster`` (PostgreSQL, CeleryExecutor). Approvals go through the same HITL API
the Airflow UI uses: ``PATCH .../taskInstances/{task_id}/{map_index}/hitlDetails``, with a
token of a named user so that the responder is recorded as that user, not "Anonymous".
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

TERMINAL_STATES = {"success", "failed"}
#: A HITL task waits in ``awaiting_input`` (Airflow 3.3+) or ``deferred`` (earlier versions).
WAITING_STATES = {"awaiting_input", "deferred"}
#: Seconds to let the scheduler process the executor's report of a parked HITL task (heartbeat is 2 s here).
HITL_SETTLE_SECONDS = 12
#: Set in the environment of each local Celery worker to its node name (see :func:`worker_hostname`).
WORKER_NAME_VARIABLE = "AIRFLOW_LOCAL_WORKER_NAME"


class AirflowRestError(RuntimeError):
    """The Airflow REST API answered with an error or did not answer in time."""


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the local Celery workers: the worker's node name, else the FQDN."""
    return os.environ.get(WORKER_NAME_VARIABLE) or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: How many times a request answered 500 "Database error" (a lock wait that timed out) is sent.
DATABASE_ERROR_RETRIES = 5


class AirflowRestClient:
    """A small client for the Airflow 3 public API (``/api/v2``), authenticated as one user."""

    def __init__(self, base_url: str, username: str, password: str, *, timeout: float = 30.0) -> None:
        import httpx

        self.base_url = base_url.rstrip("/")
        self.username = username
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        response = self._http.post("/auth/token", json={"username": username, "password": password})
        if response.status_code not in (200, 201):
            raise AirflowRestError(f"login as {username} failed: HTTP {response.status_code}")
        self._http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        # On the SQLite metadata database the scheduler, the dag-processor and the api-server write in turn;
        # on a busy machine the api-server's wait for the lock can time out, and it answers 500 "Database error"
        # with its transaction rolled back. That request is sent again; any other error is the caller's.
        for _ in range(DATABASE_ERROR_RETRIES):
            response = self._http.request(method, "/api/v2" + path, **kwargs)
            if not (response.status_code == 500 and "Database error" in response.text):
                break
            time.sleep(1)
        if response.status_code >= 400:
            raise AirflowRestError(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json() if response.content else None

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> None:
        """Wait until the dag-processor has parsed ``dag_id``, then unpause it."""
        deadline = time.monotonic() + timeout
        while True:
            response = self._http.get(f"/api/v2/dags/{dag_id}")
            if response.status_code == 200:
                self._call("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
                return
            if time.monotonic() > deadline:
                raise AirflowRestError(
                    f"DAG {dag_id} was not parsed within {timeout:.0f} s (HTTP {response.status_code})"
                )
            time.sleep(1)

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        body = {"logical_date": None, "conf": dict(conf or {})}
        return str(self._call("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self._call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self._call(
            "GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances", params={"limit": 100}
        )
        return list(data["task_instances"])

    def task_state(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str | None:
        path = f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}"
        data = self._call("GET", path if map_index < 0 else f"{path}/{map_index}")
        return data.get("state")

    def pending_hitl(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        data = self._call("GET", f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/hitlDetails")
        return [d for d in data["hitl_details"] if not d.get("response_received")]

    def wait_for_hitl(self, dag_id: str, run_id: str, task_id: str, timeout: float = 900) -> dict[str, Any]:
        """Wait until ``task_id`` asks for a human answer; fail early if the run ends without asking."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for detail in self.pending_hitl(dag_id, run_id):
                # The form exists a moment before the task is parked; an answer given in between is
                # recorded but never resumes the task (Airflow 3.3), so wait for the parked state.
                if (
                    detail["task_instance"]["task_id"] == task_id
                    and self.task_state(dag_id, run_id, task_id) in WAITING_STATES
                ):
                    # The executor reports the parked process's exit a few seconds later; an answer that
                    # resumes the task before the scheduler has seen that report can be failed by it as a
                    # stale event. Let one report cycle pass, then check the task still waits.
                    time.sleep(HITL_SETTLE_SECONDS)
                    if self.task_state(dag_id, run_id, task_id) in WAITING_STATES:
                        return detail
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_STATES:
                raise AirflowRestError(f"{dag_id} run {run_id} ended {state} before {task_id} asked for a human answer")
            time.sleep(2)
        raise AirflowRestError(f"{task_id} of {dag_id} did not ask for an answer within {timeout:.0f} s")

    def answer_hitl(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        option: str,
        params_input: Mapping[str, Any] | None = None,
        map_index: int = -1,
    ) -> dict[str, Any]:
        body = {"chosen_options": [option], "params_input": dict(params_input or {})}
        return dict(
            self._call(
                "PATCH",
                f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/{map_index}/hitlDetails",
                json=body,
            )
        )

    def _xcom_path(self, dag_id: str, run_id: str, task_id: str, key: str) -> str:
        return f"/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}/taskInstances/{task_id}/xcomEntries/{quote(key)}"

    def get_xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """The value of one XCom entry, as stored (JSON values decoded)."""
        value = self._call("GET", self._xcom_path(dag_id, run_id, task_id, key))["value"]
        return json.loads(value) if isinstance(value, str) else value

    def set_xcom(self, dag_id: str, run_id: str, task_id: str, value: Any, key: str = "return_value") -> None:
        """Rewrite one XCom entry, as any user allowed to edit the DAG's task instances can."""
        self._call("PATCH", self._xcom_path(dag_id, run_id, task_id, key), json={"value": value, "map_index": -1})

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 900) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in TERMINAL_STATES:
                return state
            time.sleep(2)
        raise AirflowRestError(f"{dag_id} run {run_id} did not finish within {timeout:.0f} s")


@dataclass
class LocalAirflow:
    """api-server, scheduler and dag-processor (plus Celery workers when asked) as child processes.

    :param home: the AIRFLOW_HOME to use (its metadata database must be migrated).
    :param users: ``{name: (role, password)}`` for the simple auth manager.
    :param executor: ``LocalExecutor`` (SQLite) or ``CeleryExecutor``.
    :param celery_workers: how many ``airflow celery worker`` processes to start; worker ``i``
        is named ``charter-worker-<i>@<host>``, the ``hostname`` its task instances record.
    :param triggerer: also start ``airflow triggerer`` (deferred tasks).
    :param celery_concurrency: task slots of each Celery worker.
    :param pid_dir: when set, ``<process>.pid`` files and ``cluster.json`` are written there, so
        that another process (``make cluster-stop``) can stop the cluster: :func:`stop_pid_dir`.
    """

    home: Path
    users: dict[str, tuple[str, str]] = field(default_factory=lambda: {"admin": ("admin", "admin")})
    executor: str = "LocalExecutor"
    celery_workers: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    triggerer: bool = False
    celery_concurrency: int = 1
    pid_dir: Path | None = None

    @property
    def worker_names(self) -> list[str]:
        """Celery node names of the workers; also the ``hostname`` their task instances record."""
        host = socket.gethostname()
        return [f"charter-worker-{i + 1}@{host}" for i in range(self.celery_workers)]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        passwords = self.home / "simple_auth_manager_passwords.json"
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # Only the DAGs a caller unpauses (wait_for_dag) run: scheduled ones must not compete for the ledger.
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": ",".join(
                    f"{u}:{role}" for u, (role, _) in self.users.items()
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                # Task processes reach the Execution API on the api-server's own port (8793 is the worker log server).
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": env.get(
                    "AIRFLOW__API_AUTH__JWT_SECRET", "charter-local-" + str(self.port)
                ),
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = 180) -> LocalAirflow:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "simple_auth_manager_passwords.json").write_text(
            json.dumps({u: p for u, (_, p) in self.users.items()})
        )
        (self.home / "logs").mkdir(exist_ok=True)
        airflow = str(Path(sys.executable).parent / "airflow")
        commands = {
            "api-server": [airflow, "api-server", "--port", str(self.port)],
            "scheduler": [airflow, "scheduler"],
            "dag-processor": [airflow, "dag-processor"],
        }
        # All processes share this machine's log folder, which the api-server reads directly: the
        # workers' and triggerer's log servers are not needed, and would all want port 8793.
        if self.triggerer:
            commands["triggerer"] = [airflow, "triggerer", "--skip-serve-logs"]
        env = self.env()
        envs = {}
        for i, worker_name in enumerate(self.worker_names):
            commands[f"celery-worker-{i + 1}"] = [
                airflow,
                "celery",
                "worker",
                "--concurrency",
                str(self.celery_concurrency),
                "--celery-hostname",
                worker_name,
                "--skip-serve-logs",
            ]
            # Several workers share this host: each task instance records its worker's name instead.
            envs[f"celery-worker-{i + 1}"] = {
                **env,
                WORKER_NAME_VARIABLE: worker_name,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "charter_demo.local_airflow.worker_hostname",
            }
        for name, argv in commands.items():
            with (self.home / "logs" / f"{name}.log").open("ab") as log:
                self.processes[name] = subprocess.Popen(  # noqa: S603 - the project's own Airflow commands
                    argv, env=envs.get(name, env), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            self._write_pid(name, self.processes[name].pid)
        if self.pid_dir is not None:
            (self.pid_dir / "cluster.json").write_text(
                json.dumps(
                    {
                        "base_url": self.base_url,
                        "port": self.port,
                        "home": str(self.home),
                        "executor": self.executor,
                        "processes": {name: proc.pid for name, proc in self.processes.items()},
                    },
                    indent=2,
                )
            )
        self._wait_healthy(timeout)
        return self

    def _write_pid(self, name: str, pid: int) -> None:
        if self.pid_dir is None:
            return
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        (self.pid_dir / f"{name}.pid").write_text(f"{pid}\n")

    def _wait_healthy(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.processes.items():
                if proc.poll() is not None:
                    self.stop()
                    raise AirflowRestError(
                        f"airflow {name} exited with {proc.returncode}; see {self.home / 'logs' / (name + '.log')}"
                    )
            try:
                if httpx.get(f"{self.base_url}/api/v2/monitor/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        raise AirflowRestError(
            f"the api-server did not become healthy within {timeout:.0f} s; see {self.home / 'logs'}"
        )

    def client(self, username: str = "admin") -> AirflowRestClient:
        return AirflowRestClient(self.base_url, username, self.users[username][1])

    def stop(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.processes.clear()
        if self.pid_dir is not None:
            for pid_file in self.pid_dir.glob("*.pid"):
                pid_file.unlink(missing_ok=True)
            (self.pid_dir / "cluster.json").unlink(missing_ok=True)

    def __enter__(self) -> LocalAirflow:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _is_airflow_process(pid: int) -> bool:
    """True when ``pid`` is alive and runs airflow: a recycled pid is never signalled.

    Celery renames its main process (``[celeryd: charter-worker-1@host:MainProcess]``), hence both names.
    """
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"airflow" in cmdline or b"celeryd" in cmdline


def running_from_pid_dir(pid_dir: Path) -> dict[str, int]:
    """``{process name: pid}`` of the processes of ``pid_dir`` that are still running."""
    running = {}
    for pid_file in sorted(pid_dir.glob("*.pid")):
        try:
            pid = int(pid_file.read_text().strip())
        except ValueError:
            continue
        if _is_airflow_process(pid):
            running[pid_file.stem] = pid
    return running


def stop_pid_dir(pid_dir: Path, timeout: float = 30) -> list[str]:
    """Stop the processes a :class:`LocalAirflow` with ``pid_dir`` started, from another process.

    Each process leads its own process group (``start_new_session``), so its children (task
    processes, gunicorn/uvicorn workers) are stopped with it: SIGTERM, then SIGKILL after ``timeout``.
    :return: the names of the processes that were running.
    """
    running = running_from_pid_dir(pid_dir)
    for pid in running.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_is_airflow_process(pid) for pid in running.values()):
        time.sleep(0.5)
    for pid in running.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    for pid_file in pid_dir.glob("*.pid"):
        pid_file.unlink(missing_ok=True)
    (pid_dir / "cluster.json").unlink(missing_ok=True)
    return sorted(running)
