"""Find what a paper's text defines: acronyms ("out-of-distribution (OOD)") and open compounds.

Pure functions over text, no I/O; ``bridge.store.expansions`` counts what they find over the
archive and ``bridge.query.expansions`` uses the counts to widen queries.

Acronyms: the Schwartz–Hearst algorithm
    A. S. Schwartz and M. A. Hearst, "A simple algorithm for identifying abbreviation
    definitions in biomedical text", PSB 2003. A definition is written ``long form (SF)``:

    1. A short form candidate is the text in parentheses, up to its first ``;`` or ``,``, of
       one or two words and 2 to 10 characters, starting with a letter or digit. We also ask
       for at least two capital letters (``RL``, ``ViT``, ``LLMs``): a research acronym, not
       ``(see)`` or ``(i)``.
    2. The long form candidate is the same sentence's last ``min(len(SF) + 5, 2 * len(SF))``
       words before the parenthesis.
    3. Walking the short form's letters from the last to the first, each must be found in the
       long form further left than the previous one, and the first must start a word
       (``findBestLongForm``). The long form starts at the word where the first letter was
       found; the result is kept when it is longer than the short form and does not contain
       it as a word.

    Written here rather than taken from the ``abbreviations`` package (0.2.5, 2019, no release
    since): the algorithm is forty lines, the package would be a dependency for those, and
    here it runs on plain strings with no tokenizer model, fast enough to run on every paper
    stored (see bench/acronyms.py), with our own rules for what an acronym looks like.

Open compounds
    Research text writes some compounds both open and closed: "data set" and "dataset",
    "time step" and "timestep", "fine tune" and "finetune". ``compound_pairs`` lists a text's
    adjacent word pairs that could be the open form of a closed word (both alphabetic, at
    least three letters, neither a function word: "not able" is not "notable", "with out" is
    not "without"), ``closed_words`` the words that could be a closed form. Only pairs the
    archive also writes closed become expansions (``bridge.store.expansions``). Hyphenated
    compounds need none of this: the analyzer already joins them (``pre-trained`` ⇄
    ``pretrained``).

Keys
    ``short_key`` and ``long_key`` turn either form into the analyzer's terms
    (``bridge.query.normalize``), so "Large Language Models (LLMs)" and "large language
    model (LLM)" count as one definition, and a query finds the key of what it typed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from itertools import compress, count, islice, repeat
from operator import add

from bridge.query.normalize import normalize_word

__all__ = [
    "closed_words",
    "compound_pairs",
    "compound_words",
    "definitions",
    "joinable_pairs",
    "long_key",
    "short_key",
]

_MAX_SHORT = 10
# Sentences end at ". ", "? " or "! " followed by a capital or an opening bracket; a dot
# inside "e.g. the" or "Fig. 2" does not end one, which is what matters for a long form.
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+(?=[A-Z(\[])")
_WORD = re.compile(r"[^\W_]+")
_CAPITALS = re.compile(r"[A-Z]")


def definitions(text: str) -> Iterator[tuple[str, str]]:
    """(short form, long form) for each acronym ``text`` defines, as written."""
    if "(" not in text:
        return
    for sentence in _SENTENCE_END.split(text):
        start = sentence.find("(")
        while start >= 0:
            close = sentence.find(")", start + 1)
            if close < 0:
                break
            found = _definition(sentence[:start], sentence[start + 1 : close])
            if found is not None:
                yield found
            start = sentence.find("(", close + 1)


def _definition(before: str, inside: str) -> tuple[str, str] | None:
    short = re.split(r"[;,]", inside, maxsplit=1)[0].strip()
    if not _is_short_form(short):
        return None
    words = before.split()
    if not words:
        return None
    window = min(len(short) + 5, 2 * len(short))
    candidate = " ".join(words[-window:]).rstrip(" -:")
    long = _best_long_form(short, candidate)
    if long is None:
        return None
    long = long.strip(" \"'“”‘’")
    if len(long) <= len(short) or short.lower() in (w.lower() for w in long.split()):
        return None
    if len(long.split()) > window:
        return None
    return short, long


def _is_short_form(short: str) -> bool:
    if not 2 <= len(short) <= _MAX_SHORT or len(short.split()) > 2:
        return False
    if not short[0].isalnum():
        return False
    return len(_CAPITALS.findall(short)) >= 2


def _best_long_form(short: str, long: str) -> str | None:
    """Schwartz–Hearst's ``findBestLongForm``: where the long form starts, or None."""
    s = len(short) - 1
    i = len(long) - 1
    while s >= 0:
        letter = short[s].lower()
        if not letter.isalnum():
            s -= 1
            continue
        # The short form's first letter must start a word of the long form.
        while i >= 0 and (
            long[i].lower() != letter or (s == 0 and i > 0 and long[i - 1].isalnum())
        ):
            i -= 1
        if i < 0:
            return None
        i -= 1
        s -= 1
    start = long.rfind(" ", 0, i + 1) + 1
    return long[start:]


