"""Acronym and compound expansion benchmark: what it finds, and what mining costs.

1. Before/after on the real fixture papers (tests/fixtures: the HF API listing, the HF page
   of 2024-08-01, the HF paper page, the arXiv API and RSS files): how many papers each form
   of a query finds with the plain engine (``match_paper`` of the query as typed) and through
   ``search_store`` with the table mined from those papers, next to the union of the forms.
2. Mining as papers are stored: the time ``Miner.record`` takes inside ``Store.add_papers``,
   per 1,000 papers, and its share of storing them, on two kinds of text: the synthetic
   corpus (bench/corpus.py) and the real fixture abstracts cycled (real density of
   parenthesised definitions and compounds).
3. Mining the whole archive (``Store.mine_expansions``, run after an import) over the same
   store, and a linear extrapolation to 1M papers (said so when extrapolated: mining reads
   every title and abstract twice and counts, so its time grows with the papers).
4. ``--full-at N``: only the whole-archive mining, measured over a store of N synthetic
   papers (1,000,000 for the issue's figure): CPU, wall, the process's peak resident memory
   and the load. The store is built once into ``bench/out/acronyms-N-U.db`` and reused. Only
   its ``papers`` table is filled, with the store's own bulk insert: mining reads nothing
   else. ``--unique U`` (default 100,000) papers are generated and their texts stored again
   under further ids until there are N; leaving the search index out and generating a tenth
   makes the build minutes instead of most of an hour on a shared machine.

The percolator and search bars are measured by bench/query_match.py (expansions on by
default) and bench/search.py.

    .venv/bin/python bench/acronyms.py [--papers 20000] [--database-url URL]
    .venv/bin/python bench/acronyms.py --full-at 1000000 [--unique 100000] [--workers 2]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import psutil  # noqa: E402
from corpus import EPOCH, FIXTURES, fixture_papers, papers_of, synthetic_paper  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from bridge.models import Paper  # noqa: E402
from bridge.query import match_paper, parse_query  # noqa: E402
from bridge.query.expansions import expand  # noqa: E402
from bridge.search import search_store  # noqa: E402
from bridge.sources import hf_parse  # noqa: E402
from bridge.store import Store, _to_row, open_store, schema  # noqa: E402

BATCH = 1000
OUT = ROOT / "bench" / "out"
PAIRS = [
    ("OOD generalization", '"out of distribution" generalization'),
    ("OOD", '"out of distribution"'),
    ("RL", '"reinforcement learning"'),
    ("LLMs", '"large language models"'),
    ("dataset", '"data set"'),
    ("timestep", '"time step"'),
    ("finetune", '"fine tune"'),
]


def all_fixture_papers() -> list[Paper]:
    papers = fixture_papers()
    for name in ("papers_page_date_2024-08-01.html", "paper_page_2509.24002_bs4_prettified.html"):
        path = FIXTURES / "hf" / name
        papers += hf_parse.parse_html(path.read_bytes(), "https://huggingface.co/papers").papers
    return list({p.arxiv_id: p for p in papers}.values())


def before_after(url: str) -> None:
    papers = all_fixture_papers()
    store = open_store(url)
    try:
        store.add_papers(papers)
        table = store.expansion_table()
        print(f"fixture papers: {len(papers)}; the table mined from them holds:")
        for d in sorted(table.version, key=lambda d: d.short_key):
            print(f"  {d.short_text} = {d.long_text}")
        print(f"{'query':40} {'before':>6} {'after':>6}   union of both forms before")
        for left, right in PAIRS:
            plain = {q: _plain(papers, q) for q in (left, right)}
            union = plain[left] | plain[right]
            for query in (left, right):
                after = search_store(store, query, limit=200)
                print(f"{query:40} {len(plain[query]):>6} {after.total:>6}   {len(union)}")
        queries = [q for pair in PAIRS for q in pair] + ["diffusion", "world model agents"]
        rounds = 300
        began = time.perf_counter()
        for _ in range(rounds):
            for query in queries:
                expand(parse_query(query), store.expansion_table())
        widened = (time.perf_counter() - began) / rounds / len(queries)
        began = time.perf_counter()
        for _ in range(rounds):
            for query in queries:
                parse_query(query)
        parsing = (time.perf_counter() - began) / rounds / len(queries)
        print(
            f"per search: parsing {parsing * 1e6:.0f} us, parsing and widening (the table"
            f" cached) {widened * 1e6:.0f} us, over {len(queries)} queries"
        )
    finally:
        store.close()


def _plain(papers: list[Paper], query: str) -> set[str]:
    parsed = parse_query(query)
    return {p.arxiv_id for p in papers if match_paper(parsed, p) is not None}


def _timed(store: Store) -> list[tuple[float, float]]:
    """Wrap the store's miner so each call's (wall, CPU) time is recorded: on a shared
    machine the CPU time is the steadier figure."""
    spent: list[tuple[float, float]] = []
    record: Callable[..., None] = store.expansion_miner.record

    def timed(conn, papers):  # type: ignore[no-untyped-def]
        start, cpu = time.perf_counter(), time.process_time()
        record(conn, papers)
        spent.append((time.perf_counter() - start, time.process_time() - cpu))

    store.expansion_miner.record = timed  # type: ignore[method-assign]
    return spent


def mining_cost(url: str, count: int, make: Callable[[int], Paper], label: str) -> Store:
    store = open_store(url)
    spent = _timed(store)
    storing = storing_cpu = 0.0
    for start in range(0, count, BATCH):
        batch = [make(n) for n in range(start, min(count, start + BATCH))]
        began, cpu = time.perf_counter(), time.process_time()
        store.add_papers(batch, announce=False)
        storing += time.perf_counter() - began
        storing_cpu += time.process_time() - cpu
    mining = sum(wall for wall, _ in spent)
    mining_cpu = sum(cpu for _, cpu in spent)
    batches = len(spent)
    print(
        f"{label}: {count:,} papers stored in batches of {BATCH:,}: mining "
        f"{mining_cpu / batches * 1000:.0f} ms CPU per 1,000 papers"
        f" ({mining / batches * 1000:.0f} ms wall; first batch {spent[0][1] * 1000:.0f} ms CPU,"
        f" last {spent[-1][1] * 1000:.0f}), {mining_cpu / storing_cpu:.0%} of the CPU time of"
        f" storing them ({storing_cpu / batches * 1000:.0f} ms CPU per 1,000)"
    )
    return store


def full_mining(store: Store, count: int, label: str) -> None:
    began, cpu = time.perf_counter(), time.process_time()
    rows = store.mine_expansions()
    took, took_cpu = time.perf_counter() - began, time.process_time() - cpu
    print(
        f"{label}: mining the whole archive of {count:,} papers: {took_cpu:.1f} s CPU"
        f" ({took:.1f} s wall, {rows:,} rows); extrapolated linearly to 1,000,000 papers:"
        f" {took_cpu * 1_000_000 / count / 60:.1f} min CPU (not measured at 1M)"
    )


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def build_papers_only(path: Path, count: int, unique: int, workers: int) -> float:
    """A SQLite store whose ``papers`` table holds ``count`` synthetic papers (nothing else:
    see the module docstring), built in a temporary file renamed when complete.

    ``unique`` papers are generated (in worker processes) and their texts stored again under
    further ids and dates until there are ``count``: generating a million papers takes most
    of an hour on this shared machine, and mining's cost is per paper read."""
    tmp = path.with_suffix(".building")
    for leftover in tmp.parent.glob(tmp.name + "*"):
        leftover.unlink()
    store = open_store(f"sqlite:///{tmp}")
    context = multiprocessing.get_context("spawn")
    began = time.perf_counter()
    rows: list[dict[str, object]] = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        chunk = BATCH * 5
        pending: deque[Future[list[Paper]]] = deque(
            pool.submit(papers_of, first, min(chunk, unique - first))
            for first in range(0, unique, chunk)
        )
        while pending:
            rows += [_to_row(paper) for paper in pending.popleft().result()]
            if len(rows) % 50_000 == 0:
                print(f"  generated {len(rows):,} of {unique:,} papers; load {_load()}", flush=True)
    for first in range(0, count, BATCH * 10):
        batch = []
        for n in range(first, min(count, first + BATCH * 10)):
            row = dict(rows[n % unique])
            published = EPOCH + timedelta(minutes=3 * n)
            row.update(
                arxiv_id=f"{2001 + n // 100_000}.{n % 100_000:05d}",
                published_at=published,
                updated_at=published,
                listed_on=EPOCH.date() + timedelta(days=n // 1000),
                first_seen_at=published,
                changed_at=published,
                revised_at=None,
                announced=True,
            )
            batch.append(row)
        with store.engine.begin() as conn:
            store._insert_papers.execute(conn, batch)
        done = first + len(batch)
        if done % 100_000 == 0 or done == count:
            rate = done / (time.perf_counter() - began)
            print(
                f"  stored {done:,} of {count:,} papers ({rate:,.0f}/s; load {_load()})", flush=True
            )
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    tmp.rename(path)
    return time.perf_counter() - began


def _anonymous_memory() -> int:
    """The process's anonymous resident memory (its heap: Python objects, SQLite's page
    cache), in bytes. Plain RSS also counts the database file's pages SQLite reads through
    its memory map (``mmap_size``): page cache the kernel can drop, which grows to the file's
    size on any full read and says nothing of what mining keeps."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return psutil.Process().memory_info().rss  # not Linux: the plain figure


class PeakMemory:
    """The process's anonymous resident memory, sampled every 50 ms in a thread while it
    runs: the peak of one step (``ru_maxrss`` is plain RSS over the whole process)."""

    def __init__(self) -> None:
        self.start = self.peak = _anonymous_memory()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(0.05):
            self.peak = max(self.peak, _anonymous_memory())

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()
        self.peak = max(self.peak, _anonymous_memory())


def full_at(count: int, unique: int, workers: int) -> None:
    """Whole-archive mining over a store of ``count`` papers, measured (not extrapolated)."""
    path = OUT / f"acronyms-{count}-{unique}.db"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        print(f"building {path} (papers table only) ...", flush=True)
        took = build_papers_only(path, count, unique, workers)
        print(f"built in {took:.0f} s; load {_load()}", flush=True)
        # Measured in a fresh process: this one's memory holds the build.
        subprocess.run(
            [sys.executable, __file__, "--full-at", str(count), "--unique", str(unique)],
            check=True,
        )
        return
    store = open_store(f"sqlite:///{path}")
    try:
        stored = store.count_papers()
        print(
            f"store: {path} ({path.stat().st_size / 1e9:.2f} GB, {stored:,} papers); load {_load()}"
        )
        with PeakMemory() as memory:
            began, cpu = time.perf_counter(), time.process_time()
            rows = store.mine_expansions()
            took, took_cpu = time.perf_counter() - began, time.process_time() - cpu
        with store.engine.connect() as conn:
            acronyms = conn.execute(
                select(func.count()).where(schema.term_expansions.c.kind == "acronym")
            ).scalar()
        print(
            f"mining the whole archive of {stored:,} papers (measured): {took_cpu:.1f} s CPU,"
            f" {took:.1f} s wall, {rows:,} rows ({acronyms:,} acronym rows);"
            f" anonymous resident memory {memory.start / 2**20:.0f} MB before, peak"
            f" {memory.peak / 2**20:.0f} MB"
            f" (+{(memory.peak - memory.start) / 2**20:.0f} MB); process peak (ru_maxrss)"
            f" {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; load {_load()}"
        )
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=20_000)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--full-at", type=int, default=None, metavar="N")
    parser.add_argument("--unique", type=int, default=100_000, help="papers generated (--full-at)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.full_at:
        full_at(args.full_at, min(args.unique, args.full_at), args.workers)
        print(f"load average at end: {_load()}")
        return
    with tempfile.TemporaryDirectory() as tmp:

        def url(name: str) -> str:
            return args.database_url or f"sqlite:///{Path(tmp) / name}.db"

        before_after(url("fixtures"))
        real = all_fixture_papers()

        def cycled(n: int) -> Paper:
            # Real abstracts, each under many ids: real density of definitions and pairs.
            return replace(real[n % len(real)], arxiv_id=f"{2001 + n // 100_000}.{n % 100_000:05d}")

        for label, make in (("synthetic corpus", synthetic_paper), ("real abstracts", cycled)):
            store = mining_cost(url(label.replace(" ", "-")), args.papers, make, label)
            try:
                full_mining(store, args.papers, label)
            finally:
                store.close()
            if args.database_url:
                break  # one shared database: the second run would find the papers stored
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
