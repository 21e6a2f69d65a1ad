"""The store's search index: our analyzer's terms, kept by SQLite FTS5 or a PostgreSQL tsvector.

Neither database's stemmer is used. ``index_doc(paper)`` runs ``bridge.query.normalize`` over
every searchable field. The database then only keeps an inverted index of those terms, so
SQLite and PostgreSQL find the same papers, and they find what the percolator finds.

Index text
    Every term is written as one ASCII token. ``a``-``z`` and ``0``-``9`` stand for themselves;
    any other character becomes ``_<hex code>_`` (``qwen2.5`` → ``qwen2_2e_5``,
    ``c++`` → ``c_2b__2b_``). FTS5 tokenizes this with
    ``unicode61 remove_diacritics 0 tokenchars '_'`` and keeps each token whole.

    Each field's terms are listed in position order, so FTS5 positions are our analyzer's
    positions and phrase queries work. Hyphenated compounds give their parts in place.
    Their joined forms (``pretrain`` for ``pre-trained``) are added after the text, with a
    separator token ``_`` before each one. List items (authors, AI keywords) are also
    separated by ``_``. No query ever contains ``_``, so a phrase never runs across two
    authors or two keywords, or into the joined forms.

    | column              | holds                                                     |
    |---------------------|-----------------------------------------------------------|
    | title, abstract,    | stemmed terms                                             |
    | ai_summary,         |                                                           |
    | ai_keywords         |                                                           |
    | authors             | folded, unstemmed terms                                   |
    | (text columns)      | then ``_``, exact tokens ``_3d_<word>`` and markers      |
    |                     | ``_21_<term>`` (sorted, once each; see "Exact words")     |
    | meta                | the keys ``cat:<category>``, ``catp:<archive>.`` and      |
    |                     | ``source:<name>``, encoded the same way, then the title's |
    |                     | tokens again, prefixed ``_ti_`` (a title-only doclist for |
    |                     | ranking)                                                  |

    The FTS5 table ``paper_fts`` is contentless, with ``rowid = papers.seq``.
    ``search_votes`` holds the upvotes of papers that have any, keyed by seq, for ranking.

    On PostgreSQL the same tokens fill ``paper_search.doc``, a tsvector with a GIN index.
    Title, abstract, AI summary and AI keywords are given weights A, B, C and D. Author tokens
    carry the prefix ``_au_``, which no encoded term can start with. Separators become
    position gaps, and each field starts after a gap. The title's tokens are there twice: as
    themselves and, at the same positions, with the ``TITLE_COPY`` prefix, so a title-only
    word or phrase is an exact GIN lookup (``_title_positions``).

Compounds
    A query word can match the joined form of a compound in a paper: ``"large pretrained
    models"`` finds "large pre-trained models". The paper's positions hold the parts there,
    not the joined form. For this, every compound seen is recorded in ``search_compounds``
    (joined term → parts), and a phrase query also tries each known split of its words.
    That expansion is a superset (the parts could also appear as separate words), so it only
    makes a paper a candidate (see ``compile_query``).

Exact words
    ``=generalization`` (``bridge.query.exact``) must find the word only as written. For each
    word whose folded, unstemmed form ``u`` differs from its term ``t`` ("Generalized": term
    ``generaliz``, form ``generalized``), a text column also gets, after the text and once
    each, the exact token ``_3d_u`` ("=" encoded) and the variant marker ``_21_t`` ("!"
    encoded: the term is also written otherwise here). A word that is its own term ("model")
    adds nothing, unless the column also has a variant of it ("models"), when it adds
    ``_3d_model``. Then ``=w`` is in a column exactly when the column has ``_3d_w``, or has
    the term ``w`` without the marker ``_21_w`` (every occurrence is ``w`` itself): one
    exact index expression, so ``=model`` is as quick as ``model``. No position is needed
    for these tokens (a phrase with exact words finds the papers with all its words in its
    fields, and ``match_paper`` checks the phrase). The extra tokens are one or two per
    distinct inflected word of a column, not one per word. Verifying candidates with the
    analyzer instead would check most papers with ``model`` to find those with "model",
    far past a search's budget at 1M papers.

Queries
    ``compile_query`` turns a parsed query into two index expressions. ``loose`` is met by
    every paper that matches (a superset). ``strict`` is met only by papers that match (a
    subset). Words, phrases, fields, categories, sources, AND, OR and exclusions compile
    exactly, so the two are equal for nearly every query. They differ only where a phrase uses
    a known compound split, or where ``upvotes`` or ``date`` sits below the top level. A
    top-level ``upvotes`` condition becomes a SQL condition on ``papers.upvotes`` (on SQLite,
    when it is the only kind of condition, on ``search_votes.upvotes``), a top-level
    ``date`` condition (or its exclusion) one on ``papers.listed_on`` (``ix_papers_listed_on``
    indexes it), and a query naming one paper (``2407.21772``) one on ``papers.arxiv_id``. Search
    (``bridge.search``) treats loose-but-not-strict candidates as uncertain and checks them
    with ``match_paper``. On SQLite a top-level ``date`` range also bounds the seqs searched
    to those of its listing days (``SearchIndex.seq_range``), so reading a word's matches
    newest first starts at the range, not at the newest paper.

Keeping it current
    ``Store.add_papers`` writes index rows in the same transaction as the papers. A changed
    paper's old row is deleted by recomputing its old text (FTS5 contentless delete), then the
    new row is inserted. The index records ``fingerprint()``: a hash of the index format and
    of the analyzer's output on a probe text. When it differs from the stored one
    (the analyzer changed), ``Store.migrate`` rebuilds the index. Run every process sharing
    a database on the same version.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
import time
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache, lru_cache
from itertools import chain, product
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from bridge.models import Paper
from bridge.query.exact import EXACT_MARK, is_exact
from bridge.query.normalize import scan
from bridge.query.parser import (
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
)
from bridge.store.liveness import SEARCH_SESSION, SEARCH_SETTING_NAMES

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

log = logging.getLogger(__name__)

__all__ = [
    "COLUMNS",
    "Compiled",
    "IndexDoc",
    "SearchIndex",
    "compile_query",
    "encode",
    "fingerprint",
    "index_doc",
    "search_settings",
]

# Bump when the index text changes in a way the probe below would not notice.
# 4: tsvectors kept in their rows on PostgreSQL (PG_FORMAT 3 moved them out again).
# 5: exact-word tokens (EXACT_PREFIX); 6: and variant markers (VARIANT_PREFIX).
INDEX_FORMAT = "6"
# The tsvector's own format on PostgreSQL (SQLite stores need no rebuild when it changes).
# 2: title copies (``_add_title_copies``); 3: docs out of their rows (``_keep_docs_apart``);
# 4: upvote steps (VOTE_PREFIX).
PG_FORMAT = "4"

COLUMNS = ("title", "abstract", "ai_summary", "ai_keywords", "authors", "meta")
TEXT_COLUMNS = ("title", "abstract", "ai_summary", "ai_keywords")
SEPARATOR = "_"
# Title tokens are listed a second time in ``meta`` with this prefix (no encoded term starts
# with it: "t" is not a hex digit). "Does the title have this word" then walks a doclist of
# titles only, instead of every paper with the word anywhere: ranking asks it for a whole
# block of matches, and for two fairly rare words the difference is about a millisecond.
TITLE_COPY = "_ti_"
# An exact word (``=generalization``, bridge.query.exact) is the token of its term, "=" + the
# folded unstemmed form, encoded: "=" is "_3d_", which no encoded term starts with (no
# analyzer term contains "="). Stored after the text where it differs from the stemmed term
# ("Generalized" adds _3d_generalized), or where a word that is its own term shares its column
# with another form of it ("model" beside "models"); see "Exact words".
EXACT_PREFIX = "_3d_"
# A term also written in another form in the same column ("models" for model) is marked
# "!" + term, encoded ("_21_model"); see "Exact words".
VARIANT_PREFIX = "_21_"
# PostgreSQL: each doc also holds the lexeme of its seq's bucket, "_sq_" + seq // SEQ_BUCKET
# (no encoded term starts with "_s": "s" is not a hex digit). See ``SearchIndex.window``.
SEQ_BUCKET_PREFIX = "_sq_"
SEQ_BUCKET = 4096
# PostgreSQL: a doc with upvotes also holds "_sq_v" + n for every step n of VOTE_STEPS its
# votes reach (12 votes: _sq_v1 _sq_v2 _sq_v3 _sq_v5 _sq_v10), so ``upvotes>=5 model`` is one
# GIN lookup of ``model & _sq_v5`` (``_votes_in_doc``). Under the bucket prefix:
# "v" sorts after every bucket's digits, so a row's bucket and steps go in one place
# (``pg_copy_row``). A paper's doc is written again when its votes cross a step
# (``set_votes``): a few times in its life, where HF's votes change daily.
VOTE_PREFIX = SEQ_BUCKET_PREFIX + "v"
VOTE_STEPS = (1, 2, 3, 5, 10, 20, 30, 50, 100, 200, 300, 500, 1000)
# The window's spans of buckets, newest first, as (first, last) buckets below the newest; the
# rest of the store is the last span. Up to 128 buckets (524,288 papers): a query whose
# matches are sparse (``upvotes>=5 auditing``: one paper in 5,000) read every match of its word
# below 32 buckets and every voted paper there (at 1,000,000 papers 16,000 rows and 130,000,
# 160 ms at load 9), where spans of 32 and 64 buckets read as far as the window needs
# (43-50 ms); a span costs GIN about what its matches cost (``window``), not its size.
SEQ_SPANS = ((0, 0), (1, 1), (2, 3), (4, 7), (8, 15), (16, 31), (32, 63), (64, 127))
# A window's title tests go through the GIN index when its rows lie in fewer buckets than this
# (without statistics; with them, ``SearchIndex._flag_buckets``), and never over more than
# MAX_FLAG_BUCKETS.
FLAG_BUCKETS = 32
MAX_FLAG_BUCKETS = 256
# What reading one candidate row of a GIN lookup costs, as a share of testing one doc (a fetch
# from TOAST and a decompression): 1.7 against 13.5 µs at 200,000 papers on a loaded machine.
GIN_ROW_COST = 0.125
# Where ``window`` puts a span's seq range in an upvote condition (``_select``).
VOTES_SPAN = "/*votes span*/"
FTS_TABLE = "paper_fts"
PG_TABLE = "paper_search"
PG_INDEX = f"ix_{PG_TABLE}_doc"
# FTS5 reads the query with the same tokenizer, so quoted tokens stay whole.
FTS_TOKENIZE = "unicode61 remove_diacritics 0 tokenchars '_'"
_PG_WEIGHTS = {"title": "A", "abstract": "B", "ai_summary": "C", "ai_keywords": "D"}
_PG_AUTHOR = "_au_"
_PG_MAX_POSITION = 16383  # PostgreSQL clamps larger positions to this
_PG_MAX_POSITIONS_PER_LEXEME = 256  # and keeps at most this many per lexeme
# PostgreSQL refuses a tsvector with a lexeme of 2,048 bytes or more, or of more than 1 MB
# (lexemes plus 2 bytes a position and about 4 a lexeme). Longer words (a gene sequence, a
# run of garbage) are left out of the index there, as PostgreSQL's own to_tsvector leaves
# them out; a paper whose text would pass 1 MB keeps its first megabyte of lexemes indexed.
_PG_MAX_LEXEME = 2047
_PG_MAX_TSVECTOR = 1_000_000
# search_compounds.joined is VARCHAR(255); a longer compound is not recorded on either store.
_MAX_COMPOUND = 255

# A phrase with more alternative token sequences than this is looked up by its words alone.
MAX_PHRASE_VARIANTS = 32

# The index's own tables (search_compounds, search_votes, search_index_state) are defined in
# bridge/store/schema.py, imported where they are written: this module's query planning and
# reads import no SQLAlchemy, for `paperbridge search` on SQLite (bridge/sqlite_read.py).
_TABLES = ("search_compounds", "search_votes", "search_index_state")


def __getattr__(name: str) -> Any:
    # PEP 562: the tables stay reachable here, as before they moved to the schema.
    if name in _TABLES:
        from bridge.store import schema

        return getattr(schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- index text ----------------------------------------------------------------------------------

_PLAIN = re.compile(r"[a-z0-9]+")
_OTHER = re.compile(r"[^a-z0-9]")


@lru_cache(maxsize=1 << 18)
def encode(term: str) -> str:
    """One term as one FTS5/tsvector token: 'qwen2.5' -> 'qwen2_2e_5' (see the docstring)."""
    if _PLAIN.fullmatch(term):
        return term
    return _OTHER.sub(lambda m: f"_{ord(m.group()):x}_", term)


Compound: TypeAlias = tuple[str, str]  # (encoded joined term, encoded parts joined by spaces)
# A doc's tsvector in PostgreSQL's binary form, without its seq's bucket lexeme: (its number of
# lexemes, its entries that sort before the bucket lexeme, the entries after); ``to_tsvector``.
PgDoc: TypeAlias = tuple[int, bytes, bytes]


@dataclass(frozen=True, slots=True)
class IndexDoc:
    """One paper's index text: a string of tokens per column, and the compounds it contains.

    Plain strings and tuples, so a parsing process can build docs and send them cheaply.
    """

    columns: tuple[str, str, str, str, str, str]
    compounds: tuple[Compound, ...] = field(default=())
    # The PostgreSQL tsvector in binary form (``to_tsvector``), when worked out ahead (an
    # import's parsing processes do it for a PostgreSQL store); None: worked out when stored.
    tsvector: PgDoc | None = None


_Extras = tuple[tuple[str, ...], tuple[Compound, ...]]


class _Chunks(dict[str, str]):
    """What each whitespace-separated chunk of text contributes to a column: its tokens in
    position order, space-separated ("" for none). A chunk with hyphenated compounds also has
    an entry in ``extras``: its joined forms and its compounds.

    Words repeat across papers, so each distinct chunk is analyzed once: looking up one not
    seen before analyzes it (``__missing__``), and lookups of known chunks stay in C.
    """

    def __init__(self, stem: bool) -> None:
        super().__init__()
        self.stem = stem
        self.extras: dict[str, _Extras] = {}
        # chunk -> its exact-word tokens and variant markers (see "Exact words"), and the
        # terms it marks as variants, for chunks that have any
        self.exact: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {}
        # chunk -> its terms written as themselves (joined ones too), space-separated: the
        # tokens' own string where that is all of them (stemming only)
        self.selfs: dict[str, str] = {}

    def __missing__(self, chunk: str) -> str:
        compounds: set[Compound] = set()
        pairs: list[str] = []
        selfs: list[str] = []
        main, joined = _analyzed((chunk,), self.stem, compounds, pairs, selfs)
        tokens = " ".join(main)
        # Before the tokens: whoever finds the chunk's tokens cached finds these too.
        if joined:
            self.extras[chunk] = (tuple(joined), tuple(sorted(compounds)))
        if pairs:
            width = len(VARIANT_PREFIX)
            self.exact[chunk] = (tuple(pairs), tuple({marker[width:] for marker in pairs[1::2]}))
        if self.stem:
            self.selfs[chunk] = " ".join(selfs) if pairs or joined else tokens
        self[chunk] = tokens
        return tokens


# Replaced, never cleared, when large: a thread still using the old one sees it consistent.
_CHUNKS = {True: _Chunks(True), False: _Chunks(False)}
_CHUNK_CACHE_LIMIT = 300_000


def _chunk_cache(stem: bool) -> _Chunks:
    cache = _CHUNKS[stem]
    if len(cache) >= _CHUNK_CACHE_LIMIT:
        cache = _CHUNKS[stem] = _Chunks(stem)
    return cache


def _stream(
    texts: Iterable[str], stem: bool, compounds: set[Compound], exact: set[str] | None = None
) -> tuple[list[str], list[str]]:
    """Tokens in position order (list items separated) and joined compound forms; the
    exact-word tokens and variant markers go into ``exact`` (``_exact_tokens``' set).

    The analyzer's tokens never contain whitespace, and it treats each run its tokenizer finds
    on its own, so a text's tokens are its whitespace-separated chunks' tokens in order (as
    in ``bridge.search._postings``). Splitting and the cache lookups run in C; only a chunk
    not seen before is analyzed in Python.

    ``_exact_tokens`` adds ``=t`` for a marked term ``t`` that occurs more often than it is
    marked: each occurrence of ``t`` is one of its marked variants or ``t`` written as
    itself, so that is when some chunk writes ``t`` as itself (``_Chunks.selfs``), a set
    look-up instead of counting.
    """
    main: list[str] = []
    joined: list[str] = []
    cache = _chunk_cache(stem)
    tokens_of = cache.__getitem__
    extras_of = cache.extras.get
    exact_of = cache.exact.get
    marked: set[str] = set()
    every_chunk: list[list[str]] = []
    first = True
    for text in texts:
        if not first:
            main.append(SEPARATOR)
        first = False
        chunks = text.split()
        main += filter(None, map(tokens_of, chunks))
        for extra_joined, extra_compounds in filter(None, map(extras_of, chunks)):
            joined += extra_joined
            compounds.update(extra_compounds)
        if exact is not None:
            every_chunk.append(chunks)
            found = list(filter(None, map(exact_of, chunks)))
            if found:
                exact.update(chain.from_iterable(map(itemgetter(0), found)))
                marked.update(chain.from_iterable(map(itemgetter(1), found)))
    if marked and exact is not None:
        written = " ".join(map(cache.selfs.__getitem__, chain.from_iterable(every_chunk)))
        exact.update(EXACT_PREFIX + term for term in marked.intersection(written.split()))
    return main, joined


def _stream_reference(
    texts: Iterable[str], stem: bool, compounds: set[Compound], exact: set[str] | None = None
) -> tuple[list[str], list[str]]:
    """``_stream`` straight from ``scan`` over whole texts: the definition (tests compare the
    two)."""
    pairs: list[str] | None = [] if exact is not None else None
    main, joined = _analyzed(texts, stem, compounds, pairs)
    if exact is not None and pairs:
        exact.update(_exact_tokens(" ".join(main), joined, pairs))
    return main, joined


def _analyzed(
    texts: Iterable[str],
    stem: bool,
    compounds: set[Compound],
    exact: list[str] | None = None,
    selfs: list[str] | None = None,
) -> tuple[list[str], list[str]]:
    """Tokens and joined forms as ``_stream_reference`` gives them; ``exact`` gets each
    word's exact token and variant marker, a pair per word not written as its term, and
    ``selfs`` the terms written as themselves. How ``_stream`` analyzes a chunk it has not
    seen."""
    main: list[str] = []
    joined: list[str] = []
    first = True
    for text in texts:
        if not first:
            main.append(SEPARATOR)
        first = False
        tokens = scan(text, stem) if text else []
        if stem and exact is not None and tokens:
            # The folded, unstemmed form of each token, where it is not the term itself
            # (scan with and without stemming finds the same tokens in the same order).
            for token, plain in zip(tokens, scan(text, False), strict=True):
                if plain[0] != token[0]:
                    exact.append(EXACT_PREFIX + encode(plain[0]))
                    exact.append(VARIANT_PREFIX + encode(token[0]))
                elif selfs is not None:
                    selfs.append(encode(token[0]))
        for i, (term, _position, _start, _end, span) in enumerate(tokens):
            if span == 1:
                main.append(encode(term))
            else:
                whole = encode(term)
                joined.append(whole)
                parts = " ".join(encode(t[0]) for t in tokens[i + 1 : i + 1 + span])
                compounds.add((whole, parts))
    return main, joined


def _exact_tokens(text: str, joined: list[str], exact: list[str]) -> set[str]:
    """A column's exact tokens and variant markers, once each, plus ``_3d_t`` for a term ``t``
    written both as itself and otherwise (see "Exact words"): ``t`` occurs more often among
    the column's terms (``text``, its tokens space-separated, and ``joined``) than it has
    variant markers."""
    extra = set(exact)
    # ``exact`` holds a pair per word, its exact token then its variant marker
    # (``_stream_reference``): the markers are every second entry, sliced in C.
    markers = Counter(exact[1::2])
    if markers:
        width = len(VARIANT_PREFIX)
        terms = {marker[width:] for marker in markers}
        # Only the marked terms are counted: the few among the column's ~100 tokens.
        counts = Counter(filter(terms.__contains__, text.split()))
        counts.update(filter(terms.__contains__, joined))
        for marker, variants in markers.items():
            term = marker[width:]
            if counts[term] > variants:
                extra.add(EXACT_PREFIX + term)
    return extra


def _column(main: list[str], joined: list[str], extra: set[str] | None = None) -> str:
    head = " ".join(main)
    tail: list[str] = []
    for whole in joined:
        tail.append(SEPARATOR)
        tail.append(whole)
    if extra:
        # Once each, in a fixed order (a contentless FTS5 row is deleted by repeating its text).
        tail.append(SEPARATOR)
        tail += sorted(extra)
    if not tail:
        return head
    # " ".join(main + tail), without joining ``main`` twice.
    return f"{head} {' '.join(tail)}" if main else " ".join(tail)


def meta_keys(paper: Paper) -> list[str]:
    """The paper's category and source keys, as ``PaperIndex.keys`` has them."""
    categories = list(paper.categories)
    if paper.primary_category and paper.primary_category not in categories:
        categories.append(paper.primary_category)
    keys: set[str] = set()
    for category in categories:
        lowered = category.lower()
        keys.add("cat:" + lowered)
        dot = lowered.find(".")
        if dot > 0:
            keys.add("catp:" + lowered[: dot + 1])
    keys.add("source:" + paper.source)
    keys.update("source:" + s for s in paper.sources)
    return sorted(keys)


def index_doc(
    paper: Paper, *, _stream: Callable[..., tuple[list[str], list[str]]] = _stream
) -> IndexDoc:
    """The index text of ``paper``; the same paper always gives the same doc."""
    compounds: set[Compound] = set()
    columns: list[str] = []
    for text in (paper.title or "", paper.abstract or "", paper.ai_summary or ""):
        exact: set[str] = set()
        columns.append(_column(*_stream((text,), True, compounds, exact), exact))
    exact = set()
    columns.append(_column(*_stream(paper.ai_keywords, True, compounds, exact), exact))
    columns.append(_column(*_stream(paper.authors, False, compounds)))
    meta = [encode(key) for key in meta_keys(paper)]
    # The title again, each token prefixed: a title-only doclist for ranking (see TITLE_COPY).
    # (Variant markers are left out: only whole exact words are asked of the title alone.)
    meta += [
        t if t == SEPARATOR else TITLE_COPY + t
        for t in columns[0].split()
        if not t.startswith(VARIANT_PREFIX)
    ]
    columns.append(" ".join(meta))
    return IndexDoc(tuple(columns), tuple(sorted(compounds)))  # type: ignore[arg-type]


def index_doc_reference(paper: Paper) -> IndexDoc:
    """``index_doc`` computed the slow, obvious way (tests compare the two)."""
    return index_doc(paper, _stream=_stream_reference)


# Fields whose change changes the index text.
INDEXED_FIELDS = (
    "title",
    "abstract",
    "ai_summary",
    "ai_keywords",
    "authors",
    "categories",
    "primary_category",
    "source",
    "sources",
)


def indexed_fields_differ(old: Paper, new: Paper) -> bool:
    return any(getattr(old, name) != getattr(new, name) for name in INDEXED_FIELDS)


_PROBE = Paper(
    arxiv_id="0000.00000",
    title="Generalisation of Pre-Trained LLMs: out-of-distribution behaviour, C++ and Qwen2.5",
    abstract=(
        "We analyse modelling, labelled datasets, matrices and criteria; studies studied "
        "optimised tokenisers whilst centred colour dialogue; $\\alpha$-divergence, GPT-4o, "
        "naïve Schrödinger ﬁt, don't LLM's GPUs learnt running coded hoping agreed "
        "self_supervised 3.5 F# data-set state-of-the-art aetiology sulphates biassed analyses"
    ),
    authors=("Yann LeCun", "Jean-Pierre Dupont", "Zoë O'Brien"),
    ai_summary="Generalization, generalized and generalizable agents.",
    ai_keywords=("world models", "pre-training"),
    categories=("cs.LG", "stat.ML"),
    primary_category="cs.LG",
    sources=("hf", "arxiv"),
    source="hf",
)


@lru_cache(maxsize=1)
def fingerprint(postgres: bool = False) -> str:
    """Changes when the index format or the analyzer's output on the probe changes (or, on
    PostgreSQL, the tsvector's own format, ``PG_FORMAT``)."""
    doc = index_doc(_PROBE)
    digest = hashlib.sha256(repr((INDEX_FORMAT, doc)).encode("utf-8")).hexdigest()
    return f"{INDEX_FORMAT}:{digest[:16]}" + (f"/pg{PG_FORMAT}" if postgres else "")


# --- query expressions ---------------------------------------------------------------------------

# An index expression, built from tuples:
#   ("term", columns, token)         the token in one of the columns
#   ("phrase", columns, tokens)      the tokens at consecutive positions in one column
#   ("prefix", columns, token)       a token starting with ``token`` (categories)
#   ("and", (expr, ...)), ("or", (expr, ...))
#   ("andnot", positive, negative)   positive and not negative
#   TRUE (every paper), FALSE (none)
Expr: TypeAlias = tuple[Any, ...]
TRUE: Expr = ("true",)
FALSE: Expr = ("false",)


def _and(parts: Sequence[Expr]) -> Expr:
    kept: list[Expr] = []
    for part in parts:
        if part == FALSE:
            return FALSE
        if part != TRUE and part not in kept:
            kept.append(part)
    if not kept:
        return TRUE
    return kept[0] if len(kept) == 1 else ("and", tuple(kept))


def _or(parts: Sequence[Expr]) -> Expr:
    kept: list[Expr] = []
    for part in parts:
        if part == TRUE:
            return TRUE
        if part != FALSE and part not in kept:
            kept.append(part)
    if not kept:
        return FALSE
    return kept[0] if len(kept) == 1 else ("or", tuple(kept))


def _columns(fields: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(name for name in COLUMNS if name in fields)


@dataclass(frozen=True, slots=True)
class SqlCondition:
    """A condition on the papers table, from the query's top level (or its negation):
    ``upvotes <op> value``, the listing day's range, or the paper's id (a query naming one
    paper)."""

    node: Upvotes | PaperId | ListedOn
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Window:
    """What ``SearchIndex.window`` read: (seq, upvotes) newest first, each row's flags, and
    how many matches follow the window (up to the cap asked; None: the window holds the
    rest)."""

    rows: list[tuple[int, int | None]]
    flags: dict[int, tuple[bool, ...]]
    following: int | None


@dataclass(frozen=True, slots=True)
class Compiled:
    loose: Expr  # every matching paper meets it (TRUE: the index cannot narrow the search)
    strict: Expr  # only matching papers meet it (FALSE: none is certain without checking)
    conditions: tuple[SqlCondition, ...] = ()
    leaves: tuple[Term | Phrase, ...] = ()  # positive words and phrases, for ranking

    @property
    def exact(self) -> bool:
        return self.loose == self.strict and self.loose != TRUE


Splits: TypeAlias = dict[str, set[tuple[str, ...]]]
# Inclusive bounds on papers' seqs (``SearchIndex.seq_range``).
SeqRange: TypeAlias = tuple[int, int]


def phrase_terms(query: Query) -> set[str]:
    """Encoded terms of every phrase in the query: those whose compound splits matter."""
    found: set[str] = set()
    for node in _walk(query.root):
        if isinstance(node, Phrase):
            for slot in node.slots:
                for alternative in slot:
                    found.update(encode(t) for t in alternative)
    return found


def _walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, And | Or):
        for child in node.children:
            yield from _walk(child)
    elif isinstance(node, Not):
        yield from _walk(node.child)


def _phrase(node: Phrase, splits: Splits, fields: tuple[str, ...] | None = None) -> Compiled:
    columns = _columns(fields or node.fields)
    if not columns:
        return Compiled(FALSE, FALSE)

    def variants(expand: bool) -> list[tuple[str, ...]] | None:
        per_slot: list[list[tuple[str, ...]]] = []
        for slot in node.slots:
            options: list[tuple[str, ...]] = []
            for alternative in slot:
                choices: list[list[tuple[str, ...]]] = []
                for term in alternative:
                    token = encode(term)
                    ways: list[tuple[str, ...]] = [(token,)]
                    if expand:
                        ways += sorted(splits.get(token, set()))
                    choices.append(ways)
                for combo in product(*choices):
                    run = tuple(t for part in combo for t in part)
                    if run not in options:
                        options.append(run)
                if len(options) > MAX_PHRASE_VARIANTS:
                    return None
            per_slot.append(options)
        out: list[tuple[str, ...]] = [()]
        for options in per_slot:
            if len(out) * len(options) > MAX_PHRASE_VARIANTS:
                return None
            out = [left + right for left in out for right in options]
        return out

    def render(sequences: list[tuple[str, ...]]) -> Expr:
        return _or(
            [
                ("term", columns, seq[0]) if len(seq) == 1 else ("phrase", columns, seq)
                for seq in sequences
            ]
        )

    strict_variants = variants(False)
    strict = FALSE if strict_variants is None else render(strict_variants)
    uses_splits = any(
        encode(t) in splits for slot in node.slots for alternative in slot for t in alternative
    )
    if not uses_splits and strict_variants is not None:
        return Compiled(strict, strict)
    loose_variants = variants(True)
    if loose_variants is not None:
        loose = render(loose_variants)
    else:
        # Every term of a matching alternative is in the field (joined forms included).
        loose = _and(
            [
                _or(
                    [
                        _and([("term", columns, encode(t)) for t in alternative])
                        for alternative in slot
                    ]
                )
                for slot in node.slots
            ]
        )
    return Compiled(loose, strict)


def _category(node: Category) -> Expr:
    value = node.value
    if not node.prefix:
        return ("term", ("meta",), encode("cat:" + value))
    if value.endswith(".") and value.count(".") == 1 and len(value) > 1:
        # cat:cs.* is the archive key every paper in cs has: one token, no prefix scan.
        return ("term", ("meta",), encode("catp:" + value))
    return ("prefix", ("meta",), encode("cat:" + value))


def _exact_term(columns: tuple[str, ...], term: str) -> Compiled:
    """An exact word ``=w``, exactly: in some column, the exact token ``_3d_w``, or the term
    ``w`` without the marker ``_21_w`` (every occurrence of the term there is ``w`` itself;
    see "Exact words")."""
    word = encode(term[len(EXACT_MARK) :])
    parts: list[Expr] = [("term", columns, EXACT_PREFIX + word)]
    for column in columns:
        parts.append(
            ("andnot", ("term", (column,), word), ("term", (column,), VARIANT_PREFIX + word))
        )
    exact = _or(parts)
    return Compiled(exact, exact)


def _exact_phrase(node: Phrase) -> Compiled:
    """A phrase with exact words. Exact tokens have no positions in the text, so the index
    finds the papers holding every word in one of the fields (an exact word as in
    ``_exact_term``), and ``match_paper`` checks the phrase itself."""
    columns = _columns(node.fields)
    if not columns:
        return Compiled(FALSE, FALSE)

    def word(term: str) -> Expr:
        if is_exact(term):
            return _exact_term(columns, term).loose
        return ("term", columns, encode(term))

    loose = _and(
        [_or([_and([word(t) for t in alternative]) for alternative in slot]) for slot in node.slots]
    )
    return Compiled(loose, FALSE)


def _compile(node: Node, splits: Splits) -> Compiled:
    if isinstance(node, Term):
        columns = _columns(node.fields)
        if columns and is_exact(node.term):
            return _exact_term(columns, node.term)
        expr: Expr = ("term", columns, encode(node.term)) if columns else FALSE
        return Compiled(expr, expr)
    if isinstance(node, Phrase):
        if any(is_exact(t) for slot in node.slots for alternative in slot for t in alternative):
            return _exact_phrase(node)
        return _phrase(node, splits)
    if isinstance(node, Category):
        expr = _category(node)
        return Compiled(expr, expr)
    if isinstance(node, Source):
        expr = ("term", ("meta",), encode("source:" + node.value))
        return Compiled(expr, expr)
    if isinstance(node, Or):
        parts = [_compile(child, splits) for child in node.children]
        return Compiled(_or([p.loose for p in parts]), _or([p.strict for p in parts]))
    if isinstance(node, And):
        positives = [_compile(c, splits) for c in node.children if not isinstance(c, Not)]
        negatives = [_compile(c.child, splits) for c in node.children if isinstance(c, Not)]
        loose = _and([p.loose for p in positives])
        strict = _and([p.strict for p in positives])
        if negatives:
            # Leaving out papers that surely match an exclusion keeps a superset; leaving out
            # every paper that might match it keeps a subset.
            loose_out = _or([n.strict for n in negatives])
            strict_out = _or([n.loose for n in negatives])
            if loose_out == TRUE:
                loose = FALSE
            elif loose not in (TRUE, FALSE) and loose_out != FALSE:
                loose = ("andnot", loose, loose_out)
            if strict_out == TRUE or (strict == TRUE and strict_out != FALSE):
                strict = FALSE
            elif strict not in (TRUE, FALSE) and strict_out != FALSE:
                strict = ("andnot", strict, strict_out)
        return Compiled(loose, strict)
    # Upvotes below the top level, or a lone exclusion: the index cannot say.
    return Compiled(TRUE, FALSE)


def _leaves(node: Node, out: list[Term | Phrase]) -> None:
    if isinstance(node, Term | Phrase):
        if node not in out:
            out.append(node)
    elif isinstance(node, And | Or):
        for child in node.children:
            _leaves(child, out)


def compile_query(query: Query, splits: Splits | None = None) -> Compiled:
    """The index expressions and SQL conditions for ``query`` (see the module docstring).

    ``splits``: encoded joined term -> the part sequences recorded for it (``SearchIndex.splits``
    of ``phrase_terms(query)``).
    """
    splits = splits or {}
    root = query.root
    children = root.children if isinstance(root, And) else (root,)
    conditions: list[SqlCondition] = []
    rest: list[Node] = []
    for child in children:
        if isinstance(child, Upvotes | PaperId | ListedOn):
            conditions.append(SqlCondition(child))
        elif isinstance(child, Not) and isinstance(child.child, Upvotes | ListedOn):
            conditions.append(SqlCondition(child.child, negated=True))
        else:
            rest.append(child)
    leaves: list[Term | Phrase] = []
    _leaves(root, leaves)
    if not rest:
        return Compiled(TRUE, TRUE, tuple(conditions), tuple(leaves))
    compiled = _compile(rest[0] if len(rest) == 1 else And(tuple(rest)), splits)
    return Compiled(compiled.loose, compiled.strict, tuple(conditions), tuple(leaves))


def title_copy_expr(expr: Expr) -> Expr:
    """A title-only expression (``leaf_expr(leaf, ("title",))``) over the title copy in meta."""
    kind = expr[0]
    if kind == "term":
        return ("term", ("meta",), TITLE_COPY + expr[2])
    if kind == "phrase":
        return ("phrase", ("meta",), tuple(TITLE_COPY + t for t in expr[2]))
    if kind in ("and", "or"):
        return (kind, tuple(title_copy_expr(part) for part in expr[1]))
    return expr


def leaf_expr(leaf: Term | Phrase, fields: tuple[str, ...] | None = None) -> Expr:
    """An expression for one word or phrase, optionally only in ``fields`` (for ranking:
    papers meeting it have the leaf; an exact phrase gives FALSE, its positions unknown)."""
    if isinstance(leaf, Term):
        columns = _columns(fields or leaf.fields)
        if columns and is_exact(leaf.term):
            return _exact_term(columns, leaf.term).strict
        return ("term", columns, encode(leaf.term)) if columns else FALSE
    if any(is_exact(t) for slot in leaf.slots for alternative in slot for t in alternative):
        return FALSE
    return _phrase(leaf, {}, fields).strict


# --- rendering -----------------------------------------------------------------------------------


def to_fts5(expr: Expr) -> str:
    """An FTS5 MATCH string; TRUE/FALSE are the caller's business."""
    kind = expr[0]
    if kind in ("term", "phrase", "prefix"):
        columns = " ".join(expr[1])
        tokens = expr[2] if kind == "phrase" else (expr[2],)
        star = " *" if kind == "prefix" else ""
        return "{" + columns + '} : "' + " ".join(tokens) + '"' + star
    if kind == "and":
        return " AND ".join(f"({to_fts5(part)})" for part in expr[1])
    if kind == "or":
        return " OR ".join(f"({to_fts5(part)})" for part in expr[1])
    if kind == "andnot":
        return f"({to_fts5(expr[1])}) NOT ({to_fts5(expr[2])})"
    raise ValueError(f"cannot render {expr!r}")


def _pg_operand(column_set: tuple[str, ...], token: str, prefix: bool = False) -> str:
    star = "*" if prefix else ""
    parts: list[str] = []
    text = [c for c in column_set if c in _PG_WEIGHTS]
    if text:
        weights = "" if len(text) == len(_PG_WEIGHTS) else "".join(_PG_WEIGHTS[c] for c in text)
        suffix = f":{star}{weights}" if (star or weights) else ""
        parts.append(f"'{token}'{suffix}")
    if "authors" in column_set:
        parts.append(f"'{_PG_AUTHOR}{token}'" + (":*" if prefix else ""))
    if "meta" in column_set:
        parts.append(f"'{token}'" + (":*" if prefix else ""))
    return parts[0] if len(parts) == 1 else "(" + " | ".join(parts) + ")"


def _title_only(expr: Expr) -> bool:
    """A word or phrase asked of the title alone, with no variant marker: its title copy
    (``_add_title_copies``) answers it exactly."""
    tokens = expr[2] if expr[0] == "phrase" else (expr[2],)
    return expr[1] == ("title",) and not any(t.startswith(VARIANT_PREFIX) for t in tokens)


def to_tsquery(expr: Expr) -> str:
    """A tsquery literal (cast with ``::tsquery``, never parsed by a text search config)."""
    kind = expr[0]
    if kind in ("term", "phrase") and _title_only(expr):
        if kind == "term":
            return f"'{TITLE_COPY}{expr[2]}'"
        return "(" + " <-> ".join(f"'{TITLE_COPY}{t}'" for t in expr[2]) + ")"
    if kind == "term":
        return _pg_operand(expr[1], expr[2])
    if kind == "prefix":
        return _pg_operand(expr[1], expr[2], prefix=True)
    if kind == "phrase":
        columns = expr[1]
        # A phrase lies within one field. Fields and list items are apart by a position gap,
        # so one chain without weights covers all four text fields; fewer need one chain each.
        groups: list[tuple[str, ...]] = []
        text = tuple(c for c in columns if c in _PG_WEIGHTS)
        if len(text) == len(_PG_WEIGHTS):
            groups.append(text)
        else:
            groups += [(c,) for c in text]
        groups += [(c,) for c in columns if c not in _PG_WEIGHTS]
        chains = [
            "(" + " <-> ".join(_pg_operand(group, token) for token in expr[2]) + ")"
            for group in groups
        ]
        return chains[0] if len(chains) == 1 else "(" + " | ".join(chains) + ")"
    if kind == "and":
        return " & ".join(f"({to_tsquery(part)})" for part in expr[1])
    if kind == "or":
        return " | ".join(f"({to_tsquery(part)})" for part in expr[1])
    if kind == "andnot":
        return f"({to_tsquery(expr[1])}) & !({to_tsquery(expr[2])})"
    raise ValueError(f"cannot render {expr!r}")


def unpositioned(expr: Expr) -> Expr:
    """A superset of ``expr`` that GIN answers alone, without testing any row's doc: each
    phrase as all of its words, each word asked of some text fields as the word in all of
    them (no weight), and an exclusion GIN cannot answer alone left out (leaving out fewer
    papers keeps a superset). Every paper meeting ``expr`` meets it (``SearchIndex.window``
    tests its rows against ``expr`` one by one, newest first, only as far as it needs)."""
    kind = expr[0]
    if kind in ("term", "prefix"):
        columns = expr[1]
        if expr[0] == "term" and _title_only(expr):
            return expr  # the title copy's lexeme: no weight
        if any(c in _PG_WEIGHTS for c in columns):
            columns = tuple(c for c in COLUMNS if c in columns or c in _PG_WEIGHTS)
        return (kind, columns, expr[2])
    if kind == "phrase":
        return _and([unpositioned(("term", expr[1], token)) for token in expr[2]])
    if kind == "and":
        return _and([unpositioned(part) for part in expr[1]])
    if kind == "or":
        return _or([unpositioned(part) for part in expr[1]])
    if kind == "andnot":
        positive = unpositioned(expr[1])
        if _rechecked(to_tsquery(expr[2])):
            return positive
        return ("andnot", positive, expr[2]) if positive not in (TRUE, FALSE) else positive
    return expr


def _implies(expr: Expr, flag: Expr) -> bool:
    """Whether every paper meeting ``expr`` surely meets ``flag``: ``flag`` is ``expr`` or one
    of the parts it requires (an AND's part, an exclusion's positive side), compared as
    written (no reasoning about what the words mean)."""
    if flag == expr:
        return True
    kind = expr[0]
    if kind == "and":
        return any(_implies(part, flag) for part in expr[1])
    if kind == "andnot":
        return _implies(expr[1], flag)
    return False


def gin_exact_subset(expr: Expr) -> Expr:
    """A subset of ``expr`` that GIN answers alone: its phrases and words with weights
    (``_rechecked``) taken as met by no paper, an exclusion as all of its papers that
    ``unpositioned`` says might meet it. Every paper meeting it meets ``expr``."""
    kind = expr[0]
    if kind in ("term", "prefix", "phrase"):
        return FALSE if _rechecked(to_tsquery(expr)) else expr
    if kind == "and":
        return _and([gin_exact_subset(part) for part in expr[1]])
    if kind == "or":
        return _or([gin_exact_subset(part) for part in expr[1]])
    if kind == "andnot":
        positive = gin_exact_subset(expr[1])
        if positive in (TRUE, FALSE):
            return positive
        return ("andnot", positive, unpositioned(expr[2]))
    return expr


# A doc with at most this many characters can reach neither PostgreSQL's position limit nor its
# size limit: each token takes at least two characters of index text (itself and a space), so
# it has fewer than 16,383 tokens and gaps, and costs at most ten bytes a character.
_PG_NO_LIMITS = 30_000
# A position's weight, as PostgreSQL keeps it in the two high bits of the position.
_PG_WEIGHT_BITS = {"A": 3, "B": 2, "C": 1, "D": 0}
_PG_POSITION_BITS = 0x3FFF

# ``PgDoc``'s entries are tsvectorrecv's input: each lexeme in UTF-8, a NUL byte, its count of
# positions and each position, 16-bit big-endian. The storing process puts the seq's bucket
# lexeme between the two parts (``pg_copy_row``): it always sorts at the same place, as no
# other lexeme starts with SEQ_BUCKET_PREFIX.


@cache
def _pg_labels(weight: str) -> list[str]:
    """Each position's label in a field of this weight ("12B": position 12, weight B), for
    every position such a doc can have; built on first use, as only PostgreSQL stores need
    them and every command imports this module."""
    return [f"{at}{weight}" for at in range(_PG_MAX_POSITION + 1)]


@cache
def _pg_binary_labels(weight: str) -> list[str]:
    """``_pg_labels`` in the binary form: the position with the weight in its two high bits,
    16-bit big-endian, each byte as the character of that code (Latin-1), so that a doc's
    entries join as one string and are encoded once (``to_tsvector``)."""
    bits = _PG_WEIGHT_BITS[weight] << 14
    return [_latin1_uint16(bits | at) for at in range(_PG_MAX_POSITION + 1)]


def _latin1_uint16(n: int) -> str:
    return chr(n >> 8) + chr(n & 0xFF)


# An entry's end of lexeme and count of positions, by the count (at most 256, PostgreSQL's own).
_PG_COUNTS = ["\0" + _latin1_uint16(n) for n in range(_PG_MAX_POSITIONS_PER_LEXEME + 1)]


def to_tsvector(doc: IndexDoc) -> PgDoc:
    """The doc's tsvector in PostgreSQL's binary form (``PgDoc``), as an import writes it.

    PostgreSQL stores exactly what it would store for ``tsvector_literal(doc)`` (tests compare
    the two on the server), but reads it several times faster: its text input scans every
    character and sorts the lexemes, where the binary input copies lexemes already sorted,
    each with its positions in order and once (5,000 docs: about 0.7 s of the server's CPU
    less, bench/RESULTS.md). The entries are sorted here as PostgreSQL sorts lexemes (by
    their bytes, a shorter one first; for UTF-8 that is Python's order of strings).
    """
    positions = _pg_positions(doc, _pg_binary_labels)
    lexemes = sorted(positions)
    where = list(map(positions.__getitem__, lexemes))
    if sum(map(len, doc.columns)) > _PG_NO_LIMITS:
        # Positions past the last one are clamped to it; the text input keeps one of each.
        where = list(map(_distinct_positions, where))
    bucket = bisect_left(lexemes, SEQ_BUCKET_PREFIX)
    # Index text is ASCII (``encode``), so Latin-1 writes its lexemes as UTF-8 does.
    ascii = all(map(str.isascii, doc.columns))
    try:
        before = _pg_entries(lexemes[:bucket], where[:bucket], ascii)
        after = _pg_entries(lexemes[bucket:], where[bucket:], ascii)
    except IndexError:  # a lexeme with more positions than _PG_COUNTS counts: keep the first
        where = [kept[:_PG_MAX_POSITIONS_PER_LEXEME] for kept in where]
        before = _pg_entries(lexemes[:bucket], where[:bucket], ascii)
        after = _pg_entries(lexemes[bucket:], where[bucket:], ascii)
    return len(lexemes), before, after


def _pg_entries(lexemes: list[str], where: list[list[str]], ascii: bool) -> bytes:
    # Joined in C: each lexeme, its NUL and count, then its positions.
    counts = map(_PG_COUNTS.__getitem__, map(len, where))
    if ascii:
        entries = zip(lexemes, counts, map("".join, where), strict=True)
        return "".join(chain.from_iterable(entries)).encode("latin-1")
    tails = map(str.__add__, counts, map("".join, where))
    return b"".join(
        chain.from_iterable(zip(map(str.encode, lexemes), map(_latin1, tails), strict=True))
    )


def _latin1(text: str) -> bytes:
    return text.encode("latin-1")


def _distinct_positions(where: list[str]) -> list[str]:
    """The first label at each position (the field before has the higher weight, which
    PostgreSQL's text input keeps)."""
    kept: list[str] = []
    last = -1
    for label in where:
        at = (ord(label[0]) << 8 | ord(label[1])) & _PG_POSITION_BITS
        if at != last:
            kept.append(label)
            last = at
    return kept


def tsvector_literal(doc: IndexDoc) -> str:
    """The doc's tsvector as a text literal (for an UPDATE, and for tests to read)."""
    positions = _pg_positions(doc, _pg_labels)
    return " ".join(
        f"'{lexeme}':{','.join(where[:_PG_MAX_POSITIONS_PER_LEXEME])}"
        for lexeme, where in positions.items()
    )


def _pg_positions(doc: IndexDoc, labels: Callable[[str], list[str]]) -> dict[str, list[str]]:
    """Each lexeme of the doc's tsvector with its positions' labels (``labels(weight)[at]``),
    within PostgreSQL's limits but for the number of positions a lexeme may keep (the
    caller keeps the first ``_PG_MAX_POSITIONS_PER_LEXEME``): positions as in FTS5, fields
    and separators as gaps.

    An import into PostgreSQL works out one per paper, so the common case (a doc far below
    every limit) takes a path with no per-token checks but the length of each new lexeme;
    ``_pg_positions_limited`` is the definition, and the one taken for a doc that could
    reach a limit. Tests compare the two.
    """
    if sum(map(len, doc.columns)) > _PG_NO_LIMITS:
        return _pg_positions_limited(doc, labels)
    positions: dict[str, list[str]] = {}
    position = 1
    longest = 0  # of the lexemes, the title's copies aside (``_title_positions``)
    for column, text in zip(COLUMNS, doc.columns, strict=True):
        weight = _PG_WEIGHTS.get(column, "D")
        tokens = text.split()
        if column == "meta":
            tokens = [token for token in tokens if not token.startswith(TITLE_COPY)]
        if column == "authors":
            tokens = [t if t == SEPARATOR else _PG_AUTHOR + t for t in tokens]
        table = labels(weight)
        get = positions.get
        if column == "title":
            _title_positions(positions, tokens, position, table)
            longest = max(map(len, tokens), default=0) + len(TITLE_COPY)
        else:
            # Each token beside its label, with no position counted or looked up per token.
            for token, label in zip(tokens, table[position : position + len(tokens)], strict=True):
                where = get(token)
                if where is None:
                    positions[token] = [label]
                    # Here, not in a pass over the lexemes after: a tenth of the time.
                    if len(token) > longest:
                        longest = len(token)
                else:
                    where.append(label)
        position += len(tokens) + 1  # fields never touch
    positions.pop(SEPARATOR, None)
    if longest > _PG_MAX_LEXEME:
        positions = {k: v for k, v in positions.items() if len(k) <= _PG_MAX_LEXEME}
    return positions


def _title_positions(
    positions: dict[str, list[str]], tokens: list[str], first: int, labels: list[str]
) -> None:
    """The title's tokens at their positions, each followed by its ``TITLE_COPY`` lexeme at
    the same position (so ``'_ti_a' <-> '_ti_b'`` is the phrase "a b" in the title).

    ``title:word`` and ranking's "is it in the title" then ask the GIN index for one exact
    lexeme, and the planner's statistics know how common it is in titles. Asked as
    ``'word':A`` (weight A: the title), the index returns every paper with the word anywhere
    and each is tested again, and the planner, which ignores weights, takes a word common in
    abstracts for one common in titles: it walked the newest papers, testing thousands, to
    find a window of a word found in few titles. Variant markers get no copy, as in FTS5's
    title copy (only whole exact words are asked of the title alone; ``to_tsquery`` keeps
    ``:A`` for a marker).
    """
    get = positions.get
    for at, token in enumerate(tokens, first):
        label = labels[at]
        where = get(token)
        if where is None:
            positions[token] = [label]
        else:
            where.append(label)
        if token == SEPARATOR or token.startswith(VARIANT_PREFIX):
            continue
        copy = TITLE_COPY + token
        where = get(copy)
        if where is None:
            positions[copy] = [label]
        else:
            where.append(label)


def _pg_positions_limited(
    doc: IndexDoc, labels: Callable[[str], list[str]]
) -> dict[str, list[str]]:
    """``_pg_positions`` for any doc: clamps positions and keeps within PostgreSQL's limits.
    (A clamped position may be listed more than once; ``_distinct_positions``.)"""
    positions: dict[str, list[str]] = {}
    position = 1
    size = 0
    for column, text in zip(COLUMNS, doc.columns, strict=True):
        table = labels(_PG_WEIGHTS.get(column, "D"))
        prefix = _PG_AUTHOR if column == "authors" else ""
        for token in text.split():
            if token.startswith(TITLE_COPY):
                continue  # FTS5's title copy; PostgreSQL's is made below, at the title
            if token != SEPARATOR:
                lexemes = [prefix + token]
                if column == "title" and not token.startswith(VARIANT_PREFIX):
                    lexemes.append(TITLE_COPY + token)  # see _title_positions
                for lexeme in lexemes:
                    entry = positions.get(lexeme)
                    if entry is None:
                        cost = len(lexeme) + 6
                        if len(lexeme) <= _PG_MAX_LEXEME and size + cost <= _PG_MAX_TSVECTOR:
                            positions[lexeme] = [table[min(position, _PG_MAX_POSITION)]]
                            size += cost
                    elif len(entry) < _PG_MAX_POSITIONS_PER_LEXEME and size + 2 <= _PG_MAX_TSVECTOR:
                        entry.append(table[min(position, _PG_MAX_POSITION)])
                        size += 2
            position += 1
        position += 1  # fields never touch
    return positions


def _seq_bucket_lexeme(seq: int) -> str:
    """The lexeme every doc of ``seq``'s bucket carries (``SearchIndex.window``)."""
    return f"{SEQ_BUCKET_PREFIX}{int(seq) // SEQ_BUCKET}"


def vote_lexemes(upvotes: int | None) -> tuple[str, ...]:
    """The upvote steps a doc with these votes holds (VOTE_PREFIX), in PostgreSQL's order."""
    return _vote_steps(upvotes)[0]


def _vote_steps(upvotes: int | None) -> tuple[tuple[str, ...], bytes]:
    """``vote_lexemes``, and the same as binary tsvector entries (``pg_copy_row``)."""
    return _first_vote_steps(bisect_right(VOTE_STEPS, upvotes) if upvotes else 0)


@cache
def _first_vote_steps(reached: int) -> tuple[tuple[str, ...], bytes]:
    """The lexemes of the first ``reached`` VOTE_STEPS, sorted as PostgreSQL sorts lexemes
    (by their bytes: "_sq_v10" before "_sq_v2"), and as binary tsvector entries."""
    lexemes = tuple(sorted(f"{VOTE_PREFIX}{step}" for step in VOTE_STEPS[:reached]))
    return lexemes, "".join(f"{lexeme}\0\0\0" for lexeme in lexemes).encode()


def _bare_lexemes(lexemes: Iterable[str]) -> str:
    """A tsvector literal of lexemes without positions (the bucket's and the upvote steps)."""
    return " ".join(f"'{lexeme}'" for lexeme in lexemes)


def with_seq_bucket(tsvector: str, seq: int, upvotes: int | None = None) -> str:
    """A doc's tsvector literal with its seq's bucket lexeme and its upvote steps added
    (``SearchIndex.window``)."""
    added = _bare_lexemes((_seq_bucket_lexeme(seq), *vote_lexemes(upvotes)))
    return f"{tsvector} {added}" if tsvector else added


# A row of ``paper_search`` in binary COPY, up to its doc's entries: its two fields, the seq's
# length and value, the doc's length and number of lexemes.
_PG_COPY_ROW = struct.Struct(">hiiii")


def pg_copy_row(seq: int, doc: PgDoc, upvotes: int | None = None) -> bytes:
    """The binary COPY row of ``paper_search`` for one doc, its seq's bucket lexeme and its
    upvote steps added (``SearchIndex.window``) where they sort."""
    count, before, after = doc
    bucket = f"{_seq_bucket_lexeme(seq)}\0\0\0".encode()  # no positions
    steps, votes = _vote_steps(upvotes)  # no positions either
    size = 4 + len(before) + len(bucket) + len(votes) + len(after)
    head = _PG_COPY_ROW.pack(2, 4, seq, size, count + 1 + len(steps))
    return b"".join((head, before, bucket, votes, after))


# --- the index in the database ---------------------------------------------------------------


def _keep_docs_apart(conn: Connection) -> None:
    """Keep each tsvector out of its table row (compressed, in the TOAST table), so a row of
    ``paper_search`` is its seq and a pointer: about 40 bytes, some 180 rows a page.

    Finding the newest matches of a word is a GIN lookup (the matching rows' addresses, in
    no useful order), then a read of each matching row to learn its seq, then a sort on seq.
    With the docs stored in their rows (index format 4 to PG format 2, ``STORAGE MAIN``) each
    row was a whole 8 kB page of compressed doc: reading a match cost about 40 µs, and a
    word in 3,000 papers cost 90 ms at 100,000 papers, growing with the store. With the docs
    apart, the matches of a word sit a hundred and more to a page of narrow rows and the
    read costs well under a microsecond a match; a doc is fetched and decompressed only
    when a row must be tested against it (a phrase, a word asked of one field, a walk of
    the newest papers). ``toast_tuple_target`` = 128 (its least) moves every doc but the
    tiniest out of line (by default only rows over 2 kB are).

    The planner does not count the cost of fetching TOAST values, so to it a scan of the
    whole narrow table testing every doc, or a walk of the primary key testing each, looks
    cheap: the search transaction turns sequential scans off (``search_settings``), and
    ``SearchIndex.window`` sorts its spans on ``seq + 0`` so that GIN is asked. Compressed
    with LZ4 rather than PostgreSQL's default pglz: LZ4 decompresses several times faster
    (a server built without LZ4 keeps pglz).
    """
    conn.exec_driver_sql(f"ALTER TABLE {PG_TABLE} ALTER COLUMN doc SET STORAGE EXTENDED")
    conn.exec_driver_sql(f"ALTER TABLE {PG_TABLE} SET (toast_tuple_target = 128)")
    # 10,000 most common lexemes instead of 1,000 (ANALYZE samples 300,000 rows): the list
    # then ends near 0.25% of the papers, so a lexeme outside it is rare (``_rare``).
    conn.exec_driver_sql(f"ALTER TABLE {PG_TABLE} ALTER COLUMN doc SET STATISTICS 1000")
    lz4 = conn.exec_driver_sql(
        "SELECT count(*) FROM pg_settings WHERE name = 'default_toast_compression' "
        "AND 'lz4' = ANY(enumvals)"
    ).scalar()
    if lz4:
        conn.exec_driver_sql(f"ALTER TABLE {PG_TABLE} ALTER COLUMN doc SET COMPRESSION lz4")


# The GIN index's pending list, in kB, as PostgreSQL's ``gin_pending_list_limit`` setting.
# Every connection of a store writes with the short one (``_postgres_session``); a bulk
# import's transaction with the long one, and empties the list before it commits.
PENDING_LIST_KB = 256
BULK_PENDING_LIST_KB = 4096


def pending_list_setting(kb: int = PENDING_LIST_KB, *, local: bool = False) -> str:
    """The statement that sets the pending list's limit for a session's writes.

    New rows go to an unordered pending list that every search reads whole, until it is full
    or vacuumed into the index's tree. At 10,000 papers, a store filled by an import had
    several thousand docs there, and finding a word in 92 papers took 17.5 ms instead of
    0.1 ms (bench/search_backends.py): so writers keep it short (256 kB; PostgreSQL's default
    is 4 MB), and ``optimize`` empties it after an import.

    A setting of the session, not of the index (``ALTER INDEX … SET``, which would override
    it): the index's own setting can only be changed under an ACCESS EXCLUSIVE lock, which
    would stop every search for as long as the transaction lasted, while a session setting
    lets a bulk import write with a long list (``SearchIndex.bulk_transaction``). ``local``:
    for the rest of the transaction only.
    """
    return f"SET{' LOCAL' if local else ''} gin_pending_list_limit = {int(kb)}"


def _pending_list_per_session(conn: Connection) -> None:
    """Drop the index's own pending list limit (stores created before kept 256 kB there),
    so each writer's session setting applies (``pending_list_setting``)."""
    conn.exec_driver_sql(f"ALTER INDEX {PG_INDEX} RESET (gin_pending_list_limit)")


class SearchIndex:
    """Reads and writes the index on one engine's database (SQLite FTS5 or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.dialect = engine.dialect.name
        self.postgres = self.dialect == "postgresql"
        self._mark = "%s" if self.postgres else "?"
        # Compounds known to be stored, so a batch does not re-insert the common ones.
        self._known_compounds: set[Compound] = set()
        # ``splits`` read before: when the cache was started, and token -> its splits.
        self._splits: tuple[float, dict[str, set[tuple[str, ...]]]] = (0.0, {})
        # PostgreSQL: (when read, the doc column's most common lexemes' shares, the least of
        # them, the rows of the index table), from the planner's statistics; see ``_rare``.
        self._common: tuple[float, dict[str, float] | None, float, float] | None = None

    # -- schema ------------------------------------------------------------------------------

    @staticmethod
    def create(conn: Connection) -> None:
        """Create the index tables (a migration step); the index starts out stale."""
        from bridge.store.schema import search_compounds, search_index_state

        search_compounds.create(conn)
        search_index_state.create(conn)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(
                f"CREATE TABLE {PG_TABLE} (seq INTEGER PRIMARY KEY, doc TSVECTOR NOT NULL)"
            )
            _keep_docs_apart(conn)
            conn.exec_driver_sql(f"CREATE INDEX {PG_INDEX} ON {PG_TABLE} USING GIN (doc)")
        else:
            conn.exec_driver_sql(
                f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5({', '.join(COLUMNS)}, "
                f"content='', tokenize=\"{FTS_TOKENIZE}\")"
            )
        conn.execute(search_index_state.insert().values(key="fingerprint", value=""))

    def exists(self, conn: Connection) -> bool:
        from sqlalchemy import inspect

        from bridge.store.schema import search_index_state

        return inspect(conn).has_table(search_index_state.name)

    def stored_fingerprint(self, conn: Connection) -> str | None:
        from sqlalchemy import select

        from bridge.store.schema import search_index_state

        row = conn.execute(
            select(search_index_state.c.value).where(search_index_state.c.key == "fingerprint")
        ).first()
        return row[0] if row else None

    def ensure_current(self, conn: Connection) -> bool:
        """Rebuild the index if it was built by another analyzer; True if it rebuilt."""
        if not self.exists(conn) or self.stored_fingerprint(conn) == fingerprint(self.postgres):
            return False
        self.rebuild(conn)
        return True

    def rebuild(self, conn: Connection, batch: int = 2000) -> int:
        """Index every stored paper again, in the caller's transaction; returns how many."""
        from sqlalchemy import select

        from bridge.store import (
            _to_paper,  # the store's row -> Paper, without an import cycle
            schema,
        )
        from bridge.store.schema import search_index_state

        papers = schema.papers
        total = conn.execute(select(papers.c.seq).order_by(papers.c.seq.desc()).limit(1)).first()
        if total is not None:
            log.info("building the search index (up to seq %d); this runs once", total[0])
        self.clear(conn)
        if self.postgres:
            _keep_docs_apart(conn)  # a store created before: its rows are written anew here
            _pending_list_per_session(conn)
            # Written as a bulk import writes; ``optimize`` below empties the list.
            conn.exec_driver_sql(pending_list_setting(BULK_PENDING_LIST_KB, local=True))
        conn.exec_driver_sql(
            "INSERT INTO search_votes (seq, upvotes) "
            "SELECT seq, upvotes FROM papers WHERE upvotes IS NOT NULL"
        )
        last = 0
        count = 0
        while True:
            rows = conn.execute(
                select(papers).where(papers.c.seq > last).order_by(papers.c.seq).limit(batch)
            ).all()
            if not rows:
                break
            self.insert(
                conn,
                [(row.seq, index_doc(_to_paper(row))) for row in rows],
                [row.upvotes for row in rows],
            )
            last = rows[-1].seq
            count += len(rows)
            if count % 100_000 < batch:
                log.info("search index: %d papers indexed", count)
        conn.execute(
            search_index_state.update()
            .where(search_index_state.c.key == "fingerprint")
            .values(value=fingerprint(self.postgres))
        )
        self.optimize(conn)
        return count

    def optimize(self, conn: Connection) -> None:
        """Merge the index into one segment (SQLite FTS5 'optimize'; PostgreSQL needs nothing).

        Rows written batch by batch leave FTS5 with many segments, and every lookup merges
        them. At a million papers, an optimized index answers the searches of bench/search.py
        about twice as fast, and optimizing takes about 25 seconds. The importer runs it after
        a large import.
        """
        if not self.postgres:
            conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('optimize')")
        else:
            # The docs an import added, out of the GIN index's pending list
            # (``pending_list_setting``) and into its tree.
            conn.exec_driver_sql(f"SELECT gin_clean_pending_list('{PG_INDEX}')")
            # Fresh statistics at once, not when autovacuum comes by: the planner picks the
            # GIN index or a walk of the newest papers from how common each word is.
            conn.exec_driver_sql(f"ANALYZE {PG_TABLE}")

    def clear(self, conn: Connection) -> None:
        from sqlalchemy import inspect

        from bridge.store.schema import search_compounds, search_votes

        if self.postgres:
            # TRUNCATE, not DELETE: the rows of a rebuilt index start on fresh pages, not
            # behind their dead predecessors (a store of an earlier format had 8 kB rows).
            conn.exec_driver_sql(f"TRUNCATE {PG_TABLE}")
        else:
            conn.exec_driver_sql(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('delete-all')")
        conn.execute(search_compounds.delete())
        if inspect(conn).has_table(search_votes.name):
            conn.execute(search_votes.delete())
        self._known_compounds.clear()
        self._splits = (0.0, {})

    # -- writing -----------------------------------------------------------------------------

    def may_empty_pending_list(self, conn: Connection) -> bool:
        """Whether this session may empty the GIN index's pending list (its role owns the
        index, as for VACUUM), and so write bulk transactions with a long one."""
        return bool(
            self.postgres
            and conn.exec_driver_sql(
                f"SELECT pg_has_role(relowner, 'USAGE') FROM pg_class "
                f"WHERE oid = to_regclass('{PG_INDEX}')"
            ).scalar()
        )

    def bulk_transaction(self, conn: Connection) -> None:
        """Write this transaction's docs to a long pending list (PostgreSQL; call
        ``end_bulk_transaction`` before it commits).

        GIN merges its pending list into the tree each time the list passes its limit, one
        look-up in the tree per distinct lexeme of the docs listed: with the short list of
        ordinary writes (``PENDING_LIST_KB``, about 40 imported docs), an import's storing
        process spent most of its time waiting on that merging (5,000 papers: 3.0 s of the
        server's CPU, 1.6 s with a 4 MB list; bench/RESULTS.md, "PostgreSQL import: the storing
        process profiled").
        """
        conn.exec_driver_sql(pending_list_setting(BULK_PENDING_LIST_KB, local=True))

    def end_bulk_transaction(self, conn: Connection) -> None:
        """Empty the pending list into the tree before the bulk transaction commits: what
        searches read after the commit is as short as after any other write."""
        conn.exec_driver_sql(f"SELECT gin_clean_pending_list('{PG_INDEX}')")

    def insert(
        self,
        conn: Connection,
        docs: Sequence[tuple[int, IndexDoc]],
        upvotes: Sequence[int | None],
    ) -> list[Compound]:
        """Index new papers, each with its upvotes (PostgreSQL's docs hold their steps,
        VOTE_PREFIX); returns the compounds stored (``remember`` them after commit)."""
        if len(upvotes) != len(docs):
            raise ValueError("insert takes the upvotes of each doc")
        if not docs:
            return []
        m = self._mark
        if self.postgres:
            # COPY: PostgreSQL reads the rows as one stream, several times faster than a
            # statement per row, even pipelined (bench/import_backends.py); in binary, so
            # the server need not parse each doc's text (``to_tsvector``).
            from bridge.store.bulk import copy_binary

            copy_binary(
                conn,
                f"COPY {PG_TABLE} (seq, doc) FROM STDIN (FORMAT BINARY)",
                [
                    pg_copy_row(seq, doc.tsvector or to_tsvector(doc), votes)
                    for (seq, doc), votes in zip(docs, upvotes, strict=True)
                ],
            )
        else:
            conn.exec_driver_sql(
                f"INSERT INTO {FTS_TABLE} (rowid, {', '.join(COLUMNS)}) VALUES "
                f"({', '.join([m] * (len(COLUMNS) + 1))})",
                [(seq, *doc.columns) for seq, doc in docs],
            )
        return self._add_compounds(conn, docs)

    def replace(
        self, conn: Connection, changes: Sequence[tuple[int, IndexDoc, IndexDoc, int | None]]
    ) -> list[Compound]:
        """Re-index changed papers: (seq, doc as indexed before, doc now, upvotes now)."""
        if not changes:
            return []
        m = self._mark
        if self.postgres:
            conn.exec_driver_sql(
                f"UPDATE {PG_TABLE} SET doc = {m}::tsvector WHERE seq = {m}",
                [
                    (with_seq_bucket(tsvector_literal(new), seq, votes), seq)
                    for seq, _old, new, votes in changes
                ],
            )
            return self._add_compounds(conn, [(seq, new) for seq, _old, new, _ in changes])
        # A contentless FTS5 table forgets a row when told exactly what it held.
        conn.exec_driver_sql(
            f"INSERT INTO {FTS_TABLE} ({FTS_TABLE}, rowid, {', '.join(COLUMNS)}) VALUES "
            f"('delete', {', '.join([m] * (len(COLUMNS) + 1))})",
            [(seq, *old.columns) for seq, old, _new, _votes in changes],
        )
        return self.insert(
            conn,
            [(seq, new) for seq, _old, new, _votes in changes],
            [votes for *_, votes in changes],
        )

    @staticmethod
    def create_votes(conn: Connection) -> None:
        """Create and fill the upvotes table (a migration step)."""
        from bridge.store.schema import search_votes

        search_votes.create(conn)
        conn.exec_driver_sql(
            "INSERT INTO search_votes (seq, upvotes) "
            "SELECT seq, upvotes FROM papers WHERE upvotes IS NOT NULL"
        )

    def set_votes(
        self, conn: Connection, votes: Sequence[tuple[int, int | None]], *, new: bool = False
    ) -> None:
        """Record papers' upvotes (None: the paper has none); ``new``: papers just stored."""
        rows = [(seq, count) for seq, count in votes if count is not None]
        if votes and not new:
            seqs = ",".join(str(int(seq)) for seq, _ in votes)
            delete = f"DELETE FROM search_votes WHERE seq IN ({seqs})"
            if self.postgres:
                rows_before = conn.exec_driver_sql(f"{delete} RETURNING seq, upvotes")
                self._restep(conn, {seq: count for seq, count in rows_before}, votes)
            else:
                conn.exec_driver_sql(delete)
        if rows and self.postgres:
            # One COPY, not a statement per paper (an import stores a thousand at a time).
            from bridge.store.bulk import copy_rows

            copy_rows(conn, "COPY search_votes (seq, upvotes) FROM STDIN", rows)
        elif rows:
            m = self._mark
            conn.exec_driver_sql(f"INSERT INTO search_votes (seq, upvotes) VALUES ({m}, {m})", rows)

    def _restep(
        self,
        conn: Connection,
        before: dict[int, int | None],
        votes: Sequence[tuple[int, int | None]],
    ) -> None:
        """PostgreSQL: write the upvote steps (VOTE_PREFIX) of the docs whose votes crossed
        one; ``before``: the votes they had (a paper missing had none)."""
        changed = [
            (seq, count)
            for seq, count in votes
            if vote_lexemes(before.get(seq)) != vote_lexemes(count)
        ]
        if not changed:
            return
        every_step = "{" + ",".join(vote_lexemes(VOTE_STEPS[-1])) + "}"
        m = self._mark
        conn.exec_driver_sql(
            f"UPDATE {PG_TABLE} SET doc = ts_delete(doc, CAST({m} AS text[]))"
            f" || CAST({m} AS tsvector) WHERE seq = {m}",
            [(every_step, _bare_lexemes(vote_lexemes(count)), seq) for seq, count in changed],
        )

    def title_expr(self, leaf: Term | Phrase) -> Expr:
        """Whether ``leaf`` is in the title, as this database answers it fastest."""
        expr = leaf_expr(leaf, ("title",))
        return expr if self.postgres else title_copy_expr(expr)

    def _add_compounds(
        self, conn: Connection, docs: Sequence[tuple[int, IndexDoc]]
    ) -> list[Compound]:
        fresh = {
            c for _, doc in docs for c in doc.compounds if len(c[0]) <= _MAX_COMPOUND
        } - self._known_compounds
        if not fresh:
            return []
        rows = sorted(fresh)
        m = self._mark
        if self.postgres:
            # One statement over two arrays, not one a compound: the server plans it once.
            conn.exec_driver_sql(
                "INSERT INTO search_compounds (joined, parts) "
                f"SELECT * FROM unnest({m}::text[], {m}::text[]) ON CONFLICT DO NOTHING",
                ([joined for joined, _ in rows], [parts for _, parts in rows]),
            )
        else:
            sql = f"INSERT OR IGNORE INTO search_compounds (joined, parts) VALUES ({m}, {m})"
            conn.exec_driver_sql(sql, rows)
        return rows

    def remember(self, compounds: Iterable[Compound]) -> None:
        """Note compounds whose transaction committed, so later batches skip them."""
        if len(self._known_compounds) > 500_000:
            self._known_compounds.clear()
        before = len(self._known_compounds)
        self._known_compounds.update(compounds)
        if len(self._known_compounds) != before:
            self._splits = (0.0, {})  # this process stored new compounds: read them

    # -- reading -----------------------------------------------------------------------------

    def splits(self, conn: Connection, tokens: Iterable[str]) -> Splits:
        """The recorded splits of each token (``search_compounds``), read from the store at
        most every ``SPLITS_TTL`` seconds and after this process stores new compounds, as
        the expansion table is (``Store.expansion_table``): each search with a phrase (or a
        word widened to one) asked the store first, a round trip of its own before the
        window's (on PostgreSQL at load 6, 0.2 to 5.6 ms)."""
        wanted = sorted(set(tokens))
        started, known = self._splits
        now = time.monotonic()
        if now - started > SPLITS_TTL or len(known) > SPLITS_CACHED:
            started, known = now, {}
            self._splits = (started, known)
        missing = [token for token in wanted if token not in known]
        m = self._mark
        found: Splits = {token: set() for token in missing}
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ", ".join([m] * len(chunk))
            sql = f"SELECT joined, parts FROM search_compounds WHERE joined IN ({marks})"
            for joined, parts in _query(conn, sql, chunk):
                found[joined].add(tuple(parts.split()))
        known.update(found)
        return {token: set(known[token]) for token in wanted if known[token]}

    def _match(self, expr: Expr, alias: str) -> tuple[str, str]:
        """SQL condition for ``expr`` on the index table named ``alias``, and its parameter."""
        if self.postgres:
            return f"{alias}.doc @@ CAST({self._mark} AS tsquery)", to_tsquery(expr)
        # FTS5 takes the table's own name on the left of MATCH, even under an alias.
        return f"{FTS_TABLE} MATCH {self._mark}", to_fts5(expr)

    def _select(
        self,
        expr: Expr,
        conditions: Sequence[SqlCondition],
        announced_only: bool,
        below: int | None,
        seqs: SeqRange | None = None,
        votes_apart: bool | Literal["spans"] = False,
    ) -> tuple[str, str, list[Any], bool]:
        """FROM ... WHERE ... for papers meeting ``expr``: (sql, key column, params, joined).
        ``seqs``: the seqs outside it need not be looked at (``seq_range``). ``votes_apart``
        (PostgreSQL): upvote conditions are tested on ``search_votes``, and the papers table
        is joined only for the others (the caller reads the upvotes from ``search_votes``).
        A papers row is wide (its texts): testing a match's upvotes there cost about 7 µs a
        match, on the narrow votes table about 1."""
        m = self._mark
        where: list[str] = []
        params: list[Any] = []
        by_votes: list[SqlCondition] = []
        if votes_apart and self.postgres:
            by_votes = [c for c in conditions if isinstance(c.node, Upvotes)]
            conditions = [c for c in conditions if not isinstance(c.node, Upvotes)]
        joined = bool(conditions) or announced_only or expr == TRUE
        # The table read as ``p``: the papers, or on SQLite, when ``upvotes`` is all the
        # conditions ask, ``search_votes`` (the same ``seq`` and ``upvotes`` columns).
        table, join = self._conditions_table(expr, conditions, announced_only)
        if expr == TRUE:
            sql = f"FROM {table} p"
            key = "p.seq"
        else:
            index = PG_TABLE if self.postgres else FTS_TABLE
            key_column = "seq" if self.postgres else "rowid"
            sql = f"FROM {index} f" + (
                f" {join} {table} p ON p.seq = f.{key_column}" if joined else ""
            )
            key = f"f.{key_column}"
            condition, param = self._match(expr, "f")
            where.append(condition)
            params.append(param)
        for cond in conditions:
            test, values = _condition_sql(cond, m, self.postgres)
            where.append(test)
            params += values
        for cond in by_votes:
            node = cond.node
            assert isinstance(node, Upvotes)
            # search_votes holds the papers with upvotes (IS NOT NULL), as _condition_sql asks.
            if votes_apart == "spans" and not cond.negated:
                # ``window`` puts each span's seq range at the marker: the span's papers with
                # those upvotes, hashed (see there). On ``seq + 0``: never a walk of the
                # primary key from each voted paper, testing its doc. ``OFFSET 0`` keeps the
                # subquery a unit of its own: the window's generic plan (``search_settings``)
                # guesses 25 rows for any word, and with the subquery merged into a semi-join
                # it probed the votes' primary key once per match (a common word's 3,500
                # matches in a span: 5 ms of 8) instead of hashing the span's voted papers.
                test = (
                    f"{key} + 0 IN (SELECT sv.seq FROM search_votes sv"
                    f" WHERE sv.upvotes {node.op} {m}{VOTES_SPAN} OFFSET 0)"
                )
            else:
                test = (
                    f"EXISTS (SELECT 1 FROM search_votes sv WHERE sv.seq = {key}"
                    f" AND sv.upvotes {node.op} {m})"
                )
            where.append(f"NOT {test}" if cond.negated else test)
            params.append(node.value)
        if announced_only:
            where.append("p.announced")
        if below is not None:
            where.append(f"{key} < {m}")
            params.append(below)
        if seqs is not None:
            # On PostgreSQL on ``seq + 0``: never a walk of the primary key over the range,
            # testing each doc (``_seq_range``); the index on listed_on, or GIN, finds them.
            where.append(f"{key}{' + 0' if self.postgres else ''} BETWEEN {m} AND {m}")
            params += [seqs[0], seqs[1]]
        if where:
            sql += " WHERE " + " AND ".join(where)
        return sql, key, params, joined

    def _conditions_table(
        self, expr: Expr, conditions: Sequence[SqlCondition], announced_only: bool
    ) -> tuple[str, str]:
        """The table the conditions are tested on and how it is joined to the index.

        ``upvotes>=5 model`` tested each match of ``model`` on its row of the wide papers
        table, newest first, until 100 had the votes (some 2,000 rows for a word in a fifth of
        the papers, when one in twenty has 5 votes or more), then as many again to count: at
        1,000,000 papers the slowest kind of search. ``search_votes`` holds the same seq and
        upvotes for every paper that has upvotes (``Store.add_papers`` keeps both), a few
        bytes a row in a table small enough to stay in the cache: the same walk costs about
        a seventh. A paper missing from it has no upvotes, which an ``upvotes`` condition
        fails and its exclusion passes (hence the LEFT JOIN for one). PostgreSQL's plans are
        left as they were."""
        votes_only = (
            not self.postgres
            and not announced_only
            and bool(conditions)
            and all(isinstance(cond.node, Upvotes) for cond in conditions)
        )
        if not votes_only:
            return "papers", "JOIN"
        negated = any(cond.negated for cond in conditions)
        if expr == TRUE and negated:
            return "papers", "JOIN"  # the papers without upvotes are matches too
        return "search_votes", "LEFT JOIN" if negated else "JOIN"

    def candidates(
        self,
        conn: Connection,
        expr: Expr,
        *,
        conditions: Sequence[SqlCondition] = (),
        announced_only: bool = False,
        limit: int,
        offset: int = 0,
        below: int | None = None,
        seqs: SeqRange | None = None,
    ) -> list[tuple[int, int | None]]:
        """(seq, upvotes) of papers meeting ``expr`` and the conditions, newest first.

        ``expr`` TRUE reads the papers table alone. Upvotes come back only when the papers
        table was joined (conditions or ``announced_only``), else None (see ``upvotes``).
        """
        if expr == FALSE or limit <= 0 or (seqs is not None and seqs[0] > seqs[1]):
            return []
        sql, key, params, joined = self._select(expr, conditions, announced_only, below, seqs)
        upvotes = "p.upvotes" if joined else "NULL"
        sql = f"SELECT {key}, {upvotes} {sql} ORDER BY {key} DESC LIMIT {int(limit)}"
        if offset:
            sql += f" OFFSET {int(offset)}"
        return [(int(r[0]), r[1]) for r in _query(conn, sql, params)]

    def window(
        self,
        conn: Connection,
        expr: Expr,
        *,
        conditions: Sequence[SqlCondition] = (),
        announced_only: bool = False,
        limit: int,
        offset: int = 0,
        flags: Sequence[Expr] = (),
        count_cap: int = 0,
        seqs: SeqRange | None = None,
    ) -> Window:
        """PostgreSQL: a window of ``candidates`` with what ranking and the total ask of it,
        in one statement (one round trip instead of four).

        For each row: its seq, its upvotes (``search_votes``, joined after the window is cut)
        and whether its doc meets each of ``flags`` (the ranking's title tests, answered on
        the rows of the window only). When the window is full: how many matches follow it,
        up to ``count_cap``; else None.

        How the newest matches are found (the plan, and why). A GIN index answers "which rows
        hold this word" in no useful order: the newest 100 of a word in 30% of a million
        papers would be 300,000 rows read and sorted; a walk of the primary key from the
        newest seq down instead fetches and tests each doc from the TOAST table (about 15 µs
        a row), and for a word in 2% of the papers that is thousands of rows. So each doc
        also holds the lexeme of its seq's bucket (``SEQ_BUCKET`` seqs, ``with_seq_bucket``),
        and the matches are asked for span by span, newest first (``SEQ_SPANS``): the newest
        bucket, the one before it, the two before those, then 4, 8, 16, 32 and 64, then the
        rest of the store. Each span is one GIN lookup of ``doc @@ query AND doc @@ (bucket | bucket
        …)``, sorted; the spans are read one after the other under one LIMIT, so a span is
        read only if the ones before it held too few matches, and as each is as large as all
        before it, no more than about twice the rows needed are read. A word in no paper
        costs one index probe a span. Where the statistics say the rows needed lie past the
        first spans, those are one probe (``_spans``); a query they call rare is one lookup
        of the whole store (``_rare``).

        Two conditions, two GIN scan keys: GIN leapfrogs between them, each key skipping
        through its posting trees to the other's next row, so a span costs about what the
        query's rows in it cost, whatever the span's size. Asked as one tsquery
        (``query && buckets``), GIN instead stepped through every row of the span's buckets
        (its "required" entries, the posting lists shorter than the words'), about 0.1 to
        0.3 µs a paper covered whatever the word: at 200,000 papers, ``(dataset | data &
        set) & filter`` over a span of 16 buckets took 24.6 ms of index scan as one tsquery
        and 1.1 ms as two conditions; ``filter`` over 16 buckets 10.2 and 1.0 ms; ``model``
        in the newest bucket 0.38 and 0.29 ms. A phrase, or a word asked of one field, whose rows must be tested
        against the doc, tests the rows of the spans it reads, not every row with its
        words. The last span is the plain lookup below the others (planned alone). The
        window, its upvotes, its flags and the count after it (the same spans read on, up
        to the cap) come in one statement; upvote conditions are tested on ``search_votes``
        (``votes_apart``).
        """
        if expr in (TRUE, FALSE) or limit <= 0:
            raise ValueError("window() is for an index expression and a positive limit")
        if seqs is not None and seqs[0] > seqs[1]:
            return Window(rows=[], flags={}, following=None)
        expr, conditions, stepped = _votes_in_doc(expr, conditions)
        rare = self._rare(conn, expr)
        # A test of upvotes left after a step (``upvotes>=7`` on the papers with 5 or more) is
        # a probe per match: the step leaves few matches to probe.
        votes_apart: bool | Literal["spans"] = True if rare or stepped else "spans"
        sql, key, params, _ = self._select(
            expr, conditions, announced_only, None, seqs, votes_apart=votes_apart
        )
        match, _param = self._match(expr, "f")
        if sql.count(match) != 1:
            raise AssertionError("the match condition is expected once in the window's SQL")
        # TRUE and FALSE (an exact phrase's title test) are constants, as in ``in_range``.
        # A flag the query itself implies (``title:word``'s title test is the query) holds
        # for every row of the window: a constant, not a test of each row's doc or a lookup.
        tests = [self._flag_test(TRUE if _implies(expr, flag) else flag) for flag in flags]
        spans: list[str] = []
        limits: list[str] = []  # each span's bounds on a row ``g`` of the index (see below)
        # A query the statistics call rare (``_rare``) has few matches in the whole store:
        # one lookup of them all is cheaper than a probe a span (a word in no paper: one).
        # Its upvote conditions are probed match by match (few matches).
        #
        # Upvote conditions on span reads: the span's papers with those upvotes, from an
        # index range of ``search_votes`` (a few bytes a row, read in order), hashed and
        # probed by each match. Probing ``search_votes`` once per match instead cost about
        # 1.5 µs a match: ``upvotes>=5 word`` must read some 20 matches of the word for each
        # one with the votes (at 200,000 papers, 14,000 buffers and 22 ms for 201 matches).
        wanted_rows = int(offset) + int(limit) + max(int(count_cap), 0)
        spans_read = () if rare else self._spans(conn, expr, wanted_rows)
        for first, last in spans_read:
            buckets = (
                f"(SELECT string_agg('''{SEQ_BUCKET_PREFIX}' || (t.b - k) || '''', ' | ')"
                f" FROM top t, generate_series({first}, {last}) AS k)"
            )
            # Two conditions, not one tsquery ``query && buckets``: see the docstring.
            in_span = (
                f"f.doc @@ CAST({self._mark} AS tsquery) AND f.doc @@ CAST({buckets} AS tsquery)"
            )
            votes = (
                f" AND sv.seq >= (SELECT (t.b - {last}) * {SEQ_BUCKET} FROM top t)"
                f" AND sv.seq < (SELECT (t.b - {first} + 1) * {SEQ_BUCKET} FROM top t)"
            )
            spans.append(sql.replace(match, in_span, 1).replace(VOTES_SPAN, votes))
            limits.append(f" AND g.doc @@ CAST({buckets} AS tsquery)")
        if spans:
            below = f"(SELECT (t.b - {spans_read[-1][1]}) * {SEQ_BUCKET} FROM top t)"
            rest = sql.replace(match, f"{match} AND {key} < {below}", 1)
            spans.append(rest.replace(VOTES_SPAN, f" AND sv.seq < {below}"))
            limits.append(f" AND g.seq < {below}")
        else:
            spans.append(sql)
            limits.append("")
        # Each span sorted, and read in turn (an Append runs its parts in order; searches run
        # without parallel workers, ``search_settings``), so ``found`` is newest first. Sorted
        # on ``seq + 0``, which the primary key cannot hand over in order: the planner, blind
        # to what a doc costs to fetch from TOAST, otherwise walks the primary key testing
        # each doc (a title word in 0.3% of a million papers: 1.1 s instead of 27 ms).
        #
        # A query GIN cannot answer alone (a phrase, a word in some fields: ``_rechecked``) had
        # every candidate row of each span read tested against its doc, fetched from TOAST and
        # decompressed (7 µs to 25 µs a row), before the span was sorted: all of them, though
        # the LIMIT takes only the newest. A query whose matches are few among its candidates
        # tested every candidate in the store (``timesteps sequentially``, widened to
        # ``timestep | time <-> step``: every paper with time, step and sequentially, about
        # 5,000 docs at 1,000,000 papers, ran past the search's budget). Such a query's spans
        # now ask GIN for ``unpositioned(expr)`` (the same words without positions or weights:
        # no doc read), sort those candidates, and test them against the doc newest first, in
        # a subquery above the sort (``OFFSET 0`` keeps the test from being pushed below it),
        # so the LIMIT stops the testing at the last match it needs. A candidate that meets
        # ``gin_exact_subset(expr)`` (``timestep & sequentiali``: no phrase, no weight) is a
        # match without its doc: the span's rows meeting it come from one more GIN lookup,
        # hashed, and only the others are tested.
        rechecked = _rechecked(_param)
        loose = unpositioned(expr) if rechecked else expr
        if loose in (TRUE, FALSE):
            rechecked = False
        if rechecked:
            if params[0] != _param:
                raise AssertionError("the match is expected as the window SQL's first parameter")
            m = self._mark
            sure = gin_exact_subset(expr)
            # The doc goes through the sort as its TOAST pointer, read only when tested.
            test = f"c.doc @@ CAST({m} AS tsquery)"
            tests_sql = [test] * len(spans)
            span_values_of = [[to_tsquery(loose), *params[1:], _param]] * len(spans)
            if sure not in (TRUE, FALSE):
                tests_sql = [
                    f"(c.seq IN (SELECT g.seq FROM {PG_TABLE} g WHERE g.doc @@ CAST({m} AS tsquery)"
                    f"{bounds}) OR {test})"
                    for bounds in limits
                ]
                span_values_of = [[to_tsquery(loose), *params[1:], to_tsquery(sure), _param]]
                span_values_of *= len(spans)
            reads = " UNION ALL ".join(
                f"(SELECT c.seq FROM (SELECT {key} AS seq, f.doc {span}"
                f" ORDER BY {key} + 0 DESC OFFSET 0) AS c WHERE {doc_test})"
                for span, doc_test in zip(spans, tests_sql, strict=True)
            )
            span_values = span_values_of[0]
        else:
            reads = " UNION ALL ".join(
                f"(SELECT {key} AS seq {span} ORDER BY {key} + 0 DESC)" for span in spans
            )
            span_values = params
        cap = max(int(count_cap), 0)
        wanted = int(offset) + int(limit)
        # The flags are tested on the window's rows only, each the cheaper of two ways
        # (``_flag_buckets``): a GIN lookup of ``flag & (the window's buckets)``, hashed, whose
        # cost is the flag's candidates in those buckets; or a test of each window row's doc,
        # fetched from TOAST (``limit`` docs). Which is cheaper depends on how many buckets the
        # window's rows span, known only when the statement runs: a CASE on it.
        # A row's doc is read in a subquery, only by the rows that test it (a join would probe
        # the primary key for every row of the window, tested or not).
        m = self._mark
        flag_columns = ""
        flag_values: list[Any] = []
        for flag, (test, param) in zip(flags, tests, strict=True):
            if not param:
                flag_columns += f", {test}"
                continue
            test = f"(SELECT {test} FROM {PG_TABLE} d WHERE d.seq = h.seq)"
            # A flag GIN cannot answer alone (a phrase: ``_rechecked``) is looked up without
            # its positions (``unpositioned``: no doc read for the candidates in the buckets),
            # and only the window's rows among those candidates test their doc: the title test
            # of the phrase "time step" had each of the window's 100 docs tested, or every
            # title holding a word of it in the window's buckets.
            loose = unpositioned(flag) if _rechecked(param) else flag
            loose_param = param if loose in (TRUE, FALSE) else to_tsquery(loose)
            most = self._flag_buckets(conn, loose, loose_param, int(limit))
            if most <= 0:
                flag_columns += f", {test}"
                flag_values.append(param)
                continue
            in_buckets = (
                f"h.seq IN (SELECT g.seq FROM {PG_TABLE} g WHERE g.doc @@ CAST({m} AS tsquery)"
                f" AND g.doc @@ CAST((SELECT string_agg('''{SEQ_BUCKET_PREFIX}' || k || '''', ' | ')"
                " FROM hit_buckets, generate_series(hit_buckets.low, hit_buckets.high) AS k)"
                " AS tsquery))"
            )
            values = [most, param, param]
            if loose_param != param:
                in_buckets = f"CASE WHEN {in_buckets} THEN {test} ELSE FALSE END"
                values = [most, loose_param, param, param]
            # The bound a parameter: one prepared statement serves every word.
            flag_columns += (
                f", CASE WHEN (SELECT high - low FROM hit_buckets) < CAST({m} AS integer)"
                f" THEN {in_buckets} ELSE {test} END"
            )
            flag_values += values
        # The spans count back from the newest paper, or from the newest seq of the query's
        # listing days (``seq_range``): ``word date:2020-03`` reads from there, not from today.
        newest, newest_from = "SELECT max(seq)", f" FROM {PG_TABLE}"
        if seqs is not None:
            newest, newest_from = f"SELECT {int(seqs[1])}", ""
        statement = (
            f"WITH top AS MATERIALIZED ({newest} / {SEQ_BUCKET} AS b{newest_from}),"
            f" found AS MATERIALIZED (SELECT seq FROM ({reads}) AS spans LIMIT {wanted + cap}),"
            f" hits AS MATERIALIZED (SELECT seq FROM found ORDER BY seq DESC"
            f" LIMIT {int(limit)} OFFSET {int(offset)}),"
            f" hit_buckets AS MATERIALIZED (SELECT min(seq) / {SEQ_BUCKET} AS low,"
            f" max(seq) / {SEQ_BUCKET} AS high FROM hits) "
            f"SELECT h.seq, v.upvotes, CASE WHEN (SELECT count(*) FROM hits) = {int(limit)}"
            f" THEN (SELECT count(*) FROM found) - {wanted} END{flag_columns} FROM hits h"
            " LEFT JOIN search_votes v ON v.seq = h.seq ORDER BY h.seq DESC"
        )
        values = span_values * len(spans) + flag_values
        rows = _query(conn, statement, values, prepare=True)
        return Window(
            rows=[(int(row[0]), row[1]) for row in rows],
            flags={int(row[0]): tuple(bool(x) for x in row[3:]) for row in rows},
            following=None if not rows or rows[0][2] is None else int(rows[0][2]),
        )

    def _statistics(self, conn: Connection) -> tuple[dict[str, float], float, float] | None:
        """The doc column's most common lexemes and their shares of the papers, the least of
        those shares, and the papers counted (PostgreSQL's statistics, ``ANALYZE``; 10,000
        lexemes, ``_keep_docs_apart``; read again every ``COMMON_TTL`` seconds). None without
        statistics that reach below ``RARE_SHARE``."""
        now = time.monotonic()
        if self._common is None or now - self._common[0] > COMMON_TTL:
            rows = _query(
                conn,
                "SELECT most_common_elems::text,"
                " most_common_elem_freqs[1:array_length(most_common_elems, 1)]::text,"
                f" (SELECT reltuples FROM pg_class WHERE oid = CAST('{PG_TABLE}' AS regclass))"
                " FROM pg_stats WHERE schemaname = current_schema()"
                f" AND tablename = '{PG_TABLE}' AND attname = 'doc'",
            )
            freqs: dict[str, float] | None = None
            least = papers = 0.0
            if rows and rows[0][0] and rows[0][1]:
                lexemes = _pg_array(rows[0][0])
                shares = [float(x) for x in rows[0][1].strip("{}").split(",")]
                if len(lexemes) == len(shares) and min(shares) <= RARE_SHARE:
                    freqs = dict(zip(lexemes, shares, strict=True))
                    least = min(shares)  # once here: 10,000 shares, 50 µs a search otherwise
                    papers = max(float(rows[0][2] or 0.0), 0.0)
            self._common = (now, freqs, least, papers)
        _, freqs, least, papers = self._common
        return (freqs, least, papers) if freqs else None

    def _estimate(self, conn: Connection, expr: Expr) -> float | None:
        """The estimated share of papers meeting ``expr`` (``_share``: erring high), or None
        without statistics. A lexeme outside the most common ones is taken as common as the
        least common of them (at 100,000 papers 0.25%)."""
        known = self._statistics(conn)
        return None if known is None else _share(expr, known[0], known[1])

    def _rare(self, conn: Connection, expr: Expr) -> bool:
        """Whether ``expr``'s matches are estimated below ``RARE_SHARE`` of the papers
        (``_estimate``), and those its listed lexemes account for below ``RARE_ROWS`` papers:
        such a query is read in one lookup. Without statistics, nothing is rare.

        The one lookup reads every match in the store, each from its own page of the table
        (a rare word's rows lie far apart), where the spans read about twice the rows the
        window needs (201 for a page and its count) for a GIN probe a span: at 1,000,000
        papers a word in 0.3% of them is 3,000 rows read in one lookup, and about 400 in
        six spans. A lexeme the statistics do not list is counted as absent here: its share
        is unknown below the least listed one (at 1,000,000 papers about 2,400 rows), and a
        word in no paper costs one probe in one lookup, where the spans probe nine times.
        Only a single word is judged by its rows: the estimate of words together multiplies
        their shares by ``AND_CORRELATION`` (erring high), and two fairly rare words read in
        spans (their rows below the estimate) were read through every span (at 1,000,000
        papers, ``awareness retaining``'s window 4.6 ms in one lookup, 25 ms in spans)."""
        known = self._statistics(conn)
        if known is None:
            return False
        freqs, least, papers = known
        if _share(expr, freqs, least) >= RARE_SHARE:
            return False
        if expr[0] != "term":
            return True  # a combination's estimate errs high (``_share``): its rows may be few
        return _share(expr, freqs, 0.0) * papers < RARE_ROWS

    def _spans(self, conn: Connection, expr: Expr, rows: int) -> tuple[tuple[int, int], ...]:
        """``SEQ_SPANS``, the first ones read as one when the statistics say the matches
        ``window`` needs (``rows``) lie past them all: each span is a GIN probe of its own
        (about 0.1 ms at 1,000,000 papers, whatever it finds), and a word in 0.5% of the
        papers (20 a bucket) needs 10 buckets for a page and its count, five probes of the
        spans 0, 1, 2-3, 4-7 and 8-15, where buckets 0-7 read as one and 8-15 are two. The
        same rows are read: only spans that would all be read are joined. The estimate errs
        high (``_share``), so the buckets needed err low."""
        share = self._estimate(conn, expr)
        if share is None or share <= 0.0:
            return SEQ_SPANS
        needed = rows / (share * SEQ_BUCKET)  # buckets holding ``rows`` matches
        joined = sum(1 for _, last in SEQ_SPANS if last + 1 <= needed)
        if joined <= 1:
            return SEQ_SPANS
        return ((0, SEQ_SPANS[joined - 1][1]), *SEQ_SPANS[joined:])

    def _flag_buckets(self, conn: Connection, flag: Expr, tsquery: str, rows: int) -> int:
        """Up to how many buckets a window's rows may span for ``flag`` to be looked up in GIN
        over those buckets rather than tested on each row's doc (``window``); 0: always on
        the docs.

        A doc test costs a fetch from TOAST and a decompression per row (``rows`` of them).
        The GIN lookup costs the flag's candidates in the buckets: about ``GIN_ROW_COST`` of
        a doc test each (a narrow row read and hashed), or a whole doc test each when GIN
        cannot answer alone (a phrase, a weight: each candidate's doc is tested, and its
        candidates are every row with all its words). At 200,000 papers a coverage test of a
        word in 16% of the papers over a window of six buckets read 3,869 rows (6 ms), of
        the phrase "data set" 1,420 docs (31 ms), where the window's 100 docs cost about
        1.5 ms. ``window`` asks this of a phrase's ``unpositioned`` form (GIN alone), and
        tests only the window's rows among its candidates. Without statistics:
        ``FLAG_BUCKETS``, whatever the flag."""
        share = self._estimate(conn, flag)
        if share is None:
            return FLAG_BUCKETS
        per_row = 1.0 if _rechecked(tsquery) else GIN_ROW_COST
        cost_per_bucket = share * SEQ_BUCKET * per_row
        if cost_per_bucket * MAX_FLAG_BUCKETS <= rows:
            return MAX_FLAG_BUCKETS
        return int(rows / cost_per_bucket)

    def _flag_test(self, flag: Expr) -> tuple[str, str]:
        """SQL testing the doc ``d`` for ``flag`` and its parameter ("" for a constant)."""
        if flag in (TRUE, FALSE):
            return ("TRUE" if flag == TRUE else "FALSE"), ""
        return self._match(flag, "d")

    def count(
        self,
        conn: Connection,
        expr: Expr,
        *,
        conditions: Sequence[SqlCondition] = (),
        announced_only: bool = False,
        cap: int,
        below: int | None = None,
        seqs: SeqRange | None = None,
    ) -> int:
        """How many papers meet ``expr`` and the conditions (with seq < ``below``), counting at
        most ``cap``."""
        if expr == FALSE or cap <= 0 or (seqs is not None and seqs[0] > seqs[1]):
            return 0
        if self.postgres and expr != TRUE and below is None:
            # GIN hands over a word's rows in no useful order, so a capped count of a common
            # word built its whole bitmap first (``model`` at 1,000,000 papers: 44-49 ms for
            # 201). The window's spans read newest first and stop at the cap instead: the
            # newest match, then up to ``cap - 1`` after it.
            window = self.window(
                conn,
                expr,
                conditions=conditions,
                announced_only=announced_only,
                limit=1,
                count_cap=cap - 1,
                seqs=seqs,
            )
            return len(window.rows) + (window.following or 0)
        sql, key, params, _ = self._select(expr, conditions, announced_only, below, seqs)
        sql = f"SELECT count(*) FROM (SELECT {key} {sql} LIMIT {int(cap)}) AS hits"
        return int(_query(conn, sql, params)[0][0])

    def seq_range(self, conn: Connection, conditions: Sequence[SqlCondition]) -> SeqRange | None:
        """Bounds on the seqs of the papers listed in the conditions' day ranges, or None when
        they cannot narrow the search. An empty range (low > high): no paper.

        Search reads matches newest stored first, and a ``date`` condition is tested on each
        match: ``word date:2020-03`` in a store that ends years later would walk every newer
        match of the word first, a cost growing with the store. The seqs of the days in the
        range bound that walk (and the count) to where those papers are (on PostgreSQL a
        search answered "too broad" for ``word date:2020-03`` at 1,000,000 papers, and for
        ``date:2020-02-16`` alone). They come from the index on listed_on
        (``_listing_day_seqs``) one listing day at a time, three index seeks a day (its first
        and last seq, the next day): exact whatever order papers were stored in (a backfill
        stores old days last), and cheap for the ranges people write, a day or a month. A
        range of more than ``MAX_RANGE_DAYS`` listed days bounds only the newest seq, when it
        has an end (``word date<2022-01-01`` in the middle of the store), for up to
        ``MAX_TOP_DAYS`` listed days; a range without an end is left unbounded (its walk is
        short: the range holds the newest papers, ``date>=2024``).
        """
        low, high = None, None
        for cond in conditions:
            node = cond.node
            if cond.negated or not isinstance(node, ListedOn):
                continue
            bounds = _day_seqs(conn, node, self.postgres)
            if bounds is None:
                continue
            low = bounds[0] if low is None else max(low, bounds[0])
            high = bounds[1] if high is None else min(high, bounds[1])
        return None if low is None or high is None else (low, high)

    # -- listing order (bridge.search_newest: feeds list matches newest listing day first) --

    def latest_listing_day(self, conn: Connection, before: date | None = None) -> date | None:
        """The newest listing day (before ``before``): one index lookup, so a walk over the
        days jumps over empty stretches of the calendar at once."""
        sql = "SELECT max(listed_on) FROM papers"
        params: list[Any] = []
        if before is not None:
            sql += f" WHERE listed_on < {self._mark}"
            params.append(before.isoformat())
        return _day(_query(conn, sql, params)[0][0])

    def listing_seqs(self, conn: Connection, first: date, last: date) -> tuple[int, int] | None:
        """The ``seq`` range holding the papers listed from ``first`` to ``last``."""
        return _listing_day_seqs(conn, first, last, self.postgres)

    def _seq_range(self, expr: Expr, key: str, alias: str, seqs: SeqRange) -> tuple[str, list[Any]]:
        """The SQL keeping the rows of ``alias`` (key ``key``) that meet ``expr`` to those
        whose seq is in the range, and its parameters: the key's own range on SQLite (FTS5
        reads a rowid range), for the papers table (``expr`` TRUE), and where nothing below
        narrows it.

        The planner, blind to what a doc costs to fetch from TOAST (``_keep_docs_apart``),
        read a range of a few thousand seqs by walking the primary key and testing each doc
        (a feed's day of papers for ``title:diffusion`` at 1,000,000 papers: 4,000 docs, 24 to
        44 ms, for 23 matches). The range's bucket lexemes (``SEQ_BUCKET``) are a second GIN
        condition instead, as in ``window``: GIN leapfrogs between the query's rows and the
        buckets' (0.2 to 0.5 ms there), and ``seq + 0`` keeps the primary key out of the plan.
        A query GIN cannot answer alone (a phrase, a word in one field: ``_rechecked``) would
        then test the doc of each of its candidates in the whole buckets: its candidates in
        the range come from GIN without positions (``unpositioned``), and only those rows test
        their doc. A range over more than ``MAX_FLAG_BUCKETS`` buckets is left to the key."""
        m = self._mark
        low, high = int(seqs[0]), int(seqs[1])
        plain = f"{key} BETWEEN {m} AND {m}", [low, high]
        if not self.postgres or expr == TRUE:
            return plain
        first, last = low // SEQ_BUCKET, high // SEQ_BUCKET
        if last - first >= MAX_FLAG_BUCKETS:
            return plain
        buckets = " | ".join(f"'{SEQ_BUCKET_PREFIX}{b}'" for b in range(first, last + 1))
        if not _rechecked(to_tsquery(expr)):
            test = f"{alias}.doc @@ CAST({m} AS tsquery) AND {key} + 0 BETWEEN {m} AND {m}"
            return test, [buckets, low, high]
        loose = unpositioned(expr)
        if loose in (TRUE, FALSE):
            return plain
        test = (
            f"{key} IN (SELECT g.seq FROM {PG_TABLE} g WHERE g.doc @@ CAST({m} AS tsquery)"
            f" AND g.doc @@ CAST({m} AS tsquery) AND g.seq + 0 BETWEEN {m} AND {m})"
        )
        return test, [to_tsquery(loose), buckets, low, high]

    def newest_listed(
        self,
        conn: Connection,
        expr: Expr,
        *,
        conditions: Sequence[SqlCondition] = (),
        days: tuple[date, date] | None = None,
        seqs: tuple[int, int] | None = None,
        after: tuple[date, int] | None = None,
        limit: int,
    ) -> list[tuple[date, int]]:
        """(listing day, seq) of listed papers meeting ``expr`` and the conditions, newest
        listing day first (then newest stored); listed within ``days``, stored within the
        ``seqs`` range, and after ``after`` in that order."""
        m = self._mark
        where = ["p.listed_on IS NOT NULL"]
        params: list[Any] = []
        if self.postgres and expr not in (TRUE, FALSE):
            # ``upvotes>=20 diffusion``: GIN finds ``diffusion & _sq_v20`` instead of each
            # match of the word joining its wide papers row to have its votes tested.
            expr, conditions, _ = _votes_in_doc(expr, conditions)
        if expr == TRUE:
            sql, key = "FROM papers p", "p.seq"
        else:
            table, column = (PG_TABLE, "seq") if self.postgres else (FTS_TABLE, "rowid")
            sql = f"FROM {table} f JOIN papers p ON p.seq = f.{column}"
            key = f"f.{column}"
            condition, param = self._match(expr, "f")
            where.append(condition)
            params.append(param)
        for cond in conditions:
            test, values = _condition_sql(cond, m, self.postgres)
            where.append(test)
            params += values
        if seqs is not None:
            # On the index's own key, so FTS5 and PostgreSQL read only that stretch.
            test, values = self._seq_range(expr, key, "f", seqs)
            where.append(test)
            params += values
        if days is not None:
            where.append(f"p.listed_on BETWEEN {m} AND {m}")
            params += [day.isoformat() for day in days]
        if after is not None:
            where.append(f"(p.listed_on < {m} OR (p.listed_on = {m} AND p.seq < {m}))")
            params += [after[0].isoformat(), after[0].isoformat(), after[1]]
        # Within one day the index's own order is the listing order: FTS5 then reads matches
        # newest first and stops at the limit, where a sort would read all of the day's.
        one_day = days is not None and days[0] == days[1]
        order = f"{key} DESC" if one_day else "p.listed_on DESC, p.seq DESC"
        sql = (
            f"SELECT p.listed_on, p.seq {sql} WHERE {' AND '.join(where)}"
            f" ORDER BY {order} LIMIT {int(limit)}"
        )
        return [(_day(day), int(seq)) for day, seq in _query(conn, sql, params)]  # type: ignore[misc]

    def in_range(
        self, conn: Connection, exprs: Sequence[Expr], low: int, high: int
    ) -> list[set[int]]:
        """For each expression, the seqs in [low, high] meeting it (one round trip)."""
        out = self._meeting(conn, exprs, (low, high))
        for number, expr in enumerate(exprs):
            if expr == TRUE:
                out[number] = set(range(low, high + 1))
        return out

    def among(self, conn: Connection, exprs: Sequence[Expr], seqs: Sequence[int]) -> list[set[int]]:
        """For each expression, which of ``seqs`` meet it (one round trip): a page's papers,
        however far apart they were stored."""
        listed = ",".join(str(int(seq)) for seq in seqs)  # whole numbers, written inline
        if not listed:
            out: list[set[int]] = [set() for _ in exprs]
        elif self.postgres:
            out = self._docs_meeting(conn, exprs, listed)
        else:
            out = self._meeting(conn, exprs, f"IN ({listed})")
        for number, expr in enumerate(exprs):
            if expr == TRUE:
                out[number] = set(seqs)
        return out

    def _docs_meeting(self, conn: Connection, exprs: Sequence[Expr], listed: str) -> list[set[int]]:
        """PostgreSQL: ``among``, each listed row's doc read once and tested for every
        expression. A page's "matched … in the abstract" asks one expression per word and
        field, and a word asked of one field is tested on the doc (its weight): one lookup
        per expression tested the doc of each of its word's candidates, a page of 50 papers
        of ``upvotes>=5 model`` some 900 docs (28 ms at 1,000,000 papers), where the page's
        own docs are 50. The subquery (``OFFSET 0``: not merged into the outer one) takes
        each doc out of TOAST once (``|| ''``), so every test reads it from memory."""
        tested = [(number, expr) for number, expr in enumerate(exprs) if expr not in (TRUE, FALSE)]
        out: list[set[int]] = [set() for _ in exprs]
        if not tested:
            return out
        m = self._mark
        columns = "".join(f", d @@ CAST({m} AS tsquery)" for _ in tested)
        sql = (
            f"SELECT seq{columns} FROM (SELECT seq, doc || CAST('' AS tsvector) AS d"
            f" FROM {PG_TABLE} WHERE seq IN ({listed}) OFFSET 0) AS page"
        )
        for row in _query(conn, sql, [to_tsquery(expr) for _, expr in tested]):
            for (number, _), holds in zip(tested, row[1:], strict=True):
                if holds:
                    out[number].add(int(row[0]))
        return out

    def _meeting(
        self, conn: Connection, exprs: Sequence[Expr], seqs: SeqRange | str
    ) -> list[set[int]]:
        """For each expression, the seqs meeting it among ``seqs``: a range, or an SQL test
        of the key (``IN (…)``)."""
        out: list[set[int]] = [set() for _ in exprs]
        selects: list[str] = []
        params: list[Any] = []
        table, key = (PG_TABLE, "seq") if self.postgres else (FTS_TABLE, "rowid")
        for number, expr in enumerate(exprs):
            if expr in (TRUE, FALSE):
                continue
            condition, param = self._match(expr, table)
            seq_params: list[Any] = []
            if isinstance(seqs, str):
                seq_test = f"{key} {seqs}"
            else:
                seq_test, seq_params = self._seq_range(expr, key, table, seqs)
            selects.append(f"SELECT {number}, {key} FROM {table} WHERE {condition} AND {seq_test}")
            params += [param, *seq_params]
        if selects:
            for number, seq in _query(conn, " UNION ALL ".join(selects), params):
                out[number].add(int(seq))
        return out

    def upvotes(self, conn: Connection, seqs: Sequence[int]) -> dict[int, int | None]:
        out: dict[int, int | None] = {}
        for start in range(0, len(seqs), 500):
            # Whole numbers only, written inline: far cheaper than an expanding parameter.
            listed = ",".join(str(int(seq)) for seq in seqs[start : start + 500])
            for seq, votes in _query(
                conn, f"SELECT seq, upvotes FROM search_votes WHERE seq IN ({listed})"
            ):
                out[int(seq)] = votes
        return out


def search_settings(milliseconds: int, session: bool = True) -> str:
    """The settings a search runs under on PostgreSQL, as one statement (it goes in one
    pipeline with the search's first statement, ``defer_setting``): the budget as
    ``statement_timeout``, no sequential scans, no parallel workers, and generic plans for
    prepared statements (``window``'s).

    ``session``: for the connection's session, not only the transaction. A search runs its
    statements in autocommit mode (``bridge.search``): no BEGIN, and no ROLLBACK round trip
    when the connection returns to the pool, and psycopg keeps the statements it prepared
    (a ROLLBACK makes it drop them all). The settings stay on the pooled connection: the next
    search on it sends none when they are the same, and the next checkout that is not a
    search resets them with its ping (``bridge.store.liveness``, ``SEARCH_SESSION``).

    Sequential scans are off because the planner cannot see what they cost here: the docs
    live in the TOAST table (``_keep_docs_apart``), so to the planner a scan of every row
    testing its doc costs a read of a few narrow pages, where it costs a fetch and a
    decompression of every doc (at 10,000 papers 146 ms for a word in no paper, against a
    GIN probe of 0.03 ms). ``SearchIndex.window`` asks GIN in any case (see there); the
    other statements of a search (``candidates``, ``count``: queries the index cannot answer
    exactly) are left to choose between GIN and a walk of the primary key. No parallel
    workers: a search is a few milliseconds of work (starting workers costs more on a shared
    machine), and ``window`` reads its spans in order.

    Generic plans: planning ``window``'s statement (spans, flags, upvotes: a dozen
    subqueries) cost 0.5 to 1 ms of server CPU, more than executing it for a word in few
    papers (0.05 ms). Its plan is fixed by its shape, not by the words asked (GIN lookups
    of each span and flag, sorted; the planner's estimate of a tsquery's matches moves no
    choice in it), so it is planned once per connection and shape. Only ``window`` prepares
    its statement; the others (``_query``'s ``prepare``) are planned for their values.
    """
    local = "false" if session else "true"
    values = (str(int(milliseconds)), "off", "0", "force_generic_plan")
    return "SELECT " + ", ".join(
        f"set_config('{name}', '{value}', {local})"
        for name, value in zip(SEARCH_SETTING_NAMES, values, strict=True)
    )


# How long the most common lexemes read from PostgreSQL's statistics are used (seconds).
COMMON_TTL = 300.0
# How long compound splits read from the store are used (seconds; the expansion table's
# ``TABLE_TTL``), and how many tokens' splits are kept at most.
SPLITS_TTL = 30.0
SPLITS_CACHED = 100_000
# A query is read in one lookup (``_rare``) only if its matches are surely below this share,
# and those its listed lexemes give below this many papers.
RARE_SHARE = 0.005
RARE_ROWS = 1000
# How much more often two words of a query meet than if they were independent (``_share``).
AND_CORRELATION = 10.0
_LEXEME = re.compile(r"'((?:[^']|'')*)'")


# A tsquery literal GIN cannot answer alone: a phrase (positions) or a weight (``'w':B``);
# the rows it returns are tested again on their docs.
_RECHECKED = re.compile(r"<(?:-|\d+)>|':\*?[A-D]")


def _rechecked(tsquery: str) -> bool:
    """Whether GIN's candidates for this tsquery literal are each tested on their doc."""
    return _RECHECKED.search(tsquery) is not None


def _pg_array(text: str) -> list[str]:
    """The elements of a one-dimensional text array's literal (our lexemes hold no quotes,
    commas, braces or backslashes: they are encoded, ``encode``)."""
    return [item.strip('"') for item in text.strip("{}").split(",") if item]


def _share(expr: Expr, freqs: dict[str, float], unlisted: float) -> float:
    """An estimate (erring high) of the share of papers meeting ``expr``: a lexeme's listed
    frequency (``unlisted`` if not listed); an alternative of lexemes or parts, their sum; a
    phrase, its rarest word's; parts that must all hold, the product of their shares times
    ``AND_CORRELATION`` (words that go together, "neural network", are far from independent),
    at most the rarest part's."""
    kind = expr[0]
    if kind == "term":
        lexemes = _LEXEME.findall(to_tsquery(expr))
        return min(1.0, sum(freqs.get(lexeme, unlisted) for lexeme in lexemes))
    if kind == "phrase":
        lexemes = _LEXEME.findall(to_tsquery(expr))
        return min(freqs.get(lexeme, unlisted) for lexeme in lexemes) if lexemes else 1.0
    if kind == "and":
        parts = [_share(part, freqs, unlisted) for part in expr[1]]
        product = AND_CORRELATION
        for part in parts:
            product *= part
        return min([product, *parts])
    if kind == "or":
        return min(1.0, sum(_share(part, freqs, unlisted) for part in expr[1]))
    if kind == "andnot":
        return _share(expr[1], freqs, unlisted)
    return 1.0  # a prefix, or anything else: read span by span


# conn.info key: a setting to run before the connection's next statement (``defer_setting``).
_DEFERRED = "paperbridge.deferred_setting"
# In a statement of session settings (``search_settings``): once it is sent, ``_query``
# notes the settings in conn.info (``SEARCH_SESSION``).
_SESSION_SETTING = "', false)"


def defer_setting(conn: Connection, sql: str) -> None:
    """Run ``sql`` (``search_settings``) on PostgreSQL just before the connection's next statement,
    sent with it: psycopg's pipeline mode sends BEGIN, the SET and the statement together and
    waits once, where each alone is a round trip. On a busy machine a round trip is mostly
    the wait for the server process to be scheduled (1.5 ms at load 18 on 2 cores), so a
    search's time on PostgreSQL grows with its number of round trips. ``_query`` sends it;
    a statement through SQLAlchemy runs it first (``run_deferred_setting``, an engine event).
    """
    conn.info[_DEFERRED] = sql


def drop_deferred_setting(conn: Connection) -> None:
    """Forget a setting not sent (conn.info outlives the checkout)."""
    conn.info.pop(_DEFERRED, None)


def run_deferred_setting(
    conn: Connection, cursor: Any, _statement: Any, _parameters: Any, _context: Any, _many: Any
) -> None:
    """SQLAlchemy's before_cursor_execute: the deferred setting, before the statement."""
    setting = conn.info.pop(_DEFERRED, None)
    if setting is not None:
        cursor.execute(setting)
        if _SESSION_SETTING in setting:
            conn.info[SEARCH_SESSION] = setting


def _query(
    conn: Connection, sql: str, params: Sequence[Any] = (), prepare: bool = False
) -> list[Any]:
    """A read on the connection's own DBAPI cursor.

    Search runs a handful of small queries per request, and SQLAlchemy's execution and result
    machinery costs several times what SQLite spends answering them. DBAPI errors are turned
    into StoreError by the caller (``bridge.search``). ``prepare`` (PostgreSQL): as a prepared
    statement, planned once (``search_settings``); otherwise never prepared, so planned for
    its values each time.
    """
    setting = conn.info.pop(_DEFERRED, None)
    cursor = conn.connection.cursor()
    try:
        if setting is None:
            if prepare:
                cursor.execute(sql, tuple(params), prepare=True)  # type: ignore[call-arg]
            elif conn.dialect.name == "postgresql":
                cursor.execute(sql, tuple(params), prepare=False)  # type: ignore[call-arg]
            else:
                cursor.execute(sql, tuple(params))
            return list(cursor.fetchall())
        # Fetched once the pipeline is done: fetching inside it costs a round trip of its own
        # before the one that ends it.
        with conn.connection.dbapi_connection.pipeline():  # type: ignore[union-attr]
            cursor.execute(setting)
            cursor.execute(sql, tuple(params), prepare=prepare)  # type: ignore[call-arg]
        if _SESSION_SETTING in setting:
            conn.info[SEARCH_SESSION] = setting
        return list(cursor.fetchall())
    finally:
        cursor.close()


# A listing-day range of more listed days than this is not bounded by ``seq_range``: the skip
# scan took about 5 microseconds a day on a loaded 2-core machine, so some 2 ms at most.
MAX_RANGE_DAYS = 500
# ...but for its newest seq, when the range ends before the newest papers, up to this many
# listed days: some 2 microseconds a day (two seeks), where ``word date<X`` over 1,000 listed
# days of 1,000,000 papers, unbounded, walked the word's 100,000 newer matches one papers row
# each (about 50 ms).
MAX_TOP_DAYS = 5000


def _day_mark(postgres: bool) -> str:
    """The parameter of a listing day: ISO text, how SQLite stores a Date column and what
    PostgreSQL casts."""
    return "CAST(%s AS DATE)" if postgres else "?"


def _day_seqs(conn: Connection, node: ListedOn, postgres: bool = False) -> SeqRange | None:
    """(first, last) seq over the listing days in ``node``'s range, one day at a time through
    the index on ``listed_on`` (``_listing_day_seqs``); (1, 0) when no paper is listed then.
    A range of more than ``MAX_RANGE_DAYS`` listed days: (0, last) when it has an end and at
    most ``MAX_TOP_DAYS`` listed days, else None."""
    day = _day_mark(postgres)
    tests, params = ["listed_on IS NOT NULL"], []
    if node.since is not None:
        tests.append(f"listed_on >= {day}")
        params.append(node.since.isoformat())
    if node.before is not None:
        tests.append(f"listed_on < {day}")
        params.append(node.before.isoformat())
    # The days in the range newest first, each found by one seek from the day after (a skip
    # scan: the index holds (listed_on, seq), so each day's first and last seq are seeks too).
    # A day's first seq is sought only among the first MAX_RANGE_DAYS days (CASE evaluates
    # it lazily): past them only the last seq is used. The recursion stops on its counter
    # ``n``, not a LIMIT, which PostgreSQL refuses in a recursive query.
    in_range = " AND ".join(tests)
    most = MAX_TOP_DAYS if node.before is not None else MAX_RANGE_DAYS
    sql = (
        "WITH RECURSIVE day(d, n) AS ("
        f"SELECT (SELECT max(listed_on) FROM papers WHERE {in_range}), 1 "
        "UNION ALL "
        f"SELECT (SELECT max(listed_on) FROM papers WHERE listed_on < d AND {in_range}), n + 1 "
        f"FROM day WHERE d IS NOT NULL AND n <= {max(most, MAX_RANGE_DAYS) + 1}) "
        f"SELECT count(d), min(CASE WHEN n <= {MAX_RANGE_DAYS} THEN "
        "(SELECT min(seq) FROM papers WHERE listed_on = d) END), "
        "max((SELECT max(seq) FROM papers WHERE listed_on = d)) FROM day WHERE d IS NOT NULL"
    )
    # Prepared on PostgreSQL: planning the recursion cost about 1 ms, as much as its seeks
    # for a month of days (its plan is the same seeks whatever the days).
    days, first, last = _query(conn, sql, params + params, prepare=postgres)[0]
    if not days:
        return (1, 0)
    if days <= MAX_RANGE_DAYS:
        return (int(first), int(last))
    if days <= most:
        return (0, int(last))  # seqs start at 1: the newest seq alone bounds the walk
    return None


def _listing_day_seqs(
    conn: Connection, first: date, last: date, postgres: bool = False
) -> SeqRange | None:
    """(first, last) seq of the papers listed from ``first`` to ``last``, found one listing
    day at a time as ``_day_seqs`` finds them: three index seeks a day, where ``min(seq),
    max(seq) ... BETWEEN`` read every paper's entry of the days (SQLite: a feed's walk over
    31 days of 1,000 papers each, 2.8 of its 10 ms of CPU at 1,000,000 papers; PostgreSQL
    planned it as a walk of the primary key from the oldest paper, 0.9-1.7 s). The seeks use
    the index on listed_on, which holds seq on SQLite (the rowid) and by its second column on
    PostgreSQL (``ix_papers_listed_on_seq``)."""
    day = _day_mark(postgres)
    sql = (
        "WITH RECURSIVE day(d) AS ("
        f"SELECT (SELECT max(listed_on) FROM papers WHERE listed_on BETWEEN {day} AND {day}) "
        "UNION ALL "
        "SELECT (SELECT max(listed_on) FROM papers"
        f" WHERE listed_on < d AND listed_on >= {day}) "
        "FROM day WHERE d IS NOT NULL) "
        "SELECT min((SELECT min(seq) FROM papers WHERE listed_on = d)), "
        "max((SELECT max(seq) FROM papers WHERE listed_on = d)) FROM day WHERE d IS NOT NULL"
    )
    days = [first.isoformat(), last.isoformat(), first.isoformat()]
    low, high = _query(conn, sql, days, prepare=postgres)[0]  # prepared: as in ``_day_seqs``
    return None if low is None else (int(low), int(high))


def _votes_in_doc(
    expr: Expr, conditions: Sequence[SqlCondition]
) -> tuple[Expr, list[SqlCondition], bool]:
    """PostgreSQL (``window``, ``newest_listed``): ``expr`` with the upvote step (VOTE_PREFIX)
    each lower bound on the votes reaches ANDed in, the conditions less those a step answers
    exactly, and whether a step was added. ``upvotes>=5 model`` is then the GIN lookup
    ``model & _sq_v5``, and no test of votes; ``upvotes>=7`` reads the papers with 5 or more
    and tests those for 7.

    Tested on ``search_votes`` instead, the window hashed every voted paper of each span it
    read and probed the hash with each match of the word: at 1,000,000 papers 2.3-3.2 times
    SQLite's time, which probes each match's votes in its own process."""
    kept: list[SqlCondition] = []
    steps: list[Expr] = []
    for cond in conditions:
        node = cond.node
        if isinstance(node, Upvotes) and not cond.negated and node.op in (">=", ">", "="):
            least = node.value + 1 if node.op == ">" else node.value
            reached = bisect_right(VOTE_STEPS, least)
            if reached:
                step = VOTE_STEPS[reached - 1]
                steps.append(("term", ("meta",), f"{VOTE_PREFIX}{step}"))
                if node.op != "=" and step == least:
                    continue
        kept.append(cond)
    if not steps:
        return expr, kept, False
    return _and([expr, *steps]), kept, True


def _condition_sql(cond: SqlCondition, mark: str, postgres: bool) -> tuple[str, list[Any]]:
    """One condition on the papers table ``p`` as SQL, and its parameters."""
    node = cond.node
    if isinstance(node, PaperId):
        # The unique index on arxiv_id answers it; the index expression is TRUE.
        test = f"p.arxiv_id IN ({', '.join([mark] * len(node.ids))})"
        values: list[Any] = list(node.ids)
    elif isinstance(node, ListedOn):
        # The two comparisons of evaluate._listed_on; a paper with no day meets neither.
        # Days go as ISO text, which is how SQLite stores a Date column (text order is day
        # order) and what PostgreSQL casts to a date.
        day = f"CAST({mark} AS DATE)" if postgres else mark
        tests = ["p.listed_on IS NOT NULL"]
        values = []
        if node.since is not None:
            tests.append(f"p.listed_on >= {day}")
            values.append(node.since.isoformat())
        if node.before is not None:
            tests.append(f"p.listed_on < {day}")
            values.append(node.before.isoformat())
        test = "(" + " AND ".join(tests) + ")"
    else:
        test = f"(p.upvotes IS NOT NULL AND p.upvotes {node.op} {mark})"
        values = [node.value]
    return (f"NOT {test}" if cond.negated else test), values


def _day(value: Any) -> date | None:
    # SQLite hands back the stored text for a raw query of a Date column.
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))
