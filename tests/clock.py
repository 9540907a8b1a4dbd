"""Dates relative to the day a test runs, read when the test runs and never when its module is imported.

A module-level ``TODAY`` is read at collection: on a run that crosses midnight (UTC), a test then gives
yesterday's date to code that compares it with today's, and fails for a reason that is not a defect. Read
``today()`` after the rows the test creates, so that the date is never before them nor after the code's today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any


def today() -> date:
    """Today's date in UTC, the day every command of the project compares dates with."""
    return datetime.now(UTC).date()


def in_days(days: int) -> date:
    """The date ``days`` from today (negative: in the past)."""
    return today() + timedelta(days=days)


@dataclass(frozen=True)
class InDays:
    """A date in a test's parameters, as days from the day the test runs (resolved by :func:`dated`)."""

    days: int

    def __repr__(self) -> str:
        return f"today{self.days:+d}d"


def dated(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with each :class:`InDays` replaced by its date, read now."""
    return {key: in_days(value.days) if isinstance(value, InDays) else value for key, value in values.items()}
