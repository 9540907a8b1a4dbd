"""Masking of personal values in what the governance view shows (defence in depth).

The ledger holds no raw personal value; these functions catch a check that would leak one into a
summary or an evidence string, so that no page or report ever shows it.
"""

from __future__ import annotations

import re
from typing import Any

_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\d*])(?:\+33\s?|0)[1-9](?:[\s.-]?\d{2}){4}(?!\d)")
_NIR = re.compile(
    r"(?<![\d*])[12]\s?\d{2}\s?(?:0[1-9]|1[0-2]|[2-9]\d)\s?(?:\d{2}|2[AB])\s?\d{3}\s?\d{3}(?:\s?\d{2})?(?!\d)"
)
_IBAN = re.compile(r"\bFR\d{2}(?:\s?[0-9A-Z]{4}){5}\s?[0-9A-Z]{3}\b")


def _mask_digits(match: re.Match[str]) -> str:
    value = match.group(0)
    digits = [i for i, c in enumerate(value) if c.isdigit()]
    keep = set(digits[:2] + digits[-2:])
    return "".join(c if (not c.isdigit() or i in keep) else "*" for i, c in enumerate(value))


def mask_personal_values(text: str) -> str:
    """Mask e-mails, French phone numbers, NIR and IBAN in ``text`` (``06 ** ** ** 78``).

    The ledger never stores raw personal values; this catches a check that would leak one into
    a summary or an evidence string, so the UI never shows it.
    """
    if not text or not any(c.isdigit() or c == "@" for c in text):
        return text
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@***", text)
    text = _IBAN.sub(lambda m: m.group(0)[:4] + " **** **** ****", text)
    text = _NIR.sub(_mask_digits, text)
    return _PHONE.sub(_mask_digits, text)


def mask_tree(value: Any) -> Any:
    """:func:`mask_personal_values` applied to every string of a JSON tree."""
    if isinstance(value, str):
        return mask_personal_values(value)
    if isinstance(value, dict):
        return {str(k): mask_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_tree(v) for v in value]
    return value
