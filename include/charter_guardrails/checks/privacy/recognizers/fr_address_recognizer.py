"""LOCATION: French street addresses (``12 bis, rue de la République``), which spaCy's small model often misses."""

from __future__ import annotations

from typing import ClassVar

from presidio_analyzer import Pattern

from charter_guardrails.checks.privacy.recognizers._base import CASE_SENSITIVE_FLAGS, FrPatternRecognizer

_TYPES = (
    "rue|avenue|av\\.|boulevard|bd|chemin|all[ée]e|impasse|place|cours|quai|route|traverse|square|passage|"
    "rond-point|esplanade|mont[ée]e|lotissement|r[ée]sidence|voie|sentier|parvis|faubourg"
)
_NAME = r"[A-ZÀ-Ý][\w'’\-]+"


class FrAddressRecognizer(FrPatternRecognizer):
    """A number, a street type, and a capitalised name: a street address down to the building, so
    location data about a person. Reported as ``LOCATION``, the entity spaCy's NER gives places."""

    ENTITY = "LOCATION"
    FLAGS = CASE_SENSITIVE_FLAGS
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "FR street address",
            rf"(?<![\w])\d{{1,4}}(?: ?(?:bis|ter|[A-D]))?,? (?i:{_TYPES}) "
            rf"(?:(?i:de la|de l'|du|des|de|d'|l'|la|le|les) ?)?"
            rf"{_NAME}(?: (?:(?:de|du|des|la|le|d'|l')\s?)?{_NAME}){{0,3}}",
            0.6,
        ),
        Pattern(
            "FR street and postcode",
            rf"(?<![\w])(?i:{_TYPES}) (?:(?i:de la|de l'|du|des|de|d'|l'|la|le|les) ?)?"
            rf"{_NAME}(?: {_NAME}){{0,3}},? \d{{5}} {_NAME}",
            0.6,
        ),
    ]
    CONTEXT: ClassVar[list[str]] = ["adresse", "domicile", "habite", "demeurant", "domicilié", "rue"]
