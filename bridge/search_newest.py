"""The newest matches of a query by listing day, from the search index: what a feed shows.

A search or subscription feed lists the papers matching its query newest listing day first
(then newest stored first within a day), from the whole archive, however the papers arrived.
The index returns matches in storage order (``seq``), which is not listing order once a
backfill or an import stores old days after new ones, so the order is worked out here without
walking the store:

* **Few matches** (at most ``FEW`` by the index's own count, a millisecond): read them all
  with their listing day and let the database sort them. About 2 ms at ``FEW`` = 1,000.
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

Papers without a listing day (no source gave one) are in no listing; search still finds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from bridge.errors import StoreError
from bridge.models import Match, StoredPaper
from bridge.query import parse_query
from bridge.query.expansions import expand, label_hits
from bridge.search import (
    DEFAULT_BUDGET,
    SearchBudget,
    SearchResult,
    _Allowance,
    _bounded,
    _Checker,
    _interrupted,
    _OutOfBudget,
    _too_broad,
    fetch_papers,
)
from bridge.store import Store
from bridge.store.search_index import (
    FALSE,
    TRUE,
    Compiled,
    SearchIndex,
    _condition_sql,
    _query,
    compile_query,
    phrase_terms,
)

# Up to this many matches are read whole and sorted by the database (cost: one join each).
FEW = 1000
# Candidates read per round trip when they must be checked one by one.
CHUNK = 200
# Papers read between two looks at the budget's clock.
_SLICE = 50
# The widest window of calendar days read at once (about a year).
MAX_SPAN = 512


def newest_matches(
    store: Store, query: str, *, limit: int, budget: SearchBudget = DEFAULT_BUDGET
) -> list[SearchResult]:
    """The ``limit`` newest papers matching ``query`` by listing day, with their hits.

    Raises QueryError for a malformed query, SearchTooBroad past the budget, StoreError when
    the database fails.
    """
    # Widened with the archive's acronyms and open compounds, as search widens it.
    expanded = expand(parse_query(query), store.expansion_table())
    parsed = expanded.query
    allowance = _Allowance(budget)
    plan: Compiled | None = None
    try:
        with store.engine.connect() as conn, _bounded(conn, allowance):
            terms = phrase_terms(parsed)
            index = store.search_index
            plan = compile_query(parsed, index.splits(conn, terms) if terms else None)
            walk = _Walk(conn, index, plan, _Checker(parsed), allowance, expanded.labels)
            return walk.run(max(int(limit), 0))
    except _OutOfBudget as exc:
        raise _too_broad(query, exc.spent, plan, 0, budget) from None
    except (SQLAlchemyError, store.engine.dialect.dbapi.Error) as exc:  # type: ignore[union-attr]
        if _interrupted(exc):
            raise _too_broad(query, "time", plan, 0, budget) from None
        raise StoreError(f"search failed: {exc.__class__.__name__}: {exc}") from exc


class _Walk:
    """One query's matches in listing order, read only as far as the page needs."""

    def __init__(
        self,
        conn: Connection,
        index: SearchIndex,
        plan: Compiled,
        checker: _Checker,
        allowance: _Allowance,
        labels: Mapping[str, str],
    ) -> None:
        self.conn = conn
        self.labels = labels  # forms the query was widened with, for "why it matched"
        self.index = index
        self.plan = plan
        self.checker = checker
        self.allowance = allowance
        self.exact = plan.loose == plan.strict and plan.loose != TRUE
        self.mark = "%s" if index.postgres else "?"
        self.found: list[SearchResult] = []

    def run(self, limit: int) -> list[SearchResult]:
        if limit == 0 or self.plan.loose == FALSE:
            return []
        if self.plan.loose != TRUE:
            few = self.index.count(
                self.conn, self.plan.loose, conditions=self.plan.conditions, cap=FEW + 1
            )
            if few <= FEW:
                self._take(self._candidates(None, None, None, FEW), limit)
                return self.found
        day = self._latest(None)
        span = 1
        while day is not None and len(self.found) < limit:
            first = day - timedelta(days=span - 1)
            bounds = self._seq_range(first, day)
            after: tuple[date, int] | None = None
            while bounds is not None and len(self.found) < limit:
                # Exact plans need only what is missing; checked ones read a chunk at a time.
                size = limit - len(self.found) if self.exact else CHUNK
                rows = self._candidates((first, day), bounds, after, size)
                self._take(rows, limit)
                if len(rows) < size:
                    break
                after = rows[-1]
            day = self._latest(first)
            span = min(span * 2, MAX_SPAN)
        return self.found

    # -- reading ----------------------------------------------------------------------------

    def _latest(self, before: date | None) -> date | None:
        """The newest listing day (before ``before``): jumps over empty stretches at once."""
        sql = "SELECT max(listed_on) FROM papers"
        params: list[Any] = []
        if before is not None:
            sql += f" WHERE listed_on < {self.mark}"
            params.append(before.isoformat())
        return _day(_query(self.conn, sql, params)[0][0])

    def _seq_range(self, first: date, last: date) -> tuple[int, int] | None:
        m = self.mark
        sql = f"SELECT min(seq), max(seq) FROM papers WHERE listed_on BETWEEN {m} AND {m}"
        low, high = _query(self.conn, sql, [first.isoformat(), last.isoformat()])[0]
        return None if low is None else (int(low), int(high))

    def _candidates(
        self,
        days: tuple[date, date] | None,
        seqs: tuple[int, int] | None,
        after: tuple[date, int] | None,
        limit: int,
    ) -> list[tuple[date, int]]:
        """(listing day, seq) of papers meeting the loose expression and the conditions,
        newest listing day first; within ``days`` and the ``seqs`` range, after ``after``."""
        m = self.mark
        where = ["p.listed_on IS NOT NULL"]
        params: list[Any] = []
        if self.plan.loose == TRUE:
            sql, key = "FROM papers p", "p.seq"
        else:
            postgres = self.index.postgres
            table, column = ("paper_search", "seq") if postgres else ("paper_fts", "rowid")
            sql = f"FROM {table} f JOIN papers p ON p.seq = f.{column}"
            key = f"f.{column}"
            condition, param = self.index._match(self.plan.loose, "f")
            where.append(condition)
            params.append(param)
        for cond in self.plan.conditions:
            test, values = _condition_sql(cond, m, self.index.postgres)
            where.append(test)
            params += values
        if seqs is not None:
            # On the index's own key, so FTS5 and PostgreSQL read only that stretch.
            where.append(f"{key} BETWEEN {m} AND {m}")
            params += list(seqs)
        if days is not None:
            where.append(f"p.listed_on BETWEEN {m} AND {m}")
            params += [day.isoformat() for day in days]
        if after is not None:
            where.append(f"(p.listed_on < {m} OR (p.listed_on = {m} AND p.seq < {m}))")
            params += [after[0].isoformat(), after[0].isoformat(), after[1]]
        # Within one day the index's own order is the listing order: FTS5 then reads matches
        # newest first and stops at the limit, where a sort would read all of the day's.
        one_day = days is not None and days[0] == days[1]
        order = f"{key} DESC" if one_day else "p.listed_on DESC, p.seq DESC"
        sql = (
            f"SELECT p.listed_on, p.seq {sql} WHERE {' AND '.join(where)}"
            f" ORDER BY {order} LIMIT {int(limit)}"
        )
        return [(_day(day), int(seq)) for day, seq in _query(self.conn, sql, params)]  # type: ignore[misc]

    # -- taking -----------------------------------------------------------------------------

    def _take(self, rows: Sequence[tuple[date, int]], limit: int) -> None:
        """Add the rows that match, in order, until the page is full."""
        wanted = [seq for _, seq in rows]
        if self.exact:
            wanted = wanted[: limit - len(self.found)]
        for start in range(0, len(wanted), _SLICE):
            self.allowance.check_time()
            part = wanted[start : start + _SLICE]
            if not self.exact:
                # Papers checked one by one count against the budget, as in any search.
                if len(part) > self.allowance.papers_left:
                    raise _OutOfBudget("papers")
                self.allowance.papers_left -= len(part)
            papers = fetch_papers(self.conn, part)
            for seq in part:
                stored = papers.get(seq)
                if stored is not None and self._add(stored) and len(self.found) >= limit:
                    return

    def _add(self, stored: StoredPaper) -> bool:
        hits = self.checker(stored.paper)
        if hits is None:
            # Exact plans: the index is out of step with the analyzer (bridge.search says the
            # same); checked plans: a candidate that does not match. Either way, not shown.
            return False
        why = Match("", "", label_hits(hits, self.labels)).why() if hits else None
        self.found.append(SearchResult(stored, hits, why))
        return True


def _day(value: Any) -> date | None:
    # SQLite hands back the stored text for a raw query of a Date column.
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
