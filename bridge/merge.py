"""Merging what several listings say about one paper into one record (pure)."""

from __future__ import annotations

from dataclasses import fields

from bridge.models import Paper

# Facts that belong to whichever record carries the newer arXiv version.
_VERSIONED = ("title", "abstract", "authors", "updated_at", "comment", "journal_ref", "doi")
# Facts that change over time on Hugging Face; the latest observation wins.
_LIVE = ("upvotes", "num_comments", "github_stars")
_UNIONED = ("categories", "sources", "ai_keywords")
_SKIP = frozenset(
    _VERSIONED + _LIVE + _UNIONED + ("version", "listed_on", "listed_on_estimated", "announce_type")
)


def _known(value: object) -> bool:
    return value is not None and value != "" and value != ()


def _union(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    return old + tuple(item for item in new if item not in old)


def merge(old: Paper, new: Paper) -> Paper:
    """Combine two records of the same paper; a known fact is never replaced by an unknown one.

    Text facts come from the higher arXiv version (a version-less HF record never overrides
    a versioned arXiv one, but fills gaps). Upvotes and comments take the latest value.
    """
    assert old.arxiv_id == new.arxiv_id, (old.arxiv_id, new.arxiv_id)
    new_is_newer = (new.version or 0) > (old.version or 0) or (
        new.version is None and old.version is None
    )
    changes: dict[str, object] = {}
    for name in _VERSIONED:
        mine, theirs = getattr(old, name), getattr(new, name)
        if _known(theirs) and (new_is_newer or not _known(mine)):
            changes[name] = theirs
    for name in _LIVE:
        if _known(getattr(new, name)):
            changes[name] = getattr(new, name)
    for name in _UNIONED:
        changes[name] = _union(getattr(old, name), getattr(new, name))
    for f in fields(Paper):
        if f.name in _SKIP or f.name == "arxiv_id":
            continue
        if not _known(getattr(old, f.name)) and _known(getattr(new, f.name)):
            changes[f.name] = getattr(new, f.name)
    if (new.version or 0) > (old.version or 0):
        changes["version"] = new.version
    if _better_day(old, new):
        changes["listed_on"] = new.listed_on
        changes["listed_on_estimated"] = new.listed_on_estimated
    return old.with_changes(**changes) if changes else old


def _better_day(old: Paper, new: Paper) -> bool:
    """Whether ``new``'s listing day replaces ``old``'s.

    The earliest listing day is when the paper was first listed anywhere; but a day a listing
    gave (RSS, Hugging Face) always replaces one estimated from arXiv's schedule (arXiv API
    records), even a later one, and an estimate never replaces a listing's day, even an
    earlier one. Between two of the same kind the earliest stays."""
    if new.listed_on is None:
        return False
    if old.listed_on is None:
        return True
    if old.listed_on_estimated != new.listed_on_estimated:
        return old.listed_on_estimated
    return new.listed_on < old.listed_on


def is_revision(old: Paper, new: Paper) -> bool:
    """True when ``new`` brings a later arXiv version than the store has seen.

    A replacement listing of a paper known only from Hugging Face (no version) counts too.
    """
    if new.version is None:
        return False
    if old.version is None:
        return new.is_revision_listing
    return new.version > old.version


def fold(papers: list[Paper]) -> dict[str, Paper]:
    """Merge duplicates inside one batch (a paper in several categories of one listing)."""
    out: dict[str, Paper] = {}
    for paper in papers:
        known = out.get(paper.arxiv_id)
        out[paper.arxiv_id] = paper if known is None else merge(known, paper)
    return out
