"""The /papers Cog and its buttons, without Discord: fake interactions record what the bot
answered (deferred or not, private or not, with which embeds, buttons and mentions), on a
real store and ledger."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord
import pytest

from adapters.discord.cog import PapersCog, zone_choices
from adapters.discord.views import SEARCH_QUERY_MAX, PageButton, ShareButton, results_view
from bridge.chat import Channel, ChatService
from bridge.config import DeliverySettings, DiscordSettings, Settings
from bridge.ledger import Ledger
from bridge.models import Paper
from bridge.store import Store
from tests.fakes import Clock, RecordingPublisher

T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
CHANNEL_ID = 500000000000000001
MANAGER = discord.Permissions(manage_channels=True, send_messages=True)
MEMBER = discord.Permissions(send_messages=True)


@dataclass
class Reply:
    how: str  # "defer", "send", "followup", "edit", "delete"
    content: str | None = None
    embeds: list[discord.Embed] = field(default_factory=list)
    ephemeral: bool = False
    thinking: bool = False
    view: discord.ui.View | None = None
    allowed_mentions: discord.AllowedMentions | None = None


class FakeResponse:
    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies
        self.done = False

    def is_done(self) -> bool:
        return self.done

    async def defer(self, *, ephemeral: bool = False, thinking: bool = False) -> None:
        assert not self.done, "an interaction is answered once"
        self.done = True
        self.replies.append(Reply("defer", ephemeral=ephemeral, thinking=thinking))

    async def send_message(self, content: str | None = None, **kw: Any) -> None:
        assert not self.done, "an interaction is answered once"
        self.done = True
        self.replies.append(Reply("send", content, **kw))


class FakeFollowup:
    def __init__(self, replies: list[Reply]) -> None:
        self.replies = replies

    async def send(self, content: str | None = None, **kw: Any) -> None:
        self.replies.append(Reply("followup", content, **kw))


@dataclass
class FakeChannel:
    id: int = CHANNEL_ID
    name: str = "papers"
    type: discord.ChannelType = discord.ChannelType.text


@dataclass
class FakeGuild:
    name: str = "Lab"


@dataclass
class FakeUser:
    id: int = 42

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"


@dataclass
class FakeClient:
    chat: ChatService


class FakeInteraction:
    """What the Cog reads from a ``discord.Interaction``, and a record of what it answered."""

    def __init__(
        self,
        chat: ChatService,
        *,
        permissions: discord.Permissions = MANAGER,
        channel: FakeChannel | None = None,
    ) -> None:
        self.replies: list[Reply] = []
        self.response = FakeResponse(self.replies)
        self.followup = FakeFollowup(self.replies)
        self.permissions = permissions
        self.channel = channel or FakeChannel()
        self.channel_id = self.channel.id
        self.guild_id = 7
        self.guild = FakeGuild()
        self.user = FakeUser()
        self.client = FakeClient(chat)
        self.command = None

    async def edit_original_response(self, **kw: Any) -> None:
        self.replies.append(Reply("edit", **kw))

    async def delete_original_response(self) -> None:
        self.replies.append(Reply("delete"))

    @property
    def answers(self) -> list[Reply]:
        """Everything but the defer."""
        return [r for r in self.replies if r.how != "defer"]


@pytest.fixture
def chat(store: Store) -> ChatService:
    clock = Clock(T0)
    ledger = Ledger(
        store, {"discord": RecordingPublisher(kind="discord")}, DeliverySettings(), clock=clock
    )
    return ChatService(store, ledger, Settings(time_zone="Europe/Berlin"))


@pytest.fixture
def cog(chat: ChatService) -> PapersCog:
    return PapersCog(chat, DiscordSettings())


def add_papers(chat: ChatService, count: int, title: str = "Generalization study") -> None:
    chat.store.add_papers(
        [
            Paper(f"2606.{n:05d}", f"{title} {n}", abstract="We study generalisation @everyone.")
            for n in range(1, count + 1)
        ],
        now=chat.ledger.clock(),
    )


def no_pings(reply: Reply) -> None:
    assert reply.allowed_mentions is not None
    assert reply.allowed_mentions.to_dict() == {"parse": []}


# -- search ---------------------------------------------------------------------------------------


async def test_search_defers_privately_then_shows_a_page_with_buttons(
    cog: PapersCog, chat: ChatService
) -> None:
    add_papers(chat, 12)
    interaction = FakeInteraction(chat, permissions=MEMBER)
    await cog.search.callback(cog, interaction, "generalisation")  # type: ignore[arg-type]
    defer, answer = interaction.replies
    assert (defer.how, defer.ephemeral, defer.thinking) == ("defer", True, True)
    assert answer.how == "followup" and answer.ephemeral
    assert answer.content is not None and answer.content.startswith("12 papers match")
    assert len(answer.embeds) == 5
    no_pings(answer)
    assert answer.view is not None
    ids = [item.custom_id for item in answer.view.children]  # type: ignore[attr-defined]
    assert ids == ["pb:p:0:generalisation", "pb:p:2:generalisation", "pb:s:1:generalisation"]
    assert answer.view.timeout is None  # the buttons work after a restart too


async def test_a_bad_query_is_answered_at_once_and_privately(
    cog: PapersCog, chat: ChatService
) -> None:
    interaction = FakeInteraction(chat, permissions=MEMBER)
    await cog.search.callback(cog, interaction, "title:(a OR")  # type: ignore[arg-type]
    [reply] = interaction.replies
    assert reply.how == "send" and reply.ephemeral
    assert reply.content is not None and "does not parse" in reply.content


async def test_paging_edits_the_message_and_sharing_posts_it_publicly(
    cog: PapersCog, chat: ChatService
) -> None:
    add_papers(chat, 12)
    button = results_view(await chat.search("generalisation")).children[1]
    assert isinstance(button, PageButton) and button.page == 2
    # A press arrives after a restart as the custom id alone: the button is rebuilt from it.
    match = PageButton.__discord_ui_compiled_template__.fullmatch(button.item.custom_id or "")
    assert match is not None
    interaction = FakeInteraction(chat, permissions=MEMBER)
    pressed = await PageButton.from_custom_id(interaction, button.item, match)  # type: ignore[arg-type]
    await pressed.callback(interaction)  # type: ignore[arg-type]
    defer, edit = interaction.replies
    assert defer.how == "defer" and not defer.thinking
    assert edit.how == "edit" and edit.content is not None and "(showing 6–10)" in edit.content
    no_pings(edit)

    share = ShareButton("generalisation", 3)
    interaction = FakeInteraction(chat, permissions=MEMBER)
    await share.callback(interaction)  # type: ignore[arg-type]
    defer, post = interaction.replies
    assert defer.how == "defer" and not defer.ephemeral
    assert post.how == "followup" and not post.ephemeral
    assert post.content is not None and post.content.startswith("<@42> shared: 12 papers match")
    assert len(post.embeds) == 2 and post.view is None
    no_pings(post)


def test_custom_ids_stay_within_discords_100_characters() -> None:
    from bridge.chat.service import SearchPage
    from bridge.search import SearchResults

    page = SearchPage("q" * SEARCH_QUERY_MAX, 999, 5, SearchResults([], total=10_000))
    for item in results_view(page).children:
        assert len(item.custom_id or "") <= 100  # type: ignore[attr-defined]


# -- subscriptions --------------------------------------------------------------------------------


async def test_subscribing_needs_manage_channels_and_is_announced(
    cog: PapersCog, chat: ChatService
) -> None:
    refused = FakeInteraction(chat, permissions=MEMBER)
    await cog.subscribe.callback(cog, refused, "generalization")  # type: ignore[arg-type]
    [reply] = refused.replies
    assert reply.how == "send" and reply.ephemeral
    assert "Manage Channels" in (reply.content or "")

    interaction = FakeInteraction(chat)
    await cog.subscribe.callback(  # type: ignore[arg-type]
        cog, interaction, "generalization", "7:30am", "america/new_york", True
    )
    defer, answer = interaction.replies
    assert defer.how == "defer" and not defer.ephemeral
    assert answer.how == "followup" and not answer.ephemeral
    assert answer.content == (
        "Subscribed: this channel gets new papers matching `generalization` every morning at"
        " 07:30 (America/New_York), with a note on days with nothing new."
    )
    no_pings(answer)
    [sub] = await chat.subscriptions(Channel("discord", str(CHANNEL_ID)))
    dest = chat.ledger.db.get_destination(sub.destination_id)
    assert dest is not None and (dest.kind, dest.address, dest.name) == (
        "discord",
        str(CHANNEL_ID),
        "Lab #papers",
    )


@pytest.mark.parametrize(
    ("time", "zone", "message"),
    [("25:00", None, "not a time of day"), (None, "Mars/Olympus", "not a time zone")],
)
async def test_bad_times_and_zones_are_explained_privately(
    cog: PapersCog, chat: ChatService, time: str | None, zone: str | None, message: str
) -> None:
    interaction = FakeInteraction(chat)
    await cog.subscribe.callback(cog, interaction, "gan", time, zone)  # type: ignore[arg-type]
    [reply] = interaction.replies
    assert reply.ephemeral and message in (reply.content or "")


async def test_threads_and_forums_cannot_hold_digests(cog: PapersCog, chat: ChatService) -> None:
    thread = FakeChannel(id=9, type=discord.ChannelType.public_thread)
    interaction = FakeInteraction(chat, channel=thread)
    await cog.subscribe.callback(cog, interaction, "gan")  # type: ignore[arg-type]
    [reply] = interaction.replies
    assert reply.ephemeral and "text or announcement channels" in (reply.content or "")


async def test_everyone_may_subscribe_when_configured(chat: ChatService) -> None:
    cog = PapersCog(chat, DiscordSettings(manage_permission="everyone"))
    interaction = FakeInteraction(chat, permissions=MEMBER)
    await cog.subscribe.callback(cog, interaction, "gan")  # type: ignore[arg-type]
    assert (interaction.answers[0].content or "").startswith("Subscribed")


async def test_list_autocomplete_and_unsubscribe(cog: PapersCog, chat: ChatService) -> None:
    clock = chat.ledger.clock
    for query in ("alpha", "beta"):
        clock.advance(seconds=1)  # type: ignore[attr-defined]
        await cog.subscribe.callback(cog, FakeInteraction(chat), query)  # type: ignore[arg-type]

    listing = FakeInteraction(chat, permissions=MEMBER)
    await cog.list_.callback(cog, listing)  # type: ignore[arg-type]
    assert listing.replies[0].ephemeral
    assert (listing.answers[0].content or "").splitlines()[1:] == [
        "1. `alpha` every morning at 08:00 (Europe/Berlin)",
        "2. `beta` every morning at 08:00 (Europe/Berlin)",
    ]

    choices = await cog._subscriptions(FakeInteraction(chat), "")  # type: ignore[arg-type]
    assert [(c.name, c.value) for c in choices] == [
        ("1. alpha · every morning at 08:00 (Europe/Berlin)", "alpha"),
        ("2. beta · every morning at 08:00 (Europe/Berlin)", "beta"),
        ("all 2 subscriptions", "all"),
    ]

    missing = FakeInteraction(chat)
    await cog.unsubscribe.callback(cog, missing, "7")  # type: ignore[arg-type]
    # The public "thinking…" answer is withdrawn; the mistake is told privately.
    assert [r.how for r in missing.replies] == ["defer", "delete", "followup"]
    assert missing.replies[-1].ephemeral and "no subscription 7" in (
        missing.replies[-1].content or ""
    )

    done = FakeInteraction(chat)
    await cog.unsubscribe.callback(cog, done, "beta")  # type: ignore[arg-type]
    assert done.answers[0].content == "Unsubscribed from `beta`."
    assert not done.answers[0].ephemeral


async def test_now_posts_the_digest_and_reports_privately(
    cog: PapersCog, chat: ChatService
) -> None:
    await cog.subscribe.callback(cog, FakeInteraction(chat), "generalization")  # type: ignore[arg-type]
    chat.ledger.clock.advance(minutes=1)  # type: ignore[attr-defined]
    add_papers(chat, 3)
    interaction = FakeInteraction(chat)
    await cog.now.callback(cog, interaction)  # type: ignore[arg-type]
    defer, report = interaction.replies
    assert defer.ephemeral and report.ephemeral
    publisher = chat.ledger.publishers["discord"]
    assert isinstance(publisher, RecordingPublisher)
    assert len(publisher.delivered()) == 3
    assert report.content == "Posted new papers for 1 of 1 subscriptions."


async def test_help_answers_at_once(cog: PapersCog, chat: ChatService) -> None:
    interaction = FakeInteraction(chat, permissions=MEMBER)
    await cog.help_.callback(cog, interaction)  # type: ignore[arg-type]
    [reply] = interaction.replies
    assert reply.how == "send" and reply.ephemeral
    assert "`/papers subscribe query:generalization" in (reply.content or "")


def test_time_zones_complete_from_the_iana_names() -> None:
    assert zone_choices("berl")[0].value == "Europe/Berlin"
    assert zone_choices("new y")[0].value == "America/New_York"
    assert len(zone_choices("")) == 25


async def test_an_unexpected_error_is_logged_and_told_privately(
    cog: PapersCog, chat: ChatService, caplog: pytest.LogCaptureFixture
) -> None:
    interaction = FakeInteraction(chat)
    error = discord.app_commands.CommandInvokeError(cog.search, RuntimeError("boom"))  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR):
        await cog.cog_app_command_error(interaction, error)  # type: ignore[arg-type]
    assert "boom" in caplog.text
    [reply] = interaction.replies
    assert reply.ephemeral and "went wrong" in (reply.content or "")


async def test_a_long_list_is_split_into_messages(cog: PapersCog, chat: ChatService) -> None:
    for n in range(25):
        query = f"topic{n} " + " OR ".join(f"longerword{n}x{k}" for k in range(25))
        await cog.subscribe.callback(cog, FakeInteraction(chat), query)  # type: ignore[arg-type]
    listing = FakeInteraction(chat, permissions=MEMBER)
    await cog.list_.callback(cog, listing)  # type: ignore[arg-type]
    assert len(listing.answers) > 1
    assert all(len(r.content or "") <= 2000 and r.ephemeral for r in listing.answers)
    assert sum((r.content or "").count("`topic") for r in listing.answers) == 25


async def test_an_error_after_a_public_deferral_withdraws_it(
    cog: PapersCog, chat: ChatService
) -> None:
    interaction = FakeInteraction(chat)
    await interaction.response.defer(thinking=True)
    error = discord.app_commands.CommandInvokeError(cog.subscribe, RuntimeError("db down"))  # type: ignore[arg-type]
    await cog.cog_app_command_error(interaction, error)  # type: ignore[arg-type]
    assert [r.how for r in interaction.replies] == ["defer", "delete", "followup"]
    assert interaction.replies[-1].ephemeral
