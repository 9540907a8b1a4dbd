"""End-to-end fixtures: a CHARTER_HOME with keys, a migrated ledger, the sample data, and helpers
to register deliveries and read the ledger after a DAG run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def e2e_home(charter_home: Path, monkeypatch: pytest.MonkeyPatch, airflow_db: Path) -> Iterator[Path]:
    """SQLite ledger, keys and sample data in a fresh CHARTER_HOME (the sizes of `make run`, so that the clean
    sample passes every guardrail)."""
    from charter_demo.sample_data import generate
    from charter_guardrails.core.policy import UseCasePolicy, policy_files
    from charter_guardrails.core.settings import get_settings
    from charter_guardrails.ledger import db

    url = f"sqlite:///{charter_home / 'ledger.db'}"
    monkeypatch.setenv("CHARTER_LEDGER_URL", url)
    db.migrate(url)
    policies = {p.id: p for p in (UseCasePolicy.from_file(f) for f in policy_files())}
    generate(get_settings().data_dir, policies, rows=4000)
    return charter_home
