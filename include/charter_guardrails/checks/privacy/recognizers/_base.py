"""What the checked recognizers share: Presidio's ``PatternRecognizer`` plus a checksum hook.

Presidio drops a match whose ``validate_result`` is ``False`` and raises it to 1.0 when it is
``True``. A strong checksum (mod 97: one random string in 97 passes) earns that 1.0; a Luhn
digit (one in 10 passes) does not, so those recognizers return ``None`` on success and keep
their pattern score, which context words (in the text or the column name) then raise.

The same discipline holds for every recognizer built on :class:`CheckedPatternRecognizer`, French
or not: a pattern match whose check fails is a *suspect* for the scanner, never a finding.
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


class CheckedPatternRecognizer(PatternRecognizer):
    """A pattern recognizer whose check (a checksum from python-stdnum, or a library's validation)
    decides between an entity and a suspect."""

    ENTITY: ClassVar[str]
    PATTERNS: ClassVar[list[Pattern]]
    CONTEXT: ClassVar[list[str]]
    #: A passing checksum is strong evidence (mod 97); Luhn is not.
    STRONG_CHECKSUM: ClassVar[bool] = False
    FLAGS: ClassVar[int | None] = None

    def __init__(self, supported_language: str = "fr", context: list[str] | None = None) -> None:
        super().__init__(
            supported_entity=self.ENTITY,
            patterns=[Pattern(p.name, p.regex, p.score) for p in self.pattern_list()],
            context=context or list(self.CONTEXT),
            supported_language=supported_language,
            name=type(self).__name__,
            global_regex_flags=PRESIDIO_FLAGS if self.FLAGS is None else self.FLAGS,
        )

    def pattern_list(self) -> list[Pattern]:
        """The patterns of this instance: :attr:`PATTERNS`, unless its settings add or remove some."""
        return list(self.PATTERNS)

    @staticmethod
    def compact(text: str) -> str:
        return _SEPARATORS.sub("", text).upper()

    def checked_text(self, text: str) -> str:
        """What :meth:`checksum` reads: the match without separators, in upper case. Formats whose
        separators carry meaning (IP addresses, phone numbers, dates) override it."""
        return self.compact(text)

    def checksum(self, compact: str) -> bool | None:
        """``True``/``False`` when the format has a check, ``None`` when it has none."""
        return None

    def is_valid(self, text: str) -> bool | None:
        """The checksum verdict on a matched text (``None``: nothing to check)."""
        if self.invalidate_result(text):
            return False
        return self.checksum(self.checked_text(text))

    def validate_result(self, pattern_text: str) -> bool | None:
        ok = self.checksum(self.checked_text(pattern_text))
        if ok is None or (ok and not self.STRONG_CHECKSUM):
            return None
        return ok


#: The French recognizers' name for the same base.
FrPatternRecognizer = CheckedPatternRecognizer
