"""Listing-day conditions of a query (``date:2024-08``, ``date>=2025-01-01``) as day ranges.

A period is a year (``2024``), a month (``2024-08``) or a day (``2024-08-01``). Every
condition becomes one half-open range of days ``[since, before)``, either end open (None):

    date:2024-08            [2024-08-01, 2024-09-01)
    date:2024-01..2024-06   [2024-01-01, 2024-07-01)   both ends' periods included
    date:2024-03..          [2024-03-01, open)         and ..2024-03: [open, 2024-04-01)
    date>=2025-01-01        [2025-01-01, open)         > starts after the period,
    date<2024               [open, 2024-01-01)         <= ends after it, = is the period

One range, so the percolator (``bridge.query.evaluate``) and the index (a SQL condition on
``papers.listed_on``) test the very same two comparisons. ``DateSpecError`` says what is wrong
with a spec; the parser turns it into a QueryError at the right position.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date

__all__ = ["DateSpecError", "comparison_range", "date_range", "intersection"]

_PERIOD = re.compile(r"([0-9]{4})(?:-([0-9]{2})(?:-([0-9]{2}))?)?", re.ASCII)
_FORMS = (
    "write YYYY, YYYY-MM or YYYY-MM-DD (e.g. date:2024-08), or a range like date:2024-01..2024-06"
)


class DateSpecError(ValueError):
    """A date condition that does not parse; ``offset`` is where in the spec."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def _period(text: str, offset: int) -> tuple[date, date | None]:
    """(first day, day after the last) of a year, month or day; None after 9999-12-31."""
    m = _PERIOD.fullmatch(text)
    if m is None:
        shown = f"'{text}'" if text else "nothing"
        raise DateSpecError(f"bad date {shown}: {_FORMS}", offset)
    year, month, day = int(m[1]), m[2], m[3]
    try:
        if day is not None:
            first = date(year, int(month), int(day))
        elif month is not None:
            first = date(year, int(month), 1)
        else:
            first = date(year, 1, 1)
    except ValueError:
        raise DateSpecError(f"no such date '{text}'", offset) from None
    try:
        if day is not None:
            after = date.fromordinal(first.toordinal() + 1)
        elif month is not None:
            after = date(year + (first.month == 12), first.month % 12 + 1, 1)
        else:
            after = date(year + 1, 1, 1)
    except (ValueError, OverflowError):
        return first, None
    return first, after


def date_range(spec: str) -> tuple[date | None, date | None]:
    """``[since, before)`` of ``date:<spec>``: a period or a range ``A..B``, ``A..``, ``..B``."""
    if ".." not in spec:
        return _period(spec, 0)
    low, high = spec.split("..", 1)
    if not low and not high:
        raise DateSpecError(f"a date range needs a start or an end: {_FORMS}", 0)
    since = _period(low, 0)[0] if low else None
    before = _period(high, len(low) + 2)[1] if high else None
    if since is not None and before is not None and before <= since:
        raise DateSpecError(f"the date range {spec} ends before it starts", 0)
    return since, before


def comparison_range(op: str, spec: str) -> tuple[date | None, date | None]:
    """``[since, before)`` of ``date<op><spec>``: the comparison applied to a whole period."""
    first, after = _period(spec, 0)
    if op == "=":
        return first, after
    if op == ">=":
        return first, None
    if op == ">":
        if after is None:
            raise DateSpecError(f"no day is after {spec}", 0)
        return after, None
    if op == "<":
        return None, first
    return None, after  # <=


def intersection(
    ranges: Iterable[tuple[date | None, date | None]],
) -> tuple[date | None, date | None]:
    """``[since, before)`` of the days in every one of ``ranges``: the latest start and the
    earliest end (None: open). A day meets several conditions ANDed exactly when it is in it."""
    since: date | None = None
    before: date | None = None
    for start, end in ranges:
        if start is not None and (since is None or start > since):
            since = start
        if end is not None and (before is None or end < before):
            before = end
    return since, before
