"""What the French recognizers share: Presidio's ``PatternRecognizer`` plus a checksum hook.

Presidio drops a match whose ``validate_result`` is ``False`` and raises it to 1.0 when it is
``True``. A strong checksum (mod 97: one random string in 97 passes) earns that 1.0; a Luhn
digit (one in 10 passes) does not, so those recognizers return ``None`` on success and keep
their pattern score, which context words (in the text or the column name) then raise.
"""

from __future__ import annotations

import re
from typing import ClassVar

from presidio_analyzer import Pattern, PatternRecognizer

#: Separators people put in identifiers: spaces (also non-breaking), dots, dashes, slashes.
_SEPARATORS = re.compile(r"[\s.\-/\u00a0\u202f]")

#: Presidio's default flags minus IGNORECASE, for formats whose letters are upper case only
#: (CNI, passport, plates): case-insensitive matching would turn ordinary words into candidates.
CASE_SENSITIVE_FLAGS = re.DOTALL | re.MULTILINE
#: Presidio's default for pattern recognizers.
PRESIDIO_FLAGS = re.DOTALL | re.MULTILINE | re.IGNORECASE


class FrPatternRecognizer(PatternRecognizer):
    """A French pattern recognizer whose checksum comes from python-stdnum."""

    ENTITY: ClassVar[str]
    PATTERNS: ClassVar[list[Pattern]]
    CONTEXT: ClassVar[list[str]]
    #: A passing checksum is strong evidence (mod 97); Luhn is not.
    STRONG_CHECKSUM: ClassVar[bool] = False
    FLAGS: ClassVar[int | None] = None

    def __init__(self, supported_language: str = "fr", context: list[str] | None = None) -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            patterns=[Pattern(p.name, p.regex, p.score) for p in self.PATTERNS],
            context=context or list(self.CONTEXT),
            supported_language=supported_language,
            name=type(self).__name__,
            global_regex_flags=PRESIDIO_FLAGS if self.FLAGS is None else self.FLAGS,
        )

    @staticmethod
    def compact(text: str) -> str:
        return _SEPARATORS.sub("", text).upper()

    def checksum(self, compact: str) -> bool | None:
        """``True``/``False`` when the format has a check, ``None`` when it has none."""
        return None

    def is_valid(self, text: str) -> bool | None:
        """The checksum verdict on a matched text (``None``: nothing to check)."""
        if self.invalidate_result(text):
            return False
        return self.checksum(self.compact(text))

    def validate_result(self, pattern_text: str) -> bool | None:
        ok = self.checksum(self.compact(pattern_text))
        if ok is None or (ok and not self.STRONG_CHECKSUM):
            return None
        return ok
