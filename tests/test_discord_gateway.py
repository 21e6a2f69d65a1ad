"""The bot as `serve` runs it, end to end: logged in over the REST API, connected to a stand-in
for Discord's gateway, a slash command and a button click arriving there as Discord sends them,
and the answers coming back over the REST API, through the real discord.py."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

from adapters.discord.output import DiscordOutput
from bridge.models import Paper
from bridge.store import Store, open_store
from tests.fake_discord import APPLICATION_ID, Call, FakeDiscord
from tests.fake_discord_gateway import FakeGateway
from tests.test_discord_bot import TOKEN, context

GUILD = "700000000000000001"
CHANNEL = "700000000000000002"
EPHEMERAL = 64
_ids = itertools.count(800_000_000_000_000_001)


@pytest.fixture
def discord_api() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def gateway() -> Iterator[FakeGateway]:
    with FakeGateway(TOKEN) as fake:
        yield fake


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    opened = open_store(sqlite_url)
    opened.add_papers(
        [
            Paper(
                "2606.00001",
                "Out-of-distribution generalisation of world models",
                abstract="We study how world models generalize @everyone <@123456789012345678>.",
                authors=("Ada Lovelace",),
            ),
            *(
                Paper(f"2606.{n:05d}", f"Generalization bound {n}", abstract="A bound.")
                for n in range(2, 12)
            ),
        ]
    )
    yield opened
    opened.close()


@pytest.fixture
async def bot(
    store: Store, discord_api: FakeDiscord, gateway: FakeGateway
) -> AsyncIterator[DiscordOutput]:
    """The Discord output as `serve` starts it, holding the gateway connection."""
    output = DiscordOutput(
        context(store, discord_api.api_base, gateway_url=gateway.url), token=TOKEN
    )
    await output.start(listen=True)
    try:
        await until(gateway.ready.is_set)
        yield output
    finally:
        await output.stop()


async def until(condition: Callable[[], object], within: float = 15.0) -> None:
    """Until ``condition()`` holds (the fakes run in other threads); fails after ``within``
    seconds, which only a broken bot or test ever reaches."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the bot never did what the test waited for")
        await asyncio.sleep(0.01)


def member() -> dict[str, Any]:
    return {
        "user": {
            "id": "42",
            "username": "ada",
            "discriminator": "0",
            "global_name": "Ada",
            "avatar": None,
        },
        "roles": [],
        "joined_at": "2026-01-01T00:00:00+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "permissions": "3072",  # view channel, send messages
    }


def interaction(kind: int, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """An INTERACTION_CREATE payload from a member in a server text channel."""
    return {
        "id": str(next(_ids)),
        "application_id": APPLICATION_ID,
        "type": kind,
        "data": data,
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "channel": {  # as Discord sends it: the channel, with the member's permissions there
            "id": CHANNEL,
            "type": 0,
            "name": "papers",
            "guild_id": GUILD,
            "position": 0,
            "flags": 0,
            "parent_id": None,
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "permissions": "3072",
        },
        "member": member(),
        "token": f"interaction-token-{next(_ids)}",
        "version": 1,
        "app_permissions": "2048",
        "attachment_size_limit": 10_485_760,
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD},
        "context": 0,
        **extra,
    }


def slash_search(query: str) -> dict[str, Any]:
    options = [{"name": "query", "type": 3, "value": query}]
    return interaction(
        2,
        {
            "id": "900000000000000001",
            "name": "papers",
            "type": 1,
            "options": [{"name": "search", "type": 1, "options": options}],
        },
    )


def answers_to(api: FakeDiscord, payload: dict[str, Any]) -> list[Call]:
    """Everything the bot sent in answer to one interaction, in order."""
    token = payload["token"]
    return [
        call
        for call in list(api.calls)
        if f"/{payload['id']}/{token}/" in call.path
        or call.path.startswith(f"/webhooks/{APPLICATION_ID}/{token}")
    ]


