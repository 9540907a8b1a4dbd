"""BE_NATIONAL_NUMBER: the Belgian national register number (and the BIS number of people without one)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum.be import bis, nn

from charter_guardrails.checks.privacy.recognizers._base import CheckedPatternRecognizer

_SEP = r"[ .\-]?"


class BeNationalNumberRecognizer(CheckedPatternRecognizer):
    """11 digits, ``YY.MM.DD-NNN.CC``: birth date, a day counter, and 97 - (number mod 97), computed
    with a leading 2 for people born from 2000. stdnum checks the key and the date (``stdnum.be.nn``,
    ``stdnum.be.bis``): a strong check, so a valid number scores 1.0."""

    ENTITY = "BE_NATIONAL_NUMBER"
    COUNTRY = "BE"
    STRONG_CHECKSUM = True
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "BE national number",
            rf"(?<![\w.\-])\d{{2}}{_SEP}\d{{2}}{_SEP}\d{{2}}{_SEP}\d{{3}}{_SEP}\d{{2}}(?![\w]|[.\-]\d)",
            0.5,
        )
    ]
    CONTEXT: ClassVar[list[str]] = [
        "registre national",
        "numéro national",
        "numero national",
        "niss",
        "rijksregister",
        "national number",
        "belge",
    ]

    def checksum(self, compact: str) -> bool | None:
        return bool(nn.is_valid(compact) or bis.is_valid(compact))
