"""The limits a parsed paper is held to before it enters the pipe: values both stores take.

SQLite stores nearly anything; PostgreSQL refuses integers beyond 32 bits, NUL characters and
strings longer than a VARCHAR column; both refuse lone surrogates. A value one store takes and
the other refuses makes them disagree, and a value the database refuses costs its batch a
retry (``Store.add_papers`` then stores the rest without it). So every parsed paper is checked
here, once, against limits both stores take and no real paper comes near:

* A paper whose identity is broken is skipped, reported as a problem naming it: an id that is
  not a bare arXiv id of at most 64 characters (the ``VARCHAR(64)`` columns), a version
  outside 1 to 2^31-1 (``2407.21772v99999999999999999999``), no title, an unknown source.
* Any other bad value costs only its field, with a problem saying what was done: counts
  outside 0 to 2^31-1, dates outside 1900-2100 or without a time zone, URLs that are not
  http(s) and identifiers too long for their column are dropped; over-long texts and lists
  are cut; characters no store takes (NUL, lone surrogates) are removed.

A wrong star count does not cost a paper; a broken id does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from typing import get_args

from bridge.models import AnnounceType, Paper, ParseProblem, ParseResult, SourceName

__all__ = ["INT32_MAX", "within_limits"]

# INTEGER columns are 32-bit signed on PostgreSQL.
INT32_MAX = 2**31 - 1
# papers.arxiv_id, deliveries.arxiv_id and papers.primary_category are VARCHAR(64).
ID_MAX = 64
CATEGORY_MAX = 64
FIRST_YEAR, LAST_YEAR = 1900, 2100
# Far beyond any real value (arXiv caps abstracts at 1,920 characters; titles run to about
# 300), small enough that what outputs and the search index do with a paper stays bounded.
TEXT_MAX = {
    "title": 1_000,
    "abstract": 10_000,
    "comment": 4_000,
    "journal_ref": 1_000,
    "ai_summary": 10_000,
    "organization": 500,
}
# Identifiers are dropped rather than cut: a cut DOI points somewhere else.
DOI_MAX = 256
URL_MAX = 2_048
URL_FIELDS = ("pdf_url", "github_repo", "project_page", "thumbnail")
COUNT_FIELDS = ("upvotes", "num_comments", "github_stars")
# (most items, most characters in all items): the largest author lists run to about 5,000.
LIST_MAX = {
    "authors": (10_000, 200_000),
    "categories": (100, 2_000),
    "ai_keywords": (200, 10_000),
}

# The same, as plain names for _fits (a global name is found faster than a dict item).
_TITLE_MAX, _ABSTRACT_MAX, _COMMENT_MAX = (TEXT_MAX[k] for k in ("title", "abstract", "comment"))
_JOURNAL_REF_MAX, _AI_SUMMARY_MAX, _ORGANIZATION_MAX = (
    TEXT_MAX[k] for k in ("journal_ref", "ai_summary", "organization")
)
(_MOST_AUTHORS, _AUTHOR_CHARACTERS), (_MOST_CATEGORIES, _CATEGORY_CHARACTERS) = (
    LIST_MAX["authors"],
    LIST_MAX["categories"],
)
_MOST_KEYWORDS, _KEYWORD_CHARACTERS = LIST_MAX["ai_keywords"]

# Tuples, not sets: ``in`` then compares, and a stray list in the field cannot raise.
SOURCES: tuple[str, ...] = get_args(SourceName)
ANNOUNCE_TYPES: tuple[str, ...] = get_args(AnnounceType)
# ids.split_arxiv_id's shape without the version: new style and old style.
# ASCII only: \d takes Arabic-Indic digits, and [a-z] ignoring case takes the Kelvin sign.
_BARE_ID = re.compile(
    r"[0-9]{4}\.[0-9]{4,5}|[a-z]+(?:-[a-z]+)*(?:\.[a-z]{2})?/[0-9]{7}", re.IGNORECASE | re.ASCII
)
_REFUSED_CHARACTERS = re.compile("[\x00\ud800-\udfff]")
_WEB = ("https://", "http://")
_QUOTE = 80


def within_limits(parsed: ParseResult, url: str) -> ParseResult:
    """``parsed`` with every paper held to the limits: broken papers skipped and bad fields
    dropped or cut, each reported as a problem naming source, ``url`` and paper id."""
    problems = parsed.problems
    papers = parsed.papers
    if not all(map(_fits, papers)):
        problems = list(problems)
        papers = [
            fixed
            for paper in papers
            if (fixed := paper if _fits(paper) else _fix(paper, url, problems)) is not None
        ]
    return ParseResult(papers, problems, parsed.total_results)


def _fits(paper: Paper) -> bool:
    """True for a paper within every limit: the usual case, checked in about 3 us.

    Written out inline, without a call per field: it runs for every paper parsed. Any value
    of a wrong type makes it raise or return False, and the slow path says what is wrong.
    """
    comment, journal_ref, doi = paper.comment, paper.journal_ref, paper.doi
    summary, organization, category = paper.ai_summary, paper.organization, paper.primary_category
    authors, categories, keywords = paper.authors, paper.categories, paper.ai_keywords
    if not (type(authors) is tuple and type(categories) is tuple and type(keywords) is tuple):
        return False
    try:
        # One string to check for refused characters; join also refuses anything not text.
        text = "\x1f".join(
            [
                paper.title,
                paper.abstract,
                "" if comment is None else comment,
                "" if journal_ref is None else journal_ref,
                "" if doi is None else doi,
                "" if summary is None else summary,
                "" if organization is None else organization,
                "" if category is None else category,
                *authors,
                *categories,
                *keywords,
            ]
        )
        arxiv_id, version = paper.arxiv_id, paper.version
        upvotes, comments, stars = paper.upvotes, paper.num_comments, paper.github_stars
        day, published, updated = paper.listed_on, paper.published_at, paper.updated_at
        pdf, repo, page, thumbnail = (
            paper.pdf_url,
            paper.github_repo,
            paper.project_page,
            paper.thumbnail,
        )
        # Counts are tested with type(), not isinstance(): True is not a count.
        return (
            _storable(text)
            and type(arxiv_id) is str
            and len(arxiv_id) <= ID_MAX
            and _BARE_ID.fullmatch(arxiv_id) is not None
            and (version is None or (type(version) is int and 0 < version <= INT32_MAX))
            and paper.title != ""
            and paper.source in SOURCES
            and paper.sources == (paper.source,)
            and (paper.announce_type is None or paper.announce_type in ANNOUNCE_TYPES)
            and (upvotes is None or (type(upvotes) is int and 0 <= upvotes <= INT32_MAX))
            and (comments is None or (type(comments) is int and 0 <= comments <= INT32_MAX))
            and (stars is None or (type(stars) is int and 0 <= stars <= INT32_MAX))
            and (day is None or (type(day) is date and FIRST_YEAR <= day.year <= LAST_YEAR))
            and (
                published is None
                or (
                    type(published) is datetime
                    and published.tzinfo is not None
                    and FIRST_YEAR <= published.year <= LAST_YEAR
                )
            )
            and (
                updated is None
                or (
                    type(updated) is datetime
                    and updated.tzinfo is not None
                    and FIRST_YEAR <= updated.year <= LAST_YEAR
                )
            )
            and (
                pdf is None
                or (
                    pdf.startswith(_WEB)
                    and len(pdf) <= URL_MAX
                    and pdf.isprintable()
                    and " " not in pdf
                )
            )
            and (
                repo is None
                or (
                    repo.startswith(_WEB)
                    and len(repo) <= URL_MAX
                    and repo.isprintable()
                    and " " not in repo
                )
            )
            and (
                page is None
                or (
                    page.startswith(_WEB)
                    and len(page) <= URL_MAX
                    and page.isprintable()
                    and " " not in page
                )
            )
            and (
                thumbnail is None
                or (
                    thumbnail.startswith(_WEB)
                    and len(thumbnail) <= URL_MAX
                    and thumbnail.isprintable()
                    and " " not in thumbnail
                )
            )
            and len(paper.title) <= _TITLE_MAX
            and len(paper.abstract) <= _ABSTRACT_MAX
            # Each optional text is a str or None now: join took it, and None became "".
            and (comment is None or len(comment) <= _COMMENT_MAX)
            and (journal_ref is None or len(journal_ref) <= _JOURNAL_REF_MAX)
            and (summary is None or len(summary) <= _AI_SUMMARY_MAX)
            and (organization is None or len(organization) <= _ORGANIZATION_MAX)
            and (doi is None or len(doi) <= DOI_MAX)
            and (category is None or len(category) <= CATEGORY_MAX)
            and len(authors) <= _MOST_AUTHORS
            and len(categories) <= _MOST_CATEGORIES
            and len(keywords) <= _MOST_KEYWORDS
            and sum(map(len, categories)) <= _CATEGORY_CHARACTERS
            # The whole text bounds the other lists' characters: rarely worth adding them up.
            and (
                len(text) <= _KEYWORD_CHARACTERS
                or (
                    sum(map(len, authors)) <= _AUTHOR_CHARACTERS
                    and sum(map(len, keywords)) <= _KEYWORD_CHARACTERS
                )
            )
        )
    except (TypeError, AttributeError):  # a value of the wrong type
        return False


def _storable(text: str) -> bool:
    """Whether both stores take every character: no NUL (PostgreSQL refuses it) and no lone
    surrogate (neither can encode one)."""
    if "\x00" in text:
        return False
    if text.isascii():  # O(1): CPython knows
        return True
    try:
        text.encode()  # about 1.5 ns a character, many times faster than a regex search
    except UnicodeEncodeError:
        return False
    return True


def _count(value: object) -> bool:
    return value is None or (type(value) is int and 0 <= value <= INT32_MAX)


def _day(value: object) -> bool:
    return value is None or (type(value) is date and FIRST_YEAR <= value.year <= LAST_YEAR)


def _instant(value: object) -> bool:
    return value is None or (
        type(value) is datetime
        and FIRST_YEAR <= value.year <= LAST_YEAR
        and value.utcoffset() is not None  # the store keeps aware UTC times only
    )


def _url(value: object) -> bool:
    return value is None or (
        type(value) is str
        and len(value) <= URL_MAX
        and value.startswith(_WEB)
        and value.isprintable()
        and " " not in value
    )


# --- the slow path: a paper outside some limit ------------------------------------------------


def _fix(paper: Paper, url: str, problems: list[ParseProblem]) -> Paper | None:
    """The paper with its bad fields dropped or cut, or None when it must be skipped; each
    decision is added to ``problems``."""
    source = paper.source if paper.source in SOURCES else str(paper.source)[:_QUOTE]
    broken = _broken_identity(paper)
    if broken is not None:
        record = paper.arxiv_id if _id_fits(paper.arxiv_id) else _quote(paper.arxiv_id)
        problems.append(ParseProblem(source, url, broken, record))
        return None
    changes: dict[str, object] = {}

    def note(name: str, what: str) -> None:
        problems.append(ParseProblem(source, url, f"{name} {what}", paper.arxiv_id, name))

    for name, limit in TEXT_MAX.items():
        value = getattr(paper, name)
        if value == "" or (value is None and name != "abstract"):  # the abstract is required
            continue
        text, why = _text(value, limit)
        if why is None:
            continue
        if name == "title" and not text:
            problems.append(ParseProblem(source, url, f"title {why}: nothing left", paper.arxiv_id))
            return None
        changes[name] = text if text or name == "abstract" else None
        note(name, why)
    for name, keep in (("doi", DOI_MAX), ("primary_category", CATEGORY_MAX)):
        value = getattr(paper, name)
        if value is None:
            continue
        text, why = _text(value, None)
        if len(text) > keep:
            changes[name] = None
            note(name, f"is {len(text):,} characters, more than {keep}; dropped")
        elif why is not None:
            changes[name] = text or None
            note(name, why)
    for name, (most, characters) in LIST_MAX.items():
        value = getattr(paper, name)
        items, why = _items(value, most, characters)
        if why is not None or type(value) is not tuple:
            changes[name] = items
        if why is not None:
            note(name, why)
    if paper.sources != (paper.source,):
        listed = paper.sources if isinstance(paper.sources, tuple | list) else ()
        known = tuple(s for s in listed if s in SOURCES) or (paper.source,)
        if known != paper.sources:
            changes["sources"] = known
            note("sources", f"{_quote(paper.sources)} names unknown sources; kept {known}")
    for name, check, what in _DROPPED_UNLESS:
        value = getattr(paper, name)
        if not check(value):
            changes[name] = None
            note(name, f"{_quote(value)} is not {what}; dropped")
    if paper.listed_on_estimated and changes.get("listed_on", paper.listed_on) is None:
        changes["listed_on_estimated"] = False  # no day left to call an estimate
    return paper.with_changes(**changes) if changes else paper


_DROPPED_UNLESS: tuple[tuple[str, Callable[[object], bool], str], ...] = (
    *((name, _count, f"a count from 0 to {INT32_MAX:,}") for name in COUNT_FIELDS),
    ("listed_on", _day, f"a date from {FIRST_YEAR} to {LAST_YEAR}"),
    *(
        (name, _instant, f"a time with a zone from {FIRST_YEAR} to {LAST_YEAR}")
        for name in ("published_at", "updated_at")
    ),
    *((name, _url, f"an http(s) URL of at most {URL_MAX:,} characters") for name in URL_FIELDS),
    (
        "announce_type",
        lambda value: value is None or value in ANNOUNCE_TYPES,
        "an arXiv announce type",
    ),
)


def _id_fits(arxiv_id: object) -> bool:
    return (
        type(arxiv_id) is str
        and len(arxiv_id) <= ID_MAX
        and _BARE_ID.fullmatch(arxiv_id) is not None
    )


def _broken_identity(paper: Paper) -> str | None:
    """Why the paper cannot be stored at all, or None."""
    if not _id_fits(paper.arxiv_id):
        return f"paper id {_quote(paper.arxiv_id)} is not a bare arXiv id of at most {ID_MAX} characters"
    version = paper.version
    if version is not None and not (type(version) is int and 0 < version <= INT32_MAX):
        return f"version {_quote(version)} is not from 1 to {INT32_MAX:,}"
    if paper.source not in SOURCES:
        return f"source {_quote(paper.source)} is not one of {', '.join(sorted(SOURCES))}"
    if type(paper.title) is not str or not paper.title:
        return "paper has no title"
    return None


def _text(value: object, limit: int | None) -> tuple[str, str | None]:
    """The text held to the limits, and what was wrong with it (None: nothing)."""
    if type(value) is not str:
        return "", f"is {type(value).__name__}, not text; dropped"
    notes = []
    if limit is not None and len(value) > limit:
        notes.append(f"was {len(value):,} characters; cut to {limit:,}")
        value = value[:limit].rstrip()
    if not _storable(value):
        value = _REFUSED_CHARACTERS.sub("", value)
        notes.append("had characters no store takes (NUL, lone surrogates); removed them")
    return value, "; ".join(notes) or None


def _items(values: object, most: int, characters: int) -> tuple[tuple[str, ...], str | None]:
    """A list field's items held to the limits, and what was done (None: nothing)."""
    if not isinstance(values, tuple | list):
        return (), f"is {type(values).__name__}, not a list; dropped"
    kept: list[str] = []
    notes: list[str] = []
    total = 0
    for value in values:
        text, why = _text(value, None)
        if why is not None and why not in notes:
            notes.append(f"an item {why}")
        if not text:
            continue
        if len(kept) == most or total + len(text) > characters:
            notes.append(f"had {len(values):,} items; kept the first {len(kept):,}")
            break
        kept.append(text)
        total += len(text)
    return tuple(kept), "; ".join(notes) or None


def _quote(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…"
