"""Why a query that parsed may have found nothing: habits from other search engines that mean
something else here. Shown with an empty result, never as errors (each is a valid query)."""

from __future__ import annotations

import re

_LOWER_OPERATOR = re.compile(r"(?<![\w\"])(or|and|not)(?![\w\"])")
_WILDCARD = re.compile(r"\w[*?]|[*?]\w")
_COMPARISON = re.compile(r"(?<![\w:])([A-Za-z_]+)\s*(>=|<=|>|<|=)\s*\d")
_ARXIV_ID = re.compile(r"(?<![\w.])[0-9]{4}\.[0-9]{4,5}(?:v[0-9]+)?(?![\w.])", re.ASCII)


def empty_result_hints(query: str) -> list[str]:
    """Short sentences on what in ``query`` may not mean what its writer meant."""
    hints: list[str] = []
    unquoted = re.sub(r'"[^"]*"', " ", query)
    operator = _LOWER_OPERATOR.search(unquoted)
    if operator:
        word = operator.group(1)
        hints.append(
            f"'{word}' in lower case is searched as a word; write {word.upper()} in capitals"
            " to use it as an operator"
        )
    if _WILDCARD.search(unquoted):
        hints.append(
            "'*' and '?' are not wildcards here: a word already finds its spellings and"
            " inflections (generalization finds generalisation, generalize, generalizable)"
        )
    for field, _op in _COMPARISON.findall(unquoted):
        if field.lower() not in ("upvotes", "date"):
            hints.append(f"only upvotes and date can be compared ('{field}' is searched as a word)")
            break
    if _ARXIV_ID.search(unquoted):
        # "2407.21772 agents": an id names its paper only as the whole query.
        hints.append(
            "an arXiv id finds its paper only as the whole query (search 2407.21772 alone);"
            " among other words it is searched as a word"
        )
    return hints
