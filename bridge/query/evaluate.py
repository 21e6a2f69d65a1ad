"""Decide whether a parsed query matches a paper, and say where: pure functions, no I/O.

A paper is analyzed once into a ``PaperIndex``: for each field, term -> postings (position,
start, end, span). Fields and what they hold:

    title, abstract, ai_summary   the text as stored on the Paper
    ai_keywords                   the keywords joined by ", "
    authors                       the names joined by ", ", folded but not stemmed
    categories                    the arXiv categories joined by ", " (for hits only)

Positions jump by one between list items, so a phrase never spans two authors or two keywords.
``Hit.start``/``Hit.end`` are offsets into those field texts and ``Hit.text`` is the paper's own
spelling ("generalisation"), so outputs can highlight it and ``Match.why()`` can quote it.

For an index of terms (the archive search, the percolator) every paper has one set of *keys*:
its text terms from every field, ``cat:<category>``, ``catp:<archive>.`` and
``source:<name>``, lower-cased. ``required_terms(query)`` are keys every match contains;
``anchor_terms(query)`` is a small set of keys at least one of which every match contains (None
when there is none, e.g. ``upvotes>=10``). Look candidates up by either, then confirm each with
``match_paper``.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from functools import partial
from itertools import accumulate, chain
from operator import itemgetter
from typing import TypeAlias

from bridge.models import Hit, Paper
from bridge.query.exact import derive, is_exact
from bridge.query.normalize import normalize_word, postings_of, scan
from bridge.query.parser import (
    DEFAULT_FIELDS,
    And,
    Category,
    ListedOn,
    Node,
    Not,
    Or,
    PaperId,
    Phrase,
    Query,
    Slots,
    Source,
    Term,
    Upvotes,
)

__all__ = [
    "FIELD_ORDER",
    "PaperIndex",
    "anchor_terms",
    "collect_hits",
    "exact_terms",
    "field_requirements",
    "merge_hits",
    "index_paper",
    "key_rate",
    "leaf_pairs",
    "match_paper",
    "matches",
    "paper_terms",
    "required_terms",
]

FIELD_ORDER = {
    "title": 0,
    "abstract": 1,
    "ai_summary": 2,
    "ai_keywords": 3,
    "authors": 4,
    "categories": 5,
}
LIST_SEPARATOR = ", "


# Hit is a named tuple, which ``tuple.__new__`` builds from a tuple of its fields in C, skipping
# the Python-level __new__ that calling the class runs: the percolator builds many a run.
hit_from: Callable[[tuple[str, str, int, int]], Hit] = partial(tuple.__new__, Hit)  # type: ignore[assignment]

Posting: TypeAlias = tuple[int, int, int, int]  # position, start, end, span
KeyedHit: TypeAlias = tuple[tuple[int, int, int], Hit]  # ((field order, start, end), hit)
Postings: TypeAlias = dict[str, list[Posting]]


class PaperIndex:
    """One paper analyzed once: every field's postings, its keys, and a cache of hits."""

    __slots__ = (
        "paper",
        "exact",
        "texts",
        "postings",
        "default_terms",
        "meta_keys",
        "keys",
        "categories",
        "_pairs",
        "_phrases",
    )

    def __init__(self, paper: Paper, exact: frozenset[str] = frozenset()) -> None:
        self.paper = paper
        # The exact words (=w) to find: derived from the stemmed postings, only when asked for
        # (bridge.query.exact), so a paper is analyzed once either way.
        self.exact = exact
        self.texts: dict[str, str] = {}
        self.postings: dict[str, Postings] = {}
        self._add_text("title", paper.title or "", stem=True)
        self._add_text("abstract", paper.abstract or "", stem=True)
        self._add_text("ai_summary", paper.ai_summary or "", stem=True)
        self._add_list("ai_keywords", paper.ai_keywords, stem=True)
        self._add_list("authors", paper.authors, stem=False)
        categories = list(paper.categories)
        if paper.primary_category and paper.primary_category not in categories:
            categories.append(paper.primary_category)
        self.texts["categories"] = LIST_SEPARATOR.join(categories)
        self.categories = tuple(c.lower() for c in categories)
        self.default_terms: set[str] = set()
        for name in DEFAULT_FIELDS:
            self.default_terms.update(self.postings[name])
        meta = {"source:" + paper.source}
        meta.update("source:" + s for s in paper.sources)
        for category in self.categories:
            meta.add("cat:" + category)
            dot = category.find(".")
            if dot > 0:
                meta.add("catp:" + category[: dot + 1])
        self.meta_keys = meta  # the cat:, catp: and source: keys
        self.keys = self.default_terms | meta
        self.keys.update(self.postings["authors"])
        self._pairs: dict[tuple[tuple[str, ...], str], tuple[KeyedHit, ...]] = {}
        self._phrases: dict[tuple[tuple[str, ...], Slots], tuple[KeyedHit, ...]] = {}

    def _add_text(self, name: str, text: str, stem: bool) -> None:
        self.texts[name] = text
        self.postings[name] = postings_of(text, stem) if text else {}
        self._add_exact(name, stem)

    def _add_exact(self, name: str, stem: bool) -> None:
        """Add the exact words asked for to a stemmed field's postings (authors are folded,
        never stemmed: an exact word there is the word itself)."""
        if self.exact and stem and self.postings[name]:
            derive(self.postings[name], self.texts[name], self.exact)

    def _add_list(self, name: str, items: tuple[str, ...], stem: bool) -> None:
        # The joined text is scanned once (one call, not one per author): separators hold no
        # word, so each token lies in one item, found by its offset. The positions of item k
        # are shifted by k, the gap left after each item before it.
        text = LIST_SEPARATOR.join(items)
        starts = list(accumulate([len(item) + len(LIST_SEPARATOR) for item in items[:-1]]))
        postings: Postings = {}
        for term, position, start, end, span in scan(text, stem) if text else ():
            posting = (position + bisect_right(starts, start), start, end, span)
            entry = postings.get(term)
            if entry is None:
                postings[term] = [posting]
            else:
                entry.append(posting)
        self.texts[name] = text
        self.postings[name] = postings
        self._add_exact(name, stem)

    def term_pairs(self, fields: tuple[str, ...], term: str) -> tuple[KeyedHit, ...]:
        """Every occurrence of ``term`` in ``fields`` as a hit with its sort key (field, then
        text order), for merging the hits of several leaves (cached)."""
        key = (fields, term)
        pairs = self._pairs.get(key)
        if pairs is None:
            found: list[KeyedHit] = []
            for name in fields:
                occurrences = self.postings[name].get(term)
                if occurrences:
                    text = self.texts[name]
                    order = FIELD_ORDER[name]
                    found += [
                        ((order, s, e), hit_from((name, text[s:e], s, e)))
                        for _, s, e, _ in occurrences
                    ]
            pairs = _sorted(found)
            self._pairs[key] = pairs
        return pairs

    def phrase_pairs(self, fields: tuple[str, ...], slots: Slots) -> tuple[KeyedHit, ...]:
        """Every occurrence of a phrase in ``fields``, keyed and sorted like ``term_pairs``
        (cached: many subscriptions share a phrase)."""
        key = (fields, slots)
        pairs = self._phrases.get(key)
        if pairs is None:
            found: list[KeyedHit] = []
            for name in fields:
                spans = phrase_spans(self.postings[name], slots)
                if spans:
                    text = self.texts[name]
                    order = FIELD_ORDER[name]
                    found += [((order, s, e), hit_from((name, text[s:e], s, e))) for s, e in spans]
            pairs = _sorted(found)
            self._phrases[key] = pairs
        return pairs


