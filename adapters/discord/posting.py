"""Digests posted by the bot to a channel (``discord`` destinations: the address is a channel
id), through discord.py's HTTP client, which keeps Discord's rate-limit buckets, waits out
429s up to ``max_ratelimit_timeout`` and retries 500/502/504 itself.

Layout "thread": the run's first message is a header in the channel, and the papers go into a
thread started from it (``DigestRun.anchor`` keeps the thread id for the run's later
messages); where threads cannot be started the papers follow the header in the channel.
Layout "channel": every message in the channel, the first opening with the header.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Literal
from zoneinfo import ZoneInfo

import aiohttp
import discord
from discord.http import MultipartParameters

from adapters.discord.render import (
    DiscordMessage,
    digest_header,
    digest_messages,
    notice_message,
    thread_name,
)
from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
    run_notice,
)

log = logging.getLogger(__name__)

# Discord archives a digest thread after a day without messages.
THREAD_ARCHIVE_MINUTES: Literal[1440] = 1440
# The anchor of a run whose papers go into the channel itself (threads refused).
IN_CHANNEL = "channel"


class BotPublisher:
    """Posts digests to ``discord`` destinations as the bot."""

    kind = "discord"

    def __init__(
        self,
        client: discord.Client | None = None,
        *,
        layout: Literal["thread", "channel"] = "thread",
        papers_per_message: int = 5,
    ) -> None:
        # Set once the bot has logged in (DiscordOutput); until then sends are retried later.
        self.client = client
        self.layout = layout
        self.max_papers_per_message = papers_per_message
        self._no_threads: set[int] = set()  # channels where starting a thread was refused

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome:
        async def send(client: discord.Client, channel_id: int) -> None:
            await self._send(client, channel_id, items, subscription, run)

        return await self._posting(destination, send)

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        async def send(client: discord.Client, channel_id: int) -> None:
            await post(client, channel_id, notice_message(notice))

        return await self._posting(destination, send)

    async def _posting(
        self,
        destination: Destination,
        send: Callable[[discord.Client, int], Awaitable[None]],
    ) -> SendOutcome:
        """Run ``send`` with the bot's client and the destination's channel; what Discord
        answered as an outcome."""
        if self.client is None or self.client.user is None:
            return SendOutcome.retry("the Discord bot has not logged in yet")
        try:
            channel_id = int(destination.address)
        except ValueError:
            return SendOutcome.permanent(f"{destination.address!r} is not a Discord channel id")
        try:
            await send(self.client, channel_id)
        except discord.RateLimited as exc:
            return SendOutcome.retry("rate limited (429)", retry_after=exc.retry_after)
        except (discord.NotFound, discord.Forbidden) as exc:
            # 10003 Unknown Channel, 50001 Missing Access, 50013 Missing Permissions: the channel
            # is gone or the bot was removed from it; a person has to act.
            return SendOutcome.permanent(f"Discord: {exc.status} {exc.text} (code {exc.code})")
        except discord.DiscordServerError as exc:
            return SendOutcome.retry(f"Discord answered {exc.status} {exc.text}".strip())
        except discord.HTTPException as exc:
            if exc.status == 401:
                # The token, not this channel: retry (with backoff) rather than pause every
                # channel; the bot's own log says the token was refused.
                return SendOutcome.retry("Discord refused the bot token (401)")
            return SendOutcome.permanent(
                f"Discord rejected the message ({exc.status} {exc.text}, code {exc.code})"
            )
        except TimeoutError:
            return SendOutcome.retry("Discord did not answer in time", maybe_sent=True)
        except aiohttp.ClientConnectorError as exc:
            return SendOutcome.retry(f"cannot reach Discord: {exc.__class__.__name__}")
        except (aiohttp.ClientError, OSError) as exc:
            return SendOutcome.retry(
                f"connection to Discord failed: {exc.__class__.__name__}", maybe_sent=True
            )
        return SendOutcome.sent()

    async def _send(
        self,
        client: discord.Client,
        channel_id: int,
        items: Sequence[DigestItem],
        subscription: DigestSubscription | None,
        run: DigestRun | None,
    ) -> None:
        per_message = self.max_papers_per_message
        if not items or self.layout == "channel":
            for message in digest_messages(items, subscription, run, per_message, header=True):
                await post(client, channel_id, message)
            return
        # The header is a message of its own; the papers follow it (in its thread).
        target = await self._thread_for(client, channel_id, subscription, run, len(items))
        for message in digest_messages(items, subscription, run, per_message, header=False):
            await post(client, target, message)

    async def _thread_for(
        self,
        client: discord.Client,
        channel_id: int,
        subscription: DigestSubscription | None,
        run: DigestRun | None,
        count: int,
    ) -> int:
        """Where this run's papers go: its thread, started now from a header message on the
        run's first message, or the channel itself when threads are refused there."""
        if run is not None and run.anchor is not None:
            return channel_id if run.anchor == IN_CHANNEL else int(run.anchor)
        total = run.pending if run is not None and run.pending else count
        header = DiscordMessage(digest_header(subscription, total, run_notice(run, subscription)))
        header_id = await post(client, channel_id, header)
        target = channel_id
        if channel_id not in self._no_threads:
            try:
                thread = await client.http.start_thread_with_message(
                    channel_id,
                    header_id,
                    name=thread_name(subscription, _day(subscription, run)),
                    auto_archive_duration=THREAD_ARCHIVE_MINUTES,
                )
                target = int(thread["id"])
            except discord.Forbidden as exc:
                # Allowed to post but not to start threads (or a thread cannot hold one):
                # the papers follow the header in the channel.
                self._no_threads.add(channel_id)
                log.warning(
                    "discord: cannot start threads in channel %s (%s); posting digests there",
                    channel_id,
                    exc.text,
                )
        if run is not None:
            run.anchor = str(target) if target != channel_id else IN_CHANNEL
        return target


async def post(client: discord.Client, channel_id: int, message: DiscordMessage) -> int:
    """One message as the bot, through discord.py's HTTP client; returns its id."""
    params = MultipartParameters(payload=message.payload(), multipart=None, files=None)
    data = await client.http.send_message(channel_id, params=params)
    return int(data["id"])


def _day(subscription: DigestSubscription | None, run: DigestRun | None) -> str:
    when = run.slot if run is not None and run.slot is not None else datetime.now(UTC)
    zone = ZoneInfo(subscription.time_zone) if subscription else UTC
    return when.astimezone(zone).date().isoformat()
