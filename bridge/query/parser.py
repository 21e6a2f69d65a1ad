"""Parse a keyword query into an immutable AST, or say exactly what is wrong with it and where.

Syntax, with examples::

    generalization                 a word: title, abstract, AI summary or AI keywords contain it
                                   (any spelling or inflection: generalisation, generalize, ...)
    =generalization                an exact word: only as written, case and accents aside
    "=generalization bounds"       (never generalized, generalisation); also inside a phrase
    diffusion transformer          several words: all of them (implicit AND; AND may be written)
    "world model"                  a phrase: the words at consecutive positions
    out-of-distribution            a hyphenated word is a phrase of its parts or the joined word
    RL OR "reinforcement learning" either side (OR in capitals, or |)
    diffusion -survey              exclusion: papers that do not contain survey (also NOT survey)
    (LLM OR VLM) agents            parentheses group
    title:diffusion                a field: title:, abstract:, author:, cat:, source:
    title:(sampling OR solver)     a field applies to a whole group
    author:lecun                   a word of any author's name (names are folded, not stemmed)
    author:"Yann LeCun"            a name as a phrase; never spans two authors
    cat:cs.LG  cat:cs.*            an arXiv category, exact or by prefix (case-insensitive)
    cat:cs  cat:hep-th             an archive: the category itself or any subject class in it
    source:hf  source:arxiv        where the paper was listed
    upvotes>=10                    Hugging Face upvotes; also >, <=, <, =
    date:2024-08-01  date:2024-08  the listing day: a day, a month or a year (date:2024),
    date:2024-01..2024-06          a range of them (either end may be left out: date:2024..),
    date>=2025-01-01  date<2024    or a comparison with one (>=, >, <=, <, =)
    2407.21772  hep-th/9901001     an arXiv id (any version), or an arxiv.org abs/pdf or
    https://arxiv.org/abs/2407.21772  huggingface.co/papers URL, as the whole query: that paper

Unprefixed words search the title, the abstract, the AI summary and the AI keywords, not the
authors. ``abstract:`` means the abstract only. ``ti:``, ``abs:``, ``au:``, ``authors:`` and
``category:`` are accepted aliases. Lower-case ``or``/``and``/``not`` are ordinary words.
Curly quotes (as Slack and macOS type them) work like straight ones.

A query must look for something: ``-survey`` alone, or an OR branch made only of exclusions,
is an error rather than a subscription to almost everything. Queries are limited to
``MAX_QUERY_LENGTH`` characters, ``MAX_TERMS`` words and ``MAX_DEPTH`` nested parentheses.
Every problem raises ``QueryError(message, position, query)``; ``format_query_error`` shows the
query with a caret under the position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, TypeAlias

from bridge.errors import QueryError
from bridge.ids import paper_ids_of_query
from bridge.query.dates import DateSpecError, comparison_range, date_range
from bridge.query.exact import EXACT_MARK
from bridge.query.normalize import readings, word_groups

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
    "Phrase",
    "Query",
    "Source",
    "Term",
    "Upvotes",
    "format_query_error",
    "parse_query",
]

MAX_QUERY_LENGTH = 500
MAX_TERMS = 50
MAX_DEPTH = 10

DEFAULT_FIELDS: tuple[str, ...] = ("title", "abstract", "ai_summary", "ai_keywords")

# query prefix -> (paper fields searched, whether words are stemmed)
_TEXT_PREFIXES: dict[str, tuple[tuple[str, ...], bool]] = {
    "title": (("title",), True),
    "ti": (("title",), True),
    "abstract": (("abstract",), True),
    "abs": (("abstract",), True),
    "author": (("authors",), False),
    "authors": (("authors",), False),
    "au": (("authors",), False),
}
_VALUE_PREFIXES = {"cat": "cat", "category": "cat", "source": "source", "date": "date"}
# What each field's error message shows as an example of its use.
_FIELD_EXAMPLES = {
    "author": "author:lecun",
    "authors": "authors:lecun",
    "au": "au:lecun",
    "cat": "cat:cs.LG",
    "category": "category:cs.LG",
    "source": "source:hf",
    "date": "date:2024-08",
}
_KNOWN_FIELDS = "title, abstract, author, cat, source, date, upvotes"
_SOURCES = {"hf": "hf", "huggingface": "hf", "arxiv": "arxiv"}

Slots: TypeAlias = tuple[tuple[tuple[str, ...], ...], ...]


@dataclass(frozen=True, slots=True)
class Term:
    """One normalised word looked up in ``fields``."""

    term: str
    fields: tuple[str, ...] = DEFAULT_FIELDS
    text: str = field(default="", compare=False)
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Phrase:
    """Consecutive words. Each slot lists alternatives, each a run of terms.

    ``"large pre-trained models"`` has slots ``((("larg",),), (("pre", "train"), ("pretrain",)),
    (("model",),))``: the middle slot is either the two parts or the joined word.
    """

    slots: Slots
    fields: tuple[str, ...] = DEFAULT_FIELDS
    text: str = field(default="", compare=False)
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Category:
    """An arXiv category, lower-cased; ``prefix`` matches every category starting with it."""

    value: str
    prefix: bool = False
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Source:
    value: Literal["hf", "arxiv"]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Upvotes:
    op: Literal[">=", ">", "<=", "<", "="]
    value: int
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class PaperId:
    """One paper, named by its arXiv id or URL (the whole query): the stored ids it may have."""

    ids: tuple[str, ...]
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class ListedOn:
    """The paper's listing day is in ``[since, before)``; either end may be open (None).

    A paper without a listing day never meets it (``bridge.query.dates`` builds the range).
    """

    since: date | None
    before: date | None
    position: int = field(default=0, compare=False)


Node: TypeAlias = Term | Phrase | And | Or | Not | Category | Source | Upvotes | PaperId | ListedOn


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query. Equal queries (``generalisation`` and ``Generalization``) compare equal."""

    root: Node
    text: str = field(default="", compare=False)