_first: Callable[[KeyedHit], tuple[int, int, int]] = itemgetter(0)
_second: Callable[[KeyedHit], Hit] = itemgetter(1)  # C-level, called once per hit


def _sorted(pairs: list[KeyedHit]) -> tuple[KeyedHit, ...]:
    # One leaf's hits in key order. Text order nearly always is that order already, but a
    # compound's joined form comes before its first part at the same start. Sorted leaves make
    # ``merge_hits`` give the same answer however the hits of a query are grouped.
    pairs.sort(key=_first)
    return tuple(pairs)


def index_paper(paper: Paper, exact: frozenset[str] = frozenset()) -> PaperIndex:
    """Analyze ``paper`` once, for any number of ``matches``/``collect_hits`` calls; ``exact``:
    the exact words (``exact_terms``) the queries to be matched use."""
    return PaperIndex(paper, exact)


def paper_terms(paper: Paper) -> set[str]:
    """The keys of ``paper`` (see the module docstring): what an inverted index stores."""
    return set(index_paper(paper).keys)


# --- matching ------------------------------------------------------------------------------------


def phrase_spans(postings: Postings, slots: Slots) -> list[tuple[int, int]]:
    """(start, end) of every place the phrase occurs in one field."""
    frontier: dict[int, tuple[int, int]] | None = None
    for slot in slots:
        reached: dict[int, tuple[int, int]] = {}
        for alternative in slot:
            current = frontier
            for term in alternative:
                occurrences = postings.get(term)
                if not occurrences:
                    current = {}
                    break
                following: dict[int, tuple[int, int]] = {}
                if current is None:
                    for position, start, end, span in occurrences:
                        following.setdefault(position + span, (start, end))
                else:
                    for position, _, end, span in occurrences:
                        previous = current.get(position)
                        if previous is not None:
                            following.setdefault(position + span, (previous[0], end))
                current = following
                if not current:
                    break
            if current:
                for position, extent in current.items():
                    reached.setdefault(position, extent)
        if not reached:
            return []
        frontier = reached
    return sorted(set(frontier.values())) if frontier else []


