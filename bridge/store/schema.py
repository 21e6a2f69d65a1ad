"""Table definitions, kept to portable SQLAlchemy Core types (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
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
    # listed_on came from arXiv's schedule, not a listing (bridge/sources/arxiv_schedule.py).
    Column("listed_on_estimated", Boolean, nullable=False, default=False, server_default=false()),
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
    # PostgreSQL: a listing day's first and last seq in one index seek each (a feed's walk
    # over listing days, ``SearchIndex.listing_seqs``). SQLite's index on listed_on holds the
    # rowid, which is seq, so it needs none (migration 12).
    Index("ix_papers_listed_on_seq", "listed_on", "seq").ddl_if(dialect="postgresql"),
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
    # Records the last successful poll skipped (unreadable or refused), and the first of them.
    Column("skipped_records", Integer, nullable=False, server_default="0"),
    Column("skip_problem", Text),
)

# Resumable long jobs (backfill): a named cursor.
progress = Table(
    "progress",
    metadata,
    Column("job", String(255), primary_key=True),
    Column("cursor", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# -- deliveries (bridge/ledger.py) ------------------------------------------------------------

# Where digests go: a chat channel, a webhook, stdout, a file. Addresses may be secret-ish
# (webhook URLs) and are never logged in full.
destinations = Table(
    "destinations",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("address", Text, nullable=False, default=""),
    Column("name", Text, nullable=False, default=""),
    Column("origin", String(32), nullable=False, default="api"),  # "config": synced from settings
    Column("paused", Boolean, nullable=False, default=False),
    Column("paused_reason", Text),
    Column("paused_at", UTCDateTime),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("retry_at", UTCDateTime),  # backoff: no send before this
    Column("last_error", Text),
    Column("last_error_at", UTCDateTime),
    Column("last_delivery_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
)

# A standing query delivered to one destination as a morning digest (or at once: "now").
digest_subscriptions = Table(
    "digest_subscriptions",
    metadata,
    Column("id", String(128), primary_key=True),
    Column(
        "destination_id",
        String(128),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("name", Text, nullable=False, default=""),
    Column("query", Text, nullable=False),
    Column("local_time", String(8), nullable=False, default="08:00"),
    Column("time_zone", String(64), nullable=False, default="UTC"),
    Column("all_quiet", Boolean, nullable=False, default=False),
    Column("origin", String(32), nullable=False, default="api"),
    # The scheduled time (UTC) of the last digest that completed.
    Column("last_digest_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    # "Top N of the day": the N most upvoted papers of the listing day that just completed,
    # instead of new matches (None: new matches). Added by migration 8.
    Column("top", Integer),
    Index("ix_digest_subscriptions_destination", "destination_id"),
)

# The ledger: one row per (destination, paper), pending -> claimed -> sent | failed.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "destination_id",
        String(128),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("arxiv_id", String(64), nullable=False),
    Column("paper_seq", Integer, nullable=False),
    Column(
        "subscription_id",
        String(128),
        ForeignKey("digest_subscriptions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("hits", Text, nullable=False, default="[]"),  # JSON [[field, text, start, end]]
    Column("state", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    # Re-queued after a claim expired: the earlier attempt may have been posted.
    Column("uncertain", Boolean, nullable=False, default=False),
    Column("claim_token", String(64)),
    Column("claimed_by", String(200)),  # kept after sending: which process sent it
    Column("claimed_at", UTCDateTime),
    Column("slot_at", UTCDateTime),  # the digest (scheduled time) that carried it
    Column("enqueued_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("last_error", Text),
    UniqueConstraint("destination_id", "arxiv_id", name="uq_deliveries_destination_paper"),
    Index("ix_deliveries_queue", "subscription_id", "state", "id"),
    Index("ix_deliveries_state_claimed_at", "state", "claimed_at"),
    Index("ix_deliveries_sent_at", "sent_at"),
)

# Notices about the bridge itself (bridge/notices.py): a source that stopped answering, one
# that is back, a paused destination. ``key`` says what a notice is about ("source-down:hf:
# <last success>"): one row per key and destination, so each is posted once however many
# processes notice the same thing. Sent like digests, under the destination's lease.
notices = Table(
    "notices",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(255), nullable=False),
    Column(
        "destination_id",
        String(128),
        ForeignKey("destinations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("kind", String(32), nullable=False),  # source-down, source-back, destination-paused
    Column("source", String(64)),
    # source-down: the source's last success (None: never); source-back: when it answered
    # again; destination-paused: when it was paused.
    Column("since", UTCDateTime),
    # destination-paused: the paused destination's id, how it is shown, why it was paused.
    Column("about_id", String(128), nullable=False, default=""),
    Column("about", Text, nullable=False, default=""),
    Column("detail", Text, nullable=False, default=""),
    Column("state", String(16), nullable=False, default="pending"),  # … sent, failed, dropped
    # Nothing more follows from it: a source-down notice once its outage is over (the "back"
    # notice made, or the notice dropped unsent); every other kind from the start.
    Column("closed", Boolean, nullable=False, default=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("uncertain", Boolean, nullable=False, default=False),
    Column("claim_token", String(64)),
    Column("claimed_by", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("last_error", Text),
    UniqueConstraint("key", "destination_id", name="uq_notices_key_destination"),
    Index("ix_notices_state", "state", "destination_id"),
    Index("ix_notices_open", "closed", "kind"),
)

# Leases that make a job run in one process at a time (polls, a destination's sends).
job_claims = Table(
    "job_claims",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("holder", String(200), nullable=False, default=""),
    Column("started_at", UTCDateTime, nullable=False),
    Column("lease_until", UTCDateTime, nullable=False),
    Column("done", Boolean, nullable=False, default=True),
)

# Slack workspaces the app was installed into through OAuth (adapters/slack/installations.py).
# The bot token is encrypted with SLACK_INSTALLATION_KEY; everything else is public ids.
slack_installations = Table(
    "slack_installations",
    metadata,
    Column("team_id", String(32), primary_key=True),
    Column("enterprise_id", String(32)),
    Column("team_name", Text, nullable=False, default=""),
    Column("app_id", String(32)),
    Column("bot_id", String(32)),
    Column("bot_user_id", String(32)),
    Column("bot_scopes", Text, nullable=False, default=""),
    Column("bot_token", Text, nullable=False),
    Column("installer_user_id", String(32)),
    Column("installed_at", UTCDateTime, nullable=False),
)

# OAuth "state" values handed out by /slack/install, each good for one callback.
slack_oauth_states = Table(
    "slack_oauth_states",
    metadata,
    Column("state", String(128), primary_key=True),
    Column("expires_at", UTCDateTime, nullable=False),
)


# The announcement log: one row each time a paper is announced (made news for digests), in the
# order it happened. A paper stored with ``announced`` true gets its row as it is stored; a
# paper stored quietly (backfill, a plain import) gets one later, when ``import --announce``
# announces it. The ledger's intake walks this log by ``id`` (not papers by ``seq``), so a
# paper announced long after it was stored is still taken in. Rows are written only in
# transactions that store papers (under ``locking.lock_papers``). Added by migration 8.
announcements = Table(
    "announcements",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("paper_seq", Integer, nullable=False, unique=True),
    Column("announced_at", UTCDateTime, nullable=False),
)


# What the archive defines (bridge/store/expansions.py): acronyms with their long forms, and
# open compounds with their closed forms, with how many papers write each. Migration 9.
#   kind 'acronym':  short = "OOD" (key "ood"), long = "out-of-distribution"; papers: papers
#                    defining it so; closed_papers unused (0)
#   kind 'compound': short = "dataset", long = "data set"; papers: papers writing it open,
#                    closed_papers: papers writing it closed
term_expansions = Table(
    "term_expansions",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("short_key", String(200), primary_key=True),
    Column("long_key", String(400), primary_key=True),
    Column("short_text", Text, nullable=False),
    Column("long_text", Text, nullable=False),
    Column("papers", Integer, nullable=False, default=0),
    Column("closed_papers", Integer, nullable=False, default=0),
)


# The search index's tables (bridge/store/search_index.py says what each holds).
search_compounds = Table(
    "search_compounds",
    metadata,
    Column("joined", String(255), primary_key=True),
    Column("parts", Text, primary_key=True),  # encoded part tokens separated by spaces
)

# Upvotes of the papers that have any, keyed by seq: ranking looks up a block of 100 papers'
# upvotes, which in this small table are a few cached pages instead of 100 scattered rows of
# the wide papers table. Kept by Store.add_papers with the index.
search_votes = Table(
    "search_votes",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("upvotes", Integer, nullable=False),
)

search_index_state = Table(
    "search_index_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
