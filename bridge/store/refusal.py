"""Telling a value the database refuses from a failing database, and savepoints to retry without it.

A batch of papers fails as a whole when one value in it is out of the database's range (an
integer beyond 32 bits on PostgreSQL, a NUL character, a word too long to index). Storing the
batch again without that paper helps; retrying after a full disk or a lost connection does
not. ``refused_value`` tells the two apart, ``savepoint`` lets a batch's writes be undone
without losing what the transaction already holds.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError

# Raised while a value is converted for the driver: a lone surrogate (UnicodeEncodeError is a
# ValueError), an int beyond 64 bits for SQLite, a naive datetime, a non-string in a list.
_CONVERSION_ERRORS = (ValueError, TypeError, OverflowError)
# PostgreSQL's class 54, program_limit_exceeded: a word too long for a tsvector, a tsvector
# over 1 MB, an index row over the btree limit.
_LIMIT_EXCEEDED = "54"


def refused_value(exc: BaseException) -> bool:
    """True when ``exc`` says the database refused a value written, not that it failed."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return False
        if isinstance(exc, DataError | IntegrityError):
            return True
        return str(getattr(exc.orig, "sqlstate", None) or "").startswith(_LIMIT_EXCEEDED)
    if isinstance(exc, StatementError):  # a bind processor raised before the driver saw it
        return isinstance(exc.orig, _CONVERSION_ERRORS)
    return isinstance(exc, _CONVERSION_ERRORS)


def refusal_reason(exc: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's statement and parameters."""
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    text = f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__
    return text[:300]


class PipelineEcho(logging.Filter):
    """Drops psycopg's "error ignored terminating <Pipeline>: pipeline aborted" warning.

    psycopg sends executemany through a pipeline; when the database refuses a row, leaving
    the pipeline fails too, and psycopg logs that second failure while the first one goes
    up to the store, which handles it (and its callers log it once, naming the paper). The
    echo says nothing more, once per attempt at storing a batch.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("error ignored terminating")


@contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """Writes in the block are rolled back to here if it raises; the transaction goes on."""
    if conn.dialect.name == "sqlite":
        dbapi = conn.connection.dbapi_connection
        if not getattr(dbapi, "in_transaction", True):
            # pysqlite begins a transaction only before INSERT, UPDATE or DELETE; a SAVEPOINT
            # outside one would open its own, and releasing it would commit. IMMEDIATE: the
            # transaction will write, so it waits for the write lock now (busy_timeout), as
            # the first INSERT would have, instead of failing to upgrade a read later.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
    with conn.begin_nested():
        yield
