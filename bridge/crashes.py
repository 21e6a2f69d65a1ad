"""Crashed scheduled jobs: said once in the log, recorded as a problem of their source (or job).

A scheduled job that raises (a full disk while writing a lease, a bug in a parser, a store that
refuses a write) must not vanish into the scheduler's log. ``CrashWatch`` is the scheduler's
observer: it logs the crash in one line saying what happened (a full disk as "disk full" with
the path), records it where ``status`` and every other process read health, and keeps it in
this process until the job next runs cleanly, because a full disk may refuse that record too.

Where a crash is recorded: a poll (``poll:<source>``) counts as a failed poll of its source;
any other job (``deliveries:sweep``, ``digest:<id>``) gets a ``source_state`` row of its own
named ``job:<job id>``, whose columns (last error, failures in a row, last success) are exactly
a job's health, cleared by the next clean run in any process.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bridge import metrics
from bridge.errors import BridgeError
from bridge.store import Store, safe_url, sqlite_file

log = logging.getLogger(__name__)

# Rows of ``source_state`` that hold a scheduled job's health rather than a source's.
JOB_ROW_PREFIX = "job:"
_ROW_LENGTH = 64  # source_state.source is a String(64)
_POSTGRES_DISK_FULL = "53100"


@dataclass(frozen=True, slots=True)
class Crash:
    """One crash of a scheduled job, as this process saw it."""

    job: str
    error: str
    at: datetime
    # Whether the store took the record (a full disk may refuse it): if not, only this
    # process knows, and its health must say so.
    recorded: bool


def state_row(job: str) -> str:
    """The ``source_state`` row a job's crash is recorded in: its source's, or its own."""
    if job.startswith("poll:"):
        return job.removeprefix("poll:")
    return (JOB_ROW_PREFIX + job)[:_ROW_LENGTH]


def explain(exc: BaseException, database_url: str | None = None) -> str:
    """One line saying what went wrong: "disk full: cannot write PATH (...)" for a full disk
    (a file, the SQLite database, the PostgreSQL server), the message of our own errors, and
    the driver's first line rather than SQLAlchemy's statement dump for database errors."""
    full = _disk_full(exc)
    if full is not None:
        where, detail = full
        database = sqlite_file(database_url) if database_url else None
        if where is None and database is None and database_url:
            return f"disk full on the database server of {safe_url(database_url)}: {detail}"
        return f"disk full: cannot write {where or database or 'the database'} ({detail})"
    if isinstance(exc, BridgeError):
        return str(exc)
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        exc = orig
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def is_disk_full(exc: BaseException) -> bool:
    return _disk_full(exc) is not None


def _disk_full(exc: BaseException) -> tuple[str | None, str] | None:
    """(the path written, if known; the system's words) when ``exc`` or its cause is a full
    disk, else None."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            filename = current.filename
            return (str(filename) if filename else None, current.strerror or "no space left")
        if isinstance(current, sqlite3.Error) and (
            getattr(current, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
        ):
            return None, str(current)
        if getattr(current, "sqlstate", None) == _POSTGRES_DISK_FULL:
            return None, str(current).strip().splitlines()[0]
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)
    return None


class CrashWatch:
    """The scheduler's observer (``bridge.scheduler.JobObserver``) for one ``serve`` process."""

    def __init__(
        self,
        store: Store,
        database_url: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.database_url = database_url
        self.clock = clock
        self._open: dict[str, Crash] = {}
        # Read by health checks in worker threads while the event loop records crashes.
        self._lock = threading.Lock()

    def open_crashes(self) -> list[Crash]:
        """The crashes not yet followed by a clean run of the same job, oldest first."""
        with self._lock:
            return sorted(self._open.values(), key=lambda crash: crash.at)

    async def crashed(self, job: str, exc: Exception) -> None:
        metrics.JOB_CRASHES.inc(job=job)
        crash = await asyncio.to_thread(self._record, job, exc)
        with self._lock:
            self._open[job] = crash

    async def ran(self, job: str) -> None:
        with self._lock:
            self._open.pop(job, None)
        if not job.startswith("poll:"):  # a poll records its own success
            await asyncio.to_thread(self._clear, job)

    def _record(self, job: str, exc: Exception) -> Crash:
        text = explain(exc, self.database_url)
        now = self.clock()
        try:
            self.store.record_poll_failure(state_row(job), f"crashed: {text}", now)
            recorded, unrecorded = True, ""
        except Exception as store_exc:  # the store may be what failed (a full disk)
            why = explain(store_exc, self.database_url)
            recorded = False
            unrecorded = "; the store could not record it" + ("" if why == text else f": {why}")
        # A bug deserves its traceback; a full disk or one of our own errors is said plainly.
        plain = isinstance(exc, BridgeError) or is_disk_full(exc)
        log.error("%s crashed: %s%s", job, text, unrecorded, exc_info=None if plain else exc)
        return Crash(job, text, now, recorded)

    def _clear(self, job: str) -> None:
        """Mark the job's row clean after a clean run (of this process or any other)."""
        row = state_row(job)
        try:
            if self.store.source_state(row).consecutive_failures:
                self.store.record_poll_success(row, None, self.clock())
        except Exception as exc:  # the job itself just used the store; this is a blip
            log.warning("%s: cannot clear its recorded crash: %s", job, explain(exc))
