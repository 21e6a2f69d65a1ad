"""Pure parsers for arXiv responses: the rss.arxiv.org listing (RSS 2.0 or Atom) and the API."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from io import BytesIO
from typing import Any
from xml.sax.saxutils import quoteattr

from lxml import etree

from bridge import ids
from bridge.models import AnnounceType, Paper, ParseProblem, ParseResult, SourceName
from bridge.sources.hf_parse import quick_clean, quick_clean_all
from bridge.text import clean_text

__all__ = ["parse_api", "parse_listing", "split_authors"]

SOURCE: SourceName = "arxiv"

_ATOM = "{http://www.w3.org/2005/Atom}"

# Entity expansion off (billion laughs, XXE), no network, libxml2's default size limits
# kept; comments and PIs removed so element text is only text and unresolved entities.
_PARSER_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "huge_tree": False,
    "load_dtd": False,
    "remove_comments": True,
    "remove_pis": True,
}

_ANNOUNCE_TYPES: dict[str, AnnounceType] = {
    "new": "new",
    "cross": "cross",
    "replace": "replace",
    "replace-cross": "replace-cross",
}

# The listing serializer puts this in front of every abstract so that plain feed readers show
# it; the announce type in it is a fallback for a missing arxiv:announce_type element.
_ABSTRACT_PREFIX = re.compile(
    r"^arXiv:(?P<id>\S+)\s+Announce Type:\s*(?P<type>[A-Za-z-]+)\s*(?:Abstract:\s*)?"
)

# arXiv category shapes: cs.LG, math.DG, hep-th, physics.optics, q-bio.NC, cond-mat.str-el.
# The API also emits MSC and ACM classes as category terms ("53D10, 53D15", "I.2.7"); they
# are not arXiv categories and would pollute category filters.
_CATEGORY = re.compile(r"[a-z]+(?:-[a-z]+)*(?:\.[A-Za-z]+(?:-[A-Za-z]+)*)?")

_ATOM_NS = "http://www.w3.org/2005/Atom"
_ARXIV_NS = "http://arxiv.org/schemas/atom"
_DC_NS = "http://purl.org/dc/elements/1.1/"
_ATOM_NAME = f"{{{_ATOM_NS}}}name"

# The ids arXiv writes: the API's abs URL and the listing's OAI guid. ids.split_arxiv_id
# reads these exactly as this does, only several times more slowly.
_USUAL_ID = re.compile(r"(?:https?://arxiv\.org/abs/|oai:arXiv\.org:)(\d{4}\.\d{4,5})(?:v(\d+))?")


def _tag_names(read: Collection[str], skipped: Collection[str]) -> dict[str, str]:
    """Tag -> local name for the children an item is read from; skipped ones map to "".

    Fields are matched by local name in any namespace. The Clark names of the usual
    namespaces are listed so that a child's tag is one dict lookup; a child in another
    namespace is looked up again by its local name, which is also a key.
    """
    table = {}
    for name in [*read, *skipped]:
        local = name if name in read else ""
        table[name] = local
        for namespace in (_ATOM_NS, _ARXIV_NS, _DC_NS):
            table[f"{{{namespace}}}{name}"] = local
    return table


# The elements read as text; the rest (dc:rights, updated in a listing, ...) are skipped
# unread, which matters at 2,000 items.
_LISTING_FIELDS = frozenset(
    {"title", "description", "summary", "guid", "id", "pubDate", "published", "announce_type"}
    | {"DOI", "doi", "journal_reference", "journal_ref", "comment"}
)
_API_FIELDS = frozenset(
    {"id", "title", "summary", "published", "updated", "comment", "journal_ref", "doi"}
    | {"journal_reference", "DOI"}
)
_LISTING_TAGS = _tag_names(
    [*_LISTING_FIELDS, "category", "creator", "link", "author"], ["rights", "updated"]
)
_API_TAGS = _tag_names([*_API_FIELDS, "category", "primary_category", "author", "link"], [])

# Whether a category term has an arXiv category's shape, for the terms seen so far; there
# are a few hundred real ones, and the bounds keep junk from growing it for ever.
_CATEGORY_SHAPES: dict[str, bool] = {}
_CATEGORY_SHAPES_MAX = 4096
_CATEGORY_MAX_LEN = 64

_AUTHOR_TOKENS = re.compile(r"([(),])")

_POSITION_SUFFIX = re.compile(r",? line \d+, column \d+$")

# A damaged item's guid or id, found in its raw bytes to name it in a problem.
_RAW_ID = re.compile(rb"<(?:[\w.-]+:)?(?:guid|id)(?:\s[^>]*)?>\s*([^<\s]{1,200})\s*<")

# Long enough to identify a record, short enough that a hostile id cannot bloat a log line.
_RECORD_MAX = 200


def parse_listing(text: str | bytes, url: str) -> ParseResult:
    """Read an rss.arxiv.org listing, RSS 2.0 or Atom; never raises.

    Bad items are skipped and reported in ``problems``; an unreadable document gives no
    papers and one problem saying why.
    """
    return _parse(text, url, _LISTING)


def parse_api(text: str | bytes, url: str) -> ParseResult:
    """Read an export.arxiv.org/api/query Atom response, current or legacy; never raises.

    An API error entry is reported as a problem, never as a paper. ``total_results`` is the
    upstream's opensearch:totalResults.
    """
    return _parse(text, url, _API)


def split_authors(creator: str) -> tuple[str, ...]:
    """Split a listing's ``dc:creator`` into names, dropping parenthesised affiliations.

    The serializer writes ``Name (Affiliation, City), Other Name``, so commas inside
    parentheses do not separate authors.
    """
    if "(" not in creator and ")" not in creator:
        if "&" not in creator and "  " not in creator and creator.isprintable():
            # Clean already but for the spaces after the commas; strip() is then clean_text.
            return tuple(name for name in (piece.strip() for piece in creator.split(",")) if name)
        return _names(creator.split(","))
    names: list[str] = []
    current: list[str] = []
    depth = 0
    for token in _AUTHOR_TOKENS.split(creator):
        if token == "(":
            depth += 1
        elif token == ")":
            depth = max(depth - 1, 0)
        elif depth == 0:
            if token == ",":
                names.append("".join(current))
                current = []
            else:
                current.append(token)
    if depth > 0:
        # An unclosed "(" would swallow every later author; assume it only runs to the
        # next comma instead, which loses at most part of one affiliation.
        return _names(re.sub(r"\([^()]*\)?|\)", "", piece) for piece in creator.split(","))
    names.append("".join(current))
    return _names(names)


def _names(pieces: Iterable[str]) -> tuple[str, ...]:
    return quick_clean_all(list(pieces))


# --- one item or entry -> Paper or ParseProblem --------------------------------------------


def _localname(tag: object) -> str:
    # Comments, PIs and unresolved entities have a function, not a string, as their tag.
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def _text(element: Any) -> str:
    if len(element) == 0:
        return element.text or ""
    # Mixed content (stray markup or an unresolved entity): keep all of the text.
    return "".join(element.itertext())


def _split_id(text: str) -> tuple[str, int | None] | None:
    """Exactly ``ids.split_arxiv_id(text)``, faster on the usual shapes."""
    usual = _USUAL_ID.fullmatch(text)
    if usual is None:
        return ids.split_arxiv_id(text)
    version = usual[2]
    return usual[1], int(version) if version else None


def _author_names(author: Any, names: list[str]) -> None:
    """Add the text of each <name> child of ``author``, in any namespace or none."""
    for node in author:
        tag = node.tag
        if tag == _ATOM_NAME or (tag.__class__ is str and tag[tag.rfind("}") + 1 :] == "name"):
            names.append(node.text or "" if len(node) == 0 else _text(node))


def _optional(value: str | None) -> str | None:
    return quick_clean(value) or None


def _is_category(term: str) -> bool:
    shaped = _CATEGORY_SHAPES.get(term)
    if shaped is None:
        shaped = _CATEGORY.fullmatch(term) is not None
        if len(term) <= _CATEGORY_MAX_LEN and len(_CATEGORY_SHAPES) < _CATEGORY_SHAPES_MAX:
            _CATEGORY_SHAPES[term] = shaped
    return shaped


def _record(raw_id: str | None, index: int) -> str:
    cleaned = clean_text(raw_id)
    return cleaned[:_RECORD_MAX] if cleaned else str(index)


def _day(value: str) -> date | None:
    """The calendar date of an RSS or ISO timestamp, in the timestamp's own timezone."""
    value = value.strip()
    # Real timestamps are about 31 characters; longer ones are junk and must not be cached.
    return _cached_day(value) if 0 < len(value) <= 64 else None


