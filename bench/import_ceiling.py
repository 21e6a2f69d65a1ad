"""Import ceilings: what an import's rate would be if one of its stages cost nothing.

Two of issue 14's import goals are not reached: an import at 0.6 or more of its floor
(bench/ingest.py) and a PostgreSQL import at 0.8x SQLite's rate (bench/import_backends.py).
This runs those imports again with stages made free, to show how far each stage's cost
alone keeps a goal out of reach. A rate with a free stage is not a rate the product can
reach: the stage is looked up or skipped, not done.

Stages that can be made free (a configuration joins several with ``+``):

  analysis   the analyzer in the parsing processes: each paper's index doc is worked out once
             for each distinct text and looked up afterwards (the bench's papers repeat the
             papers of one fixture under new ids, so after the first few every doc is a
             look-up)
  tsvector   PostgreSQL's binary tsvector of each doc, likewise: better than any builder,
             compiled or not, could do
  mining     the acronym and compound mining at the import's end (the search index's merge
             that runs beside it is kept)
  gin-after  PostgreSQL's GIN index dropped by the import's first transaction and built once
             after the load: possible only for an import into an empty store, with searches
             going without the index meanwhile

Each configuration runs in a process of its own. Its stages are patched there and in the
parsing processes it spawns, which import this file as their main module (``spawn``) and
read the configuration from the environment.

    .venv/bin/python bench/import_ceiling.py [--papers 20000] [--backend-papers 5000]
        [--rounds 3] [--postgres postgresql://postgres@127.0.0.1:5432/test]
        [--floor CONFIG ...] [--backends CONFIG ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

STAGES = ("analysis", "tsvector", "mining", "gin-after")
# The configuration a process runs under; set by ``main`` for each child it starts, and
# inherited by that child's parsing processes.
CONFIG_VARIABLE = "PAPERBRIDGE_BENCH_FREE_STAGES"
FLOOR_CONFIGS = ("none", "analysis", "mining", "analysis+mining")
BACKEND_CONFIGS = ("none", "tsvector", "gin-after", "tsvector+gin-after")


def stages_of(config: str) -> set[str]:
    stages = set() if config == "none" else set(config.split("+"))
    unknown = stages - set(STAGES)
    if unknown:
        raise SystemExit(f"unknown stage(s) {', '.join(sorted(unknown))}; stages: {STAGES}")
    return stages


def free_stages(stages: set[str]) -> None:
    """Patch this process so that ``stages`` cost (nearly) nothing."""
    from bridge import import_pieces, importer
    from bridge.store import search_index

    if "analysis" in stages:
        analyzed = import_pieces.index_doc
        docs: dict[tuple[Any, ...], Any] = {}

        def index_doc(paper: Any) -> Any:
            key = tuple(
                tuple(value) if isinstance(value, list) else value
                for value in (getattr(paper, name) for name in search_index.INDEXED_FIELDS)
            )
            doc = docs.get(key)
            if doc is None:
                doc = docs[key] = analyzed(paper)
            return doc

        import_pieces.index_doc = index_doc  # type: ignore[assignment]
    if "tsvector" in stages:
        built = import_pieces.to_tsvector
        tsvectors: dict[tuple[str, ...], Any] = {}

        def to_tsvector(doc: Any) -> Any:
            tsvector = tsvectors.get(doc.columns)
            if tsvector is None:
                tsvector = tsvectors[doc.columns] = built(doc)
            return tsvector

        import_pieces.to_tsvector = to_tsvector  # type: ignore[assignment]
    at_the_end = importer._mine_at_the_end
    if "mining" in stages:

        def merge_only(store: Any, _deferred: Any, counts: Any, whole: bool, *_: Any) -> None:
            if counts.new >= importer.OPTIMIZE_AFTER and whole:
                store.optimize_search_index()  # the merge stays: only the mining is free

        at_the_end = merge_only
    if "gin-after" in stages:
        index_class = search_index.SearchIndex
        begin = index_class.bulk_transaction

        def bulk_transaction(self: Any, conn: Any) -> None:
            begin(self, conn)
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {search_index.PG_INDEX}")

        index_class.bulk_transaction = bulk_transaction  # type: ignore[method-assign]
        index_class.end_bulk_transaction = lambda self, conn: None  # type: ignore[method-assign]
        then = at_the_end

        def build_index_first(store: Any, *args: Any) -> None:
            if store.engine.dialect.name == "postgresql":
                with store.engine.begin() as conn:
                    conn.exec_driver_sql(
                        f"CREATE INDEX IF NOT EXISTS {search_index.PG_INDEX}"
                        f" ON {search_index.PG_TABLE} USING GIN (doc)"
                    )
            then(store, *args)

        at_the_end = build_index_first
    importer._mine_at_the_end = at_the_end  # type: ignore[assignment]


def quietly(func: Any, *args: Any) -> Any:
    """``func(*args)`` with what it prints kept out of this bench's output."""
    with contextlib.redirect_stdout(io.StringIO()):
        return func(*args)


