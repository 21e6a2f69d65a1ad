"""The ``/papers`` slash commands: one discord.py Cog, a command group with ``search``,
``top``, ``subscribe``, ``unsubscribe``, ``list``, ``now`` and ``help``.

Why a group: Discord does not let a command both take options and have subcommands, so
``/papers query:…`` and ``/papers subscribe`` cannot both exist; a group keeps every verb under
``/papers`` as on Slack, and ``search`` says what it does. Discord sets default permissions
per top-level command, and search is for everyone, so the group has none: ``subscribe``,
``unsubscribe`` and ``now`` check ``[discord] manage_permission`` (Manage Channels by default)
when they run.

Every command answers within Discord's 3 seconds: the cheap checks (permission, the query,
time and zone parse) answer at once, anything touching the store defers first and follows up
(the chat service runs store work in threads). Errors people can fix are shown only to them.
"""

from __future__ import annotations

import logging
import zoneinfo
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from adapters.discord.render import (
    MARKUP,
    clip,
    help_text,
    no_mentions,
    pack,
)
from adapters.discord.views import SEARCH_QUERY_MAX, results_reply
from bridge.chat import (
    Channel,
    ChatService,
    Subscribe,
    checked_query,
    parse_time_of_day,
    parse_time_zone,
)
from bridge.chat.commands import TOP_PERIODS, parse_period
from bridge.chat.render import list_text, now_text, subscribed_text, unsubscribed_text, when_text
from bridge.errors import ChatUsageError

if TYPE_CHECKING:
    from bridge.config import DiscordSettings

log = logging.getLogger(__name__)

# Discord's limit on autocomplete choices, and on a choice's name and value.
CHOICES_MAX = 25
CHOICE_MAX = 100
# Channels a digest can be posted in (and threads started from its header).
POSTABLE = (discord.ChannelType.text, discord.ChannelType.news)
PERMISSION_NAMES = {
    "manage_channels": "Manage Channels",
    "manage_guild": "Manage Server",
    "administrator": "Administrator",
}
# What both ways of answering (this Cog over the gateway, adapters/discord/interactions.py
# over HTTP) say, word for word.
NOT_A_SERVER_CHANNEL = "Subscriptions belong to a server's text channels."
NOT_A_DIGEST_CHANNEL = (
    "Digests are posted in a server's text or announcement channels; run this in"
    " one of them (threads and forums cannot hold them)."
)
FAILED = "Something went wrong on our side; it was logged."


def permission_text(required: str) -> str:
    return (
        f"Changing this channel's subscriptions needs the {PERMISSION_NAMES[required]}"
        " permission here."
    )


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones()))


def zone_choices(current: str) -> list[app_commands.Choice[str]]:
    """IANA zone names containing what was typed, the ones starting with it first."""
    wanted = current.strip().lower().replace(" ", "_")
    names = [name for name in _zone_names() if wanted in name.lower()]
    names.sort(key=lambda name: (not name.lower().startswith(wanted), name))
    return [app_commands.Choice(name=name, value=name) for name in names[:CHOICES_MAX]]


