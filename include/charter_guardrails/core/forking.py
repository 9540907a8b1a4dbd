"""Forking a child from a process that holds database connections.

A forked child inherits every object of its parent, among them pooled SQLite connections (the ledger's, or
Airflow's metadata database in a local install). If the child's cyclic garbage collector finalises one of
them, SQLite closes it in the child, and a close can roll back or checkpoint a journal that the parent still
uses: the database is then "malformed". The objects alive at the fork are therefore frozen (``gc.freeze``):
the child never collects them, while the garbage it makes itself is still collected. The parent unfreezes
its own objects once the child is started. Children end with ``os._exit``, so no finaliser runs at exit either.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def inherited_objects_frozen() -> Iterator[None]:
    """Around a fork: what exists now is never collected by the child; the parent's collector is unchanged after."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
