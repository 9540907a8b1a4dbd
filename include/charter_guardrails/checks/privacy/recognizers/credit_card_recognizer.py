"""CREDIT_CARD: payment card numbers, by issuer range and length, with stdnum's Luhn check.

French "CB" cards are co-branded Visa or Mastercard numbers, so they fall in those ranges.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum import luhn

from charter_guardrails.checks.privacy.recognizers._base import CheckedPatternRecognizer

#: (first digits, low, high, lengths) of each issuer's ranges (ISO/IEC 7812 IINs as the networks publish them).
#: Not recognised: 13-digit Visa and 14-digit Diners numbers (no longer issued; 14 Luhn-valid digits are
#: indistinguishable from a SIRET) and 12-13-digit Maestro numbers.
_SIXTEEN_TO_NINETEEN = (16, 17, 18, 19)
ISSUER_RANGES: tuple[tuple[str, int, int, tuple[int, ...]], ...] = (
    ("Visa", 4, 4, (16, 19)),
    ("Mastercard", 51, 55, (16,)),
    ("Mastercard", 2221, 2720, (16,)),
    ("American Express", 34, 34, (15,)),
    ("American Express", 37, 37, (15,)),
    ("Discover", 6011, 6011, _SIXTEEN_TO_NINETEEN),
    ("Discover", 644, 649, _SIXTEEN_TO_NINETEEN),
    ("Discover", 65, 65, _SIXTEEN_TO_NINETEEN),
    ("UnionPay", 62, 62, _SIXTEEN_TO_NINETEEN),
    ("JCB", 3528, 3589, _SIXTEEN_TO_NINETEEN),
    ("Diners Club", 300, 305, _SIXTEEN_TO_NINETEEN),
    ("Diners Club", 3095, 3095, _SIXTEEN_TO_NINETEEN),
    ("Diners Club", 36, 36, _SIXTEEN_TO_NINETEEN),
    ("Diners Club", 38, 39, _SIXTEEN_TO_NINETEEN),
    ("Mir", 2200, 2204, _SIXTEEN_TO_NINETEEN),
    ("Maestro", 6759, 6759, _SIXTEEN_TO_NINETEEN),
    ("Maestro", 6761, 6763, _SIXTEEN_TO_NINETEEN),
    ("Maestro", 5018, 5018, _SIXTEEN_TO_NINETEEN),
    ("Maestro", 5020, 5020, _SIXTEEN_TO_NINETEEN),
    ("Maestro", 5038, 5038, _SIXTEEN_TO_NINETEEN),
    ("Maestro", 6304, 6304, _SIXTEEN_TO_NINETEEN),
)
#: The leading digits the patterns accept; :func:`issuer` then decides on the exact range and length.
_LEAD = r"(?=4|5[0-5]|2[2-7]|3[0-9]|6[0-9])"
#: Not after or before another group of digits (a card number inside a longer number is not one).
_BEFORE = r"(?<![\w\-.])(?<!\d[ \-])"
_AFTER = r"(?![\w\-]|[ .]\d)"


def issuer(digits: str) -> str | None:
    """The network whose range and length fit ``digits`` (digits only), or ``None``."""
    for name, low, high, lengths in ISSUER_RANGES:
        width = len(str(low))
        if len(digits) in lengths and low <= int(digits[:width]) <= high:
            return name
    return None


class CreditCardRecognizer(CheckedPatternRecognizer):
    """A number of 15 to 19 digits in a known issuer range with a valid Luhn digit.

    Replaces Presidio's ``CreditCardRecognizer``, which scores any 12-19-digit Luhn-valid number
    1.0: Luhn lets one random number in ten pass, so here a valid number keeps its pattern score
    (0.6 when grouped as cards are printed, 0.4 compact) and a context word (``carte``, ``cb``, a
    column named ``numero_carte``...) raises it. A number in no issuer range or failing Luhn is a
    suspect.
    """

    ENTITY = "CREDIT_CARD"
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "card, groups of four", rf"{_BEFORE}{_LEAD}\d{{4}}(?:[ \-]\d{{4}}){{3}}(?:[ \-]?\d{{1,3}})?{_AFTER}", 0.6
        ),
        Pattern("card, American Express groups", rf"{_BEFORE}(?=3[47])\d{{4}}[ \-]\d{{6}}[ \-]\d{{5}}{_AFTER}", 0.6),
        Pattern("card, compact", rf"{_BEFORE}{_LEAD}\d{{15,19}}{_AFTER}", 0.4),
    ]
    CONTEXT: ClassVar[list[str]] = [
        "carte",
        "cb",
        "visa",
        "mastercard",
        "amex",
        "crédit",
        "credit",
        "card",
        "paiement",
    ]

    def checksum(self, compact: str) -> bool | None:
        return compact.isdigit() and issuer(compact) is not None and bool(luhn.is_valid(compact))
