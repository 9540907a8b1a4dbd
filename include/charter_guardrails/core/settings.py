"""Where things live: one place that reads the configuration.

Each option is read, in order, from:

1. the ``CHARTER_<OPTION>`` environment variable (``CHARTER_HOME``, ``CHARTER_POLICIES_DIR``, ...);
2. Airflow's ``[charter]`` configuration section: the ``AIRFLOW__CHARTER__<OPTION>`` environment variable, then
   every source registered with :func:`register_config_source` (the Airflow adapter registers ``airflow.cfg``:
   the library never imports Airflow);
3. a default: the state folders under ``CHARTER_HOME``, and the configuration folders too
   (``$CHARTER_HOME/policies``, ``$CHARTER_HOME/expectations``, ``$CHARTER_HOME/reference``).

``CHARTER_HOME`` holds the local state of an install (ledger, keys, sample data, reports); it defaults to
``./.charter`` under the current directory. The policies, suites and references are configuration, not part of
the installed package: the checkout's Makefile and test configuration point ``CHARTER_POLICIES_DIR``,
``CHARTER_EXPECTATIONS_DIR`` and ``CHARTER_REFERENCE_DIR`` at its own folders; a deployment sets them, or
``[charter] policies_dir`` etc., to its configuration folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

#: The options of the ``[charter]`` configuration section, each with the ``CHARTER_*`` variable that sets it first.
OPTIONS: dict[str, str] = {
    "home": "CHARTER_HOME",
    "policies_dir": "CHARTER_POLICIES_DIR",
    "expectations_dir": "CHARTER_EXPECTATIONS_DIR",
    "reference_dir": "CHARTER_REFERENCE_DIR",
    "data_dir": "CHARTER_DATA_DIR",
    "reports_dir": "CHARTER_REPORTS_DIR",
    "keys_dir": "CHARTER_KEYS_DIR",
    "ledger_url": "CHARTER_LEDGER_URL",
    "data_url": "CHARTER_DATA_URL",
    "ui_base_url": "CHARTER_UI_BASE_URL",
}
#: The configuration folders and their default name under ``CHARTER_HOME``. They are read, never written: not
#: state folders (:data:`SHARED_STATE_DIRS`); a deployment sets them to its configuration folder.
CONFIG_DIRS: dict[str, str] = {
    "policies_dir": "policies",
    "expectations_dir": "expectations",
    "reference_dir": "reference",
}
#: The Airflow configuration section of the options; ``AIRFLOW__CHARTER__<OPTION>`` in the environment.
CONFIG_SECTION = "charter"

#: A configuration lookup: the value of an option of :data:`CONFIG_SECTION`, or None when it is not set.
ConfigSource = Callable[[str], str | None]
_config_sources: list[ConfigSource] = []

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


def register_config_source(source: ConfigSource) -> None:
    """Also read the ``[charter]`` options from ``source`` (after the environment); registering twice is a no-op.

    The Airflow adapter registers ``airflow.cfg`` here, so that the library reads it without importing Airflow.
    """
    if source not in _config_sources:
        _config_sources.append(source)


def configured(option: str) -> str | None:
    """The configured value of ``option`` (one of :data:`OPTIONS`), or None when no source sets it.

    ``CHARTER_<OPTION>`` first, then ``AIRFLOW__CHARTER__<OPTION>``, then the registered sources; an empty value
    counts as unset.
    """
    if option not in OPTIONS:
        raise ValueError(f"unknown [charter] option {option!r}; the options are {', '.join(OPTIONS)}")
    for name in (OPTIONS[option], f"AIRFLOW__{CONFIG_SECTION.upper()}__{option.upper()}"):
        value = os.environ.get(name)
        if value:
            return value
    for source in _config_sources:
        value = source(option)
        if value:
            return value
    return None


def _folder(option: str, default: Path) -> Path:
    return Path(configured(option) or default).resolve()


def get_settings() -> Settings:
    """Read the settings from the configuration each time (tests change it)."""
    home = _folder("home", Path.cwd() / ".charter")
    return Settings(
        home=home,
        ledger_url=configured("ledger_url") or f"sqlite:///{home / 'ledger.db'}",
        data_dir=_folder("data_dir", home / "data"),
        reports_dir=_folder("reports_dir", home / "reports"),
        keys_dir=_folder("keys_dir", home / "keys"),
        policies_dir=_folder("policies_dir", home / CONFIG_DIRS["policies_dir"]),
        expectations_dir=_folder("expectations_dir", home / CONFIG_DIRS["expectations_dir"]),
        reference_dir=_folder("reference_dir", home / CONFIG_DIRS["reference_dir"]),
        data_url=configured("data_url") or f"sqlite:///{home / 'data' / 'warehouse.db'}",
        ui_base_url=(configured("ui_base_url") or "http://localhost:8080").rstrip("/"),
        models_dir=home / "models",
    )
