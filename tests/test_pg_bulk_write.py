"""PostgreSQL's write path for bulk imports: the search index's GIN pending list.

Writers keep the pending list short (every search reads it whole); a bulk import writes each
transaction with a long one and empties it before committing (bridge/store/search_index.py,
``pending_list_setting``). bench/RESULTS.md has the figures.
"""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest
from sqlalchemy import create_engine, text

from bridge.models import Paper
from bridge.search import search_store
from bridge.store import open_store
from bridge.store.bulk import copy_binary
from bridge.store.migrations import MIGRATIONS
from bridge.store.search_index import (
    BULK_PENDING_LIST_KB,
    PENDING_LIST_KB,
    PG_INDEX,
    IndexDoc,
    index_doc,
    pg_copy_row,
    to_tsvector,
    tsvector_literal,
    with_seq_bucket,
)

pytestmark = pytest.mark.postgres


def papers(prefix: str, count: int) -> list[Paper]:
    return [
        Paper(
            f"2607.{prefix}{n:03d}",
            f"Sparse attention for graph transformers, part {n}",
            abstract=f"We study sparse attention over molecule graphs ({n}) and protein folds.",
        )
        for n in range(count)
    ]


def emptied_pages(url: str) -> int:
    """Pages of the pending list that were still waiting (emptying them returns how many)."""
    store = open_store(url)
    try:
        with store.engine.begin() as conn:
            return int(conn.execute(text(f"SELECT gin_clean_pending_list('{PG_INDEX}')")).scalar())
    finally:
        store.close()


def index_options(url: str) -> list[str] | None:
    store = open_store(url)
    try:
        with store.engine.connect() as conn:
            return conn.execute(  # type: ignore[no-any-return]
                text("SELECT reloptions FROM pg_class WHERE oid = to_regclass(:name)"),
                {"name": PG_INDEX},
            ).scalar()
    finally:
        store.close()


def test_a_store_connection_writes_with_a_short_pending_list(postgres_url: str) -> None:
    assert index_options(postgres_url) is None  # the session's setting applies
    store = open_store(postgres_url)
    try:
        with store.engine.connect() as conn:
            limit = conn.exec_driver_sql("SHOW gin_pending_list_limit").scalar()
        assert limit == f"{PENDING_LIST_KB}kB"
        # An ordinary write leaves its docs in the (short) list, for vacuum or the next write.
        store.add_papers(papers("0", 3), announce=False)
    finally:
        store.close()
    assert emptied_pages(postgres_url) > 0


def test_a_bulk_transaction_writes_a_long_list_and_empties_it_before_commit(
    postgres_url: str,
) -> None:
    store = open_store(postgres_url)
    try:
        with store.bulk_writer(commit_every=150) as writer:
            writer.add_papers(papers("1", 100), announce=False)
            # The writer's own transaction has the long list, and nobody else.
            with store.engine.connect() as other:
                assert other.exec_driver_sql("SHOW gin_pending_list_limit").scalar() == (
                    f"{PENDING_LIST_KB}kB"
                )
            shown = writer._conn.exec_driver_sql("SHOW gin_pending_list_limit").scalar()
            assert shown == f"{BULK_PENDING_LIST_KB // 1024}MB"
            writer.add_papers(papers("2", 100), announce=False)  # committed: past 150
            writer.add_papers(papers("3", 30), announce=False)  # committed as it closes
        assert store.count_papers() == 230
        with store.engine.connect() as conn:
            # Back to the short list once the bulk transactions ended.
            assert conn.exec_driver_sql("SHOW gin_pending_list_limit").scalar() == (
                f"{PENDING_LIST_KB}kB"
            )
            assert conn.exec_driver_sql("SELECT count(*) FROM paper_search").scalar() == 230
        found = search_store(store, '"molecule graphs" protein', limit=5)
        assert found.total >= 200 and len(found.items) == 5  # counting stops at 200
    finally:
        store.close()
    assert emptied_pages(postgres_url) == 0  # every committed doc is in the tree


