"""Discord: the ``/papers`` slash commands (a discord.py Cog over the gateway, or the same
commands at an HTTP interactions endpoint: ``interactions.py``, ``verify.py``), morning digests
posted by the bot or through a channel webhook, and embed rendering inside Discord's limits."""
