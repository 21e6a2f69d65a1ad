"""The store contract, on SQLite and on PostgreSQL: one paper, one identity; only new is new."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bridge.models import Paper
from bridge.store import Store, _json_list, open_store, schema
from bridge.store.migrations import MIGRATIONS, current_version


def arxiv_paper(arxiv_id: str = "2609.26811", **kw: object) -> Paper:
    base = dict(
        title="The Drift Contract",
        abstract="Local learning trains each layer.",
        authors=("Fabien Polly",),
        version=1,
        source="arxiv",
        listed_on=date(2026, 9, 24),
        announce_type="new",
        categories=("cs.LG",),
    )
    base.update(kw)
    return Paper(arxiv_id, **base)  # type: ignore[arg-type]


def hf_paper(arxiv_id: str = "2609.26811", **kw: object) -> Paper:
    base = dict(
        title="The Drift Contract",
        abstract="Local learning trains each layer.",
        authors=("Fabien Polly",),
        source="hf",
        listed_on=date(2026, 9, 25),
        upvotes=12,
        github_repo="https://github.com/x/drift",
        ai_keywords=("local learning",),
    )
    base.update(kw)
    return Paper(arxiv_id, **base)  # type: ignore[arg-type]


def test_new_paper_is_new_once(store: Store) -> None:
    first = store.add_papers([arxiv_paper()])
    assert [p.paper.arxiv_id for p in first.new] == ["2609.26811"]
    again = store.add_papers([arxiv_paper()])
    assert again.new == [] and again.revised == [] and again.skipped == 1


def test_same_paper_on_hf_and_arxiv_is_one_paper_with_merged_facts(store: Store) -> None:
    store.add_papers([arxiv_paper(categories=("cs.LG", "cs.AI"), doi="10.1/x")])
    result = store.add_papers([hf_paper()])
    assert result.new == [] and result.merged == 1
    stored = store.get_paper("2609.26811")
    assert stored is not None
    paper = stored.paper
    assert paper.sources == ("arxiv", "hf")
    assert paper.upvotes == 12 and paper.github_repo == "https://github.com/x/drift"
    assert paper.categories == ("cs.LG", "cs.AI") and paper.doi == "10.1/x"
    assert paper.listed_on == date(2026, 9, 24)  # the first listing day stays
    assert paper.ai_keywords == ("local learning",)
    assert store.count_papers() == 1


def test_cross_list_and_other_category_in_one_batch_fold(store: Store) -> None:
    result = store.add_papers(
        [
            arxiv_paper(categories=("cs.LG",)),
            arxiv_paper(categories=("stat.ML",), announce_type="cross"),
        ]
    )
    assert len(result.new) == 1
    stored = store.get_paper("2609.26811")
    assert stored is not None and stored.paper.categories == ("cs.LG", "stat.ML")


def test_later_hf_day_is_not_new_and_upvotes_update(store: Store) -> None:
    store.add_papers([hf_paper(upvotes=3)])
    result = store.add_papers([hf_paper(upvotes=40, listed_on=date(2026, 9, 28))])
    assert result.new == [] and result.merged == 1
    stored = store.get_paper("2609.26811")
    assert stored is not None
    assert stored.paper.upvotes == 40 and stored.paper.listed_on == date(2026, 9, 25)


def test_newer_version_is_a_revision_never_new(store: Store) -> None:
    store.add_papers([arxiv_paper()])
    result = store.add_papers(
        [arxiv_paper(version=2, title="The Drift Contract, revised", announce_type="replace")]
    )
    assert result.new == []
    assert [r.paper.version for r in result.revised] == [2]
    stored = store.get_paper("2609.26811")
    assert stored is not None
    assert stored.paper.version == 2 and stored.paper.title == "The Drift Contract, revised"
    # An older version seen later changes nothing it shouldn't.
    result = store.add_papers([arxiv_paper(version=1, title="old title")])
    assert result.revised == []
    stored = store.get_paper("2609.26811")
    assert stored is not None and stored.paper.title == "The Drift Contract, revised"


def test_replacement_of_unknown_paper_is_stored_as_revision_not_announced(store: Store) -> None:
    result = store.add_papers([arxiv_paper("2009.13987", version=3, announce_type="replace")])
    assert result.new == [] and len(result.revised) == 1
    stored = store.get_paper("2009.13987")
    assert stored is not None and stored.announced is False


def test_hf_record_does_not_override_arxiv_text_but_fills_gaps(store: Store) -> None:
    store.add_papers([arxiv_paper(title="Exact arXiv title", version=2, abstract="")])
    store.add_papers([hf_paper(title="HF title", abstract="HF abstract")])
    stored = store.get_paper("2609.26811")
    assert stored is not None
    assert stored.paper.title == "Exact arXiv title"
    assert stored.paper.abstract == "HF abstract"


def test_announce_policy_and_recent(store: Store) -> None:
    store.add_papers(
        [arxiv_paper("2609.00001"), arxiv_paper("2609.00002", listed_on=date(2026, 9, 23))],
        announce=lambda p: p.listed_on == date(2026, 9, 24),
    )
    recent = store.recent_papers(10)
    assert [p.paper.arxiv_id for p in recent] == ["2609.00001"]
    everything = store.recent_papers(10, announced_only=False)
    assert [p.paper.arxiv_id for p in everything] == ["2609.00002", "2609.00001"]
    assert [p.paper.arxiv_id for p in store.iter_papers(batch=1)] == ["2609.00001", "2609.00002"]


def test_old_style_ids_and_text_round_trip(store: Store) -> None:
    paper = arxiv_paper(
        "hep-ex/0307015",
        title="Über $\\alpha$-decay < & > 'quotes'",
        authors=("Jörg Müller", "李 小龙"),
        published_at=datetime(2003, 7, 8, 12, 0, tzinfo=UTC),
    )
    store.add_papers([paper])
    stored = store.get_paper("hep-ex/0307015")
    assert stored is not None
    assert stored.paper.title == paper.title and stored.paper.authors == paper.authors
    assert stored.paper.published_at == paper.published_at


def test_validators_and_source_state(store: Store) -> None:
    assert store.get_validators("http://x/a") is None
    store.set_validators("http://x/a", '"e1"', "Mon, 01 Jan 2024 00:00:00 GMT")
    store.set_validators("http://x/a", '"e2"', None)
    assert store.get_validators("http://x/a") == ('"e2"', None)
    store.record_poll_failure("hf", "fetch http://x: refused")
    store.record_poll_failure("hf", "again")
    state = store.source_state("hf")
    assert state.consecutive_failures == 2 and state.last_success_at is None
    store.record_poll_success("hf", date(2026, 6, 12))
    state = store.source_state("hf")
    assert state.consecutive_failures == 0 and state.caught_up_to == date(2026, 6, 12)
    assert state.last_error == "again"  # kept for status pages


def test_progress_cursor(store: Store) -> None:
    assert store.get_progress("backfill:hf") is None
    store.set_progress("backfill:hf", "2023-05-04")
    store.set_progress("backfill:hf", "2023-05-05")
    assert store.get_progress("backfill:hf") == "2023-05-05"


def test_migrations_are_recorded_and_idempotent(database_url: str) -> None:
    first = open_store(database_url)
    first.add_papers([arxiv_paper()])
    first.close()
    again = open_store(database_url)  # a restart migrates nothing and loses nothing
    with again.engine.connect() as conn:
        assert current_version(conn) == len(MIGRATIONS)
        assert conn.execute(select(schema.papers.c.arxiv_id)).scalars().all() == ["2609.26811"]
    again.close()


def test_restart_announces_nothing_twice(database_url: str) -> None:
    first = open_store(database_url)
    assert len(first.add_papers([arxiv_paper(), hf_paper("2606.00467")]).new) == 2
    first.close()
    second = open_store(database_url)
    result = second.add_papers([arxiv_paper(), hf_paper("2606.00467")])
    assert result.new == [] and result.revised == []
    second.close()


@given(st.lists(st.text()).map(tuple))
def test_json_lists_are_what_json_dumps_writes(values: tuple[str, ...]) -> None:
    assert _json_list(values) == json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def test_sqlite_stores_every_time_in_one_sortable_format(sqlite_url: str) -> None:
    """Bulk inserts write times exactly as Core statements do, so text comparisons in SQL
    order them right (a '+00:00' suffix would sort before '.000000')."""
    import re

    store = open_store(sqlite_url)
    try:
        store.add_papers([Paper("2606.00001", "A")], now=datetime(2026, 6, 1, 5, 0, 0, tzinfo=UTC))
        store.add_papers(
            [Paper("2606.00001", "A", upvotes=3)], now=datetime(2026, 6, 1, 6, 0, 0, tzinfo=UTC)
        )
        with store.engine.connect() as conn:
            first, changed = conn.exec_driver_sql(
                "SELECT first_seen_at, changed_at FROM papers"
            ).one()
    finally:
        store.close()
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}"
    assert re.fullmatch(pattern, first), first  # written by the bulk insert
    assert re.fullmatch(pattern, changed), changed  # written by an UPDATE


def test_bulk_insert_stores_what_a_core_insert_stores(database_url: str) -> None:
    """BulkInsert converts each distinct value once; the rows must still come out exactly as
    SQLAlchemy's own insert writes them: a shared time, the same instant in another zone,
    None, dates and flags included."""
    from datetime import timedelta, timezone

    from sqlalchemy import insert

    from bridge.store import _to_row
    from bridge.store.bulk import BulkInsert

    now = datetime(2026, 6, 1, 5, 0, 0, 123456, tzinfo=UTC)
    elsewhere = now.astimezone(timezone(timedelta(hours=-4)))  # equal to now, hashes alike

    def rows(prefix: str) -> list[dict[str, object]]:
        out = []
        for n in range(6):
            paper = Paper(
                f"{prefix}{n}",
                f"Title {n}",
                authors=("Ann", "Bo") if n % 2 else (),
                published_at=(now, elsewhere, None)[n % 3],
                listed_on=date(2026, 6, 1) if n % 2 else None,
            )
            values = _to_row(paper)
            values.update(
                first_seen_at=now,
                changed_at=elsewhere if n % 2 else now,
                revised_at=None if n % 3 else now + timedelta(seconds=n),
                announced=bool(n % 2),
            )
            out.append(values)
        return out

    bulk_store = open_store(database_url)
    try:
        papers = schema.papers
        with bulk_store.engine.begin() as conn:
            BulkInsert(bulk_store.engine, papers, skip=("seq",)).execute(conn, rows("2606.0000"))
            conn.execute(insert(papers), rows("2606.1000"))
        columns = [c.name for c in papers.columns if c.name not in ("seq", "arxiv_id")]
        text = ", ".join(f"CAST({name} AS TEXT)" for name in columns)
        with bulk_store.engine.connect() as conn:
            stored = conn.exec_driver_sql(
                f"SELECT arxiv_id, {text} FROM papers ORDER BY arxiv_id"
            ).all()
    finally:
        bulk_store.close()
    by_bulk, by_core = stored[:6], stored[6:]
    assert [row[0] for row in by_bulk] == [f"2606.0000{n}" for n in range(6)]
    for bulk_row, core_row in zip(by_bulk, by_core, strict=True):
        assert bulk_row[1:] == core_row[1:]
