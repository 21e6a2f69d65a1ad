"""Rendered feeds kept per data version, so bytes are built when data changes, not per request."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from bridge.store import Store

T = TypeVar("T")


class DataVersion:
    """``store.data_version()``, asked at most once per ``ttl`` seconds.

    The question is two index lookups, but a thread hop and a database round trip per request
    would halve a cached feed's throughput; a second of staleness is invisible to readers
    that poll hourly. The version comes from the database, so another process's writes
    (an import, a second server) are seen too.
    """

    def __init__(self, store: Store, ttl: float = 1.0) -> None:
        self.store = store
        self.ttl = ttl
        self._value: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    def current(self) -> str | None:
        """The version if it is still trusted, else None (then ``await get()``)."""
        return self._value if time.monotonic() < self._expires else None

    async def get(self) -> str:
        if self._value is not None and time.monotonic() < self._expires:
            return self._value
        async with self._lock:  # one lookup when many requests find it expired together
            if self._value is None or time.monotonic() >= self._expires:
                self._value = await asyncio.to_thread(self.store.data_version)
                self._expires = time.monotonic() + self.ttl
            return self._value


class RenderCache(Generic[T]):
    """Least recently used rendered variants, each valid for one data version.

    Keys include the query of a search feed, so the entry count is bounded; concurrent
    requests for a missing variant share one render instead of each starting their own.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, tuple[str, T]] = OrderedDict()
        self._pending: dict[tuple[Hashable, str], asyncio.Task[T]] = {}
        self.renders = 0

    def peek(self, key: Hashable, version: str) -> T | None:
        """The variant cached for exactly this version, without waiting for anything."""
        found = self._items.get(key)
        if found is None or found[0] != version:
            return None
        self._items.move_to_end(key)
        return found[1]

    async def get(
        self,
        key: Hashable,
        version: str,
        render: Callable[[], T],
        *,
        stale_grace: float | None = None,
        run: Callable[[Callable[[], T]], Awaitable[T]] = asyncio.to_thread,
    ) -> T:
        """The cached variant, else ``render()`` run once in a worker thread (``run``: how;
        a search feed's render runs in the search pool).

        With ``stale_grace``, a request that finds an older version waits that long for the
        new render, then takes the older bytes: a slow store (a cold query over a million
        papers) delays a feed's update, never its readers.
        """
        found = self._items.get(key)
        if found is not None and found[0] == version:
            self._items.move_to_end(key)
            return found[1]
        task = self._pending.get((key, version))
        if task is None:
            # A task of its own: a client hanging up must not cancel a render others await.
            task = asyncio.create_task(self._render(key, version, render, run))
            # Retrieve a failure even when every waiter has gone, so asyncio logs nothing.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._pending[(key, version)] = task
        if found is None or stale_grace is None:
            return await asyncio.shield(task)
        try:
            return await asyncio.wait_for(asyncio.shield(task), stale_grace)
        except TimeoutError:
            return found[1]

    async def _render(
        self,
        key: Hashable,
        version: str,
        render: Callable[[], T],
        run: Callable[[Callable[[], T]], Awaitable[T]],
    ) -> T:
        try:
            rendered = await run(render)
        finally:
            del self._pending[(key, version)]
        self.renders += 1
        self._items[key] = (version, rendered)
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)
        return rendered
