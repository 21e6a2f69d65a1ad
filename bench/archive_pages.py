"""Archive pages benchmark: what the front page, the day/week/month views and the search page's
upvotes sort cost over a synthetic store (1,000 papers per listing day, as bench/corpus.py
makes them).

Builds the store once into ``bench/out/search-<N>.db`` (bench/search.py's build, shared with
it; ``--rebuild`` forces a new one), then times ``--samples`` renders of each, called directly
(the route's render cache left out, so each is the full work), with the database's caches warm:

* the front page: its first page, and pages deep in the archive by keyset cursor;
* a day view (sorted by upvotes), a week view and a month view (about 30,000 papers), first
  page and the last page of the month (the deepest OFFSET a month's listing reads);
* ``search_store(..., order="upvotes")`` for common words (the 1,000-match pool sorted).

Each figure is the whole page's render (queries and HTML), as the route runs it in a thread.

    .venv/bin/python bench/archive_pages.py [--papers 100000] [--samples 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from search import OUT, build, query_sets  # noqa: E402

from adapters.atom.archive_pages import (  # noqa: E402
    PAGE_SIZE,
    ListingRequest,
    render_front,
    render_listing,
)
from adapters.atom.page import HealthNotice  # noqa: E402
from adapters.atom.periods import period_of  # noqa: E402
from bridge.search import search_store  # noqa: E402
from bridge.store import open_store  # noqa: E402
from bridge.store.listing import ListingCursor, ListingSort  # noqa: E402

BASE = "http://bench.test"
FIRST_DAY = date(2020, 1, 1)  # bench/corpus.py: listed_on = 2020-01-01 + n // 1000 days
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return (time.perf_counter() - start) * 1000


def report(name: str, times: list[float]) -> None:
    ordered = sorted(times)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(f"| {name} | {len(times)} | {p50:.1f} ms | {p99:.1f} ms | {ordered[-1]:.1f} ms |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    path = OUT / f"search-{args.papers}.db"
    if args.rebuild or not path.exists():
        print(f"building {args.papers:,} papers into {path} ...", file=sys.stderr)
        seconds = build(path, args.papers, args.workers)
        print(f"  built in {seconds:.0f} s", file=sys.stderr)
    store = open_store(f"sqlite:///{path}")
    days = args.papers // 1000
    samples = args.samples
    notice = HealthNotice()

    def listing(kind: str, day: date, sort: ListingSort, page: int = 1) -> object:
        period = period_of(kind, day)  # type: ignore[arg-type]
        return render_listing(store, ListingRequest(period, sort, page), BASE, 500, EPOCH)

    def day_at(i: int) -> date:
        return FIRST_DAY + timedelta(days=(i * 7919) % days)

    print(f"{args.papers:,} papers, {days} listing days; {samples} distinct requests each")
    print()
    print("| page | requests | p50 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    # Warm the database's caches once, as a running server has them.
    render_front(store, [], None, BASE, 500, notice, EPOCH)
    report(
        "front page, first page",
        [
            timed(lambda: render_front(store, [], None, BASE, 500, notice, EPOCH))
            for _ in range(samples)
        ],
    )
    cursors = [
        ListingCursor(day_at(i), 10**12) for i in range(samples)
    ]  # a day's papers start just after this cursor
    report(
        "front page, deep in the archive (keyset cursor)",
        [timed(lambda c=c: render_front(store, [], c, BASE, 500, notice, EPOCH)) for c in cursors],
    )
    for kind, label in (("day", "day view"), ("week", "week view"), ("month", "month view")):
        report(
            f"{label}, by upvotes, first page",
            [
                timed(lambda i=i, kind=kind: listing(kind, day_at(i), ListingSort.UPVOTES))
                for i in range(samples)
            ],
        )
    month = period_of("month", FIRST_DAY + timedelta(days=days // 2))
    in_month = store.listings.count_in_period(month.first, month.last)
    last_page = min(250, -(-in_month // PAGE_SIZE))
    report(
        f"month view ({in_month:,} papers), by title, page {last_page}",
        [
            timed(lambda: listing("month", month.first, ListingSort.TITLE, last_page))
            for _ in range(samples)
        ],
    )
    # Common words (in 2% to 60% of papers: hundreds to thousands of matches each), drawn as
    # bench/search.py draws them; each sorts its pool of the newest 1,000 matches by votes.
    common = query_sets(samples, args.papers)["common term"]
    report(
        "search, a common word, sorted by upvotes, page 1",
        [timed(lambda q=q: search_store(store, q, limit=20, order="upvotes")) for q in common],
    )
    report(
        "the same words by relevance (the default), page 1",
        [timed(lambda q=q: search_store(store, q, limit=20)) for q in common],
    )
    store.close()


if __name__ == "__main__":
    main()
