"""The archive by listing day, on SQLite and on PostgreSQL: newest first, periods, neighbours."""

from __future__ import annotations

from datetime import date

from bridge.models import Paper
from bridge.store import Store
from bridge.store.listing import ListingCursor, ListingSort


def paper(arxiv_id: str, day: date | None, upvotes: int | None = None, title: str = "") -> Paper:
    return Paper(
        arxiv_id,
        title=title or f"Paper {arxiv_id}",
        abstract="An abstract.",
        authors=("Ada Author",),
        source="hf",
        listed_on=day,
        upvotes=upvotes,
    )


def ids(papers: list) -> list[str]:
    return [stored.paper.arxiv_id for stored in papers]


def test_newest_pages_by_listing_day_then_arrival(store: Store) -> None:
    # Stored out of day order, as a backfill after a poll stores them, and never announced.
    store.add_papers([paper("2408.00002", date(2024, 8, 2)), paper("2408.00003", date(2024, 8, 2))])
    store.add_papers(
        [paper("2407.00001", date(2024, 7, 31)), paper("2408.00009", date(2024, 8, 5))]
    )
    store.add_papers([paper("2408.00004", date(2024, 8, 2)), paper("2400.00000", None)])

    first = store.listings.newest(3)
    assert ids(first) == ["2408.00009", "2408.00004", "2408.00003"]
    cursor = ListingCursor.after(first[-1])
    assert ids(store.listings.newest(3, after=cursor)) == ["2408.00002", "2407.00001"]


def test_a_period_sorts_by_upvotes_newest_or_title(store: Store) -> None:
    store.add_papers(
        [
            paper("2408.00001", date(2024, 8, 1), upvotes=5, title="beta"),
            paper("2408.00002", date(2024, 8, 1), upvotes=40, title="Alpha"),
            paper("2408.00003", date(2024, 8, 2), upvotes=None, title="gamma"),
            paper("2408.00004", date(2024, 8, 3), upvotes=0, title="delta"),
            paper("2408.00005", date(2024, 8, 9), upvotes=99, title="outside"),
        ]
    )
    first, last = date(2024, 8, 1), date(2024, 8, 3)
    listings = store.listings
    assert ids(listings.in_period(first, last)) == [
        "2408.00002",
        "2408.00001",
        "2408.00004",
        "2408.00003",
    ]
    newest = listings.in_period(first, last, sort=ListingSort.NEWEST)
    assert ids(newest) == ["2408.00004", "2408.00003", "2408.00002", "2408.00001"]
    by_title = listings.in_period(first, last, sort=ListingSort.TITLE)
    assert [p.paper.title for p in by_title] == ["Alpha", "beta", "delta", "gamma"]
    assert ids(listings.in_period(first, last, limit=2, offset=2)) == ["2408.00004", "2408.00003"]
    assert listings.count_in_period(first, last) == 4


def test_neighbouring_days_skip_empty_ones(store: Store) -> None:
    assert store.listings.latest_day() is None
    assert store.listings.days_around(date(2024, 8, 5), date(2024, 8, 5)) == (None, None)
    store.add_papers(
        [
            paper("2408.00001", date(2024, 8, 1)),
            paper("2408.00005", date(2024, 8, 5)),
            paper("2408.00009", date(2024, 8, 9)),
        ]
    )
    assert store.listings.days_around(date(2024, 8, 5), date(2024, 8, 5)) == (
        date(2024, 8, 1),
        date(2024, 8, 9),
    )
    assert store.listings.days_around(date(2024, 8, 2), date(2024, 8, 8)) == (
        date(2024, 8, 1),
        date(2024, 8, 9),
    )
    assert store.listings.latest_day() == date(2024, 8, 9)
