"""A few worker threads of their own for searches, with a bounded queue, for async callers.

Searches are mostly Python (checking papers holds the GIL) with the store's work between.
Run in asyncio's default executor, a burst of them took every thread that ``/healthz``,
the feeds and the scheduler also need, and the server froze for the burst's length. Here
they get ``workers`` threads and ``queue`` places to wait; past that, ``run`` raises ``SearchBusy`` at once, which the web answers with 503 and
Retry-After, and chat with "try again in a moment". A search also stops at its own budget
(``bridge.search.SearchBudget``), so a place frees within a fraction of a second.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from bridge.errors import SearchBusy

P = ParamSpec("P")
T = TypeVar("T")

# One: checking papers holds the GIL, so a second search thread adds no throughput and
# makes the event loop (health checks, feeds) wait longer for the GIL.
WORKERS = 1
QUEUE = 16
RETRY_AFTER_SECONDS = 2


class SearchPool:
    def __init__(
        self, workers: int = WORKERS, queue: int = QUEUE, retry_after: int = RETRY_AFTER_SECONDS
    ) -> None:
        if workers < 1 or queue < 0:
            raise ValueError("a search pool needs a worker and a queue of zero or more")
        self.workers = workers
        self.places = workers + queue
        self.retry_after = retry_after
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="search")
        # Searches submitted and not finished, whether running or waiting. Counted until the
        # thread is done, not until the caller stops waiting: a client that hangs up does not
        # free the worker its search still holds.
        self._taken = 0
        self._lock = threading.Lock()

    @property
    def taken(self) -> int:
        return self._taken

    async def run(self, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """``func(*args, **kwargs)`` in a search thread; SearchBusy when every place is taken."""
        with self._lock:
            if self._taken >= self.places:
                raise SearchBusy(
                    f"every search worker is busy ({self._taken} searches running or waiting);"
                    f" try again in {self.retry_after} s",
                    self.retry_after,
                )
            self._taken += 1
        try:
            future = self._executor.submit(functools.partial(func, *args, **kwargs))
        except BaseException:
            self._release()
            raise
        future.add_done_callback(self._done)
        # Cancelling the wait (a client hung up) cancels a search that has not started.
        return await asyncio.wrap_future(future)

    def _done(self, _future: Future[T]) -> None:
        self._release()

    def _release(self) -> None:
        with self._lock:
            self._taken -= 1

    def close(self, *, wait: bool = False) -> None:
        """Stop taking searches; those waiting are dropped, those running finish (``wait``:
        return only once they have)."""
        self._executor.shutdown(wait=wait, cancel_futures=True)


_SHARED: SearchPool | None = None
_SHARED_LOCK = threading.Lock()


def shared_pool() -> SearchPool:
    """The process's pool: the web page, the feeds and chat share its workers and queue."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = SearchPool()
        return _SHARED


__all__ = ["SearchPool", "shared_pool"]
