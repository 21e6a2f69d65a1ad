"""Pure parsers for arXiv responses: the rss.arxiv.org listing (RSS 2.0 or Atom) and the API."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from itertools import accumulate, islice
from operator import methodcaller
from typing import Any, BinaryIO

from lxml import etree

from bridge import ids
from bridge.models import AnnounceType, Paper, ParseProblem, ParseResult, SourceName
from bridge.sources.arxiv_schedule import listing_day
from bridge.sources.hf_parse import quick_clean, quick_clean_all
from bridge.text import clean_text

__all__ = [
    "StreamStopped",
    "parse_api",
    "parse_items",
    "parse_listing",
    "split_authors",
    "stream_items",
]

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
# ASCII digits only, as ``ids.split_arxiv_id``: \d would also take Arabic-Indic digits.
_USUAL_ID = re.compile(
    r"(?:https?://arxiv\.org/abs/|oai:arXiv\.org:)([0-9]{4}\.[0-9]{4,5})(?:v([0-9]+))?"
)


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

# A damaged item's guid or id, found in its raw bytes to name it in a problem.
_RAW_ID = re.compile(rb"<(?:[\w.-]+:)?(?:guid|id)(?:\s[^>]*)?>\s*([^<\s]{1,200})\s*<")

# Long enough to identify a record, short enough that a hostile id cannot bloat a log line.
_RECORD_MAX = 200

# A real listing has a few thousand items at most; this bounds the work a hostile one costs.
_MAX_ITEMS = 50_000


def parse_listing(text: str | bytes, url: str, *, skip: int = 0) -> ParseResult:
    """Read an rss.arxiv.org listing, RSS 2.0 or Atom; never raises.

    Bad items are skipped and reported in ``problems``; an unreadable document gives no
    papers and one problem saying why. ``skip``: items read already (``stream_items``
    stopped there), left out.
    """
    return _parse(text, url, _LISTING, skip)


def parse_api(text: str | bytes, url: str, *, skip: int = 0) -> ParseResult:
    """Read an export.arxiv.org/api/query Atom response, current or legacy; never raises.

    An API error entry is reported as a problem, never as a paper. ``total_results`` is the
    upstream's opensearch:totalResults. ``skip`` as for :func:`parse_listing`.
    """
    return _parse(text, url, _API, skip)


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


def _listing_item(
    item: Any, index: int, url: str, channel_day: Callable[[Any], date | None]
) -> Paper | ParseProblem:
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
        listed_on = channel_day(item)

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


def _api_entry(
    entry: Any, index: int, url: str, _channel_day: Callable[[Any], date | None]
) -> Paper | ParseProblem:
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
            term = quick_clean(child.get("term"))
            if _is_category(term) and term not in categories:
                categories.append(term)
        elif name == "link":
            href = quick_clean(child.get("href"))
            # Late 2025 the API dropped title="pdf"; the path is what identifies the PDF.
            if pdf_url is None and "/pdf/" in href and child.get("title") != "doi":
                pdf_url = href
        elif name == "primary_category":
            term = quick_clean(child.get("term"))
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

    published = _iso_datetime(texts.get("published", ""))
    listed_on = _estimated_day(published)
    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=quick_clean(texts.get("summary")),
        authors=quick_clean_all(authors),
        version=version,
        source=SOURCE,
        listed_on=listed_on,
        listed_on_estimated=listed_on is not None,
        published_at=published,
        updated_at=_iso_datetime(texts.get("updated", "")),
        categories=tuple(categories),
        primary_category=primary,
        comment=_optional(texts.get("comment")),
        journal_ref=_optional(texts.get("journal_ref") or texts.get("journal_reference")),
        doi=_optional(texts.get("doi") or texts.get("DOI")),
        pdf_url=pdf_url,
    )


def _estimated_day(published: datetime | None) -> date | None:
    """The API gives no listing day: the one arXiv's schedule gives the first version's time
    (an estimate a listing's own day replaces when one arrives: bridge/merge.py)."""
    if published is None:
        return None
    try:
        return listing_day(published)
    except (OverflowError, ValueError):
        return None  # a time at the very ends of the calendar: no day rather than a crash


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
    read_item: Callable[[Any, int, str, Callable[[Any], date | None]], Paper | ParseProblem]
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
        self._channel: Any = None
        self._channel_day: date | None = None

    def channel_day(self, item: Any) -> date | None:
        """The pubDate of the item's parent, looked up once per parent rather than per item:
        in a listing whose items have none, each lookup would scan every item again."""
        parent = item.getparent()
        if parent is not self._channel:
            self._channel = parent
            self._channel_day = (
                _day(parent.findtext("pubDate") or "") if parent is not None else None
            )
        return self._channel_day

    def read(self, element: Any, index: int) -> None:
        try:
            result = self.kind.read_item(element, index, self.url, self.channel_day)
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

    def too_many(self) -> None:
        self.problem(f"more than {_MAX_ITEMS:,} items; the rest were not read")


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


def _parse(text: str | bytes, url: str, kind: _Kind, skip: int = 0) -> ParseResult:
    try:
        return _parse_document(text, url, kind, skip)
    except Exception as exc:  # the contract is "never raises"; the caller logs the problem
        return _unreadable(url, f"parser failed: {type(exc).__name__}: {exc}")


def _parse_document(text: str | bytes, url: str, kind: _Kind, skip: int) -> ParseResult:
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
    except (etree.LxmlError, ValueError, LookupError):
        return _salvage(data, from_str, url, kind, skip)
    if _localname(root.tag) not in kind.roots:
        return _unreadable(url, f"not {kind.what}: root element is <{_localname(root.tag)}>")
    found = _Collector(url, kind)
    for index, element in enumerate(root.iter(*kind.item_tags)):
        if index == _MAX_ITEMS:
            found.too_many()
            break
        if index >= skip:
            found.read(element, index)
    total = kind.read_total(root) if kind.read_total else None
    return ParseResult(found.papers, found.problems, total)


# --- a big document a piece at a time (paperbridge import) ------------------------------------


class StreamStopped(Exception):
    """``stream_items`` cannot go on: ``read`` items came before; the rest must be read from
    the whole document (``parse_listing``/``parse_api`` with ``skip=read``), which also says
    what is wrong with it."""

    def __init__(self, read: int) -> None:
        super().__init__(f"stopped after {read} items")
        self.read = read


def stream_items(file: BinaryIO, listing: bool) -> Iterator[tuple[bytes, str | None]]:
    """Each item (entry) of the listing or API response in ``file``, serialized on its own
    with the namespaces in scope, and the pubDate its channel gives before its first item.

    The document is read a block at a time and each item dropped once serialized, so memory
    stays flat whatever its size; ``parse_items`` reads the items in another process, as the
    whole document would be read. Raises ``StreamStopped`` where it cannot go on this way: a
    document that is not well-formed (from there), not of this kind, or carrying a DOCTYPE
    (whose entities an item would need).
    """
    kind = _LISTING if listing else _API
    events = etree.iterparse(file, events=("end",), tag=kind.item_tags, **_PARSER_OPTIONS)
    read = 0
    channel: Any = None
    pubdate: str | None = None
    try:
        for _event, item in events:
            if read == 0:
                tree = item.getroottree()
                if (
                    tree.docinfo.doctype
                    or _localname(tree.getroot().tag) not in kind.roots
                    or tree.getroot() is item
                ):
                    raise StreamStopped(0)
            parent = item.getparent()
            if parent is not channel:
                channel = parent
                pubdate = parent.findtext("pubDate") if parent is not None else None
            yield etree.tostring(item, with_tail=False), pubdate
            read += 1
            # Done with it, and with whatever came before it in its channel.
            item.clear(keep_tail=False)
            if parent is not None:
                while item.getprevious() is not None:
                    del parent[0]
    except (etree.LxmlError, ValueError, LookupError):
        raise StreamStopped(read) from None
    if read == 0:
        raise StreamStopped(0)  # no items: the whole document says what it is


def parse_items(
    items: Sequence[bytes], url: str, listing: bool, first: int, pubdate: str | None
) -> ParseResult:
    """Read items serialized by ``stream_items``, ``first`` being the index of the first in
    its document, under a channel of that ``pubdate``; never raises.

    They are parsed together, inside one element standing for their channel; when that
    fails, one by one, so that an item the strict parser refuses costs only itself.
    """
    kind = _LISTING if listing else _API
    found = _Collector(url, kind)
    parser = etree.XMLParser(**_PARSER_OPTIONS)
    channel = b"<channel>"
    if pubdate is not None:
        pubdate_element = etree.Element("pubDate")
        pubdate_element.text = pubdate
        channel += etree.tostring(pubdate_element)
    try:
        elements = list(etree.fromstring(channel + b"".join(items) + b"</channel>", parser))
        elements = [element for element in elements if element.tag in kind.item_tags]
        if len(elements) != len(items):
            raise ValueError("items lost")
        for index, element in enumerate(elements, first):
            found.read(element, index)
    except (etree.LxmlError, ValueError):
        found = _Collector(url, kind)
        for index, item in enumerate(items, first):
            try:
                element = etree.fromstring(channel + item + b"</channel>", parser)[-1]
            except (etree.LxmlError, ValueError, IndexError):
                found.problem("malformed XML; item skipped", _damaged(item, index))
                continue
            found.read(element, index)
    return ParseResult(found.papers, found.problems)


# --- a document the strict parser refused, item by item -------------------------------------


# libxml2's limits without huge_tree, which make a strict parse fail: the length of one text
# node and the depth of elements. Used only to say in plain words why an item was refused.
_TEXT_LIMIT = 10_000_000
_DEPTH_LIMIT = 256
# The DOCTYPE goes with every item so that the entities it declares still parse; a larger
# one would cost its size again for every item.
_DOCTYPE_CARRIED = 65_536

_BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
_DECLARED_ENCODING = re.compile(rb"<\?xml\s[^>]*?encoding\s*=\s*[\"']([A-Za-z][\w.:-]*)[\"']")
_DOCTYPE = rb"<!DOCTYPE(?:[^\[>]++|\[.*?\])*+>"
_DOCTYPE_TAG = re.compile(_DOCTYPE, re.S)
# What may come before the root element: space, the XML declaration, PIs, comments, DOCTYPE.
_PROLOG = re.compile(rb"(?:\s++|<\?.*?\?>|<!--.*?-->|" + _DOCTYPE + rb")*+", re.S)
_ROOT_TAG = re.compile(rb"<([^\s/>!?]+)[^>]*>")
_CHANNEL_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?channel(?:\s[^>]*)?>")
_XMLNS = re.compile(rb"""\sxmlns(:[\w.-]+)?\s*=\s*(?:"[^"]*"|'[^']*')""")
# Plain text only: a scan to the closing tag that could cross other elements would cost the
# whole document again for every unclosed one.
_CHANNEL_FACT = re.compile(
    rb"<((?:[A-Za-z_][\w.-]*:)?(?:pubDate|totalResults))(?=[\s>])[^<>]*>[^<]*</\1\s*>"
)
_ITEM_CLOSE = re.compile(rb"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>")
_EMPTY_TAG_END = re.compile(rb"(?:\s[^<>]*)?/>")
_CLOSE_WRAPPER = b"</salvaged>"
# Start, end and empty-element tags, to tell how deep a refused item nests.
_TAG_SHAPE = re.compile(rb"<(/?)[^\s/>!?][^<>]*?(/?)>")
_groups = methodcaller("groups")
# A run of text as long as libxml2's limit; tried only where a run starts, so that a long
# run is scanned once rather than once from each of its characters.
_LONG_TEXT = re.compile(rb"(?<![^<])[^<]{%d}" % _TEXT_LIMIT)
_DEPTH_STEP = {(b"", b""): 1, (b"/", b""): -1, (b"", b"/"): 0, (b"/", b"/"): -1}


@dataclass(frozen=True, slots=True)
class _Span:
    """Where one item may lie in the raw document.

    From its start tag to the first closing tag after it (``end``), or, if that does not
    parse, to the last one before the next item starts (``last``, e.g. past a "</item>"
    inside CDATA); ``end`` is None when the item never closes.
    """

    start: int
    limit: int  # where the next item starts, or the document ends
    end: int | None
    last: int | None


def _salvage(data: bytes, from_str: bool, url: str, kind: _Kind, skip: int = 0) -> ParseResult:
    """Read a document the strict parser refused, keeping every item that is whole.

    Each item is cut out of the raw bytes, from its start tag up to its own closing tag
    (never past the next item's start), and parsed strictly on its own inside a wrapper that
    declares the namespaces the feed's opening tags declare. What the channel tells every
    item (pubDate, opensearch:totalResults) is copied from the raw text around the items
    into that wrapper, so a whole item reads exactly as in a clean parse of the document.
    No library's recovery mode or error report decides what is kept, and damage inside one
    item cannot reach another.
    """
    data, why = _as_utf8(data, from_str)
    if why:
        return _unreadable(url, why)
    prolog = _PROLOG.match(data)
    root = _ROOT_TAG.match(data, prolog.end() if prolog else 0)
    if root is None:
        return _unreadable(url, "malformed XML: not an XML document")
    root_name = root[1].rpartition(b":")[2].decode("utf-8", "replace")
    if root_name not in kind.roots:
        return _unreadable(
            url, f"malformed XML, and not {kind.what}: root element is <{root_name}>"
        )

    parser = etree.XMLParser(**_options(True))  # _as_utf8 made the document UTF-8
    spans = _item_spans(data, kind.item_start)
    opening, facts = _wrapper(data, root, _outside(data, spans), parser)
    found = _Collector(url, kind)
    kept: list[tuple[int, int]] = []  # what each item took of the raw document
    for index, span in enumerate(spans):
        if index == _MAX_ITEMS:
            found.too_many()
            break
        if index < skip:
            kept.append((span.start, span.end or span.limit))
            continue
        if span.end is None:
            fragment = data[span.start : span.limit]
            found.problem("item is cut off (no closing tag); skipped", _damaged(fragment, index))
            kept.append((span.start, span.limit))
            continue
        end = span.end
        element = _parse_item(opening, facts, data[span.start : end], parser)
        if element is None and span.last != end:
            end = span.last or end
            element = _parse_item(opening, facts, data[span.start : end], parser)
        kept.append((span.start, end))
        if element is None:
            fragment = data[span.start : end]
            found.problem(f"{_why_refused(fragment)}; item skipped", _damaged(fragment, index))
        elif element.tag in kind.item_tags:  # as the strict parse: an <x:item> is not one
            found.read(element, index)
        _report_orphan(found, data, end, span.limit, index + 1)
    if not _well_formed(_outside_of(data, kept), parser):
        closing = "</" + root[1].decode("utf-8", "replace")
        if data.rfind(closing.encode(), root.end()) < 0:
            why = f"malformed XML: the document is cut off before {closing}>"
        else:
            why = "malformed XML outside the items"
        found.problems.insert(0, ParseProblem(SOURCE, url, why))
    total = None
    if kind.read_total is not None:
        total = kind.read_total(etree.fromstring(opening + facts + _CLOSE_WRAPPER, parser))
    return ParseResult(found.papers, found.problems, total)


def _parse_item(opening: bytes, facts: bytes, fragment: bytes, parser: Any) -> Any:
    """The item element, parsed strictly in its wrapper; None if it is not well-formed."""
    try:
        return etree.fromstring(opening + facts + fragment + _CLOSE_WRAPPER, parser)[-1]
    except (etree.LxmlError, ValueError):
        return None


def _report_orphan(found: _Collector, data: bytes, start: int, limit: int, index: int) -> None:
    """Name an item whose start tag is damaged: its body is left between two items.

    Only one that shows its guid or id is named; the rest of such damage is reported as
    damage outside the items.
    """
    orphan = _ITEM_CLOSE.search(data, start, limit)
    raw_id = _RAW_ID.search(data, start, orphan.start()) if orphan else None
    if raw_id is not None:
        record = _record(raw_id[1].decode("utf-8", "replace"), index)
        found.problem("item has a damaged start tag; skipped", record)


def _as_utf8(data: bytes, from_str: bool) -> tuple[bytes, str]:
    """The document in UTF-8, which the items are cut from; or why it cannot be decoded.

    Bytes the declared encoding does not map stay as they were (surrogateescape), so an item
    holding them is refused as a clean parse would refuse the document.
    """
    if from_str:
        return data, ""  # _as_bytes encoded it
    encoding = "utf-8"
    for bom, codec in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom) :], codec
            break
    else:
        declared = _DECLARED_ENCODING.match(data)
        if declared is not None:
            encoding = declared[1].decode("ascii").lower()
    if encoding in ("utf-8", "utf8"):
        return data, ""
    try:
        text = data.decode(encoding, "surrogateescape")
    except LookupError:
        return data, f"malformed XML: unknown encoding {encoding!r}"
    except UnicodeError:  # an ASCII byte the encoding cannot place (e.g. UTF-16 of odd length)
        text = data.decode(encoding, "replace")
    return text.encode("utf-8", "surrogateescape"), ""