def short_key(short: str) -> str:
    """The term a short form is looked up by: ``LLMs`` → ``llm``, ``OOD`` → ``ood``."""
    return normalize_word(short)


def long_key(text: str) -> str:
    """The terms of a long form (or a query's words), space-separated: "Out-of-Distribution"
    and "out of distribution" both give ``out of distribution``'s terms."""
    return " ".join(normalize_word(word) for word in _WORD.findall(text))


# Words that join another into a different word ("not able", "with in", "any one", "may be"):
# never one half of an open compound.
_FUNCTION_WORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be been before being
    below between both but by can cannot could did do does down during each every few for from
    further had has have he her here hers him his how however if in into is it its may me might
    more most must my no nor not now of off on once one only or other our out over own same she
    should so some such than that the their them then there these they this those through to
    too under until up upon very was we were what when where which while who whom why will with
    within without would you your thing body how where ever what some any every
    """.split()
)
_PUNCTUATION = "\"'()[]{}.,;:!?\u2018\u2019\u201c\u201d"


def compound_words(text: str) -> tuple[set[tuple[str, str]], set[str]]:
    """A text's possible open compounds (adjacent word pairs, lower-cased: ("data", "set"))
    and possible closed ones (alphabetic words of at least six letters).

    Words are the text's whitespace-separated tokens, stripped of quotes, brackets and
    punctuation, which also separate two words ("data, set" is no pair). A token with
    anything else in it (a hyphen: "low-rank adaptation" is not "rank adaptation"; a digit;
    a symbol) is no word and separates too. This runs on every paper stored: ``str.split``
    and a loop over the ~200 tokens measured several times faster than regular expressions.
    """
    pairs: set[tuple[str, str]] = set()
    closed: set[str] = set()
    previous = ""
    for token in text.lower().split():
        if token.isalpha() and token.isascii():
            word = token
            before = after = False
        else:
            word = token.strip(_PUNCTUATION)
            if not (word.isalpha() and word.isascii()):
                previous = ""
                continue
            before = token[0] != word[0]
            after = token[-1] != word[-1]
        if len(word) >= 6:
            closed.add(word)
        if len(word) < 3 or word in _FUNCTION_WORDS:
            previous = ""
            continue
        if previous and not before:
            pairs.add((previous, word))
        previous = "" if after else word
    return pairs, closed


def joinable_pairs(text: str, joinable: Collection[str]) -> set[tuple[str, str]]:
    """The pairs of ``compound_words(text)[0]`` that join into a word of ``joinable`` (the
    whole-archive mining's second pass): each adjacent pair of tokens is joined and looked
    up by ``map`` in C, and only the few found are held to ``compound_words``' rules.

    A pair (a, b) is two adjacent tokens written ``[punctuation]a`` and ``b[punctuation]``:
    their concatenation stripped of punctuation is ``ab``. Any other two tokens give
    something with a character inside that is not a letter, which no word of ``joinable``
    (alphabetic words) is; ``tests/test_acronyms.py`` compares the two ways."""
    words = text.lower().split()
    if len(words) < 2:
        return set()
    joined = map(str.strip, map(add, words, islice(words, 1, None)), repeat(_PUNCTUATION))
    found: set[tuple[str, str]] = set()
    for i in compress(count(), map(joinable.__contains__, joined)):
        a = words[i].lstrip(_PUNCTUATION)
        b = words[i + 1].rstrip(_PUNCTUATION)
        if (
            len(a) >= 3
            and len(b) >= 3
            and a.isalpha()
            and a.isascii()
            and b.isalpha()
            and b.isascii()
            and a not in _FUNCTION_WORDS
            and b not in _FUNCTION_WORDS
        ):
            found.add((a, b))
    return found


def closed_word_set(text: str) -> set[str]:
    """``compound_words(text)[1]`` alone, in about a third of the time: whole-archive mining
    reads every paper once for these (``bridge.store.expansions``). Each distinct token is
    looked at once, and set comprehensions replace the loop that pairs need."""
    tokens = set(text.lower().split())
    plain = {t for t in tokens if len(t) >= 6 and t.isalpha() and t.isascii()}
    stripped = {t.strip(_PUNCTUATION) for t in tokens - plain if len(t) >= 6}
    return plain | {w for w in stripped if len(w) >= 6 and w.isalpha() and w.isascii()}


def compound_pairs(text: str) -> Iterator[tuple[str, str]]:
    """Adjacent word pairs that may be an open compound, lower-cased: ("data", "set")."""
    yield from sorted(compound_words(text)[0])


def closed_words(text: str) -> Iterator[str]:
    """Words that could be a closed compound (alphabetic, at least six letters), lower-cased."""
    yield from sorted(compound_words(text)[1])
