"""Match new papers against every standing subscription at once, in time that grows with text.

Most standing queries are words, two-word phrases, fields, categories and sources joined by
AND and OR. Such a query is compiled to its disjunctive normal form over *keys*, one per leaf
(``_leaf_key``): a word (``diffusion``), a pair of words at consecutive positions
(``"world model"`` is the key ``world model``), a word in one field (``title:diffusion``), an
arXiv category (``cat:cs.lg``, ``catp:cs.``) or a source (``source:hf``). Keys of different
kinds never collide: terms contain neither spaces nor colons. For each paper the percolator
analyzes the fields once and lists its *facts*, the keys it has (``_facts``); a leaf is in the
paper exactly when its key is among them. Matching plans are then found by set operations on
the facts, which run in C; how depends on the plan's shape:

* one key, or keys joined by OR: looked up under each key;
* two keys joined by AND: looked up under the rarer, then under the other;
* more keys joined by AND: filed under the two rarest, then checked by set inclusion;
* an OR of conjunctions: filed under the rarest key of each, then checked likewise.

Anything else (exclusions, upvotes, longer phrases, hyphenated words, phrases in one field) is
a *tree*: filed under its anchor keys (``anchor_terms``), one of which any matching paper has,
first filtered by the keys every match has (``required_terms``), then evaluated on the analyzed
paper. Trees without an anchor (``upvotes>=50``, ``cat:cs*``) are checked for every paper.

Exact words (``=generalization``) are keys like words: a paper's analysis derives the exact
words some plan uses, and only those (``bridge.query.exact``). Dates, paper ids and phrases
with exact words are trees.

Queries are first widened with the acronyms and open compounds the archive defines
(``bridge.query.expansions``; the table is given to the constructor, and ``set_expansions``
compiles every subscription again with a newer one). A widened query is an ordinary tree:
``OOD`` becomes ``OOD OR "out-of-distribution"``, planned like any other. Hits on a form the
query did not write are labelled for "why it matched" ("out-of-distribution (OOD)").

Plans are shared: equal queries, and queries with the same normal form (``generalisation``
and ``Generalization``, ``a b`` and ``b a``), are one plan, evaluated once per paper. A plan's
hits are those of every key in every satisfied conjunction, which is what the tree walk
reports; each key's hits are built once per paper and shared by every match that has them.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from itertools import chain, islice, pairwise, repeat
from operator import attrgetter, mul
from typing import Any

from bridge.errors import QueryError
from bridge.models import Hit, Match, Paper, Subscription
from bridge.query.dates import intersection
from bridge.query.evaluate import (
    FIELD_ORDER,
    LIST_SEPARATOR,
    PaperIndex,
    Posting,
    Postings,
    anchor_terms,
    collect_hits,
    exact_terms,
    hit_from,
    key_rate,
    leaf_pairs,
    matches,
    merge_hits,
    required_terms,
)
from bridge.query.exact import by_candidate, derive, is_exact
from bridge.query.expansions import EMPTY, ExpansionTable, expand, label_hits
from bridge.query.normalize import postings_of
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
    Source,
    Term,
    Upvotes,
    parse_query,
)

__all__ = ["Percolator"]

logger = logging.getLogger(__name__)

# A plan's shape decides where it is filed and how a paper is checked against it.
_ONE_KEY = 0  # one key: matches when the paper has it
_ANY_KEY = 1  # keys joined by OR: filed under each, matches when the paper has any
_TWO_KEYS = 2  # two keys joined by AND: filed under the rarer, then under the other
_CONJUNCTION = 3  # more keys joined by AND: filed under the two rarest, checked by inclusion
_DISJUNCTION = 4  # OR of conjunctions: filed under the rarest key of each, checked likewise
_TREE = 5  # anything else: filed by anchors, prefiltered by required keys, then walked

# A disjunctive normal form larger than this is not worth it; such plans walk the tree.
_MAX_CONJUNCTIONS = 16
# A guess at the fraction of papers with a given word pair: far below any single word's.
_PAIR_RATE = 0.0005

Conjunction = frozenset[str]
Leaf = Term | Phrase | Category | Source
Bucket = dict[int, "_Plan"]


@dataclass(eq=False, slots=True)
class _Plan:
    # What equal plans share: the normal form, or the tree for a _TREE plan.
    identity: object
    root: Node
    kind: int
    # Not a tree: the conjunctions of keys, one of which must be among the paper's facts, and
    # the leaf each key stands for.
    conjunctions: tuple[Conjunction, ...]
    leaves: dict[str, Leaf]
    keys: frozenset[str]  # the same keys, for quick intersections
    # Keys the plan is filed under (a tree's anchors; None: none, check always).
    anchors: tuple[str, ...] | None
    # _TREE: keys every match has.
    required: frozenset[str]
    # subscription id -> insertion sequence, in insertion order
    subscribers: dict[str, int] = field(default_factory=dict)
    # The subscribers as two flat tuples, for matching; brought up to date before it
    # (``Percolator._refresh``), not on every change.
    ids: tuple[str, ...] = ()
    sequences: tuple[int, ...] = ()
    # Exact words (=w) the plan uses: each paper's analysis derives these.
    exact: frozenset[str] = frozenset()
    # Forms the query was widened with (bridge.query.expansions), for "why it matched".
    labels: dict[str, str] = field(default_factory=dict)
    # _TREE: the listing-day ranges every match is in (``date>=…`` ANDed with the rest),
    # checked before the tree is walked: most candidates of a dated tree fail on the day.
    days: tuple[ListedOn, ...] = ()
    # The same ranges as one: a listing day is in every range exactly when it is on or after
    # the latest ``since`` and before the earliest ``before`` (None: no end).
    since: date = date.min
    before: date | None = None
    # Whether a leaf reads the authors field (author:…): papers are analyzed for their
    # authors only while some plan does.
    authors: bool = False


def _leaf_key(node: Leaf) -> str | None:
    """The key standing for a leaf, if the leaf is in a paper exactly when the key is in its
    facts; None for anything else."""
    if isinstance(node, Term):
        if node.fields == DEFAULT_FIELDS:
            return node.term
        return f"{node.fields[0]}:{node.term}" if len(node.fields) == 1 else None
    if isinstance(node, Phrase):
        return _pair_key(node)
    if isinstance(node, Category):
        if not node.prefix:
            return "cat:" + node.value
        # A prefix up to the first dot (cs.*) is the archive key every such category gives.
        return "catp:" + node.value if node.value.find(".") == len(node.value) - 1 > 0 else None
    return "source:" + node.value


def _pair_key(node: Phrase) -> str | None:
    """ "a b" for a phrase of two plain words in the default fields.

    Such a phrase is in a paper exactly when some field has the first word at a position where
    the second follows, which is what a paper's pairs record (``_pairs``).
    """
    if node.fields != DEFAULT_FIELDS or len(node.slots) != 2:
        return None
    words = []
    for slot in node.slots:
        if len(slot) != 1 or len(slot[0]) != 1:
            return None  # a hyphenated word (parts or joined) or a compound's parts
        if is_exact(slot[0][0]):
            return None  # a paper's word pairs are of stemmed words: walk the tree
        words.append(slot[0][0])
    return " ".join(words)


def _dnf(node: Node, leaves: dict[str, Leaf]) -> list[Conjunction] | None:
    """The query as OR of ANDs of keys (noting each key's leaf), or None if it has a leaf
    without a key, or an exclusion.

    Conjunctions that contain others are kept: they cannot change whether a paper matches,
    but the tree walk reports their hits too (``diffusion OR (diffusion model)``).
    """
    if isinstance(node, Or):
        out: list[Conjunction] = []
        for child in node.children:
            part = _dnf(child, leaves)
            if part is None:
                return None
            out.extend(part)
            if len(out) > _MAX_CONJUNCTIONS:
                return None
        return _unique(out)
    if isinstance(node, And):
        product: list[Conjunction] = [frozenset()]
        for child in node.children:
            part = _dnf(child, leaves)
            if part is None or len(product) * len(part) > _MAX_CONJUNCTIONS:
                return None
            product = [left | right for left in product for right in part]
        return _unique(product)
    if not isinstance(node, Term | Phrase | Category | Source):
        return None  # an exclusion, or upvotes
    key = _leaf_key(node)
    if key is None:
        return None
    leaves[key] = node
    return [frozenset((key,))]


def _unique(conjunctions: list[Conjunction]) -> list[Conjunction]:
    # A fixed order (smallest first), so equal normal forms give equal plans.
    return sorted(set(conjunctions), key=lambda c: (len(c), sorted(c)))


def _rarest_first(keys: Conjunction, leaves: dict[str, Leaf]) -> tuple[str, ...]:
    """The keys, those in the fewest papers first (a guess: ``key_rate``)."""

    def rate(key: str) -> tuple[float, str]:
        leaf = leaves[key]
        if isinstance(leaf, Phrase):
            return _PAIR_RATE, key
        return key_rate(leaf.term if isinstance(leaf, Term) else key), key

    return tuple(sorted(keys, key=rate))


def _plan(query: Query) -> _Plan:
    plan = _shaped_plan(query)
    plan.exact = exact_terms(query)
    plan.authors = _reads_authors(query.root)
    return plan


def _reads_authors(node: Node) -> bool:
    """Whether a word or phrase of the tree is looked for among the authors."""
    if isinstance(node, And | Or):
        return any(map(_reads_authors, node.children))
    if isinstance(node, Not):
        return _reads_authors(node.child)
    return isinstance(node, Term | Phrase) and "authors" in node.fields


def _shaped_plan(query: Query) -> _Plan:
    root = query.root
    leaves: dict[str, Leaf] = {}
    dnf = _dnf(root, leaves)
    if dnf is None:
        anchors = anchor_terms(root)
        filed = tuple(sorted(anchors)) if anchors is not None else None
        root = _cheap_first(root)
        plan = _Plan(root, root, _TREE, (), {}, frozenset(), filed, required_terms(root))
        children = root.children if isinstance(root, And) else (root,)
        plan.days = tuple(child for child in children if isinstance(child, ListedOn))
        since, plan.before = intersection((d.since, d.before) for d in plan.days)
        plan.since = date.min if since is None else since
        return plan
    if len(dnf) == 1:
        keys = _rarest_first(dnf[0], leaves)
        kind = _ONE_KEY if len(keys) == 1 else _TWO_KEYS if len(keys) == 2 else _CONJUNCTION
        filed = keys if kind != _CONJUNCTION else keys[:2]
    elif all(len(conjunction) == 1 for conjunction in dnf):
        kind = _ANY_KEY
        filed = tuple(sorted(leaves))
    else:
        kind = _DISJUNCTION
        filed = tuple(sorted({_rarest_first(c, leaves)[0] for c in dnf}))
    return _Plan(
        frozenset(dnf), root, kind, tuple(dnf), leaves, frozenset(leaves), filed, frozenset()
    )


# What a condition costs to check on an analyzed paper: a field of the paper, a word's
# postings, a phrase's walk through them, a subtree.
_COST = {ListedOn: 0, Upvotes: 0, PaperId: 0, Source: 0, Category: 0, Term: 1, Phrase: 2}


def _cheap_first(node: Node) -> Node:
    """The same tree with each AND's cheapest conditions first, so a paper that fails one
    (``... date>=2025-01-01`` on an older paper) is turned away before any phrase is walked.
    Whether a tree matches, and its hits (merged in field and text order), do not depend on
    the order of an AND's children."""
    if isinstance(node, And):
        children = sorted(map(_cheap_first, node.children), key=lambda c: _COST.get(type(c), 3))
        return And(tuple(children), node.position)
    if isinstance(node, Or):
        return Or(tuple(map(_cheap_first, node.children)), node.position)
    if isinstance(node, Not):
        return Not(_cheap_first(node.child), node.position)
    return node


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building many small acyclic values.

    Filing 100,000 subscriptions or matching a day's papers creates hundreds of thousands of
    plans, hits and matches; every few hundred allocations the collector would walk the whole
    heap (subscriptions included) for cycles these values never form, which measured as up to
    half of a run. Reference counting still frees everything; the previous state is restored.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            _age_young_objects()
            gc.enable()


def _age_young_objects() -> None:
    """Move every object the collector tracks into its oldest generation, without a pass.

    While the collector was paused, everything built (the plans, or the ~450,000 matches and
    hits a day's papers return) piled up in the youngest generation. Re-enabled, its next pass
    would walk all of them (5% of a run), and a later pass again, for cycles they never form,
    before they reach the oldest generation, where they belong as long-lived values.
    ``gc.freeze`` then ``gc.unfreeze`` gets them there at once: freeze moves every tracked
    object to the permanent generation, unfreeze moves the permanent generation into the
    oldest one; both only splice lists. Nothing escapes the collector: the oldest generation
    is collected as usual, and any cycle left there is found by its next full pass.

    The permanent generation is process-wide, and unfreeze empties it. So this is skipped if
    anything else froze objects (``gc.get_freeze_count()``, e.g. a server before forking):
    unfreezing those would undo its freeze.
    """
    if gc.get_freeze_count() == 0:
        gc.freeze()
        gc.unfreeze()


class Percolator:
    """The subscriptions, indexed by key; ``match(papers)`` finds who gets what.

    Subscriptions whose query does not parse are skipped by the constructor and recorded in
    ``invalid`` (id -> QueryError); ``add`` raises the QueryError instead.
    """

    def __init__(
        self, subscriptions: Iterable[Subscription] = (), expansions: ExpansionTable = EMPTY
    ) -> None:
        # Acronyms and compounds the archive defines: each query is widened with them when
        # it is compiled (``add``); ``set_expansions`` compiles them all again with a newer
        # table.
        self._expansions = expansions
        self._subscriptions: dict[str, tuple[Subscription, _Plan]] = {}
        self._plans: dict[object, _Plan] = {}
        # Where plans are filed, by shape (see _ONE_KEY ...). Equal normal forms share a plan,
        # so a key has at most one _ONE_KEY plan, and a pair of keys one _TWO_KEYS plan.
        self._one_key: dict[str, _Plan] = {}
        self._any_key: dict[str, Bucket] = {}
        self._two_keys: dict[str, dict[str, _Plan]] = {}
        # Conjunctions by their rarest key, then their second rarest: under the rarest
        # alone, a paper had ~30 to check by inclusion and matched almost none.
        self._conjunctions: dict[str, dict[str, Bucket]] = {}
        self._disjunctions: dict[str, Bucket] = {}
        # Trees under each of their anchor keys (one index: a paper's keys are looked up in
        # it once), and trees with none.
        self._trees: dict[str, Bucket] = {}
        self._always: Bucket = {}
        # Keys of normal forms: key -> its leaf and how many plans have it. What ``_facts``
        # looks for (``_Wanted``) is worked out from it when a word or phrase key comes or goes.
        self._keys: dict[str, tuple[Leaf, int]] = {}
        self._wanted: _Wanted | None = None
        # The keys of one-key and OR plans, whose hits every paper that has them asks for:
        # one set to intersect a paper's words with, worked out again when they change.
        self._eager: frozenset[str] | None = None
        # Exact words some plan uses, and how many plans use each: papers are analyzed for
        # these alone (none: no extra work at all).
        self._exact_uses: dict[str, int] = {}
        # The same words, and the terms to look for them among, worked out when they change
        # (``_refresh``), not for every run of papers.
        self._exact: _ExactWords | None = None
        # Plans with labels (widened with forms the query did not write): only a paper that
        # matches one of them has its hits relabelled.
        self._labelled: set[_Plan] = set()
        # How many plans read the authors field (``_Plan.authors``).
        self._author_plans = 0
        self._sequence = 0
        # Plans whose subscribers changed since ``ids`` and ``sequences`` were last built.
        self._changed: set[_Plan] = set()
        self.invalid: dict[str, QueryError] = {}
        with _collector_paused():
            for subscription in subscriptions:
                try:
                    self.add(subscription)
                except QueryError as exc:
                    self.invalid[subscription.id] = exc
                    logger.warning("subscription %s skipped: %s", subscription.id, exc)
            self._refresh()  # part of indexing: not left to the first match

    def __len__(self) -> int:
        return len(self._subscriptions)

    def __contains__(self, subscription_id: object) -> bool:
        return subscription_id in self._subscriptions

    def add(self, subscription: Subscription) -> None:
        """Add or replace a subscription; raises QueryError if its query is malformed."""
        query = parse_query(subscription.query)
        self.remove(subscription.id)
        self.invalid.pop(subscription.id, None)
        expanded = expand(query, self._expansions)
        plan = _plan(expanded.query)
        if expanded.labels:
            # The labels say which forms this subscription wrote: "timestep" and "time step"
            # widen to the same tree but explain a hit each the other way round, so two
            # subscriptions share a plan only if they share its labels too.
            plan.identity = (plan.identity, tuple(sorted(expanded.labels.items())))
            plan.labels = dict(expanded.labels)
        plan = self._plans.setdefault(plan.identity, plan)
        if not plan.subscribers:
            self._file(plan)
        self._sequence += 1
        plan.subscribers[subscription.id] = self._sequence
        self._changed.add(plan)
        self._subscriptions[subscription.id] = (subscription, plan)

    def set_expansions(self, expansions: ExpansionTable) -> bool:
        """Use a newer acronym table (the archive grew): every subscription is compiled again
        if the table says anything new; True if it did. Costs about what building the
        percolator did, so call it between matching runs, not per paper."""
        if expansions.version == self._expansions.version:
            return False
        self._expansions = expansions
        subscriptions = [subscription for subscription, _ in self._subscriptions.values()]
        with _collector_paused():
            for subscription in subscriptions:
                self.add(subscription)
            self._refresh()
        return True

    def remove(self, subscription_id: str) -> bool:
        """Forget a subscription; False if it was not there."""
        entry = self._subscriptions.pop(subscription_id, None)
        if entry is None:
            return False
        plan = entry[1]
        del plan.subscribers[subscription_id]
        self._changed.add(plan)
        if not plan.subscribers:
            del self._plans[plan.identity]
            self._unfile(plan)
        return True

    def _index(self, plan: _Plan) -> dict[str, Bucket]:
        """Where a plan filed by id is (_ANY_KEY, _DISJUNCTION and _TREE)."""
        if plan.kind == _TREE:
            return self._trees
        return self._any_key if plan.kind == _ANY_KEY else self._disjunctions

    def _file(self, plan: _Plan) -> None:
        for key in plan.exact:
            self._exact_uses[key] = self._exact_uses.get(key, 0) + 1
            self._exact = None
        for key, leaf in plan.leaves.items():
            uses = self._keys.get(key, (leaf, 0))[1]
            self._keys[key] = (leaf, uses + 1)
            if not uses and isinstance(leaf, Term | Phrase):
                self._wanted = None
        if plan.labels:
            self._labelled.add(plan)
        self._author_plans += plan.authors
        if plan.anchors is None:
            self._always[id(plan)] = plan
        elif plan.kind == _ONE_KEY:
            self._one_key[plan.anchors[0]] = plan
            self._eager = None
        elif plan.kind == _TWO_KEYS:
            rarer, other = plan.anchors
            self._two_keys.setdefault(rarer, {})[other] = plan
        elif plan.kind == _CONJUNCTION:
            rarest, second = plan.anchors
            self._conjunctions.setdefault(rarest, {}).setdefault(second, {})[id(plan)] = plan
        else:
            index = self._index(plan)
            for key in plan.anchors:
                index.setdefault(key, {})[id(plan)] = plan
            self._eager = None

    def _unfile(self, plan: _Plan) -> None:
        for key in plan.exact:
            if self._exact_uses[key] > 1:
                self._exact_uses[key] -= 1
            else:
                del self._exact_uses[key]
                self._exact = None
        for key in plan.leaves:
            leaf, uses = self._keys[key]
            if uses > 1:
                self._keys[key] = (leaf, uses - 1)
            else:
                del self._keys[key]
                if isinstance(leaf, Term | Phrase):
                    self._wanted = None
        self._labelled.discard(plan)
        self._author_plans -= plan.authors
        if plan.anchors is None:
            del self._always[id(plan)]
        elif plan.kind == _ONE_KEY:
            del self._one_key[plan.anchors[0]]
            self._eager = None
        elif plan.kind == _TWO_KEYS:
            rarer, other = plan.anchors
            _drop(self._two_keys, rarer, other)
        elif plan.kind == _CONJUNCTION:
            rarest, second = plan.anchors
            _drop(self._conjunctions[rarest], second, id(plan))
            if not self._conjunctions[rarest]:
                del self._conjunctions[rarest]
        else:
            index = self._index(plan)
            for key in plan.anchors:
                _drop(index, key, id(plan))
            self._eager = None

    def match(self, papers: Iterable[Paper]) -> list[Match]:
        """Every (subscription, paper) match with its hits: papers in the given order, and for
        each paper the subscriptions in the order they were added."""
        if self._changed or self._exact is None:
            self._refresh()
        exact = self._exact
        assert exact is not None
        authors = self._author_plans > 0
        with _collector_paused():
            # Each paper's matches are joined once at the end, not grown into one list.
            found = [self.match_one(_Analysis(paper, exact, authors)) for paper in papers]
            return list(chain.from_iterable(found))

    def match_one(self, px: PaperIndex) -> list[Match]:
        """The matches for one analyzed paper."""
        if self._changed:
            self._refresh()
        words, facts = self._facts(px)
        # The words every paper that has them asks the hits of (one-key plans, and OR plans'
        # buckets) are built field by field in bulk; a word only some larger plan reads (a
        # quarter of a paper's subscribed words in the benchmark, most never asked for) is
        # built if its plan matches.
        eager_keys = self._eager
        if eager_keys is None:
            eager_keys = self._eager = frozenset(chain(self._one_key, self._any_key))
        eager = words & eager_keys
        plans, hits = self._matching_plans(px, facts, _KeyHits(px, self._keys, eager))
        if not plans:
            return []
        if self._labelled and not self._labelled.isdisjoint(plans):
            hits = [
                label_hits(h, p.labels) if p.labels else h for p, h in zip(plans, hits, strict=True)
            ]
        return _in_subscription_order(plans, hits, px.paper.arxiv_id)

    def _refresh(self) -> None:
        """Bring what matching reads up to date: the flat subscriber tuples of changed plans
        and the keys to look for (``_Wanted``)."""
        if self._wanted is None:
            self._wanted = _Wanted(self._keys)
        if self._exact is None:
            self._exact = _ExactWords(frozenset(self._exact_uses))
        for plan in self._changed:
            plan.ids = tuple(plan.subscribers)
            plan.sequences = tuple(plan.subscribers.values())
        self._changed.clear()

    def _matching_plans(
        self, px: PaperIndex, facts: set[str], key_hits: _KeyHits
    ) -> tuple[list[_Plan], list[tuple[Hit, ...]]]:
        """The plans the paper matches, and each one's hits (two lists in step)."""
        # Set intersections run in C and leave only the keys this paper has. The large
        # indexes are probed with the facts as a tuple: a set's iteration walks its whole
        # table, most of it empty, once per index.
        listed = tuple(facts)
        one_key = self._one_key
        keys = one_key.keys() & listed
        # The most common shape: its plans and hits are looked up in C, key by key. A set
        # iterates in the same order twice while it is not changed.
        found = list(map(one_key.__getitem__, keys))
        hits = list(map(key_hits.__getitem__, keys))
        add = found.append
        add_hits = hits.append
        two_keys = self._two_keys
        for key in two_keys.keys() & listed:
            others = two_keys[key]
            # Most keys have a plan or two, looked through; a common word has hundreds, of
            # which the paper has a few, found by an intersection in C.
            for other in others.keys() & facts if len(others) > 8 else others:
                if other in facts:
                    add(others[other])
                    add_hits(key_hits.merged((key, other)))
        conjunctions = self._conjunctions
        for key in conjunctions.keys() & listed:
            by_second = conjunctions[key]
            for second in by_second.keys() & facts:
                for plan in by_second[second].values():
                    if plan.conjunctions[0] <= facts:
                        add(plan)
                        add_hits(key_hits.merged(plan.conjunctions[0]))
        # Keys joined by OR: a paper nearly always has one key of such a plan, whose hits are
        # then the plan's, so each key's bucket goes in whole, in C (38 plans a paper in the
        # benchmark, 0.14 with two of their keys). A plan filed under several of the paper's
        # keys would be found twice: then each is collected once and its keys merged.
        any_key = self._any_key
        any_keys = any_key.keys() & listed
        if any_keys:
            buckets = list(map(any_key.__getitem__, any_keys))
            candidates: Bucket = {}
            for bucket in buckets:
                candidates.update(bucket)
            if len(candidates) == sum(map(len, buckets)):
                found += chain.from_iterable(map(dict.values, buckets))
                hits += chain.from_iterable(
                    map(repeat, map(key_hits.__getitem__, any_keys), map(len, buckets))
                )
            else:
                for plan in candidates.values():
                    add(plan)
                    add_hits(key_hits.merged(plan.keys & facts))
        candidates = {}
        disjunctions = self._disjunctions
        for key in disjunctions.keys() & listed:
            candidates.update(disjunctions[key])
        for plan in candidates.values():
            satisfied = [c for c in plan.conjunctions if c <= facts]
            if satisfied:
                add(plan)
                # The keys of every satisfied conjunction: what the tree walk reports.
                add_hits(key_hits.merged(frozenset().union(*satisfied)))
        paper_keys = px.keys
        candidates = {}
        trees = self._trees
        for key in trees.keys() & paper_keys:
            candidates.update(trees[key])
        candidates.update(self._always)
        day = px.paper.listed_on
        for plan in candidates.values():
            # Whether the day is in the plan's ranges (``_Plan.since``), without a call: most
            # dated candidates are turned away here.
            if plan.days and (
                day is None or day < plan.since or (plan.before is not None and day >= plan.before)
            ):
                continue
            if plan.required <= paper_keys and matches(plan.root, px):
                add(plan)
                add_hits(collect_hits(plan.root, px))
        return found, hits

    def _facts(self, px: PaperIndex) -> tuple[set[str], set[str]]:
        """The keys the paper has that some plan uses: of its default words, categories and
        sources, and its subscribed word pairs and words in one field. Also, apart, the first
        of those: the keys that are words in the default fields."""
        wanted = self._wanted
        if wanted is None:
            wanted = self._wanted = _Wanted(self._keys)
        # Only keys some plan uses (~70 of a paper's ~190): each index is then probed with
        # those alone, and probing the large indexes is most of finding the plans.
        used = self._keys.keys()
        words = px.default_terms & wanted.words
        facts = set(words)
        facts.update(used & px.meta_keys)
        if wanted.pairs:
            # Looked up as (a, b) tuples, which zip makes without allocating; only the few
            # subscribed pairs are joined into their keys.
            facts.update(map(" ".join, filter(wanted.pairs.__contains__, _pairs(px))))
        for name, terms in wanted.fields.items():
            facts.update([f"{name}:{term}" for term in terms.intersection(px.postings[name])])
        return words, facts


_ids_of = attrgetter("ids")
_sequences_of = attrgetter("sequences")


def _in_subscription_order(
    plans: list[_Plan], hits: list[tuple[Hit, ...]], arxiv_id: str
) -> list[Match]:
    """One match per subscriber of each plan, with its plan's hits, in subscription order."""
    # The matches are built in C in plan order, then put in subscription order by one sort of
    # their indexes: cheaper than sorting tuples, or than sorting first and indexing the ids
    # and the hits apart.
    ids = chain.from_iterable(map(_ids_of, plans))
    # Each plan's hits once per subscriber: a 1-tuple from zip times the count (a plan's
    # ``repeat`` object cost more, its arguments parsed by keyword).
    repeated = chain.from_iterable(map(mul, zip(hits), map(len, map(_ids_of, plans))))
    # Match is a named tuple: tuple.__new__ builds each from a tuple of its fields, in C
    # (repeat(Match) rather than a partial: one call less per match).
    built: list[Match] = list(
        map(tuple.__new__, repeat(Match), zip(ids, repeat(arxiv_id), repeated))
    )
    sequences = list(chain.from_iterable(map(_sequences_of, plans)))
    return list(map(built.__getitem__, sorted(range(len(sequences)), key=sequences.__getitem__)))


class _KeyHits(dict[str, tuple[Hit, ...]]):
    """A paper's hits by key, each built when first asked for and then shared by every plan
    that reports the key (``key_hits[key]``; a missing key is built by ``__missing__``)."""

    __slots__ = ("_px", "_keys")

    def __init__(
        self,
        px: PaperIndex,
        keys: dict[str, tuple[Leaf, int]],
        words: AbstractSet[str] = frozenset(),
    ) -> None:
        super().__init__()
        self._px = px
        self._keys = keys  # key -> its leaf (and how many plans use it)
        if words:
            self._add_word_hits(words)

    def _add_word_hits(self, words: AbstractSet[str]) -> None:
        """File the hits of ``words``, keys that are words of the paper's default fields,
        field by field: what ``_word_hits`` gives each, built from one set intersection per
        field rather than a lookup per word and field (most words are in one field or two).
        A word whose places in a field are not in text order is left to ``__missing__``."""
        postings = self._px.postings
        texts = self._px.texts
        # Filed straight into self as tuples: most words are in one field, once.
        get = self.get
        unordered: list[str] = []
        for name in DEFAULT_FIELDS:
            field_postings = postings[name]
            if not field_postings:
                continue
            text = texts[name]
            for term in field_postings.keys() & words:
                occurrences = field_postings[term]
                if len(occurrences) == 1:
                    _, start, end, _ = occurrences[0]
                    hits: tuple[Hit, ...] = (hit_from((name, text[start:end], start, end)),)
                elif _starts_increase(occurrences):
                    hits = tuple([hit_from((name, text[s:e], s, e)) for _, s, e, _ in occurrences])
                else:
                    unordered.append(term)
                    continue
                before = get(term)
                self[term] = hits if before is None else before + hits
        for term in unordered:
            self.pop(term, None)

    def __missing__(self, key: str) -> tuple[Hit, ...]:
        leaf = self._keys[key][0]
        hits: tuple[Hit, ...] | None = None
        if isinstance(leaf, Term):
            hits = _word_hits(leaf, self._px)
        elif isinstance(leaf, Phrase):
            hits = _pair_hits(leaf, self._px)
        if hits is None:
            hits = merge_hits([leaf_pairs(leaf, self._px)])
        self[key] = hits
        return hits

    def merged(self, keys: AbstractSet[str] | tuple[str, ...]) -> tuple[Hit, ...]:
        """The hits of several keys, without duplicates, in field then text order."""
        if len(keys) == 1:
            (key,) = keys
            return self[key]
        # Each key's hits are sorted in that order and unique, so the union, sorted, is what
        # merging the leaves' hits gives (equal places are equal hits: a hit's text is the
        # field's text between its offsets); the keys' own hits are usually built already.
        unique = set(chain.from_iterable(map(self.__getitem__, keys)))
        if len(unique) == 1:
            return tuple(unique)
        return tuple(sorted(unique, key=_hit_order))


def _hit_order(hit: Hit) -> tuple[int, int, int]:
    """The order of a paper's hits: field (``FIELD_ORDER``), then start and end."""
    return FIELD_ORDER[hit[0]], hit[2], hit[3]


def _word_hits(leaf: Term, px: PaperIndex) -> tuple[Hit, ...] | None:
    """A keyed word's hits straight from the postings, or None if they need sorting.

    What ``leaf_pairs`` gives, without its sort keys and sort, which cost more than the hits
    of the one or two places a word usually is: a keyed word's fields are the default fields
    or one field (``_leaf_key``), so in field order already, and its places in a field are in
    text order unless two share a start (a compound whose joined form is its first part).
    """
    term = leaf.term
    postings = px.postings
    hits: list[Hit] = []
    for name in leaf.fields:
        occurrences = postings[name].get(term)
        if occurrences:
            if len(occurrences) > 1 and not _starts_increase(occurrences):
                return None
            text = px.texts[name]
            # Usually one place: a loop is cheaper than a list comprehension's frame.
            for _, start, end, _ in occurrences:
                hits.append(hit_from((name, text[start:end], start, end)))
    return tuple(hits)


def _pair_hits(leaf: Phrase, px: PaperIndex) -> tuple[Hit, ...]:
    """A keyed word pair's hits: what ``leaf_pairs`` gives for a phrase of two plain words in
    the default fields (``_pair_key``), without the general phrase walk of every field."""
    ((first,),), ((second,),) = leaf.slots
    postings = px.postings
    hits: list[Hit] = []
    for name in leaf.fields:
        field_postings = postings[name]
        before = field_postings.get(first)
        after = field_postings.get(second) if before else None
        if before and after:
            text = px.texts[name]
            if len(before) == 1 and len(after) == 1:
                # Each word once in the field, the usual case: one comparison of positions.
                position, start, _, span = before[0]
                if position + span == after[0][0]:
                    end = after[0][2]
                    hits.append(hit_from((name, text[start:end], start, end)))
            else:
                spans = _pair_spans(before, after)
                hits += [hit_from((name, text[s:e], s, e)) for s, e in spans]
    return tuple(hits)


def _pair_spans(before: list[Posting], after: list[Posting]) -> list[tuple[int, int]]:
    """(start, end) of each place the second word directly follows the first, in text order:
    ``phrase_spans`` for two one-word slots."""
    starts: dict[int, int] = {}  # the position after an occurrence of the first word -> its start
    for position, start, _, span in before:
        starts.setdefault(position + span, start)
    reached: dict[int, tuple[int, int]] = {}
    for position, _, end, span in after:
        begins = starts.get(position)
        if begins is not None:
            reached.setdefault(position + span, (begins, end))
    return sorted(set(reached.values()))


def _starts_increase(occurrences: list[Posting]) -> bool:
    return all(a[1] < b[1] for a, b in pairwise(occurrences))


def _drop(index: dict[str, dict[Any, _Plan]], key: str, entry: object) -> None:
    """Remove a plan from the index, and the key once nothing is filed under it."""
    plans = index[key]
    del plans[entry]
    if not plans:
        del index[key]


def _split_pair(key: str) -> tuple[str, str]:
    first, second = key.split(" ")  # terms contain no spaces
    return first, second


class _Wanted:
    """The keys to look for in a paper: its words in the default fields, and beyond them,
    word pairs and words in one field."""

    def __init__(self, keys: dict[str, tuple[Leaf, int]]) -> None:
        # the keys that are words in the default fields, as a set of their own: probing it
        # with a paper's words costs half what probing every key does (a smaller table, and
        # one memory access less per probe)
        self.words = frozenset(
            key
            for key, (leaf, _) in keys.items()
            if isinstance(leaf, Term) and leaf.fields == DEFAULT_FIELDS
        )
        # the subscribed word pairs, "a b" as (a, b)
        self.pairs = frozenset(_split_pair(key) for key in keys if " " in key)
        # field -> the words subscribed in that field alone
        self.fields: dict[str, set[str]] = {}
        for leaf, _ in keys.values():
            if isinstance(leaf, Term) and leaf.fields != DEFAULT_FIELDS:
                self.fields.setdefault(leaf.fields[0], set()).add(leaf.term)


class _ExactWords(frozenset[str]):
    """The exact words (``=w``) some plan uses, with the terms their occurrences can have
    (``exact.by_candidate``), worked out once for every paper to be analyzed."""

    candidates: dict[str, tuple[str, ...]]

    def __new__(cls, keys: frozenset[str]) -> _ExactWords:
        words = super().__new__(cls, keys)
        words.candidates = by_candidate(keys)
        return words


class _Analysis(PaperIndex):
    """A paper analyzed once, also keeping each text field's words in position order and its
    compounds (``postings_of``), from which word pairs are quick to list."""

    __slots__ = ("words", "compounds", "_authors")

    def __init__(
        self, paper: Paper, exact: frozenset[str] = frozenset(), authors: bool = True
    ) -> None:
        self.words: dict[str, list[str]] = {}
        self.compounds: dict[str, list[tuple[str, int, int]]] = {}
        # False when no plan reads the authors field: their words are then left out of the
        # postings and the paper's keys, which only such plans, and the prefilters of trees
        # (a key every match has, in the fields the tree reads), look at.
        self._authors = authors
        super().__init__(paper, exact)

    def _add_list(self, name: str, items: tuple[str, ...], stem: bool) -> None:
        if name == "authors" and not self._authors:
            self.texts[name] = LIST_SEPARATOR.join(items)
            self.postings[name] = {}
            return
        super()._add_list(name, items, stem)

    def _add_exact(self, name: str, stem: bool) -> None:
        exact = self.exact
        if exact and stem and self.postings[name]:
            candidates = exact.candidates if isinstance(exact, _ExactWords) else None
            derive(self.postings[name], self.texts[name], exact, candidates)

    def _add_text(self, name: str, text: str, stem: bool) -> None:
        words: list[str] = []
        compounds: list[tuple[str, int, int]] = []
        self.texts[name] = text
        self.postings[name] = postings_of(text, stem, words, compounds) if text else {}
        self.words[name] = words
        self.compounds[name] = compounds
        self._add_exact(name, stem)


def _pairs(px: PaperIndex) -> Iterable[tuple[str, str]]:
    """Every pair of words (a, b) at consecutive positions of one of the default fields, maybe
    more than once. Pairs, not keys ("a b"): most are no key, and joining them all cost more
    than looking them up (see ``_facts``)."""
    if not isinstance(px, _Analysis):
        return set().union(*(_field_pairs(px.postings[name]) for name in DEFAULT_FIELDS))
    found: list[Iterable[tuple[str, str]]] = [_field_pairs(px.postings["ai_keywords"])]
    for name, words in px.words.items():
        found.append(zip(words, islice(words, 1, None), strict=False))  # neighbours, in C
        if px.compounds[name]:
            found.append(_compound_pairs(words, px.compounds[name]))
    return chain.from_iterable(found)


def _compound_pairs(
    words: list[str], compounds: list[tuple[str, int, int]]
) -> list[tuple[str, str]]:
    """Each compound's joined form with what ends where it starts and what starts where it
    ends."""
    found: list[tuple[str, str]] = []
    ends: dict[int, list[str]] = {}
    for term, position, span in compounds:
        ends.setdefault(position + span, []).append(term)
    for term, position, span in compounds:
        before = [words[position - 1]] if position else []
        for first in before + ends.get(position, []):
            found.append((first, term))
        if position + span < len(words):
            found.append((term, words[position + span]))
    return found


def _field_pairs(postings: Postings) -> set[tuple[str, str]]:
    """``_pairs`` of one field from its postings alone (for a list, whose items do not pair
    up, and for a paper analyzed without its words in order)."""
    at: dict[int, list[str]] = {}  # position -> the terms starting there
    for term, occurrences in postings.items():
        for occurrence in occurrences:
            at.setdefault(occurrence[0], []).append(term)
    found: set[tuple[str, str]] = set()
    for term, occurrences in postings.items():
        for position, _, _, span in occurrences:
            for following in at.get(position + span, ()):
                found.add((term, following))
    return found
