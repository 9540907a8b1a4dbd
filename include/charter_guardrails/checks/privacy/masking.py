"""Masked examples for reports: enough to recognise the kind of value, never the value.

``06 12 34 56 78`` → ``06 ** ** ** 78``; NIR ``1 85 12 13 123 456 45`` → ``1 85 ** ** *** *** 45``;
``jean.dupont@exemple.fr`` → ``j***@e***.fr``; ``Jean Dupont`` → ``J*** D***``.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
#: Entities whose leading characters say nothing about the person (sex + birth year for a NIR,
#: the operator prefix for a phone) and may be kept for readability.
_KEEP_HEAD = {"FR_NIR": 3, "FR_PHONE": 2, "FR_SIRET": 2, "FR_SIREN": 2, "FR_IBAN": 4, "FR_VAT": 2, "FR_RIB": 2}
_NAMES = {"PERSON", "LOCATION"}


def mask(value: str, entity_type: str = "") -> str:
    """Mask ``value`` (one detected entity, not a whole cell)."""
    value = value.strip()
    if entity_type == "EMAIL_ADDRESS" or ("@" in value and entity_type in ("", "EMAIL_ADDRESS")):
        local, _, domain = value.partition("@")
        tld = domain.rsplit(".", 1)[-1] if "." in domain else ""
        return f"{local[:1]}***@{domain[:1]}***" + (f".{tld}" if tld and len(tld) <= 4 else "")
    if entity_type in _NAMES:
        return _WORD.sub(lambda m: m.group(0)[0] + "***", value)
    alnum = [i for i, c in enumerate(value) if c.isalnum()]
    head = _KEEP_HEAD.get(entity_type, 1)
    tail = 2
    if len(alnum) < head + tail + 6:  # short values: show one character at each end at most
        head, tail = (1, 1) if len(alnum) >= 6 else (0, 0)
    keep = set(alnum[:head]) | set(alnum[len(alnum) - tail :] if tail else [])
    return "".join(c if (i in keep or not c.isalnum()) else "*" for i, c in enumerate(value))
