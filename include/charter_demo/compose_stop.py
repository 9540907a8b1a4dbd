"""Stopping a project's processes the way ``docker compose down`` stops its containers.

Compose stops a service only once every service that depends on it has stopped: the Celery workers stop
before the api-server their task processes report to, so a task that is running at shutdown can still
record its state. Services with no running dependant are stopped together (SIGTERM), each wave is given
the grace period, and whatever outlives it is killed with its process group (task processes included).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from typing import Protocol


class Stoppable(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def service_name(self) -> str: ...
    @property
    def depends_on(self) -> Sequence[str]: ...
    @property
    def popen(self) -> subprocess.Popen[bytes]: ...


def waves(running: Sequence[Stoppable]) -> list[list[Stoppable]]:
    """The stop order: first the processes no running service depends on, then those they depended on, and so on."""
    left = list(running)
    order: list[list[Stoppable]] = []
    while left:
        needed = {dep for s in left for dep in s.depends_on}
        wave = [s for s in left if s.service_name not in needed] or left  # a cycle: stop the rest together
        order.append(wave)
        left = [s for s in left if s not in wave]
    return order


def stop(running: Sequence[Stoppable], *, grace: float = 30.0) -> list[str]:
    """SIGTERM each wave, SIGKILL what outlives ``grace`` seconds; the processes that ignored SIGTERM, by name."""
    errors: list[str] = []
    for wave in waves(running):
        for item in wave:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(item.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for item in wave:
            try:
                item.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                errors.append(f"{item.name} ignored SIGTERM for {grace:.0f} s")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(item.popen.pid, signal.SIGKILL)  # the group's children (task processes) too
            item.popen.wait()
    return errors
