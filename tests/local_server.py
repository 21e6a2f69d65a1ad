"""What every stand-in server run in a thread of the tests shares: ``with`` starts and stops it."""

from __future__ import annotations

import sys
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


def serve_command(config: Path, port: int) -> list[str]:
    """`paperbridge serve` on ``config`` and ``port``, as a process of this checkout."""
    return [sys.executable, "-m", "bridge", "--config", str(config), "serve", "--port", str(port)]
