"""Run real Airflow processes on this machine and drive them through the REST API.

Used by ``make run`` (SQLite, LocalExecutor), by the end-to-end tests of the human approval
and by ``make cluster`` (PostgreSQL, CeleryExecutor). :meth:`LocalAirflow.client` drives them through
:class:`charter_demo.airflow_rest.AirflowRestClient`, logged in as a named user.
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
from dataclasses import dataclass, field
from pathlib import Path

from charter_demo.airflow_rest import AirflowRestClient, AirflowRestError

__all__ = [
    "CHECKOUT_CONFIG_DIRS",
    "AirflowRestClient",
    "AirflowRestError",
    "LocalAirflow",
    "checkout_config_env",
    "free_port",
    "running_from_pid_dir",
    "stop_pid_dir",
    "worker_hostname",
]

#: The checkout's configuration folders, relative to its root. The installed package holds no policy, suite or
#: reference (``charter_guardrails.core.settings``): every process started from the checkout is given these.
CHECKOUT_CONFIG_DIRS: dict[str, str] = {
    "CHARTER_POLICIES_DIR": "include/policies",
    "CHARTER_EXPECTATIONS_DIR": "expectations",
    "CHARTER_REFERENCE_DIR": "include/reference",
}


def checkout_config_env(root: Path) -> dict[str, str]:
    """The configuration folders of a run from the checkout at ``root``: the caller's variables, else its own."""
    return {name: os.environ.get(name) or str(root / folder) for name, folder in CHECKOUT_CONFIG_DIRS.items()}


#: Set in the environment of each local Celery worker to its node name (see :func:`worker_hostname`).
WORKER_NAME_VARIABLE = "AIRFLOW_LOCAL_WORKER_NAME"


def worker_hostname() -> str:
    """``[core] hostname_callable`` of the local Celery workers: the worker's node name, else the FQDN."""
    return os.environ.get(WORKER_NAME_VARIABLE) or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
        """The processes' environment: this one's (the ``CHARTER_*`` folders included), then Airflow's settings."""
        env = dict(os.environ)
        passwords = self.home / "simple_auth_manager_passwords.json"
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__EXECUTOR": self.executor,
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                # Only the DAGs a caller unpauses (wait_for_dag) run: scheduled ones must not compete for the ledger.
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
                "CHARTER_INTEGRITY_MONITOR_PAUSED": "true",  # active at creation in a deployment (dags/)
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
