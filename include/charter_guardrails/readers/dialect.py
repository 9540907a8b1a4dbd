"""French CSV dialects: separator, decimal mark and encoding guessed from the head of a file.

French public data is often ``;``-separated with decimal commas, in Latin-1/cp1252, sometimes with a
UTF-8 BOM. Every reader of a file without a declared dialect (the pandas readers of
:mod:`charter_guardrails.readers.files`, the streaming scan of personal data) guesses it here, the one way.
"""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from charter_guardrails.core.policy_models import CsvDialect

SNIFF_BYTES = 1 << 20


@dataclass(frozen=True)
class DetectedDialect:
    separator: str
    decimal: str
    encoding: str
    bom: bool
    notes: list[str] = field(default_factory=list)

    def as_policy_dialect(self) -> CsvDialect:
        return CsvDialect(separator=self.separator, decimal=self.decimal, encoding=self.encoding)

    def to_json_dict(self) -> dict[str, Any]:
        return asdict(self)


def detect_encoding(sample: bytes) -> tuple[str, bool, list[str]]:
    """(encoding, has_bom, notes). UTF-8 when the sample decodes, else cp1252 (a superset of Latin-1 used by Excel)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", True, ["UTF-8 byte-order mark found"]
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        decoder.decode(sample, final=False)  # a multi-byte character cut at the sample's end is fine
        return "utf-8", False, []
    except UnicodeDecodeError:
        return "cp1252", False, ["not valid UTF-8: read as cp1252 (Windows Latin-1)"]


def sniff_csv_dialect(path: Path) -> DetectedDialect:
    """Guess separator, decimal mark and encoding from the first MiB (the file's bounds are the caller's to check:
    :func:`charter_guardrails.readers.files.detect_csv_dialect`)."""
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    encoding, bom, notes = detect_encoding(sample)
    text = sample.decode(encoding, errors="replace")
    lines = text.splitlines()[:200]
    if lines and len(sample) == SNIFF_BYTES:
        lines = lines[:-1]  # the last line may be cut
    sniff_text = "\n".join(lines)
    try:
        separator = csv.Sniffer().sniff(sniff_text, delimiters=";,\t|").delimiter
    except csv.Error:
        counts = {d: sniff_text.count(d) for d in ";,\t|"}
        separator = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
        notes.append(f"separator guessed by frequency: {separator!r}")
    decimal = "."
    if separator != "," and re.search(
        r"(^|[" + re.escape(separator) + r"])-?\d+,\d+($|[" + re.escape(separator) + r"])", sniff_text, re.M
    ):
        decimal = ","
        notes.append("decimal comma found in numbers")
    return DetectedDialect(separator=separator, decimal=decimal, encoding=encoding, bom=bom, notes=notes)
