"""No search can freeze the server: every search has a budget, and searches run in a pool of
their own whose queue is bounded, so health checks and feeds are answered meanwhile."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import OperationalError

import bridge.search as search_module
from adapters.atom import FeedOptions, FeedSite
from bridge.app import Bridge, open_bridge
from bridge.chat import ChatService
from bridge.cli import main
from bridge.config import Settings
from bridge.errors import ChatUsageError, SearchBusy, SearchTooBroad
from bridge.ledger import build_ledger
from bridge.models import Paper
from bridge.search import SearchBudget, search_store
from bridge.search_pool import SearchPool
from bridge.store import Store, open_store
from bridge.web import create_web_app

# Every paper has upvotes, and all but the oldest three say "the": ``upvotes>=0 -the`` gives
# the index nothing to narrow with, so papers are read newest first and checked one by one.
BROAD = "upvotes>=0 -the"
UNLIMITED = SearchBudget(papers=1_000_000, seconds=1e9)
# No paper: every one has fewer than 50 upvotes.
NO_VOTES = "upvotes>=0 -(upvotes<1000)"


def papers(count: int, plain: int = 3) -> list[Paper]:
    return [
        Paper(
            f"2606.{n:05d}",
            f"Study {n} of sparse models",
            abstract=("We study sparse models." if n <= plain else "We study the sparse models."),
            upvotes=n % 50,
            # Feeds list papers by listing day: one each, newest last, as a backfill stores.
            listed_on=date(2024, 1, 1) + timedelta(days=n),
        )
        for n in range(1, count + 1)
    ]


class Ticks:
    """A clock that moves ``step`` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        self.now += self.step
        return self.now


# -- the budget ------------------------------------------------------------------------------------


def test_a_query_the_index_cannot_narrow_stops_at_its_papers_budget(store: Store) -> None:
    store.add_papers(papers(120))
    assert [
        r.stored.paper.arxiv_id for r in search_store(store, BROAD, budget=UNLIMITED).items
    ] == [
        "2606.00003",
        "2606.00002",
        "2606.00001",
    ]
    with pytest.raises(SearchTooBroad) as caught:
        search_store(store, BROAD, budget=SearchBudget(papers=50, seconds=1e9))
    message = str(caught.value)
    assert message.startswith("Too broad to search: the index cannot narrow it")
    assert "50 papers read one by one did not fill the page" in message
    assert "Narrow it with a word, a phrase, a category (cat:cs.LG)" in message
    assert message.endswith(f"The query: {BROAD}")


def test_counting_gives_up_quietly_and_says_at_least(store: Store) -> None:
    # Nearly every paper matches, and none surely (no paper says zebra): the page fills at
    # once, and counting the rest would read every paper.
    store.add_papers(papers(120))
    query = "upvotes>=1 OR zebra"
    # Ranking reads a block of 100 matches; 110 papers are enough for that and no more.
    results = search_store(store, query, limit=10, budget=SearchBudget(papers=110))
    assert len(results.items) == 10
    assert results.total_capped and results.total >= 11
    unlimited = search_store(store, query, limit=10, budget=UNLIMITED)
    assert (unlimited.total, unlimited.total_capped) == (118, False)


def test_checking_paper_by_paper_stops_when_its_time_is_up(store: Store) -> None:
    store.add_papers(papers(120))
    clock = Ticks(0.01)
    with pytest.raises(SearchTooBroad, match="needs more than the 20 ms of work"):
        search_store(store, BROAD, budget=SearchBudget(papers=10_000, seconds=0.02, clock=clock))
    assert clock.reads < 10  # it stopped soon after the time was up, not at the end


def test_a_long_statement_is_cut_off_by_the_budget(sqlite_url: str) -> None:
    """SQLite's own work (here a scan of every paper for votes no paper has: none has fewer
    than 1,000, and with the exclusion the papers table is read, not the small table of
    votes) is stopped by a progress handler reading the budget's clock."""
    store = open_store(sqlite_url)
    try:
        store.add_papers(papers(6000))  # a scan of them is some 30,000 SQLite steps
        clock = Ticks(2.0)  # every read of the clock is two seconds later
        with pytest.raises(SearchTooBroad, match="needs more than the 1500 ms of work"):
            search_store(store, NO_VOTES, budget=SearchBudget(seconds=1.5, clock=clock))
        # The handler is gone afterwards: the same connection answers in full.
        assert search_store(store, NO_VOTES, budget=UNLIMITED).total == 0
    finally:
        store.close()


