"""Widen a parsed query with what the archive says words mean: acronyms and open compounds.

Researchers write "out-of-distribution (OOD)" once and "OOD" after, or only "RL"; some write
"data set", most "dataset". A query in one form should find papers written in the other.
``bridge.store.expansions`` mines the archive for both (``bridge.query.abbreviations``);
``ExpansionTable`` holds what it found, and ``expand`` rewrites a parsed query with it:

    OOD                      Or(OOD, "out-of-distribution")
    "out of distribution"    Or("out of distribution", OOD)
    reinforcement learning   Or(reinforcement AND learning, RL)   (words next to each other)
    dataset                  Or(dataset, "data set")
    "data set"               Or("data set", dataset)

The result is an ordinary query tree, so the search index compiler, the percolator and the
evaluator need no change, and search, search feeds and subscriptions mean the same thing.
Author names are never expanded, nor exact words (``=OOD``, ``bridge.query.exact``) and
phrases holding one: they ask for the words only as written (``_expandable``).

Which definitions count (the rule)
    An acronym is expanded to a long form when at least ``MIN_DEFINITIONS`` (2) papers define
    it so *and* those are at least ``MIN_SHARE`` (a quarter) of the papers defining that
    acronym at all; at most ``MAX_EXPANSIONS`` (3) long forms, the most frequent first. A
    long form is expanded to every acronym that passes the same rule for it. So one paper's
    odd definition changes nothing, and "RL" reads as "representation learning" too only
    once that is a real share of what the archive means by RL.
    An open compound is joined with its closed form when the archive writes both: at least
    one paper with "data set" and at least one with "dataset".

Why it matched
    ``expand`` also returns labels: the key of each form it added, with the form the query
    wrote. ``label_hits`` turns a hit on an added form into "out-of-distribution (OOD)", so
    every output's explanation says "matched out-of-distribution (OOD) in the abstract".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from bridge.errors import QueryError
from bridge.models import Hit
from bridge.query.abbreviations import long_key
from bridge.query.exact import is_exact
from bridge.query.parser import And, Node, Not, Or, Phrase, Query, Term, parse_query

__all__ = [
    "EMPTY",
    "MAX_EXPANSIONS",
    "MIN_DEFINITIONS",
    "MIN_SHARE",
    "Definition",
    "ExpansionTable",
    "Expanded",
    "expand",
    "label_hits",
]

MIN_DEFINITIONS = 2
MIN_SHARE = 0.25
MAX_EXPANSIONS = 3
# A run of query words looked up as a long form: "reinforcement learning" is two.
_MAX_RUN = 6
# Fields whose words are stemmed text; authors are names and never expanded.
_TEXT_FIELDS = frozenset(("title", "abstract", "ai_summary", "ai_keywords"))


@dataclass(frozen=True, slots=True)
class Definition:
    """One form standing for another: (``short_key``, ``long_key``) with how they are shown."""

    short_key: str  # the acronym's or closed compound's term: "ood", "dataset"
    short_text: str  # as the archive writes it: "OOD", "dataset"
    long_key: str  # the long form's terms: "out of distribution" (stemmed)
    long_text: str  # as the archive writes it: "out-of-distribution", "data set"


@dataclass(frozen=True, slots=True)
class ExpansionTable:
    """The definitions that pass the rule, looked up either way."""

    by_short: Mapping[str, tuple[Definition, ...]] = field(default_factory=dict)
    by_long: Mapping[str, tuple[Definition, ...]] = field(default_factory=dict)
    # What the table holds, for telling whether a percolator must compile again.
    version: frozenset[Definition] = frozenset()

    @classmethod
    def build(
        cls,
        acronyms: Iterable[tuple[str, str, str, str, int]],
        compounds: Iterable[tuple[str, str, str, str, int, int]] = (),
        totals: Mapping[str, int] | None = None,
    ) -> ExpansionTable:
        """From mined counts: acronyms as (short_key, short_text, long_key, long_text,
        papers defining it so); compounds as (closed_key, closed_text, open_key, open_text,
        papers writing it open, papers writing it closed). ``totals``: papers defining each
        acronym in any way, when ``acronyms`` leaves out the rare definitions."""
        by_acronym: dict[str, list[tuple[int, Definition]]] = {}
        for short, short_text, long, long_text, papers in acronyms:
            by_acronym.setdefault(short, []).append(
                (papers, Definition(short, short_text, long, long_text))
            )
        chosen: list[Definition] = []
        for found in by_acronym.values():
            total = sum(papers for papers, _ in found)
            if totals is not None:
                total = max(total, totals.get(found[0][1].short_key, 0))
            found.sort(key=lambda item: (-item[0], item[1].long_key))
            chosen += [
                d
                for papers, d in found[:MAX_EXPANSIONS]
                if papers >= MIN_DEFINITIONS and papers >= MIN_SHARE * total
            ]
        for closed, closed_text, open_key, open_text, open_papers, closed_papers in compounds:
            if open_papers >= 1 and closed_papers >= 1 and closed != open_key:
                chosen.append(Definition(closed, closed_text, open_key, open_text))
        by_short: dict[str, tuple[Definition, ...]] = {}
        by_long: dict[str, tuple[Definition, ...]] = {}
        for d in chosen:
            by_short[d.short_key] = (*by_short.get(d.short_key, ()), d)
            by_long[d.long_key] = (*by_long.get(d.long_key, ()), d)
        return cls(by_short, by_long, frozenset(chosen))

    def __bool__(self) -> bool:
        return bool(self.version)


EMPTY = ExpansionTable()


@dataclass(frozen=True, slots=True)
class Expanded:
    """A query widened by ``expand``, and the labels for its hits (see ``label_hits``)."""

    query: Query
    labels: Mapping[str, str]


def expand(query: Query, table: ExpansionTable) -> Expanded:
    """``query`` with every acronym, long form and open compound it names widened to the
    other forms the table knows (module docstring). Unchanged when there is nothing to add."""
    if not table:
        return Expanded(query, {})
    labels: dict[str, str] = {}
    root = _rewrite(query.root, table, labels)
    if root is query.root:
        return Expanded(query, {})
    return Expanded(Query(root, query.text), labels)


def label_hits(hits: tuple[Hit, ...], labels: Mapping[str, str]) -> tuple[Hit, ...]:
    """Hits on an added form, relabelled "out-of-distribution (OOD)": the paper's words,
    then the form the query wrote. Offsets are kept, so highlighting is unchanged."""
    if not labels:
        return hits
    out = []
    for hit in hits:
        said = labels.get(long_key(hit.text))
        out.append(hit._replace(text=f"{hit.text} ({said})") if said else hit)
    return tuple(out)


def _expandable(node: Term | Phrase) -> bool:
    # An exact word (=OOD, bridge.query.exact) means the word only as written, and a phrase
    # holding one means its words as written: neither is widened.
    if isinstance(node, Term):
        if is_exact(node.term):
            return False
    elif any(is_exact(term) for slot in node.slots for run in slot for term in run):
        return False
    return bool(node.fields) and _TEXT_FIELDS.issuperset(node.fields)


def _rewrite(node: Node, table: ExpansionTable, labels: dict[str, str]) -> Node:
    if isinstance(node, Term | Phrase):
        return _leaf(node, table, labels)
    if isinstance(node, Not):
        child = _rewrite(node.child, table, labels)
        return node if child is node.child else Not(child, node.position)
    if isinstance(node, Or):
        children = tuple(_rewrite(child, table, labels) for child in node.children)
        if all(new is old for new, old in zip(children, node.children, strict=True)):
            return node
        return Or(_flat(Or, children), node.position)
    if isinstance(node, And):
        return _and(node, table, labels)
    return node  # categories, sources, upvotes: nothing to widen


def _leaf(node: Term | Phrase, table: ExpansionTable, labels: dict[str, str]) -> Node:
    if not _expandable(node):
        return node
    # A word's key is its term (what long_key would give, without tokenizing it again).
    key = node.term if isinstance(node, Term) else long_key(node.text)
    added: list[Node] = []
    if isinstance(node, Term):
        for d in table.by_short.get(node.term, ()):
            # OOD -> "out-of-distribution"; dataset -> "data set"
            added += _form(d.long_text, node, labels, d.long_key, node.text)
    for d in table.by_long.get(key, ()):
        # "out of distribution" -> OOD; "data set" -> dataset
        if not (isinstance(node, Term) and node.term == d.short_key):
            added += _form(d.short_text, node, labels, d.short_key, node.text)
    # "OOD generalization" in quotes: its acronym slot also reads as the long form.
    base: Term | Phrase = node
    if isinstance(node, Phrase) and len(node.slots) > 1:
        base = _inside_phrase(node, table, labels)
    if not added:
        return base
    return Or(_flat(Or, (base, *added)), node.position)


def _inside_phrase(node: Phrase, table: ExpansionTable, labels: dict[str, str]) -> Phrase:
    """``"OOD generalization"`` also as ``"out-of-distribution generalization"``: each slot
    holding an acronym gets its long forms as more alternatives (runs of their terms)."""
    slots = list(node.slots)
    words = node.text.split()
    changed = False
    for i, slot in enumerate(slots):
        if len(slot) != 1 or len(slot[0]) != 1:
            continue
        for d in table.by_short.get(slot[0][0], ()):
            runs = _runs(d.long_text)
            if not runs:
                continue
            slots[i] = (*slots[i], *(run for run in runs if run not in slots[i]))
            changed = True
            if len(words) == len(slots):
                said = " ".join(words[:i] + [d.long_text] + words[i + 1 :])
                labels[long_key(said)] = node.text
    return replace(node, slots=tuple(slots)) if changed else node


def _runs(text: str) -> list[tuple[str, ...]]:
    """A long form's terms as runs a phrase slot can hold: each way of reading its hyphenated
    words (parts or joined), at most four."""
    try:
        parsed = parse_query('"' + text.replace('"', " ") + '"').root
    except QueryError:
        return []
    if isinstance(parsed, Term):
        return [(parsed.term,)]
    if not isinstance(parsed, Phrase):
        return []
    runs: list[tuple[str, ...]] = [()]
    for slot in parsed.slots:
        runs = [run + alternative for run in runs for alternative in slot][:4]
    return runs


def _and(node: And, table: ExpansionTable, labels: dict[str, str]) -> Node:
    """Each child widened; and a run of plain words that is a long form ("reinforcement
    learning") also matches its acronym."""
    children = list(node.children)
    out: list[Node] = []
    i = 0
    while i < len(children):
        run = _long_run(children, i, table)
        if run:
            words = children[i : i + run]
            text = " ".join(w.text for w in words)  # type: ignore[union-attr]
            added: list[Node] = []
            for d in table.by_long[long_key(text)]:
                added += _form(d.short_text, words[0], labels, d.short_key, text)  # type: ignore[arg-type]
            if added:
                group = [_rewrite(w, table, labels) for w in words]
                out.append(Or((And(tuple(group), words[0].position), *added), words[0].position))
                i += run
                continue
        out.append(_rewrite(children[i], table, labels))
        i += 1
    if all(new is old for new, old in zip(out, children, strict=False)) and len(out) == len(
        children
    ):
        return node
    flat = _flat(And, tuple(out))
    return flat[0] if len(flat) == 1 else And(flat, node.position)


def _long_run(children: list[Node], i: int, table: ExpansionTable) -> int:
    """The length of the longest run of plain words from ``children[i]`` naming a long form."""
    best = 0
    words: list[str] = []
    first = children[i]
    for j in range(i, min(len(children), i + _MAX_RUN)):
        child = children[j]
        if (
            not isinstance(child, Term)
            or not isinstance(first, Term)
            or child.fields != first.fields
            or not _expandable(child)
        ):
            break
        words.append(child.text)
        if j > i and long_key(" ".join(words)) in table.by_long:
            best = j - i + 1
    return best


def _form(
    text: str, like: Term | Phrase, labels: dict[str, str], key: str, said: str
) -> list[Node]:
    """The other form as a query node in ``like``'s fields (a word or a phrase), noting its
    label; nothing if it does not parse as a phrase (it always should)."""
    try:
        parsed = parse_query('"' + text.replace('"', " ") + '"').root
    except QueryError:
        return []
    if not isinstance(parsed, Term | Phrase):
        return []
    labels[key] = said
    return [replace(parsed, fields=like.fields, text=text, position=like.position)]


def _flat(kind: type[And] | type[Or], items: tuple[Node, ...]) -> tuple[Node, ...]:
    out: list[Node] = []
    for item in items:
        for child in item.children if isinstance(item, kind) else (item,):
            if child not in out:
                out.append(child)
    return tuple(out)
