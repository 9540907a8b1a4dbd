"""Notice at once that a task process has exited, instead of up to ``min_heartbeat_interval`` later.

The Task SDK supervisor (``airflow.sdk.execution_time.supervisor``) watches its task process with
``select()`` on the process's sockets, and checks whether the process has exited each time
``select()`` returns. When the task process exits, the kernel closes its sockets a few milliseconds
before the process can be reaped (a multi-threaded process is reaped only once its last thread has
unmapped its memory). The supervisor wakes on the closed sockets, finds the process not reaped yet,
and then calls ``select()`` on an empty set of sockets, which sleeps for the whole wait: up to
``[workers] min_heartbeat_interval`` (5 s by default). The Celery worker is idle all that time,
while other tasks wait in the queue.

Measured on the 2-core machine with 8 mapped partitions (``make bench-scale``): about half of the
tasks were followed by such a 5 s pause, so the map phase on one worker took 34 s for 19 s of task
time, and the speed-up of a second worker varied from 1.3x to 2.1x between runs.

:func:`install` wraps ``WatchedSubprocess._service_subprocess``: when no socket is left to
``select()`` on and the process has not been reaped, it waits on the process itself, for at most
the same time ``select()`` would have slept, then lets Airflow's own code run with nothing left to
wait for. Nothing else changes: the same exit code is read by Airflow's own ``_check_subprocess_exit``
and logged by it, and the deadline of every caller (heartbeats, ``kill()`` escalation) is kept.

Airflow offers no hook for this, hence a wrapper. It is installed only in the project's Celery
workers (``charter_airflow.worker.celery_config``); ``CHARTER_PROMPT_TASK_REAPING=0`` turns it off. If a
later Airflow renames what it relies on, :func:`install` logs that and leaves Airflow unchanged.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any

log = logging.getLogger(__name__)

_MARK = "_charter_prompt_reaping"


def install() -> bool:
    """Wrap the supervisor's wait; return whether it is (now or already) installed."""
    try:
        from airflow.sdk.execution_time.supervisor import WatchedSubprocess
    except ImportError:  # pragma: no cover - Airflow 3 always has it
        log.warning("charter: airflow.sdk.execution_time.supervisor not found; task reaping left as is")
        return False
    original = WatchedSubprocess.__dict__.get("_service_subprocess")
    if original is None:
        log.warning("charter: WatchedSubprocess._service_subprocess not found in this Airflow; task reaping left as is")
        return False
    if getattr(original, _MARK, False):
        return True

    @functools.wraps(original)
    def _service_subprocess(self: Any, max_wait_time: float, *args: Any, **kwargs: Any) -> int | None:
        process = getattr(self, "_process", None)
        if process is not None and getattr(self, "_exit_code", 0) is None and not getattr(self, "_open_sockets", True):
            # Every socket of the task process is closed, so it is exiting: wait on the process
            # rather than sleep in a select() that has nothing left to watch.
            with contextlib.suppress(process.TimeoutExpired):
                process.wait(timeout=max(0.01, max_wait_time))
            max_wait_time = 0
        return original(self, max_wait_time, *args, **kwargs)

    setattr(_service_subprocess, _MARK, True)
    WatchedSubprocess._service_subprocess = _service_subprocess  # type: ignore[method-assign]
    return True
