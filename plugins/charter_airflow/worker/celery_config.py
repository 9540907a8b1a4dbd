"""Celery settings for the project's workers: Airflow's defaults, plus the personal data analyser
loaded once per worker instead of once per task, and task processes reaped as soon as they exit.

Airflow 3 runs each task in a process forked from the Celery pool process (``supervise`` forks on
Linux), so whatever the worker has loaded before it forks its pool is shared with every task. The
French NER model and the recognizers take about 3.7 s of CPU to load: in a mapped scan over many
partitions that was as much as the scan of a 9,000-row partition. With this module the cost is
paid once, when the worker starts.

Select it with ``AIRFLOW__CELERY__CELERY_CONFIG_OPTIONS=charter_airflow.worker.celery_config.CELERY_CONFIG``
(``make cluster`` and ``docker-compose.yaml`` do); ``CHARTER_CELERY_PRELOAD=0`` turns the preload off.
The signal is ``worker_init`` (the main process, before the pool forks), not ``worker_process_init``,
whose handlers must finish within Celery's 4-second start-up limit.

The worker also installs :mod:`charter_airflow.worker.task_reaping` (``CHARTER_PROMPT_TASK_REAPING=0``
turns it off): without it the worker can sit idle up to 5 s after a task has finished.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG
from celery.signals import worker_init

CELERY_CONFIG: dict[str, Any] = dict(DEFAULT_CELERY_CONFIG)

log = logging.getLogger(__name__)


@worker_init.connect
def reap_tasks_promptly(**_: Any) -> None:
    """Install the prompt reaping of task processes, before the pool forks (see task_reaping.py)."""
    if os.environ.get("CHARTER_PROMPT_TASK_REAPING", "1") == "0":
        return
    from charter_airflow.worker.task_reaping import install

    if install():
        log.warning("charter: task processes are reaped as soon as they exit")


@worker_init.connect
def preload_analysers(**_: Any) -> None:
    """Load the NER pipeline and the pattern detector in the worker, before its pool forks."""
    if os.environ.get("CHARTER_CELERY_PRELOAD", "1") == "0":
        return
    started = time.perf_counter()
    try:
        from charter_guardrails.checks.privacy.analyzer import get_ner_pipeline
        from charter_guardrails.checks.privacy.detector import get_detector

        get_ner_pipeline()
        get_detector()
    except Exception:
        log.exception("charter: preloading the personal data analysers failed; each task will load them")
        return
    log.warning("charter: personal data analysers preloaded in %.1f s", time.perf_counter() - started)