@lru_cache(maxsize=64)
def _cached_day(value: str) -> date | None:
    # Every item of a listing repeats the same pubDate, and parsing it is the slow part.
    parsed = _iso_datetime(value) if value[:4].isdigit() else _rfc822_datetime(value)
    return parsed.date() if parsed is not None else None


def _rfc822_datetime(value: str) -> datetime | None:
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _iso_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    # The API documents its times as UTC; a missing offset means UTC, not local time.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _pdf_url(arxiv_id: str, version: int | None) -> str:
    return ids.pdf_url(f"{arxiv_id}v{version}" if version else arxiv_id)


def _listing_item(item: Any, index: int, url: str) -> Paper | ParseProblem:
    texts: dict[str, str] = {}
    categories: list[str] = []
    creators: list[str] = []
    atom_authors: list[str] = []
    link = ""
    tags = _LISTING_TAGS
    for child in item:
        tag = child.tag
        name = tags.get(tag)
        if name is None:
            # Another namespace, or a comment, PI or entity (whose tag is a function).
            if tag.__class__ is not str:
                continue
            name = tags.get(tag[tag.rfind("}") + 1 :])
            if name is None:
                continue
        if not name:
            continue
        if name == "category":
            # RSS puts the category in the text, Atom in the term attribute.
            term = quick_clean(child.get("term") or _text(child))
            if term and term not in categories:
                categories.append(term)
        elif name == "creator":
            if len(child):
                # An older serializer wrapped each name in <a href=...search...>.
                creators.extend(_text(a) for a in child if _localname(a.tag))
            else:
                creators.append(child.text or "")
        elif name == "link":
            if not link and child.get("rel", "alternate") == "alternate":
                link = child.get("href") or _text(child)
        elif name == "author":
            _author_names(child, atom_authors)
        elif name not in texts:
            texts[name] = child.text or "" if len(child) == 0 else _text(child)

    raw_id = texts.get("guid") or texts.get("id")
    found = _split_id(raw_id) if raw_id else None
    if found is None and link:
        found = _split_id(link)
    if found is None:
        return ParseProblem(
            SOURCE, url, "item has no arXiv id in its guid or link", _record(raw_id, index)
        )
    arxiv_id, version = found

    title = quick_clean(texts.get("title"))
    if not title:
        return ParseProblem(SOURCE, url, "item has no title", _record(raw_id, index))

    abstract = quick_clean(texts.get("description") or texts.get("summary"))
    prefix_type = None
    prefix = _ABSTRACT_PREFIX.match(abstract)
    if prefix is not None:
        abstract = abstract[prefix.end() :]
        prefix_type = prefix["type"].lower()
        if version is None:
            prefixed = ids.split_arxiv_id(prefix["id"])
            if prefixed is not None and prefixed[0] == arxiv_id:
                version = prefixed[1]
    announce = _ANNOUNCE_TYPES.get(quick_clean(texts.get("announce_type")).lower())
    if announce is None and prefix_type is not None:
        announce = _ANNOUNCE_TYPES.get(prefix_type)

    authors: list[str] = []
    for creator in creators:
        authors.extend(split_authors(creator))
    if not authors:
        authors.extend(_names(atom_authors))

    listed_on = _day(texts.get("pubDate") or texts.get("published") or "")
    if listed_on is None:
        # Every item carries the channel's announcement day; fall back to the channel's own.
        parent = item.getparent()
        if parent is not None:
            listed_on = _day(parent.findtext("pubDate") or "")

    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        authors=tuple(authors),
        version=version,
        source=SOURCE,
        listed_on=listed_on,
        announce_type=announce,
        categories=tuple(categories),
        comment=_optional(texts.get("comment")),
        journal_ref=_optional(texts.get("journal_reference") or texts.get("journal_ref")),
        doi=_optional(texts.get("DOI") or texts.get("doi")),
        pdf_url=_pdf_url(arxiv_id, version),
    )


