"""Cheap pre-filters that decide which values the Python recognizers must read.

Below :data:`~charter_guardrails.checks.privacy.detector.VECTORISE_FROM` distinct values, the combined
:data:`PREFILTER` decides per value; from there on, each recognizer pattern's RE2 over-approximation
(:func:`re2_superset`) runs over the whole column in Arrow (C++). Both may accept more values than
the patterns match, never fewer: they only save work.
"""

from __future__ import annotations

import re

#: Values that could match any recognizer go through all the patterns, the others through none: two
#: digits (most identifiers), ``@``, seven upper-case characters (CNI, codice fiscale), a plate, ``+`` and a
#: digit (phone numbers written ``+1 2 ...``), a digit, a dot and a digit (IPv4), hexadecimal digits around
#: a colon or ``::`` (IPv6), a street address.
PREFILTER = (
    r"\d\d|@|[0-9A-Z]{7}|[A-Z]{2}[- ]\d{3}|\+\d|\d\.\d|[0-9A-Fa-f]:[0-9A-Fa-f]|::"
    r"|\d(?: ?(?:bis|ter|[A-D]))?,? (?i:rue|av|bd|bo|ch|al|im|pl|co|qu|ro|tr|sq|pa|es|mo|lo|r[eé]|vo|se|fa)"
)
PREFILTER_RE = re.compile(PREFILTER)
#: Everything Python's ``\s`` matches in a ``str`` pattern, in RE2 syntax.
_RE2_SPACES = r"\t\n\x0b\f\r \x1c-\x1f\x{85}\p{Z}"
_LOOK_AROUNDS = ("(?=", "(?!", "(?<=", "(?<!")
#: Constructs RE2 lacks or reads differently: atomic groups, named back-references, conditionals.
_UNSUPPORTED_GROUPS = ("(?>", "(?P=", "(?(")


def re2_superset(regex: str, flags: int) -> str | None:
    r"""An RE2 regex that matches in every string where the Python ``regex`` does, or ``None``.

    It only filters (:meth:`Detector.plan`): a value it rejects cannot hold a match of the
    pattern; a value it accepts still goes through the Python pattern and its checksum. So the
    translation may accept more, never less:

    - look-arounds (``(?<!\w)``, ``(?=…)``), ``\b``, ``^``, ``$`` are dropped: they only restrict;
    - Python's Unicode classes get RE2 classes at least as wide: ``\d`` → ``\p{Nd}``,
      ``\w`` → ``[\p{L}\p{N}_]``, ``\s`` → every Unicode space; ``\uXXXX`` → ``\x{XXXX}``;
    - the flags become ``(?i)`` and ``(?s)``;
    - anything else RE2 might read differently (``\W``, ``\D``, ``\S``, back-references and octal
      escapes, ``{,n}``, POSIX-looking ``[:``, possessive or atomic groups, verbose mode), or a
      result RE2 does not compile: ``None``.
    """
    if "{," in regex or "[:" in regex or "(?x" in regex or flags & re.VERBOSE:
        return None
    body = _translate(regex)
    if body is None:
        return None
    result = ("(?i)" if flags & re.IGNORECASE else "") + ("(?s)" if flags & re.DOTALL else "") + body
    return result if _re2_compiles(result) else None


def _translate(regex: str) -> str | None:
    """The pattern of ``regex`` in RE2 syntax, without its restrictions; ``None`` if it cannot be translated."""
    out: list[str] = []
    i, n, in_class = 0, len(regex), False
    while i < n:
        c = regex[i]
        if c == "\\":
            escape = _escape(regex, i, in_class)
            if escape is None:
                return None
            text, i = escape
            out.append(text)
            continue
        if in_class:
            out.append(c)
            in_class = c != "]"
            i += 1
            continue
        if c == "[":
            i = _open_class(regex, i, out)
            in_class = True
            continue
        if regex.startswith(_LOOK_AROUNDS, i):
            i = _group_end(regex, i)
            continue
        if regex.startswith(_UNSUPPORTED_GROUPS, i) or (c in "*+?}" and regex[i + 1 : i + 2] == "+"):
            return None
        if c not in "^$":
            out.append(c)
        i += 1
    return "".join(out)


def _escape(regex: str, i: int, in_class: bool) -> tuple[str, int] | None:
    """The RE2 text of the escape at ``regex[i]`` and the index after it; ``None``: no safe translation."""
    nxt = regex[i + 1 : i + 2]
    if nxt == "d":
        return r"\p{Nd}", i + 2
    if nxt == "w":
        return (r"\p{L}\p{N}_" if in_class else r"[\p{L}\p{N}_]"), i + 2
    if nxt == "s":
        return (_RE2_SPACES if in_class else f"[{_RE2_SPACES}]"), i + 2
    if nxt in ("b", "B", "A", "Z") and not in_class:
        return "", i + 2  # an anchor only restricts
    if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", regex[i + 2 : i + 6]):
        return r"\x{" + regex[i + 2 : i + 6] + "}", i + 6
    if nxt.isalnum() and nxt not in "tnrfvx":
        return None
    return regex[i : i + 2], i + 2


def _open_class(regex: str, i: int, out: list[str]) -> int:
    """Copy the opening of the character class at ``regex[i]`` (``[``, ``[^``, a leading ``]``); the index after it."""
    out.append("[")
    i += 1
    if regex[i : i + 1] == "^":
        out.append("^")
        i += 1
    if regex[i : i + 1] == "]":
        out.append(r"\]")
        i += 1
    return i


def _re2_compiles(regex: str) -> bool:
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        pc.match_substring_regex(pa.array([""]), regex)
    except (ImportError, ValueError, TypeError):
        return False
    return True


def _group_end(regex: str, i: int) -> int:
    """Index just after the group that opens at ``regex[i]``."""
    depth, in_class = 0, False
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            i += 1 + (regex[i + 1 : i + 2] == "^")
            if regex[i : i + 1] == "]":
                i += 1
            continue
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced group in {regex!r}")
