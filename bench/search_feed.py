"""Search feeds over a large store: the first request of ``/feeds/search.atom?q=`` (nothing cached).

A search feed lists a query's newest matches by listing day (``bridge.search_newest``). This
prints, for a few kinds of query, the time of the first request of each query's feed through
the real app (``FeedSite`` routes and fast path, in-process over ASGI: the feed's render is
not cached yet, the store's pages may be), and two baselines measured in the same run on the
same queries: the bare ``newest_matches`` call the feed makes, and ``search_store(...,
order="recent", limit=50)``, the index-order search the feeds used before.

The store: ``bench/out/search-<N>.db`` when ``bench/search.py`` built one (1,000 papers a
listing day, stored in day order), else one built by that script's ``build`` into
``bench/out/feed-<N>.db``.
``--distinct D`` builds it from D generated papers stored ``N / D`` times over under new ids
and later listing days (generating a paper and its index text is most of a build's time: a
1M build takes some 5 minutes on an idle machine and hours on a loaded one). The words then
occur as often as in a fully generated store, each text ``N / D`` times.

    .venv/bin/python bench/search_feed.py [--papers 1000000] [--distinct 100000] [--queries 20]
        [--postgres postgresql://postgres@127.0.0.1:5432/DB] [--kinds "upvote filter" ...]

``--postgres`` measures the same queries on the PostgreSQL store bench/search_backends.py
builds into that database (schema ``pb_bench_<N>[_d<D>]``: build it first with its
``--build-only``) after the SQLite one, and prints each kind's ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import synthetic_paper  # noqa: E402
from search import STOPWORDS, build, query_sets  # noqa: E402

from adapters.atom import FeedOptions, FeedSite  # noqa: E402
from bridge.app import open_bridge  # noqa: E402
from bridge.config import Settings  # noqa: E402
from bridge.errors import SearchTooBroad  # noqa: E402
from bridge.query.normalize import normalize_word  # noqa: E402
from bridge.search import search_store  # noqa: E402
from bridge.search_newest import newest_matches  # noqa: E402
from bridge.web import create_web_app  # noqa: E402

OUT = ROOT / "bench" / "out"
FEED_SIZE = 50


# --- the queries ---------------------------------------------------------------------------------


def rare_words(count: int, papers: int, seed: int = 11) -> list[str]:
    """Words in about 0.03% of papers (a few hundred matches at 1M): the few-matches path."""
    sample = [synthetic_paper(n) for n in range(0, papers, max(1, papers // 4000))]
    df: Counter[str] = Counter()
    for paper in sample:
        words = {w.strip(".,;:()").lower() for w in f"{paper.title} {paper.abstract}".split()}
        df.update(w for w in words if w.isalpha() and len(w) > 3 and w not in STOPWORDS)
    low = [w for w, c in sorted(df.items()) if 1 <= c <= 2 and normalize_word(w) == w]
    random.Random(seed).shuffle(low)
    return low[:count]


def medium_words(count: int, papers: int, seed: int = 13) -> list[str]:
    """Words in 0.2% to 1% of papers: many matches, but not on every listing day's first page."""
    sample = [synthetic_paper(n) for n in range(0, papers, max(1, papers // 4000))]
    df: Counter[str] = Counter()
    for paper in sample:
        words = {w.strip(".,;:()").lower() for w in f"{paper.title} {paper.abstract}".split()}
        df.update(w for w in words if w.isalpha() and len(w) > 3 and w not in STOPWORDS)
    n = len(sample)
    mid = [w for w, c in sorted(df.items()) if 0.002 <= c / n <= 0.01]
    random.Random(seed).shuffle(mid)
    return mid[:count]


# --- measuring -----------------------------------------------------------------------------------


def ms(times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered) * 1000:>8.2f} {p99 * 1000:>8.2f}"


async def measure(url: str, kinds: dict[str, list[str]]) -> dict[str, float]:
    """Print each kind's figures on the store at ``url``; return each kind's p50 (seconds) of
    the feed's first request."""
    p50s: dict[str, float] = {}
    settings = Settings.model_validate(
        {"store": {"database_url": url}, "sources": {"hf": {"enabled": False}}}
    )
    async with open_bridge(settings) as bridge:
        store = bridge.store
        site = FeedSite(bridge, FeedOptions(version_ttl=60, stale_grace=None))
        app = create_web_app(
            bridge,
            extra_routes=site.routes(),
            middleware=site.middleware(),
            fast_paths=site.fast_paths(),
        )
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
            start = time.perf_counter()
            response = await client.get("/feeds/all.atom")
            first_all = time.perf_counter() - start
            assert response.status_code == 200, response.text
            print(f"/feeds/all.atom, first request: {first_all * 1000:.2f} ms")
            print(
                f"{'query kind':<14} {'measured':<34} {'p50 ms':>8} {'p99 ms':>8}"
                f" {'cpu p50':>8} {'cpu p99':>8}   entries (median), e.g."
            )
            for kind, texts in kinds.items():
                firsts, entries, broad = [], [], 0
                cpu: dict[str, list[float]] = {"first": [], "bare": [], "before": []}
                for text in texts:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    response = await client.get("/feeds/search.atom", params={"q": text})
                    firsts.append(time.perf_counter() - started)
                    cpu["first"].append(time.process_time() - cpu_started)
                    # 422: the search ran past its budget (150 ms), as on a loaded machine.
                    assert response.status_code in (200, 422), (text, response.text)
                    broad += response.status_code == 422
                    entries.append(response.text.count("<entry>"))
                bare = []
                for text in texts:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    with contextlib.suppress(SearchTooBroad):
                        await asyncio.to_thread(newest_matches, store, text, limit=FEED_SIZE)
                    bare.append(time.perf_counter() - started)
                    cpu["bare"].append(time.process_time() - cpu_started)
                before = []
                for text in texts:
                    started, cpu_started = time.perf_counter(), time.process_time()
                    with contextlib.suppress(SearchTooBroad):
                        await asyncio.to_thread(
                            search_store, store, text, limit=FEED_SIZE, order="recent"
                        )
                    before.append(time.perf_counter() - started)
                    cpu["before"].append(time.process_time() - cpu_started)
                example = ", ".join(texts[:3])
                count = statistics.median(entries)
                p50s[kind] = statistics.median(firsts)
                print(
                    f"{kind:<14} {'first request of the feed':<34} {ms(firsts)}"
                    f" {ms(cpu['first'])}   {count:.0f}, {example}"
                    + (f" ({broad} answered 422 too broad)" if broad else "")
                )
                print(f"{'':<14} {'newest_matches alone (again)':<34} {ms(bare)} {ms(cpu['bare'])}")
                print(
                    f"{'':<14} {'search_store recent (index order)':<34} {ms(before)}"
                    f" {ms(cpu['before'])}"
                )
    return p50s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1_000_000)
    parser.add_argument("--distinct", type=int, default=None, help="generate this many (build)")
    parser.add_argument("--queries", type=int, default=20, help="queries of each kind")
    parser.add_argument("--kinds", nargs="+", help="measure only these query kinds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--postgres",
        help="also on the PostgreSQL store bench/search_backends.py built (its --postgres and"
        " --papers/--distinct), after the SQLite one, and the ratio of each kind's p50",
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"search-{args.papers}.db"
    if not path.exists():
        path = OUT / f"feed-{args.papers}.db"
        info_path = path.with_suffix(".json")
        if not path.exists():
            distinct = min(args.distinct or args.papers, args.papers)
            print(
                f"building {args.papers:,} papers ({distinct:,} distinct) into {path}",
                file=sys.stderr,
            )
            elapsed = build(
                path, args.papers, args.workers, distinct if distinct < args.papers else None
            )
            info = {
                "papers": args.papers,
                "distinct": distinct,
                "build_seconds": round(elapsed, 1),
                "load": os.getloadavg(),
                "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            info_path.write_text(json.dumps(info))
        info = json.loads(info_path.read_text())
        print(
            f"store: {info['papers']:,} papers from {info['distinct']:,} generated ones,"
            f" built in {info['build_seconds']:,.0f} s (load then {info['load'][0]:.2f})"
        )
    print(f"store file: {path}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    # Words drawn from the papers the store holds (the generated ones when built here).
    span = min(args.distinct or args.papers, args.papers, 200_000)
    sets = query_sets(args.queries, span)
    kinds = {
        "common word": sets["common term"],
        "medium word": medium_words(args.queries, span),
        "rare word": rare_words(args.queries, span),
        "phrase": sets["phrase"],
        "two words": sets["two terms"],
        # As bench/search_backends.py asks it. On PostgreSQL each match's papers row was read
        # for its votes until the docs held upvote steps (search_index.VOTE_STEPS).
        "upvote filter": [f"upvotes>=5 {word}" for word in sets["common term"]],
    }
    if args.kinds:
        unknown = set(args.kinds) - set(kinds)
        if unknown:
            parser.error(f"unknown kinds {sorted(unknown)}; the kinds are {sorted(kinds)}")
        kinds = {kind: kinds[kind] for kind in args.kinds}
    print("SQLite:")
    sqlite = asyncio.run(measure(f"sqlite:///{path}", kinds))
    if args.postgres:
        from search_backends import postgres_url, store_name

        schema = f"pb_bench_{store_name(args.papers, args.distinct or args.papers)}"
        print(f"PostgreSQL ({schema}):")
        postgres = asyncio.run(measure(postgres_url(args.postgres, schema), kinds))
        print("first request of the feed, p50: PostgreSQL / SQLite")
        for kind, seconds in sqlite.items():
            print(
                f"  {kind:<14} {postgres[kind] * 1000:8.2f} / {seconds * 1000:8.2f} ms"
                f" = {postgres[kind] / seconds:.2f}x"
            )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
