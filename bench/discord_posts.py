"""Discord benchmark: rendering digests and search pages into embeds inside Discord's limits,
and posting digests through the webhook publisher to the local stand-in for Discord's API.

The baselines, measured in the same run: a bare ``discord.Embed`` with the raw title and
abstract (no escaping, no fitting to the limits), and a bare ``httpx`` POST of the same JSON to
the same local server.

    .venv/bin/python bench/discord_posts.py [--messages 300]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import discord  # noqa: E402
import httpx  # noqa: E402

from adapters.discord.render import digest_messages, paper_embed  # noqa: E402
from adapters.discord.webhook import WebhookPublisher  # noqa: E402
from bridge.delivery import Destination, DigestItem, DigestSubscription  # noqa: E402
from bridge.models import Match, StoredPaper  # noqa: E402
from bridge.query import match_paper, parse_query  # noqa: E402
from bridge.sources.hf_parse import parse_api  # noqa: E402
from tests.fake_discord import FakeDiscord  # noqa: E402

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def items() -> list[DigestItem]:
    raw = (ROOT / "tests/fixtures/hf/daily_papers_api_limit30_2026-06-13.json").read_bytes()
    query = parse_query("model OR learning OR language")
    out = []
    for n, paper in enumerate(parse_api(raw, "bench").papers, 1):
        hits = match_paper(query, paper) or ()
        out.append(DigestItem(StoredPaper(paper, n, NOW, True), Match("s", paper.arxiv_id, hits)))
    return out


def best(runs: int, work) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_render(all_items: list[DigestItem]) -> None:
    def ours() -> None:
        for item in all_items:
            paper_embed(item.stored.paper, item.match.hits, item.why)

    def bare() -> None:
        for item in all_items:
            paper = item.stored.paper
            discord.Embed(title=paper.title, url=paper.abs_url, description=paper.abstract)

    sub = DigestSubscription("s", "d", "model OR learning OR language")

    def digests() -> None:
        for start in range(0, len(all_items), 5):
            digest_messages(all_items[start : start + 5], sub, None, 5)

    n = len(all_items)
    t_ours, t_bare, t_digest = best(20, ours), best(20, bare), best(20, digests)
    print(
        f"embeds: {n / t_ours:,.0f} papers/s ({t_ours / n * 1e6:.0f} µs each);"
        f" bare discord.Embed {n / t_bare:,.0f}/s; ratio {t_ours / t_bare:.1f}x"
    )
    messages = -(-n // 5)
    print(
        f"digest messages of 5 papers: {messages / t_digest:,.0f}/s"
        f" ({t_digest / messages * 1e3:.2f} ms each)"
    )


async def bench_webhook(all_items: list[DigestItem], messages: int) -> None:
    with FakeDiscord() as fake:
        env = {"HOOK": fake.webhook_url("800000000000000001", "t" * 60)}
        dest = Destination("d", "discord-webhook", "HOOK")
        sub = DigestSubscription("s", "d", "model")
        batch = all_items[:5]
        async with httpx.AsyncClient() as client:
            publisher = WebhookPublisher(client, api_base=fake.api_base, environ=env)
            start = time.perf_counter()
            for _ in range(messages):
                outcome = await publisher.send_digest(dest, batch, subscription=sub)
                assert outcome.status == "sent"
            ours = time.perf_counter() - start
            payload = fake.delivered[0].body
            url = f"{fake.api_base}/webhooks/800000000000000001/{'t' * 60}"
            start = time.perf_counter()
            for _ in range(messages):
                (await client.post(url, params={"wait": "true"}, json=payload)).raise_for_status()
            bare = time.perf_counter() - start
    print(
        f"webhook digests (5 papers each) to the local stand-in: {messages / ours:,.0f}"
        f" messages/s; bare httpx POST of the same JSON {messages / bare:,.0f}/s;"
        f" ratio {ours / bare:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    all_items = items()
    bench_render(all_items)
    asyncio.run(bench_webhook(all_items, args.messages))


if __name__ == "__main__":
    main()
