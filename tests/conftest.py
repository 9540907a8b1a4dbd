"""Shared fixtures. Every test gets its own CHARTER_HOME; ledger tests run on SQLite and PostgreSQL.

The PostgreSQL server at 127.0.0.1:5432 is required (CI starts it): a ledger test that cannot
reach it fails, it is never skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from charter_demo.local_airflow import checkout_config_env

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("CHARTER_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")

# Tests never touch the Airflow metadata of `make run`: one fresh AIRFLOW_HOME per test session and,
# under pytest-xdist, per worker (workers inherit the controller's environment, so the variable that
# remembers the home is named after the worker). It is set before anything imports airflow (its
# configuration is read at import time). Guarded: a test module that imports ``tests.conftest`` by
# name must not make a second home.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_HOME_VAR = f"CHARTER_TEST_AIRFLOW_HOME_{_WORKER.upper()}" if _WORKER else "CHARTER_TEST_AIRFLOW_HOME"
_AIRFLOW_HOME = Path(os.environ.get(_HOME_VAR) or tempfile.mkdtemp(prefix=f"charter-test-airflow-{_WORKER or 'main'}-"))
os.environ[_HOME_VAR] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("TLDEXTRACT_CACHE", str(ROOT / ".charter" / "tldextract"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The installed package holds no policy, suite or reference: the checkout's folders are the configuration of the
# tests (the Makefile exports the same; set here too so that a direct `pytest` works).
# A test that starts a process with a cleaned environment passes them on: ``env.update(CHECKOUT_CONFIG)``.
CHECKOUT_CONFIG = checkout_config_env(ROOT)
os.environ.update(CHECKOUT_CONFIG)

pytest_plugins = ["pytester"]

_backends: Counter[str] = Counter()


@pytest.fixture
def charter_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh CHARTER_HOME with local keys; the ledger URL is left to the ``ledger`` fixture."""
    from charter_guardrails.core.keys import init_keys
    from charter_guardrails.ledger import db

    home = tmp_path / "charter"
    monkeypatch.setenv("CHARTER_HOME", str(home))
    for name in (
        "CHARTER_LEDGER_URL",
        "CHARTER_SIGNING_KEY",
        "CHARTER_PUBLIC_KEY",
        "CHARTER_PSEUDONYMISATION_KEY",
        "CHARTER_DATA_DIR",
        "CHARTER_REPORTS_DIR",
        "CHARTER_KEYS_DIR",
        "CHARTER_AUDIT_ANCHOR",
        "CHARTER_UI_BASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    init_keys()
    db.reset_caches()
    yield home
    db.reset_caches()


def _create_pg_database() -> str:
    import psycopg

    name = f"charter_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_pg_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated, empty ledger on SQLite (in CHARTER_HOME) or on its own PostgreSQL database."""
    from charter_guardrails.ledger import db

    _backends[request.param] += 1
    if request.param == "sqlite":
        url = f"sqlite:///{charter_home / 'ledger.db'}"
        monkeypatch.setenv("CHARTER_LEDGER_URL", url)
        db.migrate(url)
        yield url
        db.reset_caches()
        return
    name = _create_pg_database()
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    try:
        db.migrate(url)
        yield url
    finally:
        db.reset_caches()
        _drop_pg_database(name)


@pytest.fixture
def s3_bucket(monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh versioned bucket on this process's loopback S3-compatible server (``tests/object_store.py``), and
    the Airflow connection ``charter_s3`` to it in the environment."""
    from tests.object_store import CONN_ID, Bucket, connection_json

    bucket = Bucket.create()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", connection_json(bucket.endpoint))
    return bucket


@pytest.fixture
def policies() -> dict[str, object]:
    from charter_guardrails.core.policy import UseCasePolicy, policy_files

    return {p.id: p for p in (UseCasePolicy.from_file(f) for f in policy_files())}


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[Path]:
    """The session's Airflow metadata database (SQLite), migrated once; for ``dag.test()``."""
    airflow = Path(sys.executable).parent / "airflow"
    proc = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _AIRFLOW_HOME


#: The test tiers; each is a folder of ``tests/`` and a marker of the same name.
TIERS = ("unit", "dags", "e2e", "ui", "deploy", "hardening")


def tier_errors(items: list[pytest.Item], tests_dir: Path) -> list[str]:
    """Give every test its folder's tier marker; report tests outside a tier folder or marked with another tier."""
    errors = []
    for item in items:
        parts = item.path.relative_to(tests_dir).parts
        folder = parts[0] if len(parts) > 1 else None
        if folder not in TIERS:
            errors.append(
                f"{item.nodeid}: tests live in a tier folder ({', '.join(TIERS)}), not in {folder or 'tests/'}"
            )
            continue
        others = sorted({m.name for m in item.iter_markers() if m.name in TIERS} - {folder})
        if others:
            errors.append(f"{item.nodeid}: sits in tests/{folder} but is marked {', '.join(others)}; move it")
        item.add_marker(getattr(pytest.mark, folder))
    return errors


#: The order test files are handed to the xdist workers (``make test`` passes ``--no-loadscope-reorder``, which
#: keeps this order): the tiers whose files run real Airflow processes for minutes first, so that the many short
#: unit files fill the gaps at the end instead of one long file running alone on one core while the other idles.
SCHEDULE_ORDER = ("e2e", "hardening", "ui", "deploy", "dags", "unit")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    errors = tier_errors(items, ROOT / "tests")
    if errors:
        raise pytest.UsageError("test tiers:\n" + "\n".join(errors))
    tests_dir = ROOT / "tests"

    def rank(item: pytest.Item) -> int:
        folder = item.path.relative_to(tests_dir).parts[0]
        return SCHEDULE_ORDER.index(folder) if folder in SCHEDULE_ORDER else len(SCHEDULE_ORDER)

    items.sort(key=rank)  # stable: the tests of a file keep their order


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # a pytest-xdist worker: its counts go to the controller's summary
        workeroutput["ledger_backends"] = dict(_backends)
    if os.environ.get("CHARTER_TEST_KEEP_AIRFLOW_HOME"):
        print(f"\nAirflow home kept for inspection: {_AIRFLOW_HOME}")
        return
    shutil.rmtree(_AIRFLOW_HOME, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist: add a finished worker's ledger backend counts to the controller's."""
    _backends.update(getattr(node, "workeroutput", {}).get("ledger_backends", {}))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _backends:
        parts = ", ".join(f"{count} on {backend}" for backend, count in sorted(_backends.items()))
        terminalreporter.write_line(f"ledger tests run: {parts}")
