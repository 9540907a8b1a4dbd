"""A hashing of one file in the background: in a forked child for the ``charter`` console script, else a thread.

This module imports only the standard library: it sits on the ``charter verify`` path.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from charter_guardrails.checks.integrity.hashing import FileDigest, hash_file
from charter_guardrails.core.errors import DatasetFileUnreadable


class HashJob:
    """:func:`hash_file` in the background, so that a command can import and query the ledger meanwhile.

    With ``isolate=True`` and a process that has a single thread (the ``charter`` console script,
    before it imports anything heavy), the hashing runs in a forked child process: its threads then
    never wait for the GIL that the importing thread holds (with 1 MiB reads they would, a thousand
    times per GiB), and the digest comes back through a pipe. Otherwise (a library caller, an
    Airflow worker that already runs threads, where ``fork`` is unsafe) it runs in a thread.
    """

    def __init__(self, path: str | os.PathLike[str], *, isolate: bool = False, **kwargs: Any) -> None:
        self._result: FileDigest | None = None
        self._error: BaseException | None = None
        self.path = Path(path)
        self.kwargs = kwargs
        self._pid: int | None = None
        self._read_fd: int | None = None
        self._thread: threading.Thread | None = None
        if isolate and hasattr(os, "fork") and threading.active_count() == 1:
            self._fork(path, kwargs)
        else:
            self._thread = threading.Thread(
                target=self._run, args=(path,), kwargs=kwargs, name="charter-hash-job", daemon=True
            )
            self._thread.start()

    def _fork(self, path: str | os.PathLike[str], kwargs: dict[str, Any]) -> None:
        import pickle

        from charter_guardrails.core.forking import inherited_objects_frozen

        read_fd, write_fd = os.pipe()
        with inherited_objects_frozen():  # the child ends inside: it never unfreezes
            pid = os.fork()
            if pid == 0:  # the child: hash, send the digest or the error, and leave without running any cleanup
                code = 0
                try:
                    os.close(read_fd)
                    try:
                        payload = pickle.dumps(("ok", hash_file(path, **kwargs)))
                    except BaseException as exc:  # noqa: BLE001 - sent to the parent, which re-raises it
                        try:
                            payload = pickle.dumps(("error", exc))
                        except Exception:  # noqa: BLE001 - an exception that cannot be pickled
                            payload = pickle.dumps(
                                ("error", DatasetFileUnreadable(f"dataset file {path} cannot be hashed: {exc}"))
                            )
                    view = memoryview(payload)
                    while view:
                        view = view[os.write(write_fd, view) :]
                except BaseException:  # noqa: BLE001 - the parent sees the exit status and reports it
                    code = 1
                finally:
                    os._exit(code)
        os.close(write_fd)
        self._pid, self._read_fd = pid, read_fd

    def _run(self, path: str | os.PathLike[str], **kwargs: Any) -> None:
        try:
            self._result = hash_file(path, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in result()
            self._error = exc

    def _collect(self) -> None:
        import pickle

        assert self._read_fd is not None  # noqa: S101 - set by start(), with _pid, before any _collect()
        assert self._pid is not None  # noqa: S101 - idem
        with os.fdopen(self._read_fd, "rb") as pipe:
            data = pipe.read()
        self._read_fd = None
        _pid, status = os.waitpid(self._pid, 0)
        self._pid = None
        if not data or os.waitstatus_to_exitcode(status) != 0:
            self._error = DatasetFileUnreadable(
                f"the process hashing {self.path} ended without a digest "
                f"(exit status {os.waitstatus_to_exitcode(status)}); run the command again"
            )
            return
        kind, value = pickle.loads(data)  # noqa: S301 - our own child, through our own pipe
        if kind == "ok":
            self._result = value
        else:
            self._error = value

    def cancel(self) -> None:
        """Stop a hashing child whose digest is not needed (e.g. no manifest to compare it with)."""
        if self._pid is not None:
            import signal

            os.kill(self._pid, signal.SIGKILL)
            os.waitpid(self._pid, 0)
            self._pid = None
            if self._read_fd is not None:
                os.close(self._read_fd)
                self._read_fd = None

    def result(self) -> FileDigest:
        """Wait for the digest; re-raise the hashing error, if any."""
        if self._pid is not None:
            self._collect()
        elif self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise DatasetFileUnreadable(f"hashing {self.path} was cancelled: no digest")
        return self._result
