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
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.web.async_client import AsyncWebClient
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from adapters.slack.commands import PapersCommand
from adapters.slack.installations import DatabaseStateStore, Installations, token_cipher
from adapters.slack.publisher import KIND, SlackPublisher
from adapters.slack.verify import SlackRequestCheck
from adapters.slack.webclient import open_session, web_client
from adapters.slack.workspaces import SingleWorkspace, Workspaces
from bridge.config import Settings, configured_destinations
from bridge.errors import ConfigError
from bridge.outputs import OutputContext
from bridge.publisher import Publisher

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# What the app may do, and all it asks for (adapters/slack/manifest.yml says the same).
BOT_SCOPES = ("commands", "chat:write", "channels:join", "users:read")
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
        self._check: SlackRequestCheck | None = None
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
        routes: list[BaseRoute] = []
        if self.settings.slack.mode == "http":
            routes.append(Route(EVENTS_PATH, self._events, methods=["POST"]))
        if self.oauth:
            routes += [
                Route(INSTALL_PATH, self._handler.handle, methods=["GET"]),
                Route(REDIRECT_PATH, self._handler.handle, methods=["GET"]),
            ]
        return routes

    @property
    def oauth(self) -> bool:
        return isinstance(self.workspaces, Installations)

    async def start(self, *, listen: bool) -> None:
        slack = self.settings.slack
        if listen and (problems := listening_problems(self.settings)):
            raise ConfigError.several(problems)
        self.session = open_session(slack)
        self.client = web_client(slack, self.session)
        if isinstance(self.workspaces, SingleWorkspace):
            await self.workspaces.identify(self.client)
        elif isinstance(self.workspaces, Installations):
            await self.workspaces.load()
        self.publisher = SlackPublisher(self.client, self.workspaces, slack)
        if not listen:
            return
        self.app = self.build_app(self.client)
        self._handler = AsyncSlackRequestHandler(self.app)
        secret = self.settings.slack_signing_secret
        if secret is not None:
            self._check = SlackRequestCheck(secret.get_secret_value())
        if self.oauth:
            log.info("slack: installation into workspaces at %s", INSTALL_PATH)
        if slack.mode == "http":
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
        bolt_log = logging.getLogger("adapters.slack.bolt")
        if not any(isinstance(f, _UnusedEnvToken) for f in bolt_log.filters):
            bolt_log.addFilter(_UnusedEnvToken())
        app = AsyncApp(
            name="paperbridge",
            logger=bolt_log,
            client=client,
            signing_secret=secret.get_secret_value() if secret is not None else "",
            # Bolt takes an AsyncAuthorize instance as it is (its __init__ checks isinstance).
            authorize=self.workspaces.authorize(),  # type: ignore[arg-type]
            oauth_flow=self._oauth_flow(),
            user_facing_authorize_error_message=(
                "paperbridge is not installed in this workspace any more; someone who may add"
                " apps can install it again."
            ),
            # The listener goes on after ack(); the answer does not wait for it.
            process_before_response=False,
            # _events checks every HTTP request first (adapters/slack/verify.py); Bolt's own
            # check answers 500 to a malformed timestamp and logs every refused body.
            request_verification_enabled=False,
        )
        app.error(_bolt_failed)
        PapersCommand(self.context.chat, self.settings.slack.command).register(app)
        if self.oauth:
            # app_uninstalled / tokens_revoked: the workspace's token is deleted.
            app.enable_token_revocation_listeners()
        else:
            app.event("app_uninstalled")(_uninstalled)
            app.event("tokens_revoked")(_uninstalled)
        return app

    def _oauth_flow(self) -> AsyncOAuthFlow | None:
        if not isinstance(self.workspaces, Installations):
            return None
        secret = self.settings.slack_client_secret
        assert secret is not None
        public = self.settings.server.public_url.rstrip("/")
        return AsyncOAuthFlow(
            settings=AsyncOAuthSettings(
                client_id=self.settings.slack.client_id,
                client_secret=secret.get_secret_value(),
                scopes=list(BOT_SCOPES),
                user_scopes=[],
                redirect_uri=public + REDIRECT_PATH if public else None,
                install_path=INSTALL_PATH,
                redirect_uri_path=REDIRECT_PATH,
                installation_store=self.workspaces.installation_store,
                state_store=DatabaseStateStore(self.context.store),
            )
        )

    async def _events(self, request: Request) -> Response:
        assert self._handler is not None and self._check is not None
        length = request.headers.get("content-length", "")
        if not (length.isascii() and length.isdigit()):
            return _refuse(request, 411, "a Content-Length is required")
        if int(length) > MAX_BODY_BYTES:
            return _refuse(request, 413, "too large for a Slack request")
        refusal = self._check.check(request.headers, await request.body())
        if refusal is not None:
            return _refuse(request, refusal.status, refusal.reason)
        # Signed, so from Slack; still, Bolt assumes every payload's shape (an "event" that is
        # an object, ...) and fails on one it did not expect.
        try:
            response = await self._handler.handle(request)
        except Exception as exc:  # building its request: Bolt reads the payload's fields
            return _refuse(request, 400, f"a payload Bolt cannot read ({exc!r})")
        if response.status_code == 500:  # Bolt's middleware failed; _bolt_failed logged why
            return PlainTextResponse("a payload Bolt cannot handle", 400)
        return response


