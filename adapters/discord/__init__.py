"""Discord: the ``/papers`` slash commands (a discord.py Cog), morning digests posted by the
bot or through a channel webhook, and embed rendering inside Discord's limits."""
