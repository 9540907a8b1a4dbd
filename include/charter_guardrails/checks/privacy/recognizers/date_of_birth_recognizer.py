"""DATE_OF_BIRTH: a date that says it is a birth date, in text or as a whole column.

A date alone is not personal data; a birth date is (with a postcode and a sex it singles out most
people). Nothing in ``12/03/1985`` says which it is, so the evidence comes from around the date:

- **in text**, the words before it: :class:`DateOfBirthRecognizer` matches "né le 12/03/1985",
  "date de naissance : 1985-03-12", "DOB 12.03.1985" (the wording is part of the match, so the
  scanner and Presidio's analyzer agree on it without context enhancement);
- **in a column**, the column as a whole (:func:`birth_date_finding`): a column named for a birth
  date (``date_naissance``, ``dob``, ``birth_date``...) whose values are dates, or a column whose
  values all look like adults' birth dates (every date 18 to 110 years before today, spread over
  many distinct days). That is a property of the set of values, not of one value: no recognizer can
  see it, so it is a column-level rule that the scanner applies to ``scan_column``'s result. A
  per-value recognizer boosted by the column name would instead make every date of every other
  column a low-score suspect.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

from presidio_analyzer import Pattern

from charter_guardrails.checks.privacy.recognizers._base import CheckedPatternRecognizer

if TYPE_CHECKING:
    from charter_guardrails.checks.privacy.report import EntityFinding, ScanOptions

ENTITY = "DATE_OF_BIRTH"
_MONTHS = {
    "janvier": 1,
    "février": 2,
    "fevrier": 2,
    "mars": 3,
    "avril": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "août": 8,
    "aout": 8,
    "septembre": 9,
    "octobre": 10,
    "novembre": 11,
    "décembre": 12,
    "decembre": 12,
}
_MONTH_NAMES = "|".join(_MONTHS)
#: Written dates: day/month/year (``/``, ``.`` or ``-``), ISO ``year-month-day``, "12 mars 1985".
_DATE_TEXT = (
    rf"\d{{1,2}}[/.\-]\d{{1,2}}[/.\-](?:19|20)\d{{2}}|(?:19|20)\d{{2}}-\d{{1,2}}-\d{{1,2}}"
    rf"|\d{{1,2}}(?:er)? (?:{_MONTH_NAMES}) (?:19|20)\d{{2}}"
)
_BIRTH_WORDS = (
    r"n[ée]e? le|n[ée]\(e\) le|date de naissance|naissance|dob|date of birth|birth ?date|born(?: on)?"
    r"|geboren am|nacido el|nacida el|nato il|nata il"
)
_DMY = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})")
_YMD = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_LONG = re.compile(rf"(\d{{1,2}})(?:er)? ({_MONTH_NAMES}) (\d{{4}})", re.IGNORECASE)
#: A whole cell holding one date: ISO (with an optional time), day/month/year, or ``YYYYMMDD``.
_CELL = re.compile(
    r"\s*(?:(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+\-]\d{2}:?\d{2})?)?"
    r"|(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})|(\d{4})(\d{2})(\d{2}))\s*"
)
#: Column names that say "birth" (normalised: lower case, no accents, ``_-./`` as spaces).
_BIRTH_COLUMN = re.compile(
    r"naissance|birth|geburt|nacimiento|nascita|(?<![a-z])(?:dob|ddn|ne le|nee le|born)(?![a-z])"
)
#: Oldest plausible birth date, and the age span of the adults' rule.
MAX_AGE, ADULT_MIN_AGE, ADULT_MAX_AGE = 120, 18, 110
#: Share of the non-empty rows that must hold a date, values read before giving up on a column,
#: distinct days the adults' rule needs.
DATE_SHARE, PROBE, MIN_DISTINCT_DAYS = 0.9, 50, 30
#: Scores: a birth-date column name and dates; dates that look like adults' birth dates, no name.
NAMED_SCORE, VALUES_SCORE = 0.9, 0.6


def years_before(today: datetime.date, years: int) -> datetime.date:
    """The same day ``years`` years earlier (28 February for 29 February)."""
    try:
        return today.replace(year=today.year - years)
    except ValueError:
        return today.replace(year=today.year - years, day=28)


def _date(year: str, month: str | int, day: str) -> datetime.date | None:
    try:
        return datetime.date(int(year), int(month), int(day))
    except ValueError:
        return None


def date_in_text(text: str) -> datetime.date | None:
    """The date written in ``text`` (the first one), or ``None`` if it is not a calendar date."""
    if match := _DMY.search(text):
        return _date(match.group(3), match.group(2), match.group(1))
    if match := _YMD.search(text):
        return _date(match.group(1), match.group(2), match.group(3))
    if match := _LONG.search(text):
        return _date(match.group(3), _MONTHS[match.group(2).lower()], match.group(1))
    return None


def cell_date(value: str) -> datetime.date | None:
    """The date a whole cell holds, or ``None``."""
    match = _CELL.fullmatch(value)
    if match is None:
        return None
    g = match.groups()
    year, month, day = (g[0], g[1], g[2]) if g[0] else (g[5], g[4], g[3]) if g[5] else (g[6], g[7], g[8])
    return _date(year, month, day)


class DateOfBirthRecognizer(CheckedPatternRecognizer):
    """Birth wording ("né le", "née le", "date de naissance", "DOB", "born on", ...) then a date.

    The check: the date exists in the calendar, is not in the future and not more than 120 years
    ago; "né le 31/02/1985" is a suspect. No checksum: a valid one keeps 0.75.
    """

    ENTITY = ENTITY
    PATTERNS: ClassVar[list[Pattern]] = [
        Pattern(
            "birth wording and a date",
            rf"(?<![\w])(?:{_BIRTH_WORDS})\s?:?\s?(?:{_DATE_TEXT})(?![\w]|[/.\-]\d)",
            0.75,
        )
    ]
    CONTEXT: ClassVar[list[str]] = ["naissance", "né", "née", "birth", "dob"]

    def checked_text(self, text: str) -> str:
        return text

    def checksum(self, compact: str) -> bool | None:
        born = date_in_text(compact)
        today = datetime.date.today()
        return born is not None and years_before(today, MAX_AGE) <= born <= today


def birth_date_finding(
    name: str,
    values: Sequence[str],
    counts: Sequence[int],
    rows: int,
    max_examples: int = 3,
    today: datetime.date | None = None,
) -> EntityFinding | None:
    """``DATE_OF_BIRTH`` for a column of dates whose name says birth (score 0.9), or whose dates all
    lie 18 to 110 years back over at least 30 distinct days (0.6); ``None`` otherwise.

    ``values`` are the column's distinct non-empty values and ``counts`` their rows; ``rows`` the
    rows scanned. A column must hold dates in 90 % of its non-empty rows; its first 50 values
    decide whether it is worth reading at all.
    """
    from charter_guardrails.checks.privacy.detector import normalise_context
    from charter_guardrails.checks.privacy.masking import mask
    from charter_guardrails.checks.privacy.report import EntityFinding

    probe = values[:PROBE]
    if not probe or sum(cell_date(v) is not None for v in probe) < DATE_SHARE * len(probe):
        return None
    today = today or datetime.date.today()
    dated = [(v, c, d) for v, c in zip(values, counts, strict=True) if (d := cell_date(v)) is not None]
    if sum(c for _, c, _ in dated) < DATE_SHARE * sum(counts):
        return None
    if _BIRTH_COLUMN.search(normalise_context(name)):
        score = NAMED_SCORE
        born = [(v, c) for v, c, d in dated if years_before(today, MAX_AGE) <= d <= today]
    else:
        oldest, youngest = years_before(today, ADULT_MAX_AGE), years_before(today, ADULT_MIN_AGE)
        if len({d for _, _, d in dated}) < MIN_DISTINCT_DAYS or not all(oldest <= d <= youngest for _, _, d in dated):
            return None
        score = VALUES_SCORE
        born = [(v, c) for v, c, _ in dated]
    count = sum(c for _, c in born)
    if not count:
        return None
    examples: list[str] = []
    for value, _ in born:
        if len(examples) >= max_examples:
            break
        if (example := mask(value, ENTITY)) not in examples:
            examples.append(example)
    return EntityFinding(ENTITY, count, count / rows if rows else 0.0, score, score, examples)


def column_rules(
    name: str, values: Sequence[str], counts: Sequence[int], rows: int, options: ScanOptions, found: set[str]
) -> tuple[list[EntityFinding], list[EntityFinding]]:
    """The findings and suspects of the column-level rules for a column whose per-value ``found``
    entities are known: a birth-date column, unless its values already said so."""
    if ENTITY in found:
        return [], []
    finding = birth_date_finding(name, values, counts, rows, options.max_examples)
    if finding is None:
        return [], []
    return ([finding], []) if finding.max_score >= options.min_score else ([], [finding])
