"""Writing the sample files, and the damaged variants derived from the clean rows.

The variants draw from their own seeds (``seed + 5`` and up), so the clean files do not change
when a variant does.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path


@dataclass(frozen=True)
class GeneratedFile:
    use_case: str
    name: str
    path: Path
    rows: int
    description: str


def write_csv(path: Path, header: list[str], rows: Iterable[list[object]], *, encoding: str, decimal: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=";", quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(header)
        for row in rows:
            writer.writerow([_fmt(v, decimal) for v in row])
            count += 1
    tmp.replace(path)
    return count


def _fmt(value: object, decimal: str) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".replace(".", decimal)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return value


def quality_failures_citizen(training: list[list[object]], seed: int) -> list[list[object]]:
    rng = random.Random(seed + 6)
    bad = [list(r) for r in training]
    for r in rng.sample(bad, k=max(len(bad) // 25, 5)):
        r[6] = None  # missing label
    for r in rng.sample(bad, k=max(len(bad) // 25, 5)):
        r[3] = "13299"  # not an arrondissement
    for r in rng.sample(bad, k=max(len(bad) // 50, 3)):
        r[4] = "pigeon_voyageur"
    for i in rng.sample(range(1, len(bad)), k=max(len(bad) // 100, 2)):
        bad[i][0] = bad[i - 1][0]  # duplicate ids
    return bad


def quality_failures_waste(training: list[list[object]], seed: int) -> list[list[object]]:
    bad = [list(r) for r in training]
    brng = random.Random(seed + 5)
    for r in brng.sample(bad, k=max(len(bad) // 20, 5)):
        r[6] = -abs(float(r[6]) if r[6] is not None else 1.0) - 1  # type: ignore[arg-type]
    for r in brng.sample(bad, k=max(len(bad) // 50, 3)):
        r[2] = "inconnu"
    for r in brng.sample(bad, k=max(len(bad) // 50, 3)):
        r[3] = None
    return bad


def corrupt_copy(src: Path, dst: Path, use_case: str, seed: int) -> GeneratedFile:
    """Copy ``src`` and change a few digits in the middle: same size, different content."""
    data = bytearray(src.read_bytes())
    rng = random.Random(seed + 7)
    changed = 0
    positions = sorted(rng.sample(range(len(data) // 3, len(data) - 1), k=64))
    for pos in positions:
        if chr(data[pos]).isdigit() and changed < 3:
            data[pos] = ord(str((int(chr(data[pos])) + 1) % 10))
            changed += 1
    if changed == 0:
        data[len(data) // 2] ^= 0x01
    dst.write_bytes(bytes(data))
    rows = data.count(b"\n") - 1
    return GeneratedFile(use_case, dst.name, dst, rows, "training.csv with a few digits altered (same size)")
