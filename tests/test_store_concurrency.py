"""Several writers on one store at once, on SQLite and PostgreSQL: the schema is created once,
papers stored from two connections are merged (never an IntegrityError), and a bulk import on
SQLite leaves the write lock to other writers in turns."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from bridge.models import AddResult, Paper
from bridge.store import Store, open_store
from bridge.store.locking import HOLD, TURN
from tests.threads import Running

# Statements with which a transaction starts to store (or, unfixed, stores at once).
BEGINS = ("BEGIN", "LOCK TABLE", "SELECT PG_ADVISORY_XACT_LOCK", "INSERT", "CREATE")


def when_it_begins(store: Store, then: Callable[[], None]) -> None:
    """Call ``then`` when ``store`` starts a statement that takes (or waits for) a write lock."""

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith(BEGINS):
            then()

    event.listen(store.engine, "before_cursor_execute", before)


def test_two_processes_creating_the_schema_at_once_create_it_once(database_url: str) -> None:
    first = open_store(database_url, migrate_schema=False)
    second = open_store(database_url, migrate_schema=False)
    inside, second_begins = threading.Event(), threading.Event()

    def hold_first(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "CREATE TABLE papers" in statement:
            inside.set()  # the first is half-way through creating the schema
            assert second_begins.wait(30)

    event.listen(first.engine, "after_cursor_execute", hold_first)
    when_it_begins(second, second_begins.set)
    try:
        migrating = Running(first.migrate)
        migrating.start()
        assert inside.wait(30)
        assert second.migrate() == migrating.outcome()
        assert second.count_papers() == 0 and second.created_at() == first.created_at()
    finally:
        first.close()
        second.close()


@pytest.mark.parametrize("second_writes", ["poll", "import"])
def test_papers_stored_from_two_connections_at_once_are_merged(
    database_url: str, second_writes: str
) -> None:
    first = open_store(database_url)
    second = open_store(database_url)
    papers = [Paper(f"2606.{n:05d}", f"Paper {n}") for n in range(10)]
    voted = [Paper(p.arxiv_id, p.title, upvotes=7) for p in papers]
    second_begins = threading.Event()
    when_it_begins(second, second_begins.set)

    def store_second() -> AddResult:
        if second_writes == "poll":
            return second.add_papers(voted, announce=False)
        with second.bulk_writer() as writer:
            return writer.add_papers(voted, announce=False)

    try:
        with first.bulk_writer() as writer:
            writer.add_papers(papers[:5], announce=False)  # stored, not committed yet
            storing = Running(store_second)
            storing.start()
            # The second starts storing while the first's transaction is open; the first
            # commits as its writer closes.
            assert second_begins.wait(30)
        result = storing.outcome()
        # The second saw the first's papers: merged them, stored the others as new.
        assert (len(result.new), result.merged) == (5, 5)
        assert first.count_papers() == 10
        assert {p.paper.upvotes for p in first.recent_papers(announced_only=False)} == {7}
    finally:
        first.close()
        second.close()


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def can_write(path: Path) -> bool:
    """Whether another connection could take SQLite's write lock right now."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc)
        return False
    finally:
        conn.close()  # rolls back
    return True


def test_a_bulk_import_on_sqlite_leaves_the_write_lock_to_others_in_turns(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pb.db"
    store = open_store(f"sqlite:///{path}")
    clock = FakeClock()
    batches = iter(
        [[Paper(f"2606.{b:02d}{n:03d}", f"Paper {n}") for n in range(10)] for b in range(6)]
    )
    try:
        with store.bulk_writer(commit_every=10_000, clock=clock, sleep=clock.sleep) as writer:
            writer.add_papers(next(batches), announce=False)
            assert not can_write(path)  # a transaction is open
            clock.now += HOLD / 2
            writer.add_papers(next(batches), announce=False)
            assert not can_write(path)
            clock.now += HOLD / 2
            writer.add_papers(next(batches), announce=False)
            # Held long enough: committed, far short of commit_every, and free for others...
            assert can_write(path) and clock.slept == []
            writer.add_papers(next(batches), announce=False)
            # ... until its turn is over: it waited that long before taking the lock again.
            assert clock.slept == [pytest.approx(TURN)] and not can_write(path)
            clock.now += HOLD
            writer.add_papers(next(batches), announce=False)
            assert can_write(path)
            clock.now += 2 * TURN  # waiting for parsing, say: the lock was free then
            writer.add_papers(next(batches), announce=False)
            assert clock.slept == [pytest.approx(TURN)]
        assert store.count_papers() == 60
    finally:
        store.close()
