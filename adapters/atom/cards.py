"""One paper as the web page's card, like a huggingface.co/papers card, with matches marked.

A card's texts are lists of (piece, matched) pairs: the template escapes every piece and wraps
the matched ones in ``<mark>``. The abstract preview starts shortly before the first matched
word when that lies beyond the usual cut (``bridge.chat.render.preview_segments``, which the
Slack and Discord answers use too), and the "matched …" line names only words the card shows
marked; a match further on in the abstract is said to be there, not shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from adapters.atom.entries import MAX_AUTHORS, Link, clean_text, web_url
from bridge.chat.render import PREVIEW_CHARS, preview_segments
from bridge.models import Hit, StoredPaper

Segments = tuple[tuple[str, bool], ...]
# The field names as the "matched" line says them (as bridge.models.Match.why does).
_FIELD_NAMES = {"ai_summary": "AI summary", "ai_keywords": "AI keywords"}
# A one-line AI summary is shown whole up to this length.
SUMMARY_CHARS = 400
# The fields a card shows as a (possibly cut) text with the matches marked.
_EXCERPTED = frozenset({"title", "abstract", "ai_summary"})


@dataclass(frozen=True, slots=True)
class Card:
    arxiv_id: str
    url: str  # the paper's page: Hugging Face when HF lists it, else arXiv
    title: Segments
    authors: str
    day: date | None
    # The day was worked out from arXiv's submission schedule (an arXiv API record), not read
    # from a listing; the page says so, since arXiv may list the paper a day later.
    day_estimated: bool
    upvotes: int | None
    comments: int | None
    comments_url: str | None
    thumbnail: str | None
    github: str | None
    github_stars: int | None
    project: str | None
    summary: Segments
    abstract: Segments
    categories: tuple[str, ...]
    links: tuple[Link, ...]
    why: str | None


def _segments(
    text: str, hits: Sequence[Hit], field: str, limit: int
) -> tuple[Segments, set[tuple[int, int]]]:
    """The preview of ``text`` and which of ``field``'s hit spans it shows marked."""
    pieces = preview_segments(text, hits, field, limit)
    # Characters no page can carry are dropped piece by piece: the hit offsets are into the
    # raw text, so it is cut first and cleaned after.
    cleaned = tuple(
        (clean_piece, matched) for piece, matched in pieces if (clean_piece := _clean(piece))
    )
    shown = _shown_spans(text, pieces, hits, field)
    return cleaned, shown


def _clean(piece: str) -> str:
    # clean_text also strips; inside a text the spaces between pieces matter.
    stripped = clean_text(piece)
    if not stripped:
        return " " if piece.strip() == "" and piece else ""
    lead = " " if piece[:1].isspace() else ""
    tail = " " if piece[-1:].isspace() else ""
    return lead + stripped + tail


def _shown_spans(
    text: str, pieces: list[tuple[str, bool]], hits: Sequence[Hit], field: str
) -> set[tuple[int, int]]:
    """The (start, end) of each hit in ``field`` whose words the preview shows whole."""
    # Where the preview's text lies in ``text``: from the first piece's start to the end.
    joined = "".join(piece for piece, _ in pieces if piece != "…")
    if not joined:
        return set()
    begin = text.find(joined)
    if begin < 0:
        return set()
    end = begin + len(joined)
    return {
        (hit.start, hit.end)
        for hit in hits
        if hit.field == field and begin <= hit.start and hit.end <= end
    }


