"""FR_NIR: the French social security number (numéro d'inscription au répertoire, « numéro de sécu »)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum.fr import nir

from charter_guardrails.checks.privacy.recognizers._base import FrPatternRecognizer

_SEP = r"[ .\-\u00a0]?"


class FrNirRecognizer(FrPatternRecognizer):
    """15 characters: sex, year, month, department (2A/2B for Corsica), commune, order, and a key
    97 - (number mod 97) that stdnum checks. Spaces, dots and dashes are accepted between groups."""

    ENTITY = "FR_NIR"
    STRONG_CHECKSUM = True
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "NIR (grouped or compact)",
            rf"(?<![\w])[1-478]{_SEP}\d{{2}}{_SEP}\d{{2}}{_SEP}(?:\d{{2}}|2[AaBb]){_SEP}\d{{3}}{_SEP}\d{{3}}{_SEP}\d{{2}}(?![\w])",
            0.6,
        ),
    ]
    CONTEXT: ClassVar[list[str]] = [
        "nir",
        "sécurité sociale",
        "securite sociale",
        "sécu",
        "secu",
        "insee",
        "numéro social",
        "assuré",
        "ssn",
        "carte vitale",
        "immatriculation",
    ]

    def checksum(self, compact: str) -> bool | None:
        return bool(nir.is_valid(compact))
