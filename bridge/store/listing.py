"""The archive read as listings: papers by the day they were listed, like huggingface.co/papers.

Every way a paper arrives (poll, import, backfill) stores its listing day (``papers.listed_on``),
so these queries show the whole archive, not only what was announced. Two shapes:

* ``newest``: the newest papers by listing day, then by the order the bridge stored them, with
  a keyset cursor (``ListingCursor``) for the next page. It walks ``ix_papers_listed_on``
  backwards (on SQLite the index holds the rowid, which is ``seq``, so the order is the
  index's own), so the first page of a million-paper store costs the same as of a small one.
* ``in_period``: one period's papers (a day, a week, a month) sorted by upvotes, newest or
  title, with offset paging. A period holds at most some tens of thousands of papers (a month of
  arXiv), which the database sorts in a few milliseconds; ``count_in_period`` gives the total
  and ``days_around`` the nearest listing days before and after, so navigation skips empty
  days.

Papers without a listing day (no source gave one) are in no listing; search still finds them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select

from bridge.models import StoredPaper
from bridge.store import schema

_papers = schema.papers


class ListingSort(StrEnum):
    """How a period's papers are ordered; ``upvotes`` is what huggingface.co/papers shows."""

    UPVOTES = "upvotes"
    NEWEST = "newest"
    TITLE = "title"


@dataclass(frozen=True, slots=True)
class ListingCursor:
    """Where the next page of ``newest`` starts: just after this paper."""

    listed_on: date
    seq: int

    @classmethod
    def after(cls, paper: StoredPaper) -> ListingCursor | None:
        day = paper.paper.listed_on
        return None if day is None else cls(day, paper.seq)


def _order(sort: ListingSort) -> tuple[Any, ...]:
    newest = (_papers.c.listed_on.desc(), _papers.c.seq.desc())
    if sort is ListingSort.UPVOTES:
        # Papers HF never voted on (arXiv-only) sort below a paper with 0 votes.
        return (func.coalesce(_papers.c.upvotes, -1).desc(), *newest)
    if sort is ListingSort.TITLE:
        return (func.lower(_papers.c.title), _papers.c.seq)
    return newest


class Listings:
    """Listing queries over the store's papers table."""

    def __init__(self, engine: Engine, to_stored: Callable[[Any], StoredPaper]) -> None:
        self.engine = engine
        self._to_stored = to_stored

    def newest(self, limit: int, *, after: ListingCursor | None = None) -> list[StoredPaper]:
        """The newest listed papers, newest listing day first; the page after ``after``."""
        query = select(_papers).where(_papers.c.listed_on.is_not(None))
        if after is not None:
            query = query.where(
                or_(
                    _papers.c.listed_on < after.listed_on,
                    and_(_papers.c.listed_on == after.listed_on, _papers.c.seq < after.seq),
                )
            )
        query = query.order_by(_papers.c.listed_on.desc(), _papers.c.seq.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [self._to_stored(row) for row in conn.execute(query)]

    def in_period(
        self,
        first: date,
        last: date,
        *,
        sort: ListingSort = ListingSort.UPVOTES,
        limit: int = 50,
        offset: int = 0,
    ) -> list[StoredPaper]:
        """The papers listed from ``first`` to ``last`` (both included), one page of them."""
        # The sort orders only the page's keys, then the page's rows are read: sorting whole
        # rows (abstracts, authors) made a deep page of a month take a second on SQLite
        # (bench/archive_pages.py).
        keys = (
            select(_papers.c.seq)
            .where(_papers.c.listed_on.between(first, last))
            .order_by(*_order(sort))
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            seqs = [row[0] for row in conn.execute(keys)]
            if not seqs:
                return []
            rows = {
                row.seq: row for row in conn.execute(select(_papers).where(_papers.c.seq.in_(seqs)))
            }
        return [self._to_stored(rows[seq]) for seq in seqs if seq in rows]

    def count_in_period(self, first: date, last: date) -> int:
        query = select(func.count()).where(_papers.c.listed_on.between(first, last))
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def days_around(self, first: date, last: date) -> tuple[date | None, date | None]:
        """The nearest listing days with papers before ``first`` and after ``last``."""
        before = select(func.max(_papers.c.listed_on)).where(_papers.c.listed_on < first)
        after = select(func.min(_papers.c.listed_on)).where(_papers.c.listed_on > last)
        with self.engine.connect() as conn:
            return _day(conn.execute(before).scalar()), _day(conn.execute(after).scalar())

    def latest_day(self) -> date | None:
        """The newest listing day in the archive (the day view to open by default)."""
        with self.engine.connect() as conn:
            return _day(conn.execute(select(func.max(_papers.c.listed_on))).scalar())


def _day(value: Any) -> date | None:
    # SQLite hands back the stored text for an aggregate of a Date column, not a date.
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
