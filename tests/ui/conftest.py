"""Fixtures of the UI tier: a populated ledger in the test's CHARTER_HOME, a real ``airflow api-server``
with the Charte IA plugin and the simple auth manager (users ``admin`` and ``viewer``), and headless
Debian Chromium driven by Playwright (installed by ``make ui-deps``, never downloaded by Playwright).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from charte_ledger import LedgerRows, populate_ledger
from charte_server import ApiServer, api_server

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "ui"
CHROMIUM = os.environ.get("CHARTER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def ui_ledger(charter_home: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, LedgerRows]:
    """The test's CHARTER_HOME ledger (SQLite), migrated and filled through the library functions."""
    from charter_guardrails.ledger import db

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    return url, populate_ledger(url, charter_home / "reports")


@pytest.fixture
def ui_server(ui_ledger: tuple[str, LedgerRows], charter_home: Path, airflow_db: Path) -> Iterator[ApiServer]:
    """``airflow api-server`` on a free loopback port, reading the test's ledger; stopped after the test."""
    url, _ = ui_ledger
    with api_server(
        airflow_db, {"CHARTER_HOME": str(charter_home), "CHARTER_LEDGER_URL": url}, migrate=False
    ) as server:
        yield server


@pytest.fixture
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless; the test fails (never skips) when it is missing: run `make ui-deps`."""
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM) or Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: run `make ui-deps` (apt-get install chromium)"
    )
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def view(ui_ledger: tuple[str, LedgerRows], airflow_db: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The view on the filled ledger; ``as_role(role)`` makes the next requests come from a user of that role.
    The auth manager's scope of each request reads the DAGs of Airflow's (migrated) metadata database."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from charter_airflow.ui import security
    from charter_airflow.ui.app import create_app
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW__API__SECRET_KEY", "charte-ia-tests-secret-key")
    monkeypatch.setattr(security, "_auth_manager", SimpleAuthManager)
    current = {"user": SimpleAuthManagerUser(username="admin", role="admin")}
    app = create_app()
    app.dependency_overrides[security.authenticated_user] = lambda: current["user"]

    def as_role(role: str) -> None:
        current["user"] = SimpleAuthManagerUser(username=role, role=role)

    return SimpleNamespace(client=TestClient(app, raise_server_exceptions=False), as_role=as_role)
