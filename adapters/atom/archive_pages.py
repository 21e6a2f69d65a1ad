"""The archive as pages: the front page's newest papers and the day, week and month listings.

Everything here reads the store through ``bridge.store.listing`` (every paper, however it
arrived) and is blocking: the routes run it in a thread, behind the render cache. Bad input
raises ``PageError`` with the status and a sentence naming what was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import urlencode

from adapters.atom import page
from adapters.atom.cards import to_card
from adapters.atom.catalog import FeedSpec
from adapters.atom.entries import entry_updated
from adapters.atom.periods import BadPeriod, Period, parse_period, period_of
from bridge.models import StoredPaper
from bridge.store import Store
from bridge.store.listing import ListingCursor, ListingSort

# Cards per page of the front page and of a listing.
PAGE_SIZE = 30
# A month of arXiv is some tens of thousands of papers; nobody pages past this, and an OFFSET
# beyond it would only cost the database.
MAX_PAGE = 250
_CURSOR = re.compile(r"(\d{4}-\d{2}-\d{2})\.(\d{1,18})")
SORT_LABELS = {
    ListingSort.UPVOTES: "Upvotes",
    ListingSort.NEWEST: "Newest",
    ListingSort.TITLE: "Title",
}


class PageError(Exception):
    """A page request that cannot be answered: ``status`` (400 or 404) and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_cursor(text: str | None) -> ListingCursor | None:
    """``?after=2024-08-01.1234`` (a listing day and a stored paper's seq): where the front
    page goes on; PageError naming the value when it is not one."""
    if text is None:
        return None
    match = _CURSOR.fullmatch(text)
    day: date | None = None
    if match:
        try:
            day = date.fromisoformat(match.group(1))
        except ValueError:
            day = None
    if match is None or day is None:
        raise PageError(
            400, f"bad cursor after={text[:40]!r}: use the Older link (after=YYYY-MM-DD.NUMBER)"
        )
    return ListingCursor(day, int(match.group(2)))


def cursor_text(cursor: ListingCursor) -> str:
    return f"{cursor.listed_on.isoformat()}.{cursor.seq}"


def parse_sort(text: str | None) -> ListingSort:
    if text is None:
        return ListingSort.UPVOTES
    try:
        return ListingSort(text)
    except ValueError:
        choices = ", ".join(s.value for s in ListingSort)
        raise PageError(400, f"unknown sort {text[:40]!r}: use one of {choices}") from None


def parse_page(text: str | None) -> int:
    if text is None:
        return 1
    try:
        number = int(text)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_PAGE:
        raise PageError(400, f"bad page {text[:20]!r}: a page is a number from 1 to {MAX_PAGE}")
    return number


def period_for(store: Store, name: str | None) -> Period:
    """The period a path names; no name: the newest listing day (or today, when none)."""
    if name is None:
        return period_of("day", store.listings.latest_day() or date.today())
    try:
        return parse_period(name)
    except BadPeriod as exc:
        raise PageError(404, f"no such listing: {exc}") from None


@dataclass(frozen=True, slots=True)
class ListingRequest:
    """What one listing page shows, checked: the cache key of its rendered bytes."""

    period: Period
    sort: ListingSort
    page: int

    @classmethod
    def read(cls, period: Period, params: Mapping[str, str]) -> ListingRequest:
        return cls(period, parse_sort(params.get("sort")), parse_page(params.get("page")))

    def url(self, base: str, *, sort: ListingSort | None = None, page: int | None = None) -> str:
        sort = self.sort if sort is None else sort
        page = 1 if page is None else page
        query = {}
        if sort is not ListingSort.UPVOTES:
            query["sort"] = sort.value
        if page > 1:
            query["page"] = str(page)
        tail = f"?{urlencode(query)}" if query else ""
        return f"{base}/papers/{self.period.name}{tail}"


@dataclass(frozen=True, slots=True)
class PageBytes:
    body: bytes
    updated: datetime  # Last-Modified: when the newest paper shown was stored


def _updated(stored: Sequence[StoredPaper], empty_since: datetime) -> datetime:
    return max((entry_updated(paper) for paper in stored), default=empty_since)


def render_front(
    store: Store,
    feeds: Sequence[FeedSpec],
    after: ListingCursor | None,
    base: str,
    max_query_length: int,
    notice: page.HealthNotice,
    empty_since: datetime,
) -> PageBytes:
    """The front page (blocking): the feeds and a page of the newest papers by listing day,
    whatever way they arrived, with the Older link's keyset cursor."""
    # One more than shown: whether an Older page exists, without counting the archive.
    stored = store.listings.newest(PAGE_SIZE + 1, after=after)
    shown = stored[:PAGE_SIZE]
    next_url = None
    if len(stored) > PAGE_SIZE and (cursor := ListingCursor.after(shown[-1])) is not None:
        next_url = f"{base}/?{urlencode({'after': cursor_text(cursor)})}#newest"
    body = page.render_index(
        feeds,
        [to_card(paper) for paper in shown],
        base,
        max_query_length,
        notice,
        next_url=next_url,
        after=cursor_text(after) if after else None,
        latest=shown[0].paper.listed_on if shown and after is None else None,
    )
    return PageBytes(body, _updated(shown, empty_since))


def render_listing(
    store: Store,
    request: ListingRequest,
    base: str,
    max_query_length: int,
    empty_since: datetime,
) -> PageBytes:
    """One listing page (blocking). PageError when the page is past the last one."""
    period, listings = request.period, store.listings
    total = listings.count_in_period(period.first, period.last)
    pages = max(1, -(-total // PAGE_SIZE))
    if request.page > pages:
        raise PageError(
            404, f"page {request.page} is past the last page of {period.name} ({pages})"
        )
    stored = listings.in_period(
        period.first,
        period.last,
        sort=request.sort,
        limit=PAGE_SIZE,
        offset=(request.page - 1) * PAGE_SIZE,
    )
    before, after = listings.days_around(period.first, period.last)
    sorts = [
        (label, request.url(base, sort=sort), sort is request.sort)
        for sort, label in SORT_LABELS.items()
    ]
    body = page.render_listing(
        base=base,
        period=period,
        cards=[to_card(paper) for paper in stored],
        total=total,
        sorts=sorts,
        prev_period=period.containing(before) if before else None,
        next_period=period.containing(after) if after else None,
        prev_url=request.url(base, page=request.page - 1) if request.page > 1 else None,
        next_url=request.url(base, page=request.page + 1) if request.page < pages else None,
        page_number=request.page,
        max_query_length=max_query_length,
    )
    return PageBytes(body, _updated(stored, empty_since))