def _item_spans(data: bytes, item_start: re.Pattern[bytes]) -> list[_Span]:
    """Where each item may lie: see _Span. One more than _MAX_ITEMS at most."""
    starts = [(m.start(), m[0][1:]) for m in islice(item_start.finditer(data), _MAX_ITEMS + 1)]
    spans = []
    for number, (start, name) in enumerate(starts):
        limit = starts[number + 1][0] if number + 1 < len(starts) else len(data)
        closing = _closing_tag(name)
        ends = [m.end() for m in closing.finditer(data, start, limit)]
        if not ends:
            empty = _EMPTY_TAG_END.match(data, start + len(name) + 1, limit)
            ends = [empty.end()] if empty is not None else []
        spans.append(_Span(start, limit, ends[0] if ends else None, ends[-1] if ends else None))
    return spans


@lru_cache(maxsize=16)
def _closing_tag(name: bytes) -> re.Pattern[bytes]:
    return re.compile(b"</" + re.escape(name) + rb"\s*>")


def _outside(data: bytes, spans: list[_Span]) -> bytes:
    """The document without its items, as far as their closing tags tell."""
    return _outside_of(data, [(span.start, span.end or span.limit) for span in spans])


def _outside_of(data: bytes, taken: list[tuple[int, int]]) -> bytes:
    """The document without the given spans: the channel around the items."""
    pieces, previous = [], 0
    for start, end in taken:
        pieces.append(data[previous:start])
        previous = end
    pieces.append(data[previous:])
    return b"".join(pieces)


