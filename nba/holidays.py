"""Days without contact: one-off dates, and public holidays that come back every year.

A contact policy lists a channel's public holidays as rules, not as one year's dates, so
they hold in every year: ``"MM-DD"`` is the same date each year (``"07-14"``), and
``"easter+N"`` is N days after Western (Gregorian) Easter Sunday (``"easter+1"``, Easter
Monday; ``"easter+39"``, Ascension; ``"easter+50"``, Whit Monday). One-off dates
(``2026-12-24``) may be added beside them.

>>> french = ExcludedDays.parse(["01-01", "easter+1", "05-01", "easter+39", "07-14"])
>>> dt.date(2027, 7, 14) in french, dt.date(2027, 3, 29) in french  # Easter Monday 2027
(True, True)
>>> dt.date(2026, 4, 6) in french, dt.date(2026, 4, 7) in french  # Easter Monday 2026
(True, False)
>>> easter_sunday(2030).isoformat()
'2030-04-21'
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

_ANNUAL = re.compile(r"^(\d{2})-(\d{2})$")
_EASTER = re.compile(r"^easter\s*(?:([+-])\s*(\d{1,3}))?$", re.IGNORECASE)


#: France's public holidays (Code du travail, L3133-1): the days marketing calls rest.
FRENCH_PUBLIC_HOLIDAYS: tuple[str, ...] = (
    "01-01",  # New Year's Day
    "easter+1",  # Easter Monday
    "05-01",  # Labour Day
    "05-08",  # Victory in Europe Day
    "easter+39",  # Ascension
    "easter+50",  # Whit Monday
    "07-14",  # Bastille Day
    "08-15",  # Assumption
    "11-01",  # All Saints' Day
    "11-11",  # Armistice Day
    "12-25",  # Christmas
)


@functools.lru_cache(maxsize=512)
def easter_sunday(year: int) -> dt.date:
    """Western Easter Sunday of ``year`` (the anonymous Gregorian algorithm, as in
    Meeus, *Astronomical Algorithms*)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


@dataclass(frozen=True, slots=True)
class ExcludedDays:
    """Dates, yearly dates (month, day) and days counted from Easter Sunday."""

    dates: frozenset[dt.date] = frozenset()
    annual: frozenset[tuple[int, int]] = frozenset()
    easter_offsets: frozenset[int] = frozenset()

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, dt.date):
            return False
        if day in self.dates or (day.month, day.day) in self.annual:
            return True
        return bool(self.easter_offsets) and (
            (day - easter_sunday(day.year)).days in self.easter_offsets
        )

    def __bool__(self) -> bool:
        return bool(self.dates or self.annual or self.easter_offsets)

    @classmethod
    def parse(cls, holidays: Iterable[str] = (), dates: Iterable[dt.date] = ()) -> ExcludedDays:
        """The days of ``holidays`` (``"MM-DD"``, ``"easter+N"``) and ``dates``; a
        :class:`ValueError` names an entry that is neither."""
        annual: set[tuple[int, int]] = set()
        offsets: set[int] = set()
        for entry in holidays:
            rule = parse_holiday(entry)
            if isinstance(rule, int):
                offsets.add(rule)
            else:
                annual.add(rule)
        return cls(frozenset(dates), frozenset(annual), frozenset(offsets))


def parse_holiday(entry: str) -> tuple[int, int] | int:
    """A holiday rule: ``(month, day)`` for ``"MM-DD"``, days after Easter Sunday for
    ``"easter+N"``."""
    text = str(entry).strip()
    annual = _ANNUAL.match(text)
    if annual:
        month, day = int(annual.group(1)), int(annual.group(2))
        try:
            dt.date(2024, month, day)  # a leap year: 02-29 is a date
        except ValueError:
            raise ValueError(f"holiday {text!r}: no such day of the year") from None
        return month, day
    easter = _EASTER.match(text)
    if easter:
        sign, days = easter.group(1), easter.group(2)
        return 0 if days is None else int(days) * (-1 if sign == "-" else 1)
    raise ValueError(
        f"holiday {text!r}: expected MM-DD (every year) or easter+N (N days after Easter "
        "Sunday, e.g. easter+1 for Easter Monday)"
    )
