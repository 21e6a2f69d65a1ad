"""A thread whose outcome a test checks: its result, or the exception it raised."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


class Running(threading.Thread):
    """Runs ``work`` in a thread; ``outcome()`` is its result, or raises what it raised."""

    def __init__(self, work: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._work = work
        self._result: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        try:
            self._result = self._work()
        except BaseException as exc:
            self._error = exc

    def outcome(self) -> Any:
        self.join(60)
        assert not self.is_alive(), "still running after 60 s"
        if self._error is not None:
            raise self._error
        return self._result
