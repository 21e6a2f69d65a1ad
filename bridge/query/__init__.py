"""The keyword engine: one meaning of a keyword for subscriptions, search and keyword feeds.

``normalize`` turns text into terms, ``parser`` turns a query into an AST, ``evaluate`` decides
whether a paper matches and where, ``percolator`` matches many subscriptions at once.
"""

from typing import TYPE_CHECKING, Any

from bridge.query.evaluate import (
    PaperIndex,
    anchor_terms,
    collect_hits,
    field_requirements,
    index_paper,
    match_paper,
    paper_terms,
    required_terms,
)
from bridge.query.normalize import Token, analyze, fold, normalize_word, terms_of
from bridge.query.parser import (
    DEFAULT_FIELDS,
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
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
    format_query_error,
    parse_query,
)

if TYPE_CHECKING:
    from bridge.query.percolator import Percolator


def __getattr__(name: str) -> Any:
    # PEP 562: the percolator (a tenth of `paperbridge search`'s imports) is loaded where
    # subscriptions are matched, not by every command that parses a query (issue 14).
    if name == "Percolator":
        from bridge.query.percolator import Percolator

        return Percolator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_FIELDS",
    "MAX_DEPTH",
    "MAX_QUERY_LENGTH",
    "MAX_TERMS",
    "And",
    "Category",
    "ListedOn",
    "Node",
    "Not",
    "Or",
    "PaperId",
    "PaperIndex",
    "Percolator",
    "Phrase",
    "Query",
    "Source",
    "Term",
    "Token",
    "Upvotes",
    "analyze",
    "anchor_terms",
    "collect_hits",
    "field_requirements",
    "fold",
    "format_query_error",
    "index_paper",
    "match_paper",
    "normalize_word",
    "paper_terms",
    "parse_query",
    "required_terms",
    "terms_of",
]
