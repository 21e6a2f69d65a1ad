"""Discord as a paperbridge output (``bridge.outputs``): the bot's publisher and gateway
connection, the webhook publisher, and the interactions endpoint (``[discord] public_key``:
``/papers`` over HTTP, ``interactions.py``), started inside ``serve``'s event loop.

``serve`` logs the bot in (retrying with backoff while Discord cannot be reached, one log line
per attempt), registers the slash commands if they changed, then keeps the gateway connection
in a background task (discord.py reconnects it). Feeds and polls never wait for Discord.
``paperbridge deliver`` only logs in over HTTP, once, to post.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import discord
import httpx
from starlette.routing import BaseRoute, Route

from adapters.discord.bot import PaperBot, endpoints
from adapters.discord.interactions import PATH as INTERACTIONS_PATH
from adapters.discord.interactions import InteractionsEndpoint
from adapters.discord.posting import BotPublisher
from adapters.discord.verify import InteractionCheck
from adapters.discord.webhook import WebhookPublisher
from bridge import __version__
from bridge.config import configured_destinations
from bridge.jobs import run_as_leader
from bridge.outputs import OutputContext
from bridge.publisher import Publisher

log = logging.getLogger(__name__)

# Discord asks bots for a User-Agent of this form.
# The lease that makes one serve process the gateway holder (bridge.jobs.run_as_leader).
GATEWAY_LEASE = "discord:gateway"
USER_AGENT = f"DiscordBot (https://github.com/paperbridge/paperbridge, {__version__})"
LOGIN_BACKOFF_BASE = 5.0
LOGIN_BACKOFF_MAX = 600.0
# What "Discord cannot be reached right now" looks like; anything else is a bug to surface.
UNREACHABLE = (
    OSError,
    TimeoutError,
    aiohttp.ClientError,
    discord.HTTPException,
    discord.GatewayNotFound,
)

Sleep = Callable[[float], Awaitable[object]]


class DiscordOutput:
    name = "discord"

    def __init__(
        self,
        context: OutputContext,
        *,
        token: str | None,
        environ: Mapping[str, str] = os.environ,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.context = context
        self.settings = context.settings.discord
        self.token = token
        self.environ = environ
        self.sleep = sleep
        self.bot: PaperBot | None = None
        self.bot_publisher = BotPublisher(
            layout=self.settings.digest_layout,
            papers_per_message=self.settings.papers_per_message,
        )
        self.webhook_publisher: WebhookPublisher | None = None
        self.interactions: InteractionsEndpoint | None = None
        self.login_attempts = 0
        self.token_refused = False
        self._task: asyncio.Task[None] | None = None
        self._stack = contextlib.AsyncExitStack()

    def publishers(self) -> Mapping[str, Publisher]:
        found: dict[str, Publisher] = {}
        if self.token:
            found["discord"] = self.bot_publisher
        if self.webhook_publisher is not None:
            found["discord-webhook"] = self.webhook_publisher
        return found

    def routes(self) -> list[BaseRoute]:
        if self.interactions is None:
            return []  # everything arrives over the gateway
        return [Route(INTERACTIONS_PATH, self.interactions.handle, methods=["POST"])]

    async def start(self, *, listen: bool) -> None:
        self._stack.enter_context(endpoints(self.settings.api_base_url, self.settings.gateway_url))
        client = await self._stack.enter_async_context(
            httpx.AsyncClient(
                timeout=self.settings.timeout_seconds, headers={"User-Agent": USER_AGENT}
            )
        )
        self.webhook_publisher = WebhookPublisher(
            client,
            api_base=self.settings.api_base_url,
            papers_per_message=self.settings.papers_per_message,
            environ=self.environ,
        )
        if listen and self.settings.public_key:
            # /papers over HTTP (Discord's "Interactions Endpoint URL"): answered by whichever
            # serve process the request reaches, with no bot token or gateway needed.
            self.interactions = InteractionsEndpoint(
                self.context.chat, self.settings, client, InteractionCheck(self.settings.public_key)
            )
            self._stack.push_async_callback(self.interactions.close)
            log.info("discord: answering /papers at %s", INTERACTIONS_PATH)
        if not self.token:
            return
        if listen:
            self._task = asyncio.create_task(self._keep_running(), name="discord-bot")
            self._task.add_done_callback(_report_crash)
        else:
            await self._log_in_to_post()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            # Waits without raising: a task that ended on an error has been reported already.
            await asyncio.wait([self._task])
            self._task = None
        if self.bot is not None:
            await self.bot.close()
            self.bot = None
            self.bot_publisher.client = None
        await self._stack.aclose()

    async def _log_in(self) -> str | None:
        """One login attempt over HTTP; on success (None) the bot can post, otherwise
        returns why not."""
        assert self.token
        self.login_attempts += 1
        # A fresh client per attempt: a failed login leaves discord.py's HTTP session behind.
        bot = PaperBot(self.context.chat, self.settings)
        try:
            await bot.login(self.token)
        except discord.LoginFailure:
            await bot.close()
            self.token_refused = True
            log.error(
                "discord: Discord refused the bot token (DISCORD_BOT_TOKEN); the bot stays"
                " offline until it is restarted with a valid token"
            )
            return "token refused"
        except UNREACHABLE as exc:
            await bot.close()
            return _describe(exc)
        self.bot = bot
        self.bot_publisher.client = bot
        log.info("discord: logged in as %s (application %s)", bot.user, bot.application_id)
        return None

    async def _log_in_to_post(self) -> None:
        problem = await self._log_in()
        if problem is not None and not self.token_refused:
            log.warning(
                "discord: cannot log in (%s); digests to Discord channels wait for the next run",
                problem,
            )

    async def _keep_running(self) -> None:
        """Log in (with backoff), register the commands, hold the gateway connection."""
        failures = 0
        while (problem := await self._log_in()) is not None:
            if self.token_refused:
                return
            failures += 1
            delay = _backoff(failures)
            log.warning("discord: cannot log in (%s); trying again in %.0f s", problem, delay)
            await self.sleep(delay)
        bot = self.bot
        assert bot is not None
        if self.settings.sync_commands:
            try:
                log.info("discord: %s", await bot.sync_commands(self.context.store))
            except UNREACHABLE as exc:
                log.warning("discord: registering the slash commands failed: %s", _describe(exc))
        if not self.settings.gateway:
            log.info("discord: gateway off ([discord] gateway = false): posting only")
            return
        # One gateway connection across every serve process sharing the store: Discord sends
        # each command to every connection, and two processes would both answer it.
        await run_as_leader(
            self.context.ledger,
            GATEWAY_LEASE,
            lambda: self._hold_gateway(bot),
            sleep=self.sleep,
            on_wait=lambda: log.info(
                "discord: another serve process holds the gateway; this one posts digests and"
                " takes over if that one stops"
            ),
        )

    async def _hold_gateway(self, bot: PaperBot) -> None:
        """Hold the gateway connection until the bot closes. discord.py reconnects after
        network faults on its own, but an event it cannot read (Discord changed a payload)
        ends the connection with that error: it is logged, and the bot connects again after a
        pause instead of staying deaf to commands until a restart."""
        failures = 0
        while not bot.is_closed():
            connected_at = time.monotonic()
            try:
                await bot.connect(reconnect=True)
                return
            except (discord.ConnectionClosed, discord.PrivilegedIntentsRequired) as exc:
                log.error("discord: the gateway closed the connection for good: %s", _describe(exc))
                return
            except Exception:
                if time.monotonic() - connected_at > LOGIN_BACKOFF_MAX:
                    failures = 0  # a long healthy connection: start the pauses over
                failures += 1
                delay = _backoff(failures)
                log.exception(
                    "discord: the gateway connection failed; connecting again in %.0f s", delay
                )
                if bot.ws is not None:
                    with contextlib.suppress(Exception):
                        await bot.ws.close(code=1000)
                await self.sleep(delay)


def _backoff(failures: int) -> float:
    """The pause after ``failures`` failed tries in a row: 5 s, doubling up to 10 minutes."""
    return min(LOGIN_BACKOFF_MAX, LOGIN_BACKOFF_BASE * 2 ** (failures - 1))


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("discord: the bot stopped on an error", exc_info=task.exception())


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def discord_output(context: OutputContext) -> DiscordOutput | None:
    """The Discord output when a bot token is set, a digest or the operator's alerts post
    through a webhook, or ``[discord] public_key`` asks for the interactions endpoint."""
    secret = context.settings.discord_bot_token
    token = secret.get_secret_value().strip() if secret is not None else ""
    webhooks = any(
        destination.startswith("discord-webhook:")
        for _, destination in configured_destinations(context.settings)
    )
    if not token and not webhooks and not context.settings.discord.public_key:
        return None
    return DiscordOutput(context, token=token or None)
