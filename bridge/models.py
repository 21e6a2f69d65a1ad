"""The plain, frozen values that flow down the pipe: sources -> store -> matcher -> outputs."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Literal, NamedTuple

from bridge import ids

SourceName = Literal["hf", "arxiv"]
AnnounceType = Literal["new", "cross", "replace", "replace-cross"]


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper as one source saw it, or as the store merged it from every source.

    ``arxiv_id`` is the bare identifier (no version) and the only identity a paper has.
    Optional facts are None when the source did not say; merging never overwrites a known
    fact with an unknown one.
    """

    arxiv_id: str
    title: str
    abstract: str = ""
    authors: tuple[str, ...] = ()
    version: int | None = None
    source: SourceName = "arxiv"
    # The listing day this record came from: the HF featured day or the arXiv announce day.
    listed_on: date | None = None
    # True when ``listed_on`` is not a listing's own day but arXiv's schedule applied to
    # ``published_at`` (arXiv API records: bridge/sources/arxiv_schedule.py). A true day
    # always replaces an estimated one when records merge (bridge/merge.py).
    listed_on_estimated: bool = False
    # arXiv: when v1 appeared (HF's paper.publishedAt means the same).
    published_at: datetime | None = None
    # arXiv: when this version appeared.
    updated_at: datetime | None = None
    announce_type: AnnounceType | None = None
    # arXiv facts
    categories: tuple[str, ...] = ()
    primary_category: str | None = None
    comment: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    pdf_url: str | None = None
    # Hugging Face facts
    upvotes: int | None = None
    num_comments: int | None = None
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] = ()
    thumbnail: str | None = None
    organization: str | None = None
    # Which sources have listed this paper; a freshly parsed record has just its own.
    sources: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.sources:
            # Frozen dataclass: set once at construction, cheaper than a replace() later.
            object.__setattr__(self, "sources", (self.source,))

    @property
    def abs_url(self) -> str:
        return ids.abs_url(self.arxiv_id)

    @property
    def hf_url(self) -> str:
        return ids.hf_url(self.arxiv_id)

    @property
    def pdf_link(self) -> str:
        return self.pdf_url or ids.pdf_url(self.arxiv_id)

    @property
    def is_revision_listing(self) -> bool:
        return self.announce_type in ("replace", "replace-cross")

    def with_changes(self, **changes: object) -> Paper:
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """One record or page a parser skipped, with enough context to find it."""

    source: str
    url: str
    problem: str
    record: str | None = None  # e.g. the item index or id of the skipped record
    # The field dropped or cut when the record itself was kept; None when the whole record
    # (or page) was skipped.
    field: str | None = None

    def __str__(self) -> str:
        where = f" record {self.record}" if self.record else ""
        return f"{self.source}: {self.url}{where}: {self.problem}"


@dataclass(frozen=True, slots=True)
class ParseResult:
    """What a parser read from one response: the good papers and the skipped records."""

    papers: list[Paper]
    problems: list[ParseProblem] = field(default_factory=list)
    # Total results the upstream says exist (arXiv API paging), when it says.
    total_results: int | None = None


@dataclass(frozen=True, slots=True)
class StoredPaper:
    """A paper as the store holds it: merged facts plus the bridge's own bookkeeping."""

    paper: Paper
    seq: int  # monotonically increasing insertion order; feeds and cursors use it
    first_seen_at: datetime
    announced: bool  # False for papers stored silently by backfill or first-run policy


@dataclass(frozen=True, slots=True)
class AddResult:
    """What adding a batch of papers did: only ``new`` and ``revised`` are announced."""

    new: list[StoredPaper] = field(default_factory=list)
    revised: list[StoredPaper] = field(default_factory=list)
    merged: int = 0  # known papers that gained facts (another source, upvotes, ...)
    skipped: int = 0  # known papers with nothing new
    # Known papers stored quietly before and announced now (``add_papers(announce_known=True)``,
    # as `import --announce` does); counted in ``merged`` or ``skipped`` too.
    announced: int = 0
    # Papers the database would not take (a value outside what it stores), each with its
    # reason; the rest of the batch is stored.
    refused: list[tuple[Paper, str]] = field(default_factory=list)


Field = Literal["title", "abstract", "authors", "ai_summary", "ai_keywords"]


# Hit and Match are named tuples rather than frozen dataclasses: the percolator builds
# hundreds of thousands of them per run, and a tuple can be built in C (``tuple.__new__``),
# several times faster than a frozen dataclass's __init__. They read the same (attributes,
# equality, hashing, immutability), but they also compare equal to plain tuples of the same
# values, unpack and sort; change one with ``_replace``, not ``dataclasses.replace``.
class Hit(NamedTuple):
    """One place a query matched: which field, the words as written, and where."""

    field: str
    text: str  # the matched words as they appear in the paper, e.g. "generalisation"
    start: int  # character offsets into the cleaned field text, for highlighting
    end: int


@dataclass(frozen=True, slots=True)
class Subscription:
    """A standing query: who wants it and what it means."""

    id: str
    query: str
    name: str = ""


# How ``Match.why`` names a field; the rest read as their names with spaces.
_FIELD_NAMES = {"ai_summary": "AI summary", "ai_keywords": "AI keywords"}


class Match(NamedTuple):
    """A paper a subscription gets, and why (for "matched generalisation in the abstract")."""

    subscription_id: str
    arxiv_id: str
    hits: tuple[Hit, ...] = ()

    def why(self) -> str:
        """A short human explanation, e.g. 'matched generalisation in the abstract'."""
        if not self.hits:
            return "matched"
        places: dict[str, list[str]] = {}
        for hit in self.hits:
            name = _FIELD_NAMES.get(hit.field, hit.field.replace("_", " "))
            words = places.setdefault(name, [])
            if hit.text.lower() not in (w.lower() for w in words):
                words.append(hit.text)
        parts = [f"{', '.join(words)} in the {fld}" for fld, words in places.items()]
        return "matched " + "; ".join(parts)