# --- lexer ---------------------------------------------------------------------------------------

_OPEN_QUOTES = '"\u201c\u201e'
_CLOSE_QUOTES = '"\u201d\u201c'
_DELIMITERS = frozenset("()|") | frozenset(_OPEN_QUOTES) | frozenset(_CLOSE_QUOTES)
_IDENTIFIER = re.compile(r"[A-Za-z_]+")
_COMPARISON = re.compile(r"(?i)upvotes:?(>=|<=|>|<|=)")
_DATE_COMPARISON = re.compile(r"(?i)date(>=|<=|>|<|=)")
_DATE_OPERATOR = re.compile(r"(>=|<=|>|<|=)")
_CATEGORY = re.compile(r"(?P<base>[A-Za-z][A-Za-z0-9\-]*(?:\.[A-Za-z0-9\-]*)?)(?P<star>\*)?")

TokenKind = Literal["(", ")", "OR", "AND", "NOT", "FIELD", "WORD", "PHRASE", "CMP", "EOF"]


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: TokenKind
    value: str
    position: int


def _fail(message: str, position: int | None, query: str) -> QueryError:
    return QueryError(message, position, query)


def _lex(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    i = 0
    n = len(text)
    after_field = False
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
            continue
        if after_field and c == "-":
            raise _fail("to exclude a field, put the '-' first, e.g. -title:survey", i, text)
        if after_field and c not in "(" + _OPEN_QUOTES + _CLOSE_QUOTES:
            after_field = False
            start = i
            i = _word_end(text, i)
            tokens.append(_Tok("WORD", text[start:i], start))
            continue
        after_field = False
        if c in "()":
            tokens.append(_Tok(c, c, i))  # type: ignore[arg-type]
            i += 1
        elif c == "|":
            start = i
            while i < n and text[i] == "|":
                i += 1
            tokens.append(_Tok("OR", "|", start))
        elif c in _OPEN_QUOTES or c in _CLOSE_QUOTES:
            close = _find_close_quote(text, i + 1)
            if close < 0:
                raise _fail("unterminated quote: this phrase has no closing quote", i, text)
            tokens.append(_Tok("PHRASE", text[i + 1 : close], i))
            i = close + 1
        elif c == "-":
            if i + 1 >= n or text[i + 1].isspace() or text[i + 1] in ")|":
                raise _fail("'-' needs a term right after it, e.g. -survey", i, text)
            tokens.append(_Tok("NOT", "-", i))
            i += 1
        else:
            start = i
            i = _word_end(text, i)
            word = text[start:i]
            colon = _field_colon(word)
            if colon is not None:
                name = word[:colon].lower()
                after = start + colon + 1
                if name in _TEXT_PREFIXES or name in _VALUE_PREFIXES:
                    if after >= n or text[after].isspace() or text[after] in ")|":
                        raise _fail(
                            f"'{word[: colon + 1]}' needs a term right after the colon, "
                            f"e.g. {_FIELD_EXAMPLES.get(name, name + ':diffusion')}",
                            start,
                            text,
                        )
                    tokens.append(_Tok("FIELD", name, start))
                    after_field = True
                    i = after
                    continue
                if name == "upvotes":
                    tokens.append(_Tok("CMP", word, start))
                    continue
                if paper_ids_of_query(word) is not None:
                    raise _fail(
                        "a paper's URL (arxiv.org/abs/…, huggingface.co/papers/…) must be the "
                        "whole query: it finds that one paper",
                        start,
                        text,
                    )
                raise _fail(
                    f"unknown field '{word[: colon + 1]}' (known fields: {_KNOWN_FIELDS}; "
                    "put text with a colon in quotes)",
                    start,
                    text,
                )
            if _COMPARISON.match(word) or _DATE_COMPARISON.match(word):
                tokens.append(_Tok("CMP", word, start))
            elif word in ("OR", "AND", "NOT"):
                tokens.append(_Tok(word, word, start))  # type: ignore[arg-type]
            else:
                tokens.append(_Tok("WORD", word, start))
    if after_field:
        raise _fail("a field needs a term right after the colon", n, text)
    tokens.append(_Tok("EOF", "", n))
    return tokens


_WORD_RUN = re.compile(r"[^\s()|\"\u201c\u201d\u201e]*")


def _word_end(text: str, i: int) -> int:
    return _WORD_RUN.match(text, i).end()  # type: ignore[union-attr]


def _find_close_quote(text: str, i: int) -> int:
    for j in range(i, len(text)):
        if text[j] in _CLOSE_QUOTES:
            return j
    return -1


def _field_colon(word: str) -> int | None:
    """Index of the colon in ``name:rest`` when ``name`` looks like a field name."""
    colon = word.find(":")
    if colon <= 0 or not _IDENTIFIER.fullmatch(word[:colon]):
        return None
    if colon + 1 == len(word) and word[:colon].lower() not in (
        *_TEXT_PREFIXES,
        *_VALUE_PREFIXES,
    ):
        return None  # "Math:" followed by a space is punctuation, not a field
    return colon


# --- parser --------------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _lex(text)
        self.index = 0
        self.terms = 0

    def fail(self, message: str, position: int | None) -> QueryError:
        return QueryError(message, position, self.text)

    def peek(self) -> _Tok:
        return self.tokens[self.index]

    def take(self) -> _Tok:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse(self) -> Node:
        root = self.parse_or(0, None)
        token = self.peek()
        if token.kind == ")":
            raise self.fail("unbalanced parenthesis: ')' has no matching '('", token.position)
        return root

    def parse_or(self, depth: int, field: str | None) -> Node:
        start = self.peek().position
        branches = [self.parse_and(depth, field)]
        while self.peek().kind == "OR":
            operator = self.take()
            if self.peek().kind in ("EOF", ")", "OR"):
                raise self.fail("OR needs a term on both sides", operator.position)
            branches.append(self.parse_and(depth, field))
        if len(branches) == 1:
            return branches[0]
        children = _flatten(Or, branches)
        return children[0] if len(children) == 1 else Or(children, start)

    def parse_and(self, depth: int, field: str | None) -> Node:
        start = self.peek().position
        items: list[Node] = []
        while True:
            token = self.peek()
            if token.kind == "AND":
                self.take()
                if not items or self.peek().kind in ("EOF", ")", "OR", "AND"):
                    raise self.fail("AND needs a term on both sides", token.position)
                continue
            if token.kind in ("EOF", ")", "OR"):
                break
            items.append(self.parse_unary(depth, field))
        if not items:
            token = self.peek()
            if token.kind == "OR":
                raise self.fail("OR needs a term on both sides", token.position)
            if token.kind == ")":
                if depth == 0:
                    raise self.fail(
                        "unbalanced parenthesis: ')' has no matching '('", token.position
                    )
                raise self.fail("empty parentheses", token.position)
            raise self.fail("empty query", token.position if self.index else 0)
        if len(items) == 1:
            return items[0]
        children = _flatten(And, items)
        return children[0] if len(children) == 1 else And(children, start)

    def parse_unary(self, depth: int, field: str | None) -> Node:
        negations = 0
        first = self.peek().position
        while self.peek().kind == "NOT":
            token = self.take()
            negations += 1
            if self.peek().kind in ("EOF", ")", "OR", "AND", "NOT") and token.value == "NOT":
                raise self.fail("NOT needs a term after it", token.position)
        node = self.parse_primary(depth, field)
        return Not(node, first) if negations % 2 else node

    def parse_primary(self, depth: int, field: str | None) -> Node:
        token = self.take()
        if token.kind == "FIELD":
            value = self.peek()
            if value.kind not in ("(", "WORD", "PHRASE"):
                raise self.fail(
                    f"'{token.value}:' needs a term right after the colon", value.position
                )
            name = _VALUE_PREFIXES.get(token.value, token.value)
            return self.parse_primary(depth, name)
        if token.kind == "(":
            if depth + 1 > MAX_DEPTH:
                raise self.fail(
                    f"parentheses nested too deeply (at most {MAX_DEPTH} levels)", token.position
                )
            if self.peek().kind == "EOF":
                raise self.fail("unbalanced parenthesis: this '(' is never closed", token.position)
            node = self.parse_or(depth + 1, field)
            if self.peek().kind != ")":
                raise self.fail("unbalanced parenthesis: this '(' is never closed", token.position)
            self.take()
            return node
        if token.kind == "WORD":
            return self.word(token, field)
        if token.kind == "PHRASE":
            return self.phrase(token, field)
        if token.kind == "CMP":
            if token.value[:4].lower() == "date":
                m = _DATE_COMPARISON.match(token.value)
                assert m is not None  # the lexer made it a CMP for this
                return self.listing_date(token.value, token.position, m.end(), m.group(1))
            return self.upvotes(token)
        if token.kind == "EOF":
            raise self.fail("the query ends where a term was expected", token.position)
        if token.kind == ")":
            raise self.fail("expected a term before ')'", token.position)
        raise self.fail(f"expected a term, found {token.value}", token.position)

    def count(self, words: int, position: int) -> None:
        self.terms += words
        if self.terms > MAX_TERMS:
            raise self.fail(f"too many terms (at most {MAX_TERMS})", position)

    def word(self, token: _Tok, field: str | None) -> Node:
        if field == "cat":
            return self.category(token)
        if field == "date":
            # date:>=2024 reads like date>=2024.
            m = _DATE_OPERATOR.match(token.value)
            op, skip = (m.group(1), m.end()) if m else (None, 0)
            return self.listing_date(token.value, token.position, skip, op)
        if field == "source":
            source = _SOURCES.get(token.value.lower())
            if source is None:
                raise self.fail(
                    f"unknown source '{token.value}': use source:hf or source:arxiv",
                    token.position,
                )
            self.count(1, token.position)
            return Source(source, token.position)  # type: ignore[arg-type]
        return self.text_leaf(token, field, quoted=False)

    def phrase(self, token: _Tok, field: str | None) -> Node:
        if field in ("cat", "source", "date"):
            raise self.fail(f"{field}: takes a single value, not a phrase", token.position)
        return self.text_leaf(token, field, quoted=True)

    def text_leaf(self, token: _Tok, field: str | None, quoted: bool) -> Node:
        fields, stem = _TEXT_PREFIXES[field] if field else (DEFAULT_FIELDS, True)
        if stem and EXACT_MARK in token.value:
            return self.exact_leaf(token, fields, quoted)
        if token.value.isalnum():  # one plain word, the common case
            terms = readings(token.value, stem)
            if len(terms) == 1:
                self.count(1, token.position)
                return Term(terms[0], fields, token.value, token.position)
            if terms:  # gps: GPS or GPs, one word either way
                self.count(1, token.position)
                slot = tuple((term,) for term in terms)
                return Phrase((slot,), fields, token.value, token.position)
        groups = word_groups(token.value, stem)
        if not groups:
            if quoted:
                raise self.fail("empty phrase: nothing to search for in the quotes", token.position)
            hint = ""
            if token.value.strip("<>=") == "" and token.value:
                # "upvotes >= 10": the comparison was split from its field.
                hint = " (write a comparison without spaces, e.g. upvotes>=10)"
            raise self.fail(
                f"'{token.value}' has no letters or digits to search for{hint}", token.position
            )
        slots: list[tuple[tuple[str, ...], ...]] = []
        for group in groups:
            if group[0] == "word":
                terms = readings(token.value[group[2] : group[3]], stem)
                if not terms or terms[0] != group[1]:
                    terms = (group[1],)
                slots.append(tuple((term,) for term in terms))
            else:
                parts = tuple(part[0] for part in group[4])
                slots.append((parts, (group[1],)))
        self.count(len(slots), token.position)
        if len(slots) == 1 and len(slots[0]) == 1 and len(slots[0][0]) == 1:
            return Term(slots[0][0][0], fields, token.value, token.position)
        return Phrase(tuple(slots), fields, token.value, token.position)

    def exact_leaf(self, token: _Tok, fields: tuple[str, ...], quoted: bool) -> Node:
        """A word or phrase where some words are written ``=word``: those match only as
        written (folded, never stemmed; ``bridge.query.exact``), the others as usual."""
        value = token.value
        stemmed = word_groups(value, True)
        folded = word_groups(value, False)
        if not stemmed or len(stemmed) != len(folded):
            if quoted:
                raise self.fail("empty phrase: nothing to search for in the quotes", token.position)
            raise self.fail(
                f"'{value}' has no letters or digits to search for (write an exact word as"
                " =word, e.g. =generalization)",
                token.position,
            )
        slots: list[tuple[tuple[str, ...], ...]] = []
        for group, plain in zip(stemmed, folded, strict=True):
            start = group[2]
            exact = start > 0 and value[start - 1] == EXACT_MARK
            if group[0] == "word":
                if exact:
                    slots.append(((EXACT_MARK + plain[1],),))
                    continue
                terms = readings(value[start : group[3]], True)
                if not terms or terms[0] != group[1]:
                    terms = (group[1],)
                slots.append(tuple((term,) for term in terms))
            elif exact:
                parts = tuple(EXACT_MARK + part[0] for part in plain[4])
                slots.append((parts, (EXACT_MARK + plain[1],)))
            else:
                parts = tuple(part[0] for part in group[4])
                slots.append((parts, (group[1],)))
        self.count(len(slots), token.position)
        if len(slots) == 1 and len(slots[0]) == 1 and len(slots[0][0]) == 1:
            return Term(slots[0][0][0], fields, value, token.position)
        return Phrase(tuple(slots), fields, value, token.position)

    def category(self, token: _Tok) -> Node:
        m = _CATEGORY.fullmatch(token.value)
        if not m or (m["base"].endswith(".") and not m["star"]):
            raise self.fail(
                f"bad category '{token.value}': use an arXiv category like cs.LG "
                "or a prefix like cs.*",
                token.position,
            )
        self.count(1, token.position)
        base = m["base"].lower()
        if not m["star"] and "." not in base:
            # cat:cs is the whole archive: the category itself (hep-th, gr-qc have no
            # subject classes) or any of its subject classes (cs.LG, astro-ph.GA). Two existing
            # leaves, so the index and the percolator each look up one key per side.
            return Or(
                (Category(base, False, token.position), Category(base + ".", True, token.position)),
                token.position,
            )
        return Category(base, bool(m["star"]), token.position)

    def listing_date(self, text: str, position: int, skip: int, op: str | None) -> Node:
        """``date:<spec>`` or ``date<op><spec>``: ``spec`` starts ``skip`` characters in."""
        spec = text[skip:]
        try:
            since, before = comparison_range(op, spec) if op else date_range(spec)
        except DateSpecError as exc:
            raise self.fail(exc.message, position + skip + exc.offset) from None
        self.count(1, position)
        return ListedOn(since, before, position)

    def upvotes(self, token: _Tok) -> Node:
        m = _COMPARISON.match(token.value)
        if m is None:
            raise self.fail(
                "write upvotes>=N (or >, <=, <, =) with a whole number N", token.position
            )
        number = token.value[m.end() :]
        number_at = token.position + m.end()
        if not number.isascii() or not number.isdigit():
            shown = f"'{number}'" if number else "nothing"
            raise self.fail(
                f"bad number in {token.value[: m.end()]}: expected a whole number, found {shown}",
                number_at,
            )
        if len(number) > 9:
            raise self.fail(f"upvote count {number} is too large", number_at)
        self.count(1, token.position)
        return Upvotes(m.group(1), int(number), token.position)  # type: ignore[arg-type]


def _flatten(kind: type[And] | type[Or], items: list[Node]) -> tuple[Node, ...]:
    out: list[Node] = []
    for item in items:
        children = item.children if isinstance(item, kind) else (item,)
        for child in children:
            if child not in out:
                out.append(child)
    return tuple(out)


def _looks_for_something(node: Node) -> bool:
    """True when every paper the query matches must contain something positive."""
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(_looks_for_something(child) for child in node.children)
    if isinstance(node, Or):
        return all(_looks_for_something(child) for child in node.children)
    return True


def _first_exclusion(node: Node) -> Not | None:
    if isinstance(node, Not):
        return node
    if isinstance(node, And | Or):
        for child in node.children:
            found = _first_exclusion(child)
            if found is not None:
                return found
    return None


def _walk(node: Node) -> list[Node]:
    nodes = [node]
    for item in nodes:
        if isinstance(item, And | Or):
            nodes.extend(item.children)
        elif isinstance(item, Not):
            nodes.append(item.child)
    return nodes


def _check_positive(root: Node, text: str) -> None:
    for node in _walk(root):
        if isinstance(node, Or):
            for branch in node.children:
                if not _looks_for_something(branch):
                    exclusion = _first_exclusion(branch)
                    raise QueryError(
                        "each side of OR needs something to look for, not only exclusions",
                        exclusion.position if exclusion else node.position,
                        text,
                    )
    if not _looks_for_something(root):
        exclusion = _first_exclusion(root)
        raise QueryError(
            "a query needs something to look for: exclusions alone would match almost every "
            "paper; add a term, e.g. 'diffusion -survey'",
            exclusion.position if exclusion else 0,
            text,
        )


def parse_query(text: str) -> Query:
    """Parse ``text`` (see the module docstring); raise ``QueryError`` saying what and where."""
    if not isinstance(text, str):
        raise QueryError("a query must be text", None, repr(text))
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryError(
            f"query is too long ({len(text)} characters; at most {MAX_QUERY_LENGTH})",
            MAX_QUERY_LENGTH,
            text,
        )
    if not text.strip():
        raise QueryError("empty query", 0, text)
    ids = paper_ids_of_query(text)
    if ids is not None:
        # The whole query names one paper. Combined with words it would be a word search for
        # the id's digits, which no paper's text holds; so an id means a paper only alone.
        return Query(PaperId(ids, len(text) - len(text.lstrip())), text)
    root = _Parser(text).parse()
    _check_positive(root, text)
    return Query(root, text)


def format_query_error(exc: QueryError, width: int = 72) -> str:
    """The error message, then the query with a ^ under the position (for the CLI and chat).

    ::

        unknown field 'foo:' (known fields: ...) at position 1
          foo:bar
          ^
    """
    message = str(exc)
    query = exc.query
    if exc.position is None or not query:
        return message
    position = min(max(exc.position, 0), len(query))
    shown = "".join(" " if c in "\t\r\n" else c for c in query)
    left = 0
    if len(shown) > width:
        left = max(0, min(position - width // 2, len(shown) - width))
    window = shown[left : left + width]
    prefix = "…" if left > 0 else ""
    suffix = "…" if left + width < len(shown) else ""
    caret = " " * (len(prefix) + position - left) + "^"
    return f"{message}\n  {prefix}{window}{suffix}\n  {caret}"
