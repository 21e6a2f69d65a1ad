"""Several writers on one store at once, on SQLite and PostgreSQL: the schema is created once,
papers stored from two connections are merged (never an IntegrityError)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import event

from bridge.models import AddResult, Paper
from bridge.store import Store, open_store
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
