"""Streaming, parallel Merkle hashing of a file, in one pass and constant memory.

A file is cut into fixed-size chunks (8 MiB by default). Each chunk is a leaf of a Merkle
tree with RFC 6962 domain separation: ``leaf = H(0x00 ‖ chunk)`` and
``node = H(0x01 ‖ left ‖ right)``, so a leaf can never be passed off as an inner node.

Leaves are independent, so they are hashed on every core: each worker thread reads its
chunk with ``os.preadv`` in 1 MiB pieces into its own buffer and hashes them as they come; both
calls release the GIL on large buffers. At most ``window`` chunks are in flight and each worker
owns one buffer, so memory is ``workers × 1 MiB`` whatever the file size. (``mmap`` would save
the copy, but a file truncated while mapped kills the process with SIGBUS instead of raising
:class:`DatasetFileChanged`.)

A file that changes while it is hashed (size, mtime or inode differ between start and end,
a short read, or bytes past the initial end) raises :class:`DatasetFileChanged`: no digest
is returned, so no partial manifest can be written.

This module imports only the standard library: it sits on the ``charter verify`` path.
"""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charter_guardrails.core.settings import ConfigError

DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
#: Smallest chunk chosen automatically: small files still get a few leaves, so a mismatch is localised.
MIN_AUTO_CHUNK_SIZE = 64 * 1024
#: Leaves aimed at when the chunk size is chosen automatically for a file under ``DEFAULT_CHUNK_SIZE × 32``.
AUTO_LEAVES = 32
DEFAULT_ALGORITHM = "sha256"
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
#: Algorithms offered by hashlib that release the GIL on large buffers.
ALGORITHMS: dict[str, Callable[..., Any]] = {
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "blake2b": hashlib.blake2b,
}
#: Upper bound of the chunk buffers (one per worker), whatever the core count: memory stays bounded.
MAX_BUFFER_BYTES = 96 * 1024 * 1024
#: A leaf is read in pieces of this size and hashed piece by piece: each piece is still in the core's
#: L2 cache when it is hashed, which saves about a tenth of the CPU of reading 8 MiB and hashing it
#: from main memory (measured with ``make bench-integrity``). The leaf digest is the same.
READ_PIECE = 1024 * 1024


class DatasetFileError(ConfigError):
    """A dataset file cannot be hashed. Nothing is recorded (no partial manifest)."""


class DatasetFileMissing(DatasetFileError):
    """The file does not exist."""


class DatasetFileUnreadable(DatasetFileError):
    """The file exists but cannot be read (permissions, not a regular file, I/O error)."""


class DatasetFileEmpty(DatasetFileError):
    """The file is empty: there is nothing to protect, which is almost always a mistake upstream."""


class DatasetFileChanged(DatasetFileError):
    """The file changed while it was being hashed: the digest would describe no real state of it."""


def hasher(algorithm: str) -> Callable[..., Any]:
    """The hashlib constructor of ``algorithm``; a clear error for an unknown one."""
    try:
        return ALGORITHMS[algorithm]
    except KeyError:
        raise ConfigError(f"unknown hash algorithm {algorithm!r}; use one of {sorted(ALGORITHMS)}") from None


def leaf_hash(data: bytes | memoryview, algorithm: str = DEFAULT_ALGORITHM) -> bytes:
    """``H(0x00 ‖ data)`` (RFC 6962 §2.1)."""
    h = hasher(algorithm)()
    h.update(LEAF_PREFIX)
    h.update(data)
    return bytes(h.digest())


def node_hash(left: bytes, right: bytes, algorithm: str = DEFAULT_ALGORITHM) -> bytes:
    """``H(0x01 ‖ left ‖ right)`` (RFC 6962 §2.1)."""
    h = hasher(algorithm)()
    h.update(NODE_PREFIX + left + right)
    return bytes(h.digest())


