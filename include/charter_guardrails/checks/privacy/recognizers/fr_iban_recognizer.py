"""FR_IBAN: French IBANs (FR + 2 check digits + the 23-character RIB), checked by stdnum (ISO 7064 mod 97)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum import iban

from charter_guardrails.checks.privacy.recognizers._base import FrPatternRecognizer


class FrIbanRecognizer(FrPatternRecognizer):
    ENTITY = "FR_IBAN"
    STRONG_CHECKSUM = True
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("IBAN FR", r"(?<![\w])FR\d{2}(?:[ \u00a0]?[0-9A-Z]{4}){5}[ \u00a0]?[0-9A-Z]{3}(?![\w])", 0.6)
    ]
    CONTEXT: ClassVar[list[str]] = ["iban", "rib", "bancaire", "banque", "virement", "prélèvement", "compte"]

    def checksum(self, compact: str) -> bool | None:
        return compact.startswith("FR") and bool(iban.is_valid(compact))