# The evaluators loop rather than call any() or all() on a generator: the percolator walks
# trees for every candidate paper, and a generator's frame costs more than the loop it saves.


def _term(node: Term, px: PaperIndex) -> bool:
    postings = px.postings
    term = node.term
    for name in node.fields:
        if term in postings[name]:
            return True
    return False


def _phrase(node: Phrase, px: PaperIndex) -> bool:
    postings = px.postings
    for name in node.fields:
        if phrase_spans(postings[name], node.slots):
            return True
    return False


def _and(node: And, px: PaperIndex) -> bool:
    for child in node.children:
        if not _EVALUATORS[type(child)](child, px):
            return False
    return True


def _or(node: Or, px: PaperIndex) -> bool:
    for child in node.children:
        if _EVALUATORS[type(child)](child, px):
            return True
    return False


def _not(node: Not, px: PaperIndex) -> bool:
    return not matches(node.child, px)


def _category(node: Category, px: PaperIndex) -> bool:
    if node.prefix:
        return any(c.startswith(node.value) for c in px.categories)
    return node.value in px.categories


def _source(node: Source, px: PaperIndex) -> bool:
    return px.paper.source == node.value or node.value in px.paper.sources


def _upvotes(node: Upvotes, px: PaperIndex) -> bool:
    upvotes = px.paper.upvotes
    if upvotes is None:
        return False
    op = node.op
    if op == ">=":
        return upvotes >= node.value
    if op == ">":
        return upvotes > node.value
    if op == "<=":
        return upvotes <= node.value
    if op == "<":
        return upvotes < node.value
    return upvotes == node.value


def _paper_id(node: PaperId, px: PaperIndex) -> bool:
    return px.paper.arxiv_id in node.ids


def _listed_on(node: ListedOn, px: PaperIndex) -> bool:
    # The same two comparisons as the SQL side (search_index._condition_sql).
    day = px.paper.listed_on
    if day is None:
        return False
    return (node.since is None or day >= node.since) and (node.before is None or day < node.before)


_EVALUATORS: dict[type, Callable[[Node, PaperIndex], bool]] = {
    Term: _term,  # type: ignore[dict-item]
    Phrase: _phrase,  # type: ignore[dict-item]
    And: _and,  # type: ignore[dict-item]
    Or: _or,  # type: ignore[dict-item]
    Not: _not,  # type: ignore[dict-item]
    Category: _category,  # type: ignore[dict-item]
    Source: _source,  # type: ignore[dict-item]
    Upvotes: _upvotes,  # type: ignore[dict-item]
    PaperId: _paper_id,  # type: ignore[dict-item]
    ListedOn: _listed_on,  # type: ignore[dict-item]
}


def matches(node: Node, px: PaperIndex) -> bool:
    """Whether the query tree ``node`` matches the analyzed paper."""
    return _EVALUATORS[type(node)](node, px)


