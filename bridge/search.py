"""Search the stored archive with the keyword engine's meaning; return ranked, paged results.

A query matches a paper here exactly when the same query as a subscription would match it
(``bridge.query``). The store's search index (``bridge.store.search_index``) holds our
analyzer's terms, so SQLite and PostgreSQL give the same results.

How one search runs
    1. ``parse_query``. A malformed query raises ``QueryError``, which says where it is wrong.
       The parsed query is widened with the acronyms and open compounds the archive defines
       (``bridge.query.expansions``, the store's table read at most every 30 s), as a
       subscription's is: everything below sees an ordinary query tree.
    2. ``compile_query`` turns the query into index expressions plus SQL conditions
       (top-level ``upvotes``, ``date`` and a paper id: ``2407.21772`` reads one row). Usually the compiled query is *exact*: the index returns the
       matching papers and nothing else. Otherwise it returns a superset, and the papers that
       the strict (subset) expression does not vouch for are checked with ``match_paper``.
       A query the index cannot narrow at all (``upvotes>=10 OR diffusion``) reads the
       papers newest first and checks each one.
    3. Matches are read newest first: ``ORDER BY rowid DESC`` on the index, which stops after
       the rows it needs. No ranking function ever scores the whole match set (FTS5 bm25
       over a common term at 1M papers takes about a second).
    4. Every paper on the returned page is checked with ``match_paper``, which also gives
       its ``hits`` and ``why``. The check analyzes only the query's own terms, in the fields
       the query reads (``_QueryIndex``), which gives the same answer and the same hits as a
       full analysis at a fraction of the cost. Checking the page is most of a search's time.
       The handful of index queries per search go straight to the DBAPI cursor.

Ranking (``order="relevance"``, the default)
    Matches are cut into blocks of ``BLOCK`` (100), newest first. A page walks the blocks in
    order, and papers are ranked within each block by::

        score = 3 * title + 2 * coverage + votes + fresh

    title     the share of the query's words and phrases found in the title
    coverage  the share of the query's words and phrases found at all (below 1 only when
              the query has OR)
    votes     min(1, log10(1 + HF upvotes) / 2): 0 with none, 0.5 at 9, 1 from 99 up
    fresh     1 - (place in the block) / BLOCK: the newest paper of a block gets 1

    Ties go to the newer paper. A title hit outweighs any amount of votes and freshness, so
    each block opens with the papers about the query. The blocks keep the newest 100
    matches ahead of the next 100: for a common word, recent relevant papers come first.
    For a rare one (fewer than 100 matches), this is a plain relevance order. The features
    come from index lookups limited to the block's rowid range, a few per block. Paging is
    stable because blocks and scores depend only on the stored data.

``order="recent"`` lists matches newest stored first (feeds, the web page).

``order="upvotes"`` lists the newest ``UPVOTES_POOL`` (1,000) matches by HF upvotes, most
first (ties: newer first). Sorting every match of a common word by votes would read the whole
match set; the pool keeps a search bounded, and for a query with fewer matches it is the full
order. ``SORTS`` names the orders the CLI and the web page offer (``sort=``), and
``order_for`` maps one to ``order``, so both give the same order for the same query.

Budget
    Every search has a ``SearchBudget``: papers it may check one by one, and time. A query
    the index cannot narrow (``upvotes>=0 -the``) is answered by reading papers newest first
    and checking each one, which over a large store could go on for seconds, and an exact query
    can still make the database walk a great deal (a deep page of a common word, ``upvotes``
    alone over a million papers). When the budget runs out, ``search_store`` raises
    ``SearchTooBroad``, whose text says why and how to narrow the query. Counting the total
    never raises: it stops and reports a lower bound ("200+").
    SQLite's work is cut off by a progress handler that checks the same clock, and by a
    watchdog thread that interrupts the connection when the budget's seconds have passed in
    real time (FTS5 works inside single steps, where no handler is called); PostgreSQL's
    statements get the budget as ``statement_timeout``.

Totals
    ``total`` counts up to ``TOTAL_CAP`` (200) matches, more if the page goes deeper. When more
    match, ``total_capped`` is True and ``total`` is a lower bound ("200+"). Counting costs in
    proportion to the cap: an index walk to the 1,001st match of two fairly rare words takes
    about 3 ms at 1M papers, to the 201st about 0.7 ms. ``total`` is
    always larger than ``offset + len(items)`` when another page exists.
"""

from __future__ import annotations

import logging
import math
import re
import sqlite3
import threading
import time
from collections import namedtuple
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate, compress, repeat
from operator import is_, itemgetter
from string import ascii_lowercase
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from bridge.errors import ConfigError, QueryError, SearchTooBroad, StoreError
from bridge.models import Hit, Match, Paper, StoredPaper
from bridge.query import match_paper, parse_query
from bridge.query.abbreviations import long_key
from bridge.query.evaluate import (
    FIELD_ORDER,
    LIST_SEPARATOR,
    PaperIndex,
    exact_terms,
    leaf_pairs,
)
from bridge.query.evaluate import matches as node_matches
from bridge.query.exact import EXACT_MARK, candidate_terms
from bridge.query.expansions import expand, label_hits
from bridge.query.normalize import REWRITTEN_STARTS, REWRITTEN_WORDS, scan
from bridge.query.parser import (
    And,
    Category,
    Node,
    Not,
    Or,
    Phrase,
    Query,
    Term,
    Upvotes,
    format_query_error,
)
from bridge.store.liveness import SEARCH_SESSION, is_dead, unpinged
from bridge.store.rows import to_stored as _to_stored
from bridge.store.search_index import (
    FALSE,
    TRUE,
    Compiled,
    Expr,
    SearchIndex,
    _query,
    compile_query,
    defer_setting,
    drop_deferred_setting,
    leaf_expr,
    phrase_terms,
    search_settings,
)

if TYPE_CHECKING:
    # Types only: searching imports no SQLAlchemy, so that `paperbridge search` on SQLite can
    # read through the stdlib sqlite3 module (bridge.sqlite_read; issue 14).
    from sqlalchemy import Connection

    from bridge.store import Store

log = logging.getLogger(__name__)
_T = TypeVar("_T")

BLOCK = 100
TOTAL_CAP = 200
# order="upvotes" sorts at most this many of the newest matches by votes (module docstring).
UPVOTES_POOL = 1000
Order = Literal["relevance", "recent", "upvotes"]
# The sorts people choose from (CLI --sort, the web page's sort=), each an ``order``.
SORTS: dict[str, Order] = {"relevance": "relevance", "newest": "recent", "upvotes": "upvotes"}
# At most this many leaves (words, phrases) feed the ranking features.
MAX_RANKED_LEAVES = 8
# When matches must be checked one by one: candidates read per round trip (it doubles up to
# the maximum), and how many checks counting beyond the page may spend.
CHUNK = 200
MAX_CHUNK = 2000
COUNT_CHECK_BUDGET = 2000
# Papers read and checked between two looks at the budget's clock.
CHECK_SLICE = 16

