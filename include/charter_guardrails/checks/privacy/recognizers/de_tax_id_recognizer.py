"""DE_TAX_ID: the German tax identification number (steuerliche Identifikationsnummer, IdNr)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum.de import idnr

from charter_guardrails.checks.privacy.recognizers._base import CheckedPatternRecognizer


class DeTaxIdRecognizer(CheckedPatternRecognizer):
    """11 digits, the first not 0, one digit repeated in the first ten, and an ISO 7064 mod 11,10
    check digit (``stdnum.de.idnr``). One random number in ten passes the check digit and 11
    digits look like many references, so a valid IdNr scores 0.3 and needs a context word
    (``steuer-id``, ``idnr``, a column named ``steuer_id``...)."""

    ENTITY = "DE_TAX_ID"
    COUNTRY = "DE"
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("DE IdNr", r"(?<![\w.\-])[1-9]\d ?\d{3} ?\d{3} ?\d{3}(?![\w]|[.\-]\d)", 0.3),
    ]
    CONTEXT: ClassVar[list[str]] = [
        "steuer",
        "steuerid",
        "idnr",
        "identifikationsnummer",
        "steueridentifikationsnummer",
        "tin",
        "identifiant fiscal",
        "numéro fiscal",
    ]

    def checksum(self, compact: str) -> bool | None:
        return bool(idnr.is_valid(compact))
