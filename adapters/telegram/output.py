"""Telegram as a paperbridge output (``bridge.outputs``): a publisher for ``telegram:CHAT_ID``
destinations, started when the settings name one. Optional settings in ``[outputs.telegram]``:
``api_base_url`` (the Bot API server: a local Bot API server, or a stand-in in tests),
``papers_per_message`` (1–20, default 5), ``timeout_seconds``. The token comes only from
``TELEGRAM_BOT_TOKEN``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import httpx

from adapters.destination_checks import COMMON_OPTIONS, destinations_of, option_problems
from adapters.http_output import HttpPostingOutput, papers_per_message
from adapters.telegram.publisher import DEFAULT_API, KIND, TOKEN_VARIABLE, TelegramPublisher
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.outputs import OutputContext
from bridge.publisher import Publisher

# A chat's numeric id (groups and channels are negative) or a public channel's @username.
CHAT_ID = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{3,31}")
# The form BotFather hands out: the bot's id, a colon, a secret.
BOT_TOKEN = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{20,100}")
OPTIONS = ("api_base_url", *COMMON_OPTIONS)


def telegram_output(context: OutputContext) -> HttpPostingOutput | None:
    """The output when a configured destination is a Telegram chat."""
    if not destinations_of(context.settings, KIND):
        return None
    token = os.environ.get(TOKEN_VARIABLE, "").strip()

    def make(client: httpx.AsyncClient, options: Mapping[str, Any]) -> Publisher:
        return TelegramPublisher(
            client,
            token=token,
            api_base=str(options.get("api_base_url", DEFAULT_API)),
            papers_per_message=papers_per_message(options),
        )

    options = context.settings.outputs.get("telegram", {})
    return HttpPostingOutput("telegram", KIND, options, make)


def telegram_problems(
    settings: Settings, listen: bool, environ: Mapping[str, str] | None = None
) -> list[ConfigError]:
    """The chat ids, the token (set and of BotFather's form; never shown) and the options."""
    environ = os.environ if environ is None else environ
    options = settings.outputs.get("telegram", {})
    problems = option_problems("telegram", options, OPTIONS)
    base = options.get("api_base_url", DEFAULT_API)
    if not isinstance(base, str) or not re.fullmatch(r"https?://[^\s/]+(/\S*)?", base):
        problems.append(ConfigError("outputs.telegram.api_base_url", "must be an http(s) URL"))
    destinations = destinations_of(settings, KIND)
    for key, address in destinations:
        if not CHAT_ID.fullmatch(address):
            problems.append(
                ConfigError(
                    key,
                    "must be telegram:CHAT_ID (a number such as -1001234567890) or"
                    " telegram:@channelname",
                )
            )
    if destinations:
        token = environ.get(TOKEN_VARIABLE, "").strip()
        key = destinations[0][0]
        if not token:
            problems.append(
                ConfigError(key, f"telegram destinations need the bot's token in {TOKEN_VARIABLE}")
            )
        elif not BOT_TOKEN.fullmatch(token):
            problems.append(
                ConfigError(key, f"{TOKEN_VARIABLE} does not hold a bot token (ID:SECRET)")
            )
    return problems