def _api_entry(entry: Any, index: int, url: str) -> Paper | ParseProblem:
    texts: dict[str, str] = {}
    categories: list[str] = []
    authors: list[str] = []
    primary = None
    pdf_url = None
    tags = _API_TAGS
    for child in entry:
        tag = child.tag
        name = tags.get(tag)
        if name is None:
            # Another namespace, or a comment, PI or entity (whose tag is a function).
            if tag.__class__ is not str:
                continue
            name = tags.get(tag[tag.rfind("}") + 1 :])
            if name is None:
                continue
        if name == "author":
            _author_names(child, authors)
        elif name == "category":
            term = child.get("term")
            term = term.strip() if term else ""
            if _is_category(term) and term not in categories:
                categories.append(term)
        elif name == "link":
            href = child.get("href")
            href = href.strip() if href else ""
            # Late 2025 the API dropped title="pdf"; the path is what identifies the PDF.
            if pdf_url is None and "/pdf/" in href and child.get("title") != "doi":
                pdf_url = href
        elif name == "primary_category":
            term = child.get("term")
            term = term.strip() if term else ""
            primary = term if _is_category(term) else None
        elif name not in texts:
            texts[name] = child.text or "" if len(child) == 0 else _text(child)

    raw_id = texts.get("id", "")
    title = quick_clean(texts.get("title"))
    if "/api/errors" in raw_id or (title == "Error" and _split_id(raw_id) is None):
        reason = quick_clean(texts.get("summary")) or "no detail given"
        return ParseProblem(SOURCE, url, f"arXiv API error: {reason}", _record(raw_id, index))
    found = _split_id(raw_id) if raw_id else None
    if found is None:
        return ParseProblem(
            SOURCE, url, "entry has no arXiv id in its <id>", _record(raw_id, index)
        )
    arxiv_id, version = found
    if not title:
        return ParseProblem(SOURCE, url, "entry has no title", _record(raw_id, index))

    if pdf_url is not None and pdf_url.startswith("http://arxiv.org/"):
        # Legacy responses link over http; arXiv serves everything over https.
        pdf_url = "https://" + pdf_url.removeprefix("http://")

    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=quick_clean(texts.get("summary")),
        authors=quick_clean_all(authors),
        version=version,
        source=SOURCE,
        published_at=_iso_datetime(texts.get("published", "")),
        updated_at=_iso_datetime(texts.get("updated", "")),
        categories=tuple(categories),
        primary_category=primary,
        comment=_optional(texts.get("comment")),
        journal_ref=_optional(texts.get("journal_ref") or texts.get("journal_reference")),
        doi=_optional(texts.get("doi") or texts.get("DOI")),
        pdf_url=pdf_url,
    )


