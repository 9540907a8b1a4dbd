"""The ``charter_retention`` DAG: once a day, delete what is past its retention (storage limitation).

The task calls :func:`charter_guardrails.retention.apply`: each deletion is recorded in the ledger and the audit
chain before its file is unlinked, a legal hold or an incident not yet resolved keeps an item, and a run that
was interrupted is finished by the next without a second event. The DAG is active from its creation: a
retention that waits for someone to unpause it deletes nothing. ``dags/charter_retention.py`` and the file the
package ships for an existing Airflow (``charter_airflow/charter_retention.py``) both call
:func:`build_retention_dag`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import DAG, task

from charter_airflow.dag_factory import DEFAULT_ARGS
from charter_airflow.runtime import configure_from_airflow

log = logging.getLogger(__name__)

DAG_ID = "charter_retention"


@task(task_id="apply_retention")
def apply_retention() -> dict[str, Any]:
    """Delete every file past its retention that nothing keeps; fail (and retry) when one could not be deleted."""
    from charter_guardrails.retention import apply

    configure_from_airflow()
    report = apply(datetime.now(UTC), actor="airflow:charter_retention")
    summary = report.to_json_dict()
    log.info(
        "retention: %s deleted (%s bytes), %s interrupted deletions finished, %s kept under a hold or an incident",
        report.deleted,
        report.deleted_bytes,
        report.finished,
        summary["kept"],
    )
    if report.failed:
        # Recorded but still on disk: the retry (or tomorrow's run) removes them without a second event.
        raise RuntimeError(f"retention could not delete {len(report.failed)} recorded items: {report.failed[:5]}")
    return summary


def build_retention_dag() -> DAG:
    """The daily retention DAG, one task."""
    with DAG(
        dag_id=DAG_ID,
        description="Supprime chaque jour les fichiers dont la durée de conservation est échue (hors gel juridique)",
        schedule="@daily",
        is_paused_upon_creation=False,
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        default_args=DEFAULT_ARGS,
        tags=["charter", "personal-data", "governance"],
        doc_md=__doc__,
    ) as dag:
        apply_retention()
    return dag


__all__ = ["DAG_ID", "apply_retention", "build_retention_dag"]
