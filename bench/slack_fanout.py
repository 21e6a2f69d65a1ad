"""Slack fan-out benchmark: one morning's digests to 1,000 channels, through the real ledger and
the real Slack publisher, against the fake Slack Web API (tests/fake_slack.py, in a process of
its own) enforcing Slack's per-channel limit: a message to a channel less than 1 s after the
previous one accepted there is answered 429 with Retry-After.

Each channel's digest is ``--papers`` papers (default 25): a header message and the papers in
its thread, 10 to a message, so M = 4 messages per channel, which the limit allows no faster
than one every second: M − 1 = 3 s per channel at best.

**The allowed rate.** The ledger keeps C channels busy at once (``[delivery] concurrency``,
``--concurrency``); a channel's slot goes to the next channel as soon as its digest is done.
With N channels, the fastest any sender could finish under the limit is

    T_ideal = ceil(N / C) × (M − 1) × 1 s

and the allowed rate is N × M / T_ideal messages per second (no workspace-wide limit is
modelled: Slack publishes none for chat.postMessage). The achieved fraction is
T_ideal / T_measured, T_measured being the wall time of the ledger's sweep that sends it all.
The run is also checked: every channel got each of its papers exactly once, and no 429.

**The baseline**, measured first in the same run: the same fan-out with no limit and no pacing,
which is what the ledger (a durable commit per message), the publisher and the HTTP path can do
on this machine at that moment. When it is not well above the allowed rate, the limited run is
bounded by it rather than by the pacing.

    .venv/bin/python bench/slack_fanout.py [--channels 1000] [--papers 25] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from adapters.slack.publisher import SlackPublisher  # noqa: E402
from adapters.slack.webclient import open_session, web_client  # noqa: E402
from adapters.slack.workspaces import SingleWorkspace  # noqa: E402
from bridge.config import DeliverySettings, SlackSettings  # noqa: E402
from bridge.ledger import Ledger  # noqa: E402
from bridge.models import Paper  # noqa: E402
from bridge.store import open_store, schema  # noqa: E402
from tests.fake_slack import DEFAULT_TEAM, DEFAULT_TOKEN  # noqa: E402


def start_fake(interval: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_slack", "--channel-interval", str(interval)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    return proc, line.rsplit(" ", 1)[-1]


def prepare(url: str, channels: int, papers: int) -> None:
    store = open_store(url)
    try:
        then = datetime.now(UTC) - timedelta(days=2)
        with store.engine.begin() as conn:
            conn.execute(
                schema.destinations.insert(),
                [
                    dict(
                        id=f"slack-{n:05d}",
                        kind="slack",
                        address=f"{DEFAULT_TEAM}:C{n:05d}",
                        name=f"#c{n}",
                        created_at=then,
                    )
                    for n in range(channels)
                ],
            )
            conn.execute(
                schema.digest_subscriptions.insert(),
                [
                    dict(
                        id=f"s{n:05d}",
                        destination_id=f"slack-{n:05d}",
                        query="bench",
                        local_time="08:00",
                        time_zone="UTC",
                        created_at=then,
                    )
                    for n in range(channels)
                ],
            )
        store.add_papers(
            [
                Paper(
                    f"2699.{n:05d}",
                    f"Bench paper {n}: generalization at scale",
                    abstract="We benchmark the bench. " * 20,
                    authors=("Ann Author", "Bo Writer", "Cy Third", "Di Fourth"),
                    upvotes=n,
                    sources=("hf", "arxiv"),
                )
                for n in range(papers)
            ],
            now=then + timedelta(minutes=1),
        )
    finally:
        store.close()


async def fan_out(url: str, api: str, concurrency: int, interval: float) -> float:
    store = open_store(url)
    settings = SlackSettings(api_base_url=api, channel_interval_seconds=interval)
    session = open_session(settings)
    try:
        publisher = SlackPublisher(
            web_client(settings, session), SingleWorkspace(DEFAULT_TOKEN), settings
        )
        ledger = Ledger(store, {"slack": publisher}, DeliverySettings(concurrency=concurrency))
        await ledger.intake()
        start = time.perf_counter()
        report = await ledger.sweep(force=True)
        elapsed = time.perf_counter() - start
        outcomes = Counter(report.digests.values())
        assert outcomes == {"sent": len(report.digests)}, outcomes
        return elapsed
    finally:
        await session.close()
        store.close()


def run(channels: int, papers: int, concurrency: int, interval: float) -> tuple[float, dict]:
    """One fan-out against a fresh fake Slack and a fresh store; checks it delivered every
    paper once and returns the sweep's seconds and the fake's figures."""
    fake, base = start_fake(interval)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
            prepare(url, channels, papers)
            measured = asyncio.run(fan_out(url, f"{base}/api/", concurrency, interval))
        stats = httpx.get(f"{base}/_stats", timeout=60).json()
    finally:
        fake.terminate()
        fake.wait(timeout=10)
    wanted = {f"2699.{n:05d}" for n in range(papers)}
    for channel, posted in stats["papers"].items():
        counts = Counter(posted)
        assert set(counts) == wanted and set(counts.values()) == {1}, channel
    assert len(stats["papers"]) == channels
    return measured, stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--papers", type=int, default=25)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    per_message = SlackSettings().papers_per_message
    messages_per_channel = 1 + math.ceil(args.papers / per_message)
    total = args.channels * messages_per_channel
    load_before = os.getloadavg()
    # The baseline: the same fan-out with no limit and no pacing, what the ledger, the
    # publisher and the HTTP path can do on this machine right now.
    unlimited, _ = run(args.channels, args.papers, args.concurrency, 0.0)
    measured, stats = run(args.channels, args.papers, args.concurrency, args.interval)
    load_after = os.getloadavg()
    assert stats["messages"] == total, (stats["messages"], total)

    waves = math.ceil(args.channels / args.concurrency)
    ideal = waves * (messages_per_channel - 1) * args.interval
    allowed = total / ideal
    achieved = total / measured
    print(
        f"{args.channels} channels × {messages_per_channel} messages ({args.papers} papers each),"
        f" concurrency {args.concurrency}, one message per {args.interval:g} s per channel"
    )
    print(f"  baseline without the limit: {unlimited:.2f} s, {total / unlimited:.1f} msg/s")
    print(f"  messages accepted: {stats['messages']:,}; 429 answers: {stats['rate_limited']}")
    print(f"  shortest gap between two messages to one channel: {stats['min_gap']:.3f} s")
    print(f"  sweep: {measured:.2f} s; ideal under the limit: {ideal:.2f} s")
    print(f"  rate: {achieved:.1f} msg/s of {allowed:.1f} allowed = {achieved / allowed:.1%}")
    print(
        f"  every channel got each of its {args.papers} papers exactly once (both runs);"
        f" load average {load_before[0]:.2f} before, {load_after[0]:.2f} after"
    )
    print(
        json.dumps(
            {
                "fraction": round(achieved / allowed, 4),
                "seconds": round(measured, 3),
                "baseline_msg_per_s": round(total / unlimited, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