# -- the pool --------------------------------------------------------------------------------------


class Gate:
    """Work that holds a search thread until the test opens the gate."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.started = threading.Event()

    def hold(self) -> str:
        self.started.set()
        if not self.opened.wait(30):
            raise TimeoutError("the test never opened the gate")
        return "done"


@pytest.fixture
def gate() -> Iterator[Gate]:
    held = Gate()
    yield held
    held.opened.set()


async def test_a_full_pool_says_busy_at_once_and_frees_its_places(gate: Gate) -> None:
    pool = SearchPool(workers=1, queue=1, retry_after=3)
    running = asyncio.create_task(pool.run(gate.hold))
    waiting = asyncio.create_task(pool.run(gate.hold))
    await asyncio.to_thread(gate.started.wait, 10)
    with pytest.raises(SearchBusy) as caught:
        await pool.run(gate.hold)
    assert caught.value.retry_after == 3
    assert "try again in 3 s" in str(caught.value)
    gate.opened.set()
    assert await asyncio.gather(running, waiting) == ["done", "done"]
    assert pool.taken == 0
    pool.close()


async def test_a_caller_that_gives_up_keeps_the_place_until_the_thread_is_free(
    gate: Gate,
) -> None:
    pool = SearchPool(workers=1, queue=0)
    abandoned = asyncio.create_task(pool.run(gate.hold))
    await asyncio.to_thread(gate.started.wait, 10)
    abandoned.cancel()
    with pytest.raises(asyncio.CancelledError):
        await abandoned
    with pytest.raises(SearchBusy):  # the thread still works on it
        await pool.run(gate.hold)
    gate.opened.set()
    await asyncio.to_thread(pool.close, wait=True)
    assert pool.taken == 0


# -- every place a search is asked for ---------------------------------------------------------------


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    settings = Settings.model_validate(
        {
            "store": {"database_url": f"sqlite:///{tmp_path / 'broad.db'}"},
            "sources": {"hf": {"base_url": "http://127.0.0.1:9"}},
            "subscriptions": [{"name": "broad", "query": BROAD}],
        }
    )
    async with open_bridge(settings) as opened:
        # More papers to read one by one than the default budget allows.
        opened.store.add_papers(papers(1200))
        yield opened


def client_for(bridge: Bridge, pool: SearchPool | None = None) -> httpx.AsyncClient:
    site = FeedSite(bridge, FeedOptions(version_ttl=0, stale_grace=None), searches=pool)
    app = create_web_app(
        bridge,
        extra_routes=site.routes(),
        middleware=site.middleware(),
        fast_paths=site.fast_paths(),
    )
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://feeds.test")


async def test_the_page_and_the_feeds_say_too_broad_and_how_to_narrow(bridge: Bridge) -> None:
    async with client_for(bridge) as client:
        page = await client.get("/search", params={"q": BROAD, "page": 250})
        feed = await client.get("/feeds/search.atom", params={"q": BROAD})
        fine = await client.get("/search", params={"q": "sparse"})
    assert page.status_code == 422
    assert "Too broad to search" in page.text and "Narrow it with a word" in page.text
    assert "or ask for an earlier page" in page.text
    assert feed.status_code == 422 and feed.text.startswith("Too broad to search")
    assert fine.status_code == 200
    assert fine.headers["server-timing"].startswith("search;dur=")


async def test_a_configured_subscription_too_broad_to_serve_is_a_422_not_a_500(
    bridge: Bridge, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(bridge) as client:
        feed = await client.get("/feeds/subscriptions/broad.atom")
    assert feed.status_code == 422
    assert feed.text.startswith("This subscription's query is too broad to serve as a feed")
    assert "Narrow it with a word" in feed.text
    # The operator, who wrote the query, hears of it in the log.
    assert "subscription feeds/subscriptions/broad is too broad to serve" in caplog.text


async def test_health_is_answered_while_every_search_worker_is_busy(
    bridge: Bridge, gate: Gate
) -> None:
    pool = SearchPool(workers=1, queue=0, retry_after=2)
    held = asyncio.create_task(pool.run(gate.hold))
    await asyncio.to_thread(gate.started.wait, 10)
    async with client_for(bridge, pool) as client:
        health = await client.get("/healthz")
        page = await client.get("/search", params={"q": "sparse"})
        feed = await client.get("/feeds/search.json", params={"q": "sparse"})
        plain = await client.get("/feeds/all.atom")
    assert health.json()["store"] == "ok"
    assert (page.status_code, page.headers["retry-after"]) == (503, "2")
    assert "every search worker is busy" in page.text
    assert (feed.status_code, feed.headers["retry-after"]) == (503, "2")
    assert plain.status_code == 200  # a feed without a query needs no search worker
    gate.opened.set()
    assert await held == "done"
    pool.close()


async def test_chat_says_too_broad(bridge: Bridge) -> None:
    chat = ChatService(bridge.store, build_ledger(bridge.store, bridge.settings), bridge.settings)
    with pytest.raises(ChatUsageError, match="^Too broad to search: .* Narrow it with a word"):
        await chat.search(BROAD)
    assert (await chat.search("sparse")).results.total == 200


async def test_chat_says_busy(bridge: Bridge, gate: Gate) -> None:
    pool = SearchPool(workers=1, queue=0, retry_after=5)
    held = asyncio.create_task(pool.run(gate.hold))
    await asyncio.to_thread(gate.started.wait, 10)
    ledger = build_ledger(bridge.store, bridge.settings)
    chat = ChatService(bridge.store, ledger, bridge.settings, searches=pool)
    with pytest.raises(ChatUsageError, match="try again in 5 seconds"):
        await chat.search("sparse")
    gate.opened.set()
    await held
    pool.close()


def test_the_cli_says_too_broad(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PAPERBRIDGE_CONFIG", raising=False)
    store = open_store(f"sqlite:///{tmp_path / 'data' / 'paperbridge.db'}")
    store.add_papers(papers(1200))
    store.close()
    assert main(["search", BROAD]) == 2
    assert capsys.readouterr().err.startswith("paperbridge: Too broad to search: ")
    assert main(["search", "sparse"]) == 0


def test_work_inside_one_sqlite_step_is_interrupted_when_the_time_is_up(sqlite_url: str) -> None:
    """FTS5 walks doclists inside single steps, where no progress handler runs: a watchdog
    thread interrupts the connection once the budget's seconds have passed in real time.
    Here the budget's own clock never moves, so only the watchdog can stop the statement
    (ten million steps of a recursive count: seconds of work)."""
    store = open_store(sqlite_url)
    never = SearchBudget(seconds=0.01, clock=lambda: 0.0)
    count = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000000)"
        " SELECT count(*) FROM n"
    )
    try:
        with (
            store.engine.connect() as conn,
            search_module._bounded(conn, search_module._Allowance(never)),
        ):
            with pytest.raises(OperationalError, match="interrupted"):
                conn.exec_driver_sql(count).all()
        with store.engine.connect() as conn:  # disarmed: the connection works in full again
            assert conn.exec_driver_sql(count).scalar() == 10_000_000
    finally:
        store.close()


@pytest.mark.postgres
def test_the_budget_goes_with_a_searchs_first_statement_on_postgresql(postgres_url: str) -> None:
    # The SET LOCAL is sent together with the search's first statement (one round trip), and
    # still bounds it and those after it; the connection's next user is not bounded.
    from bridge.store.search_index import _query

    store = open_store(postgres_url)
    try:
        budget = SearchBudget(seconds=0.05)
        with (
            store.engine.connect() as conn,
            search_module._bounded(conn, search_module._Allowance(budget)),
        ):
            assert _query(conn, "SHOW statement_timeout") == [("50ms",)]
            with pytest.raises(Exception) as caught:
                _query(conn, "SELECT pg_sleep(30)")
        assert search_module._interrupted(caught.value)
        with store.engine.connect() as conn:
            assert _query(conn, "SHOW statement_timeout") == [("0",)]
        with store.engine.connect() as conn:
            with search_module._bounded(conn, search_module._Allowance(budget)):
                pass  # nothing sent: the setting is dropped, not left for the next user
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
    finally:
        store.close()


def test_a_postgresql_statement_past_the_budget_is_cancelled(postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        budget = SearchBudget(seconds=0.05)
        with (
            store.engine.connect() as conn,
            search_module._bounded(conn, search_module._Allowance(budget)),
        ):
            with pytest.raises(OperationalError) as caught:
                conn.exec_driver_sql("SELECT pg_sleep(30)").all()
        assert search_module._interrupted(caught.value)
        with store.engine.connect() as conn:  # the timeout was for that transaction only
            assert conn.exec_driver_sql("SHOW statement_timeout").scalar() == "0"
    finally:
        store.close()