def _total_results(root: Any) -> int | None:
    for child in root:
        if _localname(child.tag) == "totalResults":
            try:
                total = int(_text(child).strip())
            except ValueError:
                return None
            return total if total >= 0 else None
    return None


# --- one document -> ParseResult ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Kind:
    what: str
    roots: frozenset[str]
    item_tags: tuple[str, ...]
    read_item: Callable[[Any, int, str], Paper | ParseProblem]
    read_total: Callable[[Any], int | None] | None
    item_start: re.Pattern[bytes]


_LISTING = _Kind(
    what="an arXiv listing feed (RSS or Atom)",
    roots=frozenset({"rss", "feed"}),
    item_tags=("item", f"{_ATOM}entry", "entry"),
    read_item=_listing_item,
    read_total=None,
    item_start=re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)(?=[\s/>])"),
)
_API = _Kind(
    what="an arXiv API Atom feed",
    roots=frozenset({"feed"}),
    item_tags=(f"{_ATOM}entry", "entry"),
    read_item=_api_entry,
    read_total=_total_results,
    item_start=re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?entry(?=[\s/>])"),
)


class _Collector:
    """Papers and problems from one document, in document order."""

    def __init__(self, url: str, kind: _Kind) -> None:
        self.url = url
        self.kind = kind
        self.papers: list[Paper] = []
        self.problems: list[ParseProblem] = []

    def read(self, element: Any, index: int) -> None:
        try:
            result = self.kind.read_item(element, index, self.url)
        except Exception as exc:  # one odd item must not cost the rest of the listing
            result = ParseProblem(
                SOURCE, self.url, f"item could not be read: {type(exc).__name__}: {exc}", str(index)
            )
        if isinstance(result, Paper):
            self.papers.append(result)
        else:
            self.problems.append(result)

    def problem(self, problem: str, record: str | None = None) -> None:
        self.problems.append(ParseProblem(SOURCE, self.url, problem, record))


