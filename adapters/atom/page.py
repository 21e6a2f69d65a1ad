"""Server-rendered HTML: the feed list, search results and the readable view of a feed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from jinja2 import DictLoader, Environment, StrictUndefined

from adapters.atom.cards import Card, github_name
from adapters.atom.catalog import FeedSpec
from adapters.atom.entries import FeedEntry
from adapters.atom.periods import Period
from adapters.atom.templates import TEMPLATES
from adapters.stdout import preview

MEDIA_TYPE = "text/html; charset=utf-8"
# No script runs on these pages at all; the policy makes an escaping slip inert as well.
# Images may come from any https host: the cards show Hugging Face's thumbnails.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' https:; form-action 'self'; "
        "base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _short_authors(entry: FeedEntry, keep: int = 4) -> str:
    """The first few authors and how many more, as the HF listing shows them."""
    total = len(entry.authors) + entry.more_authors
    if total <= keep:
        return ", ".join(entry.authors)
    return f"{', '.join(entry.authors[:keep])} and {total - keep} more"


_ENV = Environment(
    loader=DictLoader(TEMPLATES),
    # Every value is escaped unless a template says otherwise (none does).
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
# What a day marked "(expected)" means, as its tooltip.
ESTIMATED_DAY = (
    "Expected listing day, worked out from arXiv's submission deadline; "
    "arXiv may list the paper later (holidays, moderation)"
)
_ENV.globals.update(
    preview=preview,
    short_authors=_short_authors,
    github_name=github_name,
    ESTIMATED_DAY=ESTIMATED_DAY,
)

# A sort switch: (label, url, whether it is the current sort).
SortLinks = Sequence[tuple[str, str, bool]]


def _render(template: str, **context: Any) -> bytes:
    return _ENV.get_template(template).render(**context).encode("utf-8")


@dataclass(frozen=True, slots=True)
class HealthNotice:
    """What the front page says about the bridge's health (``bridge.health``), as text.

    ``starting``: nothing is wrong except first polls still under way. ``unreachable``:
    sources cannot be read, so the page suggests loading papers by hand meanwhile.
    ``problems`` are plain sentences, each saying when the source is polled next.
    """

    problems: tuple[str, ...] = ()
    starting: bool = False
    unreachable: bool = False


def render_index(
    feeds: Sequence[FeedSpec],
    cards: Sequence[Card],
    base: str,
    max_query_length: int,
    notice: HealthNotice | None = None,
    *,
    next_url: str | None = None,
    after: str | None = None,
    latest: date | None = None,
) -> bytes:
    """The front page: the feeds, then the newest papers grouped by listing day."""
    groups: list[tuple[date | None, list[Card]]] = []
    for card in cards:
        if not groups or groups[-1][0] != card.day:
            groups.append((card.day, []))
        groups[-1][1].append(card)
    return _render(
        "index.html",
        base=base,
        feeds=feeds,
        discover=feeds,
        groups=groups,
        query=None,
        max_query_length=max_query_length,
        notice=notice or HealthNotice(),
        next_url=next_url,
        after=after,
        latest=latest,
    )


def render_listing(
    *,
    base: str,
    period: Period,
    cards: Sequence[Card],
    total: int,
    sorts: SortLinks,
    prev_period: Period | None,
    next_period: Period | None,
    prev_url: str | None,
    next_url: str | None,
    page_number: int,
    max_query_length: int,
) -> bytes:
    """One day's, week's or month's papers, like huggingface.co/papers."""
    return _render(
        "listing.html",
        base=base,
        discover=[],
        query=None,
        period=period,
        cards=cards,
        total=total,
        sorts=sorts,
        prev_period=prev_period,
        next_period=next_period,
        prev_url=prev_url,
        next_url=next_url,
        page_number=page_number,
        max_query_length=max_query_length,
    )


# The search page's short syntax help (a <details>, so it works without JavaScript); the
# README's query table has the whole language.
SYNTAX_HELP: tuple[tuple[str, str], ...] = (
    ("generalization", "the word in any spelling or inflection (generalisation, generalize)"),
    ("=generalization", "only that word as written (not generalized, generalisation)"),
    ("diffusion transformer", "both words (AND may be written)"),
    ('"world model"', "the words next to each other"),
    ("RL OR RLHF", "either (OR in capitals)"),
    ("diffusion -survey", "without a word (also NOT survey)"),
    ("title:diffusion", "in one field: title:, abstract:, author:"),
    ("cat:cs.LG  cat:cs", "an arXiv category, or a whole archive"),
    ("source:hf  upvotes>=10", "where it was listed; Hugging Face upvotes"),
    ("date:2024-08  date>=2025-01-01", "the listing day, month or year; date:2024-01..2024-06"),
    ("2407.21772", "one paper by its arXiv id, or paste its arxiv.org or huggingface.co URL"),
)


def render_search(
    *,
    base: str,
    query: str | None,
    feed: FeedSpec | None,
    cards: Sequence[Card],
    total: int | str,
    error: str | None,
    prev_url: str | None,
    next_url: str | None,
    max_query_length: int,
    sorts: SortLinks = (),
    page_number: int = 1,
    note: str | None = None,
    sort: str = "relevance",
    hints: Sequence[str] = (),
) -> bytes:
    return _render(
        "search.html",
        hints=hints,
        syntax_help=SYNTAX_HELP,
        base=base,
        query=query,
        feed=feed,
        discover=[feed] if feed else [],
        cards=cards,
        total=total,
        error=error,
        prev_url=prev_url,
        next_url=next_url,
        max_query_length=max_query_length,
        sorts=sorts,
        page_number=page_number,
        note=note,
        # A new search from the box keeps the chosen sort.
        search_sort=sort,
    )


def render_feed_view(
    feed: FeedSpec, fmt: str, entries: Sequence[FeedEntry], base: str, max_query_length: int
) -> bytes:
    return _render(
        "feed.html",
        base=base,
        feed=feed,
        fmt=fmt,
        discover=[feed],
        entries=entries,
        query=feed.query,
        max_query_length=max_query_length,
    )
