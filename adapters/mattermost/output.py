"""Mattermost / Rocket.Chat as a paperbridge output (``bridge.outputs``): a publisher for
``mattermost:ENV_NAME`` destinations, started when the settings name one. Optional settings
in ``[outputs.mattermost]``: ``papers_per_message`` (1–20, default 5), ``timeout_seconds``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

from adapters.destination_checks import destinations_of, env_url_problems, option_problems
from adapters.http_output import HttpPostingOutput, papers_per_message
from adapters.mattermost.publisher import KIND, WEBHOOK_URL, MattermostPublisher
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.outputs import OutputContext
from bridge.publisher import Publisher


def mattermost_output(context: OutputContext) -> HttpPostingOutput | None:
    """The output when a configured destination is a Mattermost webhook."""
    if not destinations_of(context.settings, KIND):
        return None
    environ = os.environ

    def make(client: httpx.AsyncClient, options: Mapping[str, Any]) -> Publisher:
        return MattermostPublisher(
            client, environ=environ, papers_per_message=papers_per_message(options)
        )

    options = context.settings.outputs.get("mattermost", {})
    return HttpPostingOutput("mattermost", KIND, options, make)


def mattermost_problems(
    settings: Settings, listen: bool, environ: Mapping[str, str] | None = None
) -> list[ConfigError]:
    """Each ``mattermost:`` destination names a set environment variable holding a webhook
    URL (never the URL itself: it is a secret); the URL is never shown."""
    environ = os.environ if environ is None else environ
    problems = option_problems("mattermost", settings.outputs.get("mattermost", {}))
    for key, address in destinations_of(settings, KIND):
        problems += env_url_problems(
            key, KIND, address, environ, WEBHOOK_URL, "a Mattermost or Rocket.Chat webhook URL"
        )
    return problems