# SQLite virtual machine steps between two looks at the clock: about a millisecond of work,
# and the look (a Python call taking the GIL) costs a fraction of a percent of that.
PROGRESS_STEPS = 20_000

W_TITLE = 3.0
W_COVERAGE = 2.0
W_VOTES = 1.0
W_FRESH = 1.0


@dataclass(frozen=True, slots=True)
class SearchResult:
    stored: StoredPaper
    hits: tuple[Hit, ...] = ()
    why: str | None = None
    score: float | None = None  # the ranking score (order="relevance"), for the curious


@dataclass(frozen=True, slots=True)
class SearchResults:
    items: list[SearchResult] = field(default_factory=list)
    total: int = 0
    # True: at least ``total`` papers match (counting stopped); show it as "200+".
    total_capped: bool = False

    @property
    def total_text(self) -> str:
        return f"{self.total:,}+" if self.total_capped else f"{self.total:,}"


@dataclass(frozen=True, slots=True)
class SearchBudget:
    """What one search may spend before it answers "too broad" instead.

    ``papers``: papers read and checked one by one (queries the index cannot narrow, and
    candidates it is unsure of). ``seconds``: time from the search's start, the database's
    work included (on PostgreSQL, each statement's ``statement_timeout``). Wall time, not the
    thread's CPU time: a scan of a large table mostly waits for the disk, which CPU time does
    not see, and the person asking waits for the wall clock. Ordinary searches take a few
    milliseconds (bench/search.py), so the margin is wide even on a busy machine.
    """

    papers: int = 1000
    seconds: float = 0.15
    clock: Callable[[], float] = time.monotonic


DEFAULT_BUDGET = SearchBudget()


class _OutOfBudget(Exception):
    def __init__(self, spent: str) -> None:
        super().__init__(spent)
        self.spent = spent  # "papers" or "time"


class _Allowance:
    """What is left of one search's budget."""

    __slots__ = ("budget", "papers_left", "_until")

    def __init__(self, budget: SearchBudget) -> None:
        self.budget = budget
        self.papers_left = budget.papers
        self._until = budget.clock() + budget.seconds

    def out_of_time(self) -> bool:
        return self.budget.clock() >= self._until

    def check_time(self) -> None:
        if self.out_of_time():
            raise _OutOfBudget("time")


def _interrupted(exc: BaseException) -> bool:
    """Whether a database error is the budget cutting a statement off."""
    exc = getattr(exc, "orig", None) or exc  # SQLAlchemy's wrapper of the DBAPI error
    if isinstance(exc, sqlite3.OperationalError):
        return str(exc) == "interrupted"
    return getattr(exc, "sqlstate", None) == "57014"  # PostgreSQL: query_canceled