def floor_figures(papers: int) -> dict[str, float]:
    """bench/ingest.py's three import rates and their floors, under this process's stages."""
    from ingest import (
        bench_floor,
        bench_import,
        write_arxiv_files,
        write_import_files,
    )

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        arxiv_files = write_arxiv_files(tmp, papers)
        hf_files = write_import_files(tmp, papers)
        arxiv = "arXiv API responses"
        hf = "HF API responses"
        return {
            "arxiv_one": quietly(bench_import, tmp, arxiv_files, papers, arxiv, False),
            "arxiv_parallel": quietly(bench_import, tmp, arxiv_files, papers, arxiv, True),
            "hf_parallel": quietly(bench_import, tmp, hf_files, papers, hf, True),
            "arxiv_floor": quietly(bench_floor, tmp, arxiv_files[:20], arxiv),
            "hf_floor": quietly(bench_floor, tmp, hf_files[:20], hf),
        }


def backend_figures(papers: int, rounds: int, postgres: str) -> dict[str, float]:
    """bench/import_backends.py's rates on both databases (medians of ``rounds``, alternating),
    under this process's stages."""
    from import_backends import alternating_imports
    from ingest import write_import_files

    rates: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    cpus: dict[str, list[float]] = {"sqlite": [], "postgres": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = write_import_files(tmp, papers)
        for imports in alternating_imports(tmp, files, papers, rounds, postgres):
            for name, (rate, cpu) in zip(("sqlite", "postgres"), imports, strict=True):
                rates[name].append(rate)
                cpus[name].append(sum(cpu.values()))
    ratios = [p / s for s, p in zip(rates["sqlite"], rates["postgres"], strict=True)]
    return {
        "sqlite": statistics.median(rates["sqlite"]),
        "postgres": statistics.median(rates["postgres"]),
        "ratio": statistics.median(ratios),
        "ratio_low": min(ratios),
        "ratio_high": max(ratios),
        "sqlite_cpu": statistics.median(cpus["sqlite"]),
        "postgres_cpu": statistics.median(cpus["postgres"]),
    }


def run_config(kind: str, config: str, args: argparse.Namespace) -> dict[str, float]:
    """One configuration's figures, from a process of its own (``main`` checked its stages)."""
    command = [sys.executable, __file__, "--child", kind, "--papers", str(args.papers)]
    command += ["--backend-papers", str(args.backend_papers), "--rounds", str(args.rounds)]
    command += ["--postgres", args.postgres]
    env = dict(os.environ, **{CONFIG_VARIABLE: config})
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} with {config} free failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=20_000, help="for the floor figures")
    parser.add_argument("--backend-papers", type=int, default=5_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "PAPERBRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--floor", nargs="*", default=list(FLOOR_CONFIGS), metavar="CONFIG")
    parser.add_argument("--backends", nargs="*", default=list(BACKEND_CONFIGS), metavar="CONFIG")
    parser.add_argument("--child", choices=("floor", "backends"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.papers < 10_000:
        parser.error("--papers must be 10,000 or more (bench/ingest.py samples memory that often)")
    if args.child == "floor":
        print(json.dumps(floor_figures(args.papers)))
        return
    if args.child == "backends":
        print(json.dumps(backend_figures(args.backend_papers, args.rounds, args.postgres)))
        return
    for config in args.floor + args.backends:
        stages_of(config)  # a typo fails before anything runs
    print(f"load average at start: {load()}")
    if args.floor:
        print(
            f"\nImport rate against its floor, {args.papers:,} papers (bench/ingest.py's;"
            " goal 0.6 or more), with stages free:"
        )
        print(
            f"  {'free':<20} {'arXiv, one process':>20} {'arXiv, parsing':>16} {'HF, parsing':>14}"
        )
    for config in args.floor:
        f = run_config("floor", config, args)
        cells = [
            f"{f['arxiv_one'] / f['arxiv_floor']:.2f}",
            f"{f['arxiv_parallel'] / f['arxiv_floor']:.2f}",
            f"{f['hf_parallel'] / f['hf_floor']:.2f}",
        ]
        print(
            f"  {config:<20} {cells[0]:>20} {cells[1]:>16} {cells[2]:>14}"
            f"   ({f['arxiv_one']:,.0f}, {f['arxiv_parallel']:,.0f} / {f['arxiv_floor']:,.0f};"
            f" {f['hf_parallel']:,.0f} / {f['hf_floor']:,.0f} papers/s; load {load()})",
            flush=True,
        )
    if args.backends:
        print(
            f"\nPostgreSQL import against SQLite's, {args.backend_papers:,} papers, median of"
            f" {args.rounds} alternating rounds (bench/import_backends.py's; goal 0.8x or more),"
            " with stages free:"
        )
    for config in args.backends:
        b = run_config("backends", config, args)
        print(
            f"  {config:<20} {b['ratio']:.2f}x (rounds {b['ratio_low']:.2f}-{b['ratio_high']:.2f})"
            f"   SQLite {b['sqlite']:,.0f}, PostgreSQL {b['postgres']:,.0f} papers/s;"
            f" CPU {b['sqlite_cpu']:.2f} / {b['postgres_cpu']:.2f} s; load {load()}",
            flush=True,
        )
    print(f"load average at end: {load()}")


# In this process and in each parsing process it spawns (which import this file as their
# main module): the configuration's stages made free.
if os.environ.get(CONFIG_VARIABLE):
    free_stages(stages_of(os.environ[CONFIG_VARIABLE]))

if __name__ == "__main__":
    main()
