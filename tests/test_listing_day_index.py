"""A listing day's seq range, read by a feed's walk over listing days
(``SearchIndex.listing_seqs``), and the PostgreSQL index it seeks in (migration 12)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import inspect

from bridge.models import Paper
from bridge.store import Store, open_store
from bridge.store.migrations import MIGRATIONS


def _listed(n: int, day: date) -> Paper:
    return Paper(
        arxiv_id=f"2601.{n:05d}",
        title=f"Paper {n}",
        abstract="We study sparse attention.",
        sources=["hf"],
        listed_on=day,
    )


def test_a_days_seq_range_is_its_first_and_last_paper(database_url: str) -> None:
    store = open_store(database_url)
    try:
        now = datetime(2026, 1, 10, tzinfo=UTC)
        days = [date(2026, 1, 5), date(2026, 1, 7), date(2026, 1, 6), date(2026, 1, 7)]
        for n, day in enumerate(days, start=1):  # stored out of day order: a backfill
            store.add_papers([_listed(2 * n, day), _listed(2 * n + 1, day)], now=now)
        index = store.search_index
        with store.engine.connect() as conn:
            seqs = {
                day: sorted(
                    seq
                    for (seq,) in conn.exec_driver_sql(
                        f"SELECT seq FROM papers WHERE listed_on = '{day.isoformat()}'"
                    )
                )
                for day in set(days)
            }
            for first, last in [(date(2026, 1, 7),) * 2, (date(2026, 1, 5), date(2026, 1, 6))]:
                wanted = [
                    seq for day, found in seqs.items() if first <= day <= last for seq in found
                ]
                assert index.listing_seqs(conn, first, last) == (min(wanted), max(wanted))
            assert index.listing_seqs(conn, date(2026, 1, 8), date(2026, 1, 9)) is None
    finally:
        store.close()


@pytest.mark.postgres
def test_postgresql_stores_get_the_listing_day_index_new_or_migrated(postgres_url: str) -> None:
    store = open_store(postgres_url)
    try:
        assert "ix_papers_listed_on_seq" in _indexes(store)
        with store.engine.begin() as conn:
            conn.exec_driver_sql("DROP INDEX ix_papers_listed_on_seq")
            conn.exec_driver_sql(f"UPDATE schema_version SET version = {len(MIGRATIONS) - 1}")
    finally:
        store.close()
    store = open_store(postgres_url)  # opening it migrates it
    try:
        assert "ix_papers_listed_on_seq" in _indexes(store)
    finally:
        store.close()


def test_sqlite_stores_need_no_listing_day_index(sqlite_url: str) -> None:
    # SQLite's index on listed_on holds the rowid, which is seq.
    store = open_store(sqlite_url)
    try:
        assert "ix_papers_listed_on" in _indexes(store)
        assert "ix_papers_listed_on_seq" not in _indexes(store)
    finally:
        store.close()


def _indexes(store: Store) -> set[str]:
    with store.engine.connect() as conn:
        return {index["name"] or "" for index in inspect(conn).get_indexes("papers")}
