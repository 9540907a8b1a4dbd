"""ES_NIF: the Spanish DNI (documento nacional de identidad), the NIF of Spanish citizens."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum.es import dni

from charter_guardrails.checks.privacy.recognizers._base import CASE_SENSITIVE_FLAGS, CheckedPatternRecognizer


class EsNifRecognizer(CheckedPatternRecognizer):
    """8 digits and a check letter (number mod 23, ``stdnum.es.dni``), as ``12345678Z`` or
    ``12.345.678-Z``. One random number in 23 passes: a valid DNI keeps 0.55, a context word raises it.
    Presidio names this entity ``ES_NIF``; policies may also write ``ES_DNI``."""

    ENTITY = "ES_NIF"
    COUNTRY = "ES"
    FLAGS = CASE_SENSITIVE_FLAGS
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("ES DNI", r"(?<![\w.\-])\d{2}\.?\d{3}\.?\d{3}[ \-]?[A-Za-z](?![\w])", 0.55),
    ]
    CONTEXT: ClassVar[list[str]] = ["dni", "nif", "documento nacional", "identidad", "espagnol"]

    def checksum(self, compact: str) -> bool | None:
        return bool(dni.is_valid(compact))
