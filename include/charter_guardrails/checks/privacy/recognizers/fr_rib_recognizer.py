"""FR_RIB: the French bank details (relevé d'identité bancaire): bank, branch, account, 2-digit key."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum.iso7064 import mod_97_10

from charter_guardrails.checks.privacy.recognizers._base import FrPatternRecognizer

#: The RIB maps letters of the account number to digits with its own table (A and J → 1, ...),
#: not ISO 7064's A=10; after that mapping the whole RIB is a multiple of 97, which stdnum's
#: mod 97 primitive checks.
_RIB_LETTERS = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "12345678912345678923456789")


class FrRibRecognizer(FrPatternRecognizer):
    ENTITY = "FR_RIB"
    STRONG_CHECKSUM = True
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("RIB", r"(?<![\w])\d{5}[ \u00a0]?\d{5}[ \u00a0]?[0-9A-Z]{11}[ \u00a0]?\d{2}(?![\w])", 0.5)
    ]
    CONTEXT: ClassVar[list[str]] = [
        "rib",
        "relevé d'identité bancaire",
        "code banque",
        "guichet",
        "clé rib",
        "compte",
        "bancaire",
    ]

    def checksum(self, compact: str) -> bool | None:
        if len(compact) != 23:
            return False
        return mod_97_10.checksum(compact.translate(_RIB_LETTERS)) == 0
