"""A forked child never finalises what it inherited: a pooled SQLite connection that Airflow's fork handler
drops in the child would otherwise be closed there by the cyclic collector, behind the parent's back."""

from __future__ import annotations

import gc
import os
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from charter_guardrails.core.forking import inherited_objects_frozen


class _Connection:
    """Stands for an inherited connection: in a reference cycle, and it says where it was finalised."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.me = self  # a cycle: only the cyclic collector can free it

    def __del__(self) -> None:
        with self.log.open("a") as out:
            out.write(f"{os.getpid()}\n")


def _finalised_in_child(tmp_path: Path, around_fork: AbstractContextManager[None]) -> bool:
    log = tmp_path / "finalised.txt"
    log.write_text("")
    pool = [_Connection(log)]
    with around_fork:
        pid = os.fork()
        if pid == 0:
            try:
                pool.clear()  # what a fork handler does to a connection pool: the child drops it
                gc.collect()
            finally:
                os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    finalised = str(pid) in log.read_text().split()
    pool.clear()
    gc.collect()  # the parent still frees it, once
    assert log.read_text().split().count(str(os.getpid())) == 1
    return finalised


def test_the_child_never_finalises_what_it_inherited(tmp_path: Path) -> None:
    assert _finalised_in_child(tmp_path, inherited_objects_frozen()) is False
    assert gc.get_freeze_count() == 0, "the parent's objects are collectable again"


def test_without_it_the_child_finalises_an_inherited_object(tmp_path: Path) -> None:
    """The control: the same child, without the freeze, closes what it inherited."""
    assert _finalised_in_child(tmp_path, nullcontext()) is True
