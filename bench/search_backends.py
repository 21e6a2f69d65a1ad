"""Search latency on SQLite and on PostgreSQL, side by side, for every kind of query.

Builds the synthetic corpus of bench/corpus.py (the one bench/search.py uses) into a SQLite
file ``bench/out/backends-<N>.db`` and into the schema ``pb_bench_<N>`` on the PostgreSQL
server, each once (reruns reuse them; ``--rebuild`` builds both again), through
``Store.bulk_writer`` (as an import stores) with index docs worked out in worker processes. Then, for each query
kind — a common term, two terms, a two-word phrase, a word in no paper, a field, a negation,
an upvote filter, page 50 of a common term, and a date condition (with a word or alone) — it runs ``search_store`` (relevance order,
10 a page, as the web page and chat ask) over ``--queries`` queries on both backends,
alternating, and prints p50 and p99 of each query's first run and of a repeat,
PostgreSQL's p50 as a multiple of SQLite's, and how many searches each backend answered
"too broad" (their budget ran out: the person asking got no papers).

    .venv/bin/python bench/search_backends.py [--papers 100000] [--queries 50]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--rebuild]
        [--distinct 100000] [--build-only] [--sqlite bench/out/search-1000000.db]

``--distinct D`` generates and stores D papers, then copies them inside each database until
there are N, under later seqs, ids and listing days (``replicate``; the ids and days
bench/search_feed.py gives its copies): a large store in a fraction of the time. The stores
are then named ``<N>_d<D>``. ``--build-only`` builds them and stops (bench/serve_processes.py
uses the PostgreSQL one). ``--sqlite PATH`` uses an SQLite store built by bench/search.py with
the same ``--papers`` and ``--distinct`` (the same papers, ids and days) instead of building
one, and bench/search.py's cache of generated papers is read when it is in bench/out.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import pickle
import random
import statistics
import sys
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
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
from bridge.store import schema as store_schema  # noqa: E402
from bridge.store.search_index import (  # noqa: E402
    COLUMNS,
    FTS_TABLE,
    SEQ_BUCKET,
    SEQ_BUCKET_PREFIX,
)

OUT = ROOT / "bench" / "out"
BATCH = 1000
DEFAULT_POSTGRES = os.environ.get(
    "PAPERBRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def postgres_url(server: str, schema: str) -> str:
    return f"{server}?options=-csearch_path%3D{schema}"


Generated = list[tuple[list[tuple[object, ...]], list[object]]]


def generate(distinct: int, workers: int = 2) -> Generated:
    """The corpus's first ``distinct`` papers and their index docs, in batches (bench/search.py's
    ``generated-<D>.pickle`` in bench/out when it is there: the same batches)."""
    cache = OUT / f"generated-{distinct}.pickle"
    if cache.exists():
        with cache.open("rb") as file:
            generated: Generated = pickle.load(file)
        print(f"  {distinct:,} generated papers read from {cache.name}", file=sys.stderr)
        return generated
    context = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[tuple[list[tuple[object, ...]], list[object]]]] = deque(
            pool.submit(make_batch, first, min(BATCH, distinct - first))
            for first in range(0, distinct, BATCH)
        )
        generated = [future.result() for future in pending]
    seconds = time.perf_counter() - start
    print(f"  generated {distinct:,} papers in {seconds:,.0f} s", file=sys.stderr)
    return generated


def build(url: str, papers: int, generated: Generated) -> float:
    """Store the generated papers through ``Store.bulk_writer`` (as an import does), then, if
    ``papers`` is more, copies of them under later ids and days (``replicate``); returns the
    seconds it took."""
    store = open_store(url)
    distinct = sum(len(rows) for rows, _ in generated)
    start = time.perf_counter()
    with store.bulk_writer() as writer:
        for rows, docs in generated:
            writer.add_papers([paper_from_row(r) for r in rows], announce=False, index_docs=docs)  # type: ignore[arg-type]
    if papers > distinct:
        print(f"  stored {distinct:,}; copying them up to {papers:,}", file=sys.stderr)
        replicate(store, distinct, papers, generated)
    store.optimize_search_index()
    store.close()
    return time.perf_counter() - start


# Paper ``seq`` copied ``k`` times over: arXiv number n + k * distinct (``search_feed._copy``'s
# ids and listing days), written in each database's SQL.
_COPY_SQL = {
    "postgresql": {
        "n": "((split_part(arxiv_id, '.', 1)::int - 2001) * 100000"
        " + split_part(arxiv_id, '.', 2)::int + k * {distinct})",
        "id": "(2001 + {n} / 100000)::text || '.' || lpad(({n} % 100000)::text, 5, '0')",
        "day": "DATE '2020-01-01' + ({n} / 1000)",
        "copies": "generate_series(1, {copies}) AS k",
    },
    "sqlite": {
        "n": "((CAST(substr(arxiv_id, 1, 4) AS INTEGER) - 2001) * 100000"
        " + CAST(substr(arxiv_id, 6) AS INTEGER) + k * {distinct})",
        "id": "printf('%d.%05d', 2001 + {n} / 100000, {n} % 100000)",
        "day": "date('2020-01-01', '+' || ({n} / 1000) || ' days')",
        "copies": "(WITH RECURSIVE c(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM c"
        " WHERE k < {copies}) SELECT k FROM c)",
    },
}


def replicate(store: Store, distinct: int, papers: int, generated: Generated) -> None:
    """Copy a store's ``distinct`` papers (seqs 1 to ``distinct``) inside the database until
    it holds ``papers``: each copy under later seqs, arXiv ids and listing days, with the same
    index doc and upvotes. Storing a paper through the store costs about 10 ms on a busy
    machine (hours for a million); a copy made by one INSERT … SELECT costs microseconds.
    SQLite's FTS5 table keeps no text to copy, so its rows go in again from ``generated``."""
    engine = store.engine
    dialect = engine.dialect.name
    copies = -(-papers // distinct) - 1
    sql = _COPY_SQL[dialect]
    n = sql["n"].format(distinct=distinct)
    columns = [c.name for c in store_schema.papers.columns]
    values = {"seq": f"seq + k * {distinct}", "arxiv_id": sql["id"].format(n=n)}
    values["listed_on"] = sql["day"].format(n=n)
    select = ", ".join(values.get(c, c) for c in columns)
    below = f"seq + k * {distinct} <= {papers}"
    series = sql["copies"].format(copies=copies)
    with engine.begin() as conn:
        top = conn.execute(text("SELECT min(seq), max(seq), count(*) FROM papers")).one()
        if tuple(top) != (1, distinct, distinct):
            raise RuntimeError(f"cannot copy: the store's seqs are not 1 to {distinct}: {top}")
        conn.execute(
            text(
                f"INSERT INTO papers ({', '.join(columns)}) SELECT {select}"
                f" FROM papers, {series} WHERE {below} ORDER BY k, seq"
            )
        )
        conn.execute(
            text(
                f"INSERT INTO search_votes (seq, upvotes) SELECT seq + k * {distinct}, upvotes"
                f" FROM search_votes, {series} WHERE {below}"
            )
        )
        if dialect == "postgresql":
            # One GIN build over every doc is far faster than a million index insertions.
            conn.execute(text("DROP INDEX ix_paper_search_doc"))
            conn.execute(
                text(
                    f"INSERT INTO paper_search (seq, doc) SELECT seq + k * {distinct},"
                    # The copy's seq bucket lexeme in place of the original's (with_seq_bucket).
                    f" ts_delete(doc, '{SEQ_BUCKET_PREFIX}' || (seq / {SEQ_BUCKET}))"
                    f" || CAST('''{SEQ_BUCKET_PREFIX}' || ((seq + k * {distinct}) / {SEQ_BUCKET})"
                    " || '''' AS tsvector)"
                    f" FROM paper_search, {series} WHERE {below} ORDER BY k, seq"
                )
            )
            conn.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
            conn.execute(text("CREATE INDEX ix_paper_search_doc ON paper_search USING GIN (doc)"))
            conn.execute(
                text("SELECT setval(pg_get_serial_sequence('papers', 'seq'), :s)"), {"s": papers}
            )
        else:
            docs = [doc for _, batch in generated for doc in batch]
            marks = ", ".join(["?"] * (len(COLUMNS) + 1))
            insert = f"INSERT INTO {FTS_TABLE} (rowid, {', '.join(COLUMNS)}) VALUES ({marks})"
            for k in range(1, copies + 1):
                rows = [
                    (seq, *doc.columns)  # type: ignore[attr-defined]
                    for seq, doc in enumerate(docs, k * distinct + 1)
                    if seq <= papers
                ]
                conn.exec_driver_sql(insert, rows)
                if k % 10 == 0:
                    print(f"  {k * distinct:,} papers indexed", file=sys.stderr, flush=True)


def store_name(papers: int, distinct: int) -> str:
    """The stores' name: ``backends-<name>.db``, schema ``pb_bench_<name>``."""
    return f"{papers}" if distinct == papers else f"{papers}_d{distinct}"


def ensure_stores(
    papers: int, distinct: int, server: str, rebuild: bool, sqlite: Path | None = None
) -> dict[str, str]:
    OUT.mkdir(parents=True, exist_ok=True)
    name = store_name(papers, distinct)
    sqlite_path = sqlite or OUT / f"backends-{name}.db"
    schema = f"pb_bench_{name}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM information_schema.schemata WHERE schema_name = :s"), {"s": schema}
        ).first()
        if rebuild or not exists:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    admin.dispose()
    urls = {"SQLite": f"sqlite:///{sqlite_path}", "PostgreSQL": postgres_url(server, schema)}
    todo = {
        "PostgreSQL": rebuild or not exists,
        # A store given by --sqlite is used as it is.
        "SQLite": sqlite is None and (rebuild or not sqlite_path.exists()),
    }
    if not any(todo.values()):
        return urls
    generated = generate(distinct)
    if todo["SQLite"]:
        sqlite_path.unlink(missing_ok=True)
    for backend in (name for name, needed in todo.items() if needed):
        print(f"building {papers:,} papers into {backend} ...", file=sys.stderr)
        seconds = build(urls[backend], papers, generated)
        print(f"  {backend}: {papers / seconds:,.0f} papers/s", file=sys.stderr)
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
        # A word or none on listing days far back in the store (``word date:2020-02``): on
        # PostgreSQL these answered "too broad" at 1,000,000 papers until seq_range served
        # both databases.
        "date": [(q, 1) for q in base["date"]],
    }


