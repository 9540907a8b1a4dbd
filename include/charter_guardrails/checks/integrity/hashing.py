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

from charter_guardrails.core.errors import (
    ConfigError,
    DatasetFileChanged,
    DatasetFileEmpty,
    DatasetFileMissing,
    DatasetFileUnreadable,
)

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
    fd = _open_sequential(path)
    try:
        n_chunks = -(-size // chunk_size)
        # One buffer per worker: on a many-core machine the default is capped so memory stays bounded.
        workers = max(
            1, min(workers or min(default_workers(), max(1, MAX_BUFFER_BYTES // min(READ_PIECE, chunk_size))), n_chunks)
        )
        work = _leaf_hasher(fd, path, size, chunk_size, new_hash, count_newlines)
        chunks = _hash_chunks(work, n_chunks, workers, on_chunk)
        if os.pread(fd, 1, size):
            raise DatasetFileChanged(f"dataset file {path} grew while it was hashed (it had {size} bytes at the start)")
        after_fd = os.fstat(fd)
    finally:
        os.close(fd)
    _check_unchanged(path, before, after_fd)
    root = merkle_root([bytes.fromhex(c.digest) for c in chunks], algorithm).hex()
    return FileDigest(
        path, size, before.st_mtime_ns, algorithm, chunk_size, chunks, root, time.perf_counter() - started
    )


def _open_sequential(path: Path) -> int:
    """A read-only descriptor of ``path``, with the kernel told to read ahead."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise DatasetFileUnreadable(f"dataset file {path} cannot be read: permission denied") from None
    except OSError as exc:
        raise DatasetFileUnreadable(f"dataset file {path} cannot be read: {exc.strerror}") from None
    if hasattr(os, "posix_fadvise"):
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
        except BaseException:
            os.close(fd)
            raise
    return fd


def _leaf_hasher(
    fd: int, path: Path, size: int, chunk_size: int, new_hash: Callable[..., Any], count_newlines: bool
) -> Callable[[int], ChunkDigest]:
    """The function a worker thread runs per chunk index: read it in :data:`READ_PIECE` pieces and hash them.

    Everything per chunk stays in this one closure (no call per piece): the loop is the hot path.
    """
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

    return work


def _hash_chunks(
    work: Callable[[int], ChunkDigest], n_chunks: int, workers: int, on_chunk: Callable[[int], None] | None
) -> list[ChunkDigest]:
    """``work`` of every chunk index on ``workers`` threads, in order."""
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
    return chunks


def _check_unchanged(path: Path, before: os.stat_result, after_fd: os.stat_result) -> None:
    """Refuse a digest of a file whose size, mtime or inode changed (through the descriptor or the path)."""
    try:
        after_path = os.stat(path)
    except OSError:
        raise DatasetFileChanged(f"dataset file {path} was removed or replaced while it was hashed") from None
    if not (_same_state(before, after_fd) and _same_state(before, after_path)):
        raise DatasetFileChanged(
            f"dataset file {path} changed while it was hashed (size or modification time differ between start and end)"
        )
