"""The bot's side, against a local stand-in for Discord's API: logging in, registering the
slash commands once, posting digests (a header with the papers in a thread, or all in the
channel), channels that are gone or forbidden, 429s and 5xx, every paper once per channel
through the real ledger across a restart, and no network at all."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from adapters.discord.output import DiscordOutput, discord_output
from adapters.discord.posting import IN_CHANNEL, BotPublisher
from bridge.chat import ChatService
from bridge.config import DeliverySettings, DiscordSettings, Settings
from bridge.delivery import Destination, DigestItem, DigestRun, DigestSubscription
from bridge.ledger import Ledger, build_ledger
from bridge.models import Match, Paper, StoredPaper
from bridge.outputs import OutputContext
from bridge.store import Store
from tests.fake_discord import APPLICATION_ID, FakeDiscord
from tests.fake_upstream import unused_port
from tests.fakes import Clock

T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
CHANNEL = "300000000000000001"
TOKEN = "bot-token-for-tests"
MENTIONS = "@everyone @here <@123456789012345678> <@&987654321098765432>"


class Sleeps:
    """Records the waits between login attempts; after ``stop_after`` of them it blocks, so
    the retry loop rests until the test stops it."""

    def __init__(self, stop_after: int = 1000) -> None:
        self.waits: list[float] = []
        self.stop_after = stop_after

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if len(self.waits) >= self.stop_after:
            await asyncio.Event().wait()


@pytest.fixture
def discord_api() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


def context(store: Store, api_base: str, **discord: object) -> OutputContext:
    settings = Settings(discord=DiscordSettings(api_base_url=api_base, **discord))  # type: ignore[arg-type]
    ledger = build_ledger(store, settings)
    return OutputContext(settings, store, ledger, ChatService(store, ledger, settings))


@pytest.fixture
async def posting(sqlite_url: str, discord_api: FakeDiscord) -> AsyncIterator[DiscordOutput]:
    """The output as `paperbridge deliver` starts it: logged in over HTTP, no gateway."""
    from bridge.store import open_store

    store = open_store(sqlite_url)
    output = DiscordOutput(context(store, discord_api.api_base), token=TOKEN)
    await output.start(listen=False)
    try:
        yield output
    finally:
        await output.stop()
        store.close()


def item(n: int, title: str = "Generalization in deep networks", **kw: object) -> DigestItem:
    paper = Paper(f"2606.{n:05d}", title, abstract="We study generalisation.", **kw)  # type: ignore[arg-type]
    return DigestItem(StoredPaper(paper, n, T0, True), Match("s", paper.arxiv_id))


DEST = Destination("discord-1", "discord", CHANNEL, name="lab #papers")
SUB = DigestSubscription("s", DEST.id, "generalization", time_zone="Europe/Berlin")


async def test_logging_in_uses_the_token_and_the_configured_api(
    posting: DiscordOutput, discord_api: FakeDiscord
) -> None:
    me = [c for c in discord_api.calls if c.path == "/users/@me"]
    assert me and me[0].headers["authorization"] == f"Bot {TOKEN}"
    assert posting.bot is not None and posting.bot.application_id == int(APPLICATION_ID)
    assert set(posting.publishers()) == {"discord", "discord-webhook"}
    assert TOKEN not in repr(posting.context.settings)


async def test_a_digest_is_a_header_with_the_papers_in_a_thread(
    posting: DiscordOutput, discord_api: FakeDiscord
) -> None:
    pub = posting.bot_publisher
    run = DigestRun(DEST.id, "s", datetime(2026, 6, 1, 6, 0, tzinfo=UTC), pending=4)
    first = await pub.send_digest(DEST, [item(1, MENTIONS), item(2)], subscription=SUB, run=run)
    assert first.status == "sent"
    run.messages = 1
    assert (await pub.send_digest(DEST, [item(3), item(4)], subscription=SUB, run=run)).status == (
        "sent"
    )
    header, *rest = discord_api.messages_to(CHANNEL)
    assert not rest  # the channel gets the header only
    assert header.body["content"] == "📰 **4 new papers** for `generalization`"
    [thread_call] = [c for c in discord_api.calls if c.path.endswith("/threads")]
    assert thread_call.body["name"] == "generalization · 2026-06-01"
    thread_id = run.anchor
    assert thread_id is not None and thread_id != IN_CHANNEL
    papers = discord_api.messages_to(thread_id)
    assert [len(c.body["embeds"]) for c in papers] == [2, 2]
    for call in discord_api.posts():
        assert call.body["allowed_mentions"] == {"parse": []}
    title = papers[0].body["embeds"][0]["title"]
    assert "<@" not in title and "\\@everyone" in title


async def test_the_channel_layout_and_the_all_quiet_note(
    sqlite_url: str, discord_api: FakeDiscord
) -> None:
    from bridge.store import open_store

    store = open_store(sqlite_url)
    output = DiscordOutput(
        context(store, discord_api.api_base, digest_layout="channel", papers_per_message=2),
        token=TOKEN,
    )
    await output.start(listen=False)
    try:
        pub = output.bot_publisher
        run = DigestRun(DEST.id, "s", None, pending=3)
        await pub.send_digest(DEST, [item(1), item(2)], subscription=SUB, run=run)
        run.messages = 1
        await pub.send_digest(DEST, [item(3)], subscription=SUB, run=run)
        await pub.send_digest(DEST, [], subscription=SUB, run=DigestRun(DEST.id, "s", None))
    finally:
        await output.stop()
        store.close()
    contents = [c.body.get("content") for c in discord_api.messages_to(CHANNEL)]
    assert contents[0].startswith("📰 **3 new papers**")
    assert contents[1] == "… continued (3–3 of 3)"
    assert contents[2].startswith("All quiet for `generalization`")
    assert not [c for c in discord_api.calls if c.path.endswith("/threads")]


async def test_gone_and_forbidden_channels_are_permanent(
    posting: DiscordOutput, discord_api: FakeDiscord
) -> None:
    discord_api.gone.add(CHANNEL)
    outcome = await posting.bot_publisher.send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == "permanent" and "Unknown Channel" in outcome.reason
    discord_api.gone.clear()
    discord_api.forbidden.add(CHANNEL)
    outcome = await posting.bot_publisher.send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == "permanent" and "Missing Access" in outcome.reason


async def test_where_threads_are_refused_the_papers_follow_the_header(
    posting: DiscordOutput, discord_api: FakeDiscord
) -> None:
    discord_api.fail(
        r"/threads$", status=403, body={"message": "Missing Permissions", "code": 50013}
    )
    run = DigestRun(DEST.id, "s", None, pending=1)
    outcome = await posting.bot_publisher.send_digest(DEST, [item(1)], subscription=SUB, run=run)
    assert outcome.status == "sent" and run.anchor == IN_CHANNEL
    header, papers = discord_api.messages_to(CHANNEL)
    assert header.body["content"].startswith("📰") and len(papers.body["embeds"]) == 1


async def test_rate_limits_and_server_errors(
    posting: DiscordOutput, discord_api: FakeDiscord
) -> None:
    pub = posting.bot_publisher
    # A short 429 is waited out by discord.py itself.
    discord_api.rate_limit(rf"/channels/{CHANNEL}/messages$", retry_after=0.05)
    assert (await pub.send_digest(DEST, [], subscription=SUB)).status == "sent"
    # A long one comes back to the ledger with Discord's retry_after.
    discord_api.rate_limit(rf"/channels/{CHANNEL}/messages$", retry_after=90.0)
    outcome = await pub.send_digest(DEST, [], subscription=SUB)
    assert (outcome.status, outcome.retry_after) == ("retry", 90.0)
    discord_api.fail(rf"/channels/{CHANNEL}/messages$", status=503)
    outcome = await pub.send_digest(DEST, [], subscription=SUB)
    assert outcome.status == "retry" and "503" in outcome.reason
    assert len(discord_api.delivered) == 1


async def test_without_a_login_sends_wait_for_later() -> None:
    outcome = await BotPublisher().send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == "retry" and "not logged in" in outcome.reason


async def test_commands_are_registered_once_until_they_change(
    sqlite_url: str, discord_api: FakeDiscord
) -> None:
    from bridge.store import open_store

    store = open_store(sqlite_url)
    try:
        for _ in range(2):
            output = DiscordOutput(
                context(store, discord_api.api_base, dev_guild_id=42, gateway=False),
                token=TOKEN,
            )
            await output.start(listen=True)
            assert output._task is not None
            await output._task
            await output.stop()
    finally:
        store.close()
    [sync] = [c for c in discord_api.calls if c.method == "PUT"]
    assert sync.path == f"/applications/{APPLICATION_ID}/guilds/42/commands"
    [papers] = sync.body
    assert papers["name"] == "papers" and papers["contexts"] == [0]
    names = {option["name"] for option in papers["options"]}
    assert names == {"search", "top", "subscribe", "unsubscribe", "list", "now", "help"}


async def test_without_network_the_bot_retries_with_backoff_and_logs_each_failure(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    from bridge.store import open_store

    store = open_store(sqlite_url)
    sleeps = Sleeps(stop_after=4)
    refused = f"http://127.0.0.1:{unused_port()}/api/v10"
    output = DiscordOutput(context(store, refused), token=TOKEN, sleep=sleeps)
    caplog.set_level(logging.INFO, logger="adapters.discord")
    try:
        await output.start(listen=True)
        for _ in range(200):
            if len(sleeps.waits) >= 4:
                break
            await asyncio.sleep(0.01)  # lets the bot's task run; no wall-clock wait is tested
        assert sleeps.waits == [5.0, 10.0, 20.0, 40.0]
        failures = [r for r in caplog.records if "cannot log in" in r.getMessage()]
        assert len(failures) == output.login_attempts == 4
        assert "ClientConnectorError" in failures[0].getMessage()
        outcome = await output.bot_publisher.send_digest(DEST, [item(1)], subscription=SUB)
        assert outcome.status == "retry"
    finally:
        await output.stop()
        store.close()
    assert TOKEN not in caplog.text


def test_the_output_exists_only_when_configured(sqlite_url: str) -> None:
    from pydantic import SecretStr

    from bridge.config import DigestSettings
    from bridge.store import open_store

    store = open_store(sqlite_url)
    try:
        settings = Settings()
        ledger = build_ledger(store, settings)
        chat = ChatService(store, ledger, settings)
        assert discord_output(OutputContext(settings, store, ledger, chat)) is None
        with_token = settings.model_copy(update={"discord_bot_token": SecretStr("t")})
        assert discord_output(OutputContext(with_token, store, ledger, chat)) is not None
        hooks = settings.model_copy(
            update={
                "digests": [DigestSettings(name="x", query="q", destination="discord-webhook:H")]
            }
        )
        made = discord_output(OutputContext(hooks, store, ledger, chat))
        assert made is not None and made.token is None
    finally:
        store.close()


# -- through the real ledger --------------------------------------------------------------------


async def test_a_fan_out_with_faults_delivers_every_paper_once_across_a_restart(
    store: Store, discord_api: FakeDiscord
) -> None:
    channels, papers = 10, 7
    clock = Clock(T0)
    setup = Ledger(store, {}, DeliverySettings(), clock=clock)
    for n in range(channels):
        dest = Destination(f"discord-{n}", "discord", str(400000000000000000 + n), name=f"#c{n}")
        setup.db.save_destination(dest, clock.now)
        setup.db.save_digest(
            DigestSubscription(f"s{n}", dest.id, "drift", "08:00", "UTC", created_at=clock.now),
            clock.now,
        )
    clock.advance(minutes=1)
    store.add_papers([Paper(f"2606.{n:05d}", f"Drift {n}") for n in range(papers)], now=clock.now)
    rng = random.Random(11)
    for _ in range(20):
        # (No 500/502 here: discord.py retries those itself after real 1-7 s sleeps.)
        kind = rng.choice(["429", "503", "thread-503", "thread-403"])
        if kind == "429":
            discord_api.rate_limit(r"/channels/\d+/messages$", retry_after=60.0)
        elif kind == "thread-503":
            discord_api.fail(r"/threads$", status=503)  # the header is posted again later
        elif kind == "thread-403":
            discord_api.fail(r"/threads$", status=403, body={"message": "no", "code": 50013})
        else:
            discord_api.fail(r"/channels/\d+/messages$", status=503)

    async def run_morning(sweeps: int) -> None:
        output = DiscordOutput(
            context(store, discord_api.api_base, papers_per_message=3), token=TOKEN
        )
        await output.start(listen=False)
        try:
            settings = DeliverySettings(backoff_base_seconds=1, backoff_max_seconds=120)
            ledger = Ledger(store, output.publishers(), settings, clock=clock, rng=lambda: 0.5)
            for _ in range(sweeps):
                await ledger.sweep()
                clock.advance(minutes=3)
        finally:
            await output.stop()

    clock.now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    await run_morning(1)
    await run_morning(20)  # a restart: a new process finishes the morning
    per_channel = Counter(
        (discord_api.channel_of(call), embed["url"])
        for call in discord_api.delivered
        for embed in call.body.get("embeds", [])
    )
    assert len({channel for channel, _ in per_channel}) == channels
    assert set(per_channel.values()) == {1}, "a paper reached a channel twice"
    assert sum(per_channel.values()) == channels * papers
    assert len(discord_api.posts()) > len(discord_api.delivered)  # the faults happened
    rows = Ledger(store, {}, DeliverySettings(), clock=clock).db.rows()
    assert Counter(row.state for row in rows) == {"sent": channels * papers}
