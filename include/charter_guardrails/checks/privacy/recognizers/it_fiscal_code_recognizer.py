"""IT_FISCAL_CODE: the Italian codice fiscale of a person (16 characters)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum.it import codicefiscale

from charter_guardrails.checks.privacy.recognizers._base import CASE_SENSITIVE_FLAGS, CheckedPatternRecognizer

#: A digit, or the letter that replaces it when two people would share a code (omocodia).
_D = "[0-9LMNPQRSTUV]"


class ItFiscalCodeRecognizer(CheckedPatternRecognizer):
    """Surname and first-name letters, birth year, month letter, day (+40 for women), place code and
    a check letter (``stdnum.it.codicefiscale``: the letter and the birth date). The structure is
    distinctive but one random code in 26 passes the letter, so a valid code keeps 0.7. Written in
    upper case, hence case-sensitive matching. The 11-digit code of companies is not personal data
    and is not matched."""

    ENTITY = "IT_FISCAL_CODE"
    COUNTRY = "IT"
    FLAGS = CASE_SENSITIVE_FLAGS
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "IT codice fiscale", rf"(?<![\w])[A-Z]{{6}}{_D}{{2}}[ABCDEHLMPRST]{_D}{{2}}[A-Z]{_D}{{3}}[A-Z](?![\w])", 0.7
        ),
    ]
    CONTEXT: ClassVar[list[str]] = ["codice fiscale", "codice", "fiscale", "cf", "italien"]

    def checksum(self, compact: str) -> bool | None:
        return bool(codicefiscale.is_valid(compact))