def _unreadable(url: str, why: str) -> ParseResult:
    return ParseResult([], [ParseProblem(SOURCE, url, why)])


def _as_bytes(text: object) -> tuple[bytes, bool] | None:
    """The document as bytes, and whether it came from str (so its encoding is UTF-8)."""
    if isinstance(text, str):
        # lxml refuses str with an encoding declaration; bytes plus a forced UTF-8 decode
        # accept both, and "replace" keeps lone surrogates from raising.
        return text.encode("utf-8", "replace"), True
    if isinstance(text, bytes | bytearray | memoryview):
        return bytes(text), False
    return None


def _options(from_str: bool) -> dict[str, Any]:
    return {**_PARSER_OPTIONS, "encoding": "utf-8"} if from_str else _PARSER_OPTIONS


def _describe(exc: BaseException) -> str:
    if isinstance(exc, etree.XMLSyntaxError):
        # lxml appends the position to libxml2's message; say it once.
        message = _POSITION_SUFFIX.sub("", exc.msg or "") or "unknown error"
        line, column = exc.position if exc.lineno else (0, 0)
        where = f" at line {line}, column {column}" if line else ""
        return f"malformed XML{where}: {message}"
    return f"unreadable XML: {type(exc).__name__}: {exc}"


def _parse(text: str | bytes, url: str, kind: _Kind) -> ParseResult:
    try:
        return _parse_document(text, url, kind)
    except Exception as exc:  # the contract is "never raises"; the caller logs the problem
        return _unreadable(url, f"parser failed: {type(exc).__name__}: {exc}")


def _parse_document(text: str | bytes, url: str, kind: _Kind) -> ParseResult:
    converted = _as_bytes(text)
    if converted is None:
        return _unreadable(url, f"expected str or bytes, got {type(text).__name__}")
    data, from_str = converted
    if not data or data.isspace():
        return _unreadable(url, "empty document")
    # Parsers are made per call: they are cheap, and a shared one would share its error log
    # between threads.
    try:
        root = etree.fromstring(data, etree.XMLParser(**_options(from_str)))
    except (etree.LxmlError, ValueError) as exc:
        return _salvage(data, from_str, url, kind, exc)
    if _localname(root.tag) not in kind.roots:
        return _unreadable(url, f"not {kind.what}: root element is <{_localname(root.tag)}>")
    found = _Collector(url, kind)
    for index, element in enumerate(root.iter(*kind.item_tags)):
        found.read(element, index)
    total = kind.read_total(root) if kind.read_total else None
    return ParseResult(found.papers, found.problems, total)


def _salvage(
    data: bytes, from_str: bool, url: str, kind: _Kind, failure: BaseException
) -> ParseResult:
    """Keep what a malformed or truncated document still says for certain.

    Items that closed before the first error are exact: a strict incremental parse yields
    them. Items that start on a later line than the first error are cut out of the raw
    bytes one by one and parsed strictly on their own, so they are exact too. lxml's
    recovering parser only tells whether the document is a feed at all: its guesses about
    broken markup never become papers. Everything not kept is reported.
    """
    recovering = etree.XMLParser(recover=True, **_options(from_str))
    try:
        root = etree.fromstring(data, recovering)
    except (etree.LxmlError, ValueError):
        root = None
    if root is None or _localname(root.tag) not in kind.roots:
        return _unreadable(url, _describe(failure))

    found = _Collector(url, kind)
    found.problem(_describe(failure))
    options = _options(from_str)
    complete, stop = _strict_items(BytesIO(data), kind.item_tags, options)
    for index, (element, damage) in enumerate(complete):
        if damage:
            found.problem(f"{damage}; skipped", _record(_raw_item_id(element), index))
        else:
            found.read(element, index)
    # The earliest line anything went wrong on; items starting there or before may hold it.
    first_error = min(
        [line for line in (getattr(failure, "lineno", None), stop[0]) if line]
        + [e.line for e in recovering.error_log if e.level >= etree.ErrorLevels.ERROR],
        default=0,
    )

    if not from_str:
        # A fragment has no XML declaration to name the document's encoding.
        options = {**options, "encoding": root.getroottree().docinfo.encoding or None}
    prelude = _prelude(root)
    starts = _item_starts(data, kind.item_start)
    index = len(complete)
    while index < len(starts):
        offset, line = starts[index]
        if line <= first_error:
            end = starts[index + 1][0] if index + 1 < len(starts) else len(data)
            found.problem(
                f"item cut off or malformed near line {first_error}; skipped",
                _record(_peek_id(data, offset, end), index),
            )
            index += 1
            continue
        # Resume strict parsing at this item, as if it were the feed's first, until the next
        # fatal error; that error's line becomes the new barrier.
        items, (error_line, why) = _strict_items(
            _Resumed(prelude, data, offset), kind.item_tags, options
        )
        for element, damage in items:
            if damage:
                found.problem(f"{damage}; skipped", _record(_raw_item_id(element), index))
            else:
                found.read(element, index)
            index += 1
        if not items:
            # Nothing closed before the next fatal error, so this item holds it.
            end = starts[index + 1][0] if index + 1 < len(starts) else len(data)
            found.problem(
                f"item at line {line} is malformed ({why or 'never closed'}); skipped",
                _record(_peek_id(data, offset, end), index),
            )
            index += 1
        if error_line:
            first_error = max(first_error, line + error_line - 1)
    total = kind.read_total(root) if kind.read_total else None
    return ParseResult(found.papers, found.problems, total)


