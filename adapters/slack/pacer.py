"""Slack's posting rate, kept per channel: about one message per second.

One ``ChannelPacer`` serves every digest run of the process, so two runs (a scheduled digest
and ``/papers now``) to one channel share its pace. A channel has one message in flight at a
time, and the next one leaves ``interval`` seconds after Slack *answered* the previous one:
Slack counts arrivals, and an answer comes after its request arrived, so however the network
jitters two messages never arrive closer than ``interval`` apart. That costs half a round trip
per message and buys never being rate limited by our own pace.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable

# Channels idle longer than this are forgotten, so the table does not grow without end.
_FORGET_AFTER = 600.0


class ChannelPacer:
    def __init__(
        self,
        interval: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self._next: dict[str, float] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def turn(self, channel: str) -> AsyncIterator[None]:
        """Wait for the channel's turn, hold it while posting, and start its next interval
        when the post is answered (or failed)."""
        lock = self._locks.setdefault(channel, asyncio.Lock())
        async with lock:
            wait = self._next.get(channel, 0.0) - self.clock()
            if wait > 0:
                await self.sleep(wait)
            try:
                yield
            finally:
                self._next[channel] = max(
                    self._next.get(channel, 0.0), self.clock() + self.interval
                )
        self._forget_idle()

    def hold(self, channel: str, seconds: float) -> None:
        """Slack asked us to wait (429 Retry-After): nothing goes to the channel before then."""
        self._next[channel] = max(self._next.get(channel, 0.0), self.clock() + seconds)

    def _forget_idle(self) -> None:
        if len(self._next) < 10_000:
            return
        cutoff = self.clock() - _FORGET_AFTER
        for channel in [c for c, at in self._next.items() if at < cutoff]:
            lock = self._locks.get(channel)
            if lock is None or not lock.locked():
                self._next.pop(channel, None)
                self._locks.pop(channel, None)
