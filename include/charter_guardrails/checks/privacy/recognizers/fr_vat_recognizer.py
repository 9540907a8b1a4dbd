"""FR_VAT: the intra-community VAT number (TVA intracommunautaire), FR + 2 key characters + SIREN."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum.fr import tva

from charter_guardrails.checks.privacy.recognizers._base import FrPatternRecognizer


class FrVatRecognizer(FrPatternRecognizer):
    ENTITY = "FR_VAT"
    STRONG_CHECKSUM = True
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "TVA FR",
            r"(?<![\w])FR[ \u00a0]?[0-9A-HJ-NP-Z]{2}[ \u00a0]?\d{3}[ \u00a0]?\d{3}[ \u00a0]?\d{3}(?![\w])",
            0.6,
        )
    ]
    CONTEXT: ClassVar[list[str]] = ["tva", "intracommunautaire", "vat", "numéro de tva", "n° tva"]

    def checksum(self, compact: str) -> bool | None:
        return bool(tva.is_valid(compact))
