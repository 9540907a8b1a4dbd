"""FR_LICENSE_PLATE: SIV registration plates (since 2009), ``AA-123-AA``."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from charter_guardrails.checks.privacy.recognizers._base import CASE_SENSITIVE_FLAGS, FrPatternRecognizer

_LETTER = "[A-HJ-NP-TV-Z]"  # I, O and U are never used


class FrLicensePlateRecognizer(FrPatternRecognizer):
    """Dashed plates are distinctive (0.6); undashed ``AA123AA`` also looks like codes (0.35).
    ``SS`` in the first block and the number ``000`` are not issued."""

    ENTITY = "FR_LICENSE_PLATE"
    FLAGS = CASE_SENSITIVE_FLAGS
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("SIV plate, dashed", rf"(?<![\w\-]){_LETTER}{{2}}[\- ]\d{{3}}[\- ]{_LETTER}{{2}}(?![\w\-])", 0.6),
        Pattern("SIV plate, compact", rf"(?<![\w\-]){_LETTER}{{2}}\d{{3}}{_LETTER}{{2}}(?![\w\-])", 0.35),
    ]
    CONTEXT: ClassVar[list[str]] = [
        "immatriculation",
        "plaque",
        "véhicule",
        "vehicule",
        "voiture",
        "garée",
        "garé",
        "stationné",
    ]

    def invalidate_result(self, pattern_text: str) -> bool | None:
        compact = self.compact(pattern_text)
        return compact.startswith("SS") or compact[2:5] == "000"