class _Watchdog:
    """One thread that interrupts SQLite connections whose search ran past its deadline.

    FTS5 does a query's work inside single steps of SQLite's virtual machine (walking two
    common words' doclists against each other took 350 ms between two calls of a progress
    handler), and only ``interrupt()`` from another thread stops it there.
    """

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, Any]] = {}
        self._wake = threading.Condition()
        self._next_id = 0
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float, raw: Any) -> int:
        with self._wake:
            self._next_id += 1
            self._armed[self._next_id] = (time.monotonic() + seconds, raw)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="search-watchdog")
                self._thread.daemon = True
                self._thread.start()
            self._wake.notify()
            return self._next_id

    def disarm(self, handle: int) -> None:
        # Under the lock: once this returns, the connection can go back to the pool safely.
        with self._wake:
            self._armed.pop(handle, None)

    def _run(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                for handle, (deadline, raw) in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[handle]
                        raw.interrupt()
                soonest = min((deadline for deadline, _ in self._armed.values()), default=None)
                self._wake.wait(None if soonest is None else soonest - now)


_WATCHDOG = _Watchdog()
# psycopg's TransactionStatus.IDLE (not imported: searching on SQLite imports no psycopg).
_PG_IDLE = 0


@contextmanager
def _bounded(conn: Connection, allowance: _Allowance) -> Iterator[None]:
    """Statements on ``conn`` stop when the allowance's time is up (see the module docstring)."""
    raw: Any = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite":
        raw.set_progress_handler(allowance.out_of_time, PROGRESS_STEPS)
        handle = _WATCHDOG.arm(allowance.budget.seconds, raw)
        try:
            yield
        finally:
            _WATCHDOG.disarm(handle)
            raw.set_progress_handler(None, 0)
        return
    # PostgreSQL takes at most 2^31 - 1 ms.
    milliseconds = min(max(1, math.ceil(allowance.budget.seconds * 1000)), 2**31 - 1)
    # The search's statements run in autocommit mode, under settings kept on the connection's
    # session (``search_settings``: no BEGIN, no ROLLBACK when the connection returns, the
    # prepared statements kept), sent with the first statement when the connection does not
    # hold them yet. A connection that is somehow in a transaction gets them for that
    # transaction only, which the pool rolls back.
    session = raw.info.transaction_status == _PG_IDLE
    settings = search_settings(milliseconds, session=session)
    if session:
        raw.autocommit = True
    if not session or conn.info.get(SEARCH_SESSION) != settings:
        defer_setting(conn, settings)
    try:
        yield
    finally:
        drop_deferred_setting(conn)
        if session and not is_dead(raw):
            raw.autocommit = False


def _too_broad(
    query: str, spent: str, plan: Compiled | None, offset: int, budget: SearchBudget
) -> SearchTooBroad:
    if spent == "time":
        why = (
            f"answering it needs more than the {budget.seconds * 1000:.0f} ms of work"
            " a search may take"
        )
    elif plan is not None and plan.loose == TRUE:
        why = (
            "the index cannot narrow it (exclusions and upvotes alone do not say which papers"
            f" to read), and {budget.papers:,} papers read one by one did not fill the page"
        )
    else:
        why = (
            f"its matches must be checked one by one, and {budget.papers:,} papers checked did"
            " not fill the page"
        )
    earlier = ", or ask for an earlier page" if offset else ""
    return SearchTooBroad(
        f"Too broad to search: {why}. Narrow it with a word, a phrase, a category (cat:cs.LG)"
        f" or a source (source:hf) that every match must have{earlier}. The query: {query}"
    )


def validate_query(query: str, *, where: str) -> None:
    """Parse ``query`` with the real parser; ConfigError(where, what and where) if it is bad."""
    try:
        parse_query(query)
    except QueryError as exc:
        raise ConfigError(where, format_query_error(exc)) from exc


def _has_or(node: Node) -> bool:
    if isinstance(node, Or):
        return True
    if isinstance(node, And):
        return any(_has_or(child) for child in node.children)
    return False  # an OR inside an exclusion does not make matches differ in coverage


Candidate = tuple[int, int | None]  # seq, upvotes


# --- checking papers: match_paper on an analysis limited to what the query can see ----------------

# A whitespace-separated chunk of text -> (positions its tokens take, its tokens as
# (term, position, start, end, span) relative to the chunk); and term -> the cached chunks
# holding it.
_Chunk = tuple[int, tuple[tuple[str, int, int, int, int], ...]]
_CHUNKS: dict[bool, dict[str, _Chunk]] = {True: {}, False: {}}
_CHUNKS_WITH: dict[bool, dict[str, set[str]]] = {True: {}, False: {}}
_CHUNK_CACHE_LIMIT = 200_000
# Searches run in threads (the web server): the two caches change together under this lock,
# so a search never sees a chunk cached but not yet listed under its terms.
_CHUNK_LOCK = threading.Lock()
_WORD_CHUNK = re.compile(r"\S+")
_width = itemgetter(0)


def _chunk(text: str, stem: bool, may_clear: bool = True) -> _Chunk:
    tokens = scan(text, stem)
    # The positions a chunk takes: up to the end of its last token (a run without tokens
    # takes none).
    chunk = (max([t[1] + t[4] for t in tokens], default=0), tuple(tokens))
    cache = _CHUNKS[stem]
    holding = _CHUNKS_WITH[stem]
    if may_clear and len(cache) >= _CHUNK_CACHE_LIMIT:
        cache.clear()
        holding.clear()
    cache[text] = chunk
    for token in tokens:
        found = holding.get(token[0])
        if found is None:
            holding[token[0]] = {text}
        else:
            found.add(text)
    return chunk


# A chunk of ASCII letters alone, maybe between punctuation that ends or opens a word
# ("models," "(LLMs)"), is one word: one token, one position wide, whose term starts with the
# word's own first two letters, lowercased, but for a few words (REWRITTEN_WORDS: mice ->
# mouse; REWRITTEN_STARTS: haemoglobin -> hemoglobin).
# So such a chunk cannot hold a wanted term unless its first two letters start one, and the
# others are counted as one position without being analysed: a page's words the process has
# never normalised are most of a first search's time.
_ONE_WORD: _Chunk = (1, ())
_EDGE_PUNCTUATION = ',.;:!?()[]"'


def _cannot_hold(chunk: str, heads: frozenset[str], short_terms: frozenset[str]) -> bool:
    """Whether ``chunk`` is one plain word whose term cannot be wanted: wanted terms start
    with one of ``heads`` (their first two letters) or are ``short_terms`` (one letter)."""
    word = chunk if chunk.isalpha() else chunk.strip(_EDGE_PUNCTUATION)
    if not (word.isalpha() and word.isascii()):
        return False
    lowered = word.lower()
    return (
        lowered[:2] not in heads
        and lowered[:1] not in short_terms
        and not lowered.startswith(REWRITTEN_STARTS)
        and lowered not in REWRITTEN_WORDS
    )


# Every chunk met, with its head key (``_head_key``), so that passing words over is a dict and
# a set lookup in C: a search checks pages of words it passed over for other queries (some
# eighty a paper), and testing each again in Python cost about a tenth of checking a paper.
_HEAD_KEYS: dict[str, str] = {}
_HEAD_KEYS_LIMIT = 500_000
# The key of a chunk that is always analyzed: not one plain ASCII word, or a rewritten one.
_MUST_READ = "!"
_LETTER_KEYS = (*ascii_lowercase, *(a + b for a in ascii_lowercase for b in ascii_lowercase))


def _head_key(chunk: str) -> str:
    """A plain word's first two letters, lowercased; ``_MUST_READ`` for what
    ``_cannot_hold`` never passes over."""
    word = chunk if chunk.isalpha() else chunk.strip(_EDGE_PUNCTUATION)
    if not (word.isalpha() and word.isascii()):
        return _MUST_READ
    lowered = word.lower()
    if lowered.startswith(REWRITTEN_STARTS) or lowered in REWRITTEN_WORDS:
        return _MUST_READ
    return lowered[:2]


@lru_cache(maxsize=1024)
def _readable_keys(heads: frozenset[str], short_terms: frozenset[str]) -> frozenset[str]:
    """The head keys of the chunks that may hold a wanted term."""
    return frozenset({_MUST_READ, *heads, *(key for key in _LETTER_KEYS if key[:1] in short_terms)})


def _passable(words: set[str], heads: frozenset[str], short_terms: frozenset[str]) -> set[str]:
    """``{w for w in words if _cannot_hold(w, heads, short_terms)}`` (tests compare the two),
    in C but for the words never met before. Run under ``_CHUNK_LOCK``."""
    keys = _HEAD_KEYS
    ordered = list(words)
    # One probe of the (large, cache-missing) dict a word, a second only for new words.
    found = list(map(keys.get, ordered))
    if None in found:
        new = set(compress(ordered, map(is_, found, repeat(None))))
        if len(keys) + len(new) > _HEAD_KEYS_LIMIT:
            keys.clear()
            new = words
        keys.update({word: _head_key(word) for word in new})
        found = list(map(keys.__getitem__, ordered))
    readable = _readable_keys(heads, short_terms)
    return words.difference(compress(ordered, map(readable.__contains__, found)))


def _postings(text: str, stem: bool, wanted: frozenset[str]) -> dict[str, list[Any]]:
    """``postings_of(text)`` restricted to ``wanted`` terms: the same positions and offsets.

    The analyzer's tokens never contain whitespace, and it treats each run its tokenizer finds
    on its own. So a text is the sequence of its whitespace-separated chunks, each analyzed
    once and cached (or passed over: ``_cannot_hold``), and a token's position is the sum of
    the widths of the chunks before it.
    Splitting, the cache lookups, finding the chunks that hold a wanted term (set
    intersections) and the sums all run in C; only those few chunks are unpacked in Python.
    This is most of what checking a page of results costs.
    """
    chunks = text.split()
    present = set(chunks)
    hot_chunks: set[str] = set()
    heads = frozenset(term[:2] for term in wanted)
    short_terms = frozenset(term for term in wanted if len(term) < 2)
    with _CHUNK_LOCK:
        cache = _CHUNKS[stem]
        analyzed = list(map(cache.get, chunks))
        if None in analyzed:
            unseen = present.difference(cache)
            passed_over = _passable(unseen, heads, short_terms)
            for word in unseen.difference(passed_over):
                _chunk(word, stem)
            # The cache was emptied meanwhile: put this text's chunks back.
            for word in present.difference(cache).difference(passed_over):
                _chunk(word, stem, may_clear=False)
            analyzed = list(map(cache.get, chunks, repeat(_ONE_WORD, len(chunks))))
        holding = _CHUNKS_WITH[stem]
        for term in wanted:
            with_term = holding.get(term)
            if with_term:
                hot_chunks |= present & with_term
    postings: dict[str, list[Any]] = {}
    if not hot_chunks:
        return postings
    before = list(accumulate(map(_width, analyzed), initial=0))  # type: ignore[arg-type]
    if " ".join(chunks) == text:  # single spaces, as clean_text leaves every stored text
        # The i-th chunk starts after the i chunks before it, each followed by one space.
        offsets = list(accumulate(map(len, chunks), initial=0))
        spaced = True
    else:
        offsets = [m.start() for m in _WORD_CHUNK.finditer(text)]
        spaced = False
    for i in compress(range(len(chunks)), map(hot_chunks.__contains__, chunks)):
        offset = offsets[i] + i if spaced else offsets[i]
        position = before[i]
        for term, relative, low, high, span in analyzed[i][1]:  # type: ignore[index]
            if term in wanted:
                posting = (position + relative, offset + low, offset + high, span)
                entry = postings.get(term)
                if entry is None:
                    postings[term] = [posting]
                else:
                    entry.append(posting)
    return postings


class _QueryIndex(PaperIndex):
    """A PaperIndex holding only the query's own terms, in the fields the query reads.

    ``match_paper`` on it gives exactly what it gives on the full analysis (every node reads
    only its own terms' postings), at a fraction of the cost: checking the page is most of a
    search's time.
    """

    __slots__ = ("_wanted", "_fields")

    def __init__(
        self,
        paper: Paper,
        wanted: frozenset[str],
        fields: frozenset[str],
        exact: frozenset[str] = frozenset(),
    ) -> None:
        self._wanted = wanted
        self._fields = fields
        super().__init__(paper, exact)

    def _add_text(self, name: str, text: str, stem: bool) -> None:
        self.texts[name] = text
        needed = text and name in self._fields
        self.postings[name] = _postings(text, stem, self._wanted) if needed else {}
        self._add_exact(name, stem)

    def _add_list(self, name: str, items: tuple[str, ...], stem: bool) -> None:
        if name in self._fields:
            super()._add_list(name, items, stem)
        else:
            self.texts[name] = LIST_SEPARATOR.join(items)
            self.postings[name] = {}


class _Checker:
    """``match_paper(query, paper)`` for many papers of one query."""

    def __init__(self, query: Query) -> None:
        self.query = query
        wanted: set[str] = set()
        fields: set[str] = set()
        nodes: list[Node] = [query.root]
        for node in nodes:
            if isinstance(node, And | Or):
                nodes.extend(node.children)
            elif isinstance(node, Not):
                nodes.append(node.child)
            elif isinstance(node, Term):
                wanted.add(node.term)
                fields.update(node.fields)
            elif isinstance(node, Phrase):
                wanted.update(t for slot in node.slots for run in slot for t in run)
                fields.update(node.fields)
        # An exact word is found among the occurrences of the terms it can have (its
        # candidates), which the restricted analysis must therefore keep.
        self.exact = exact_terms(query)
        for key in self.exact:
            wanted.update(candidate_terms(key))
        self.wanted = frozenset(wanted)
        self.fields = frozenset(fields)

    def __call__(self, paper: Paper) -> tuple[Hit, ...] | None:
        index = _QueryIndex(paper, self.wanted, self.fields, self.exact)
        return match_paper(self.query, index)


class _Matches:
    """The papers matching one compiled query, newest first, read only as far as needed."""

    def __init__(self, run: QueryRun, announced_only: bool) -> None:
        self.conn = run.conn
        self.allowance = run.allowance
        self.index = run.index
        self.query = run.query
        self.plan = plan = run.plan
        self.announced_only = announced_only
        self.exact = plan.loose == plan.strict
        # Whether candidates come with their upvotes (the papers table is joined).
        self.with_votes = bool(plan.conditions) or announced_only or plan.loose == TRUE
        # Checked one by one: seq -> (paper, hits), so a page does not check twice.
        self.checked: dict[int, tuple[StoredPaper, tuple[Hit, ...]]] = {}
        self.checker = run.checker
        self._found: list[Candidate] = []
        self._below: int | None = None
        self._chunk = CHUNK
        self._exhausted = False
        self._known_total: int | None = None
        # Exact plans: the last window read (its start and its rows), so counting goes on
        # from its last row rather than walking the same matches again.
        self._last_window: tuple[int, list[Candidate]] | None = None
        # PostgreSQL reads a window, its upvotes, the ranking's flags (``flag_exprs``, set
        # before the first window) and the count after it in one statement
        # (``SearchIndex.window``): the flags of each row read, and (matches before the
        # count's start, matches counted after, up to a cap).
        self.flag_exprs: list[Expr] = []
        self.flags: dict[int, tuple[bool, ...]] = {}
        self._following: tuple[int, int] | None = None
        self.checks = 0
        # Where the papers of the query's listing days are (None: anywhere).
        self.seqs = run.index.seq_range(run.conn, plan.conditions) if plan.conditions else None

    def _candidates(self, *, limit: int, offset: int = 0, below: int | None = None):  # type: ignore[no-untyped-def]
        return self.index.candidates(
            self.conn,
            self.plan.loose,
            conditions=self.plan.conditions,
            announced_only=self.announced_only,
            limit=limit,
            offset=offset,
            below=below,
            seqs=self.seqs,
        )

    def window(self, start: int, count: int) -> list[Candidate]:
        """Matches ``start`` to ``start + count - 1`` in newest-first order."""
        if count <= 0:
            return []
        if self.exact and self.index.postgres and self.plan.loose not in (TRUE, FALSE):
            return self._window_postgres(start, count)
        if self.exact:
            rows = self._candidates(limit=count, offset=start)
            if len(rows) < count and (rows or start == 0):
                # The window reached the last match (an empty first window: there are none,
                # and counting them again would cost a search for a word in no paper twice).
                self._known_total = start + len(rows)
            if rows:
                self._last_window = (start, rows)
            return rows
        self._fill(start + count)
        return self._found[start : start + count]

    def _window_postgres(self, start: int, count: int) -> list[Candidate]:
        # Counted after the window: as far as ``_total`` can ask when the page lies in it.
        following_cap = max(TOTAL_CAP, start + count + 1) + 1 - (start + count)
        window = self.index.window(
            self.conn,
            self.plan.loose,
            conditions=self.plan.conditions,
            announced_only=self.announced_only,
            limit=count,
            offset=start,
            flags=self.flag_exprs,
            count_cap=following_cap,
            seqs=self.seqs,
        )
        rows = window.rows
        if len(rows) < count and (rows or start == 0):
            self._known_total = start + len(rows)
        if rows:
            self._last_window = (start, rows)
            self.flags.update(window.flags)
            if window.following is not None:
                self._following = (start + len(rows), window.following)
        return rows

    def _fill(self, wanted: int, budget: int | None = None) -> None:
        start_checks = self.checks
        while len(self._found) < wanted and not self._exhausted:
            if budget is not None and self.checks - start_checks >= budget:
                return
            self._read_chunk()

    def _read_chunk(self) -> None:
        # Never read more candidates than the budget lets us check.
        size = min(self._chunk, self.allowance.papers_left)
        if size <= 0:
            raise _OutOfBudget("papers")
        rows = self._candidates(limit=size, below=self._below)
        if len(rows) < size:
            self._exhausted = True
        if not rows:
            return
        self._below = rows[-1][0]
        self._chunk = min(self._chunk * 2, MAX_CHUNK)
        low, high = rows[-1][0], rows[0][0]
        strict = self.plan.strict
        certain = (
            set() if strict == FALSE else self.index.in_range(self.conn, [strict], low, high)[0]
        )
        doubtful = [seq for seq, _ in rows if seq not in certain]
        confirmed = self.check(doubtful)
        self._found += [row for row in rows if row[0] in certain or row[0] in confirmed]

    def check(self, seqs: Sequence[int]) -> set[int]:
        """Check papers with ``match_paper``; the seqs that match (kept in ``checked``)."""
        todo = [seq for seq in seqs if seq not in self.checked]
        allowance = self.allowance
        if len(todo) > allowance.papers_left:
            raise _OutOfBudget("papers")
        allowance.papers_left -= len(todo)
        self.checks += len(todo)
        # A few papers at a time, reading included, so the clock is looked at every few
        # milliseconds: 1,000 papers read at once took a loaded machine 100 ms by themselves.
        for start in range(0, len(todo), CHECK_SLICE):
            allowance.check_time()
            for stored in fetch_papers(self.conn, todo[start : start + CHECK_SLICE]).values():
                hits = self.checker(stored.paper)
                if hits is not None:
                    self.checked[stored.seq] = (stored, hits)
        return {seq for seq in seqs if seq in self.checked}

    def total(self, at_least: int) -> tuple[int, bool]:
        """(count, capped): matches counted up to a cap above ``at_least``. When the budget
        runs out first, what was counted so far, as a lower bound."""
        try:
            return self._total(at_least)
        except _OutOfBudget:
            return max(at_least, len(self._found)), True
        except Exception as exc:
            if not _interrupted(exc):
                raise
            known = len(self._found)
            if self._last_window is not None:
                start, rows = self._last_window
                known = start + len(rows)
            return max(at_least, known), True

    def _total(self, at_least: int) -> tuple[int, bool]:
        cap = max(TOTAL_CAP, at_least + 1)
        if self.exact and self._known_total is not None:
            return self._known_total, False
        if self.exact:
            # SQLite counts far faster than it hands rows to Python: a separate capped count,
            # starting after the window already read (exactly ``start`` matches precede it).
            seen, below = 0, None
            if self._last_window is not None:
                start, rows = self._last_window
                seen, below = start + len(rows), rows[-1][0]
            if self._following is not None and self._following[0] == seen:
                # Counted with the window (PostgreSQL), up to at least this cap.
                found = seen + min(self._following[1], cap + 1 - seen)
                return (cap, True) if found > cap else (found, False)
            found = seen + self.index.count(
                self.conn,
                self.plan.loose,
                conditions=self.plan.conditions,
                announced_only=self.announced_only,
                cap=cap + 1 - seen,
                below=below,
                seqs=self.seqs,
            )
            return (cap, True) if found > cap else (found, False)
        # Know for sure whether one more page exists, then count on a budget.
        self._fill(at_least + 1)
        self._fill(cap + 1, budget=COUNT_CHECK_BUDGET)
        if len(self._found) > cap:
            return cap, True
        return len(self._found), not self._exhausted

    def upvotes(self, block: list[Candidate]) -> list[Candidate]:
        if self.with_votes or all(seq in self.flags for seq, _ in block):
            return block  # read with their votes (a join, or PostgreSQL's window)
        votes = self.index.upvotes(self.conn, [seq for seq, _ in block])
        return [(seq, votes.get(seq)) for seq, _ in block]


class _PaperReader:
    """Reads stored papers by seq from the DBAPI cursor, converting each column with the
    dialect's own result processors (what a Core result would do, at half the cost: fetching
    the page is on every search's path)."""

    def __init__(self, dialect: Any) -> None:
        from bridge.store import schema

        columns = list(schema.papers.columns)
        self.head = f"SELECT {', '.join(c.name for c in columns)} FROM papers WHERE seq IN "
        self.row: Any = namedtuple("_PaperRow", [c.key for c in columns])  # type: ignore[misc]
        self.processors = [
            column.type._cached_result_processor(dialect, None) for column in columns
        ]

    def read(self, conn: Connection, seqs: Sequence[int]) -> dict[int, StoredPaper]:
        out: dict[int, StoredPaper] = {}
        processors = self.processors
        make = self.row
        for start in range(0, len(seqs), 500):
            # Whole numbers written inline: cheaper than an expanding IN parameter.
            listed = ",".join(str(int(seq)) for seq in seqs[start : start + 500])
            if not listed:
                continue
            for raw in _query(conn, f"{self.head}({listed})"):
                row = make(*[p(v) if p else v for p, v in zip(processors, raw, strict=True)])
                out[row.seq] = _to_stored(row)
        return out


_READERS: dict[str, _PaperReader] = {}


def fetch_papers(conn: Connection, seqs: Sequence[int]) -> dict[int, StoredPaper]:
    """Stored papers by seq (those that exist)."""
    dialect = conn.dialect
    # A connection that is not SQLAlchemy's brings its own reader (bridge.sqlite_read).
    own = getattr(dialect, "paper_reader", None)
    if own is not None:
        return own.read(conn, seqs)  # type: ignore[no-any-return]
    reader = _READERS.get(dialect.name)
    if reader is None:
        reader = _READERS[dialect.name] = _PaperReader(dialect)
    return reader.read(conn, seqs)


def _ranking_tests(
    index: SearchIndex, query: Query, plan: Compiled
) -> tuple[tuple[Term | Phrase, ...], list[Term | Phrase], bool, list[Expr]]:
    """The leaves ranking weighs, those with a title, whether coverage counts, and the
    index expressions each block's papers are tested against (titles, then coverage)."""
    leaves = plan.leaves[:MAX_RANKED_LEAVES]
    titled = [leaf for leaf in leaves if "title" in leaf.fields]
    coverage_needed = _has_or(query.root) and len(leaves) > 1
    exprs = [index.title_expr(leaf) for leaf in titled]
    if coverage_needed:
        exprs += [leaf_expr(leaf) for leaf in leaves]
    return leaves, titled, coverage_needed, exprs


def _rank(
    matches: _Matches, block: list[Candidate], query: Query, plan: Compiled
) -> list[tuple[int, float]]:
    """One block in ranked order: (seq, score)."""
    if not block:
        return []
    block = matches.upvotes(block)
    leaves, titled, coverage_needed, exprs = _ranking_tests(matches.index, query, plan)
    low, high = block[-1][0], block[0][0]
    flags = matches.flags
    if exprs and exprs == matches.flag_exprs and all(seq in flags for seq, _ in block):
        # Answered with the window (PostgreSQL): no second lookup.
        sets = [{seq for seq, _ in block if flags[seq][i]} for i in range(len(exprs))]
    else:
        sets = matches.index.in_range(matches.conn, exprs, low, high) if exprs else []
    title_sets, cover_sets = sets[: len(titled)], sets[len(titled) :]
    scored: list[tuple[float, int]] = []
    for place, (seq, votes) in enumerate(block):
        title = sum(seq in s for s in title_sets) / len(titled) if titled else 0.0
        coverage = sum(seq in s for s in cover_sets) / len(leaves) if coverage_needed else 1.0
        boost = min(1.0, math.log10(1 + max(votes or 0, 0)) / 2)
        fresh = 1.0 - place / BLOCK
        score = W_TITLE * title + W_COVERAGE * coverage + W_VOTES * boost + W_FRESH * fresh
        scored.append((score, seq))
    scored.sort(key=lambda item: (-item[0], -item[1]))
    return [(seq, score) for score, seq in scored]


# --- one query being answered: the layer search_store and bridge.search_newest share ----------


@dataclass(slots=True)
class QueryRun:
    """One query being answered: the query widened with the archive's acronyms and compounds,
    its index plan, the connection it reads on (bounded by the budget) and what is left of
    the budget. ``run_query`` opens one; ``search_store`` (ranked or newest stored first) and
    ``bridge.search_newest`` (newest listing day first) answer from it."""

    conn: Connection
    index: SearchIndex
    query: Query
    labels: Mapping[str, str]  # added forms -> the words the query wrote (label_hits)
    plan: Compiled
    allowance: _Allowance
    checker: _Checker

    def check_time(self) -> None:
        """Raise (the search answers "too broad") when the budget's time is up."""
        self.allowance.check_time()

    def spend(self, papers: int) -> None:
        """Count ``papers`` checked one by one against the budget; raise when it runs out."""
        if papers > self.allowance.papers_left:
            raise _OutOfBudget("papers")
        self.allowance.papers_left -= papers

    def fetch(self, seqs: Sequence[int]) -> dict[int, StoredPaper]:
        return fetch_papers(self.conn, seqs)

    def why(self, hits: tuple[Hit, ...]) -> str | None:
        """The "matched … in the abstract" line of a paper's hits; an added form reads
        "matched out-of-distribution (OOD)"."""
        return Match("", "", label_hits(hits, self.labels)).why() if hits else None

    def index_whys(self, papers: Sequence[StoredPaper]) -> dict[int, str | None]:
        """The "matched … in the abstract" line of each paper the index vouches for: one
        lookup per word or phrase and field over the page's seqs says which fields hold
        what, and each is quoted where its field shows the query's words (one regular
        expression per field, no analysis). Papers left out are for ``checker`` and ``why``:
        the plan is not exact, the index does not vouch for the match, a field writes the
        word otherwise ("generalisation", "proteins"), or the paper holds a form the query
        was widened with ("out of distribution (OOD)")."""
        explainer = _IndexExplainer.of(self)
        return explainer.explain(papers) if explainer is not None else {}


# More (word or phrase, field) lookups than this for one page: the page is checked instead.
MAX_EXPLAIN_LOOKUPS = 48
# A page whose papers lie within this many seqs is looked up as one range, else paper by paper
# (a range over the whole archive would read a common word's whole doclist).
EXPLAIN_RANGE = 20_000


class _IndexExplainer:
    """Why papers match, from which fields of the index hold each word and phrase."""

    def __init__(self, run: QueryRun, leaves: list[Term | Phrase], exprs: dict[Any, Any]):
        self.run = run
        self.leaves = leaves
        self.exprs = exprs  # (leaf number, field) -> index expression
        # Forms the query was widened with ("out-of-distribution" for OOD): a paper may
        # write them otherwise ("out of distribution"), which the index does not keep, so
        # a paper holding one has its line said from its text.
        self.added = {n for n, leaf in enumerate(leaves) if long_key(_said(leaf)) in run.labels}
        self.reads_paper = not _words_only(run.query.root)
        self.patterns = [_written(leaf) for leaf in leaves]

    @classmethod
    def of(cls, run: QueryRun) -> _IndexExplainer | None:
        plan = run.plan
        if plan.loose != plan.strict or plan.loose in (TRUE, FALSE):
            return None  # the index alone cannot say which papers match
        leaves: list[Term | Phrase] = []
        _all_leaves(run.query.root, leaves)
        # A phrase widened inside ("OOD generalization" also as its long form) may be in the
        # paper in either form, which the index does not tell apart: say it from the text.
        said = {long_key(_said(leaf)) for leaf in leaves}
        if any(key not in said for key in run.labels):
            return None
        exprs: dict[Any, Any] = {}
        for number, leaf in enumerate(leaves):
            for name in leaf.fields:
                expr = run.index.title_expr(leaf) if name == "title" else leaf_expr(leaf, (name,))
                if expr != FALSE:
                    exprs[number, name] = expr
        if len(exprs) > MAX_EXPLAIN_LOOKUPS:
            return None
        return cls(run, leaves, exprs)

    def explain(self, papers: Sequence[StoredPaper]) -> dict[int, str | None]:
        keys = list(self.exprs)
        exprs = [self.exprs[key] for key in keys]
        seqs = [s.seq for s in papers]
        if not seqs:
            return {}
        low, high = min(seqs), max(seqs)
        if high - low < EXPLAIN_RANGE and not self.run.index.postgres:
            # A page stored close together (a few listing days): FTS5 reads each doclist
            # over the range once, several times cheaper than one seek per paper. PostgreSQL
            # tests a word asked of one field on the docs: it reads the page's docs once
            # (``SearchIndex.among``).
            found = self.run.index.in_range(self.run.conn, exprs, low, high)
        else:
            found = self.run.index.among(self.run.conn, exprs, seqs)
        holding = dict(zip(keys, found, strict=True))
        out: dict[int, str | None] = {}
        for stored in papers:
            # Categories, sources, upvotes and days are read from the paper itself; no text
            # is analyzed (no field is asked for).
            px = _QueryIndex(stored.paper, frozenset(), frozenset()) if self.reads_paper else None
            facts = _Facts(self.leaves, self.patterns, holding, stored, px)
            if not facts.holds(self.run.query.root):
                continue  # not vouched for: the checker decides
            hits: list[tuple[tuple[int, int, int], Hit]] = []
            facts.gather(self.run.query.root, hits)
            if facts.unshown or any(key[2] in self.added for key, _ in hits):
                continue
            hits.sort(key=itemgetter(0))
            out[stored.seq] = self.run.why(tuple(hit for _, hit in hits))
        return out


class _Facts:
    """One paper's match, with its words and phrases looked up in the index."""

    def __init__(
        self,
        leaves: list[Term | Phrase],
        patterns: list[re.Pattern[str] | None],
        holding: dict[tuple[int, str], set[int]],
        stored: StoredPaper,
        px: PaperIndex | None,  # None: the query has nothing but words and phrases
    ) -> None:
        self.numbers = {id(leaf): number for number, leaf in enumerate(leaves)}
        self.patterns = patterns
        self.holding = holding
        self.seq = stored.seq
        self.paper = stored.paper
        self.px = px
        # A field the index says holds a word whose text does not show it as the query
        # wrote it ("proteins" for protein, "generalisation"): the text must say it.
        self.unshown = False

    def _text(self, name: str) -> str:
        paper = self.paper
        if name in ("ai_keywords", "authors"):
            return LIST_SEPARATOR.join(getattr(paper, name))
        return getattr(paper, name) or ""

    def fields(self, leaf: Term | Phrase) -> list[str]:
        number = self.numbers[id(leaf)]
        return [name for name in leaf.fields if self.seq in self.holding.get((number, name), ())]

    def holds(self, node: Node) -> bool:
        if isinstance(node, Term | Phrase):
            return bool(self.fields(node))
        if isinstance(node, And):
            return all(self.holds(child) for child in node.children)
        if isinstance(node, Or):
            return any(self.holds(child) for child in node.children)
        if isinstance(node, Not):
            return not self.holds(node.child)
        assert self.px is not None
        return node_matches(node, self.px)

    def gather(self, node: Node, out: list[tuple[tuple[int, int, int], Hit]]) -> None:
        """The hits of a node that holds, as ``collect_hits`` gathers them (an OR: only its
        branches that hold; an exclusion: none), placed in field order, then query order."""
        if isinstance(node, And):
            for child in node.children:
                self.gather(child, out)
        elif isinstance(node, Or):
            for child in node.children:
                if self.holds(child):
                    self.gather(child, out)
        elif isinstance(node, Term | Phrase):
            number = self.numbers[id(node)]
            pattern = self.patterns[number]
            for name in self.fields(node):
                # The words as this field writes them, where they first stand: the line never
                # names words the text does not show.
                found = pattern.search(self._text(name)) if pattern is not None else None
                if found is None:
                    self.unshown = True
                    return
                hit = Hit(name, found.group(), found.start(), found.end())
                out.append(((FIELD_ORDER[name], found.start(), number), hit))
        elif isinstance(node, Category):
            assert self.px is not None
            out += [
                ((key[0], key[1], len(self.numbers)), hit) for key, hit in leaf_pairs(node, self.px)
            ]


def _words_only(node: Node) -> bool:
    if isinstance(node, Term | Phrase):
        return True
    if isinstance(node, And | Or):
        return all(_words_only(child) for child in node.children)
    if isinstance(node, Not):
        return _words_only(node.child)
    return False


def _all_leaves(node: Node, out: list[Term | Phrase]) -> None:
    """Every word and phrase node of the tree, excluded ones too (each node object once)."""
    if isinstance(node, Term | Phrase):
        out.append(node)
    elif isinstance(node, And | Or):
        for child in node.children:
            _all_leaves(child, out)
    elif isinstance(node, Not):
        _all_leaves(node.child, out)


def _written(leaf: Term | Phrase) -> re.Pattern[str] | None:
    """The query's words as a paper may write them (any case; a phrase's words apart by
    anything but letters and digits); None when they do not begin and end with one."""
    words = _said(leaf).split()
    if not words or not (words[0][:1].isalnum() and words[-1][-1:].isalnum()):
        return None
    body = r"\W+".join(re.escape(word) for word in words)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _said(leaf: Term | Phrase) -> str:
    """A word or phrase as the query wrote it (an exact word without its "=")."""
    text = " ".join(leaf.text.split())
    if isinstance(leaf, Term):
        return (text or leaf.term).removeprefix(EXACT_MARK)
    return text


@contextmanager
def run_query(
    store: Store, query: str, *, budget: SearchBudget = DEFAULT_BUDGET, offset: int = 0
) -> Iterator[QueryRun]:
    """Parse, widen and plan ``query`` and hold a connection bounded by ``budget`` while the
    caller reads its answer. Raises QueryError for a malformed query; SearchTooBroad when the
    budget runs out (``offset``: the page asked for, for the advice); StoreError when the
    database fails."""
    expanded = expand(parse_query(query), store.expansion_table())
    parsed = expanded.query
    allowance = _Allowance(budget)
    plan: Compiled | None = None
    try:
        with store.engine.connect() as conn:
            try:
                with _bounded(conn, allowance):
                    index = store.search_index
                    terms = phrase_terms(parsed)
                    plan = compile_query(parsed, index.splits(conn, terms) if terms else None)
                    yield QueryRun(
                        conn, index, parsed, expanded.labels, plan, allowance, _Checker(parsed)
                    )
            except store.database_errors as exc:
                if _lost(conn, exc):
                    raise _Disconnected(exc) from exc
                raise
    except _OutOfBudget as exc:
        raise _too_broad(query, exc.spent, plan, offset, budget) from None
    except store.database_errors as exc:
        if _interrupted(exc):
            raise _too_broad(query, "time", plan, offset, budget) from None
        raise StoreError(f"search failed: {exc.__class__.__name__}: {exc}") from exc


class _Disconnected(StoreError):
    """A search's connection turned out dead (the server restarted, the session was ended):
    ``retrying`` asks again once on a fresh one."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"search failed: the database connection was lost: {exc}")


def _lost(conn: Connection, exc: BaseException) -> bool:
    """Whether ``exc`` came from ``conn``'s connection dying; if so it is invalidated (closed
    and dropped from the pool, not rolled back)."""
    if getattr(exc, "connection_invalidated", False):
        return True  # SQLAlchemy saw it die on a statement of its own, and invalidated it
    if conn.dialect.name != "postgresql" or conn.invalidated:
        return False
    if not is_dead(conn.connection.dbapi_connection):
        return False
    conn.invalidate()
    return True


def retrying(store: Store, answer: Callable[[], _T]) -> _T:
    """``answer()`` (a search), on a connection taken from the pool without a ping, and once
    more on a pinged one if that connection was dead (bridge/store/liveness.py). A search on
    PostgreSQL then costs no ping round trip, and a restarted server still costs no failed
    search: the second try's ping finds every pooled connection dead and reconnects."""
    try:
        with unpinged():
            return answer()
    except _Disconnected as exc:
        log.info("search: %s; asking again on a new connection", exc)
    return answer()


