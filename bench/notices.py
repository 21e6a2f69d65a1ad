"""Notice benchmark: what working out the due notices adds to each ledger sweep, with 1,000
destinations that have a digest each, on SQLite and on PostgreSQL: while every source answers
(the usual minute), and while an outage a day old lasts (every channel told already, so each
sweep finds its notices known).

The baseline, measured in the same run on the same store, is what every sweep already reads
before it decides anything: the digests, the destinations and the pending counts
(``Ledger._overview``).

    .venv/bin/python bench/notices.py [--destinations 1000] [--rounds 50] [--postgres URL]
        [--only sqlite|postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.config import Settings  # noqa: E402
from bridge.ledger import build_ledger  # noqa: E402
from bridge.store import open_store  # noqa: E402
from tests.fleet import seed_fleet  # noqa: E402

DEFAULT_PG = os.environ.get(
    "PAPERBRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def median_ms(rounds: int, work: Callable[[], object]) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(url: str, label: str, destinations: int, rounds: int) -> None:
    store = open_store(url)
    try:
        now = datetime.now(UTC)
        seed_fleet(
            store,
            destinations,
            kind="file",
            address="/dev/null",
            query="generalization",
            created_at=now - timedelta(days=3),
        )
        ledger = build_ledger(store, Settings())
        subs, dests, _pending = ledger._overview()
        by_id = {dest.id: dest for dest in dests.values()}
        baseline = median_ms(rounds, ledger._overview)
        store.record_poll_success("hf", None, now=now - timedelta(minutes=30))
        answering = median_ms(rounds, lambda: ledger._plan_notices(now, subs, by_id))
        store.record_poll_success("hf", None, now=now - timedelta(days=2))
        ledger._plan_notices(now, subs, by_id)  # the outage's notices, added once
        outage = median_ms(rounds, lambda: ledger._plan_notices(now, subs, by_id))
        told = len(ledger.db.notices())
    finally:
        store.close()
    print(
        f"{label}: {destinations:,} destinations, median of {rounds}: baseline (a sweep's"
        f" overview read) {baseline:.2f} ms; notices while every source answers {answering:.2f}"
        f" ms ({answering / baseline:.2f}x); during an outage, {told:,} notices known"
        f" {outage:.2f} ms ({outage / baseline:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--destinations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--postgres", default=DEFAULT_PG)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    if args.only != "postgres":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/bench.db"
            measure(url, "sqlite", args.destinations, args.rounds)
    if args.only != "sqlite":
        schema = f"pb_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = f"{args.postgres}?options=-csearch_path%3D{schema}"
            measure(url, "postgresql", args.destinations, args.rounds)
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()
