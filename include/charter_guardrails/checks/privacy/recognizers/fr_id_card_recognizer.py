"""FR_ID_CARD: the number of the carte nationale d'identité (CNI), old and new formats."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from charter_guardrails.checks.privacy.recognizers._base import CASE_SENSITIVE_FLAGS, FrPatternRecognizer


class FrIdCardRecognizer(FrPatternRecognizer):
    """Old cards (until 2021): 12 characters, year and month of issue, department/office code,
    sequence number (e.g. ``880692310285``). New cards (since 2021): 9 upper-case letters and
    digits (e.g. ``X4RTBPFW4``). Neither number carries a check digit of its own (the MRZ does),
    so without a context word the score stays below the default threshold.
    """

    ENTITY = "FR_ID_CARD"
    FLAGS = CASE_SENSITIVE_FLAGS
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "CNI (old, 12 characters)", r"(?<![\w])\d{2}(?:0[1-9]|1[0-2])(?:\d{2}[0-9A-Z]|2[AB]\d)\d{5}(?![\w])", 0.3
        ),
        Pattern(
            "CNI (new, 9 characters)", r"(?<![\w])(?=[0-9A-Z]{0,8}\d)(?=[0-9A-Z]{0,8}[A-Z])[0-9A-Z]{9}(?![\w])", 0.25
        ),
    ]
    CONTEXT: ClassVar[list[str]] = [
        "cni",
        "carte d'identité",
        "carte d'identite",
        "carte nationale",
        "identité",
        "pièce d'identité",
        "piece identite",
    ]
