"""Crashed scheduled jobs: what a crash is called, and where it is recorded for health.

A crash is said in one line (a full disk as "disk full" with the path, ``explain``).

Where a crash is recorded: a poll (``poll:<source>``) counts as a failed poll of its source;
any other job (``deliveries:sweep``, ``digest:<id>``) gets a ``source_state`` row of its own
named ``job:<job id>``, whose columns (last error, failures in a row, last success) are exactly
a job's health, cleared by the next clean run in any process.
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from bridge.errors import BridgeError
from bridge.store import safe_url, sqlite_file

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

    @property
    def source(self) -> str | None:
        """The source whose poll crashed; None for other jobs."""
        return self.job.removeprefix("poll:") if self.job.startswith("poll:") else None


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
