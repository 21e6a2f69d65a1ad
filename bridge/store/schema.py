"""Table definitions, kept to portable SQLAlchemy Core types (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        # SQLite hands back naive values; they were stored as UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, nullable=False),
)

papers = Table(
    "papers",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("arxiv_id", String(64), nullable=False, unique=True),
    Column("version", Integer),
    Column("title", Text, nullable=False),
    Column("abstract", Text, nullable=False, default=""),
    Column("authors", Text, nullable=False, default="[]"),  # JSON list
    Column("published_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    Column("listed_on", Date),
    Column("sources", Text, nullable=False, default="[]"),  # JSON list: hf, arxiv
    Column("categories", Text, nullable=False, default="[]"),  # JSON list
    Column("primary_category", String(64)),
    Column("comment", Text),
    Column("journal_ref", Text),
    Column("doi", Text),
    Column("pdf_url", Text),
    Column("upvotes", Integer),
    Column("num_comments", Integer),
    Column("github_repo", Text),
    Column("github_stars", Integer),
    Column("project_page", Text),
    Column("ai_summary", Text),
    Column("ai_keywords", Text, nullable=False, default="[]"),  # JSON list
    Column("thumbnail", Text),
    Column("organization", Text),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("revised_at", UTCDateTime),
    Column("announced", Boolean, nullable=False),
    Index("ix_papers_listed_on", "listed_on"),
    Index("ix_papers_announced_seq", "announced", "seq"),
    Index("ix_papers_changed_at", "changed_at"),
)

# Conditional-GET validators per URL, written only after what a response said is stored.
fetch_validators = Table(
    "fetch_validators",
    metadata,
    Column("url", String(2048), primary_key=True),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Per source: the last listing day read completely, for catch-up after downtime; health.
source_state = Table(
    "source_state",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("caught_up_to", Date),
    Column("last_success_at", UTCDateTime),
    Column("last_attempt_at", UTCDateTime),
    Column("last_error", Text),
    Column("last_error_at", UTCDateTime),
    Column("consecutive_failures", Integer, nullable=False, default=0),
)

# Resumable long jobs (backfill): a named cursor.
progress = Table(
    "progress",
    metadata,
    Column("job", String(255), primary_key=True),
    Column("cursor", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)
