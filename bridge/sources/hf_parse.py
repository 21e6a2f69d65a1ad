"""Turn Hugging Face Daily Papers responses (the JSON API and the listing page) into Papers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit

from selectolax.lexbor import LexborHTMLParser

from bridge.ids import split_arxiv_id
from bridge.models import Paper, ParseProblem, ParseResult, SourceName
from bridge.text import clean_text

__all__ = ["parse_api", "parse_html"]

SOURCE: SourceName = "hf"

# Selected by data-target, never by position: RSSHub's positional selector broke on a redesign.
_HYDRATER = '[data-target="DailyPapers"]'
# Real ids and paper URLs are far shorter; refusing longer strings keeps garbage away from the
# id regex and bounds the text quoted back in problems.
_MAX_ID = 200
_MAX_QUOTE = 80
# Counts live in 32-bit columns downstream; anything outside is garbage, not a count.
_MAX_COUNT = 2**31 - 1


def parse_api(text: str | bytes, url: str) -> ParseResult:
    """Read the JSON array of ``GET /api/daily_papers`` (or ``/api/papers/search``).

    Never raises: unreadable records are skipped and reported in ``problems``; a response
    that cannot be read at all gives no papers and one problem saying why.
    """
    data, why = _load_json(text)
    if why is not None:
        return _unreadable(url, why)
    if not isinstance(data, list):
        return _unreadable(url, f"expected a JSON array of papers, got {_describe(data)}")
    return _parse_items(data, url, _date_from_url(url))


def parse_html(text: str | bytes, url: str) -> ParseResult:
    """Read a Daily Papers listing page (``/papers?date=...``, ``/papers/date/...``).

    The page embeds the API items as JSON in the DailyPapers hydrater; when that is missing
    or broken, the ``<article>`` cards still give id, title, upvotes and comment count.
    Never raises, like :func:`parse_api`.
    """
    try:
        tree = LexborHTMLParser(text)
    except (TypeError, ValueError) as exc:
        return _unreadable(url, f"not HTML: {exc}")
    hydrater = tree.css_first(_HYDRATER)
    if hydrater is None:
        why = "no DailyPapers element"
    else:
        items, page_date, why = _read_props(hydrater.attrs.get("data-props"))
        if items is not None:
            return _parse_items(items, url, page_date or _date_from_url(url))
    return _parse_cards(tree, url, why)


def _load_json(text: object) -> tuple[object, str | None]:
    if isinstance(text, str) and text.startswith("\ufeff"):
        # json.loads decodes a BOM in bytes but rejects one in str; proxies sometimes add it.
        text = text[1:]
    try:
        return json.loads(text), None  # type: ignore[arg-type]
    except RecursionError:
        return None, "JSON nested too deeply"
    except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        return None, f"not JSON: {exc}"


def _read_props(raw: str | None) -> tuple[list[object] | None, date | None, str]:
    """The dailyPapers items and the page's listing day, or why they cannot be read."""
    if raw is None:
        return None, None, "DailyPapers element has no data-props"
    props, why = _load_json(raw)
    if why is not None:
        return None, None, f"DailyPapers data-props is {why}"
    if not isinstance(props, dict):
        return None, None, f"DailyPapers data-props is {_describe(props)}, not an object"
    items = props.get("dailyPapers")
    if not isinstance(items, list):
        return None, None, "DailyPapers data-props has no dailyPapers list"
    # Week and month pages (periodType, 2025 on) list several days under one `date`.
    page_date = _day(props.get("date")) if props.get("periodType", "day") == "day" else None
    return items, page_date, ""


def _parse_items(items: list[object], url: str, page_date: date | None) -> ParseResult:
    papers: list[Paper] = []
    problems: list[ParseProblem] = []
    for index, item in enumerate(items):
        read = _read_item(item, index, url, page_date)
        if isinstance(read, Paper):
            papers.append(read)
        else:
            problems.append(read)
    return ParseResult(papers, problems)


def _read_item(item: object, index: int, url: str, page_date: date | None) -> Paper | ParseProblem:
    if not isinstance(item, dict):
        return ParseProblem(SOURCE, url, f"item is {_describe(item)}, not an object", str(index))
    if "paper" in item:
        inner = item["paper"]
        if not isinstance(inner, dict):
            problem = f"'paper' is {_describe(inner)}, not an object"
            return ParseProblem(SOURCE, url, problem, str(index))
    elif "id" in item:
        # Some endpoints give the paper object bare, with no wrapping item.
        inner = item
    else:
        return ParseProblem(SOURCE, url, "item has neither 'paper' nor 'id'", str(index))

    raw_id = inner.get("id")
    if not isinstance(raw_id, str):
        problem = f"paper id is {_describe(raw_id)}, not a string"
        return ParseProblem(SOURCE, url, problem, str(index))
    found = split_arxiv_id(raw_id) if len(raw_id) <= _MAX_ID else None
    if found is None:
        problem = f"paper id {raw_id[:_MAX_QUOTE]!r} is not an arXiv id"
        return ParseProblem(SOURCE, url, problem, str(index))
    arxiv_id, version = found

    # The outer title is HF's unwrapped copy; the 2024 paper.title keeps arXiv's "\n  " wraps.
    title = _clean(item.get("title")) or _clean(inner.get("title"))
    if not title:
        return ParseProblem(SOURCE, url, "paper has no title", arxiv_id)

    # The outer publishedAt was the featuring time in 2024 but is the arXiv date (minus 4 h)
    # in 2026, so it comes after the day the page or URL asked for; a bare paper has none.
    listed_on = _day(inner.get("submittedOnDailyAt")) or page_date
    if listed_on is None and inner is not item:
        listed_on = _day(item.get("publishedAt"))

    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=_clean(item.get("summary")) or _clean(inner.get("summary")),
        authors=_authors(inner.get("authors")),
        version=version,
        source=SOURCE,
        listed_on=listed_on,
        published_at=_instant(inner.get("publishedAt")),
        upvotes=_count(inner.get("upvotes")),
        num_comments=_count(item.get("numComments")),
        github_repo=_optional_text(inner.get("githubRepo")),
        github_stars=_count(inner.get("githubStars")),
        project_page=_optional_text(inner.get("projectPage")),
        ai_summary=_optional_text(inner.get("ai_summary")),
        ai_keywords=_texts(inner.get("ai_keywords")),
        thumbnail=_optional_text(item.get("thumbnail")) or _optional_text(inner.get("thumbnail")),
        organization=_organization(item.get("organization"), inner.get("organization")),
    )


