"""Archive search benchmark: latency of ``search_store`` over a synthetic 1M-paper store.

Builds the store once into ``bench/out/search-<N>.db`` through the import path (the index
written in the same transactions, then merged), with index docs worked out in worker
processes. Reruns reuse the file; ``--rebuild`` forces a new build. ``--distinct D`` generates
only D papers and stores them again under later ids and listing days until there are N
(generating is most of a build's time; every word keeps its share of papers). Then, in one run:

* p50/p99 of ``search_store(store, q, limit=10)`` (relevance order, the CLI default) for
  ``--queries`` queries of each kind: a common single term, two terms, a two-word phrase, a
  date condition, a paper id, an exact word (``=word``), a word in no paper, a field, a
  negation, an upvote filter, page 50 of a common term, and an acronym-widened query (an
  acronym and its long form, written into the store's acronym table as if mined). First each
  query's first run in the process (its pages and words not seen before), wall and CPU time,
  then the same queries again with warm caches, and with ``order="recent"``.
* SQLite FTS5 bm25 top-20 over the same index, for the same compiled queries
  (``--bm25-queries`` of each kind, since a common term costs about a second).
* index size (the FTS5 shadow tables and the compound table, from dbstat), the database file
  size, and the process's resident memory.

With several ``--papers``, each size runs in its own process, one after the other, and a
table gives every kind's first run at each size with the growth of its p50.

    .venv/bin/python bench/search.py [--papers 100000 1000000] [--distinct 100000]
        [--queries 200] [--bm25-queries 20] [--kinds phrase date]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import pickle
import random
import statistics
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import make_batch, paper_from_row, synthetic_paper, vocabulary  # noqa: E402

from bridge.errors import SearchTooBroad  # noqa: E402
from bridge.models import Paper  # noqa: E402
from bridge.query import parse_query  # noqa: E402
from bridge.query.normalize import normalize_word  # noqa: E402
from bridge.search import SearchResults, search_store  # noqa: E402
from bridge.store import Store, open_store  # noqa: E402
from bridge.store.search_index import (  # noqa: E402
    FTS_TABLE,
    TRUE,
    compile_query,
    phrase_terms,
    to_fts5,
)

OUT = ROOT / "bench" / "out"
BATCH = 1000
STOPWORDS = set(
    """a an the of and or to in on for with by from as at is are was were be been this that these
    those we our it its which while can via into than then also such not no their they has have
    had using use used based both each over under all any more most other between through
    only new two one first show shows propose proposed paper results""".split()
)


def build(path: Path, papers: int, workers: int, distinct: int | None = None) -> float:
    """Build the store at ``path`` (in a temporary file, renamed when complete).

    With ``distinct`` (fewer than ``papers``), only that many papers are generated and they are
    stored again and again under later ids and listing days (``copied``): generating a paper
    and its index text is most of a build's time. Every word then occurs in the same share of
    papers as in a fully generated store, each text ``papers / distinct`` times.
    """
    tmp = path.with_suffix(".building")
    for leftover in tmp.parent.glob(tmp.name + "*"):
        leftover.unlink()
    store = open_store(f"sqlite:///{tmp}")
    start = time.perf_counter()
    if distinct:
        _build_copies(store, papers, distinct, workers, start)
    else:
        _build_generated(store, papers, workers, start)
    elapsed = time.perf_counter() - start
    print("  merging the search index (what an import does at its end) ...", file=sys.stderr)
    merge_start = time.perf_counter()
    store.optimize_search_index()
    elapsed += time.perf_counter() - merge_start
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    tmp.rename(path)
    return elapsed


def _build_generated(store: Store, papers: int, workers: int, start: float) -> None:
    context = multiprocessing.get_context("spawn")
    base = datetime(2020, 1, 1, tzinfo=UTC)
    done = 0
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[tuple[list[tuple[object, ...]], list[object]]]] = deque()
        starts = iter(range(0, papers, BATCH))
        for first in starts:
            pending.append(pool.submit(make_batch, first, min(BATCH, papers - first)))
            if len(pending) > workers * 2:
                done += _store(store, pending.popleft().result(), base, done)
                _progress(done, papers, start)
        while pending:
            done += _store(store, pending.popleft().result(), base, done)
            _progress(done, papers, start)


def _build_copies(store: Store, papers: int, distinct: int, workers: int, start: float) -> None:
    generated = _generated(distinct, workers)
    print(
        f"  {distinct:,} papers generated after {time.perf_counter() - start:,.0f} s",
        file=sys.stderr,
    )
    done = 0
    with store.bulk_writer() as writer:
        for copy in range(-(-papers // distinct)):
            for rows, docs in generated:
                batch = [copied(paper_from_row(row), copy * distinct) for row in rows]
                batch = batch[: papers - done]
                writer.add_papers(batch, announce=False, index_docs=docs[: len(batch)])  # type: ignore[arg-type]
                done += len(batch)
                _progress(done, papers, start)
                if done >= papers:
                    return


def _generated(distinct: int, workers: int) -> list[tuple[list[tuple[object, ...]], list[object]]]:
    """The first ``distinct`` corpus papers and their index docs, kept in bench/out so that
    stores of several sizes are built from one generation."""
    cache = OUT / f"generated-{distinct}.pickle"
    if cache.exists():
        with cache.open("rb") as file:
            return pickle.load(file)  # type: ignore[no-any-return]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        counts = [min(BATCH, distinct - first) for first in range(0, distinct, BATCH)]
        generated = list(pool.map(make_batch, range(0, distinct, BATCH), counts))
    partial = cache.with_suffix(".partial")
    with partial.open("wb") as file:
        pickle.dump(generated, file, protocol=pickle.HIGHEST_PROTOCOL)
    partial.rename(cache)
    return generated


def copied(paper: Paper, shift: int) -> Paper:
    """``paper`` as corpus paper number n + ``shift``: that number's id and listing day."""
    if shift == 0:
        return paper
    year, number = paper.arxiv_id.split(".")
    n = (int(year) - 2001) * 100_000 + int(number) + shift
    return dataclasses.replace(
        paper,
        arxiv_id=f"{2001 + n // 100_000}.{n % 100_000:05d}",
        listed_on=date(2020, 1, 1) + timedelta(days=n // 1000),
    )


def _store(
    store: Store, batch: tuple[list[tuple[object, ...]], list[object]], base: datetime, done: int
) -> int:
    rows, docs = batch
    now = base + timedelta(minutes=3 * done)
    store.add_papers([paper_from_row(r) for r in rows], now=now, index_docs=docs)  # type: ignore[arg-type]
    return len(rows)


def _progress(done: int, total: int, start: float) -> None:
    if done % 50_000 == 0 or done == total:
        rate = done / (time.perf_counter() - start)
        print(f"  built {done:,} of {total:,} papers ({rate:,.0f}/s)", file=sys.stderr, flush=True)


# --- queries -------------------------------------------------------------------------------------


def query_sets(count: int, papers: int, seed: int = 7) -> dict[str, list[str]]:
    """Common single terms, two-term queries and two-word phrases, from a corpus sample; words
    with listing-day conditions; paper ids and URLs."""
    sample = [synthetic_paper(n) for n in range(0, papers, max(1, papers // 4000))]
    df: Counter[str] = Counter()
    surface: dict[str, Counter[str]] = {}
    bigrams: Counter[tuple[str, str]] = Counter()
    for paper in sample:
        words = [w.strip(".,;:").lower() for w in f"{paper.title} {paper.abstract}".split()]
        seen: set[str] = set()
        for word in words:
            if word.isalpha() and len(word) > 2 and word not in STOPWORDS:
                term = normalize_word(word)
                seen.add(term)
                surface.setdefault(term, Counter())[word] += 1
        df.update(seen)
        pair_seen = set()
        for left, right in zip(words, words[1:], strict=False):
            if (
                left.isalpha()
                and right.isalpha()
                and min(len(left), len(right)) > 2
                and not {left, right} & STOPWORDS
            ):
                pair_seen.add((left, right))
        bigrams.update(pair_seen)
    n = len(sample)
    rng = random.Random(seed)

    def word(term: str) -> str:
        return min(surface[term].items(), key=lambda item: (-item[1], item[0]))[0]

    # Counts in a fixed order (ties by name), so every run draws the same queries.
    by_df = sorted(df.items(), key=lambda item: (-item[1], item[0]))
    by_pairs = sorted(bigrams.items(), key=lambda item: (-item[1], item[0]))

    # Common: in 2% to 60% of papers. Two terms: words in 1% to 30% each. Phrases: word pairs
    # in at least 0.2% of papers.
    common = [word(t) for t, c in by_df if 0.02 <= c / n <= 0.6]
    middle = [word(t) for t, c in by_df if 0.01 <= c / n <= 0.3]
    phrases = [f'"{a} {b}"' for (a, b), c in by_pairs if c / n >= 0.002 and a != b]
    rng.shuffle(common)
    rng.shuffle(phrases)
    two: list[str] = []
    while len(two) < count:
        a, b = rng.sample(middle, 2)
        if normalize_word(a) != normalize_word(b) and f"{a} {b}" not in two:
            two.append(f"{a} {b}")
    # Listing days: the corpus lists 1,000 papers a day from 2020-01-01, oldest first.
    days = max(1, papers // 1000)
    first_day = date(2020, 1, 1)

    def day() -> date:
        return first_day + timedelta(days=rng.randrange(days))

    dated: list[str] = []
    for i in range(count):
        # A word within a month, a day alone, two words since a day, a word before a day.
        shape = i % 4
        if shape == 0:
            dated.append(f"{common[i % len(common)]} date:{day():%Y-%m}")
        elif shape == 1:
            dated.append(f"date:{day().isoformat()}")
        elif shape == 2:
            dated.append(f"{two[i % len(two)]} date>={day().isoformat()}")
        else:
            dated.append(f"{common[i % len(common)]} date<{day().isoformat()}")
    # Exact words: spellings in 1% to 30% of papers. Most differ from their term ("models",
    # an exact token in the index); every fourth is its own term ("model": the term without
    # a variant marker, or an exact token where the paper also has a variant).
    inflected: list[str] = []
    own: list[str] = []
    for term, c in by_df:
        if 0.01 <= c / n <= 0.3:
            for spelling, _ in sorted(surface[term].items(), key=lambda i: (-i[1], i[0]))[:3]:
                (own if spelling == term else inflected).append(spelling)
    rng.shuffle(inflected)
    rng.shuffle(own)
    exact: list[str] = []
    for i in range(count):
        if i % 4 == 3 and own:
            exact.append("=" + own[(i // 4) % len(own)])
        else:
            exact.append("=" + inflected[i % len(inflected)])
    ids = [f"{2001 + n // 100_000}.{n % 100_000:05d}" for n in rng.sample(range(papers), count)]
    ids = [f"https://arxiv.org/abs/{i}v1" if k % 2 else i for k, i in enumerate(ids)]
    return {
        "common term": _cycle(common, count),
        "two terms": two,
        "phrase": _cycle(phrases, count),
        "date": dated,
        "paper id": ids,
        "exact word": exact,
    }


# Queries of these kinds ask for a later page: (page - 1) * 10 results skipped.
OFFSETS = {"page 50": 490}


def all_kinds(count: int, papers: int) -> dict[str, list[str]]:
    """Every kind: ``query_sets``, bench/search_backends.py's kinds (a word in no paper, a
    field, a negation, an upvote filter, page 50 of a common term) and acronym-widened
    queries (``ACRONYMS``)."""
    from search_backends import kinds  # it draws its kinds from query_sets above

    out = query_sets(count, papers)
    for kind, pairs in kinds(count, papers).items():
        out.setdefault(kind, [query for query, _ in pairs])
    # Half the acronym ("DMX"), half its long form unquoted ("diffusion model").
    widened = [form for pair in acronyms(out["phrase"]) for form in pair]
    out["acronym"] = _cycle(widened, count)
    return out


def acronyms(phrases: list[str], count: int = 20) -> list[tuple[str, str]]:
    """(acronym, long form) for the first ``count`` distinct phrases: "DMX" for "diffusion
    model" (the X so that no corpus word is the acronym). The synthetic corpus defines no
    acronym, so ``seed_acronyms`` writes these as if the archive had mined them; queries of
    either form are then widened to the other."""
    out: list[tuple[str, str]] = []
    for phrase in dict.fromkeys(phrases):
        words = phrase.strip('"').split()
        out.append(("".join(w[0] for w in words).upper() + "X", " ".join(words)))
        if len(out) == count:
            break
    return out


def seed_acronyms(path: Path, pairs: list[tuple[str, str]]) -> None:
    """Write ``pairs`` into the store's acronym table as frequent definitions (idempotent)."""
    from sqlalchemy import delete, insert

    from bridge.query.abbreviations import long_key, short_key
    from bridge.store import schema

    table = schema.term_expansions
    store = open_store(f"sqlite:///{path}")
    rows = [
        {
            "kind": "acronym",
            "short_key": short_key(short),
            "long_key": long_key(long),
            "short_text": short,
            "long_text": long,
            "papers": 50,
            "closed_papers": 0,
        }
        for short, long in pairs
    ]
    with store.engine.begin() as conn:
        conn.execute(delete(table).where(table.c.short_text.in_([short for short, _ in pairs])))
        conn.execute(insert(table), rows)
    store.close()


def _cycle(items: list[str], count: int) -> list[str]:
    return [items[i % len(items)] for i in range(count)] if items else []


# --- measuring -----------------------------------------------------------------------------------


def percentiles(times: list[float]) -> tuple[float, float]:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


Summary = dict[str, dict[str, list[float]]]


def measure(store: Store, queries: dict[str, list[str]], bm25_count: int) -> Summary:
    """Print each kind's figures; return kind -> row name -> [p50, p99] (ms)."""
    summary: Summary = {}
    raw = store.engine.raw_connection()
    cursor = raw.cursor()
    print(f"{'query kind':<12} {'order':<10} {'p50 ms':>8} {'p99 ms':>8}   matches (median)")
    for kind, texts in queries.items():
        # Each query's first run: pages and words not seen before in this process (the
        # analyzer's caches are cold for them). It also warms the caches for the runs below.
        offset = OFFSETS.get(kind, 0)
        first, first_cpu = [], []
        for text in texts:
            cpu = time.process_time()
            first.append(
                timed(
                    lambda text=text, offset=offset: _search(store, text, limit=10, offset=offset)
                )
            )
            first_cpu.append(time.process_time() - cpu)
        p50, p99 = percentiles(first)
        summary[kind] = {"first run": [p50, p99]}
        print(f"{kind:<12} {'first run':<10} {p50:>8.2f} {p99:>8.2f}   (relevance, first time)")
        # CPU time of the same runs: what the search itself costs, whatever else the machine
        # runs (wall time on a loaded machine is mostly waiting for a core).
        p50, p99 = percentiles(first_cpu)
        summary[kind]["first run CPU"] = [p50, p99]
        print(f"{kind:<12} {'first CPU':<10} {p50:>8.2f} {p99:>8.2f}   (the same runs, CPU time)")
        totals = []
        for order in ("relevance", "recent"):
            times = []
            for text in texts:
                result = None

                def run(text: str = text, order: str = order, offset: int = offset) -> None:
                    nonlocal result
                    result = _search(store, text, limit=10, order=order, offset=offset)

                times.append(timed(run))
                if order == "relevance" and result is not None:
                    totals.append(result.total_text)
            p50, p99 = percentiles(times)
            summary[kind][order] = [p50, p99]
            shown = statistics.median_low(sorted(totals, key=_number)) if totals else ""
            broad = len(texts) - len(totals)
            if broad and order == "relevance":
                shown += f" ({broad} of {len(texts)} answered too broad)"
            print(
                f"{kind:<12} {order:<10} {p50:>8.2f} {p99:>8.2f}   {shown if order == 'relevance' else ''}"
            )
        times = []
        for text in texts[:bm25_count]:
            parsed = parse_query(text)
            with store.engine.connect() as conn:
                terms = phrase_terms(parsed)
                plan = compile_query(
                    parsed, store.search_index.splits(conn, terms) if terms else None
                )
            if plan.loose == TRUE:
                continue  # a paper id, a date alone: the papers table answers, not FTS5
            match = to_fts5(plan.loose)
            sql = (
                f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ? "
                f"ORDER BY bm25({FTS_TABLE}) LIMIT 20"
            )
            times.append(
                timed(lambda sql=sql, match=match: cursor.execute(sql, (match,)).fetchall())
            )
        if times:
            p50, p99 = percentiles(times)
            print(
                f"{kind:<12} {'FTS5 bm25':<10} {p50:>8.2f} {p99:>8.2f}   ({len(times)} queries, top 20)"
            )
    raw.close()
    return summary


def _search(store: Store, text: str, **options: object) -> SearchResults | None:
    """One search; None when it answers "too broad" (a real answer, timed like any other)."""
    try:
        return search_store(store, text, **options)  # type: ignore[arg-type]
    except SearchTooBroad:
        return None


def _number(total: str) -> int:
    return int(total.rstrip("+").replace(",", ""))


def sizes(path: Path) -> None:
    import sqlite3

    db = sqlite3.connect(path)
    rows = db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    db.close()
    by_name = dict(rows)
    fts = sum(size for name, size in by_name.items() if name.startswith(FTS_TABLE))
    compounds = sum(size for name, size in by_name.items() if "search_compounds" in name)
    papers = sum(size for name, size in by_name.items() if "papers" in name and "fts" not in name)
    mib = 2**20
    print(
        f"index: FTS5 tables {fts / mib:,.0f} MiB + compounds {compounds / mib:,.1f} MiB;"
        f" papers table and its indexes {papers / mib:,.0f} MiB;"
        f" database file {path.stat().st_size / mib:,.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--papers",
        type=int,
        nargs="+",
        default=[1_000_000],
        help="store sizes; with several, each is measured in its own process and compared",
    )
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--bm25-queries", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument(
        "--distinct",
        type=int,
        default=None,
        help="build from this many generated papers, stored again under later ids and days",
    )
    parser.add_argument(
        "--build-only", action="store_true", help="build the store, measure nothing"
    )
    parser.add_argument("--kinds", nargs="+", help="measure only these query kinds")
    parser.add_argument("--summary", type=Path, help="write the figures here as JSON")
    parser.add_argument(
        "--optimize", action="store_true", help="merge the cached store's index (older builds)"
    )
    args = parser.parse_args()
    if len(args.papers) > 1:
        compare(args)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    papers = args.papers[0]
    path = OUT / f"search-{papers}.db"
    info_path = path.with_suffix(".json")
    if args.rebuild or not path.exists():
        print(f"building {papers:,} papers into {path} ...", file=sys.stderr)
        elapsed = build(path, papers, args.workers, args.distinct)
        info = {
            "papers": papers,
            "distinct": min(args.distinct or papers, papers),
            "build_seconds": round(elapsed, 1),
            "load": os.getloadavg(),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        info_path.write_text(json.dumps(info))
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    if args.optimize:
        store = open_store(f"sqlite:///{path}")
        merge_start = time.perf_counter()
        store.optimize_search_index()
        info["optimize_seconds"] = round(time.perf_counter() - merge_start, 1)
        store.close()
        info_path.write_text(json.dumps(info))
    if args.build_only:
        return
    vocabulary()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if info:
        rate = info["papers"] / info["build_seconds"]
        if info.get("distinct", info["papers"]) < info["papers"]:
            print(f"store: {info['distinct']:,} generated papers stored again under later ids")
        print(
            f"store: {info['papers']:,} papers, built in {info['build_seconds']:,.0f} s"
            f" ({rate:,.0f} papers/s through Store.add_papers, {args.workers} worker processes"
            f" for generation and index text; load then {info['load'][0]:.2f})"
        )
        if "optimize_seconds" in info:
            print(f"  merging its index afterwards took {info['optimize_seconds']:,.0f} s")
    queries = all_kinds(args.queries, papers)
    seed_acronyms(path, acronyms(queries["phrase"]))
    if args.kinds:
        queries = {kind: queries[kind] for kind in args.kinds}
    store = open_store(f"sqlite:///{path}")
    print(f"papers stored: {store.count_papers():,}")
    for kind, texts in queries.items():
        print(f"  {kind}: {len(texts)} queries, e.g. {', '.join(texts[:4])}")
    summary = measure(store, queries, args.bm25_queries)
    store.close()
    sizes(path)
    rss = psutil.Process().memory_info().rss / 2**20
    print(f"process resident memory after the queries: {rss:,.0f} MiB")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.summary:
        args.summary.write_text(json.dumps(summary))


def compare(args: argparse.Namespace) -> None:
    """Each size in its own process (a query's first run is first in that process), one
    after the other, then every kind's first run side by side with the growth of its p50."""
    summaries: dict[int, Summary] = {}
    for papers in args.papers:
        out = OUT / f"summary-{papers}.json"
        command = [sys.executable, __file__, "--papers", str(papers)]
        command += ["--queries", str(args.queries), "--bm25-queries", str(args.bm25_queries)]
        command += ["--workers", str(args.workers), "--summary", str(out)]
        if args.distinct:
            command += ["--distinct", str(args.distinct)]
        if args.kinds:
            command += ["--kinds", *args.kinds]
        print(f"=== {papers:,} papers ===", flush=True)
        subprocess.run(command, check=True)
        summaries[papers] = json.loads(out.read_text())
    small, large = args.papers[0], args.papers[-1]
    for row in ("first run", "first run CPU"):
        print(f"\n{row} (relevance), p50 / p99 ms; growth: p50 at {large:,} / p50 at {small:,}")
        head = "".join(f" {f'{n:,} papers':>18}" for n in args.papers)
        print(f"{'query kind':<14}{head} {'growth':>7}")
        for kind in summaries[small]:
            cells = "".join(
                f" {summaries[n][kind][row][0]:>8.2f} / {summaries[n][kind][row][1]:>7.2f}"
                for n in args.papers
            )
            growth = summaries[large][kind][row][0] / summaries[small][kind][row][0]
            print(f"{kind:<14}{cells} {growth:>7.2f}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
