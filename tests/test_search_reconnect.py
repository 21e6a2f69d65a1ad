"""A search on PostgreSQL takes its pooled connection without a ping (bridge/store/liveness.py)
and asks again once when that connection is dead: the server's sessions ended under it, as
a restart ends them, must cost no failed search and no failed store call."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import text

import bridge.search as search_module
from bridge.errors import StoreError
from bridge.models import Paper
from bridge.search import search_store
from bridge.search_newest import newest_matches
from bridge.store import Store, open_store
from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.postgres

T0 = datetime(2026, 6, 1, tzinfo=UTC)
PAPERS = [
    Paper(
        arxiv_id=f"2401.{n:05d}",
        title=f"Diffusion paper {n}",
        abstract="We study sampling." if n % 2 else "Time steps of a solver.",
        listed_on=T0.date(),
    )
    for n in range(1, 7)
]


def pooled_pids(store: Store, count: int) -> list[int]:
    """The server pids of ``count`` connections, all then back in the pool."""
    conns = [store.engine.connect() for _ in range(count)]
    try:
        return [int(c.execute(text("SELECT pg_backend_pid()")).scalar_one()) for c in conns]
    finally:
        for conn in conns:
            conn.close()


def end_sessions(pids: list[int]) -> None:
    """End these server sessions (``pg_terminate_backend``) and wait until they are gone."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        for pid in pids:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(200):
            alive = admin.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (pids,)
            ).fetchone()
            if alive == (0,):
                return
            time.sleep(0.01)
    raise AssertionError(f"sessions {pids} still alive")


@pytest.fixture
def pg_store(postgres_url: str):  # type: ignore[no-untyped-def]
    store = open_store(postgres_url)
    store.add_papers(PAPERS, now=T0)
    yield store
    store.close()


def test_a_search_on_a_dead_connection_asks_again_on_a_new_one(
    pg_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    before = search_store(pg_store, "diffusion")
    assert before.total == 6
    # Every pooled connection ends at once, as when the server restarts.
    end_sessions(pooled_pids(pg_store, 3))
    with caplog.at_level(logging.INFO, logger="bridge.search"):
        after = search_store(pg_store, "diffusion")
    assert [r.stored.paper.arxiv_id for r in after.items] == [
        r.stored.paper.arxiv_id for r in before.items
    ]
    assert "asking again on a new connection" in caplog.text
    # Later searches and the store's other calls (pinged on checkout) find live connections.
    assert search_store(pg_store, '"time steps"').total == 3
    end_sessions(pooled_pids(pg_store, 2))
    assert pg_store.count_papers() == 6
    end_sessions(pooled_pids(pg_store, 1))
    assert [r.stored.paper.arxiv_id for r in newest_matches(pg_store, "sampling", limit=2)] == [
        "2401.00005",
        "2401.00003",
    ]


def test_a_search_that_fails_again_says_so(
    pg_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The second try's connection dies too: the search fails with a StoreError, no traceback
    # of the driver's.
    real = search_module._search

    def dying(run, *args):  # type: ignore[no-untyped-def]
        pid = run.conn.connection.dbapi_connection.info.backend_pid
        end_sessions([pid])
        return real(run, *args)

    monkeypatch.setattr(search_module, "_search", dying)
    with pytest.raises(StoreError, match="connection was lost"):
        search_store(pg_store, "diffusion")
    monkeypatch.setattr(search_module, "_search", real)
    assert search_store(pg_store, "diffusion").total == 6


def test_a_search_leaves_its_settings_to_searches_only(pg_store: Store) -> None:
    # A search runs in autocommit mode under session settings (its budget as
    # statement_timeout, no sequential scans, generic plans) that stay on the pooled
    # connection for the next search; the store's other calls get the server's defaults.
    def settings() -> list[str]:
        with pg_store.engine.connect() as conn:
            return [
                str(conn.execute(text(f"SHOW {name}")).scalar_one())
                for name in ("statement_timeout", "enable_seqscan", "plan_cache_mode")
            ]

    defaults = settings()
    assert search_store(pg_store, "diffusion").total == 6
    assert pg_store.engine.pool.checkedin() == 1  # type: ignore[attr-defined]
    assert settings() == defaults  # the same connection, its settings reset on checkout
    assert search_store(pg_store, "diffusion").total == 6
    assert search_store(pg_store, "sampling").total == 3
    assert pg_store.count_papers() == 6
    assert settings() == defaults
    with pg_store.engine.connect() as conn:
        # Not left in autocommit mode: a rollback still undoes the caller's writes.
        conn.execute(text("CREATE TEMP TABLE t (x int)"))
        conn.rollback()
        assert conn.execute(text("SELECT to_regclass('pg_temp.t')")).scalar() is None