def _gather(node: Node, px: PaperIndex, out: list[tuple[KeyedHit, ...]]) -> None:
    # Called only on nodes that matched; an OR reports only the branches that matched.
    if isinstance(node, And):
        for child in node.children:
            _gather(child, px, out)
    elif isinstance(node, Or):
        for child in node.children:
            if matches(child, px):
                _gather(child, px, out)
    elif isinstance(node, Term | Phrase | Category):
        out.append(leaf_pairs(node, px))


def leaf_pairs(node: Term | Phrase | Category | Source, px: PaperIndex) -> tuple[KeyedHit, ...]:
    """Where one leaf of a query is in the paper, keyed for ``merge_hits``, sorted, unique."""
    if isinstance(node, Term):
        return px.term_pairs(node.fields, node.term)
    if isinstance(node, Phrase):
        return px.phrase_pairs(node.fields, node.slots)
    if isinstance(node, Source):
        return ()  # nothing in the text to point at
    offset = 0
    order = FIELD_ORDER["categories"]
    found: list[KeyedHit] = []
    for category in px.texts["categories"].split(LIST_SEPARATOR) if px.categories else ():
        lowered = category.lower()
        end = offset + len(category)
        if lowered == node.value or (node.prefix and lowered.startswith(node.value)):
            found.append(((order, offset, end), hit_from(("categories", category, offset, end))))
        offset = end + len(LIST_SEPARATOR)
    return tuple(found)


def merge_hits(groups: list[tuple[KeyedHit, ...]]) -> tuple[Hit, ...]:
    """The hits of several groups without duplicates, in field order then text order.

    Each group is one leaf's hits (``term_pairs``, ``phrase_pairs``), sorted and unique.
    """
    if len(groups) == 1:
        return tuple(map(_second, groups[0]))
    # Keys are unique in the dict, so sorting its items never compares two Hits.
    unique = dict(chain.from_iterable(groups))
    return tuple(map(_second, sorted(unique.items())))


def collect_hits(node: Node, px: PaperIndex) -> tuple[Hit, ...]:
    """Every positive term/phrase occurrence of a query tree that matched ``px``."""
    groups: list[tuple[KeyedHit, ...]] = []
    _gather(node, px, groups)
    return merge_hits(groups)


def exact_terms(query: Query | Node) -> frozenset[str]:
    """The exact words (``=w`` terms) in a query: what a paper index must derive for it."""
    found: set[str] = set()
    nodes = [query.root if isinstance(query, Query) else query]
    for node in nodes:
        if isinstance(node, And | Or):
            nodes.extend(node.children)
        elif isinstance(node, Not):
            nodes.append(node.child)
        elif isinstance(node, Term):
            if is_exact(node.term):
                found.add(node.term)
        elif isinstance(node, Phrase):
            found.update(t for slot in node.slots for run in slot for t in run if is_exact(t))
    return frozenset(found)


def match_paper(query: Query, paper: Paper | PaperIndex) -> tuple[Hit, ...] | None:
    """None if ``query`` does not match ``paper``; otherwise where it matched (maybe empty).

    A PaperIndex given must have been built with (at least) the query's ``exact_terms``."""
    px = paper if isinstance(paper, PaperIndex) else PaperIndex(paper, exact_terms(query))
    if not matches(query.root, px):
        return None
    return collect_hits(query.root, px)


# --- index planning ------------------------------------------------------------------------------

# Words in most abstracts: a poor choice of anchor even when long ("performance").
_COMMON_WORDS = """
the a and we of to for in on that with as by is this model an are from introduce use while it
our across at which these propose through show can be train task require result achieve two
over but framework into reason structure level or exist agent benchmark its both make improve
have experiment base yet only all between than method address state their three find
performance condition also evaluation evaluate capability enable paper image learning provide
align alignment metric data large language not work baseline where set design further present
under new limit rely such more study multi reduce they efficient single scale each
representation token first demonstrate type high tool need may open outperform input analysis
challenge time code step approach without source quality how cost network neural deep system
problem dataset generation generate different existing novel however even well information
process accuracy knowledge content context prior via significant significantly art
state-of-the-art task tasks real world one general available strong remain
"""
COMMON_TERMS = frozenset(normalize_word(w) for w in _COMMON_WORDS.split())


