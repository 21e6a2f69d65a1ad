"""The discord.py bot: minimal intents, no mentions ever, the ``/papers`` Cog and its buttons,
and slash-command registration only when the commands changed.

Intents: only ``guilds`` (channel and permission data for interactions). Slash commands and
buttons arrive as interactions whatever the intents; no privileged intent is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator

import discord
import yarl
from discord.ext import commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.cog import PapersCog
from adapters.discord.views import DYNAMIC_ITEMS
from bridge.chat import ChatService
from bridge.config import DiscordSettings
from bridge.store import Store

log = logging.getLogger(__name__)

# discord.py waits out a 429 up to this long (its minimum); longer ones raise RateLimited and
# become the ledger's retry.
MAX_RATELIMIT_WAIT = 30.0


class PaperBot(commands.Bot):
    """The bot; ``chat`` serves the Cog and the buttons."""

    def __init__(self, chat: ChatService, settings: DiscordSettings) -> None:
        # The bot never joins voice: discord.py's warnings about voice libraries are noise.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        intents = discord.Intents.none()
        intents.guilds = True
        super().__init__(
            command_prefix=commands.when_mentioned,  # no text commands; slash commands only
            intents=intents,
            help_command=None,
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=MAX_RATELIMIT_WAIT,
        )
        self.chat = chat
        self.settings = settings

    async def setup_hook(self) -> None:
        await self.add_cog(PapersCog(self.chat, self.settings))
        self.add_dynamic_items(*DYNAMIC_ITEMS)

    async def sync_commands(self, store: Store) -> str:
        """Register the slash commands with Discord: in the development server when
        ``dev_guild_id`` is set (instant), else globally; only when they changed since the
        last registration (Discord limits command creations per day). Returns what it did."""
        guild = discord.Object(self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        scope = f"guild {guild.id}" if guild else "global"
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands(guild=guild)]
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
        key = f"discord:commands:{self.application_id}:{scope}"
        if await asyncio.to_thread(store.get_progress, key) == digest:
            return f"slash commands unchanged ({scope})"
        await self.tree.sync(guild=guild)
        await asyncio.to_thread(store.set_progress, key, digest)
        return f"slash commands registered ({scope})"


@contextlib.contextmanager
def endpoints(api_base_url: str, gateway_url: str) -> Iterator[None]:
    """Send discord.py's REST calls (bot and interaction webhooks) to ``api_base_url`` and
    open its gateway connection at ``gateway_url``. discord.py keeps both on classes (it sets
    the REST base itself to change API versions), so this is process-wide; both are restored
    on exit."""
    previous = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    Route.BASE = api_base_url.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    try:
        yield
    finally:
        Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = previous
