"""The Slack output: the publisher the ledger posts digests with, and the Bolt app that answers
``/papers``, over HTTP (``/slack/events`` in ``serve``'s web server, every request checked
against the signing secret) or Socket Mode (a WebSocket the app opens to Slack).

``paperbridge deliver`` starts it with ``listen=False``: a session and the publisher, no app.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.slack.commands import PapersCommand
from adapters.slack.publisher import KIND, SlackPublisher
from adapters.slack.webclient import open_session, web_client
from adapters.slack.workspaces import SingleWorkspace, Workspaces
from bridge.errors import ConfigError
from bridge.outputs import OutputContext
from bridge.publisher import Publisher

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
# Slack's requests are a few kilobytes; anything far bigger is not Slack.
MAX_BODY_BYTES = 1 << 20


class SlackOutput:
    name = "slack"

    def __init__(self, context: OutputContext, workspaces: Workspaces) -> None:
        self.context = context
        self.settings = context.settings
        self.workspaces = workspaces
        self.session: aiohttp.ClientSession | None = None
        self.client: AsyncWebClient | None = None
        self.publisher: SlackPublisher | None = None
        self.app: AsyncApp | None = None
        self._handler: AsyncSlackRequestHandler | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._connecting: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"SlackOutput(mode={self.settings.slack.mode!r})"

    # -- Output ---------------------------------------------------------------------------------

    def publishers(self) -> Mapping[str, Publisher]:
        return {KIND: self.publisher} if self.publisher is not None else {}

    def routes(self) -> list[BaseRoute]:
        if self._handler is None:
            return []
        return [Route(EVENTS_PATH, self._events, methods=["POST"])]

    async def start(self, *, listen: bool) -> None:
        slack = self.settings.slack
        if listen:
            self._check_listening()
        self.session = open_session(slack)
        self.client = web_client(slack, self.session)
        if isinstance(self.workspaces, SingleWorkspace):
            await self.workspaces.identify(self.client)
        self.publisher = SlackPublisher(self.client, self.workspaces, slack)
        if not listen:
            return
        self.app = self.build_app(self.client)
        if slack.mode == "http":
            self._handler = AsyncSlackRequestHandler(self.app)
            log.info("slack: answering %s at %s", slack.command, EVENTS_PATH)
        else:
            assert self.settings.slack_app_token is not None
            self._socket = AsyncSocketModeHandler(
                self.app, self.settings.slack_app_token.get_secret_value(), web_client=self.client
            )
            # Connecting retries until Slack answers; serve must not wait for it.
            self._connecting = asyncio.create_task(self._socket.connect_async())
            log.info("slack: answering %s over Socket Mode", slack.command)

    async def stop(self) -> None:
        if self._connecting is not None:
            self._connecting.cancel()
        if self._socket is not None:
            await self._socket.close_async()
        if self.session is not None:
            await self.session.close()

    # -- the app --------------------------------------------------------------------------------

    def build_app(self, client: AsyncWebClient) -> AsyncApp:
        secret = self.settings.slack_signing_secret
        app = AsyncApp(
            name="paperbridge",
            logger=logging.getLogger("adapters.slack.bolt"),
            client=client,
            signing_secret=secret.get_secret_value() if secret is not None else "",
            # Bolt takes an AsyncAuthorize instance as it is (its __init__ checks isinstance).
            authorize=self.workspaces.authorize(),  # type: ignore[arg-type]
            # The listener goes on after ack(); the answer does not wait for it.
            process_before_response=False,
        )
        PapersCommand(self.context.chat, self.settings.slack.command).register(app)
        return app

    def _check_listening(self) -> None:
        if self.settings.slack.mode == "http" and self.settings.slack_signing_secret is None:
            raise ConfigError(
                "slack_signing_secret",
                "HTTP mode checks every request from Slack: set SLACK_SIGNING_SECRET (the app's"
                ' Basic Information page), or use [slack] mode = "socket"',
            )
        if self.settings.slack.mode == "socket" and self.settings.slack_app_token is None:
            raise ConfigError(
                "slack_app_token",
                "Socket Mode needs an app-level token: set SLACK_APP_TOKEN (xapp-…, with"
                " connections:write)",
            )

    async def _events(self, request: Request) -> Response:
        assert self._handler is not None
        length = request.headers.get("content-length", "")
        if not length.isdigit():
            return PlainTextResponse("a Content-Length is required", 411)
        if int(length) > MAX_BODY_BYTES:
            return PlainTextResponse("too large for a Slack request", 413)
        return await self._handler.handle(request)


def slack_output(context: OutputContext) -> SlackOutput | None:
    """The Slack output when a bot token is configured; None when Slack is not set up."""
    settings = context.settings
    token = settings.slack_bot_token
    if token is None:
        return None
    return SlackOutput(context, SingleWorkspace(token.get_secret_value()))
