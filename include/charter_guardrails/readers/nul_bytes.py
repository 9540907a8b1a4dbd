"""NUL bytes in a text file: a CSV holding one is refused by the readers (``files._check_file``)."""

from __future__ import annotations

import functools
import mmap
from pathlib import Path


def has_nul(path: Path, head: bytes, size: int) -> bool:
    """NUL bytes anywhere in the file, not only in its head (a NUL deep in a cell is as wrong as one in the header)."""
    if b"\x00" in head:
        return True
    if size <= len(head):
        return False
    stat = path.stat()
    return _nul_in_file(str(path.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)


#: Bytes of a file mapped at once while searching it for NUL bytes (a multiple of the allocation granularity).
NUL_WINDOW_BYTES = 64 << 20


@functools.lru_cache(maxsize=64)
def _nul_in_file(path: str, size: int, mtime_ns: int, inode: int) -> bool:
    """Whether the file holds a NUL byte: read once per version of a file (its size, modification time and inode
    are part of the key), although detecting the dialect and reading check it both. Searched through memory maps
    of :data:`NUL_WINDOW_BYTES` at a time, so that a file of gigabytes is not copied through Python's buffers, and
    the pages mapped at once (which count in the process's resident memory) stay bounded."""
    del mtime_ns, inode  # the cache key only
    with open(path, "rb") as handle:
        try:
            for offset in range(0, size, NUL_WINDOW_BYTES):
                length = min(NUL_WINDOW_BYTES, size - offset)
                with mmap.mmap(handle.fileno(), length, access=mmap.ACCESS_READ, offset=offset) as window:
                    if window.find(b"\x00") >= 0:
                        return True
            return False
        except (OSError, ValueError):  # not mappable (a pipe, a special file): read it block by block
            handle.seek(0)
            while block := handle.read(1 << 20):
                if b"\x00" in block:
                    return True
            return False
