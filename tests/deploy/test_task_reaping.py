"""The Celery workers' prompt reaping of task processes (charter_airflow/worker/task_reaping.py).

A real Task SDK ``WatchedSubprocess`` forks a child that closes every socket to its supervisor and
then lives on for a moment before it exits, as a task process does while the kernel tears it down.
Airflow's own loop then sleeps in an empty ``select()`` for the whole wait; with the wrapper it
returns as soon as the child has exited, with the same exit code.
"""

from __future__ import annotations

import os
import time
from typing import Any

import attrs
import pytest

pytestmark = pytest.mark.timeout(120)

LINGER = 0.3  # how long the child lives on after closing its sockets
WAIT = 3.0  # the wait the supervisor asks for (min_heartbeat_interval in Airflow's task loop)


def _close_sockets_then_exit() -> None:
    os.closerange(0, 4096)  # stdin/stdout/stderr, the request and the log channels
    time.sleep(LINGER)
    os._exit(7)


def _watched_class() -> type:
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    @attrs.define(kw_only=True)
    class Watched(WatchedSubprocess):
        def _handle_request(self, msg: Any, log: Any, req_id: int) -> None:  # no request is sent
            raise AssertionError(msg)

    return Watched


def _supervise_until_exit(cls: type) -> tuple[int, float]:
    """Airflow's task-loop condition: serve the child until it has exited and closed every socket."""
    import structlog

    proc = cls.start(target=_close_sockets_then_exit, logger=structlog.get_logger("test"), id=None)
    started = time.monotonic()
    while proc._exit_code is None or proc._open_sockets:
        proc._service_subprocess(max_wait_time=WAIT)
        assert time.monotonic() - started < 30, "the child was never reaped"
    return proc._exit_code, time.monotonic() - started


@pytest.fixture
def original_service() -> Any:
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    saved = WatchedSubprocess.__dict__["_service_subprocess"]
    yield saved
    WatchedSubprocess._service_subprocess = saved


def test_without_the_wrapper_the_supervisor_sleeps_the_whole_wait(original_service: Any) -> None:
    from airflow.sdk.execution_time.supervisor import WatchedSubprocess

    WatchedSubprocess._service_subprocess = getattr(original_service, "__wrapped__", original_service)
    code, elapsed = _supervise_until_exit(_watched_class())
    assert code == 7
    assert elapsed >= WAIT, (
        f"reaped after {elapsed:.2f} s: Airflow no longer sleeps on an empty select, the wrapper may be obsolete"
    )


def test_the_wrapper_reaps_the_child_as_soon_as_it_exits(original_service: Any) -> None:
    from charter_airflow.worker.task_reaping import install

    assert install()
    assert install(), "a second install must be a no-op"
    code, elapsed = _supervise_until_exit(_watched_class())
    assert code == 7
    assert LINGER <= elapsed < LINGER + 1.0, f"reaped after {elapsed:.2f} s"


def test_the_wrapper_keeps_the_deadline_when_the_child_does_not_exit(original_service: Any) -> None:
    """A child that closed its sockets but goes on running: each call still returns after max_wait_time."""
    import signal

    import structlog
    from charter_airflow.worker.task_reaping import install

    def close_then_hang() -> None:
        os.closerange(0, 4096)
        time.sleep(60)
        os._exit(0)

    install()
    proc = _watched_class().start(target=close_then_hang, logger=structlog.get_logger("test"), id=None)
    try:
        deadline = time.monotonic() + 10
        while proc._open_sockets and time.monotonic() < deadline:
            proc._service_subprocess(max_wait_time=0.5)
        assert not proc._open_sockets
        started = time.monotonic()
        assert proc._service_subprocess(max_wait_time=0.5) is None
        assert 0.5 <= time.monotonic() - started < 1.5
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc._process.wait(timeout=10)
