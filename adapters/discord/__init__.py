"""Discord: the ``/papers`` slash commands (a discord.py Cog over the gateway, or the same
commands at an HTTP interactions endpoint: ``interactions.py``, ``verify.py``), morning digests
posted by the bot or through a channel webhook, and embed rendering inside Discord's limits."""

from adapters.discord.output import discord_output
from bridge.outputs import OutputPlugin

__all__ = ["discord_output", "plugin"]

# The entry point (pyproject.toml, group paperbridge.outputs; see bridge.outputs). What posting
# to these kinds needs from the environment (a bot token, a webhook URL) is checked with the
# settings (bridge.config.delivery_problems).
plugin = OutputPlugin(kinds=("discord", "discord-webhook"), create=discord_output)
