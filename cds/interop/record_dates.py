"""Dates in a FHIR record: partial birth dates (``YYYY``, ``YYYY-MM``, which FHIR allows) and ages from them.

A partial birth date stands for every day it covers. The age at a date is then a range; when the range is one
year wide the age used is the one at the middle of the possible birth dates, and the result says it is approximate
and gives both bounds. An age is never taken from a birth date after the evaluation date.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Age:
    """An age in whole years, its bounds, and how the birth date was written."""

    years: int
    low: int
    high: int
    birth_date: str

    @property
    def approximate(self) -> bool:
        """The birth date is partial and the age could be either bound."""
        return self.low != self.high

    def note(self, as_of: dt.date) -> str:
        """The sentence a result carries when the age is approximate."""
        return (f"age is approximate: birthDate {self.birth_date!r} gives {self.low}-{self.high} years at "
                f"{as_of.isoformat()}; {self.years} (at the middle of the possible birth dates) was used")


def birth_range(born: dt.date | str | None) -> tuple[dt.date, dt.date] | None:
    """The first and last day a birth date may stand for, or ``None`` when it is absent or not a date."""
    if born is None:
        return None
    if isinstance(born, dt.date):
        return born, born
    text = str(born).strip()
    year, _, rest = text.partition("-")
    month, _, day = rest.partition("-")
    try:
        if day:
            exact = dt.date.fromisoformat(text[:10])
            return exact, exact
        if not (year.isdigit() and len(year) == 4 and int(year) >= 1):
            return None
        if month:
            first = dt.date(int(year), int(month), 1)
            following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
            return first, following - dt.timedelta(days=1)
        return dt.date(int(year), 1, 1), dt.date(int(year), 12, 31)
    except ValueError:
        return None


def years_between(born: dt.date, as_of: dt.date) -> int:
    """Whole years from ``born`` to ``as_of``."""
    return as_of.year - born.year - ((as_of.month, as_of.day) < (born.month, born.day))


def age_at(born: dt.date | str | None, as_of: dt.date) -> Age | None:
    """The age at ``as_of``, bounded when the birth date is partial; ``None`` when unknown or born after ``as_of``."""
    span = birth_range(born)
    if span is None:
        return None
    first, last = span
    if first > as_of:
        return None
    last = min(last, as_of)
    middle = first + (last - first) / 2
    return Age(years_between(middle, as_of), years_between(last, as_of), years_between(first, as_of),
               born.isoformat() if isinstance(born, dt.date) else str(born))


def instant(value: object) -> dt.datetime | None:
    """A FHIR ``dateTime`` or ``instant`` (as fhir.resources parses it) as a UTC-aware datetime.

    A date is taken as its midnight UTC, a naive time as UTC; anything else is ``None``.
    """
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    return None
