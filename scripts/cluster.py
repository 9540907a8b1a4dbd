"""`make cluster`: the compose topology as local processes, with the CeleryExecutor.

    python scripts/cluster.py start [--workers 2]   # databases, migrations, keys, data; then the processes
    python scripts/cluster.py status
    python scripts/cluster.py stop

PostgreSQL (``--pg``, default ``postgresql://postgres@127.0.0.1:5432``) holds the Airflow metadata
(database ``--metadata-db``, default ``charter_airflow``) and the ledger (``--ledger-db``, default
``charter_ledger``); both are created when missing. Redis (``--redis``) is the Celery broker and the
task results go to PostgreSQL (``db+postgresql``). The processes are the scheduler, the
dag-processor, the triggerer, the api-server and ``--workers`` Celery workers named
``charter-worker-<i>@<host>``. They keep running after ``start`` returns: their pid files are in
``--state-dir`` (default ``.charter/cluster``), which ``stop`` and ``status`` read.

Tasks go to a Celery queue of this cluster only (``charter-<port>``), so that two clusters on
one Redis never run each other's tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from charter_demo.local_airflow import (  # noqa: E402
    LocalAirflow,
    checkout_config_env,
    free_port,
    running_from_pid_dir,
    stop_pid_dir,
)

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
#: ``karim.haddad`` is an approver of the sample policies: the admin triggers a refresh, he answers it (four eyes).
USERS = {"admin": ("admin", "admin"), "reviewer": ("op", "reviewer"), "karim.haddad": ("user", "karim")}


def create_database(pg: str, name: str) -> bool:
    """Create database ``name`` unless it exists; True when it was created."""
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True, connect_timeout=5) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        conn.execute(f'CREATE DATABASE "{name}"')
        return True


def drop_database(pg: str, name: str) -> None:
    import psycopg

    with psycopg.connect(f"{pg}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cluster_env(args: argparse.Namespace, port: int) -> dict[str, str]:
    """What every process of the cluster (and the migrations) sees."""
    host = args.pg.split("://", 1)[1]
    charter_home = Path(args.charter_home).resolve()
    return {
        **checkout_config_env(ROOT),
        "CHARTER_HOME": str(charter_home),
        "CHARTER_LEDGER_URL": f"postgresql://{host}/{args.ledger_db}",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{host}/{args.metadata_db}",
        "AIRFLOW__CELERY__BROKER_URL": args.redis,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{host}/{args.metadata_db}",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": f"charter-{port}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "32",
        "AIRFLOW__CORE__PARALLELISM": "32",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        # Airflow's Celery defaults, plus the NER model loaded once per worker
        # (see charter_airflow/worker/celery_config.py).
        "AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS": "charter_airflow.worker.celery_config.CELERY_CONFIG",
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "TLDEXTRACT_CACHE": str(charter_home / "tldextract"),
        "HF_HUB_OFFLINE": "1",
    }


def _run(argv: list[str], env: dict[str, str], what: str) -> None:
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{what} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def start(args: argparse.Namespace) -> int:
    state = Path(args.state_dir).resolve()
    if running_from_pid_dir(state):
        print(f"a cluster is already running from {state}; `make cluster-stop` first", file=sys.stderr)
        return 1
    state.mkdir(parents=True, exist_ok=True)
    port = args.port or free_port()
    bin_dir = Path(sys.executable).parent
    for name in (args.metadata_db, args.ledger_db):
        print(f"database {name}: {'created' if create_database(args.pg, name) else 'exists'}")
    airflow = LocalAirflow(
        home=state / "airflow",
        users=dict(USERS),
        executor="CeleryExecutor",
        celery_workers=args.workers,
        celery_concurrency=args.concurrency,
        triggerer=True,
        port=port,
        pid_dir=state,
    )
    airflow.extra_env = cluster_env(args, port)
    env = airflow.env()
    airflow.home.mkdir(parents=True, exist_ok=True)
    print("airflow db migrate (PostgreSQL)")
    _run([str(bin_dir / "airflow"), "db", "migrate"], env, "airflow db migrate")
    generate = ["data", "generate"] + (["--rows", str(args.data_rows)] if args.data_rows else [])
    for argv in (["ledger", "migrate"], ["keys", "init"], generate):
        print("charter " + " ".join(argv))
        _run([str(bin_dir / "charter"), *argv], env, "charter " + " ".join(argv))
    started = time.monotonic()
    airflow.start(timeout=args.timeout)
    # The processes outlive this script: drop the handles without waiting for them.
    airflow.processes.clear()
    info = json.loads((state / "cluster.json").read_text())
    info.update(
        {
            "users": {u: p for u, (_, p) in USERS.items()},
            "metadata_db": args.metadata_db,
            "ledger_db": args.ledger_db,
            "queue": env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"],
            "workers": args.workers,
            "charter_home": env["CHARTER_HOME"],
            "ledger_url": env["CHARTER_LEDGER_URL"],
        }
    )
    (state / "cluster.json").write_text(json.dumps(info, indent=2))
    print(
        f"cluster up in {time.monotonic() - started:.0f} s: {info['base_url']} (admin/admin), "
        f"{args.workers} Celery worker(s), logs in {airflow.home / 'logs'}; stop with `make cluster-stop`"
    )
    return 0


def stop(args: argparse.Namespace) -> int:
    stopped = stop_pid_dir(Path(args.state_dir).resolve())
    print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))
    return 0


def status(args: argparse.Namespace) -> int:
    import httpx

    state = Path(args.state_dir).resolve()
    running = running_from_pid_dir(state)
    for name, pid in running.items():
        print(f"{name:16} pid {pid}")
    info_file = state / "cluster.json"
    if not running or not info_file.exists():
        print("not running")
        return 1
    url = json.loads(info_file.read_text())["base_url"]
    try:
        health = httpx.get(f"{url}/api/v2/monitor/health", timeout=5).json()
    except httpx.HTTPError as exc:
        print(f"{url}: not answering ({exc.__class__.__name__})")
        return 1
    print(f"{url}: " + ", ".join(f"{k} {v.get('status')}" for k, v in health.items() if isinstance(v, dict)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument(
        "--state-dir", default=str(ROOT / ".charter" / "cluster"), help="pid files, cluster.json, AIRFLOW_HOME"
    )
    parser.add_argument("--charter-home", default=os.environ.get("CHARTER_HOME", str(ROOT / ".charter")))
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL, without a database")
    parser.add_argument("--metadata-db", default="charter_airflow")
    parser.add_argument("--ledger-db", default="charter_ledger")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=1, help="task slots per worker")
    parser.add_argument("--port", type=int, default=0, help="api-server port (default: a free one)")
    parser.add_argument("--timeout", type=float, default=240)
    parser.add_argument(
        "--data-rows", type=int, default=0, help="rows of the generated training sample (default: the CLI's)"
    )
    args = parser.parse_args(argv)
    return {"start": start, "stop": stop, "status": status}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
