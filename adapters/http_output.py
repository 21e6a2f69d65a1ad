"""The output shape Mattermost, Teams, Matrix and Telegram share: one publisher for one
destination kind, posting through an HTTP client the output opens when it starts and closes
when it stops. Each platform brings only how to make its publisher from that client and its
``[outputs.NAME]`` options."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from starlette.routing import BaseRoute

from adapters.chat_post import EnvUrlPublisher
from adapters.destination_checks import destinations_of, env_url_problems, option_problems
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.outputs import OutputContext
from bridge.publisher import Publisher

# Makes the platform's publisher from the started client and the output's options.
PublisherFactory = Callable[[httpx.AsyncClient, Mapping[str, Any]], Publisher]


class HttpPostingOutput:
    """An output (``bridge.outputs.Output``) whose publisher posts over its own HTTP client."""

    def __init__(
        self, name: str, kind: str, options: Mapping[str, Any], make: PublisherFactory
    ) -> None:
        self.name = name
        self.kind = kind
        self.options = options
        self._make = make
        self.publisher: Publisher | None = None
        self._stack = contextlib.AsyncExitStack()

    def publishers(self) -> Mapping[str, Publisher]:
        return {self.kind: self.publisher} if self.publisher is not None else {}

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self, *, listen: bool) -> None:
        client = await self._stack.enter_async_context(
            httpx.AsyncClient(timeout=float(self.options.get("timeout_seconds", 10.0)))
        )
        self.publisher = self._make(client, self.options)

    async def stop(self) -> None:
        await self._stack.aclose()


def papers_per_message(options: Mapping[str, Any]) -> int:
    """The ``papers_per_message`` option (checked by ``destination_checks``), default 5."""
    return int(options.get("papers_per_message", 5))


def env_url_output(
    context: OutputContext, name: str, publisher: type[EnvUrlPublisher]
) -> HttpPostingOutput | None:
    """The ``name`` output of a platform reached through webhook URLs kept in environment
    variables (``EnvUrlPublisher``), when a configured destination is of its kind."""
    if not destinations_of(context.settings, publisher.kind):
        return None
    environ = os.environ

    def make(client: httpx.AsyncClient, options: Mapping[str, Any]) -> Publisher:
        return publisher(client, environ=environ, papers_per_message=papers_per_message(options))

    return HttpPostingOutput(name, publisher.kind, context.settings.outputs.get(name, {}), make)


def env_url_output_problems(
    settings: Settings,
    name: str,
    publisher: type[EnvUrlPublisher],
    environ: Mapping[str, str] | None = None,
) -> list[ConfigError]:
    """What is wrong with the ``[outputs.NAME]`` options and each destination of the
    publisher's kind: each must name a set environment variable holding one of its URLs (never
    the URL itself, a secret; the URL is never shown)."""
    environ = os.environ if environ is None else environ
    problems = option_problems(name, settings.outputs.get(name, {}))
    for key, address in destinations_of(settings, publisher.kind):
        problems += env_url_problems(
            key, publisher.kind, address, environ, publisher.url_pattern, publisher.url_described
        )
    return problems
