"""The periods the listing pages show, as huggingface.co/papers has them: a day, a week, a month.

A period is named in the URL the way ISO 8601 writes it: ``2024-08-01`` (a day), ``2024-W31``
(an ISO week, Monday to Sunday), ``2024-08`` (a month). Anything else names no page.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Kind = Literal["day", "week", "month"]

_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_MONTH = re.compile(r"(\d{4})-(\d{2})")
# Nothing was listed before arXiv existed; years outside this are a typo, not a page.
FIRST_YEAR, LAST_YEAR = 1991, 9998


class BadPeriod(ValueError):
    """The URL names no day, week or month; the message says what was wrong."""


@dataclass(frozen=True, slots=True)
class Period:
    kind: Kind
    first: date
    last: date

    @property
    def name(self) -> str:
        """How the URL writes it."""
        if self.kind == "day":
            return self.first.isoformat()
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{self.first.year}-{self.first.month:02d}"

    @property
    def title(self) -> str:
        """How a heading says it."""
        if self.kind == "day":
            return self.first.strftime("%A, %d %B %Y")
        if self.kind == "week":
            year, week, _ = self.first.isocalendar()
            span = f"{self.first.strftime('%d %b')} – {self.last.strftime('%d %b %Y')}"
            return f"Week {week} of {year} ({span})"
        return self.first.strftime("%B %Y")

    def containing(self, day: date) -> Period:
        """The period of the same kind that holds ``day`` (where previous/next lead)."""
        return period_of(self.kind, day)

    def wider(self) -> list[Period]:
        """The week and month holding this period's first day, for links "up"."""
        order: list[Kind] = ["day", "week", "month"]
        return [period_of(kind, self.first) for kind in order[order.index(self.kind) + 1 :]]


def period_of(kind: Kind, day: date) -> Period:
    if kind == "day":
        return Period("day", day, day)
    if kind == "week":
        monday = day - timedelta(days=day.weekday())
        return Period("week", monday, monday + timedelta(days=6))
    last = calendar.monthrange(day.year, day.month)[1]
    return Period("month", day.replace(day=1), day.replace(day=last))


def parse_period(text: str) -> Period:
    """The period ``text`` names; BadPeriod saying why when it names none."""
    if match := _DAY.fullmatch(text):
        year, month, day = map(int, match.groups())
        _check_year(year, text)
        try:
            return period_of("day", date(year, month, day))
        except ValueError as exc:
            raise BadPeriod(f"{text} is not a date ({exc})") from None
    if match := _WEEK.fullmatch(text):
        year, week = map(int, match.groups())
        _check_year(year, text)
        try:
            return period_of("week", date.fromisocalendar(year, week, 1))
        except ValueError:
            raise BadPeriod(f"{year} has no week {week}") from None
    if match := _MONTH.fullmatch(text):
        year, month = map(int, match.groups())
        _check_year(year, text)
        if not 1 <= month <= 12:
            raise BadPeriod(f"{text}: there is no month {month}")
        return period_of("month", date(year, month, 1))
    raise BadPeriod(
        f"{text[:40]!r} names no listing: use a day (2024-08-01), a week (2024-W31)"
        " or a month (2024-08)"
    )


def _check_year(year: int, text: str) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise BadPeriod(f"{text}: no papers are listed in the year {year}")
