"""What /metrics's `paperbridge_papers_stored` costs: `Store.count_papers()` over 1M papers.

Rows are filled by one SQL statement (not through `add_papers`: only the row count and size
matter here), on a throwaway PostgreSQL schema and a temporary SQLite file. Prints the median
and best of 7 counts; bridge/gauges.py keeps the count for 30 s because of the PostgreSQL one.

    .venv/bin/python bench/papers_count.py [--papers 1000000]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bridge.store import Store, open_store  # noqa: E402

COLUMNS = (
    "arxiv_id, title, abstract, authors, sources, categories, ai_keywords,"
    " first_seen_at, changed_at, announced, listed_on"
)
POSTGRES_FILL = f"""
INSERT INTO papers ({COLUMNS})
SELECT 'x' || g, 'A title about models number ' || g, repeat('abstract words ', 60), '[]',
       '["hf"]', '[]', '[]', now(), now(), true, current_date
FROM generate_series(1, :n) AS g"""
SQLITE_FILL = f"""
WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g WHERE x < :n)
INSERT INTO papers ({COLUMNS})
SELECT 'x' || x, 'A title about models number ' || x, printf('%.900c', 'a'), '[]', '["hf"]',
       '[]', '[]', '2026-06-01 00:00:00', '2026-06-01 00:00:00', 1, '2026-06-01'
FROM g"""


def report(store: Store, label: str) -> None:
    store.count_papers()  # warm
    runs = []
    for _ in range(7):
        start = time.perf_counter()
        count = store.count_papers()
        runs.append(time.perf_counter() - start)
    print(
        f"{label:<11} {count:>10,} papers: count_papers median"
        f" {statistics.median(runs) * 1000:6.1f} ms, best {min(runs) * 1000:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--papers", type=int, default=1_000_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    schema = f"pb_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.postgres, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        store = open_store(f"{args.postgres}?options=-csearch_path%3D{schema}")
        with store.engine.begin() as conn:
            conn.execute(text(POSTGRES_FILL), {"n": args.papers})
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE papers"))
        report(store, "PostgreSQL")
        store.close()
    finally:
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')

    with tempfile.TemporaryDirectory() as directory:
        store = open_store(f"sqlite:///{directory}/count.db")
        with store.engine.begin() as conn:
            conn.execute(text(SQLITE_FILL), {"n": args.papers})
        report(store, "SQLite")
        store.close()


if __name__ == "__main__":
    main()
