"""Search latency on SQLite and on PostgreSQL, side by side, for every kind of query.

Builds the synthetic corpus of bench/corpus.py (the one bench/search.py uses) into a SQLite
file ``bench/out/backends-<N>.db`` and into the schema ``pb_bench_<N>`` on the PostgreSQL
server, each once (reruns reuse them; ``--rebuild`` builds both again), through
``Store.add_papers`` with index docs worked out in worker processes. Then, for each query
kind — a common term, two terms, a two-word phrase, a word in no paper, a field, a negation,
an upvote filter, and page 50 of a common term — it runs ``search_store`` (relevance order,
10 a page, as the web page and chat ask) over ``--queries`` queries on both backends,
alternating, and prints p50 and p99 of each query's first run and of a repeat, and
PostgreSQL's p50 as a multiple of SQLite's.

    .venv/bin/python bench/search_backends.py [--papers 100000] [--queries 50]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--rebuild]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import sys
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import make_batch, paper_from_row, vocabulary  # noqa: E402
from search import query_sets  # noqa: E402

from bridge.errors import SearchTooBroad  # noqa: E402
from bridge.search import search_store  # noqa: E402
from bridge.store import Store, open_store  # noqa: E402

OUT = ROOT / "bench" / "out"
BATCH = 1000
DEFAULT_POSTGRES = os.environ.get(
    "PAPERBRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_url(server: str, papers: int) -> str:
    return f"{server}?options=-csearch_path%3Dpb_bench_{papers}"


def build(url: str, papers: int, workers: int = 2) -> float:
    """Store the corpus's first ``papers`` papers; returns the seconds it took."""
    store = open_store(url)
    context = multiprocessing.get_context("spawn")
    base = datetime(2020, 1, 1, tzinfo=UTC)
    start = time.perf_counter()
    done = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[tuple[list[tuple[object, ...]], list[object]]]] = deque(
            pool.submit(make_batch, first, min(BATCH, papers - first))
            for first in range(0, papers, BATCH)
        )
        while pending:
            rows, docs = pending.popleft().result()
            now = base + timedelta(minutes=3 * done)
            store.add_papers([paper_from_row(r) for r in rows], now=now, index_docs=docs)  # type: ignore[arg-type]
            done += len(rows)
            if done % 20_000 == 0:
                print(f"  {done:,} of {papers:,}", file=sys.stderr, flush=True)
    store.optimize_search_index()
    store.close()
    return time.perf_counter() - start


def ensure_stores(papers: int, server: str, rebuild: bool) -> dict[str, str]:
    OUT.mkdir(parents=True, exist_ok=True)
    sqlite_path = OUT / f"backends-{papers}.db"
    schema = f"pb_bench_{papers}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"), {"s": schema}
        ).first()
        if rebuild or not exists:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    urls = {"SQLite": f"sqlite:///{sqlite_path}", "PostgreSQL": postgres_url(server, papers)}
    if rebuild or not sqlite_path.exists():
        sqlite_path.unlink(missing_ok=True)
        print(f"building {papers:,} papers into SQLite ...", file=sys.stderr)
        seconds = build(urls["SQLite"], papers)
        print(f"  SQLite: {papers / seconds:,.0f} papers/s", file=sys.stderr)
    if rebuild or not exists:
        print(f"building {papers:,} papers into PostgreSQL ...", file=sys.stderr)
        seconds = build(urls["PostgreSQL"], papers)
        print(f"  PostgreSQL: {papers / seconds:,.0f} papers/s", file=sys.stderr)
    return urls


def kinds(count: int, papers: int) -> dict[str, list[tuple[str, int]]]:
    """(query, page) pairs of each kind, drawn from the corpus as bench/search.py draws them."""
    base = query_sets(count, papers)
    rng = random.Random(11)
    common = base["common term"]
    words = [word for pair in base["two terms"] for word in pair.split()]
    nonsense = ["".join(rng.choice("bcdfghjklmnpqrstvwxz") for _ in range(7)) for _ in range(count)]
    return {
        "common term": [(q, 1) for q in common],
        "two terms": [(q, 1) for q in base["two terms"]],
        "phrase": [(q, 1) for q in base["phrase"]],
        "no match": [(q, 1) for q in nonsense],
        "field": [(f"title:{w}", 1) for w in words[:count]],
        "negation": [(f"{a} -{b}", 1) for a, b in zip(common, reversed(common), strict=True)],
        "upvote filter": [(f"upvotes>=5 {w}", 1) for w in common],
        "page 50": [(q, 50) for q in common],
    }


def run(store: Store, query: str, page: int) -> float:
    start = time.perf_counter()
    try:
        search_store(store, query, limit=10, offset=(page - 1) * 10)
    except SearchTooBroad:
        pass  # answered: "too broad" is an answer, and its cost counts
    return time.perf_counter() - start


def p50_p99(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    urls = ensure_stores(args.papers, args.postgres, args.rebuild)
    vocabulary()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    stores = {name: open_store(url) for name, url in urls.items()}
    for name, store in stores.items():
        print(f"{name}: {store.count_papers():,} papers")
    header = f"{'query kind':<14} {'run':<6}" + "".join(
        f" {name + ' p50':>15} {name + ' p99':>15}" for name in stores
    )
    print(header + "   PG/SQLite p50")
    for kind, queries in kinds(args.queries, args.papers).items():
        first: dict[str, list[float]] = {name: [] for name in stores}
        again: dict[str, list[float]] = {name: [] for name in stores}
        for query, page in queries:
            for name, store in stores.items():  # alternating: both see the same load
                first[name].append(run(store, query, page))
        for query, page in queries:
            for name, store in stores.items():
                again[name].append(run(store, query, page))
        for label, times in (("first", first), ("again", again)):
            cells = {name: p50_p99(values) for name, values in times.items()}
            row = f"{kind:<14} {label:<6}" + "".join(
                f" {p50:>15.2f} {p99:>15.2f}" for p50, p99 in cells.values()
            )
            ratio = cells["PostgreSQL"][0] / max(cells["SQLite"][0], 1e-6)
            print(f"{row}   {ratio:.1f}x")
        sys.stdout.flush()
    for store in stores.values():
        store.close()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
