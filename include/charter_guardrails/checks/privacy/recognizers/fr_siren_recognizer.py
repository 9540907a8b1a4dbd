"""FR_SIREN: the 9-digit company number (Luhn check digit)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum.fr import siren

from charter_guardrails.checks.privacy.recognizers._base import FrPatternRecognizer


class FrSirenRecognizer(FrPatternRecognizer):
    """A Luhn digit lets one random 9-digit number in ten pass, so the score stays low (0.4)
    until a context word ("siren", "entreprise"…) is near or names the column."""

    ENTITY = "FR_SIREN"
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("SIREN", r"(?<![\w.\-])\d{3}[ .\u00a0]?\d{3}[ .\u00a0]?\d{3}(?![\w]|[.\-]\d)", 0.4)
    ]
    CONTEXT: ClassVar[list[str]] = [
        "siren",
        "entreprise",
        "société",
        "societe",
        "raison sociale",
        "rcs",
        "immatriculée",
        "fournisseur",
    ]

    def checksum(self, compact: str) -> bool | None:
        return bool(siren.is_valid(compact))
