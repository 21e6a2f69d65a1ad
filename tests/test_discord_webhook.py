"""Digests through channel webhooks, against a local stand-in for Discord's API: what is posted,
429s and 5xx, webhooks that are gone, timeouts, no mention ever, the URL never shown; and
through the real ledger, every paper in every channel exactly once across a restart."""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from adapters.discord.webhook import MAX_WAIT_SECONDS, WebhookPublisher
from bridge.config import DeliverySettings
from bridge.delivery import Destination, DigestItem, DigestRun, DigestSubscription
from bridge.ledger import Ledger
from bridge.models import Match, Paper, StoredPaper
from bridge.store import Store
from tests.fake_discord import FakeDiscord
from tests.fakes import Clock

T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
TOKEN = "tok_" + "x" * 60
MENTIONS = "@everyone @here <@123456789012345678> <@&987654321098765432>"


class Sleeps:
    """The publisher's sleeper: records each wait and returns at once, moving ``now`` (the
    publisher's clock, when the test gives it one) as if the time had passed."""

    def __init__(self, now: list[float] | None = None) -> None:
        self.waits: list[float] = []
        self.now = now

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.now is not None:
            self.now[0] += seconds


@pytest.fixture
def discord_api() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # Long enough for the fake to answer on a loaded machine (0.3 s was not, and a healthy post
    # came back as "retry"); the silences the tests inject last longer still.
    async with httpx.AsyncClient(timeout=1.5) as opened:
        yield opened


def publisher(
    fake: FakeDiscord, client: httpx.AsyncClient, environ: dict[str, str], sleeps: Sleeps
) -> WebhookPublisher:
    return WebhookPublisher(
        client, api_base=fake.api_base, papers_per_message=3, environ=environ, sleep=sleeps
    )


def item(n: int, title: str = "Generalization in deep networks", **kw: object) -> DigestItem:
    paper = Paper(f"2606.{n:05d}", title, abstract="We study generalisation.", **kw)  # type: ignore[arg-type]
    return DigestItem(StoredPaper(paper, n, T0, True), Match("s", paper.arxiv_id))


DEST = Destination("discord-webhook-1", "discord-webhook", "LAB_HOOK", name="lab")
SUB = DigestSubscription("s", DEST.id, "generalization")


async def test_a_digest_is_posted_with_its_header_and_no_mentions(
    discord_api: FakeDiscord, client: httpx.AsyncClient
) -> None:
    env = {"LAB_HOOK": discord_api.webhook_url("123456789012345678", TOKEN)}
    pub = publisher(discord_api, client, env, Sleeps())
    items = [item(1, f"{MENTIONS} a title"), item(2, authors=("@everyone",))]
    outcome = await pub.send_digest(
        DEST, items, subscription=SUB, run=DigestRun(DEST.id, "s", None, 2)
    )
    assert outcome.status == "sent"
    [call] = discord_api.delivered
    assert call.path == f"/webhooks/123456789012345678/{TOKEN}"
    assert call.query == {"wait": "true"}
    assert call.body["allowed_mentions"] == {"parse": []}
    assert call.body["content"].startswith("📰 **2 new papers** for `generalization`")
    assert [e["url"] for e in call.body["embeds"]] == [
        "https://arxiv.org/abs/2606.00001",
        "https://arxiv.org/abs/2606.00002",
    ]
    title = call.body["embeds"][0]["title"]
    assert "<@" not in title and "\\@everyone" in title


async def test_later_messages_of_a_run_continue_it(
    discord_api: FakeDiscord, client: httpx.AsyncClient
) -> None:
    env = {"LAB_HOOK": discord_api.webhook_url("123456789012345678", TOKEN)}
    pub = publisher(discord_api, client, env, Sleeps())
    run = DigestRun(DEST.id, "s", None, pending=5, messages=1)
    await pub.send_digest(DEST, [item(4), item(5)], subscription=SUB, run=run)
    assert discord_api.delivered[0].body["content"] == "… continued (4–5 of 5)"
    quiet = await pub.send_digest(DEST, [], subscription=SUB)
    assert quiet.status == "sent"
    assert discord_api.delivered[1].body["content"].startswith("All quiet for `generalization`")


