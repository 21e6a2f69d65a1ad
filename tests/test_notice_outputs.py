"""Each output renders a notice about the bridge itself as plain text, escaped by the rules its
digests follow (a pause reason quotes what others said), and reports what its API answered."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from adapters.discord.output import DiscordOutput, discord_output
from adapters.discord.render import CONTENT_MAX
from adapters.discord.webhook import WebhookPublisher
from adapters.slack.blocks import notice_message
from adapters.stdout import StdoutPublisher, format_notice
from bridge.chat import ChatService
from bridge.config import DiscordSettings, Settings
from bridge.delivery import Destination, Notice
from bridge.ledger import build_ledger
from bridge.outputs import OutputContext
from bridge.store import open_store
from tests.fake_discord import FakeDiscord
from tests.fake_slack import FakeSlack
from tests.slack_support import Sessions, address, publisher

HOSTILE = "Slack said <!channel> *now* <http://evil.example|click> @everyone <@123456789012345678>"
PAUSED = Notice(
    7,
    "ops",
    "destination-paused",
    about_id="slack-c1",
    about="slack:T0123:C1",
    detail=HOSTILE,
    since=datetime(2026, 11, 24, 6, 1, tzinfo=UTC),
)
DOWN = Notice(8, "lab", "source-down", source="hf", since=datetime(2026, 11, 24, 6, tzinfo=UTC))


def test_stdout_prints_the_text() -> None:
    stream = io.StringIO()
    pub = StdoutPublisher(stream)
    outcome = asyncio.run(pub.send_notice(Destination("d", "stdout"), DOWN))
    assert outcome.status == "sent"
    assert stream.getvalue() == f"⚠ {DOWN.text}\n\n"
    assert format_notice(Notice(1, "d", "source-back", source="arxiv", uncertain=True)) == (
        "⚠ arXiv is back. The papers it listed meanwhile follow with the next digest."
        " (may repeat an earlier post)"
    )


# -- Slack ------------------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def sessions() -> AsyncIterator[Sessions]:
    opened = Sessions()
    yield opened
    await opened.close()


def test_slack_shows_the_text_inert() -> None:
    message = notice_message(PAUSED)
    shown = message.blocks[0]["text"]["text"]
    assert shown.startswith(":warning: Posting to slack:T0123:C1 is paused since")
    for text in (shown, message.text):
        assert "<!channel>" not in text and "<http" not in text and "*now*" not in text
        assert "&lt;!channel&gt;" in text
    assert len(message.blocks) == 1
    repeated = notice_message(Notice(1, "d", "source-back", source="hf", uncertain=True))
    assert "may repeat" in repeated.blocks[-1]["elements"][0]["text"]


async def test_slack_posts_a_notice_and_reports_a_gone_channel(
    slack: FakeSlack, sessions: Sessions
) -> None:
    pub = publisher(slack, sessions)
    dest = Destination("slack-c1", "slack", address("C1"), name="#lab")
    assert (await pub.send_notice(dest, DOWN)).status == "sent"
    [posted] = slack.posted["C1"]
    assert posted["text"].startswith("Hugging Face Daily Papers has not answered since")
    slack.fail("chat.postMessage", channel="C2", error="channel_not_found")
    gone = await pub.send_notice(Destination("slack-c2", "slack", address("C2")), DOWN)
    assert gone.status == "permanent" and "channel_not_found" in gone.reason


# -- Discord ----------------------------------------------------------------------------------

CHANNEL = "300000000000000001"
TOKEN = "bot-token-for-tests"
HOOK_TOKEN = "tok_" + "x" * 60


@pytest.fixture
def discord_api() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


def _escaped_everywhere(content: str) -> None:
    assert content.startswith("⚠️ Posting to slack:T0123:C1 is paused since")
    assert "\\@everyone" in content and "<@1" not in content and "\\*now\\*" in content
    assert len(content) <= CONTENT_MAX


async def test_the_discord_bot_posts_a_notice_escaped_and_without_mentions(
    sqlite_url: str, discord_api: FakeDiscord
) -> None:
    store = open_store(sqlite_url)
    settings = Settings(discord=DiscordSettings(api_base_url=discord_api.api_base))
    ledger = build_ledger(store, settings)
    output = DiscordOutput(
        OutputContext(settings, store, ledger, ChatService(store, ledger, settings)), token=TOKEN
    )
    await output.start(listen=False)
    try:
        dest = Destination("discord-1", "discord", CHANNEL, name="ops")
        assert (await output.bot_publisher.send_notice(dest, PAUSED)).status == "sent"
        [call] = discord_api.messages_to(CHANNEL)
        assert call.body["allowed_mentions"] == {"parse": []}
        _escaped_everywhere(call.body["content"])
        discord_api.gone.add("300000000000000002")
        gone = Destination("discord-2", "discord", "300000000000000002")
        assert (await output.bot_publisher.send_notice(gone, DOWN)).status == "permanent"
    finally:
        await output.stop()
        store.close()


async def test_a_discord_webhook_posts_a_notice_and_a_long_reason_still_fits(
    discord_api: FakeDiscord,
) -> None:
    env = {"OPS_HOOK": discord_api.webhook_url("123456789012345678", HOOK_TOKEN)}
    async with httpx.AsyncClient(timeout=5) as client:
        pub = WebhookPublisher(client, api_base=discord_api.api_base, environ=env)
        dest = Destination("hook", "discord-webhook", "OPS_HOOK")
        long = dataclasses.replace(PAUSED, detail=HOSTILE + " and more" * 400)
        assert (await pub.send_notice(dest, long)).status == "sent"
    [call] = discord_api.delivered
    assert call.body["allowed_mentions"] == {"parse": []}
    _escaped_everywhere(call.body["content"])
    assert call.body["content"].endswith("…")


def test_an_operator_webhook_alone_starts_the_discord_output(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    try:
        settings = Settings.model_validate({"alerts": {"destination": "discord-webhook:OPS"}})
        ledger = build_ledger(store, settings)
        context = OutputContext(settings, store, ledger, ChatService(store, ledger, settings))
        assert discord_output(context) is not None
        assert discord_output(dataclasses.replace(context, settings=Settings())) is None
    finally:
        store.close()
