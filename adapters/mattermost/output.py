"""Mattermost / Rocket.Chat as a paperbridge output (``bridge.outputs``): a publisher for
``mattermost:ENV_NAME`` destinations, started when the settings name one. Optional settings
in ``[outputs.mattermost]``: ``papers_per_message`` (1–20, default 5), ``timeout_seconds``."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import Any

import httpx
from starlette.routing import BaseRoute

from adapters.destination_checks import destinations_of, env_url_problems, option_problems
from adapters.mattermost.publisher import KIND, WEBHOOK_URL, MattermostPublisher
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.outputs import OutputContext
from bridge.publisher import Publisher


class MattermostOutput:
    name = "mattermost"

    def __init__(self, options: Mapping[str, Any], environ: Mapping[str, str]) -> None:
        self.options = options
        self.environ = environ
        self.publisher: MattermostPublisher | None = None
        self._stack = contextlib.AsyncExitStack()

    def publishers(self) -> Mapping[str, Publisher]:
        return {KIND: self.publisher} if self.publisher is not None else {}

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self, *, listen: bool) -> None:
        client = await self._stack.enter_async_context(
            httpx.AsyncClient(timeout=float(self.options.get("timeout_seconds", 10.0)))
        )
        self.publisher = MattermostPublisher(
            client,
            environ=self.environ,
            papers_per_message=int(self.options.get("papers_per_message", 5)),
        )

    async def stop(self) -> None:
        await self._stack.aclose()


def mattermost_output(context: OutputContext) -> MattermostOutput | None:
    """The output when a configured destination is a Mattermost webhook."""
    if not destinations_of(context.settings, KIND):
        return None
    return MattermostOutput(context.settings.outputs.get("mattermost", {}), os.environ)


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
