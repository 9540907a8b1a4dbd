"""IP_ADDRESS: IPv4 and IPv6 addresses, validated by the standard library's ``ipaddress``."""

from __future__ import annotations

import ipaddress
from typing import ClassVar

from presidio_analyzer import Pattern

from charter_guardrails.checks.privacy.recognizers._base import CheckedPatternRecognizer

_H = "[0-9a-f]{1,4}"
#: No address starts inside a longer run of dotted or colon-separated groups, nor ends inside one.
_V4_BEFORE, _V4_AFTER = r"(?<![\w.])", r"(?![\w]|\.\d)"
_V6_BEFORE, _V6_AFTER = r"(?<![\w:.])", r"(?![\w:]|\.\d)"


class IpAddressRecognizer(CheckedPatternRecognizer):
    """Four dotted numbers, or eight colon-separated hexadecimal groups (``::`` compressing zeros).

    Replaces Presidio's ``IpRecognizer`` so that the scanner and the analyzer share it: the patterns
    are tighter (a time ``12:30:45`` or a MAC address has neither eight groups nor ``::``), and
    ``ipaddress`` decides: ``999.1.2.3``, ``01.2.3.4`` (leading zeros are ambiguous) or ``1::2::3``
    are suspects. A valid address keeps 0.6 (there is no checksum); a context word raises it.
    An IPv6 address ending in an IPv4 one (``::ffff:192.0.2.1``) is found through its IPv4 part.
    """

    ENTITY = "IP_ADDRESS"
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern("IPv4", rf"{_V4_BEFORE}(?:\d{{1,3}}\.){{3}}\d{{1,3}}{_V4_AFTER}", 0.6),
        Pattern(
            "IPv6",
            rf"{_V6_BEFORE}(?:{_H}(?::{_H}){{7}}|{_H}(?::{_H}){{0,6}}::(?:{_H}(?::{_H}){{0,6}})?|::{_H}(?::{_H}){{0,6}})"
            rf"{_V6_AFTER}",
            0.6,
        ),
    ]
    CONTEXT: ClassVar[list[str]] = ["ip", "adresse ip", "ipv4", "ipv6", "connexion", "serveur", "address"]

    def checked_text(self, text: str) -> str:
        return text.strip()

    def checksum(self, compact: str) -> bool | None:
        try:
            ipaddress.ip_address(compact)
        except ValueError:
            return False
        return True