@app_commands.guild_only()
class PapersCog(
    commands.GroupCog,
    group_name="papers",
    group_description="Search new research papers; get the matching ones here each morning",
):
    def __init__(self, chat: ChatService, settings: DiscordSettings) -> None:
        self.chat = chat
        self.settings = settings
        super().__init__()

    # -- search ---------------------------------------------------------------------------------

    @app_commands.command(description="Search every paper the bridge has seen")
    @app_commands.describe(
        query='e.g. generalization, "world model" -survey, title:diffusion upvotes>=10'
    )
    async def search(
        self,
        interaction: discord.Interaction,
        query: app_commands.Range[str, 1, SEARCH_QUERY_MAX],
    ) -> None:
        try:
            checked_query(query)
        except ChatUsageError as exc:
            await self._tell(interaction, str(exc))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            page = await self.chat.search(query)
        except ChatUsageError as exc:
            await interaction.followup.send(
                str(exc), ephemeral=True, allowed_mentions=no_mentions()
            )
            return
        content, embeds, view = results_reply(page)
        await interaction.followup.send(
            content,
            embeds=embeds,
            view=view,
            ephemeral=True,
            allowed_mentions=no_mentions(),
        )

    @app_commands.command(description="The most upvoted papers of a day, week or month")
    @app_commands.describe(
        period="today (the latest listing day), week, month, or a date like 2024-08-01"
    )
    async def top(
        self,
        interaction: discord.Interaction,
        period: app_commands.Range[str, 1, 20] = "today",
    ) -> None:
        try:
            spec = parse_period(period)
        except ChatUsageError as exc:
            await self._tell(interaction, str(exc))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        page = await self.chat.top(spec)
        content, embeds, view = results_reply(page)
        await interaction.followup.send(
            content,
            embeds=embeds,
            view=view,
            ephemeral=True,
            allowed_mentions=no_mentions(),
        )

    @top.autocomplete("period")
    async def _periods(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [
            app_commands.Choice(name=name, value=name)
            for name in TOP_PERIODS
            if name.startswith(current.strip().lower())
        ]

    # -- subscriptions --------------------------------------------------------------------------

    @app_commands.command(description="Post the new papers matching a query here each morning")
    @app_commands.describe(
        query="what to look for, in the search language (see /papers help)",
        time="when to post, like 08:00, 7:30 or 7am; or now: right after each poll",
        time_zone="an IANA time zone such as Europe/Berlin (default: the bridge's)",
        all_quiet="post a short note on mornings with nothing new",
    )
    async def subscribe(
        self,
        interaction: discord.Interaction,
        query: app_commands.Range[str, 1, 500],
        time: app_commands.Range[str, 1, 10] | None = None,
        time_zone: app_commands.Range[str, 1, 64] | None = None,
        all_quiet: bool = False,
    ) -> None:
        channel = await self._managed_channel(interaction)
        if channel is None:
            return
        try:
            command = Subscribe(
                checked_query(" ".join(query.split())),
                parse_time_of_day(time) if time else None,
                parse_time_zone(time_zone) if time_zone else None,
                all_quiet,
            )
        except ChatUsageError as exc:
            await self._tell(interaction, str(exc))
            return
        # The channel sees what it will get; a problem found in the store is told privately.
        await interaction.response.defer(thinking=True)
        try:
            sub, created = await self.chat.subscribe(channel, command)
        except ChatUsageError as exc:
            await self._retract(interaction, str(exc))
            return
        await interaction.followup.send(
            subscribed_text(MARKUP, sub, created), allowed_mentions=no_mentions()
        )

    @subscribe.autocomplete("time_zone")
    async def _zones(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return zone_choices(current)

    @app_commands.command(description="Stop posting a query's papers here")
    @app_commands.describe(which="the subscription (its number in /papers list), or all")
    async def unsubscribe(
        self, interaction: discord.Interaction, which: app_commands.Range[str, 1, CHOICE_MAX]
    ) -> None:
        channel = await self._managed_channel(interaction)
        if channel is None:
            return
        await interaction.response.defer(thinking=True)
        try:
            removed = await self.chat.unsubscribe(channel, which)
        except ChatUsageError as exc:
            await self._retract(interaction, str(exc))
            return
        await interaction.followup.send(
            unsubscribed_text(MARKUP, removed), allowed_mentions=no_mentions()
        )

    @unsubscribe.autocomplete("which")
    async def _subscriptions(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        channel = self._channel(interaction)
        if channel is None:
            return []
        subs = await self.chat.subscriptions(channel)
        choices = []
        for number, sub in enumerate(subs, 1):
            label = clip(f"{number}. {sub.query} · {when_text(sub)}", CHOICE_MAX)
            if current.lower() in label.lower():
                # The query itself when it fits: a number could point elsewhere by the time
                # the command arrives, if someone else unsubscribed meanwhile.
                value = sub.query if len(sub.query) <= CHOICE_MAX else str(number)
                choices.append(app_commands.Choice(name=label, value=value))
        if len(subs) > 1 and current.lower() in "all":
            choices.append(app_commands.Choice(name=f"all {len(subs)} subscriptions", value="all"))
        return choices[:CHOICES_MAX]

    @app_commands.command(name="list", description="This channel's subscriptions")
    async def list_(self, interaction: discord.Interaction) -> None:
        channel = self._channel(interaction)
        if channel is None:
            await self._tell(interaction, NOT_A_SERVER_CHANNEL)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        subs = await self.chat.subscriptions(channel)
        # 25 long queries outgrow one message's 2,000 characters: several follow-ups then.
        for message in pack(list_text(MARKUP, subs), []):
            await interaction.followup.send(
                message.content, ephemeral=True, allowed_mentions=no_mentions()
            )

    @app_commands.command(description="Post this channel's digest now: everything new since")
    async def now(self, interaction: discord.Interaction) -> None:
        channel = await self._managed_channel(interaction)
        if channel is None:
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            report = await self.chat.post_now(channel)
        except ChatUsageError as exc:
            await interaction.followup.send(
                str(exc), ephemeral=True, allowed_mentions=no_mentions()
            )
            return
        await interaction.followup.send(
            now_text(report), ephemeral=True, allowed_mentions=no_mentions()
        )

    @app_commands.command(name="help", description="How to search and subscribe, with examples")
    async def help_(self, interaction: discord.Interaction) -> None:
        await self._tell(interaction, help_text())

    # -- helpers --------------------------------------------------------------------------------

    def _channel(self, interaction: discord.Interaction) -> Channel | None:
        """The interaction's channel as a digest destination, when digests can go there."""
        channel: Any = interaction.channel
        if interaction.guild_id is None or channel is None:
            return None
        if getattr(channel, "type", None) not in POSTABLE:
            return None
        guild = interaction.guild.name if interaction.guild is not None else ""
        name = f"{guild} #{getattr(channel, 'name', '')}".strip()
        return Channel("discord", str(channel.id), name)

    async def _managed_channel(self, interaction: discord.Interaction) -> Channel | None:
        """The channel, if digests can go there and the member may change them; otherwise
        says why (privately) and returns None."""
        required = self.settings.manage_permission
        if required != "everyone" and not getattr(interaction.permissions, required, False):
            await self._tell(interaction, permission_text(required))
            return None
        channel = self._channel(interaction)
        if channel is None:
            await self._tell(interaction, NOT_A_DIGEST_CHANNEL)
        return channel

    async def _tell(self, interaction: discord.Interaction, text: str) -> None:
        """An answer only the member sees, as the first response or a follow-up."""
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True, allowed_mentions=no_mentions())
        else:
            await interaction.response.send_message(
                text, ephemeral=True, allowed_mentions=no_mentions()
            )

    async def _retract(self, interaction: discord.Interaction, text: str) -> None:
        """Replace a public "thinking…" answer by a private one: the channel need not see a
        mistake."""
        try:
            await interaction.delete_original_response()
        except discord.HTTPException:
            log.debug("discord: the deferred answer was already gone")
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=no_mentions())

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        original = getattr(error, "original", error)
        log.error(
            "discord: /papers %s failed in channel %s",
            interaction.command.name if interaction.command else "?",
            interaction.channel_id,
            exc_info=original,
        )
        text = FAILED
        try:
            if interaction.response.is_done():
                await self._retract(interaction, text)  # no public "thinking…" left behind
            else:
                await self._tell(interaction, text)
        except discord.HTTPException:
            pass  # the interaction expired; the log has it
