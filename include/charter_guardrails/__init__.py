"""Charter guardrails: the Métropole Aix-Marseille-Provence AI charter as data-pipeline checks.

This package never imports Airflow; the adapters live in ``charter_airflow``.
"""

from __future__ import annotations

__version__ = "0.1.0"