async def test_the_bot_identifies_with_only_the_guilds_intent(
    bot: DiscordOutput, gateway: FakeGateway
) -> None:
    assert len(gateway.identified) == 1
    identify = gateway.identified[0]
    assert identify["token"] == TOKEN
    assert identify["intents"] == 1  # GUILDS: no privileged intent, no message content


async def test_a_slash_search_over_the_gateway_is_answered_privately_with_results(
    bot: DiscordOutput, discord_api: FakeDiscord, gateway: FakeGateway
) -> None:
    command = slash_search('"world models"')
    gateway.dispatch("INTERACTION_CREATE", command)
    await until(lambda: len(answers_to(discord_api, command)) >= 2)

    defer, reply = answers_to(discord_api, command)
    assert defer.path.endswith("/callback")
    assert defer.body == {"type": 5, "data": {"flags": EPHEMERAL}}  # thinking, only for them
    assert reply.method == "POST"  # the follow-up, through the interaction's webhook
    assert reply.body["flags"] & EPHEMERAL
    assert reply.body["allowed_mentions"] == {"parse": []}
    [embed] = reply.body["embeds"]
    assert embed["title"] == "Out-of-distribution generalisation of world models"
    assert embed["url"] == "https://arxiv.org/abs/2606.00001"
    # The abstract's mentions arrive escaped, as text (and allowed_mentions pings no one).
    description = embed["description"]
    assert "\\@everyone \\<\\@123456789012345678\\>" in description
    assert description.count("@") == description.count("\\@")


async def test_the_more_button_over_the_gateway_shows_the_next_page(
    bot: DiscordOutput, discord_api: FakeDiscord, gateway: FakeGateway
) -> None:
    command = slash_search("generalization")  # 11 papers: pages of 5
    gateway.dispatch("INTERACTION_CREATE", command)
    await until(lambda: len(answers_to(discord_api, command)) >= 2)
    first_page = answers_to(discord_api, command)[1].body
    buttons = [button for row in first_page["components"] for button in row["components"]]
    [more] = [button for button in buttons if button.get("label") == "Next ▶"]
    assert more["custom_id"] == "pb:p:2:generalization" and not more.get("disabled")

    # The private answer the button is on, as the click's payload carries it.
    message = {
        **discord_api.message(CHANNEL, first_page),
        "components": first_page["components"],
        "type": 20,  # a reply to a slash command
        "flags": EPHEMERAL,
    }
    click = interaction(3, {"custom_id": more["custom_id"], "component_type": 2}, message=message)
    gateway.dispatch("INTERACTION_CREATE", click)
    await until(lambda: len(answers_to(discord_api, click)) >= 2)

    defer, edit = answers_to(discord_api, click)
    assert defer.body == {"type": 6}  # the clicked message is about to change
    assert edit.method == "PATCH" and edit.path.endswith("/messages/@original")
    shown = {embed["url"] for embed in edit.body["embeds"]}
    assert len(shown) == 5
    assert not shown & {embed["url"] for embed in first_page["embeds"]}  # the next five
    assert edit.body["allowed_mentions"] == {"parse": []}


async def test_an_event_discord_py_cannot_read_costs_a_reconnect_not_the_bot(
    store: Store,
    discord_api: FakeDiscord,
    gateway: FakeGateway,
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    output = DiscordOutput(
        context(store, discord_api.api_base, gateway_url=gateway.url), token=TOKEN, sleep=sleep
    )
    await output.start(listen=True)
    try:
        await until(gateway.ready.is_set)
        # A payload shaped as discord.py does not expect (here: without a field it reads).
        broken = slash_search("generalization")
        del broken["attachment_size_limit"]
        gateway.dispatch("INTERACTION_CREATE", broken)
        await until(lambda: len(gateway.identified) == 2)  # connected again
        assert waits == [5.0]
        assert "the gateway connection failed; connecting again in 5 s" in caplog.text

        command = slash_search('"world models"')
        gateway.dispatch("INTERACTION_CREATE", command)
        await until(lambda: len(answers_to(discord_api, command)) >= 2)
    finally:
        await output.stop()
    assert answers_to(discord_api, broken) == []
    assert gateway.connections == 2