def _parse_cards(tree: LexborHTMLParser, url: str, why: str) -> ParseResult:
    page_date = _date_from_url(url)
    papers: list[Paper] = []
    problems: list[ParseProblem] = []
    for index, card in enumerate(tree.css("article")):
        link = card.css_first('h3 > a[href*="/papers/"]')
        if link is None:
            continue
        href = link.attrs.get("href") or ""
        if "/papers/date/" in href or "/papers/week/" in href or "/papers/month/" in href:
            continue
        found = split_arxiv_id(href) if len(href) <= _MAX_ID else None
        if found is None:
            problem = f"card link {href[:_MAX_QUOTE]!r} has no arXiv id"
            problems.append(ParseProblem(SOURCE, url, problem, str(index)))
            continue
        arxiv_id, version = found
        title = _clean(link.text())
        if not title:
            problems.append(ParseProblem(SOURCE, url, "card has no title", arxiv_id))
            continue
        # The "Submitted by" badge shares the leading-none class; the vote count is the
        # one that is a number.
        upvotes = None
        for box in card.css("div.leading-none"):
            upvotes = _count_text(box.text(strip=True))
            if upvotes is not None:
                break
        comments = card.css_first('a[href$="#community"]')
        papers.append(
            Paper(
                arxiv_id=arxiv_id,
                title=title,
                version=version,
                source=SOURCE,
                listed_on=page_date,
                upvotes=upvotes,
                num_comments=_count_text(comments.text(strip=True)) if comments else None,
            )
        )
    if not papers and not problems:
        return _unreadable(url, f"{why} and no paper cards")
    fallback = f"{why}; read {len(papers)} article cards instead (no abstracts or authors)"
    return ParseResult(papers, [ParseProblem(SOURCE, url, fallback), *problems])


def _unreadable(url: str, why: str) -> ParseResult:
    return ParseResult([], [ParseProblem(SOURCE, url, why)])


def _describe(value: object) -> str:
    if isinstance(value, dict):
        error = value.get("error")
        # HF answers a bad request with {"error": "..."}; quoting it saves a trip to the logs.
        if isinstance(error, str):
            return f"an error object ({error[:_MAX_QUOTE]!r})"
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


def _authors(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    names = []
    for author in value:
        if isinstance(author, dict):
            # Any truthy `hidden` counts: when unsure, respect an author's wish to be hidden.
            name = "" if author.get("hidden") else _clean(author.get("name"))
        else:
            name = _clean(author)
        if name:
            names.append(name)
    return tuple(names)


def _organization(*candidates: object) -> str | None:
    for org in candidates:
        if isinstance(org, dict):
            name = _clean(org.get("fullname")) or _clean(org.get("name"))
            if name:
                return name
    return None


def _clean(value: object) -> str:
    """Exactly ``clean_text(value)``, without its regex pass when there is nothing to clean.

    Most names, keywords and titles are already clean, and the regex was most of the
    parser's time. Every character ``\\s`` matches, except the plain space, is unprintable,
    so a printable string with no entity, no double space and no edge space is unchanged
    by clean_text. tests/test_hf_parse.py checks the two agree.
    """
    if (
        isinstance(value, str)
        and "&" not in value
        and "  " not in value
        and value.isprintable()
        and value[:1] != " "
        and value[-1:] != " "
    ):
        return value
    return clean_text(value)


def _optional_text(value: object) -> str | None:
    return _clean(value) or None


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(text for text in map(_clean, value) if text)


def _count(value: object) -> int | None:
    # type() rather than isinstance(): JSON true is not one upvote.
    if type(value) is int and 0 <= value <= _MAX_COUNT:
        return value
    return None


def _count_text(text: str) -> int | None:
    text = text.replace(",", "")
    # isdigit() alone admits "²" and other digits int() refuses.
    if text.isascii() and text.isdigit() and len(text) <= 10:
        return _count(int(text))
    return None


def _day(value: object) -> date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        # HF writes every time in UTC with a Z; a bare time is still UTC.
        return moment.replace(tzinfo=UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # e.g. year 1 with a positive offset
        return None


def _date_from_url(url: str) -> date | None:
    """The day a listing URL asks for: ``?date=YYYY-MM-DD`` or ``/papers/date/YYYY-MM-DD``."""
    try:
        parts = urlsplit(url)
    except (ValueError, TypeError, AttributeError):
        return None
    candidates = parse_qs(parts.query).get("date", [])
    marker = "/papers/date/"
    if marker in parts.path:
        candidates.append(parts.path.split(marker, 1)[1].split("/", 1)[0])
    for candidate in candidates:
        if len(candidate) == 10:
            day = _day(candidate)
            if day is not None:
                return day
    return None
