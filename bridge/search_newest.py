"""The newest matches of a query by listing day, from the search index: what a feed shows.

A search or subscription feed lists the papers matching its query newest listing day first
(then newest stored first within a day), from the whole archive, however the papers arrived.
The index returns matches in storage order (``seq``), which is not listing order once a
backfill or an import stores old days after new ones, so the order is worked out here without
walking the store:

* **Few matches** (at most ``FEW`` by the index's own count, a millisecond): read them all
  with their listing day and let the database sort them: one papers row each, scattered
  over the file (at 1,000,000 papers about 9 ms for 1,000 on a first request).
* **Many matches**: walk the listing days newest first in windows of calendar days that
  double (1, 2, 4, ... days). Each window's papers lie in one ``seq`` range (a poll, a
  backfill or an import stores a day's papers together), which FTS5 and the GIN index read
  as a range; matches of other days in that range are filtered out by their day and are found
  in their own window. With at least ``FEW`` matches over the archive, a window of a few days
  usually holds the page. Empty stretches of the calendar are jumped over with one index
  lookup (``max(listed_on) < day``).

Queries the index cannot decide exactly (a phrase over a known compound, ``upvotes`` below
the top level) take the index's candidates in the same order and check each with
``match_paper``; queries it cannot narrow at all (``-survey upvotes>=10``) read each window's
papers and check them. Either is bounded by the search budget (``SearchTooBroad``), as any
search is.

Each entry says why it is there ("matched diffusion in the abstract"). For an exact plan the
index says which fields hold what: one lookup per word or phrase of the query and field,
over the page's papers (``QueryRun.index_whys``), each quoted where its field shows the
query's words; analyzing the text of 50 papers was three quarters of a feed's first request.
Papers whose text writes a word otherwise, those the index does not vouch for, and every paper
of a checked plan are checked with ``match_paper``, whose hits give the line.

Papers without a listing day (no source gave one) are in no listing; search still finds them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from bridge.models import StoredPaper
from bridge.query.dates import intersection
from bridge.query.parser import ListedOn
from bridge.search import (
    DEFAULT_BUDGET,
    QueryRun,
    SearchBudget,
    SearchResult,
    retrying,
    run_query,
)
from bridge.store import Store
from bridge.store.search_index import FALSE, TRUE, SqlCondition

# Up to this many matches are read whole and sorted by the database (cost: one join each).
# Past it the walk over listing days reads only the windows holding the page: for a few
# hundred matches spread over the archive that is fewer rows and a few index seeks a day
# (two words at 1,000,000 papers: 19-21 ms of CPU at 1,000, 16 ms at 200, first requests).
FEW = 200
# Candidates read per round trip when they must be checked one by one.
CHUNK = 200
# Papers read between two looks at the budget's clock.
_SLICE = 50
# The widest window of calendar days read at once (about a year).
MAX_SPAN = 512


def newest_matches(
    store: Store, query: str, *, limit: int, budget: SearchBudget = DEFAULT_BUDGET
) -> list[SearchResult]:
    """The ``limit`` newest papers matching ``query`` by listing day, each with its "matched …"
    line (``why``; ``hits`` are left empty when the line comes from the index).

    Raises QueryError for a malformed query, SearchTooBroad past the budget, StoreError when
    the database fails.
    """

    def answer() -> list[SearchResult]:
        with run_query(store, query, budget=budget) as run:
            return _Walk(run).run_walk(max(int(limit), 0))

    return retrying(store, answer)


class _Walk:
    """One query's matches in listing order, read only as far as the page needs."""

    def __init__(self, run: QueryRun) -> None:
        self.run = run
        self.index = run.index
        self.plan = plan = run.plan
        self.exact = plan.loose == plan.strict and plan.loose != TRUE
        self.found: list[SearchResult] = []

    def run_walk(self, limit: int) -> list[SearchResult]:
        if limit == 0 or self.plan.loose == FALSE:
            return []
        index, conn, plan = self.index, self.run.conn, self.plan
        # The query's own listing days (``date:2020-03``): where its papers are stored, and
        # the days the walk starts and stops at. Walking from the newest day down to them
        # tested every newer window first (a feed of 2020's papers in a store reaching 2022
        # answered "too broad" on both databases).
        since, before = _listing_days(plan.conditions)
        seqs = index.seq_range(conn, plan.conditions) if plan.conditions else None
        if seqs is not None and seqs[0] > seqs[1]:
            return []  # no paper is listed on those days
        if plan.loose != TRUE:
            few = index.count(conn, plan.loose, conditions=plan.conditions, cap=FEW + 1, seqs=seqs)
            if few == 0:
                return []  # nothing to read (a phrase's candidates would be tested again)
            if few <= FEW:
                self._take(self._candidates(limit=FEW, seqs=seqs), limit)
                return self.found
        day = index.latest_listing_day(conn, before)
        span = 1
        while day is not None and len(self.found) < limit:
            if since is not None and day < since:
                break
            first = day - timedelta(days=span - 1)
            if since is not None:
                first = max(first, since)
            bounds = index.listing_seqs(conn, first, day)
            after: tuple[date, int] | None = None
            while bounds is not None and len(self.found) < limit:
                # Exact plans need only what is missing; checked ones read a chunk at a time.
                size = limit - len(self.found) if self.exact else CHUNK
                rows = self._candidates(days=(first, day), seqs=bounds, after=after, limit=size)
                self._take(rows, limit)
                if len(rows) < size:
                    break
                after = rows[-1]
            day = index.latest_listing_day(conn, first)
            span = min(span * 2, MAX_SPAN)
        return self.found

    def _candidates(self, **where: Any) -> list[tuple[date, int]]:
        plan = self.plan
        return self.index.newest_listed(
            self.run.conn, plan.loose, conditions=plan.conditions, **where
        )

    def _take(self, rows: Sequence[tuple[date, int]], limit: int) -> None:
        """Add the rows that match, in order, until the page is full."""
        wanted = [seq for _, seq in rows]
        if self.exact:
            wanted = wanted[: limit - len(self.found)]
        run = self.run
        for start in range(0, len(wanted), _SLICE):
            run.check_time()
            part = wanted[start : start + _SLICE]
            if not self.exact:
                # Papers checked one by one count against the budget, as in any search.
                run.spend(len(part))
            papers = run.fetch(part)
            # Exact plans: the index says why each paper matched, without reading its text.
            whys = run.index_whys(list(papers.values())) if self.exact else {}
            for seq in part:
                stored = papers.get(seq)
                if stored is not None and self._add(stored, whys) and len(self.found) >= limit:
                    return

    def _add(self, stored: StoredPaper, whys: dict[int, str | None]) -> bool:
        if stored.seq in whys:
            self.found.append(SearchResult(stored, (), whys[stored.seq]))
            return True
        hits = self.run.checker(stored.paper)
        if hits is None:
            # Exact plans: the index is out of step with the analyzer (bridge.search says the
            # same); checked plans: a candidate that does not match. Either way, not shown.
            return False
        self.found.append(SearchResult(stored, hits, self.run.why(hits)))
        return True


def _listing_days(conditions: Sequence[SqlCondition]) -> tuple[date | None, date | None]:
    """The first listing day and the day after the last that the query's top-level ``date``
    conditions allow (None: open)."""
    return intersection(
        (cond.node.since, cond.node.before)
        for cond in conditions
        if not cond.negated and isinstance(cond.node, ListedOn)
    )