def _item_starts(data: bytes, pattern: re.Pattern[bytes]) -> list[tuple[int, int]]:
    """Byte offset and 1-based line of every item start tag in the raw document."""
    starts = []
    line, previous = 1, 0
    for match in pattern.finditer(data):
        offset = match.start()
        line += data.count(b"\n", previous, offset)
        previous = offset
        starts.append((offset, line))
    return starts


def _prelude(root: Any) -> bytes:
    """An opening tag declaring the namespaces an item inherits from the feed around it."""
    namespaces: dict[str | None, str] = {}
    # An element's nsmap includes what it inherits, so the root and the RSS channel suffice.
    for element in (root, *root[:1]):
        if isinstance(element.tag, str):
            namespaces.update(element.nsmap)
    declarations = "".join(
        f" xmlns{':' + prefix if prefix else ''}={quoteattr(uri)}"
        for prefix, uri in namespaces.items()
    )
    return f"<salvaged{declarations}>".encode()


def _strict_items(
    source: Any, tags: tuple[str, ...], options: dict[str, Any], limit: int | None = None
) -> tuple[list[tuple[Any, str]], tuple[int, str]]:
    """Items that close before the first fatal error, each with why it is unusable (or "").

    Also returns the fatal error's line and description, or (0, "") when there was none.
    """
    items: list[tuple[Any, str]] = []
    try:
        for _event, element in etree.iterparse(source, events=("end",), tag=tags, **options):
            items.append((element, _namespace_damage(element)))
            if limit is not None and len(items) >= limit:
                break
    except (etree.LxmlError, ValueError) as exc:
        return items, (getattr(exc, "lineno", None) or 0, _describe(exc))
    return items, (0, "")


def _namespace_damage(element: Any) -> str:
    """Why an item read incrementally is unusable: an undeclared namespace prefix, or ""."""
    # An incremental parse reports an undeclared prefix only when the document ends, and
    # meanwhile names the element "dc:creator", which no field lookup would find.
    for node in element.iter():
        tag = node.tag
        for name in (tag, *node.attrib) if isinstance(tag, str) else ():
            if ":" in name and not name.startswith("{"):
                return f"undeclared namespace prefix in <{name}>"
    return ""


class _Resumed:
    """A file-like prelude followed by ``data[offset:]``, without copying ``data``."""

    def __init__(self, prelude: bytes, data: bytes, offset: int) -> None:
        self._prelude = prelude
        self._rest: memoryview = memoryview(data)[offset:]

    def read(self, size: int = -1) -> bytes:
        if self._prelude:
            prelude, self._prelude = self._prelude, b""
            return prelude
        size = len(self._rest) if size < 0 else size
        chunk, self._rest = self._rest[:size], self._rest[size:]
        return chunk.tobytes()


def _raw_item_id(element: Any) -> str | None:
    for child in element:
        if _localname(child.tag) in ("guid", "id"):
            return _text(child)
    return None


def _peek_id(data: bytes, start: int, end: int) -> str | None:
    """The guid or id of a damaged item, read from its raw bytes to name it in a problem."""
    match = _RAW_ID.search(data, start, end)
    return match.group(1).decode("utf-8", "replace") if match else None
