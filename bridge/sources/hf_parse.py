"""Turn Hugging Face Daily Papers responses (the JSON API and the listing page) into Papers."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from selectolax.lexbor import LexborHTMLParser

from bridge.ids import split_arxiv_id
from bridge.models import Paper, ParseProblem, ParseResult, SourceName
from bridge.sources import html_cost
from bridge.text import clean_text

_fast_loads: Callable[[str | bytes], Any] | None
try:
    from orjson import loads as _fast_loads
except ImportError:  # optional speed-up; the stdlib decoder gives the same values
    _fast_loads = None

__all__ = ["parse_api", "parse_html", "parse_records", "quick_clean", "quick_clean_all"]

SOURCE: SourceName = "hf"

# Selected by data-target, never by position: RSSHub's positional selector broke on a redesign.
_HYDRATER = '[data-target="DailyPapers"]'
# A single paper's page (/papers/<id>) carries that paper the way a listing item does.
_PAPER_HYDRATER = '[data-target="PaperContent"]'
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


def parse_records(records: Sequence[bytes], url: str, first: int = 0) -> ParseResult:
    """Read elements of an API response's JSON array, each given as the bytes it is written
    with (``bridge.sources.json_records``); ``first`` is the index of the first in the array.

    A big file comes in pieces of a few hundred records: the piece is decoded in one go, and
    only when that fails is each record decoded on its own, so that one bad record is
    reported and the rest kept. Never raises, like :func:`parse_api`.
    """
    page_date = _date_from_url(url)
    if _fast_loads is not None:
        try:
            items = _fast_loads(b"[" + b",".join(records) + b"]")
        except (ValueError, TypeError):
            pass
        else:
            return _parse_items(items, url, page_date, first)
    papers: list[Paper] = []
    problems: list[ParseProblem] = []
    for index, raw in enumerate(records, first):
        # Bytes that are not UTF-8 are replaced, as when a whole file is read.
        item, why = _load_json(raw.decode("utf-8", "replace"))
        read = (
            ParseProblem(SOURCE, url, f"record is {why}", str(index))
            if why is not None
            else _read_item(item, index, url, page_date)
        )
        if isinstance(read, Paper):
            papers.append(read)
        else:
            problems.append(read)
    return ParseResult(papers, problems)


def parse_html(text: str | bytes, url: str) -> ParseResult:
    """Read a Daily Papers listing page (``/papers?date=...``, ``/papers/date/...``), or a
    paper's own page (``/papers/<id>``).

    The page embeds the API items as JSON in the DailyPapers hydrater; when that is missing
    or broken, the ``<article>`` cards still give id, title, upvotes and comment count.
    Never raises, like :func:`parse_api`.
    """
    try:
        return _parse_page(text, url)
    except Exception as exc:  # the contract is "never raises"; the caller logs the problem
        return _unreadable(url, f"parser failed: {type(exc).__name__}: {exc}")


def _parse_page(text: str | bytes, url: str) -> ParseResult:
    if isinstance(text, bytes | bytearray | memoryview):
        # Decoded here rather than by selectolax, whose releases differ: 0.3 raises
        # UnicodeDecodeError reading an attribute that holds bytes invalid in UTF-8.
        text = bytes(text).decode("utf-8-sig", "replace")
    if not isinstance(text, str):
        return _unreadable(url, f"expected str or bytes, got {type(text).__name__}")
    checked = html_cost.check(text)
    if checked.refusal:
        return _unreadable(url, f"unreadable page: {checked.refusal}")
    tree = LexborHTMLParser(checked.page)
    hydrater = tree.css_first(_HYDRATER)
    if hydrater is None and (paper_page := tree.css_first(_PAPER_HYDRATER)) is not None:
        return _parse_paper_page(paper_page.attrs.get("data-props"), url)
    if hydrater is None:
        why = "no DailyPapers element"
    else:
        items, page_date, why = _read_props(hydrater.attrs.get("data-props"))
        if items is not None:
            return _parse_items(items, url, page_date or _date_from_url(url))
    return _parse_cards(tree, url, why)


def _parse_paper_page(raw: str | None, url: str) -> ParseResult:
    if raw is None:
        return _unreadable(url, "PaperContent element has no data-props")
    props, why = _load_json(raw)
    if why is not None:
        return _unreadable(url, f"PaperContent data-props is {why}")
    if not isinstance(props, dict) or not isinstance(props.get("paper"), dict):
        return _unreadable(url, "PaperContent data-props has no paper object")
    comments = props.get("comments")
    item = {"paper": props["paper"]}
    if isinstance(comments, list):
        item["numComments"] = len(comments)
    return _parse_items([item], url, None)


def _load_json(text: object) -> tuple[object, str | None]:
    if isinstance(text, str) and text.startswith("\ufeff"):
        # json.loads decodes a BOM in bytes but rejects one in str; proxies sometimes add it.
        text = text[1:]
    if _fast_loads is not None and isinstance(text, str | bytes):
        # orjson decodes a page 1.6-1.8 times as fast, and whatever it accepts it reads as
        # the stdlib does, except integers beyond 64 bits, which become floats: no field
        # read here tells the two apart (counts fit 32 bits, ids and texts are strings).
        # What it refuses (lone surrogates, NaN, a BOM or UTF-16 in bytes, overflowing
        # numbers, deep nesting, plain bad JSON) the stdlib decides on, with its own error.
        try:
            return _fast_loads(text), None
        except (ValueError, TypeError):  # orjson.JSONDecodeError is a ValueError
            pass
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


def _parse_items(
    items: list[object], url: str, page_date: date | None, first: int = 0
) -> ParseResult:
    papers: list[Paper] = []
    problems: list[ParseProblem] = []
    for index, item in enumerate(items, first):
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
    title = quick_clean(item.get("title")) or quick_clean(inner.get("title"))
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
        abstract=quick_clean(item.get("summary")) or quick_clean(inner.get("summary")),
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
        title = quick_clean(link.text())
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
            if not author.get("hidden"):
                names.append(author.get("name"))
        else:
            names.append(author)
    return quick_clean_all(names)


def _organization(*candidates: object) -> str | None:
    for org in candidates:
        if isinstance(org, dict):
            name = quick_clean(org.get("fullname")) or quick_clean(org.get("name"))
            if name:
                return name
    return None


def _ascii_table() -> bytes:
    """The bytes.translate table of quick_clean's second shortcut.

    Every ASCII character str.split() splits on becomes a space, and every one clean_text
    removes (bridge.text._UNCARRIABLE) becomes NUL, itself one of them, to be found with
    one search. Without deletions bytes.translate takes its fast loop.
    """
    table = bytearray(range(256))
    for code in b"\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f":
        table[code] = 0x20
    for code in (*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F):
        table[code] = 0x00
    return bytes(table)


_SPACED = _ascii_table()
# Below this length checking a string costs less than rebuilding it.
_SHORT = 128


def quick_clean(value: object) -> str:
    """Exactly ``clean_text(value)``, several times faster on the usual input.

    Two shortcuts, each an exact equivalent; anything else goes to clean_text itself:

    * A printable string with no entity, no double space and no edge space is already
      clean: every character ``\\s`` matches except the plain space is unprintable. Most
      names, keywords and titles are like this, and are returned as they are.
    * Other text with no entity (most abstracts) is cleaned as UTF-8 bytes: one translate
      turns ASCII whitespace into spaces and ASCII controls clean_text drops into NUL, then
      runs of spaces are collapsed and the ends stripped. Non-ASCII characters pass
      untouched, so non-ASCII text must come out printable: the non-ASCII characters
      clean_text would have changed (whitespace, U+FFFE, U+FFFF, the invisible format
      characters) are all unprintable, and lone surrogates cannot be encoded at all.

    tests/test_hf_parse.py checks that it agrees with clean_text.
    """
    if type(value) is not str or "&" in value:
        return clean_text(value)
    is_ascii = value.isascii()
    if (
        (len(value) < _SHORT or not is_ascii)
        and "  " not in value
        and value.isprintable()
        and value[:1] != " "
        and value[-1:] != " "
    ):
        return value
    try:
        data = value.encode().translate(_SPACED)
    except UnicodeEncodeError:  # a lone surrogate
        return clean_text(value)
    if b"\x00" in data:  # an ASCII control character clean_text drops
        return clean_text(value)
    while b"  " in data:
        data = data.replace(b"  ", b" ")
    text = data.strip(b" ").decode()
    return text if is_ascii or text.isprintable() else clean_text(value)


def quick_clean_all(values: list[Any]) -> tuple[str, ...]:
    """Exactly ``tuple(t for t in map(clean_text, values) if t)``: the non-empty cleaned texts.

    Names and keywords come in lists of ten or twenty short strings that are nearly always
    clean already, so the list is checked in one go, as one string joined on "|": it passes
    :func:`quick_clean`'s first shortcut only if every piece does, and a "|" next to a space
    or another "|" marks a piece with an edge space or an empty one. Anything doubtful,
    including a "|" inside a name, is cleaned piece by piece.
    """
    try:
        joined = "|".join(values)
    except TypeError:  # something other than a string among them
        joined = "&"
    if (
        "&" in joined
        or "  " in joined
        or "| " in joined
        or " |" in joined
        or "||" in joined
        or joined[:1] in " |"  # also true for "": an empty list or a lone empty string
        or joined[-1:] in " |"
        or not joined.isprintable()
    ):
        return tuple(text for text in map(quick_clean, values) if text)
    return tuple(values)


def _optional_text(value: object) -> str | None:
    if value is None:  # most optional fields, most of the time
        return None
    return quick_clean(value) or None


def _texts(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return quick_clean_all(value)


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
