"""Telegram: digests through a bot's ``sendMessage`` (Bot API) in HTML parse mode."""
