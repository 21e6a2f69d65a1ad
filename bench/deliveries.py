"""Delivery benchmark: 10,000 (destination, paper) deliveries through a publisher that does
nothing, so what is measured is the ledger: matching and queueing (intake), then claiming,
confirming and the per-destination lease, on SQLite and on PostgreSQL, with one process and
with two processes sharing the database.

The baseline, measured in the same run on the same database, is the cheapest durable record a
delivery could have: one UPDATE of its row in a transaction of its own.

    .venv/bin/python bench/deliveries.py [--destinations 1000] [--papers 10] [--per-message 1,10]
        [--postgres URL] [--only sqlite|postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import bindparam, func, select, update  # noqa: E402

from bridge.config import DeliverySettings  # noqa: E402
from bridge.delivery import (  # noqa: E402
    Destination,
    DigestItem,
    DigestSubscription,
    SendOutcome,
)
from bridge.ledger import Ledger  # noqa: E402
from bridge.models import Paper  # noqa: E402
from bridge.store import Store, open_store, schema  # noqa: E402
from tests.fleet import seed_fleet  # noqa: E402

OUT = ROOT / "bench" / "out"
DEFAULT_PG = os.environ.get(
    "PAPERBRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


class NullPublisher:
    """Accepts every message at once and counts the papers."""

    kind = "bench"

    def __init__(self, per_message: int) -> None:
        self.max_papers_per_message = per_message
        self.papers = 0
        self.messages = 0

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: object = None,
    ) -> SendOutcome:
        self.papers += len(items)
        self.messages += 1
        return SendOutcome.sent()


def prepare(url: str, destinations: int, papers: int) -> None:
    store = open_store(url)
    try:
        then = datetime.now(UTC) - timedelta(days=2)
        seed_fleet(store, destinations, kind="bench", address="", query="bench", created_at=then)
        store.add_papers(
            [Paper(f"2699.{n:05d}", f"Bench paper {n}") for n in range(papers)],
            now=then + timedelta(minutes=1),
        )
    finally:
        store.close()


def reset(store: Store) -> None:
    """Every delivery pending again, every destination fresh: the next run redoes the work."""
    with store.engine.begin() as conn:
        conn.execute(
            update(schema.deliveries).values(
                state="pending", claim_token=None, claimed_by=None, attempts=0, sent_at=None
            )
        )
        conn.execute(update(schema.job_claims).values(done=True))


def baseline(store: Store, count: int) -> float:
    """Seconds per durable single-row write: UPDATE one ledger row, commit."""
    table = schema.deliveries
    stmt = update(table).where(table.c.id == bindparam("row")).values(attempts=table.c.attempts)
    start = time.perf_counter()
    for row_id in range(1, count + 1):
        with store.engine.begin() as conn:
            conn.execute(stmt, {"row": row_id})
    return (time.perf_counter() - start) / count


async def deliver_all(url: str, per_message: int, concurrency: int) -> tuple[int, int]:
    store = open_store(url)
    try:
        publisher = NullPublisher(per_message)
        ledger = Ledger(store, {"bench": publisher}, DeliverySettings(concurrency=concurrency))
        while (await ledger.sweep(force=True)).digests:
            pass
        return publisher.papers, publisher.messages
    finally:
        store.close()


def worker(url: str, per_message: int, concurrency: int) -> None:
    """A delivery process: waits for "go" on stdin, delivers, prints its figures as JSON."""
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.time()
    papers, messages = asyncio.run(deliver_all(url, per_message, concurrency))
    print(json.dumps({"papers": papers, "messages": messages, "start": start, "end": time.time()}))


def run_processes(url: str, processes: int, per_message: int, concurrency: int) -> dict[str, float]:
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--worker", url, str(per_message), str(concurrency)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=3600)
        assert proc.returncode == 0
        results.append(json.loads(out.strip().splitlines()[-1]))
    papers = sum(r["papers"] for r in results)
    elapsed = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {
        "papers": papers,
        "messages": sum(r["messages"] for r in results),
        "seconds": elapsed,
        "shares": [r["papers"] for r in results],  # type: ignore[dict-item]
    }


def bench_backend(
    name: str, url: str, destinations: int, papers: int, per_messages: list[int], concurrency: int
) -> None:
    deliveries = destinations * papers
    prepare(url, destinations, papers)
    store = open_store(url)
    try:
        ledger = Ledger(store, {})
        start = time.perf_counter()
        queued = asyncio.run(ledger.intake())
        intake = time.perf_counter() - start
        assert queued == deliveries, queued
        base = baseline(store, 2000)
        print(
            f"{name}: intake of {deliveries:,} deliveries (match + queue): {intake:.2f} s,"
            f" {intake / deliveries * 1e6:.0f} µs per delivery"
        )
        print(f"{name}: baseline, one UPDATE + commit per row: {base * 1e6:.0f} µs")
        for per_message in per_messages:
            for processes in (1, 2):
                reset(store)
                figures = run_processes(url, processes, per_message, concurrency)
                assert figures["papers"] == deliveries, figures
                with store.engine.connect() as conn:
                    rows = dict(
                        conn.execute(
                            select(schema.deliveries.c.state, func.count()).group_by(
                                schema.deliveries.c.state
                            )
                        ).all()
                    )
                assert rows == {"sent": deliveries}, rows
                seconds = figures["seconds"]
                per_delivery = seconds / deliveries
                print(
                    f"{name}: {per_message:>2} per message, {processes} process"
                    f"{'es' if processes > 1 else ''}: {seconds:6.2f} s,"
                    f" {deliveries / seconds:7,.0f} deliveries/s,"
                    f" {per_delivery * 1e6:5.0f} µs per delivery"
                    f" ({per_delivery / base:.2f}× baseline);"
                    f" {figures['messages']:,} messages; shares {figures['shares']}"
                )
    finally:
        store.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--destinations", type=int, default=1000)
    parser.add_argument("--papers", type=int, default=10)
    parser.add_argument("--per-message", default="1,10")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--postgres", default=DEFAULT_PG)
    parser.add_argument("--only", choices=["sqlite", "postgres"])
    args = parser.parse_args()
    per_messages = [int(n) for n in args.per_message.split(",")]
    print(
        f"{args.destinations:,} destinations × {args.papers} papers ="
        f" {args.destinations * args.papers:,} deliveries; concurrency {args.concurrency} per"
        " process; a publisher that does nothing"
    )
    if args.only in (None, "sqlite"):
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / "deliveries.db"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        bench_backend(
            "SQLite",
            f"sqlite:///{path}",
            args.destinations,
            args.papers,
            per_messages,
            args.concurrency,
        )
    if args.only in (None, "postgres"):
        schema_name = f"pb_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.postgres, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema_name}"')
        try:
            url = f"{args.postgres}?options=-csearch_path%3D{schema_name}"
            bench_backend(
                "PostgreSQL", url, args.destinations, args.papers, per_messages, args.concurrency
            )
        finally:
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{schema_name}" CASCADE')


if __name__ == "__main__":
    main()
