"""The seam a chat output (Slack, Discord, a future one) plugs into ``serve`` and ``deliver``.

An output brings any of: publishers for its destination kinds (the ledger posts digests
through them), HTTP routes mounted in ``serve``'s web server (slash commands, OAuth), and
background connections (Discord's gateway, Slack's Socket Mode). ``serve`` starts outputs with
``listen=True``; ``paperbridge deliver`` starts them with ``listen=False``, which opens only
what posting needs. An output that is not configured (no token) is simply not created; one
configured wrong is refused before anything starts, with every problem its check
(``output_checks``, which ``check-config`` runs too) finds.

    class Output(Protocol):
        name: str
        def publishers(self) -> Mapping[str, Publisher]
        def routes(self) -> list[BaseRoute]
        async def start(self, *, listen: bool) -> None
        async def stop(self) -> None
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from starlette.routing import BaseRoute

from bridge.chat import ChatService
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.ledger import Ledger
from bridge.publisher import Publisher
from bridge.store import Store

log = logging.getLogger(__name__)


class Output(Protocol):
    name: str

    def publishers(self) -> Mapping[str, Publisher]: ...

    def routes(self) -> list[BaseRoute]: ...

    async def start(self, *, listen: bool) -> None: ...

    async def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OutputContext:
    """What an output may use: the settings, the store, the ledger and the chat service."""

    settings: Settings
    store: Store
    ledger: Ledger
    chat: ChatService


# Returns None when the output is not configured.
OutputFactory = Callable[[OutputContext], Output | None]
# An output's own settings check: every problem that would stop it from starting, as serve
# starts it (True: answering commands) or as deliver does (False: posting only); nothing
# when it is not configured. It opens no connection (bridge.startup runs it).
OutputCheck = Callable[[Settings, bool], list[ConfigError]]


def output_factories() -> list[OutputFactory]:
    """Every output paperbridge ships; each import stays here so a missing optional output
    never breaks the others."""
    from adapters.discord.output import discord_output
    from adapters.slack import slack_output

    factories: list[OutputFactory] = [slack_output, discord_output]
    return factories


def output_checks() -> list[OutputCheck]:
    """The settings checks of the outputs paperbridge ships, found as ``output_factories``
    finds them (Discord's needs, a bot token or a webhook URL per destination, are the core's
    ``delivery_problems``)."""
    from adapters.slack import slack_problems

    checks: list[OutputCheck] = [slack_problems]
    return checks


@contextlib.asynccontextmanager
async def running_outputs(
    context: OutputContext,
    *,
    listen: bool,
    factories: list[OutputFactory] | None = None,
) -> AsyncIterator[list[Output]]:
    """Create and start every configured output, give their publishers to the ledger, and
    stop them all on exit."""
    outputs: list[Output] = []
    async with contextlib.AsyncExitStack() as stack:
        for factory in output_factories() if factories is None else factories:
            output = factory(context)
            if output is None:
                continue
            await output.start(listen=listen)
            stack.push_async_callback(output.stop)
            context.ledger.publishers.update(output.publishers())
            outputs.append(output)
            log.info("output %s started%s", output.name, "" if listen else " (posting only)")
        yield outputs