async def test_a_short_rate_limit_is_waited_out_and_a_long_one_goes_to_the_ledger(
    discord_api: FakeDiscord, client: httpx.AsyncClient
) -> None:
    env = {"LAB_HOOK": discord_api.webhook_url("123456789012345678", TOKEN)}
    sleeps = Sleeps()
    pub = publisher(discord_api, client, env, sleeps)
    discord_api.rate_limit("/webhooks/", retry_after=1.5)
    assert (await pub.send_digest(DEST, [item(1)], subscription=SUB)).status == "sent"
    assert sleeps.waits[0] == 1.5 and len(discord_api.delivered) == 1

    discord_api.rate_limit("/webhooks/", retry_after=120.0)
    outcome = await pub.send_digest(DEST, [item(2)], subscription=SUB)
    assert (outcome.status, outcome.retry_after) == ("retry", 120.0)
    assert len(discord_api.delivered) == 1


async def test_an_empty_bucket_is_waited_out_before_the_next_post(
    discord_api: FakeDiscord, client: httpx.AsyncClient
) -> None:
    env = {"LAB_HOOK": discord_api.webhook_url("123456789012345678", TOKEN)}
    now = [100.0]
    sleeps = Sleeps(now)
    pub = WebhookPublisher(
        client, api_base=discord_api.api_base, environ=env, sleep=sleeps, clock=lambda: now[0]
    )
    # A 429 says the bucket is empty for 2 s; the retry is after the wait.
    discord_api.rate_limit("/webhooks/", retry_after=2.0)
    await pub.send_digest(DEST, [item(1)], subscription=SUB)
    assert sleeps.waits == [2.0]
    # Past a long reset, the post is not even tried: the ledger is told when to come back.
    discord_api.rate_limit("/webhooks/", retry_after=MAX_WAIT_SECONDS * 3, times=3)
    outcome = await pub.send_digest(DEST, [item(2)], subscription=SUB)
    calls_before = len(discord_api.calls)
    again = await pub.send_digest(DEST, [item(2)], subscription=SUB)
    assert outcome.status == again.status == "retry"
    assert again.retry_after is not None and again.retry_after > MAX_WAIT_SECONDS
    assert len(discord_api.calls) == calls_before


async def test_server_errors_are_retried_then_handed_back(
    discord_api: FakeDiscord, client: httpx.AsyncClient
) -> None:
    env = {"LAB_HOOK": discord_api.webhook_url("123456789012345678", TOKEN)}
    sleeps = Sleeps()
    pub = publisher(discord_api, client, env, sleeps)
    discord_api.fail("/webhooks/", times=2, status=502)
    assert (await pub.send_digest(DEST, [item(1)], subscription=SUB)).status == "sent"
    assert sleeps.waits == [1.0, 2.0]
    discord_api.fail("/webhooks/", times=3, status=500)
    outcome = await pub.send_digest(DEST, [item(2)], subscription=SUB)
    assert outcome.status == "retry" and "500" in outcome.reason and not outcome.maybe_sent
    assert len(discord_api.delivered) == 1


async def test_a_timeout_may_have_posted(
    discord_api: FakeDiscord, client: httpx.AsyncClient
) -> None:
    env = {"LAB_HOOK": discord_api.webhook_url("123456789012345678", TOKEN)}
    pub = publisher(discord_api, client, env, Sleeps())
    discord_api.fail("/webhooks/", hang=4.0)
    outcome = await pub.send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == "retry" and outcome.maybe_sent


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("unknown", "Unknown Webhook"),
        ("bad-token", "Invalid Webhook Token"),
        ("no-variable", "does not hold a Discord webhook URL"),
    ],
)
async def test_a_gone_webhook_is_permanent_and_its_url_never_shown(
    discord_api: FakeDiscord,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    setup: str,
    reason: str,
) -> None:
    url = f"https://discord.com/api/webhooks/123456789012345678/{TOKEN}"
    env = {"LAB_HOOK": url}
    if setup == "bad-token":
        discord_api.webhooks["123456789012345678"] = "another-token-" + "y" * 40
    if setup == "no-variable":
        env = {}
    pub = publisher(discord_api, client, env, Sleeps())
    caplog.set_level(logging.DEBUG)
    outcome = await pub.send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == "permanent" and reason in outcome.reason
    assert TOKEN not in outcome.reason and TOKEN not in caplog.text