def _well_formed(data: bytes, parser: Any) -> bool:
    try:
        etree.fromstring(data, parser)
    except (etree.LxmlError, ValueError):
        return False
    return True


def _wrapper(
    data: bytes, root: re.Match[bytes], outside: bytes, parser: Any
) -> tuple[bytes, bytes]:
    """The opening of the element each item is parsed in, and the channel facts inside it.

    It declares what the root and the RSS channel declare, and is preceded by the
    document's DOCTYPE, so that the item's prefixes and entities mean what they mean in the
    document; whichever of these is broken is left out. The facts are the channel's pubDate
    and totalResults as written, or nothing when they are damaged.
    """
    declared: dict[bytes, bytes] = {}
    channel = _CHANNEL_TAG.search(outside)
    for tag in (root[0], channel[0] if channel else b""):
        # The channel's declarations are the inner ones, as they are for its items.
        declared.update((m[1], m[0]) for m in _XMLNS.finditer(tag))
    namespaces = b"<salvaged" + b"".join(declared.values()) + b">"
    doctype = _DOCTYPE_TAG.search(data, 0, root.start())
    prologue = doctype[0] if doctype and len(doctype[0]) <= _DOCTYPE_CARRIED else b""
    for opening in (prologue + namespaces, namespaces, b"<salvaged>"):
        if _well_formed(opening + _CLOSE_WRAPPER, parser):
            break
    facts: dict[bytes, bytes] = {}
    for fact in _CHANNEL_FACT.finditer(outside):
        facts.setdefault(fact[1], fact[0])
    written = b"".join(facts.values())
    if not _well_formed(opening + written + _CLOSE_WRAPPER, parser):
        written = b""
    return opening, written


def _why_refused(fragment: bytes) -> str:
    """Why the strict parser refused an item, in words that do not depend on its version.

    Both scans run in C and hold one match at a time, however large the item.
    """
    if len(fragment) >= _TEXT_LIMIT and _LONG_TEXT.search(fragment):
        return "text too long"
    shapes = map(_DEPTH_STEP.__getitem__, map(_groups, _TAG_SHAPE.finditer(fragment)))
    if max(accumulate(shapes), default=0) >= _DEPTH_LIMIT:
        return "nested too deeply"
    return "malformed XML"


def _damaged(fragment: bytes, index: int) -> str:
    """The guid or id of a damaged item, read from its raw bytes, or its position."""
    match = _RAW_ID.search(fragment)
    return _record(match[1].decode("utf-8", "replace") if match else None, index)