def key_rate(key: str) -> float:
    """A guess at the fraction of papers containing ``key``: lower is a better anchor."""
    if key.startswith("source:"):
        return 0.9
    if key.startswith("catp:"):
        return 0.5
    if key.startswith("cat:"):
        return 0.2
    if key in COMMON_TERMS:
        return 0.5
    n = len(key)
    if n <= 2:
        return 0.2
    if n == 3:
        return 0.05
    if n <= 5:
        return 0.02
    if n <= 7:
        return 0.01
    return 0.005


Anchors: TypeAlias = tuple[float, frozenset[str]] | None


def _best(options: list[Anchors]) -> Anchors:
    found = [option for option in options if option is not None]
    return min(found, key=lambda option: (option[0], sorted(option[1]))) if found else None


def _union(options: list[Anchors]) -> Anchors:
    if not options or any(option is None for option in options):
        return None
    keys: frozenset[str] = frozenset().union(*(option[1] for option in options))  # type: ignore[index]
    return (sum(key_rate(k) for k in keys), keys)


def _anchors(node: Node) -> Anchors:
    if isinstance(node, Term):
        return (key_rate(node.term), frozenset((node.term,)))
    if isinstance(node, Phrase):
        per_slot: list[Anchors] = []
        for slot in node.slots:
            alternatives: list[Anchors] = [
                _best([(key_rate(t), frozenset((t,))) for t in alternative]) for alternative in slot
            ]
            per_slot.append(_union(alternatives))
        return _best(per_slot)
    if isinstance(node, And):
        return _best([_anchors(child) for child in node.children])
    if isinstance(node, Or):
        return _union([_anchors(child) for child in node.children])
    if isinstance(node, Category):
        if not node.prefix:
            key = "cat:" + node.value
        elif "." in node.value:
            key = "catp:" + node.value[: node.value.index(".") + 1]
        else:
            return None
        return (key_rate(key), frozenset((key,)))
    if isinstance(node, Source):
        key = "source:" + node.value
        return (key_rate(key), frozenset((key,)))
    return None  # Not, Upvotes: nothing a matching paper must contain


def anchor_terms(query: Query | Node) -> frozenset[str] | None:
    """A small set of keys, one of which every matching paper has; None if no such set exists.

    For an AND the rarest-looking child is chosen (COMMON_TERMS are avoided, longer words are
    preferred); for an OR every branch contributes.
    """
    found = _anchors(query.root if isinstance(query, Query) else query)
    return found[1] if found is not None else None


def _required(node: Node) -> frozenset[str]:
    if isinstance(node, Term):
        return frozenset((node.term,))
    if isinstance(node, Phrase):
        keys: set[str] = set()
        for slot in node.slots:
            keys.update(frozenset(slot[0]).intersection(*slot[1:]))
        return frozenset(keys)
    if isinstance(node, And):
        return frozenset().union(*(_required(child) for child in node.children))
    if isinstance(node, Or):
        return frozenset.intersection(*(_required(child) for child in node.children))
    if isinstance(node, Category) or isinstance(node, Source):
        anchors = _anchors(node)
        return anchors[1] if anchors is not None else frozenset()
    return frozenset()


FieldTerm: TypeAlias = tuple[tuple[str, ...], str]


def _field_required(node: Node) -> frozenset[FieldTerm]:
    if isinstance(node, Term):
        return frozenset(((node.fields, node.term),))
    if isinstance(node, Phrase):
        terms: set[str] = set()
        for slot in node.slots:
            terms.update(frozenset(slot[0]).intersection(*slot[1:]))
        return frozenset((node.fields, term) for term in terms)
    if isinstance(node, And):
        return frozenset().union(*(_field_required(child) for child in node.children))
    if isinstance(node, Or):
        return frozenset.intersection(*(_field_required(child) for child in node.children))
    return frozenset()


def field_requirements(query: Query | Node) -> frozenset[FieldTerm]:
    """(fields, term) pairs: every matching paper has ``term`` in at least one of ``fields``.

    For an index kept per paper field (term -> papers); categories, sources and upvotes are
    left to the caller's own columns.
    """
    return _field_required(query.root if isinstance(query, Query) else query)


def required_terms(query: Query | Node) -> frozenset[str]:
    """Keys every matching paper has (in some field); may be empty, e.g. for an OR."""
    return _required(query.root if isinstance(query, Query) else query)
