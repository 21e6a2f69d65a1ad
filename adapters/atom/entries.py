"""One stored paper as a feed entry: the neutral shape Atom, JSON Feed and HTML all render."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from bridge.models import Hit, Match, StoredPaper

# More authors than this are summarised: collaboration papers list thousands, and one entry
# should not carry a megabyte of names.
MAX_AUTHORS = 25

# XML 1.0 forbids these code points outright (lxml refuses them); a title or abstract that
# carries one must still produce a feed that parses, so they are dropped everywhere.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def web_url(url: str | None) -> str | None:
    """``url`` if it is plain http(s), else None: upstream data could carry javascript: links."""
    url = clean_text(url)
    return url if url.lower().startswith(("https://", "http://")) and " " not in url else None


def clean_text(text: str | None) -> str:
    """Text safe to put in any XML or HTML text node (escaping happens later, on output)."""
    return _NOT_XML.sub("", text or "").strip()


@dataclass(frozen=True, slots=True)
class Link:
    href: str
    rel: str  # "alternate" or "related"
    title: str
    type: str | None = None


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """Everything any feed format shows of one paper, already cleaned of unusable characters."""

    id: str
    arxiv_id: str
    title: str
    updated: datetime
    published: datetime | None
    authors: tuple[str, ...]
    more_authors: int
    categories: tuple[str, ...]
    abstract: str
    tldr: str  # HF's one-line AI summary, when there is one
    why: str | None
    url: str  # the alternate link: the HF page when HF lists the paper, else the arXiv abstract
    related: tuple[Link, ...]
    day: date | None
    day_estimated: bool  # from arXiv's schedule, not a listing (bridge/sources/arxiv_schedule.py)
    upvotes: int | None

    @property
    def links(self) -> tuple[Link, ...]:
        return (Link(self.url, "alternate", self.alternate_title, "text/html"), *self.related)

    @property
    def alternate_title(self) -> str:
        return "Hugging Face" if self.url.startswith("https://huggingface.co/") else "arXiv"

    @property
    def author_line(self) -> str:
        names = ", ".join(self.authors)
        return f"{names} and {self.more_authors} more" if self.more_authors else names

    @property
    def text(self) -> str:
        """The entry's full text content: why it is here, the abstract, then the links."""
        parts = [self.why] if self.why else []
        if self.abstract:
            parts.append(self.abstract)
        parts.append("\n".join(f"{link.title}: {link.href}" for link in self.links))
        return "\n\n".join(parts)


def entry_id(arxiv_id: str) -> str:
    """The arXiv abstract URL of the bare id: the same across restarts, versions and feeds."""
    return f"https://arxiv.org/abs/{arxiv_id}"


def entry_updated(stored: StoredPaper) -> datetime:
    """When the bridge first stored the paper, made distinct per entry.

    One poll stores a whole batch at one instant, and RFC 4287 says entries SHOULD have
    distinct ``updated`` values (the W3C validator warns otherwise). The microseconds are
    replaced by ``seq % 1_000_000``: derived only from stored facts, so every render and every
    process gives the same value, and later-stored papers sort later within a second. The
    shift is under one second, so the time stays honest.
    """
    seen = stored.first_seen_at
    if seen.tzinfo is None:  # SQLite hands back naive datetimes; the store writes UTC
        seen = seen.replace(tzinfo=UTC)
    return seen.astimezone(UTC).replace(microsecond=stored.seq % 1_000_000)


def explain(hits: tuple[Hit, ...], why: str | None) -> str | None:
    """The match explanation: the search's own words, else the standard one from the hits."""
    if why:
        return clean_text(why)
    if hits:
        return Match("", "", hits).why()
    return None


def to_entry(stored: StoredPaper, *, why: str | None = None) -> FeedEntry:
    paper = stored.paper
    on_hf = "hf" in paper.sources
    related = [] if not on_hf else [Link(paper.abs_url, "related", "arXiv", "text/html")]
    pdf = web_url(paper.pdf_link) or paper.abs_url.replace("/abs/", "/pdf/")
    related.append(Link(pdf, "related", "PDF", "application/pdf"))
    if code := web_url(paper.github_repo):
        related.append(Link(code, "related", "Code", "text/html"))
    if project := web_url(paper.project_page):
        related.append(Link(project, "related", "Project page", "text/html"))
    authors = tuple(name for name in map(clean_text, paper.authors) if name)
    published = paper.published_at
    if published is not None and published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return FeedEntry(
        id=entry_id(paper.arxiv_id),
        arxiv_id=paper.arxiv_id,
        title=clean_text(paper.title) or paper.arxiv_id,
        updated=entry_updated(stored),
        published=published,
        authors=authors[:MAX_AUTHORS],
        more_authors=max(0, len(authors) - MAX_AUTHORS),
        categories=tuple(c for c in map(clean_text, paper.categories) if c),
        abstract=clean_text(paper.abstract),
        tldr=clean_text(paper.ai_summary),
        why=why,
        url=paper.hf_url if on_hf else paper.abs_url,
        related=tuple(related),
        day=paper.listed_on or (published.date() if published else None),
        day_estimated=paper.listed_on is not None and paper.listed_on_estimated,
        upvotes=paper.upvotes,
    )
