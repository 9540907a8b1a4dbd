"""The distribution as an Airflow provider: its name, its plugin and its ``[charter]`` configuration section.

Airflow reads :func:`get_provider_info` through the ``apache_airflow_provider`` entry point of pyproject.toml:
``airflow providers list`` shows the package, ``airflow config list`` documents the ``[charter]`` options, and
``airflow.cfg`` may set them. The library reads the same options from ``CHARTER_*`` variables first
(:mod:`charter_guardrails.core.settings`). No option has a default here: a default would shadow the library's,
which are computed from ``home``. The project defines no hook, so no connection type is declared.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

PACKAGE_NAME = "charter-guardrails"
VERSION_ADDED = "0.1.0"


def _version() -> str:
    try:
        return metadata.version(PACKAGE_NAME)
    except metadata.PackageNotFoundError:  # imported from a checkout that was never installed
        return VERSION_ADDED


def _option(description: str, example: str, *, sensitive: bool = False) -> dict[str, Any]:
    option: dict[str, Any] = {
        "description": description,
        "version_added": VERSION_ADDED,
        "type": "string",
        "example": example,
        "default": None,
    }
    if sensitive:
        option["sensitive"] = True
    return option


CHARTER_OPTIONS: dict[str, dict[str, Any]] = {
    "home": _option(
        "The local state of the install: ledger (SQLite by default), keys, sample data, reports, published models. "
        "Environment: ``CHARTER_HOME``. Default: ``.charter`` under the process's working directory.\n",
        "/opt/charter/state",
    ),
    "policies_dir": _option(
        "The folder of the use cases' policy files (``<use case>.yaml``): one set of DAGs per valid policy. "
        "Environment: ``CHARTER_POLICIES_DIR``. Default: ``{home}/policies``.\n",
        "/opt/charter/config/policies",
    ),
    "expectations_dir": _option(
        "The folder of the Great Expectations suites the policies name. "
        "Environment: ``CHARTER_EXPECTATIONS_DIR``. Default: ``{home}/expectations``.\n",
        "/opt/charter/config/expectations",
    ),
    "reference_dir": _option(
        "The folder of the reference distributions of the representativeness check. "
        "Environment: ``CHARTER_REFERENCE_DIR``. Default: ``{home}/reference``.\n",
        "/opt/charter/config/reference",
    ),
    "data_dir": _option(
        "The folder of the delivered datasets. Environment: ``CHARTER_DATA_DIR``. Default: ``{home}/data``.\n",
        "/opt/charter/state/data",
    ),
    "reports_dir": _option(
        "The folder of the reports (privacy reports, Data Docs, the committee's document). "
        "Environment: ``CHARTER_REPORTS_DIR``. Default: ``{home}/reports``.\n",
        "/opt/charter/state/reports",
    ),
    "keys_dir": _option(
        "The folder of the local signing and pseudonymisation keys (``charter keys init``). "
        "Environment: ``CHARTER_KEYS_DIR``. Default: ``{home}/keys``.\n",
        "/opt/charter/state/keys",
    ),
    "ledger_url": _option(
        "SQLAlchemy URL of the charter ledger (SQLite or PostgreSQL). "
        "Environment: ``CHARTER_LEDGER_URL``. Default: ``sqlite:///{home}/ledger.db``.\n",
        "postgresql://charter@postgres/charter",
        sensitive=True,
    ),
    "data_url": _option(
        "SQLAlchemy URL of the database holding the ``format: sql`` datasets (not the ledger). "
        "Environment: ``CHARTER_DATA_URL``. Default: ``sqlite:///{home}/data/warehouse.db``.\n",
        "postgresql://reader@warehouse/data",
        sensitive=True,
    ),
    "ui_base_url": _option(
        "The address people open the Airflow UI at; alerts link to the governance view under it. "
        "Environment: ``CHARTER_UI_BASE_URL``. Default: ``http://localhost:8080``.\n",
        "https://airflow.example.org",
    ),
}


def get_provider_info() -> dict[str, Any]:
    """The provider's description in the format of Airflow's ``provider_info.schema.json``."""
    return {
        "package-name": PACKAGE_NAME,
        "name": "Charte IA guardrails",
        "description": "The Métropole Aix-Marseille-Provence AI charter as guardrails for Airflow pipelines: "
        "the use cases' DAGs built from their policies, and the governance view.\n",
        "versions": [_version()],
        "plugins": [
            {"name": "charter_governance", "plugin-class": "charter_airflow.plugin.CharterGovernancePlugin"},
        ],
        "config": {
            "charter": {
                "description": "Where the charter guardrails find their configuration and keep their state. "
                "Each option may also be set by its ``CHARTER_*`` environment variable, which wins.\n",
                "options": CHARTER_OPTIONS,
            }
        },
    }
