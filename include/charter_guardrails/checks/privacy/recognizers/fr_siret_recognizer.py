"""FR_SIRET: the 14-digit establishment number (SIREN + NIC; Luhn, or La Poste's digit-sum rule)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern
from stdnum.fr import siret

from charter_guardrails.checks.privacy.recognizers._base import FrPatternRecognizer


class FrSiretRecognizer(FrPatternRecognizer):
    """stdnum applies Luhn, and for La Poste's establishments (SIREN 356 000 000) the rule that
    the digit sum is a multiple of 5. One random 14-digit number in ten passes Luhn, hence 0.55."""

    ENTITY = "FR_SIRET"
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("SIRET", r"(?<![\w.\-])\d{3}[ .\u00a0]?\d{3}[ .\u00a0]?\d{3}[ .\u00a0]?\d{5}(?![\w]|[.\-]\d)", 0.55)
    ]
    CONTEXT: ClassVar[list[str]] = [
        "siret",
        "établissement",
        "etablissement",
        "entreprise",
        "société",
        "societe",
        "fournisseur",
        "prestataire",
    ]

    def checksum(self, compact: str) -> bool | None:
        return bool(siret.is_valid(compact))
