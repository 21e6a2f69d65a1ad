"""Versioned schema migrations: an ordered list of steps and a schema_version table."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, func, inspect, select, update

from bridge.errors import StoreError
from bridge.store import schema

log = logging.getLogger(__name__)


def _v1_core_tables(conn: Connection) -> None:
    # Creating a table creates the indexes schema.py declares with it.
    for table in (schema.papers, schema.fetch_validators, schema.source_state, schema.progress):
        table.create(conn)


def _delivery_ledger(conn: Connection) -> None:
    # Destinations, digest subscriptions, the delivery ledger and job leases (bridge/ledger.py).
    for table in (
        schema.destinations,
        schema.digest_subscriptions,
        schema.deliveries,
        schema.job_claims,
    ):
        table.create(conn)
    # The ledger takes announced papers stored after this point: upgrading a database that
    # already holds papers must not deliver its history.
    high = conn.execute(select(func.max(schema.papers.c.seq))).scalar() or 0
    conn.execute(
        schema.progress.insert().values(
            job="ledger:intake", cursor=str(high), updated_at=datetime.now(UTC)
        )
    )


def _search_index(conn: Connection) -> None:
    # The archive search index (bridge/store/search_index.py): FTS5 on SQLite, a tsvector
    # table on PostgreSQL. It starts out stale; Store.migrate then indexes the stored papers.
    from bridge.store.search_index import SearchIndex

    SearchIndex.create(conn)


def _search_votes(conn: Connection) -> None:
    # Upvotes by seq for the search ranking, filled from the papers.
    from bridge.store.search_index import SearchIndex

    SearchIndex.create_votes(conn)


def _slack_installations(conn: Connection) -> None:
    # Workspaces the Slack app was installed into (OAuth) and pending OAuth states.
    schema.slack_installations.create(conn)
    schema.slack_oauth_states.create(conn)


def _notices(conn: Connection) -> None:
    # Notices about the bridge itself: sources down and back, paused destinations.
    schema.notices.create(conn)


def _source_skips(conn: Connection) -> None:
    # Per source, the records its last successful poll skipped (schema.source_state). A store
    # created at this version already has the columns: step 1 creates the table as it is now.
    present = {column["name"] for column in inspect(conn).get_columns("source_state")}
    if "skipped_records" not in present:
        conn.exec_driver_sql(
            "ALTER TABLE source_state ADD COLUMN skipped_records INTEGER NOT NULL DEFAULT 0"
        )
    if "skip_problem" not in present:
        conn.exec_driver_sql("ALTER TABLE source_state ADD COLUMN skip_problem TEXT")


def _announcements(conn: Connection) -> None:
    # Migration 8. The announcement log (schema.announcements), which the ledger's intake now
    # walks instead of papers by seq, so a paper announced after it was stored quietly
    # (`import --announce` over a backfill) reaches the digests; and "top N of the day"
    # digests (digest_subscriptions.top).
    present = {column["name"] for column in inspect(conn).get_columns("digest_subscriptions")}
    if "top" not in present:
        conn.exec_driver_sql("ALTER TABLE digest_subscriptions ADD COLUMN top INTEGER")
    if not inspect(conn).has_table("announcements"):
        schema.announcements.create(conn)
    # The intake cursor counted papers by seq; it now counts announcements by id. Announced
    # papers past the old cursor (stored, not yet taken in) are logged first, in seq order, so
    # the next intake still takes them in; the history before the cursor is not re-delivered.
    job = schema.progress.c.job == "ledger:intake"
    cursor = conn.execute(select(schema.progress.c.cursor).where(job)).scalar()
    papers = schema.papers
    waiting = (
        select(papers.c.seq, papers.c.first_seen_at)
        .where(papers.c.announced.is_(True), papers.c.seq > int(cursor or 0))
        .order_by(papers.c.seq)
    )
    rows = [{"paper_seq": seq, "announced_at": seen} for seq, seen in conn.execute(waiting)]
    if rows:
        conn.execute(schema.announcements.insert(), rows)
    conn.execute(
        schema.progress.update().where(job).values(cursor="0", updated_at=datetime.now(UTC))
    )


def _term_expansions(conn: Connection) -> None:
    # Migration 9. Acronyms and open compounds the archive defines (bridge/store/expansions.py),
    # mined from the papers already stored; new papers are mined as they are stored.
    from bridge.store.expansions import mine_archive

    schema.term_expansions.create(conn)
    mine_archive(conn)


def _estimated_listing_days(conn: Connection) -> None:
    # Migration 10. arXiv API records (backfill --arxiv, import of API files) now carry the
    # listing day arXiv's schedule gives their first version, marked as estimated
    # (bridge/sources/arxiv_schedule.py; a listing's true day replaces it, bridge/merge.py).
    # Papers stored before had no day, so they were in no listing or archive feed: they get
    # their estimate here, once, rather than waiting for an import of the same records.
    present = {column["name"] for column in inspect(conn).get_columns("papers")}
    if "listed_on_estimated" not in present:
        default = "false" if conn.dialect.name == "postgresql" else "0"
        conn.exec_driver_sql(
            f"ALTER TABLE papers ADD COLUMN listed_on_estimated BOOLEAN NOT NULL DEFAULT {default}"
        )
    from bridge.sources.arxiv_schedule import listing_day

    papers = schema.papers
    # Only papers arXiv gave (a paper an RSS listing gave has its day already); a paper known
    # only from Hugging Face without a day keeps none: HF's publishedAt is not a submission
    # time.
    waiting = (
        select(papers.c.seq, papers.c.published_at)
        .where(
            papers.c.listed_on.is_(None),
            papers.c.published_at.is_not(None),
            papers.c.sources.like('%"arxiv"%'),
        )
        .order_by(papers.c.seq)
        .limit(5000)
    )
    now = datetime.now(UTC)
    change = (
        update(papers)
        .where(papers.c.seq == bindparam("row_seq"))
        .values(listed_on=bindparam("day"), listed_on_estimated=True, changed_at=now)
    )
    estimated = last = 0
    # In chunks by seq: a backfilled store may hold a million such papers.
    while found := conn.execute(waiting.where(papers.c.seq > last)).all():
        last = found[-1][0]
        rows = []
        for seq, published in found:
            try:
                rows.append({"row_seq": seq, "day": listing_day(published)})
            except (OverflowError, ValueError):
                continue  # a time at the very ends of the calendar: no day, as when parsed
        if rows:
            conn.execute(change, rows)
        estimated += len(rows)
    if estimated:
        log.info("estimated the listing day of %d arXiv API papers", estimated)


def _pending_list_per_session(conn: Connection) -> None:
    # Migration 11. PostgreSQL: the search index's GIN pending list limit moves from the index
    # to each writer's session (bridge/store/search_index.py, ``pending_list_setting``), so a
    # bulk import can write with a long list without locking searches out.
    if conn.dialect.name == "postgresql":
        from bridge.store.search_index import _pending_list_per_session as reset

        reset(conn)


def _listing_day_seq_index(conn: Connection) -> None:
    # Migration 12. PostgreSQL: an index on (listed_on, seq) (see schema.py). Without it,
    # min(seq) of a listing day is planned as a walk of the primary key from the oldest
    # paper, testing each one's day: a feed's first day at 1,000,000 papers took 0.9-1.7 s.
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            "CREATE INDEX IF NOT EXISTS ix_papers_listed_on_seq ON papers (listed_on, seq)"
        )


# Append only: a released step never changes, a new need is a new step.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _v1_core_tables,
    _delivery_ledger,
    _search_index,
    _search_votes,
    _slack_installations,
    _notices,
    _source_skips,
    _announcements,
    _term_expansions,
    _estimated_listing_days,
    _pending_list_per_session,
    _listing_day_seq_index,
]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    row = conn.execute(select(schema.schema_version.c.version)).first()
    return int(row[0]) if row else 0


def migrate(conn: Connection) -> int:
    """Bring the schema up to date inside the caller's transaction; returns the version."""
    if not inspect(conn).has_table("schema_version"):
        schema.schema_version.create(conn)
    version = current_version(conn)
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the database schema is version {version}, newer than this paperbridge "
            f"understands ({len(MIGRATIONS)}); upgrade paperbridge"
        )
    for number, step in enumerate(MIGRATIONS[version:], start=version + 1):
        log.info("applying schema migration %d (%s)", number, step.__name__)
        step(conn)
    if version != len(MIGRATIONS):
        conn.execute(schema.schema_version.delete())
        conn.execute(schema.schema_version.insert().values(version=len(MIGRATIONS)))
    return len(MIGRATIONS)
