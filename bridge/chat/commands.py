"""The ``/papers`` command language, the same on every chat platform.

::

    /papers QUERY                                search stored papers (QUERY in the query language)
    /papers search QUERY                         the same, for a query starting with a command word
    /papers subscribe QUERY [at HH:MM] [ZONE] [+quiet]
                                                 this channel gets the new matches each morning
    /papers unsubscribe NUMBER | QUERY | all     stop one (by its number in `list`), or all
    /papers list                                 this channel's subscriptions
    /papers now                                  post this channel's digest at once
    /papers top [today | week | month | DATE]    the most upvoted papers of that period
    /papers help                                 examples

Options of ``subscribe`` come after the query, in any order: ``at 7:30`` (also ``at 07:30``,
``at 7am``, ``at 6:45pm``, and ``at now`` for a post right after each poll), a time zone as an
IANA name in any case (``Europe/Berlin``, ``america/new_york``, ``UTC``; ``in`` may come first),
and ``+quiet`` to post a short note on mornings with nothing new. Anything that does not parse
raises ``ChatUsageError`` with a message meant for the person who typed it.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from bridge.delivery import IMMEDIATE
from bridge.errors import ChatUsageError, QueryError
from bridge.query import format_query_error, parse_query

SUBCOMMANDS = ("search", "subscribe", "unsubscribe", "list", "now", "top", "help")
# The periods ``/papers top`` takes besides a date (YYYY-MM-DD).
TOP_PERIODS = ("today", "week", "month")
QUIET_FLAG = "+quiet"


@dataclass(frozen=True, slots=True)
class Search:
    query: str
    page: int = 1


@dataclass(frozen=True, slots=True)
class Subscribe:
    query: str
    local_time: str | None = None  # "HH:MM" or "now"; None: the deployment's default time
    time_zone: str | None = None  # an IANA name; None: the channel's or deployment's zone
    all_quiet: bool = False


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    # A 1-based number from `list`, "all", or a subscription's query as typed.
    target: str


@dataclass(frozen=True, slots=True)
class ListSubscriptions:
    pass


@dataclass(frozen=True, slots=True)
class PostNow:
    pass


@dataclass(frozen=True, slots=True)
class Help:
    pass


@dataclass(frozen=True, slots=True)
class Top:
    """The most upvoted papers of ``period``: "today", "week", "month" or an ISO date."""

    period: str = "today"
    page: int = 1


Command = Search | Subscribe | Unsubscribe | ListSubscriptions | PostNow | Top | Help


def parse_command(text: str) -> Command:
    """What ``/papers <text>`` asks for. Raises ChatUsageError with a short explanation."""
    text = text.strip()
    if not text:
        return Help()
    word, _, rest = text.partition(" ")
    rest = rest.strip()
    verb = word.lower()
    if verb == "help" and not rest:
        return Help()
    if verb == "list" and not rest:
        return ListSubscriptions()
    if verb == "now" and not rest:
        return PostNow()
    if verb == "top":
        return Top(parse_period(rest))
    if verb == "search":
        if not rest:
            raise ChatUsageError("Search for what? Try `search generalization`.")
        return Search(checked_query(rest))
    if verb == "subscribe":
        return _subscribe(rest)
    if verb == "unsubscribe":
        if not rest:
            raise ChatUsageError(
                "Unsubscribe from what? Give its number from `list`, its query, or `all`."
            )
        return Unsubscribe(rest)
    # Anything else is a search: "/papers generalization", "/papers list decoding".
    return Search(checked_query(text))


def parse_period(text: str) -> str:
    """What ``/papers top`` takes: nothing (today), today, week, month or a date such as
    2024-08-01 -> its canonical spelling; ChatUsageError saying what is wrong otherwise."""
    value = text.strip().lower()
    shown = text.strip()[:40]  # echoed back: a period is short, a paste is not
    if not value:
        return "today"
    if value in TOP_PERIODS:
        return value
    if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", value):
        try:
            return date(*map(int, value.split("-"))).isoformat()
        except ValueError:
            raise ChatUsageError(
                f"`{shown}` is not a date in the calendar; write it like 2024-08-01."
            ) from None
    raise ChatUsageError(
        f"Top of what? `{shown}` is not a period: use `top today`, `top week`,"
        " `top month` or a date like `top 2024-08-01` (to search for the word, `search top …`)."
    )


def checked_query(query: str) -> str:
    """``query`` if it parses, else ChatUsageError saying where it does not (platforms whose
    commands carry the query in an option of its own call this directly)."""
    try:
        parse_query(query)
    except QueryError as exc:
        raise ChatUsageError(f"That query does not parse: {format_query_error(exc)}") from None
    return query


def _subscribe(rest: str) -> Subscribe:
    words = rest.split()
    local_time: str | None = None
    zone: str | None = None
    quiet = False
    # Options are read off the end; the first word that is not one ends them.
    while words:
        last = words[-1]
        if last.lower() == QUIET_FLAG and not quiet:
            quiet = True
            words.pop()
            continue
        if zone is None and _looks_like_zone(last):
            zone = parse_time_zone(last)
            words.pop()
            if words and words[-1].lower() == "in":
                words.pop()
            continue
        if (
            local_time is None
            and len(words) >= 2
            and words[-2].lower() == "at"
            and (last[:1].isdigit() or last.lower() == IMMEDIATE)  # "look at this" is a query
        ):
            local_time = parse_time_of_day(last)
            del words[-2:]
            continue
        if local_time is None and len(words) >= 3 and words[-3].lower() == "at":
            # "at 7 am": a time in two words.
            joined = words[-2] + words[-1]
            if re.fullmatch(r"\d{1,2}(:\d{2})?(am|pm)", joined, re.IGNORECASE):
                local_time = parse_time_of_day(joined)
                del words[-3:]
                continue
        break
    query = " ".join(words)
    if not query:
        raise ChatUsageError(
            "Subscribe to what? Try `subscribe generalization at 08:00 Europe/Berlin`."
        )
    return Subscribe(checked_query(query), local_time, zone, quiet)


_TIME = re.compile(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?", re.IGNORECASE)


def parse_time_of_day(text: str) -> str:
    """``7:30``, ``07:30``, ``7am``, ``6:45pm``, ``19`` -> "HH:MM"; ``now`` -> "now"."""
    value = text.strip()
    if value.lower() == IMMEDIATE:
        return IMMEDIATE
    m = _TIME.fullmatch(value)
    if m:
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        suffix = (m.group(3) or "").lower()
        if suffix:
            if not 1 <= hour <= 12:
                hour = -1
            else:
                hour = hour % 12 + (12 if suffix == "pm" else 0)
        if 0 <= hour <= 23 and 0 <= minute <= 59 and (m.group(2) or suffix or len(value) <= 2):
            return f"{hour:02d}:{minute:02d}"
    raise ChatUsageError(f"`{text}` is not a time of day: write it like 08:00, 7:30 or 7am.")


@lru_cache(maxsize=1)
def _zones() -> dict[str, str]:
    """Every IANA zone name, by its lower-case spelling."""
    return {name.lower(): name for name in zoneinfo.available_timezones()}


@lru_cache(maxsize=1)
def _regions() -> frozenset[str]:
    """The first parts of zone names ("europe", "america", ...), lower-case."""
    return frozenset(name.split("/")[0] for name in _zones() if "/" in name)


def _looks_like_zone(word: str) -> bool:
    """UTC, GMT or a Region/City name, known or misspelt ("Europe/Berln": an error beats a
    silent query word). Bare zone names such as Japan or Cuba, and other words with a slash
    ("encoder/decoder"), are query words."""
    lower = word.lower()
    return lower in ("utc", "gmt") or ("/" in lower and lower.split("/")[0] in _regions())


def parse_time_zone(text: str) -> str:
    """An IANA zone name in any case -> its canonical spelling; ChatUsageError if unknown."""
    name = _zones().get(text.strip().lower())
    if name is None:
        raise ChatUsageError(
            f"`{text}` is not a time zone I know: use an IANA name such as Europe/Berlin,"
            " America/New_York or UTC."
        )
    return name
