"""Exact words: ``=generalization`` finds the word only as written (case and accents folded),
never another inflection, spelling or derivation ("Generalized", "generalisation").

An exact word is a term of its own, ``EXACT_MARK`` followed by the word's folded, unstemmed
form (what ``normalize_word(word, stem=False)`` gives, as for author names): ``=generalization``.
No analyzer term starts with ``=``, so these keys never meet ordinary terms.

A paper's exact terms are not analyzed up front: that would be a second full analysis of
every text (about a fifth of the percolator's time budget). Instead, a paper index derives
them only for the exact words someone asks for (``derive``): every occurrence of a word whose
folded form is ``w`` has a stemmed term among ``candidate_terms(w)`` at the same place, so
the occurrences of those terms are looked up and each one's own spelling is folded and
compared. The search index stores them differently (``bridge.store.search_index``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from bridge.query.normalize import normalize_word, scan

__all__ = [
    "EXACT_MARK",
    "by_candidate",
    "candidate_terms",
    "clear_caches",
    "derive",
    "exact_form",
    "is_exact",
]

EXACT_MARK = "="


def is_exact(term: str) -> bool:
    return term[:1] == EXACT_MARK


@lru_cache(maxsize=1 << 14)
def candidate_terms(key: str) -> frozenset[str]:
    """The stemmed terms an occurrence of the exact word ``key`` (``=w``) can have.

    A word folding to ``w`` is stemmed as ``w`` itself (words left alone: short, with digits,
    C++, Greek letters), as ``normalize_word(w)``, or, written as an acronym plural in
    capitals (GPs, LLMs), as ``normalize_word`` of ``w`` without its final s.
    """
    word = key[len(EXACT_MARK) :]
    found = {word, normalize_word(word, True)}
    if word.endswith("s") and len(word) > 1:
        found.add(normalize_word(word[:-1], True))
    found.discard("")
    return frozenset(found)


@lru_cache(maxsize=1 << 16)
def exact_form(surface: str, span: int) -> str:
    """The folded, unstemmed term of one occurrence: ``surface`` is its text in the paper, and
    ``span`` the positions it covers (more than one for a compound's joined form, whose
    hyphens go: "Pre-Trained" -> "pretrained")."""
    for term, position, _start, _end, width in scan(surface, False):
        if position == 0 and width == span:
            return term
    return ""


Postings = dict[str, list[Any]]


def by_candidate(keys: frozenset[str]) -> dict[str, tuple[str, ...]]:
    """Candidate term -> the exact words (of ``keys``) it may stand for, so a field costs one
    set intersection with its terms, in C, however many exact words are subscribed. Worked
    out once per set of keys: a percolator keeps its own (``derive``'s ``candidates``)."""
    found: dict[str, list[str]] = {}
    for key in sorted(keys):
        for term in candidate_terms(key):
            found.setdefault(term, []).append(key)
    return {term: tuple(words) for term, words in found.items()}


_by_candidate = lru_cache(maxsize=64)(by_candidate)


def clear_caches() -> None:
    """Forget the exact forms and candidates worked out so far, as after a start (benchmarks)."""
    candidate_terms.cache_clear()
    exact_form.cache_clear()
    _by_candidate.cache_clear()


def derive(
    postings: Postings,
    text: str,
    keys: frozenset[str],
    candidates: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """Add to one field's ``postings`` the occurrences of each exact word in ``keys`` (``=w``),
    found among the occurrences of its candidate terms. ``text`` is the field's text (for a
    list, the items joined as the postings' offsets are); ``candidates``, if given, is
    ``by_candidate(keys)``."""
    if candidates is None:
        candidates = _by_candidate(keys)
    present = candidates.keys() & postings.keys()
    if not present:
        return
    found: dict[str, list[Any]] = {}
    for term in present:
        for posting in postings[term]:
            _position, start, end, span = posting
            form = EXACT_MARK + exact_form(text[start:end], span)
            if form in keys:
                found.setdefault(form, []).append(posting)
    for key, occurrences in found.items():
        occurrences.sort()
        postings[key] = occurrences