def merkle_root(leaves: list[bytes], algorithm: str = DEFAULT_ALGORITHM) -> bytes:
    """The RFC 6962 Merkle Tree Hash of already leaf-hashed ``leaves``.

    The tree splits at the largest power of two smaller than n, so that the root of a file does
    not depend on how many chunks happen to be hashed together.
    """
    if not leaves:
        return bytes(hasher(algorithm)(b"").digest())
    if len(leaves) == 1:
        return leaves[0]
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(merkle_root(leaves[:split], algorithm), merkle_root(leaves[split:], algorithm), algorithm)


@dataclass(frozen=True)
class ChunkDigest:
    """One leaf: the bytes ``[offset, offset + length)`` of the file.

    :param newlines: ``\\n`` bytes in the chunk (only when newlines are counted, i.e. for CSV).
    :param ends_with_newline: whether the chunk's last byte is ``\\n``.
    """

    index: int
    offset: int
    length: int
    digest: str
    newlines: int | None = None
    ends_with_newline: bool | None = None


@dataclass(frozen=True)
class FileDigest:
    """The Merkle digest of one file, taken in one consistent pass."""

    path: Path
    size: int
    mtime_ns: int
    algorithm: str
    chunk_size: int
    chunks: list[ChunkDigest] = field(repr=False)
    root: str
    seconds: float

    @property
    def newline_count(self) -> int | None:
        if not self.chunks or self.chunks[0].newlines is None:
            return None
        return sum(c.newlines or 0 for c in self.chunks)

    @property
    def ends_with_newline(self) -> bool:
        return bool(self.chunks and self.chunks[-1].ends_with_newline)


