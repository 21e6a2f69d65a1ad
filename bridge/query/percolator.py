"""Match new papers against every standing subscription at once, in time that grows with text.

Each subscription is parsed once and filed under its *anchor* keys (``anchor_terms``): a small
set of terms (or ``cat:``/``source:`` keys) one of which any matching paper must contain. For
each paper the percolator analyzes the fields once, looks its distinct keys up in the anchor
index, and evaluates only the subscriptions found there, plus the few that have no anchor
(``upvotes>=50``, ``cat:cs*``), which are checked for every paper.

Equal queries (``generalisation`` and ``Generalization``) share one plan, evaluated once per
paper. A plan made only of plain words with AND/OR is compiled to a few word sets (its
disjunctive normal form) and checked with set inclusion; anything else (phrases, fields,
exclusions, categories, upvotes) is first filtered by the keys every match must have, then
evaluated on the analyzed paper. Hits are built once per paper and word and shared by every
match that reports them.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from bridge.errors import QueryError
from bridge.models import Hit, Match, Paper, Subscription
from bridge.query.evaluate import (
    PaperIndex,
    anchor_terms,
    collect_hits,
    matches,
    merge_hits,
    new_match,
    required_terms,
)
from bridge.query.parser import DEFAULT_FIELDS, And, Node, Or, Query, Term, parse_query

__all__ = ["Percolator"]

logger = logging.getLogger(__name__)

_WORD = 0  # one plain word: found when the paper has it
_CONJUNCTION = 1  # plain words joined by AND: one subset test
_DISJUNCTION = 2  # plain words with AND and OR: a few subset tests
_TREE = 3  # anything else: prefilter by required keys, then walk the tree
_ANY_WORD = 4  # plain words joined by OR: one disjointness test

# A disjunctive normal form larger than this is not worth it; such plans walk the tree.
_MAX_CONJUNCTIONS = 16


@dataclass(eq=False, slots=True)
class _Plan:
    root: Node
    kind: int
    # _WORD/_CONJUNCTION/_DISJUNCTION/_ANY_WORD: the word sets, one of which must be in the
    # paper, and all their words.
    conjunctions: tuple[frozenset[str], ...]
    words: frozenset[str]
    # _TREE: keys every match has.
    required: frozenset[str]
    anchors: frozenset[str] | None
    # subscription id -> insertion sequence, in insertion order
    subscribers: dict[str, int] = field(default_factory=dict)


def _dnf(node: Node) -> list[frozenset[str]] | None:
    """The query as OR of ANDs of plain words, or None if it is not only plain words."""
    if isinstance(node, Term):
        return [frozenset((node.term,))] if node.fields == DEFAULT_FIELDS else None
    if isinstance(node, Or):
        out: list[frozenset[str]] = []
        for child in node.children:
            part = _dnf(child)
            if part is None:
                return None
            out.extend(part)
            if len(out) > _MAX_CONJUNCTIONS:
                return None
        return _unique(out)
    if isinstance(node, And):
        product: list[frozenset[str]] = [frozenset()]
        for child in node.children:
            part = _dnf(child)
            if part is None or len(product) * len(part) > _MAX_CONJUNCTIONS:
                return None
            product = [left | right for left in product for right in part]
        return _unique(product)
    return None


def _unique(conjunctions: list[frozenset[str]]) -> list[frozenset[str]]:
    # Conjunctions that contain others are kept: they cannot change whether a paper matches,
    # but the tree walk reports their hits too ("diffusion OR (diffusion model)").
    return sorted(set(conjunctions), key=lambda c: (len(c), sorted(c)))


def _plan(query: Query) -> _Plan:
    root = query.root
    anchors = anchor_terms(root)
    dnf = _dnf(root)
    if dnf is None:
        return _Plan(root, _TREE, (), frozenset(), required_terms(root), anchors)
    words = frozenset().union(*dnf)
    if len(dnf) == 1 and len(dnf[0]) == 1:
        return _Plan(root, _WORD, tuple(dnf), words, frozenset(), words)
    if len(dnf) == 1:
        kind = _CONJUNCTION
    elif all(len(conjunction) == 1 for conjunction in dnf):
        kind = _ANY_WORD
        anchors = words
    else:
        kind = _DISJUNCTION
    return _Plan(root, kind, tuple(dnf), words, frozenset(), anchors)


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
            gc.enable()


class Percolator:
    """The subscriptions, indexed by anchor; ``match(papers)`` finds who gets what.

    Subscriptions whose query does not parse are skipped by the constructor and recorded in
    ``invalid`` (id -> QueryError); ``add`` raises the QueryError instead.
    """

    def __init__(self, subscriptions: Iterable[Subscription] = ()) -> None:
        self._subscriptions: dict[str, tuple[Subscription, _Plan]] = {}
        self._plans: dict[Node, _Plan] = {}
        # One plain word: at most one plan per word, since equal queries share a plan.
        self._words: dict[str, _Plan] = {}
        # AND of plain words, by its one anchor word.
        self._conjunctions: dict[str, dict[int, _Plan]] = {}
        # Other plans with one anchor key, and plans with several (ORs, compounds).
        self._single: dict[str, dict[int, _Plan]] = {}
        self._multi: dict[str, dict[int, _Plan]] = {}
        self._always: dict[int, _Plan] = {}
        self._sequence = 0
        self.invalid: dict[str, QueryError] = {}
        with _collector_paused():
            for subscription in subscriptions:
                try:
                    self.add(subscription)
                except QueryError as exc:
                    self.invalid[subscription.id] = exc
                    logger.warning("subscription %s skipped: %s", subscription.id, exc)

    def __len__(self) -> int:
        return len(self._subscriptions)

    def __contains__(self, subscription_id: object) -> bool:
        return subscription_id in self._subscriptions

    def add(self, subscription: Subscription) -> None:
        """Add or replace a subscription; raises QueryError if its query is malformed."""
        query = parse_query(subscription.query)
        self.remove(subscription.id)
        self.invalid.pop(subscription.id, None)
        plan = self._plans.get(query.root)
        if plan is None:
            plan = _plan(query)
            self._plans[query.root] = plan
            self._file(plan)
        self._sequence += 1
        plan.subscribers[subscription.id] = self._sequence
        self._subscriptions[subscription.id] = (subscription, plan)

    def remove(self, subscription_id: str) -> bool:
        """Forget a subscription; False if it was not there."""
        entry = self._subscriptions.pop(subscription_id, None)
        if entry is None:
            return False
        plan = entry[1]
        del plan.subscribers[subscription_id]
        if not plan.subscribers:
            del self._plans[plan.root]
            self._unfile(plan)
        return True

    def _buckets(self, plan: _Plan) -> list[dict[int, _Plan]]:
        if plan.anchors is None:
            return [self._always]
        if len(plan.anchors) > 1:
            index = self._multi
        elif plan.kind == _CONJUNCTION:
            index = self._conjunctions
        else:
            index = self._single
        return [index.setdefault(key, {}) for key in plan.anchors]

    def _file(self, plan: _Plan) -> None:
        if plan.kind == _WORD:
            self._words[next(iter(plan.conjunctions[0]))] = plan
            return
        for bucket in self._buckets(plan):
            bucket[id(plan)] = plan

    def _unfile(self, plan: _Plan) -> None:
        if plan.kind == _WORD:
            del self._words[next(iter(plan.conjunctions[0]))]
            return
        for bucket in self._buckets(plan):
            bucket.pop(id(plan), None)

    def match(self, papers: Iterable[Paper]) -> list[Match]:
        """Every (subscription, paper) match with its hits: papers in the given order, and for
        each paper the subscriptions in the order they were added."""
        out: list[Match] = []
        with _collector_paused():
            for paper in papers:
                out.extend(self.match_one(PaperIndex(paper)))
        return out

    def match_one(self, px: PaperIndex) -> list[Match]:
        """The matches for one analyzed paper."""
        terms = px.default_terms
        # Set intersections run in C and leave only the words this paper has.
        matched: list[_Plan] = [self._words[term] for term in self._words.keys() & terms]
        found = matched.append
        conjunctions = self._conjunctions
        for term in conjunctions.keys() & terms:
            for plan in conjunctions[term].values():
                if plan.conjunctions[0] <= terms:
                    found(plan)
        single = self._single
        multi = self._multi
        candidates: dict[int, _Plan] = {}
        for key in single.keys() & px.keys:
            candidates.update(single[key])
        for key in multi.keys() & px.keys:
            candidates.update(multi[key])
        candidates.update(self._always)
        keys = px.keys
        for plan in candidates.values():
            kind = plan.kind
            if kind == _ANY_WORD:
                # The anchor that found it may be an author's name; words search other fields.
                if not terms.isdisjoint(plan.words):
                    found(plan)
            elif kind == _TREE:
                if plan.required <= keys and matches(plan.root, px):
                    found(plan)
            elif any(conjunction <= terms for conjunction in plan.conjunctions):
                found(plan)
        if not matched:
            return []
        arxiv_id = px.paper.arxiv_id
        results: list[tuple[int, Match]] = []
        add = results.append
        for plan in matched:
            hits = _hits(plan, px)
            for subscription_id, sequence in plan.subscribers.items():
                add((sequence, new_match(subscription_id, arxiv_id, hits)))
        results.sort()  # sequences are unique, so Matches are never compared
        return [match for _, match in results]


def _hits(plan: _Plan, px: PaperIndex) -> tuple[Hit, ...]:
    kind = plan.kind
    if kind == _WORD:
        return px.term_hits(DEFAULT_FIELDS, next(iter(plan.conjunctions[0])))
    if kind == _TREE:
        return collect_hits(plan.root, px)
    # The words of every satisfied conjunction: what the tree walk reports for a query made
    # only of words, AND and OR.
    if kind == _CONJUNCTION:
        words: Iterable[str] = plan.conjunctions[0]
    else:
        terms = px.default_terms
        words = set()
        for conjunction in plan.conjunctions:
            if conjunction <= terms:
                words.update(conjunction)
    return merge_hits([px.term_pairs(DEFAULT_FIELDS, word) for word in words])
