"""Fast many-row INSERT: the dialect's own compiled SQL and type processors, one executemany.

SQLAlchemy's executemany builds a parameter dict per row through several layers; for bulk
imports that costs more than SQLite's insert itself. This keeps SQLAlchemy's SQL and value
conversion (so SQLite and PostgreSQL store exactly what the ORM-less Core path would) and
hands the driver plain tuples or dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, Table, insert
from sqlalchemy.exc import DBAPIError


class BulkInsert:
    def __init__(self, engine: Engine, table: Table, *, skip: Sequence[str] = ()) -> None:
        """``skip``: columns the database fills itself (an autoincrement key)."""
        dialect = engine.dialect
        columns = [column.key for column in table.columns if column.key not in skip]
        compiled = insert(table).compile(dialect=dialect, column_keys=columns)
        self.sql = str(compiled)
        # PostgreSQL reads many rows fastest as one COPY stream; the values are converted as
        # for the INSERT, then psycopg writes each as PostgreSQL's text input for its column.
        self.copy_sql = (
            f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
            if dialect.name == "postgresql"
            else None
        )
        self.positional = bool(dialect.positional)
        keys: Sequence[str] = (
            list(compiled.positiontup or []) if self.positional else list(compiled.params)
        )
        self.keys = keys
        # The dialect's own type (SQLite's DATETIME writes "YYYY-MM-DD HH:MM:SS.ffffff", as every
        # Core statement does); the generic type has no processor, and sqlite3's default
        # adapter would write another format, which sorts differently and is deprecated.
        processors: dict[str, Callable[[Any], Any] | None] = {
            column.key: column.type.dialect_impl(dialect).bind_processor(dialect)
            for column in table.columns
        }
        # A row's values in statement order come out of C; then the few that need converting.
        self._convert = [(i, proc) for i, key in enumerate(keys) if (proc := processors.get(key))]

    def execute(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert ``rows``, each a mapping with a value for every column not skipped."""
        if not rows:
            return
        columns = [list(map(itemgetter(key), rows)) for key in self.keys]
        for i, proc in self._convert:
            # Each distinct value converted once: a batch's papers share their first-seen
            # and changed times, and most have no revision time.
            converted = {value: proc(value) for value in set(columns[i])}
            columns[i] = list(map(converted.__getitem__, columns[i]))
        params: list[Any] = list(zip(*columns, strict=True))
        if self.copy_sql is not None:
            copy_rows(conn, self.copy_sql, params)
            return
        if not self.positional:
            params = [dict(zip(self.keys, values, strict=True)) for values in params]
        conn.exec_driver_sql(self.sql, params)


def copy_rows(conn: Connection, sql: str, rows: Iterable[Sequence[Any]]) -> None:
    """``COPY … FROM STDIN`` on a PostgreSQL connection, in its transaction: each row's values
    written as PostgreSQL's text input for its column."""
    with _copying(conn, sql) as copy:
        for row in rows:
            copy.write_row(row)


# Binary COPY's header (its signature, no flags, no header extension) and trailer.
_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_BINARY_TRAILER = b"\xff\xff"


def copy_binary(conn: Connection, sql: str, rows: Sequence[bytes]) -> None:
    """``COPY … FROM STDIN (FORMAT BINARY)``: ``rows`` already in binary COPY's row form."""
    with _copying(conn, sql) as copy:
        copy.write(b"".join([_BINARY_HEADER, *rows, _BINARY_TRAILER]))


@contextmanager
def _copying(conn: Connection, sql: str) -> Iterator[Any]:
    """psycopg's ``Copy`` for ``sql``, in the connection's transaction.

    psycopg's own errors are raised as SQLAlchemy's, as a statement would raise them, so the
    store tells a refused value from a failing database the same way (``refused_value``).
    """
    raw = conn.connection.dbapi_connection
    dbapi = conn.dialect.dbapi
    assert raw is not None and dbapi is not None
    try:
        with raw.cursor() as cursor, cursor.copy(sql) as copy:  # type: ignore[attr-defined]
            yield copy
    except dbapi.Error as exc:
        raise DBAPIError.instance(
            sql,
            None,
            exc,
            dbapi.Error,
            connection_invalidated=conn.dialect.is_disconnect(exc, raw, None),
        ) from exc
