"""FR_PASSPORT: French passport numbers, 2 digits, 2 upper-case letters, 5 digits (e.g. ``12AB34567``)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from charter_guardrails.checks.privacy.recognizers._base import CASE_SENSITIVE_FLAGS, FrPatternRecognizer


class FrPassportRecognizer(FrPatternRecognizer):
    """No check digit in the number itself; the format is distinctive enough for 0.4 alone."""

    ENTITY = "FR_PASSPORT"
    FLAGS = CASE_SENSITIVE_FLAGS
    PATTERNS: ClassVar[list[Pattern]] = [Pattern("Passeport FR", r"(?<![\w])\d{2}[A-Z]{2}\d{5}(?![\w])", 0.4)]
    CONTEXT: ClassVar[list[str]] = ["passeport", "passport", "titre de voyage"]