def search_store(
    store: Store,
    query: str,
    *,
    limit: int = 10,
    offset: int = 0,
    order: Order = "relevance",
    announced_only: bool = False,
    budget: SearchBudget = DEFAULT_BUDGET,
) -> SearchResults:
    """Papers matching ``query`` (the subscription meaning), ranked and paged.

    ``order="relevance"`` ranks within blocks of the newest matches (module docstring);
    ``order="recent"`` lists newest stored first (feeds); ``order="upvotes"`` the most upvoted
    of the newest ``UPVOTES_POOL`` matches first. ``announced_only`` leaves out papers
    stored quietly by backfill or first-run policy. Raises QueryError for a malformed query,
    SearchTooBroad when answering would take more than ``budget``.
    """
    limit = max(int(limit), 0)
    offset = max(int(offset), 0)

    def answer() -> SearchResults:
        with run_query(store, query, budget=budget, offset=offset) as run:
            return _search(run, limit, offset, order, announced_only)

    return retrying(store, answer)


def _search(
    run: QueryRun, limit: int, offset: int, order: Order, announced_only: bool
) -> SearchResults:
    parsed, plan = run.query, run.plan
    matches = _Matches(run, announced_only)
    page: list[tuple[int, float | None]]
    if order == "recent":
        page = [(seq, None) for seq, _ in matches.window(offset, limit)]
    elif order == "upvotes":
        page = _by_upvotes(matches, offset, limit)
    else:
        if run.index.postgres:
            matches.flag_exprs = _ranking_tests(run.index, parsed, plan)[3]
        first, last = offset // BLOCK, (offset + max(limit, 1) - 1) // BLOCK
        window = matches.window(first * BLOCK, (last - first + 1) * BLOCK) if limit else []
        ranked: list[tuple[int, float | None]] = []
        for start in range(0, len(window), BLOCK):
            ranked += _rank(matches, window[start : start + BLOCK], parsed, plan)
        skip = offset - first * BLOCK
        page = ranked[skip : skip + limit]
    # The page before the total: counting gives up quietly when the budget runs out, and the
    # page must not be what runs short.
    items = _page_items(run, matches, page)
    total, capped = matches.total(offset + len(page))
    return SearchResults(items, total, capped)