def _why(hits: Sequence[Hit], shown: set[tuple[str, int, int]]) -> str | None:
    """'matched X in the title; Y in the abstract' for what the card shows, and where the
    other matches are without claiming the card's excerpts show them."""
    if not hits:
        return None
    places: dict[str, list[str]] = {}
    hidden: dict[str, list[str]] = {}
    for hit in hits:
        name = _FIELD_NAMES.get(hit.field, hit.field.replace("_", " "))
        # Excerpted texts vouch only for what they show; other fields (authors, keywords)
        # are not excerpts, and saying where they matched claims nothing about a preview.
        visible = hit.field not in _EXCERPTED or (hit.field, hit.start, hit.end) in shown
        words = (places if visible else hidden).setdefault(name, [])
        if hit.text.lower() not in (w.lower() for w in words):
            words.append(clean_text(hit.text))
    for name, words in places.items():
        # A word shown once in a field is not "further on" too.
        if name in hidden:
            lowered = {w.lower() for w in words}
            hidden[name] = [w for w in hidden[name] if w.lower() not in lowered]
    parts = [f"{', '.join(words)} in the {name}" for name, words in places.items() if words]
    later = [
        f"{', '.join(words)} further on in the {name}" for name, words in hidden.items() if words
    ]
    said = []
    if parts:
        said.append("matched " + "; ".join(parts))
    if later:
        said.append(("also " if parts else "matched ") + "; ".join(later) + " (not shown)")
    return "; ".join(said) if said else None


def to_card(stored: StoredPaper, hits: Sequence[Hit] = ()) -> Card:
    paper = stored.paper
    on_hf = "hf" in paper.sources
    title, title_shown = _segments(paper.title or paper.arxiv_id, hits, "title", 10_000)
    summary, summary_shown = _segments(paper.ai_summary or "", hits, "ai_summary", SUMMARY_CHARS)
    abstract, abstract_shown = _segments(paper.abstract or "", hits, "abstract", PREVIEW_CHARS)
    shown = {
        (field, start, end)
        for field, spans in (
            ("title", title_shown),
            ("ai_summary", summary_shown),
            ("abstract", abstract_shown),
        )
        for start, end in spans
    }
    authors = [name for name in map(clean_text, paper.authors) if name]
    related = [] if not on_hf else [Link(paper.abs_url, "related", "arXiv", "text/html")]
    pdf = web_url(paper.pdf_link) or paper.abs_url.replace("/abs/", "/pdf/")
    related.append(Link(pdf, "related", "PDF", "application/pdf"))
    url = paper.hf_url if on_hf else paper.abs_url
    return Card(
        arxiv_id=paper.arxiv_id,
        url=url,
        title=title or ((paper.arxiv_id, False),),
        authors=_author_line(authors[:MAX_AUTHORS], len(authors)),
        day=paper.listed_on or (paper.published_at.date() if paper.published_at else None),
        day_estimated=paper.listed_on is not None and paper.listed_on_estimated,
        upvotes=paper.upvotes,
        comments=paper.num_comments if on_hf else None,
        comments_url=paper.hf_url if on_hf else None,
        # Any web URL: HF's CDN is https, which the pages' Content-Security-Policy allows,
        # as it allows the site's own images; it blocks (inertly) any other http image.
        thumbnail=web_url(paper.thumbnail),
        github=web_url(paper.github_repo),
        github_stars=paper.github_stars,
        project=web_url(paper.project_page),
        summary=summary,
        abstract=abstract,
        # arXiv's own categories; HF-only records carry none.
        categories=tuple(c for c in map(clean_text, paper.categories) if c)[:4],
        links=(Link(url, "alternate", "Hugging Face" if on_hf else "arXiv"), *related),
        why=_why(hits, shown),
    )


def _author_line(authors: list[str], total: int, keep: int = 4) -> str:
    """The first few authors and how many more, as the HF listing shows them."""
    if total <= keep:
        return ", ".join(authors)
    return f"{', '.join(authors[:keep])} and {total - keep} more"


def github_name(url: str) -> str:
    """``owner/name`` of a GitHub URL, for the card's repo link; else the URL's host and path."""
    rest = url.split("://", 1)[-1]
    host, _, path = rest.partition("/")
    if host.lower() in ("github.com", "www.github.com") and path:
        return "/".join(path.strip("/").split("/")[:2])
    return rest.rstrip("/")
