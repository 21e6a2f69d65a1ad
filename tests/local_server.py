"""What every stand-in server run in a thread of the tests shares: ``with`` starts and stops it."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Self


class LocalServer:
    """A server on 127.0.0.1 with ``start`` (returning itself) and ``stop``; as a context
    manager it is started on entry and stopped on exit, whatever the block raised."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ThreadedAsyncServer(LocalServer):
    """A stand-in that serves from an asyncio loop in a thread of its own. ``_serve`` sets
    ``_loop`` and ``_stopping``, starts serving, sets ``_started`` and returns once
    ``_stopping`` is set."""

    thread_name = "local-server"

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._serve()), name=self.thread_name, daemon=True
        )
        self._thread.start()
        if not self._started.wait(15):
            raise RuntimeError(f"the {self.thread_name} stand-in did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=15)

    async def _serve(self) -> None:
        raise NotImplementedError


def serve_command(config: Path, port: int) -> list[str]:
    """`paperbridge serve` on ``config`` and ``port``, as a process of this checkout."""
    return [sys.executable, "-m", "bridge", "--config", str(config), "serve", "--port", str(port)]