# -- through the real ledger --------------------------------------------------------------------


def fan_out(store: Store, fake: FakeDiscord, channels: int, clock: Clock) -> dict[str, str]:
    """``channels`` webhook destinations subscribed to "drift"; returns their environment."""
    env: dict[str, str] = {}
    ledger = Ledger(store, {}, DeliverySettings(), clock=clock)
    for n in range(channels):
        name = f"HOOK_{n}"
        env[name] = fake.webhook_url(f"{200000000000000000 + n}", f"token-{n}-" + "z" * 30)
        dest = Destination(f"discord-webhook-{n}", "discord-webhook", name, name=f"#c{n}")
        ledger.db.save_destination(dest, clock.now)
        ledger.db.save_digest(
            DigestSubscription(f"s{n}", dest.id, "drift", "08:00", "UTC", created_at=clock.now),
            clock.now,
        )
    return env


def delivered(fake: FakeDiscord) -> Counter[tuple[str, str]]:
    return Counter(
        (call.path.split("/")[2], embed["url"].rsplit("/", 1)[1])
        for call in fake.delivered
        for embed in call.body.get("embeds", [])
    )


async def test_a_fan_out_with_faults_delivers_every_paper_once_across_a_restart(
    store: Store, discord_api: FakeDiscord, client: httpx.AsyncClient
) -> None:
    channels, papers = 12, 7
    clock = Clock(T0)
    env = fan_out(store, discord_api, channels, clock)
    clock.advance(minutes=1)
    store.add_papers([Paper(f"2606.{n:05d}", f"Drift {n}") for n in range(papers)], now=clock.now)
    rng = random.Random(7)
    for _ in range(25):  # faults on about half the posts: 429s, 5xx, silences
        kind = rng.choice(["429", "500", "hang", "503"])
        if kind == "429":
            discord_api.rate_limit("/webhooks/", retry_after=rng.choice([0.5, 40.0]))
        elif kind == "hang":
            discord_api.fail("/webhooks/", hang=1.0)
        else:
            discord_api.fail("/webhooks/", status=int(kind), times=rng.randint(1, 3))

    def ledger() -> Ledger:
        pub = WebhookPublisher(
            client,
            api_base=discord_api.api_base,
            papers_per_message=3,
            environ=env,
            sleep=Sleeps(),
            clock=lambda: (
                clock.now.timestamp()
            ),  # a rate limit's reset passes with the ledger's time
        )
        settings = DeliverySettings(backoff_base_seconds=1, backoff_max_seconds=60)
        return Ledger(store, {"discord-webhook": pub}, settings, clock=clock, rng=lambda: 0.5)

    clock.now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    first = ledger()
    await first.sweep()
    # Restart: a new process (a new ledger) on the same database finishes the morning.
    second = ledger()
    for _ in range(30):
        clock.advance(minutes=2)
        await second.sweep()
    per_channel = delivered(discord_api)
    assert len(discord_api.posts()) > len(discord_api.delivered) + 20  # the faults happened
    assert len({hook for hook, _ in per_channel}) == channels
    assert set(per_channel.values()) == {1}, "a paper reached a channel twice"
    assert sum(per_channel.values()) == channels * papers
    # Nothing waits or failed; every destination is healthy.
    rows = second.db.rows()
    assert Counter(row.state for row in rows) == {"sent": channels * papers}
    assert not any(d.paused for d in second.db.list_destinations())


def test_tokens_in_library_debug_logs_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    from adapters.discord.webhook import redact_webhook_tokens_in_logs

    redact_webhook_tokens_in_logs()
    caplog.set_level(logging.DEBUG)
    logging.getLogger("discord.webhook.async_").debug(
        "Webhook ID %s with %s %s has returned status code %s",
        1,
        "POST",
        f"https://discord.com/api/v10/webhooks/123/{TOKEN}?wait=true",
        200,
    )
    logging.getLogger("discord.http").debug(
        "%s %s has returned %s", "POST", f"https://d/api/v10/interactions/5/{TOKEN}/callback", 204
    )
    assert TOKEN not in caplog.text
    assert (
        "/webhooks/123/…?wait=true" in caplog.text and "/interactions/5/…/callback" in caplog.text
    )