def run(store: Store, query: str, page: int, too_broad: list[str]) -> float:
    """Seconds one search took; a "too broad" answer (its budget ran out) is noted in
    ``too_broad`` and timed like any answer."""
    start = time.perf_counter()
    try:
        search_store(store, query, limit=10, offset=(page - 1) * 10)
    except SearchTooBroad:
        too_broad.append(query)
    return time.perf_counter() - start


def round_trip(store: Store, times: int = 1000) -> float:
    """Milliseconds of a prepared ``SELECT 1`` on one of the store's connections (p50): what
    any PostgreSQL statement costs before the server does any work, and SQLite, inside the
    process, never pays."""
    with store.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        spent = []
        for _ in range(times):
            start = time.perf_counter()
            cursor.execute("SELECT 1", prepare=True)
            cursor.fetchall()
            spent.append(time.perf_counter() - start)
    return statistics.median(spent) * 1000


def p50_p99(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument(
        "--distinct", type=int, default=None, help="papers generated; the rest are copies"
    )
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--build-only", action="store_true", help="build the stores and stop")
    parser.add_argument(
        "--sqlite",
        type=Path,
        default=None,
        help="an SQLite store of the same papers to use as it is (bench/search.py's"
        " search-<N>.db built with the same --distinct), instead of building one",
    )
    args = parser.parse_args()
    distinct = min(args.distinct or args.papers, args.papers)
    urls = ensure_stores(args.papers, distinct, args.postgres, args.rebuild, args.sqlite)
    if args.build_only:
        return
    vocabulary()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    stores = {name: open_store(url) for name, url in urls.items()}
    for name, store in stores.items():
        print(f"{name}: {store.count_papers():,} papers")
    header = f"{'query kind':<14} {'run':<6}" + "".join(
        f" {name + ' p50':>15} {name + ' p99':>15}" for name in stores
    )
    print(header + "   PG/SQLite p50   too broad (SQLite, PG)")
    no_match_again: dict[str, float] = {}
    for kind, queries in kinds(args.queries, args.papers).items():
        first: dict[str, list[float]] = {name: [] for name in stores}
        again: dict[str, list[float]] = {name: [] for name in stores}
        # Searches answered "too broad": no answer for the person asking, however fast.
        broad: dict[tuple[str, str], list[str]] = {
            (label, name): [] for label in ("first", "again") for name in stores
        }
        for query, page in queries:
            for name, store in stores.items():  # alternating: both see the same load
                first[name].append(run(store, query, page, broad["first", name]))
        for query, page in queries:
            for name, store in stores.items():
                again[name].append(run(store, query, page, broad["again", name]))
        for label, times in (("first", first), ("again", again)):
            cells = {name: p50_p99(values) for name, values in times.items()}
            row = f"{kind:<14} {label:<6}" + "".join(
                f" {p50:>15.2f} {p99:>15.2f}" for p50, p99 in cells.values()
            )
            ratio = cells["PostgreSQL"][0] / max(cells["SQLite"][0], 1e-6)
            if kind == "no match" and label == "again":
                no_match_again = {name: p50 for name, (p50, _p99) in cells.items()}
            counts = ", ".join(str(len(broad[label, name])) for name in stores)
            print(f"{row}   {ratio:.1f}x   {counts:>14}")
        sys.stdout.flush()
    trip = round_trip(stores["PostgreSQL"])
    print(f"PostgreSQL round trip alone (a prepared SELECT 1, p50 of 1,000): {trip:.3f} ms")
    if no_match_again:
        sqlite, postgres = no_match_again["SQLite"], no_match_again["PostgreSQL"]
        print(
            f"  a word in no paper, again: SQLite {sqlite:.3f} ms, PostgreSQL {postgres:.3f} ms,"
            f" of which the round trip is {trip / postgres:.0%}; at 2x SQLite, PostgreSQL"
            f" would have {2 * sqlite - trip:.3f} ms for all else, SQLite spends {sqlite:.3f}"
        )
    for store in stores.values():
        store.close()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
