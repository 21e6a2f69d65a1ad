"""Writers side by side on one database: who stores papers or changes the schema when."""

from __future__ import annotations

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
