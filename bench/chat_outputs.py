"""Chat outputs benchmark: messages per second posted by each new chat output (Mattermost /
Rocket.Chat, Telegram, Teams, Matrix) to its local stand-in (tests/fake_chat_apis.py), with the
real rendering and escaping of 5 papers per message from the Hugging Face fixture.

Baseline, measured in the same run against the same stand-in: a bare ``httpx`` request of the
same method to the same URL with an already-built body (no rendering, no outcome handling).
Telegram's pacing (20 messages a minute per group) is the platform's rule, not a cost: the
publisher is given a sleep that returns at once, and each message goes to another chat so the
pacer never waits; the figure is what the code costs.

    .venv/bin/python bench/chat_outputs.py [--messages 200]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from adapters.matrix.publisher import MatrixPublisher  # noqa: E402
from adapters.mattermost.publisher import MattermostPublisher  # noqa: E402
from adapters.teams.publisher import TeamsPublisher  # noqa: E402
from adapters.telegram.publisher import TelegramPublisher  # noqa: E402
from bridge.delivery import Destination, DigestItem, DigestRun, DigestSubscription  # noqa: E402
from bridge.models import Match, StoredPaper  # noqa: E402
from bridge.query import match_paper, parse_query  # noqa: E402
from bridge.sources.hf_parse import parse_api  # noqa: E402
from tests.fake_chat_apis import FakeMatrix, FakeMattermost, FakeTeams, FakeTelegram  # noqa: E402

NOW = datetime(2026, 6, 1, tzinfo=UTC)
PER_MESSAGE = 5
TOKEN = "123456789:AAH" + "s" * 32


def items() -> list[DigestItem]:
    raw = (ROOT / "tests/fixtures/hf/daily_papers_api_limit30_2026-06-13.json").read_bytes()
    query = parse_query("model OR learning OR language")
    out = []
    for n, paper in enumerate(parse_api(raw, "bench").papers, 1):
        hits = match_paper(query, paper) or ()
        out.append(DigestItem(StoredPaper(paper, n, NOW, True), Match("s", paper.arxiv_id, hits)))
    return out


async def no_sleep(seconds: float) -> None:
    return None


async def timed(
    count: int, send: Callable[[int], Awaitable[Any]], posted: Callable[[], int]
) -> float:
    """Messages the stand-in accepted per second over ``count`` sends (a digest of long
    papers may take two messages on Telegram, so the stand-in's count is the measure)."""
    for n in range(3):  # warm the connection
        await send(n)
    before = posted()
    start = time.perf_counter()
    for n in range(count):
        await send(count + n)
    return (posted() - before) / (time.perf_counter() - start)


async def run(messages: int) -> None:
    batch = items()[:PER_MESSAGE]
    sub = DigestSubscription("s", "d", "model OR learning OR language")
    rows: list[tuple[str, float, float, int]] = []
    async with httpx.AsyncClient(timeout=10) as client:
        with FakeMattermost() as fake:
            url = fake.webhook_url()
            pub = MattermostPublisher(client, environ={"HOOK": url}, sleep=no_sleep)
            dest = Destination("m", "mattermost", "HOOK")
            ours = await timed(
                messages,
                lambda n: pub.send_digest(dest, batch, subscription=sub),
                lambda: len(fake.delivered),
            )
            body = {"text": fake.texts()[0]}
            bare = await timed(
                messages, lambda n: client.post(url, json=body), lambda: len(fake.delivered)
            )
            rows.append(("Mattermost / Rocket.Chat", ours, bare, len(fake.delivered)))
        with FakeTelegram(TOKEN) as fake:
            fake.chats.update(str(n) for n in range(2 * messages + 3))
            pub = TelegramPublisher(client, token=TOKEN, api_base=fake.base_url, sleep=no_sleep)
            ours = await timed(
                messages,
                lambda n: pub.send_digest(
                    Destination(f"t{n}", "telegram", str(n)), batch, subscription=sub
                ),
                lambda: len(fake.delivered),
            )
            body = dict(fake.delivered[0].body)
            url = f"{fake.base_url}/bot{TOKEN}/sendMessage"
            bare = await timed(
                messages, lambda n: client.post(url, json=body), lambda: len(fake.delivered)
            )
            rows.append(("Telegram", ours, bare, len(fake.delivered)))
        with FakeTeams() as fake:
            url = fake.workflow_url()
            pub = TeamsPublisher(client, environ={"WF": url}, sleep=no_sleep)
            dest = Destination("t", "teams", "WF")
            ours = await timed(
                messages,
                lambda n: pub.send_digest(dest, batch, subscription=sub),
                lambda: len(fake.delivered),
            )
            body = fake.delivered[0].body
            bare = await timed(
                messages, lambda n: client.post(url, json=body), lambda: len(fake.delivered)
            )
            rows.append(("Teams", ours, bare, len(fake.delivered)))
        with FakeMatrix("syt_bench_" + "a" * 30) as fake:
            fake.rooms.add("!lab:example.org")
            pub = MatrixPublisher(
                client, homeserver=fake.base_url, token=fake.token, sleep=no_sleep
            )
            dest = Destination("x", "matrix", "!lab:example.org")
            # Each message its own batch (another slot), so no transaction id repeats.
            ours = await timed(
                messages,
                lambda n: pub.send_digest(
                    dest, batch, subscription=sub, run=DigestRun("x", "s", NOW, 0, messages=n)
                ),
                lambda: len(fake.delivered),
            )
            body = fake.delivered[0].body
            counter = iter(range(10**9))
            bare = await timed(
                messages,
                lambda n: client.put(
                    f"{fake.base_url}/_matrix/client/v3/rooms/%21lab%3Aexample.org/send/"
                    f"m.room.message/bare{next(counter)}",
                    json=body,
                    headers={"Authorization": f"Bearer {fake.token}"},
                ),
                lambda: len(fake.delivered),
            )
            rows.append(("Matrix", ours, bare, len(fake.delivered)))
    print(f"{messages} messages of {PER_MESSAGE} papers each, one at a time, per output")
    print(f"{'output':<26} {'messages/s':>11} {'bare httpx/s':>13} {'ratio':>6} {'delivered':>10}")
    for name, ours, bare, delivered in rows:
        print(f"{name:<26} {ours:>11,.0f} {bare:>13,.0f} {bare / ours:>5.2f}× {delivered:>10}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.messages))


if __name__ == "__main__":
    main()
