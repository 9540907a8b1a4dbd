"""Where things live: one place that reads the environment.

``CHARTER_HOME`` holds the local state of an install (ledger, keys, sample data, reports);
it defaults to ``./.charter`` under the current directory. The Makefile sets it to the
project's own ``.charter`` folder so that the CLI, the tests and Airflow agree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[3]

#: The folders of ``CHARTER_HOME`` that one process writes and another reads: a task's working copy (``work``)
#: is read by the next task, maybe on another worker; the view reads ``models`` and ``reports``; a refresh
#: reads the training ``profiles`` and the published ``models``; every process signs with ``keys`` and moves the
#: ``audit`` anchor. A deployment puts each on storage that every Airflow process mounts: the compose test
#: (tests/deploy/test_compose.py) checks docker-compose.yaml against this list, and that the code names no
#: other folder of ``CHARTER_HOME`` but the caches of :data:`LOCAL_STATE_DIRS`.
SHARED_STATE_DIRS: tuple[str, ...] = ("data", "reports", "keys", "audit", "models", "profiles", "work")
#: Folders of ``CHARTER_HOME`` private to a process: the tldextract cache, rebuilt from its bundled snapshot.
LOCAL_STATE_DIRS: tuple[str, ...] = ("tldextract",)


@dataclass(frozen=True)
class Settings:
    home: Path
    ledger_url: str
    data_dir: Path
    reports_dir: Path
    keys_dir: Path
    policies_dir: Path
    expectations_dir: Path
    reference_dir: Path
    #: Database holding ``format: sql`` datasets (not the ledger).
    data_url: str
    #: The address people open the Airflow UI at; alerts link to the governance view under it.
    ui_base_url: str = "http://localhost:8080"
    #: Published model versions (``$CHARTER_HOME/models``): ``<use case>/v<n>.joblib`` and the card folder
    #: ``<use case>/v<n>/``.
    models_dir: Path = Path(".charter/models")

    @property
    def audit_anchor(self) -> Path:
        return Path(os.environ.get("CHARTER_AUDIT_ANCHOR", self.home / "audit" / "head.json"))


def get_settings() -> Settings:
    """Read the settings from the environment each time (tests change it)."""
    home = Path(os.environ.get("CHARTER_HOME", Path.cwd() / ".charter")).resolve()
    ledger_url = os.environ.get("CHARTER_LEDGER_URL") or f"sqlite:///{home / 'ledger.db'}"
    return Settings(
        home=home,
        ledger_url=ledger_url,
        data_dir=Path(os.environ.get("CHARTER_DATA_DIR", home / "data")).resolve(),
        reports_dir=Path(os.environ.get("CHARTER_REPORTS_DIR", home / "reports")).resolve(),
        keys_dir=Path(os.environ.get("CHARTER_KEYS_DIR", home / "keys")).resolve(),
        policies_dir=Path(os.environ.get("CHARTER_POLICIES_DIR", PROJECT_ROOT / "include" / "policies")).resolve(),
        expectations_dir=Path(os.environ.get("CHARTER_EXPECTATIONS_DIR", PROJECT_ROOT / "expectations")).resolve(),
        reference_dir=Path(os.environ.get("CHARTER_REFERENCE_DIR", PROJECT_ROOT / "include" / "reference")).resolve(),
        data_url=os.environ.get("CHARTER_DATA_URL") or f"sqlite:///{home / 'data' / 'warehouse.db'}",
        ui_base_url=(os.environ.get("CHARTER_UI_BASE_URL") or "http://localhost:8080").rstrip("/"),
        models_dir=home / "models",
    )