def auto_chunk_size(size: int) -> int:
    """The chunk size used when none is given: 8 MiB for large files; for smaller ones the power of two
    (≥ 64 KiB) that gives about 32 leaves, so that a change in a 500 KB CSV points at a few hundred rows.
    It depends only on the file size, so a verifier computes the same value before reading the manifest.
    """
    target = max(size // AUTO_LEAVES, 1)
    chunk = MIN_AUTO_CHUNK_SIZE
    while chunk < target and chunk < DEFAULT_CHUNK_SIZE:
        chunk *= 2
    return min(chunk, DEFAULT_CHUNK_SIZE)


def default_workers() -> int:
    """Every core the process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _stat_regular(path: Path) -> os.stat_result:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise DatasetFileMissing(f"dataset file {path} does not exist") from None
    except PermissionError:
        raise DatasetFileUnreadable(f"dataset file {path} cannot be read: permission denied") from None
    except OSError as exc:
        raise DatasetFileUnreadable(f"dataset file {path} cannot be read: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise DatasetFileUnreadable(f"dataset path {path} is a directory, expected a file")
    if not stat.S_ISREG(st.st_mode):
        raise DatasetFileUnreadable(f"dataset path {path} is not a regular file")
    if st.st_size == 0:
        raise DatasetFileEmpty(f"dataset file {path} is empty (0 bytes): nothing to register or verify")
    return st


def _same_state(before: os.stat_result, after: os.stat_result) -> bool:
    return (before.st_size, before.st_mtime_ns, before.st_ino, before.st_dev) == (
        after.st_size,
        after.st_mtime_ns,
        after.st_ino,
        after.st_dev,
    )


def hash_file(
    path: str | os.PathLike[str],
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    count_newlines: bool = False,
    workers: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> FileDigest:
    """Hash ``path`` chunk by chunk on every core and combine the leaves into a Merkle root.

    :param path: the file.
    :param algorithm: ``sha256`` (default), ``sha512`` or ``blake2b``.
    :param chunk_size: bytes per leaf.
    :param count_newlines: also count ``\\n`` per chunk (CSV row ranges); not needed to verify.
    :param workers: hashing threads (default: every core).
    :param on_chunk: called with each chunk index as it completes, in the calling thread (progress).
    :raises DatasetFileError: missing, unreadable, empty, or changed while hashed.
    """
    import time

    if chunk_size < 1:
        raise ConfigError(f"chunk size must be positive, got {chunk_size}")
    new_hash = hasher(algorithm)
    path = Path(path)
    started = time.perf_counter()
    before = _stat_regular(path)
    size = before.st_size
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise DatasetFileUnreadable(f"dataset file {path} cannot be read: permission denied") from None
    except OSError as exc:
        raise DatasetFileUnreadable(f"dataset file {path} cannot be read: {exc.strerror}") from None
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        n_chunks = -(-size // chunk_size)
        # One buffer per worker: on a many-core machine the default is capped so memory stays bounded.
        workers = max(
            1, min(workers or min(default_workers(), max(1, MAX_BUFFER_BYTES // min(READ_PIECE, chunk_size))), n_chunks)
        )
        local = threading.local()

        def work(index: int) -> ChunkDigest:
            offset = index * chunk_size
            length = min(chunk_size, size - offset)
            buffer = getattr(local, "buffer", None)
            if buffer is None:
                buffer = local.buffer = bytearray(min(READ_PIECE, chunk_size))
            view = memoryview(buffer)
            h = new_hash()
            h.update(LEAF_PREFIX)
            newlines = 0
            last = 0
            done = 0
            while done < length:
                want = min(len(buffer), length - done)
                try:
                    got = os.preadv(fd, [view[:want]], offset + done)
                except OSError as exc:
                    raise DatasetFileUnreadable(
                        f"dataset file {path} cannot be read at byte {offset + done}: {exc.strerror}"
                    ) from None
                if got == 0:
                    raise DatasetFileChanged(
                        f"dataset file {path} shrank while it was hashed (short read at byte {offset + done} of {size})"
                    )
                h.update(view[:got])
                if count_newlines:
                    newlines += buffer.count(b"\n", 0, got)
                    last = buffer[got - 1]
                done += got
            return ChunkDigest(
                index,
                offset,
                length,
                h.hexdigest(),
                newlines if count_newlines else None,
                last == 0x0A if count_newlines else None,
            )

        # Bounded: at most `window` chunks are queued (their results are small); each worker reuses one buffer.
        window = 2 * workers
        chunks: list[ChunkDigest] = []
        pending: deque[Future[ChunkDigest]] = deque()
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="charter-hash") as pool:
            try:
                for index in range(n_chunks):
                    pending.append(pool.submit(work, index))
                    if len(pending) >= window:
                        chunks.append(pending.popleft().result())
                        if on_chunk is not None:
                            on_chunk(chunks[-1].index)
                while pending:
                    chunks.append(pending.popleft().result())
                    if on_chunk is not None:
                        on_chunk(chunks[-1].index)
            except BaseException:
                for future in pending:
                    future.cancel()
                raise
        if os.pread(fd, 1, size):
            raise DatasetFileChanged(f"dataset file {path} grew while it was hashed (it had {size} bytes at the start)")
        after_fd = os.fstat(fd)
    finally:
        os.close(fd)
    try:
        after_path = os.stat(path)
    except OSError:
        raise DatasetFileChanged(f"dataset file {path} was removed or replaced while it was hashed") from None
    if not (_same_state(before, after_fd) and _same_state(before, after_path)):
        raise DatasetFileChanged(
            f"dataset file {path} changed while it was hashed (size or modification time differ between start and end)"
        )
    root = merkle_root([bytes.fromhex(c.digest) for c in chunks], algorithm).hex()
    return FileDigest(
        path, size, before.st_mtime_ns, algorithm, chunk_size, chunks, root, time.perf_counter() - started
    )


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

        read_fd, write_fd = os.pipe()
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
            except BaseException:  # noqa: BLE001
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

        assert self._read_fd is not None and self._pid is not None
        with os.fdopen(self._read_fd, "rb") as pipe:
            data = pipe.read()
        self._read_fd = None
        _pid, status = os.waitpid(self._pid, 0)
        self._pid = None
        if not data or os.waitstatus_to_exitcode(status) != 0:
            self._error = DatasetFileUnreadable(
                f"the process hashing {self.path} ended without a digest (exit status {os.waitstatus_to_exitcode(status)}); run the command again"
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
