"""Digests through a Discord channel webhook: no bot needed, only the webhook's URL, which is
read from the environment variable the destination names and never logged.

Rate limits are ours to honour here (the bot's go through discord.py): a bucket that said it
is empty (``X-RateLimit-Remaining: 0``) is waited out before the next post, a 429 is retried
after its ``retry_after`` when that is short and otherwise handed to the ledger as a retry, and
5xx answers are tried again twice. A webhook that is gone (404) or whose token is refused
(401, 403) pauses the destination: Discord asks clients to stop using such webhooks.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from adapters.discord.render import DiscordMessage, digest_messages, notice_message
from bridge.config import DISCORD_WEBHOOK_URL
from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
)

log = logging.getLogger(__name__)

# Longest rate-limit wait taken inside one send; longer ones go back to the ledger.
MAX_WAIT_SECONDS = 10.0
ATTEMPTS = 3  # per message, for 429s and 5xx

Sleep = Callable[[float], Awaitable[object]]


@dataclass(slots=True)
class _Bucket:
    """What the webhook's last answer said about its rate limit."""

    remaining: int = 1
    reset_at: float = 0.0


class WebhookPublisher:
    """Posts digests to ``discord-webhook`` destinations (address: an environment variable)."""

    kind = "discord-webhook"

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        api_base: str,
        papers_per_message: int = 5,
        environ: Mapping[str, str],
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.api_base = api_base.rstrip("/")
        self.max_papers_per_message = papers_per_message
        self.environ = environ
        self.sleep = sleep
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        redact_webhook_tokens_in_logs()

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome:
        messages = digest_messages(
            items, subscription, run, self.max_papers_per_message, header=True
        )
        return await self._post_all(destination, messages)

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        return await self._post_all(destination, [notice_message(notice)])

    async def _post_all(
        self, destination: Destination, messages: Sequence[DiscordMessage]
    ) -> SendOutcome:
        url = self.environ.get(destination.address, "").strip()
        found = DISCORD_WEBHOOK_URL.fullmatch(url)
        if found is None:
            return SendOutcome.permanent(
                f"environment variable {destination.address} does not hold a Discord webhook URL"
            )
        webhook_id, token = found.groups()
        endpoint = f"{self.api_base}/webhooks/{webhook_id}/{token}"
        for message in messages:
            outcome = await self.post(endpoint, webhook_id, token, message)
            if outcome.status != "sent":
                return outcome
        return SendOutcome.sent()

    async def post(
        self, endpoint: str, webhook_id: str, token: str, message: DiscordMessage
    ) -> SendOutcome:
        """One message, waiting out short rate limits and retrying 5xx a little."""
        bucket = self._buckets.setdefault(webhook_id, _Bucket())
        outcome = SendOutcome.retry("no attempt made")
        for attempt in range(1, ATTEMPTS + 1):
            wait = bucket.reset_at - self.clock() if bucket.remaining <= 0 else 0.0
            if wait > MAX_WAIT_SECONDS:
                return SendOutcome.retry("webhook rate limit", retry_after=wait)
            if wait > 0:
                await self.sleep(wait)
            try:
                response = await self.client.post(
                    endpoint, params={"wait": "true"}, json=message.payload()
                )
            except httpx.TimeoutException as exc:
                # The post may have arrived; the ledger re-sends it marked uncertain.
                sent_maybe = not isinstance(exc, httpx.ConnectTimeout)
                return SendOutcome.retry("Discord did not answer in time", maybe_sent=sent_maybe)
            except httpx.TransportError as exc:
                sent_maybe = not isinstance(exc, httpx.ConnectError)
                reason = _without(f"cannot reach Discord: {exc.__class__.__name__}", token)
                return SendOutcome.retry(reason, maybe_sent=sent_maybe)
            self._remember(bucket, response)
            outcome = _outcome(response)
            if outcome.status != "retry" or attempt == ATTEMPTS:
                break
            delay = outcome.retry_after if outcome.retry_after is not None else 0.5 * 2**attempt
            if delay > MAX_WAIT_SECONDS:
                break
            log.info(
                "discord webhook %s: %s; trying again in %.1f s", webhook_id, outcome.reason, delay
            )
            await self.sleep(delay)
        return outcome

    def _remember(self, bucket: _Bucket, response: httpx.Response) -> None:
        headers = response.headers
        try:
            if "x-ratelimit-remaining" in headers:
                bucket.remaining = int(headers["x-ratelimit-remaining"])
            if "x-ratelimit-reset-after" in headers:
                bucket.reset_at = self.clock() + float(headers["x-ratelimit-reset-after"])
        except ValueError:
            bucket.remaining, bucket.reset_at = 1, 0.0  # unreadable headers: rely on 429s


def _outcome(response: httpx.Response) -> SendOutcome:
    status = response.status_code
    if 200 <= status < 300:
        return SendOutcome.sent()
    body = _json(response)
    what = f"{status} {body.get('message') or response.reason_phrase}".strip()
    if status == 429:
        retry_after = _float(body.get("retry_after")) or _float(response.headers.get("retry-after"))
        if "via" not in response.headers and not body:
            # Cloudflare's ban for too many bad requests, not Discord's limiter: back off long.
            return SendOutcome.retry(f"Discord refused ({what}, Cloudflare)", retry_after)
        return SendOutcome.retry("rate limited (429)", retry_after)
    if status >= 500:
        return SendOutcome.retry(f"Discord answered {what}")
    if status in (401, 403, 404):
        return SendOutcome.permanent(f"the webhook is gone or refused ({what})")
    # 400: Discord rejected this message's content; sending it again would not help.
    return SendOutcome.permanent(f"Discord rejected the message ({what}, code {body.get('code')})")


# A webhook's or an interaction's token is the path segment after its id.
_TOKEN_IN_URL = re.compile(r"(/(?:webhooks|interactions)/\d+/)[\w.-]+")
# Loggers that write request URLs: httpx at INFO, discord.py's HTTP and webhook code at DEBUG.
_URL_LOGGERS = ("httpx", "discord.http", "discord.webhook.async_")


def _masked(value: object) -> object:
    text = str(value)
    if "/webhooks/" in text or "/interactions/" in text:
        return _TOKEN_IN_URL.sub(r"\1…", text)
    return value


class RedactWebhookTokens(logging.Filter):
    """Masks webhook and interaction tokens in log records, so even debug logs never show
    a URL that lets someone post."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _masked(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_masked(arg) for arg in record.args)
        return True


def redact_webhook_tokens_in_logs() -> None:
    """Install ``RedactWebhookTokens`` on the loggers that print request URLs (once)."""
    for name in _URL_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactWebhookTokens) for f in logger.filters):
            logger.addFilter(RedactWebhookTokens())


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _without(text: str, token: str) -> str:
    return text.replace(token, "…") if token else text
