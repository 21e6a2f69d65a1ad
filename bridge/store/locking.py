"""Writers side by side on one database: who stores papers or changes the schema when."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection


def lock_papers(conn: Connection) -> None:
    """Begin a transaction that stores papers as the only one doing so in the database.

    Storing reads which papers are known, then inserts the others and updates the rest. Two
    such transactions side by side (two imports, an import and a poll) would both insert a
    paper neither had seen (IntegrityError), or one would overwrite the other's merge. On
    SQLite, BEGIN IMMEDIATE takes the write lock before the first read (the driver's own
    BEGIN comes only with the first INSERT, after the read); the wait follows busy_timeout.
    On PostgreSQL, SHARE ROW EXCLUSIVE on papers is the self-exclusive mode made for this:
    reading goes on, other transactions storing papers queue behind this one.
    """
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("LOCK TABLE papers IN SHARE ROW EXCLUSIVE MODE")


# PostgreSQL advisory lock class for schema changes: "pb" in ASCII.
_SCHEMA_LOCK = 0x7062


def lock_schema(conn: Connection) -> None:
    """Begin a transaction that changes the schema as the only one doing so, so processes
    starting together on a new database create its tables once."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        # The tables may not exist yet: an advisory lock, one per schema (search_path).
        conn.exec_driver_sql(
            f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK}, hashtext(current_schema()))"
        )


# SQLite lets one connection write at a time, and a connection waiting for its turn polls
# (its busy handler sleeps up to 100 ms between tries) instead of queueing. A bulk import
# that began its next transaction as soon as it committed would hold the lock for the whole
# import, and serve's polls and deliveries would give up after busy_timeout (10 s). So a
# bulk writer holds the lock for HOLD seconds (and a batch) at most, then leaves it free for
# TURN seconds, longer than those sleeps: each writer waiting tries in that time, and one
# gets in. That costs an import up to TURN/HOLD (6%) of its time while storing is what it
# waits on, and nothing while it waits on parsing anyway (the lock is free then).
HOLD = 2.0
TURN = 0.12


class Turns:
    """When a bulk writer on SQLite takes the write lock and when it leaves it to others."""

    def __init__(self, clock: Callable[[], float], sleep: Callable[[float], object]) -> None:
        self._clock = clock
        self._sleep = sleep
        # When the writer took the lock after others last had a turn (None: not holding
        # it), and when it last let it go.
        self._holding_since: float | None = None
        self._released_at = 0.0

    def take(self, conn: Connection) -> None:
        """Begin the writer's next transaction, after others had their turn if it is due."""
        if self._holding_since is not None:
            free_for = self._clock() - self._released_at
            if free_for >= TURN:
                self._holding_since = None  # others had their turn meanwhile
            elif self.held_long():
                self._sleep(TURN - free_for)
                self._holding_since = None
        lock_papers(conn)
        if self._holding_since is None:
            self._holding_since = self._clock()

    def released(self) -> None:
        """The writer committed: the lock is free."""
        self._released_at = self._clock()

    def held_long(self) -> bool:
        """Whether the writer should commit now and soon leave the lock to others."""
        since = self._holding_since
        return since is not None and self._clock() - since >= HOLD