def _by_upvotes(matches: _Matches, offset: int, limit: int) -> list[tuple[int, float | None]]:
    """One page of the newest ``UPVOTES_POOL`` matches, most upvoted first (newer on ties)."""
    if offset >= UPVOTES_POOL or limit <= 0:
        return []
    pool = matches.upvotes(matches.window(0, UPVOTES_POOL))
    # Papers HF never voted on sort below 0 votes, as in the listings (bridge.store.listing).
    pool.sort(key=lambda row: (-(row[1] if row[1] is not None else -1), -row[0]))
    return [(seq, None) for seq, _ in pool[offset : offset + limit]]


def order_for(sort: str) -> Order:
    """The ``order`` of a sort name ("relevance", "newest", "upvotes"); QueryError naming the
    choices for anything else."""
    try:
        return SORTS[sort]
    except KeyError:
        choices = ", ".join(SORTS)
        raise QueryError(f"unknown sort {sort!r}: use one of {choices}", None, sort) from None


def _page_items(
    run: QueryRun, matches: _Matches, page: list[tuple[int, float | None]]
) -> list[SearchResult]:
    wanted = [seq for seq, _ in page if seq not in matches.checked]
    fetched = run.fetch(wanted)
    items: list[SearchResult] = []
    for seq, score in page:
        if seq in matches.checked:
            stored, hits = matches.checked[seq]
        else:
            found = fetched.get(seq)
            result = run.checker(found.paper) if found is not None else None
            if found is None or result is None:
                # The index said it matches and the paper says not: the index is out of step
                # (a process on another analyzer wrote it). Show only real matches.
                log.warning("search index out of step for paper seq %d; reindex", seq)
                continue
            stored, hits = found, result
        items.append(SearchResult(stored, hits, run.why(hits), score))
    return items


def explain_plan(store: Store, query: str) -> dict[str, object]:
    """What the index is asked for ``query`` (for debugging and tests)."""
    parsed = expand(parse_query(query), store.expansion_table()).query
    with store.engine.connect() as conn:
        terms = phrase_terms(parsed)
        plan = compile_query(parsed, store.search_index.splits(conn, terms) if terms else None)
    return {
        "exact": plan.loose == plan.strict,
        "loose": plan.loose,
        "strict": plan.strict,
        "conditions": [
            (c.node.op, c.node.value, c.negated)
            if isinstance(c.node, Upvotes)
            else (c.node, c.negated)
            for c in plan.conditions
        ],
    }


__all__ = [
    "BLOCK",
    "DEFAULT_BUDGET",
    "TOTAL_CAP",
    "QueryRun",
    "SearchBudget",
    "SearchResult",
    "SearchResults",
    "SORTS",
    "UPVOTES_POOL",
    "explain_plan",
    "order_for",
    "retrying",
    "run_query",
    "search_store",
    "validate_query",
]
