"""PHONE_NUMBER: phone numbers of every country but France, validated by ``phonenumbers``.

French numbers keep their entity, ``FR_PHONE`` (:mod:`.fr_phone_recognizer`): the patterns here skip
``+33`` and ``0033``, and read national numbers (no international prefix) only when the default
region is not France.
"""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from charter_guardrails.checks.privacy.recognizers._base import CheckedPatternRecognizer
from charter_guardrails.core.errors import ConfigError

DEFAULT_REGION = "FR"
_SEP = r"[ .\-\u00a0]"
#: One group of digits, optionally after a trunk prefix in brackets (``+32 (0)2 ...``).
_GROUP = rf"(?:\(\d{{1,4}}\){_SEP}?)?\d{{1,8}}"
#: At least ``n`` digits ahead, separators and brackets allowed between them.
_DIGITS = r"(?=(?:[ .\-\u00a0()]{{0,2}}\d){{{n}}})"
_BEFORE = r"(?<![\w+])"
_AFTER = r"(?![\w])"


class PhoneNumberRecognizer(CheckedPatternRecognizer):
    """A country code after ``+`` or ``00``, then groups of digits; or, when the policy's default
    region is not France, a national number of that region.

    ``phonenumbers`` decides: the country code gives the region (``+32`` Belgium), the default region
    reads national numbers, and the number must fit that region's numbering plan (length and
    prefixes); one that does not (``+44 6 12 34 56 78``) is a suspect. There is no checksum, so a
    valid number keeps its pattern score: 0.7 after ``+``, 0.65 after ``00`` with separators, 0.35
    for ``00`` and digits alone (zero-padded references look the same) and 0.45 for national numbers
    of another region (any run of 8 digits does); a context word raises them.
    """

    ENTITY = "PHONE_NUMBER"
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "international, +",
            rf"{_BEFORE}\+(?!33){_DIGITS.format(n=7)}[1-9]\d{{0,2}}(?:{_SEP}?{_GROUP}){{1,6}}{_AFTER}",
            0.7,
        ),
        Pattern(
            "international, 00 and separators",
            rf"{_BEFORE}00(?!33){_DIGITS.format(n=7)}[1-9]\d{{0,2}}(?:{_SEP}{_GROUP}){{1,6}}{_AFTER}",
            0.65,
        ),
        Pattern("international, 00 and digits", rf"{_BEFORE}00(?!33)[1-9]\d{{6,13}}{_AFTER}", 0.35),
    ]
    #: Added when the default region is not France (French national numbers are ``FR_PHONE``'s).
    NATIONAL: ClassVar[Pattern] = Pattern(
        "national, default region",
        rf"(?<![\w+.\-/]){_DIGITS.format(n=8)}(?:\(\d{{1,5}}\){_SEP}?|\d{{1,5}})(?:{_SEP}?\d{{2,5}}){{1,5}}"
        r"(?![\w]|[.\-/]\d)",
        0.45,
    )
    CONTEXT: ClassVar[list[str]] = [
        "téléphone",
        "telephone",
        "tél",
        "tel",
        "portable",
        "mobile",
        "gsm",
        "appeler",
        "joindre",
        "fixe",
        "phone",
        "fax",
    ]

    def __init__(
        self, supported_language: str = "fr", context: list[str] | None = None, default_region: str = DEFAULT_REGION
    ) -> None:
        import phonenumbers

        region = default_region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(
                f"unknown default phone region {default_region!r}: give a two-letter region code that "
                "phonenumbers knows (FR, BE, DE, ES, IT, CH, GB, ...) in privacy.phone_region"
            )
        self.default_region = region
        super().__init__(supported_language, context)

    def pattern_list(self) -> list[Pattern]:
        return [*self.PATTERNS, self.NATIONAL] if self.default_region != DEFAULT_REGION else list(self.PATTERNS)

    def checked_text(self, text: str) -> str:
        text = text.strip()
        return "+" + text[2:].lstrip() if text.startswith("00") else text

    def checksum(self, compact: str) -> bool | None:
        import phonenumbers

        try:
            number = phonenumbers.parse(compact, self.default_region)
        except phonenumbers.NumberParseException:
            return False
        return bool(phonenumbers.is_valid_number(number))
