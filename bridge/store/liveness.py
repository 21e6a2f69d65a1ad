"""Whether a pooled PostgreSQL connection is still alive, asked only by callers that need it.

A connection kept in the pool dies with its server process: PostgreSQL restarted, an
administrator ended the session (``pg_terminate_backend``), a network hop dropped it. SQLAlchemy's
``pool_pre_ping`` asks each connection before handing it out (a round trip: on a busy 2-core
machine 0.1 to 1.7 ms, the scheduling wait of the server process), so that the caller never
sees a dead one. Here the same ping runs on checkout (``ping_on_checkout``, a pool event), as
``pool_pre_ping`` does, except under ``unpinged()``: a search skips it, as its first
statement tells as well as a ping would, and ``bridge.search`` runs it again once, pinged,
when that statement finds the connection dead (a search only reads). The ping failing
invalidates the whole pool (every connection made before), as ``pool_pre_ping`` does, so a
restarted server costs one failed search statement and then one reconnect per connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

# The settings a search sets for the session (``bridge.store.search_index.search_settings``),
# and the conn.info key noting they were left on a pooled connection: the next checkout that
# is not a search resets them, in place of its ping (same round trip).
SEARCH_SETTING_NAMES = (
    "statement_timeout",
    "enable_seqscan",
    "max_parallel_workers_per_gather",
    "plan_cache_mode",
)
SEARCH_SESSION = "paperbridge.search_session"
_RESET = "; ".join(f"RESET {name}" for name in SEARCH_SETTING_NAMES)

_UNPINGED: ContextVar[bool] = ContextVar("paperbridge_unpinged", default=False)
# A connection's record notes it was just made: its first checkout needs no ping (as
# ``pool_pre_ping`` skips fresh connections).
_FRESH = "paperbridge.fresh"


@contextmanager
def unpinged() -> Iterator[None]:
    """Connections checked out in this block are not pinged: the caller retries on a dead one
    (``is_dead``)."""
    token = _UNPINGED.set(True)
    try:
        yield
    finally:
        _UNPINGED.reset(token)


def mark_fresh(_dbapi_conn: Any, record: Any) -> None:
    """The pool's ``connect`` event."""
    record.info[_FRESH] = True


def ping_on_checkout(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
    """The pool's ``checkout`` event: ``pool_pre_ping``'s ping, unless fresh or ``unpinged``
    (a search, which sets what it needs). A search's session settings are reset here."""
    if record.info.pop(_FRESH, False) or _UNPINGED.get():
        return
    # The settings a search left, reset (the ping's round trip); else an empty statement,
    # what SQLAlchemy's ping sends to psycopg.
    ping = _RESET if record.info.pop(SEARCH_SESSION, None) else ";"
    autocommit = dbapi_conn.autocommit
    try:
        # Outside a transaction: no BEGIN round trip before the ping, and a RESET that a
        # rollback of the caller's transaction cannot undo.
        dbapi_conn.autocommit = True
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(ping)
        finally:
            cursor.close()
    except Exception as error:
        if is_dead(dbapi_conn):
            # Imported here: bridge.search imports this module, and `paperbridge search` on
            # SQLite imports no SQLAlchemy (bridge/sqlite_read.py).
            from sqlalchemy.exc import InvalidatePoolError

            # The pool replaces this connection and every one made before it.
            raise InvalidatePoolError() from error
        raise
    finally:
        if not is_dead(dbapi_conn):
            dbapi_conn.autocommit = autocommit


def is_dead(dbapi_conn: Any) -> bool:
    """Whether a psycopg connection has lost its server (after a statement failed on it)."""
    return bool(getattr(dbapi_conn, "closed", False) or getattr(dbapi_conn, "broken", False))