def _refuse(request: Request, status: int, reason: str) -> Response:
    # One line, never the body: anyone can post here, and a body may hold a real user's text.
    client = request.client.host if request.client else "unknown"
    log.info("slack: refused a request from %s to %s: %s", client, EVENTS_PATH, reason)
    return PlainTextResponse(reason, status)


class _UnusedEnvToken(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment by itself and, given our client, warns
    at every start that it goes unused; tokens reach Bolt through ``authorize``, so that
    warning only misleads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


async def _bolt_failed(error: Exception) -> None:
    # In place of Bolt's default, which logs a traceback per failed request: our listeners
    # catch their own errors, so what gets here is Bolt choking on a payload.
    log.warning("slack: Bolt could not handle a request: %r", error)


async def _uninstalled(event: dict[str, object]) -> None:
    log.warning(
        "slack: Slack says the app lost its access (%s); SLACK_BOT_TOKEN no longer works",
        event.get("type"),
    )


def slack_output(context: OutputContext) -> SlackOutput | None:
    """The Slack output: one workspace with SLACK_BOT_TOKEN, or several through OAuth with
    slack.client_id and SLACK_CLIENT_SECRET; None when Slack is not set up. ConfigError when
    it is set up wrong (``slack_problems``)."""
    settings = context.settings
    if not configured(settings):
        return None
    if problems := setup_problems(settings):
        raise ConfigError.several(problems)
    if settings.slack_bot_token is not None:
        return SlackOutput(context, SingleWorkspace(settings.slack_bot_token.get_secret_value()))
    assert settings.slack_installation_key is not None
    cipher = token_cipher(settings.slack_installation_key.get_secret_value())
    return SlackOutput(context, Installations(context.store, cipher))


# -- the checks serve, deliver and check-config run (bridge.outputs.output_checks) ---------------


def configured(settings: Settings) -> bool:
    """Whether Slack is set up at all (a token, or any part of OAuth)."""
    slack = settings.slack
    return (
        settings.slack_bot_token is not None
        or bool(slack.client_id)
        or settings.slack_client_secret is not None
    )


def slack_problems(settings: Settings, listen: bool) -> list[ConfigError]:
    """Everything that would stop the Slack output from starting: as ``serve`` starts it
    (``listen``: answering /papers), or as ``deliver`` does (posting only). No connection is
    opened."""
    if not configured(settings):
        return []
    problems = setup_problems(settings)
    if listen:
        problems += listening_problems(settings)
    return problems + destination_problems(settings)


def destination_problems(settings: Settings) -> list[ConfigError]:
    """``slack:CHANNEL`` names a channel of SLACK_BOT_TOKEN's one workspace; with OAuth the
    app may be in several, so a declared channel must say which (``slack:TEAM:CHANNEL``)."""
    if settings.slack_bot_token is not None:
        return []
    return [
        ConfigError(
            key,
            f"the Slack app is installed through OAuth, in any number of workspaces: name the"
            f" channel's workspace too (slack:TEAM:{address}, e.g. slack:T0123:{address})",
        )
        for key, destination in configured_destinations(settings)
        for kind, _, address in [destination.partition(":")]
        if kind == KIND and ":" not in address
    ]


def setup_problems(settings: Settings) -> list[ConfigError]:
    """One workspace (SLACK_BOT_TOKEN) or OAuth (client id, secret and token key), not a mix
    of the two nor half of OAuth."""
    token = settings.slack_bot_token
    client_id = settings.slack.client_id
    secret = settings.slack_client_secret
    if token is not None:
        if client_id or secret is not None:
            return [
                ConfigError(
                    "slack_bot_token",
                    "set SLACK_BOT_TOKEN (one workspace) or slack.client_id with"
                    " SLACK_CLIENT_SECRET (installation into several workspaces), not both",
                )
            ]
        return []
    problems: list[ConfigError] = []
    if not client_id:
        problems.append(
            ConfigError(
                "slack.client_id", "SLACK_CLIENT_SECRET is set: give the app's client id too"
            )
        )
    if secret is None:
        problems.append(
            ConfigError(
                "slack_client_secret", "slack.client_id is set: set SLACK_CLIENT_SECRET too"
            )
        )
    key = settings.slack_installation_key
    if key is None:
        problems.append(
            ConfigError(
                "slack_installation_key",
                "OAuth keeps each workspace's token encrypted in the store: set"
                ' SLACK_INSTALLATION_KEY (make one with: python -c "from cryptography.fernet'
                ' import Fernet; print(Fernet.generate_key().decode())")',
            )
        )
    else:
        try:
            token_cipher(key.get_secret_value())
        except ConfigError as exc:
            problems.append(exc)
    return problems


def listening_problems(settings: Settings) -> list[ConfigError]:
    """What answering /papers needs: the signing secret in HTTP mode, the app-level token in
    Socket Mode."""
    if settings.slack.mode == "http" and settings.slack_signing_secret is None:
        return [
            ConfigError(
                "slack_signing_secret",
                "HTTP mode checks every request from Slack: set SLACK_SIGNING_SECRET (the app's"
                ' Basic Information page), or use [slack] mode = "socket"',
            )
        ]
    if settings.slack.mode == "socket" and settings.slack_app_token is None:
        return [
            ConfigError(
                "slack_app_token",
                "Socket Mode needs an app-level token: set SLACK_APP_TOKEN (xapp-…, with"
                " connections:write)",
            )
        ]
    return []
