"""Copy a whole paperbridge database into an empty one: SQLite to PostgreSQL (or back).

Both ends are brought to the current schema first (``open_store`` migrates), then every table
the schema declares is copied in primary-key order, ``batch`` rows per statement, inside one
transaction on the target: an interrupted copy leaves the target empty, and running it again
starts over. The search index is rebuilt from the copied papers in the target's own form
(FTS5 on SQLite, tsvector on PostgreSQL) in the same transaction. PostgreSQL sequences are
moved past the copied keys, so new papers and ledger rows continue the numbering. The target
must be empty. The source must already be a paperbridge database (a missing SQLite file is
never created); it is only read, after its migration.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import Connection, Table, func, select, text

from bridge.errors import StoreError
from bridge.store import Store, open_store, safe_url, schema, sqlite_file

log = logging.getLogger(__name__)


# Written by the migration, or derived from the papers and rebuilt after the copy (the search
# index's own tables, FTS5 or tsvector, are not in the metadata and differ per database).
_NOT_COPIED = {"schema_version", "search_compounds", "search_index_state"}


def _tables() -> list[Table]:
    # Parents before children (foreign keys).
    return [t for t in schema.metadata.sorted_tables if t.name not in _NOT_COPIED]


def _count(conn: Connection, table: Table) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def copy_database(
    source_url: str,
    target_url: str,
    *,
    batch: int = 2000,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Copy every table from ``source_url`` into the empty database at ``target_url``.

    Returns rows copied per table; raises StoreError if the target already holds data or the
    counts differ afterwards.
    """
    source = _open_source(source_url)
    try:
        target = _open("target", target_url)
    except BaseException:
        source.close()
        raise
    try:
        return _copy(source, target, batch, progress)
    finally:
        source.close()
        target.close()


def _open(side: str, url: str, *, migrate_schema: bool = True) -> Store:
    # Which end failed is the first thing to know when a copy cannot start.
    try:
        return open_store(url, migrate_schema=migrate_schema)
    except StoreError as exc:
        raise StoreError(f"{side}: {exc}") from exc


def _open_source(url: str) -> Store:
    """The source, refused unless it already is a paperbridge database.

    A mistyped path must not be copied as an empty database "successfully": SQLite would
    create the file on connecting, so a missing file is refused before anything opens it,
    and a database without paperbridge's schema is refused before it is migrated.
    """
    path = sqlite_file(url)
    if path is not None and not path.is_file():
        raise StoreError(f"source: no database at {path}")
    source = _open("source", url, migrate_schema=False)
    try:
        if not source.has_schema():
            raise StoreError(f"{safe_url(url)} holds no paperbridge data (no schema_version table)")
        source.migrate()
    except BaseException as exc:
        source.close()
        if isinstance(exc, StoreError):
            raise StoreError(f"source: {exc}") from exc
        raise
    return source


def _copy(
    source: Store,
    target: Store,
    batch: int,
    progress: Callable[[str, int], None] | None,
) -> dict[str, int]:
    tables = _tables()
    with target.engine.connect() as conn:
        busy = [t.name for t in tables if t.name != "progress" and _count(conn, t)]
    if busy:
        raise StoreError(
            f"the target database already holds data ({', '.join(busy)}); copy into an empty one"
        )
    copied: dict[str, int] = {}
    with source.engine.connect() as src, target.engine.begin() as dst:
        for table in tables:
            # The migration seeds rows (the ledger's intake cursor); the source's copy wins.
            dst.execute(table.delete())
            order = list(table.primary_key.columns) or list(table.columns)
            result = src.execution_options(stream_results=True, yield_per=batch).execute(
                select(table).order_by(*order)
            )
            count = 0
            for rows in result.partitions(batch):
                dst.execute(table.insert(), [dict(row._mapping) for row in rows])
                count += len(rows)
                if progress is not None:
                    progress(table.name, len(rows))
            copied[table.name] = count
        # The search index is derived from the papers, in each database's own form.
        indexed = target.search_index.rebuild(dst)
        log.info("search index rebuilt for %d papers", indexed)
        if target.engine.dialect.name == "postgresql":
            for table in tables:
                column = table.autoincrement_column
                if column is None:
                    continue
                dst.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence(:table, :column),"
                        f" COALESCE((SELECT MAX({column.name}) FROM {table.name}), 0) + 1, false)"
                    ),
                    {"table": table.name, "column": column.name},
                )
    with source.engine.connect() as src, target.engine.connect() as dst:
        for table in tables:
            if _count(src, table) != _count(dst, table):
                raise StoreError(f"copy of {table.name} is incomplete; the target differs")
    log.info("copied %s", ", ".join(f"{name}: {n}" for name, n in copied.items()))
    return copied