def test_searches_go_on_while_a_bulk_transaction_is_open(postgres_url: str) -> None:
    """The long list is the writer's session setting: the index itself is not altered, which
    would lock searches out until the import's transaction ends."""
    store = open_store(postgres_url)
    store.add_papers(papers("4", 5), announce=False)
    try:
        with store.bulk_writer() as writer:
            writer.add_papers(papers("5", 50), announce=False)  # not committed
            with psycopg.connect(postgres_url, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '2s'")
                row = conn.execute("SELECT count(*) FROM paper_search").fetchone()
            assert row is not None and row[0] == 5  # the import's docs are not committed yet
            found = search_store(store, "sparse attention", limit=5)
            assert found.total == 5
    finally:
        store.close()


def test_a_store_that_kept_the_limit_on_its_index_loses_it_when_migrated(
    postgres_url: str,
) -> None:
    store = open_store(postgres_url)
    try:
        with store.engine.begin() as conn:
            # As stores created before the setting moved to the session were left.
            conn.exec_driver_sql(f"ALTER INDEX {PG_INDEX} SET (gin_pending_list_limit = 256)")
            before = [step.__name__ for step in MIGRATIONS].index("_pending_list_per_session")
            conn.exec_driver_sql(f"UPDATE schema_version SET version = {before}")
    finally:
        store.close()
    assert index_options(postgres_url) is None  # opening it migrated it


# --- a refused index row, in a bulk transaction ----------------------------------------


def test_a_bulk_batch_whose_index_row_is_refused_stores_the_rest(postgres_url: str) -> None:
    """The refused value surfaces in the batch that wrote it: the batch is stored again
    without that paper, and the transaction's earlier batches stay."""
    store = open_store(postgres_url)
    first, second = papers("6", 4), papers("7", 4)
    docs = [replace(index_doc(paper), tsvector=to_tsvector(index_doc(paper))) for paper in second]
    # A lexeme PostgreSQL refuses (not UTF-8; to_tsvector writes only UTF-8, and leaves out
    # the words PostgreSQL would refuse as too long).
    docs[2] = replace(docs[2], tsvector=(1, b"caf\xe9\0\0\x01\x00\x01", b""))
    try:
        with store.bulk_writer() as writer:
            writer.add_papers(first, announce=False)
            result = writer.add_papers(second, announce=False, index_docs=docs)
        assert [paper.arxiv_id for paper, _why in result.refused] == [second[2].arxiv_id]
        assert store.count_papers() == 7
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT count(*) FROM paper_search").scalar() == 7
    finally:
        store.close()


# --- the binary form of the index rows ------------------------------------------------------


def test_the_binary_docs_are_what_their_text_literals_are(postgres_url: str) -> None:
    """An import copies each doc's tsvector in binary form; PostgreSQL must store exactly
    what it stores for the text literal (which the UPDATE of a changed paper writes), at
    PostgreSQL's limits too: words too long, words too frequent, positions past the last."""
    many = " ".join(["model"] * 300 + ["a" * 3000, "c_2b__2b_", "_", "x", "_21_model"])
    docs = [
        index_doc(paper)
        for paper in papers("8", 2)
        + [Paper("2607.08999", "Résumé: naïve Ünïcode — 東京", authors=("Zoë O'Brien",))]
    ] + [
        IndexDoc(("", "", "", "", "", "")),
        IndexDoc(("café _21_café", "naïve " * 300, "", "", "zoë", "")),  # not ASCII
        IndexDoc((many, "y z " * 10 + "model", "", "", "ada _ lovelace", "cat:cs.lg _ti_model")),
        # Past 16,383 positions: the abstract's and the summary's last words share the last.
        IndexDoc((many, "y " * 20000 + "model _ _21_model", "model", "", "ada", "source:hf")),
    ]
    seqs = [n * 5000 + 7 for n in range(len(docs))]  # several seq buckets
    # Upvote steps (VOTE_STEPS): none, some, every one.
    votes = [(None, 0, 1, 7, 12, 5000, 300, 2)[n % 8] for n in range(len(docs))]
    engine = create_engine(postgres_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TEMPORARY TABLE binary_docs (seq INTEGER, doc TSVECTOR)")
            copy_binary(
                conn,
                "COPY binary_docs (seq, doc) FROM STDIN (FORMAT BINARY)",
                [
                    pg_copy_row(seq, to_tsvector(doc), upvotes)
                    for seq, doc, upvotes in zip(seqs, docs, votes, strict=True)
                ],
            )
            for seq, doc, upvotes in zip(seqs, docs, votes, strict=True):
                literal = with_seq_bucket(tsvector_literal(doc), seq, upvotes)
                same = conn.execute(
                    text(
                        "SELECT tsvectorsend(doc) = tsvectorsend(CAST(:literal AS tsvector))"
                        " FROM binary_docs WHERE seq = :seq"
                    ),
                    {"literal": literal, "seq": seq},
                ).scalar_one()
                assert same, doc
    finally:
        engine.dispose()
