"""arXiv's announcement schedule: the listing day a paper gets from when it was submitted.

The arXiv API gives a paper's first-version time (``<published>``) but no listing day; the
RSS listings and Hugging Face give the true one. Without a day a paper is in no listing, no
day view and no archive feed, so API records carry the day the schedule gives, marked as an
estimate (``Paper.listed_on_estimated``); ``bridge.merge`` lets a true day replace it.

The schedule (https://info.arxiv.org/help/availability.html): the submission deadline is
14:00 US Eastern time on weekdays, and what arrived by it is announced that evening at 20:00,
except that Friday's is announced on Sunday evening:

    submitted (Eastern)        announced        listing day (RSS pubDate, HF)
    Mon 14:00 – Tue 14:00      Tue 20:00        Wednesday
    Tue 14:00 – Wed 14:00      Wed 20:00        Thursday
    Wed 14:00 – Thu 14:00      Thu 20:00        Friday
    Thu 14:00 – Fri 14:00      Sun 20:00        Monday
    Fri 14:00 – Mon 14:00      Mon 20:00        Tuesday

The listing day is the day after the announcing evening: arXiv dates a mailing by the next
morning, and its RSS feed, rebuilt at midnight Eastern, carries that day as ``pubDate``. So a
weekday submission before the deadline is listed on the next weekday.

Left out on purpose: arXiv's holidays (a handful of days a year when nothing is announced and
the mailing moves to the next announcing day; the estimate is then a day or two early until a
true day replaces it) and older schedules (the deadline was 16:00 before 2013 or so).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["DEADLINE", "EASTERN", "listing_day"]

EASTERN = ZoneInfo("America/New_York")
DEADLINE = time(14, 0)


def _next_weekday(day: date) -> date:
    day += timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def listing_day(submitted: datetime) -> date:
    """The listing day of a paper submitted at ``submitted`` (timezone-aware; a naive time is
    taken as UTC, as the API's times are)."""
    if submitted.tzinfo is None:
        submitted = submitted.replace(tzinfo=UTC)
    local = submitted.astimezone(EASTERN)
    # The weekday whose deadline the submission makes: its own day if before 14:00 Eastern.
    day = local.date()
    if day.weekday() >= 5 or local.time() >= DEADLINE:
        day = _next_weekday(day)
    # Friday's submissions are announced on Sunday evening: listed on Monday, the next
    # weekday, like every other day's.
    return _next_weekday(day)
