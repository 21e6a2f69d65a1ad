"""Archive search for the CLI, feeds and chat commands (interim: plain substring matching)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sqlalchemy import and_, func, or_, select

from bridge.errors import ConfigError, QueryError
from bridge.models import Hit, StoredPaper
from bridge.store import Store, _to_stored, schema


@dataclass(frozen=True, slots=True)
class SearchResult:
    stored: StoredPaper
    hits: tuple[Hit, ...] = ()
    why: str | None = None


@dataclass(frozen=True, slots=True)
class SearchResults:
    items: list[SearchResult] = field(default_factory=list)
    total: int = 0


def validate_query(query: str, *, where: str) -> None:
    if not query.strip():
        raise ConfigError(where, "empty query")


def search_store(
    store: Store,
    query: str,
    *,
    limit: int = 10,
    offset: int = 0,
    order: Literal["relevance", "recent"] = "relevance",
    announced_only: bool = False,
) -> SearchResults:
    """Papers matching ``query``. ``order="recent"`` lists newest stored first (feeds);
    ``announced_only`` leaves out papers stored quietly by backfill or first-run policy."""
    terms = query.lower().split()
    if not terms:
        raise QueryError("empty query", 0, query)
    papers = schema.papers
    cond = and_(
        *[
            or_(func.lower(papers.c.title).contains(t), func.lower(papers.c.abstract).contains(t))
            for t in terms
        ]
    )
    if announced_only:
        cond = and_(cond, papers.c.announced.is_(True))
    with store.engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(papers).where(cond)).scalar_one()
        rows = conn.execute(
            select(papers).where(cond).order_by(papers.c.seq.desc()).limit(limit).offset(offset)
        ).all()
    return SearchResults([SearchResult(_to_stored(r)) for r in rows], int(total))
