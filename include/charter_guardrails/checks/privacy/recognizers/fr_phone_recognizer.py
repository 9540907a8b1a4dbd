"""FR_PHONE: French phone numbers, national (0X XX XX XX XX, any separator) or international (+33, 0033)."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from charter_guardrails.checks.privacy.recognizers._base import FrPatternRecognizer

_SEP = r"[ .\-\u00a0]?"


class FrPhoneRecognizer(FrPatternRecognizer):
    """Ten digits starting 01-09, or +33/0033 then nine digits, with an optional "(0)".

    Presidio's generic phone recognizer scores French numbers 0.4; this exact national plan
    is specific enough for 0.75 (there is no checksum to add).
    """

    ENTITY = "FR_PHONE"
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "FR phone international",
            rf"(?<![\w+])(?:\+|00)33{_SEP}(?:\(0\){_SEP})?[1-9](?:{_SEP}\d{{2}}){{4}}(?!\d)",
            0.8,
        ),
        # not right after a group of digits: "+39 02 1234 5678" is Italian, "5968 0716 7655 75" part of an IBAN
        Pattern("FR phone national", rf"(?<![\w+])(?<!\d[ .\-\u00a0])0[1-9](?:{_SEP}\d{{2}}){{4}}(?![\w])", 0.75),
    ]
    CONTEXT: ClassVar[list[str]] = [
        "téléphone",
        "telephone",
        "tél",
        "tel",
        "portable",
        "mobile",
        "appeler",
        "rappeler",
        "joindre",
        "numéro",
        "fixe",
        "phone",
    ]

    def invalidate_result(self, pattern_text: str) -> bool | None:
        # mixed separators ("06.12-34 56.78") are typos or dates glued together, not phone numbers
        seps = {c for c in pattern_text.lstrip("+") if not c.isdigit() and c not in "()"}
        return len(seps) > 1
