"""A value the database refuses costs its paper, not the batch: the rest is stored, on SQLite
and PostgreSQL, and the refused paper comes back with the database's reason. A database that
fails (not a value it refuses) still fails the whole batch."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event

from bridge.errors import StoreError
from bridge.models import Paper
from bridge.search import search_store
from bridge.store import Store, open_store


def good(n: int, **changes: Any) -> Paper:
    paper = Paper(
        arxiv_id=f"2601.{n:05d}",
        title=f"Good paper number {n} on sparse transformers",
        abstract="We study sparse attention.",
        authors=("Ada Lovelace",),
        source="hf",
        upvotes=n,
    )
    return paper.with_changes(**changes)


# Values a parser should never hand over; some only PostgreSQL refuses, which is why every
# parsed paper is held to bridge.sources.limits before it reaches a store.
REFUSED_BY_BOTH = {
    "version beyond 64 bits": {"version": 2**64},
    "lone surrogate": {"title": "Bad \ud800 title"},
    "naive time": {"published_at": datetime(2026, 1, 1)},
    "time overflowing UTC": {
        "published_at": datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    },
    "author not text": {"authors": (7,)},
    "no title": {"title": None},
}
REFUSED_BY_POSTGRES = {
    "version beyond 32 bits": {"version": 2**31},
    "count below -2^31": {"upvotes": -(2**31) - 1},
    "NUL in text": {"abstract": "a\x00b"},
    "id over 64 characters": {"arxiv_id": "a" * 60 + "/1234567"},
    "category over 64 characters": {"primary_category": "c" * 65},
}


@pytest.mark.parametrize("case", [*REFUSED_BY_BOTH, *REFUSED_BY_POSTGRES])
def test_a_paper_the_database_refuses_is_left_out_and_the_rest_of_its_batch_stored(
    store: Store, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    changes = {**REFUSED_BY_BOTH, **REFUSED_BY_POSTGRES}[case]
    bad = good(3, **{"title": "The quokka paper", **changes})
    batch = [good(n) for n in range(1, 3)] + [bad] + [good(n) for n in range(4, 1200)]
    with caplog.at_level(logging.WARNING):
        result = store.add_papers(batch)
    # The store logs nothing itself (its callers name the paper once), nor does the driver.
    assert caplog.records == []
    stored_ids = {p.paper.arxiv_id for p in result.new}
    assert stored_ids >= {p.arxiv_id for p in batch if p is not bad}
    refused = case in REFUSED_BY_BOTH or store.engine.dialect.name == "postgresql"
    if refused:
        ((paper, why),) = result.refused
        assert paper is bad and why
        assert store.get_paper(bad.arxiv_id) is None and bad.arxiv_id not in stored_ids
    else:  # SQLite takes what PostgreSQL refuses: the stores would disagree unchecked
        assert result.refused == [] and store.get_paper(bad.arxiv_id) is not None
    assert store.count_papers() == len(batch) - refused
    # The search index holds what was stored, and nothing of the paper left out.
    assert search_store(store, "quokka", limit=10).total == (0 if refused else 1)
    assert search_store(store, '"number 1199"', limit=10).total == 1


def test_the_bulk_writer_keeps_its_transaction_when_a_paper_is_refused(sqlite_url: str) -> None:
    store, other = open_store(sqlite_url), open_store(sqlite_url)
    try:
        with store.bulk_writer(commit_every=10_000) as writer:
            writer.add_papers([good(n) for n in range(1, 5)])
            result = writer.add_papers([good(5), good(6, version=2**64), good(7)])
            assert [paper.arxiv_id for paper, _why in result.refused] == ["2601.00006"]
            writer.add_papers([good(8)])
            # Nothing committed yet: retrying without the bad paper did not end the
            # transaction (on SQLite, releasing a savepoint that opened it would commit).
            assert other.count_papers() == 0
        assert other.count_papers() == 7 and other.get_paper("2601.00006") is None
    finally:
        store.close()
        other.close()


def test_a_failing_database_is_not_taken_for_a_bad_paper(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    store.engine.dispose()

    @event.listens_for(store.engine, "connect")
    def read_only(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.execute("PRAGMA query_only=ON")

    try:
        with pytest.raises(StoreError, match="readonly"):
            store.add_papers([good(1), good(2)])
        with pytest.raises(StoreError, match="readonly"), store.bulk_writer() as writer:
            writer.add_papers([good(1), good(2)])
    finally:
        store.close()


def test_words_postgresql_cannot_index_leave_the_paper_stored_and_searchable(
    store: Store,
) -> None:
    # A word over 2,047 bytes, a compound over 255 characters and a text whose index would
    # pass 1 MB: PostgreSQL refuses each in a tsvector or search_compounds.
    long_word = "acgt" * 800
    compound = "-".join(["segment"] * 60)
    huge = " ".join(f"w{n}" + "\u4e00" * 150 for n in range(1_500))
    papers = [
        good(1, abstract=f"Sparse {long_word} attention."),
        good(2, abstract=f"Sparse {compound} attention."),
        good(3, abstract="Sparse attention.", ai_summary=huge),
    ]
    result = store.add_papers(papers)
    assert result.refused == [] and len(result.new) == 3
    assert search_store(store, "attention", limit=10).total == 3


# Values of each field's own type that a database may refuse: numbers out of its range, text
# with NUL or lone surrogates or too long for its column, times it cannot convert. (A value of
# the wrong type is a parser's bug, caught at the parser boundary: bridge/sources/limits.py.)
_TEXT = st.one_of(
    st.text(alphabet=st.characters(codec=None), max_size=20),
    st.integers(min_value=60, max_value=5_000).map(lambda n: "x" * n),
)
_OPTIONAL_TEXT = st.none() | _TEXT
_BY_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "int": st.integers(min_value=-(2**80), max_value=2**80),
    "text": _TEXT,
    "optional text": _OPTIONAL_TEXT,
    "texts": st.lists(_TEXT, max_size=3).map(tuple),
    "date": st.dates(),
    "time": st.datetimes(timezones=st.none() | st.timezones()),
}
_FIELD_TYPES = {
    "arxiv_id": "text",
    "title": "text",
    "abstract": "text",
    "authors": "texts",
    "categories": "texts",
    "ai_keywords": "texts",
    "version": "int",
    "upvotes": "int",
    "num_comments": "int",
    "github_stars": "int",
    "listed_on": "date",
    "published_at": "time",
    "updated_at": "time",
    **dict.fromkeys(
        (
            "primary_category",
            "comment",
            "journal_ref",
            "doi",
            "pdf_url",
            "github_repo",
            "project_page",
            "ai_summary",
            "thumbnail",
            "organization",
        ),
        "optional text",
    ),
}
_CHANGES = st.dictionaries(
    st.sampled_from(sorted(_FIELD_TYPES)), st.none(), min_size=1, max_size=3
).flatmap(
    lambda chosen: st.fixed_dictionaries({name: _BY_TYPE[_FIELD_TYPES[name]] for name in chosen})
)
_batches = iter(range(10_000, 99_999, 50))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    changes=_CHANGES,
    bad_at=st.integers(min_value=0, max_value=9),
)
def test_any_paper_costs_at_most_itself(store: Store, changes: dict[str, Any], bad_at: int) -> None:
    first = next(_batches)
    if "arxiv_id" in changes:  # an id of its own, not one an earlier example stored
        changes["arxiv_id"] = f"{first}:{changes['arxiv_id']}"
    batch = [good(first + n) for n in range(10)]
    bad = batch[bad_at] = batch[bad_at].with_changes(**changes)
    stored_before = store.count_papers()
    result = store.add_papers(batch)
    for paper in batch:
        if paper is not bad:
            assert store.get_paper(paper.arxiv_id) is not None
    refused = [paper for paper, _why in result.refused]
    assert refused in ([], [bad])
    assert store.count_papers() == stored_before + 10 - len(refused)
