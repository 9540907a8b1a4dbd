"""ES_NIE: the Spanish foreigner identity number (número de identidad de extranjero)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum.es import nie

from charter_guardrails.checks.privacy.recognizers._base import CASE_SENSITIVE_FLAGS, CheckedPatternRecognizer


class EsNieRecognizer(CheckedPatternRecognizer):
    """X, Y or Z, 7 digits and a check letter (mod 23, ``stdnum.es.nie``): ``X1234567L``. The
    leading letter makes it more distinctive than a DNI: a valid NIE keeps 0.6."""

    ENTITY = "ES_NIE"
    COUNTRY = "ES"
    FLAGS = CASE_SENSITIVE_FLAGS
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("ES NIE", r"(?<![\w.\-])[XYZxyz][ \-]?\d{7}[ \-]?[A-Za-z](?![\w])", 0.6),
    ]
    CONTEXT: ClassVar[list[str]] = ["nie", "extranjero", "identidad", "étranger"]

    def checksum(self, compact: str) -> bool | None:
        return bool(nie.is_valid(compact))
