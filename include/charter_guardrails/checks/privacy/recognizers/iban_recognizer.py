"""IBAN_CODE: IBANs of every country but France, checked by stdnum (mod 97 and each country's BBAN format)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum import iban

from charter_guardrails.checks.privacy.recognizers._base import CASE_SENSITIVE_FLAGS, CheckedPatternRecognizer

_SEP = r"[ \u00a0]?"


class IbanRecognizer(CheckedPatternRecognizer):
    """Two letters, two check digits and a BBAN of 11 to 30 characters (15 to 34 in all, the lookahead
    counts them), compact or in groups of four.

    ``stdnum.iban`` checks ISO 7064 mod 97 (one random string in 97 passes: a strong check), the
    BBAN's length and structure for the country, and the national check digits where stdnum has
    them (Belgium, Spain, ...). French IBANs keep their own entity (``FR_IBAN``), so the pattern
    skips ``FR``. IBANs are written in upper case (ISO 13616), hence case-sensitive matching: in
    lower case, product codes would become candidates. Neither the start nor the end of a match
    touch a group of digits (``(?<!...)``, ``(?!...)``), so no IBAN is found inside a longer number.
    """

    ENTITY = "IBAN_CODE"
    STRONG_CHECKSUM = True
    FLAGS = CASE_SENSITIVE_FLAGS
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "IBAN (not FR)",
            rf"(?<![\w])(?<!\d[ \u00a0])(?!FR)(?=(?:[ \u00a0]?[0-9A-Z]){{15}})"
            rf"[A-Z]{{2}}\d{{2}}(?:{_SEP}[0-9A-Z]{{4}}){{2,7}}(?:{_SEP}[0-9A-Z]{{1,4}})?(?![\w]|[ \u00a0]\d)",
            0.5,
        )
    ]
    CONTEXT: ClassVar[list[str]] = ["iban", "bancaire", "banque", "virement", "prélèvement", "compte", "bank"]

    def checksum(self, compact: str) -> bool | None:
        return not compact.startswith("FR") and bool(iban.is_valid(compact))
