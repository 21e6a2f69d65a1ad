"""The ledger's SQL: destinations, digest subscriptions, delivery rows, notices and job leases.

Each method is one short transaction, safe when several processes share the database:

- a batch of rows is claimed with one ``UPDATE … WHERE id IN (SELECT … LIMIT n FOR UPDATE SKIP
  LOCKED) RETURNING``. PostgreSQL skips rows another transaction is claiming; SQLite (which
  drops ``FOR UPDATE``) runs the statement under its single write lock, taken before the
  statement reads, so it needs no ``BEGIN IMMEDIATE`` of its own;
- settling a claim (sent, retry, failed) names the claim token, so a process whose claim expired
  and was taken over changes nothing;
- a lease (``job_claims``) is a conditional UPDATE of one row: the second of two racing
  processes finds the condition false and gets ``False``;
- the intake cursor moves with a compare-and-set in the same transaction as the rows it covers.

``bridge.ledger`` holds the rules; this module holds only the statements.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    and_,
    bindparam,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from bridge.delivery import (
    Delivery,
    DeliveryState,
    Destination,
    DigestSubscription,
    Notice,
    NoticeKind,
)
from bridge.models import Hit, StoredPaper
from bridge.store import Store, _to_stored, schema

log = logging.getLogger(__name__)

INTAKE_JOB = "ledger:intake"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired

_DEST_STATE = (
    "paused",
    "paused_reason",
    "paused_at",
    "consecutive_failures",
    "retry_at",
    "last_error",
    "last_error_at",
    "last_delivery_at",
    "created_at",
)


# SQLite takes one writer at a time; threads of one process queue on this lock instead of
# polling the database's lock with busy_timeout's growing sleeps.
_WRITERS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
_WRITERS_LOCK = threading.Lock()


def _writer_lock(engine: Engine) -> threading.Lock:
    with _WRITERS_LOCK:
        lock = _WRITERS.get(engine)
        if lock is None:
            lock = _WRITERS[engine] = threading.Lock()
        return lock


@dataclass(frozen=True, slots=True)
class RunStart:
    """What ``begin_run`` found: whether the lease was taken, orphaned claims re-queued, and
    the subscription and destination read under the lease."""

    taken: bool
    orphans: int = 0
    subscription: DigestSubscription | None = None
    destination: Destination | None = None


@dataclass(frozen=True, slots=True)
class NoticeRow:
    """A notice to add for one destination (``bridge.notices`` decides which are due); ``key``
    says what it is about, and a key is posted to a destination once."""

    key: str
    destination_id: str
    kind: NoticeKind
    source: str = ""
    since: datetime | None = None
    about_id: str = ""
    about: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class OpenNotice:
    """A source-down notice whose outage was not yet seen to end."""

    id: int
    key: str
    destination_id: str
    source: str
    since: datetime | None
    state: str


@dataclass(frozen=True, slots=True)
class NoticeRun:
    """What ``begin_notices`` found under the destination's lease: the destination and its
    pending notices (orphaned claims re-queued first)."""

    taken: bool
    orphans: int = 0
    destination: Destination | None = None
    notices: tuple[Notice, ...] = ()


@dataclass(frozen=True, slots=True)
class Announced:
    """One entry of the announcement log: its id (the intake's cursor), when, and the paper."""

    id: int
    announced_at: datetime
    stored: StoredPaper


class _CursorMoved(Exception):
    """Another process advanced the intake cursor first; roll back and read it again."""


def _hits_json(hits: Sequence[Hit]) -> str:
    return json.dumps([[h.field, h.text, h.start, h.end] for h in hits], ensure_ascii=False)


def _to_delivery(row: Any) -> Delivery:
    hits = tuple(Hit(*item) for item in json.loads(row.hits or "[]"))
    state: DeliveryState = row.state
    return Delivery(
        id=row.id,
        destination_id=row.destination_id,
        arxiv_id=row.arxiv_id,
        paper_seq=row.paper_seq,
        subscription_id=row.subscription_id,
        state=state,
        attempts=row.attempts,
        uncertain=bool(row.uncertain),
        hits=hits,
        claim_token=row.claim_token,
        claimed_by=row.claimed_by,
        claimed_at=row.claimed_at,
        slot_at=row.slot_at,
        enqueued_at=row.enqueued_at,
        sent_at=row.sent_at,
        last_error=row.last_error,
    )


def _to_destination(row: Any) -> Destination:
    return Destination(
        id=row.id,
        kind=row.kind,
        address=row.address,
        name=row.name,
        origin=row.origin,
        paused=bool(row.paused),
        paused_reason=row.paused_reason,
        paused_at=row.paused_at,
        consecutive_failures=row.consecutive_failures or 0,
        retry_at=row.retry_at,
        last_error=row.last_error,
        last_error_at=row.last_error_at,
        last_delivery_at=row.last_delivery_at,
        created_at=row.created_at,
    )


def _to_digest(row: Any) -> DigestSubscription:
    return DigestSubscription(
        id=row.id,
        destination_id=row.destination_id,
        query=row.query,
        local_time=row.local_time,
        time_zone=row.time_zone,
        all_quiet=bool(row.all_quiet),
        name=row.name,
        origin=row.origin,
        last_digest_at=row.last_digest_at,
        created_at=row.created_at,
        top=row.top,
    )


class LedgerStore:
    """Statements over the ledger tables of one ``Store``."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        self.postgres = self.engine.dialect.name == "postgresql"
        self._writer = None if self.postgres else _writer_lock(self.engine)
        self._build_statements()

    def _build_statements(self) -> None:
        # The statements run for every message are built once: constructing a Core statement
        # costs more than SQLite executing it.
        rows, dests, digests, jobs = (
            schema.deliveries,
            schema.destinations,
            schema.digest_subscriptions,
            schema.job_claims,
        )
        pick = (
            select(rows.c.id)
            .where(rows.c.subscription_id == bindparam("p_sub"), rows.c.state == "pending")
            .order_by(rows.c.id)
            .limit(bindparam("p_limit"))
            .with_for_update(skip_locked=True)
        )
        if self.postgres:
            # A materialized CTE runs the locking pick exactly once; inside IN (…) the planner
            # may rescan it per row and claim more than ``limit`` rows. The state is checked
            # again because a row may have changed while this statement waited for its lock.
            picked = pick.cte("picked").prefix_with("MATERIALIZED")
            which = and_(rows.c.id == picked.c.id, rows.c.state == "pending")
        else:
            # One statement under SQLite's write lock: nothing changes between pick and update.
            # (Repeating the state test here would make SQLite scan the state index instead.)
            which = rows.c.id.in_(pick.scalar_subquery())
        self._claim = (
            update(rows)
            .where(which)
            .values(
                state="claimed",
                claim_token=bindparam("p_token"),
                claimed_by=bindparam("p_holder"),
                claimed_at=bindparam("p_now"),
                attempts=rows.c.attempts + 1,
                slot_at=bindparam("p_slot"),
            )
            .returning(*rows.c)
        )
        self._mark_sent = (
            update(rows)
            .where(rows.c.claim_token == bindparam("p_token"), rows.c.state == "claimed")
            .values(state="sent", sent_at=bindparam("p_now"), claim_token=None, last_error=None)
        )
        self._dest_ok = (
            update(dests)
            .where(dests.c.id == bindparam("p_dest"))
            .values(last_delivery_at=bindparam("p_now"), consecutive_failures=0, retry_at=None)
        )
        self._delivered = (
            update(dests)
            .where(dests.c.id == bindparam("p_dest"))
            .values(last_delivery_at=bindparam("p_at"))
        )
        self._orphans = (
            update(rows)
            .where(rows.c.destination_id == bindparam("p_dest"), rows.c.state == "claimed")
            .values(
                state="pending",
                uncertain=True,
                claim_token=None,
                last_error="claim expired before the send was confirmed",
            )
        )
        self._finish = (
            update(digests)
            .where(
                digests.c.id == bindparam("p_sub"),
                or_(
                    digests.c.last_digest_at.is_(None),
                    digests.c.last_digest_at < bindparam("p_after"),
                ),
            )
            .values(last_digest_at=bindparam("p_slot"))
        )
        self._seed_lease = (
            self._insert(jobs)
            .values(
                name=bindparam("p_name"),
                holder="",
                started_at=EPOCH,
                lease_until=EPOCH,
                done=True,
            )
            .on_conflict_do_nothing(index_elements=["name"])
        )
        free = [
            jobs.c.name == bindparam("p_name"),
            or_(jobs.c.done.is_(True), jobs.c.lease_until < bindparam("p_now")),
        ]
        take = dict(
            holder=bindparam("p_holder"),
            started_at=bindparam("p_start"),
            lease_until=bindparam("p_until"),
            done=False,
        )
        self._take = update(jobs).where(*free).values(**take)
        self._take_spaced = (
            update(jobs).where(*free, jobs.c.started_at <= bindparam("p_last_start")).values(**take)
        )
        mine = [
            jobs.c.name == bindparam("p_name"),
            jobs.c.holder == bindparam("p_holder"),
            jobs.c.done.is_(False),
        ]
        self._renew_lease = update(jobs).where(*mine).values(lease_until=bindparam("p_until"))
        self._release_lease = (
            update(jobs).where(*mine).values(done=True, lease_until=bindparam("p_at"))
        )
        self._one_digest = select(digests).where(digests.c.id == bindparam("p_id"))
        self._one_destination = select(dests).where(dests.c.id == bindparam("p_id"))

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (queued behind this process's other SQLite writers)."""
        if self._writer is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._writer, self.engine.begin() as conn:
            yield conn

    # -- helpers ------------------------------------------------------------------------------

    def _insert(self, table: Table) -> Any:
        # INSERT … ON CONFLICT exists on both databases; only the construct's module differs.
        if self.postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            return pg_insert(table)
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)

    def _upsert(
        self, conn: Connection, table: Table, values: dict[str, Any], keep: set[str]
    ) -> None:
        """Insert, or update every column except the key and ``keep`` (state owned elsewhere)."""
        stmt = self._insert(table).values(**values)
        changes = {k: stmt.excluded[k] for k in values if k != "id" and k not in keep}
        conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=changes))

    # -- destinations ---------------------------------------------------------------------------

    def save_destination(self, dest: Destination, now: datetime) -> None:
        """Add a destination, or update its kind, address and name (its state is kept)."""
        values = {
            "id": dest.id,
            "kind": dest.kind,
            "address": dest.address,
            "name": dest.name,
            "origin": dest.origin,
            "paused": dest.paused,
            "paused_reason": dest.paused_reason,
            "paused_at": dest.paused_at,
            "consecutive_failures": dest.consecutive_failures,
            "retry_at": dest.retry_at,
            "last_error": dest.last_error,
            "last_error_at": dest.last_error_at,
            "last_delivery_at": dest.last_delivery_at,
            "created_at": dest.created_at or now,
        }
        with self._write() as conn:
            self._upsert(conn, schema.destinations, values, keep=set(_DEST_STATE))

    def get_destination(self, destination_id: str) -> Destination | None:
        with self.engine.connect() as conn:
            row = conn.execute(self._one_destination, {"p_id": destination_id}).first()
        return _to_destination(row) if row else None

    def list_destinations(self) -> list[Destination]:
        table = schema.destinations
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.id)).all()
        return [_to_destination(row) for row in rows]

    def delete_destination(self, destination_id: str) -> bool:
        """Forget a destination with its digests and its ledger rows."""
        with self._write() as conn:
            # Explicit deletes: SQLite enforces ON DELETE CASCADE only with foreign_keys=ON.
            conn.execute(
                delete(schema.deliveries).where(
                    schema.deliveries.c.destination_id == destination_id
                )
            )
            conn.execute(
                delete(schema.notices).where(schema.notices.c.destination_id == destination_id)
            )
            conn.execute(
                delete(schema.digest_subscriptions).where(
                    schema.digest_subscriptions.c.destination_id == destination_id
                )
            )
            result = conn.execute(
                delete(schema.destinations).where(schema.destinations.c.id == destination_id)
            )
        return bool(result.rowcount)

    def pause_destination(self, destination_id: str, reason: str, now: datetime) -> None:
        table = schema.destinations
        with self._write() as conn:
            conn.execute(
                update(table)
                .where(table.c.id == destination_id)
                .values(paused=True, paused_reason=reason[:2000], paused_at=now)
            )

    def resume_destination(self, destination_id: str, now: datetime) -> int:
        """Unpause; rows that failed permanently are queued again. Returns how many."""
        dest, rows = schema.destinations, schema.deliveries
        with self._write() as conn:
            conn.execute(
                update(dest)
                .where(dest.c.id == destination_id)
                .values(
                    paused=False,
                    paused_reason=None,
                    paused_at=None,
                    consecutive_failures=0,
                    retry_at=None,
                )
            )
            result = conn.execute(
                update(rows)
                .where(rows.c.destination_id == destination_id, rows.c.state == "failed")
                .values(state="pending", claim_token=None)
            )
        return int(result.rowcount or 0)

    def record_success(self, destination_id: str, now: datetime) -> None:
        with self._write() as conn:
            self._record_success(conn, destination_id, now)

    def _record_success(self, conn: Connection, destination_id: str, now: datetime) -> None:
        conn.execute(self._dest_ok, {"p_dest": destination_id, "p_now": now})

    def record_failure(
        self,
        destination_id: str,
        error: str,
        now: datetime,
        *,
        retry_at: datetime | None = None,
        pause: bool = False,
    ) -> None:
        with self._write() as conn:
            self._record_failure(conn, destination_id, error, now, retry_at=retry_at, pause=pause)

    def _record_failure(
        self,
        conn: Connection,
        destination_id: str,
        error: str,
        now: datetime,
        *,
        retry_at: datetime | None,
        pause: bool,
    ) -> None:
        table = schema.destinations
        values: dict[str, Any] = dict(
            last_error=error[:2000],
            last_error_at=now,
            consecutive_failures=table.c.consecutive_failures + 1,
            retry_at=retry_at,
        )
        if pause:
            values.update(paused=True, paused_reason=error[:2000], paused_at=now)
        conn.execute(update(table).where(table.c.id == destination_id).values(**values))

    # -- digest subscriptions -------------------------------------------------------------------

    def save_digest(self, sub: DigestSubscription, now: datetime) -> None:
        """Add a digest subscription or update its query, time and options (its history is
        kept: ``last_digest_at`` and ``created_at`` never go back)."""
        values = {
            "id": sub.id,
            "destination_id": sub.destination_id,
            "name": sub.name,
            "query": sub.query,
            "local_time": sub.local_time,
            "time_zone": sub.time_zone,
            "all_quiet": sub.all_quiet,
            "origin": sub.origin,
            "last_digest_at": sub.last_digest_at,
            "created_at": sub.created_at or now,
            "top": sub.top,
        }
        with self._write() as conn:
            self._upsert(
                conn, schema.digest_subscriptions, values, keep={"last_digest_at", "created_at"}
            )

    def get_digest(self, subscription_id: str) -> DigestSubscription | None:
        with self.engine.connect() as conn:
            row = conn.execute(self._one_digest, {"p_id": subscription_id}).first()
        return _to_digest(row) if row else None

    def list_digests(self) -> list[DigestSubscription]:
        table = schema.digest_subscriptions
        with self.engine.connect() as conn:
            rows = conn.execute(select(table).order_by(table.c.id)).all()
        return [_to_digest(row) for row in rows]

    def digests_of(self, destination_id: str) -> list[DigestSubscription]:
        """One destination's digest subscriptions, oldest first."""
        table = schema.digest_subscriptions
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table)
                .where(table.c.destination_id == destination_id)
                .order_by(table.c.created_at, table.c.id)
            ).all()
        return [_to_digest(row) for row in rows]

    def delete_digest(self, subscription_id: str) -> bool:
        with self._write() as conn:
            conn.execute(
                delete(schema.deliveries).where(
                    schema.deliveries.c.subscription_id == subscription_id
                )
            )
            conn.execute(
                delete(schema.progress).where(
                    schema.progress.c.job == self._top_job(subscription_id)
                )
            )
            result = conn.execute(
                delete(schema.digest_subscriptions).where(
                    schema.digest_subscriptions.c.id == subscription_id
                )
            )
        return bool(result.rowcount)

    def finish_digest(self, subscription_id: str, slot: datetime) -> bool:
        """Record the digest scheduled at ``slot`` as done; False if a later one already was."""
        with self._write() as conn:
            return self._finish_digest(conn, subscription_id, slot)

    def _finish_digest(self, conn: Connection, subscription_id: str, slot: datetime) -> bool:
        result = conn.execute(
            self._finish, {"p_sub": subscription_id, "p_after": slot, "p_slot": slot}
        )
        return bool(result.rowcount)

    # -- intake ---------------------------------------------------------------------------------

    def intake_cursor(self) -> int:
        """The id of the last announcement (``schema.announcements``) the ledger has taken in
        (created by the migrations)."""
        table = schema.progress
        with self._write() as conn:
            row = conn.execute(select(table.c.cursor).where(table.c.job == INTAKE_JOB)).first()
            if row is not None:
                return int(row[0])
            # Someone removed it: start from now rather than deliver the whole history.
            high = conn.execute(select(func.max(schema.announcements.c.id))).scalar() or 0
            stmt = self._insert(table).values(
                job=INTAKE_JOB, cursor=str(high), updated_at=datetime.now(UTC)
            )
            conn.execute(stmt.on_conflict_do_nothing(index_elements=["job"]))
        return self.intake_cursor()

    def safe_high_water(self, lock_timeout_ms: int = 5000) -> int | None:
        """The highest announcement id below which every announcement is committed; None if
        busy.

        On PostgreSQL a sequence number is taken when a row is inserted, not when it commits, so
        id 101 can become visible after id 102. Announcements are written only by transactions
        that store papers, each holding ``SHARE ROW EXCLUSIVE`` on papers
        (``locking.lock_papers``); taking ``SHARE`` on the papers table waits for them to end
        (and briefly holds new ones back), so the maximum read under it has no uncommitted id
        below it. SQLite has one writer at a time, so any committed maximum is safe.
        """
        try:
            with self._write() as conn:
                if self.postgres:
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
                    conn.exec_driver_sql("LOCK TABLE papers IN SHARE MODE")
                high = conn.execute(select(func.max(schema.announcements.c.id))).scalar()
                return int(high or 0)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
                return None
            raise

    def announced_after(self, cursor: int, upto: int, limit: int) -> list[Announced]:
        """Up to ``limit`` announcements after ``cursor`` up to ``upto``, oldest first, with
        their papers."""
        papers, log_ = schema.papers, schema.announcements
        query = (
            select(log_.c.id.label("announcement_id"), log_.c.announced_at, papers)
            .join(papers, papers.c.seq == log_.c.paper_seq)
            .where(log_.c.id > cursor, log_.c.id <= upto)
            .order_by(log_.c.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [
                Announced(row.announcement_id, row.announced_at, _to_stored(row))
                for row in conn.execute(query)
            ]

    def enqueue(
        self, rows: Sequence[dict[str, Any]], old_cursor: int, new_cursor: int, now: datetime
    ) -> bool:
        """Insert ledger rows (a row already there is kept) and move the cursor from
        ``old_cursor`` to ``new_cursor``, atomically. False if the cursor had moved already."""
        progress, table = schema.progress, schema.deliveries
        try:
            with self._write() as conn:
                # The cursor first: on PostgreSQL its row lock orders concurrent intakes.
                moved = conn.execute(
                    update(progress)
                    .where(progress.c.job == INTAKE_JOB, progress.c.cursor == str(old_cursor))
                    .values(cursor=str(new_cursor), updated_at=now)
                )
                if moved.rowcount != 1:
                    raise _CursorMoved
                if rows:
                    stmt = self._insert(table).on_conflict_do_nothing(
                        index_elements=["destination_id", "arxiv_id"]
                    )
                    conn.execute(stmt, [dict(row, enqueued_at=now) for row in rows])
        except _CursorMoved:
            return False
        return True

    # -- top of the day -------------------------------------------------------------------------

    @staticmethod
    def _top_job(subscription_id: str) -> str:
        return f"digest-top:{subscription_id}"

    def top_day(self, subscription_id: str) -> date | None:
        """The last listing day a "top N" digest queued, or None."""
        table = schema.progress
        with self.engine.connect() as conn:
            value = conn.execute(
                select(table.c.cursor).where(table.c.job == self._top_job(subscription_id))
            ).scalar()
        return date.fromisoformat(value) if value else None

    def delivered_here(self, destination_id: str, arxiv_ids: Sequence[str]) -> set[str]:
        """Which of ``arxiv_ids`` the destination has a ledger row for (queued or sent)."""
        table = schema.deliveries
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(table.c.arxiv_id).where(
                        table.c.destination_id == destination_id,
                        table.c.arxiv_id.in_(list(arxiv_ids)),
                    )
                ).scalars()
            )

    def enqueue_top(
        self,
        rows: Sequence[dict[str, Any]],
        subscription_id: str,
        old_day: date | None,
        new_day: date,
        now: datetime,
    ) -> bool:
        """Insert a top digest's rows (one already there is kept) and record ``new_day`` as
        queued, atomically, if the recorded day is still ``old_day``; False otherwise."""
        progress, table = schema.progress, schema.deliveries
        job = self._top_job(subscription_id)
        try:
            with self._write() as conn:
                if old_day is None:
                    # RETURNING, not rowcount: psycopg gives -1 for an INSERT … ON CONFLICT.
                    moved = conn.execute(
                        self._insert(progress)
                        .values(job=job, cursor=new_day.isoformat(), updated_at=now)
                        .on_conflict_do_nothing(index_elements=["job"])
                        .returning(progress.c.job)
                    ).first()
                else:
                    moved = conn.execute(
                        update(progress)
                        .where(progress.c.job == job, progress.c.cursor == old_day.isoformat())
                        .values(cursor=new_day.isoformat(), updated_at=now)
                        .returning(progress.c.job)
                    ).first()
                if moved is None:
                    raise _CursorMoved
                if rows:
                    stmt = self._insert(table).on_conflict_do_nothing(
                        index_elements=["destination_id", "arxiv_id"]
                    )
                    conn.execute(stmt, [dict(row, enqueued_at=now) for row in rows])
        except _CursorMoved:
            return False
        return True

    @staticmethod
    def ledger_row(
        destination_id: str, subscription_id: str, stored: StoredPaper, hits: Sequence[Hit]
    ) -> dict[str, Any]:
        return {
            "destination_id": destination_id,
            "subscription_id": subscription_id,
            "arxiv_id": stored.paper.arxiv_id,
            "paper_seq": stored.seq,
            "hits": _hits_json(hits),
            "state": "pending",
            "attempts": 0,
            "uncertain": False,
        }

    # -- claims -----------------------------------------------------------------------------------

    def claim_batch(
        self,
        subscription_id: str,
        limit: int,
        holder: str,
        now: datetime,
        slot: datetime | None = None,
    ) -> list[Delivery]:
        """Claim up to ``limit`` pending rows of a subscription, oldest first."""
        with self._write() as conn:
            return self._claim_batch(conn, subscription_id, limit, holder, slot, now)

    def _claim_batch(
        self,
        conn: Connection,
        subscription_id: str,
        limit: int,
        holder: str,
        slot: datetime | None,
        now: datetime,
    ) -> list[Delivery]:
        params = {
            "p_sub": subscription_id,
            "p_limit": limit,
            "p_token": uuid.uuid4().hex,
            "p_holder": holder,
            "p_now": now,
            "p_slot": slot,
        }
        rows = conn.execute(self._claim, params).all()
        return sorted((_to_delivery(row) for row in rows), key=lambda d: d.id)

    def settle_sent(
        self,
        token: str,
        destination_id: str,
        now: datetime,
        *,
        touch: bool = True,
        renew: tuple[str, str, datetime] | None = None,
        claim_next: tuple[str, int, str, datetime | None] | None = None,
    ) -> list[Delivery]:
        """The claimed batch was delivered. In the same transaction: ``touch`` records the
        success on the destination (clears its failures); ``renew`` = (lease, holder, until)
        extends the run's lease; ``claim_next`` = (subscription, limit, holder, slot) claims
        the next batch, which is returned."""
        with self._write() as conn:
            conn.execute(self._mark_sent, {"p_token": token, "p_now": now})
            if touch:
                self._record_success(conn, destination_id, now)
            if renew is not None:
                self._renew(conn, *renew)
            if claim_next is None:
                return []
            return self._claim_batch(conn, *claim_next, now)

    def settle_retry(
        self,
        token: str,
        destination_id: str,
        error: str,
        now: datetime,
        retry_at: datetime,
        *,
        uncertain: bool,
    ) -> int:
        """Not delivered this time: back to pending, the destination waits until ``retry_at``."""
        table = schema.deliveries
        values: dict[str, Any] = dict(state="pending", claim_token=None, last_error=error[:2000])
        if uncertain:
            values["uncertain"] = True
        with self._write() as conn:
            result = conn.execute(
                update(table)
                .where(table.c.claim_token == token, table.c.state == "claimed")
                .values(**values)
            )
            self._record_failure(conn, destination_id, error, now, retry_at=retry_at, pause=False)
        return int(result.rowcount or 0)

    def settle_failed(self, token: str, destination_id: str, reason: str, now: datetime) -> int:
        """Will not be delivered without a human: rows failed, destination paused."""
        table = schema.deliveries
        with self._write() as conn:
            result = conn.execute(
                update(table)
                .where(table.c.claim_token == token, table.c.state == "claimed")
                .values(state="failed", claim_token=None, last_error=reason[:2000])
            )
            self._record_failure(conn, destination_id, reason, now, retry_at=None, pause=True)
        return int(result.rowcount or 0)

    def recover(
        self, now: datetime, expired_before: datetime, is_dead: Callable[[str], bool]
    ) -> int:
        """Claims whose process is gone (or that are older than the claim timeout) go back to
        pending, marked uncertain: their message may or may not have been posted."""
        table = schema.deliveries
        with self.engine.connect() as conn:
            holders = [
                h
                for (h,) in conn.execute(
                    select(table.c.claimed_by).where(table.c.state == "claimed").distinct()
                )
                if h
            ]
        if not holders:
            return 0  # the common case, without a write
        dead = [h for h in holders if is_dead(h)]
        stale = table.c.claimed_at < expired_before
        condition = or_(stale, table.c.claimed_by.in_(dead)) if dead else stale
        with self._write() as conn:
            result = conn.execute(
                update(table)
                .where(table.c.state == "claimed", condition)
                .values(
                    state="pending",
                    uncertain=True,
                    claim_token=None,
                    last_error="claim expired before the send was confirmed",
                )
            )
        return int(result.rowcount or 0)

    def begin_run(
        self,
        destination_id: str,
        subscription_id: str,
        holder: str,
        now: datetime,
        until: datetime,
    ) -> RunStart:
        """Take the destination's lease and, having it, re-queue its orphaned claims (claims are
        only made under the lease, so any left are a dead run's) and read the subscription
        and the destination as they are now."""
        with self._write() as conn:
            if not self._take_lease(conn, f"destination:{destination_id}", holder, now, until):
                return RunStart(False)
            orphans = self._reclaim_orphans(conn, destination_id)
            sub = conn.execute(self._one_digest, {"p_id": subscription_id}).first()
            dest = conn.execute(self._one_destination, {"p_id": destination_id}).first()
        return RunStart(
            True,
            orphans,
            _to_digest(sub) if sub else None,
            _to_destination(dest) if dest else None,
        )

    def end_run(
        self,
        destination_id: str,
        holder: str,
        now: datetime,
        *,
        finish: tuple[str, datetime] | None = None,
        delivered_at: datetime | None = None,
    ) -> None:
        """Release the destination's lease. In the same transaction: ``finish`` =
        (subscription, slot) records that digest as done; ``delivered_at`` is the time of the
        run's last message."""
        with self._write() as conn:
            if finish is not None:
                self._finish_digest(conn, *finish)
            if delivered_at is not None:
                conn.execute(self._delivered, {"p_dest": destination_id, "p_at": delivered_at})
            self._release(conn, f"destination:{destination_id}", holder, now)

    def _reclaim_orphans(self, conn: Connection, destination_id: str) -> int:
        result = conn.execute(self._orphans, {"p_dest": destination_id})
        return int(result.rowcount or 0)

    # -- notices ----------------------------------------------------------------------------------

    def add_notices(self, rows: Sequence[NoticeRow], now: datetime) -> int:
        """Add the notices not added yet (a key is added to a destination once, whoever tries
        and however often). Returns how many were new."""
        if not rows:
            return 0
        table = schema.notices
        keys = sorted({row.key for row in rows})
        with self.engine.connect() as conn:
            known = {
                (key, dest)
                for key, dest in conn.execute(
                    select(table.c.key, table.c.destination_id).where(table.c.key.in_(keys))
                )
            }
        new: dict[tuple[str, str], NoticeRow] = {}
        for row in rows:
            pair = (row.key, row.destination_id)
            if pair not in known:
                new.setdefault(pair, row)  # the operator's channel may be asked twice
        if not new:
            return 0  # the usual sweep while an outage lasts: nothing written
        with self._write() as conn:
            added = conn.execute(
                self._insert(table)
                .on_conflict_do_nothing(index_elements=["key", "destination_id"])
                .returning(table.c.id),
                [self._notice_values(row, now) for row in new.values()],
            ).all()
        return len(added)

    @staticmethod
    def _notice_values(row: NoticeRow, now: datetime) -> dict[str, Any]:
        return {
            "key": row.key,
            "destination_id": row.destination_id,
            "kind": row.kind,
            "source": row.source or None,
            "since": row.since,
            "about_id": row.about_id,
            "about": row.about,
            "detail": row.detail[:2000],
            "state": "pending",
            # Only a source-down notice has a sequel (its "back" notice).
            "closed": row.kind != "source-down",
            "attempts": 0,
            "uncertain": False,
            "created_at": now,
        }

    def open_source_notices(self) -> list[OpenNotice]:
        """Source-down notices whose outage was not yet seen to end."""
        table = schema.notices
        query = select(
            table.c.id,
            table.c.key,
            table.c.destination_id,
            table.c.source,
            table.c.since,
            table.c.state,
        ).where(table.c.closed.is_(False), table.c.kind == "source-down")
        with self.engine.connect() as conn:
            return [
                OpenNotice(
                    row.id, row.key, row.destination_id, row.source or "", row.since, row.state
                )
                for row in conn.execute(query)
            ]

    def close_source_notice(
        self, notice: OpenNotice, back: NoticeRow | None, now: datetime
    ) -> bool:
        """The outage ``notice`` was about is over: close it (an unsent one is dropped) and,
        if it was sent, add ``back``; one transaction, and only if nobody changed it meanwhile
        (a notice being sent is closed after it is settled). False if it had changed."""
        table = schema.notices
        state = "dropped" if notice.state == "pending" else notice.state
        with self._write() as conn:
            result = conn.execute(
                update(table)
                .where(
                    table.c.id == notice.id,
                    table.c.closed.is_(False),
                    table.c.state == notice.state,
                )
                .values(closed=True, state=state)
            )
            if result.rowcount != 1:
                return False
            if back is not None:
                conn.execute(
                    self._insert(table)
                    .values(**self._notice_values(back, now))
                    .on_conflict_do_nothing(index_elements=["key", "destination_id"])
                )
        return True

    def notice_destinations(self) -> set[str]:
        """Destinations with notices to send (or claimed by a run that may have died)."""
        table = schema.notices
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(table.c.destination_id)
                    .where(table.c.state.in_(("pending", "claimed")))
                    .distinct()
                ).scalars()
            )

    def begin_notices(
        self,
        destination_id: str,
        holder: str,
        now: datetime,
        until: datetime,
        *,
        default_zone: str = "UTC",
    ) -> NoticeRun:
        """Take the destination's lease (the one its digest runs take: one message in flight
        per destination) and, having it, re-queue notices a dead run had claimed, and read the
        destination and its pending notices, in the zone of its first digest (or
        ``default_zone`` for a destination without digests, such as the operator's)."""
        table, digests = schema.notices, schema.digest_subscriptions
        with self._write() as conn:
            if not self._take_lease(conn, f"destination:{destination_id}", holder, now, until):
                return NoticeRun(False)
            orphans = conn.execute(
                update(table)
                .where(table.c.destination_id == destination_id, table.c.state == "claimed")
                .values(state="pending", uncertain=True, claim_token=None)
            ).rowcount
            dest = conn.execute(self._one_destination, {"p_id": destination_id}).first()
            zone = conn.execute(
                select(digests.c.time_zone)
                .where(digests.c.destination_id == destination_id)
                .order_by(digests.c.created_at, digests.c.id)
                .limit(1)
            ).scalar()
            rows = conn.execute(
                select(table)
                .where(table.c.destination_id == destination_id, table.c.state == "pending")
                .order_by(table.c.id)
            ).all()
        notices = tuple(
            Notice(
                id=row.id,
                destination_id=row.destination_id,
                kind=row.kind,
                source=row.source or "",
                since=row.since,
                about_id=row.about_id,
                about=row.about,
                detail=row.detail,
                time_zone=zone or default_zone,
                uncertain=bool(row.uncertain),
            )
            for row in rows
        )
        return NoticeRun(True, int(orphans or 0), _to_destination(dest) if dest else None, notices)

    def claim_notice(self, notice_id: int, holder: str, now: datetime) -> str | None:
        """Claim a pending notice for sending; its claim token, or None if it is not pending
        any more (closed meanwhile because its outage ended)."""
        table = schema.notices
        token = uuid.uuid4().hex
        with self._write() as conn:
            result = conn.execute(
                update(table)
                .where(table.c.id == notice_id, table.c.state == "pending")
                .values(
                    state="claimed",
                    claim_token=token,
                    claimed_by=holder,
                    attempts=table.c.attempts + 1,
                )
            )
        return token if result.rowcount == 1 else None

    def settle_notice(
        self,
        token: str,
        destination_id: str,
        now: datetime,
        *,
        error: str | None = None,
        retry_at: datetime | None = None,
        uncertain: bool = False,
    ) -> None:
        """Settle a claimed notice and record it on its destination, in one transaction:
        sent (``error`` None); back to pending with the destination waiting until
        ``retry_at``; or failed with the destination paused (``error`` without ``retry_at``),
        as a digest's message would be."""
        table = schema.notices
        mine = [table.c.claim_token == token, table.c.state == "claimed"]
        with self._write() as conn:
            if error is None:
                conn.execute(
                    update(table)
                    .where(*mine)
                    .values(state="sent", sent_at=now, claim_token=None, last_error=None)
                )
                self._record_success(conn, destination_id, now)
                return
            values: dict[str, Any] = dict(
                state="pending" if retry_at is not None else "failed",
                claim_token=None,
                last_error=error[:2000],
            )
            if uncertain:
                values["uncertain"] = True
            conn.execute(update(table).where(*mine).values(**values))
            self._record_failure(
                conn, destination_id, error, now, retry_at=retry_at, pause=retry_at is None
            )

    def drop_notices(self, destination_id: str, reason: str) -> int:
        """Give up on a destination's pending notices (its output cannot post them)."""
        table = schema.notices
        with self._write() as conn:
            result = conn.execute(
                update(table)
                .where(table.c.destination_id == destination_id, table.c.state == "pending")
                .values(state="dropped", last_error=reason[:2000])
            )
        return int(result.rowcount or 0)

    def notices(self, destination_id: str | None = None) -> list[dict[str, Any]]:
        """Every notice (of one destination), oldest first, as plain rows: for status pages
        and tests."""
        table = schema.notices
        query = select(table).order_by(table.c.id)
        if destination_id is not None:
            query = query.where(table.c.destination_id == destination_id)
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    # -- leases -----------------------------------------------------------------------------------

    def try_lease(
        self,
        name: str,
        holder: str,
        now: datetime,
        until: datetime,
        *,
        min_gap: timedelta | None = None,
    ) -> bool:
        """Take the lease ``name`` unless someone holds it; with ``min_gap``, also unless it was
        last taken less than ``min_gap`` ago (a poll that just ran elsewhere)."""
        with self._write() as conn:
            return self._take_lease(conn, name, holder, now, until, min_gap)

    def _take_lease(
        self,
        conn: Connection,
        name: str,
        holder: str,
        now: datetime,
        until: datetime,
        min_gap: timedelta | None = None,
    ) -> bool:
        conn.execute(self._seed_lease, {"p_name": name})
        params = {
            "p_name": name,
            "p_now": now,
            "p_holder": holder,
            "p_start": now,
            "p_until": until,
        }
        if min_gap is None:
            result = conn.execute(self._take, params)
        else:
            result = conn.execute(self._take_spaced, dict(params, p_last_start=now - min_gap))
        return result.rowcount == 1

    def renew_lease(self, name: str, holder: str, until: datetime) -> bool:
        with self._write() as conn:
            return self._renew(conn, name, holder, until)

    def _renew(self, conn: Connection, name: str, holder: str, until: datetime) -> bool:
        result = conn.execute(
            self._renew_lease, {"p_name": name, "p_holder": holder, "p_until": until}
        )
        return result.rowcount == 1

    def release_lease(self, name: str, holder: str, now: datetime) -> None:
        with self._write() as conn:
            self._release(conn, name, holder, now)

    def _release(self, conn: Connection, name: str, holder: str, now: datetime) -> None:
        conn.execute(self._release_lease, {"p_name": name, "p_holder": holder, "p_at": now})

    def expire_dead_leases(self, is_dead: Callable[[str], bool]) -> int:
        table = schema.job_claims
        with self._write() as conn:
            holders = [
                h
                for (h,) in conn.execute(
                    select(table.c.holder).where(table.c.done.is_(False)).distinct()
                )
                if h
            ]
            dead = [h for h in holders if is_dead(h)]
            if not dead:
                return 0
            result = conn.execute(
                update(table)
                .where(table.c.done.is_(False), table.c.holder.in_(dead))
                .values(lease_until=EPOCH)
            )
        return int(result.rowcount or 0)

    # -- reading ----------------------------------------------------------------------------------

    def pending_counts(self) -> dict[str, int]:
        """Pending rows per subscription."""
        table = schema.deliveries
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.subscription_id, func.count())
                .where(table.c.state == "pending")
                .group_by(table.c.subscription_id)
            ).all()
        return {sub: int(n) for sub, n in rows}

    def pending_count(self, subscription_id: str) -> int:
        """Pending rows of one subscription."""
        table = schema.deliveries
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        table.c.subscription_id == subscription_id, table.c.state == "pending"
                    )
                ).scalar_one()
            )

    def last_sent(self) -> dict[str, datetime]:
        """When each subscription last had a paper delivered."""
        table = schema.deliveries
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(table.c.subscription_id, func.max(table.c.sent_at))
                .where(table.c.state == "sent")
                .group_by(table.c.subscription_id)
            ).all()
        return {sub: sent for sub, sent in rows if sent is not None}

    def sent_in_slot(self, subscription_id: str, slot: datetime) -> int:
        table = schema.deliveries
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        table.c.subscription_id == subscription_id,
                        table.c.state == "sent",
                        table.c.slot_at == slot,
                    )
                ).scalar_one()
            )

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows per destination and state, plus ``uncertain`` (re-sent after an expired claim)."""
        table = schema.deliveries
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for dest, state, n in conn.execute(
                select(table.c.destination_id, table.c.state, func.count()).group_by(
                    table.c.destination_id, table.c.state
                )
            ):
                out.setdefault(dest, {})[state] = int(n)
            for dest, n in conn.execute(
                select(table.c.destination_id, func.count())
                .where(table.c.uncertain.is_(True))
                .group_by(table.c.destination_id)
            ):
                out.setdefault(dest, {})["uncertain"] = int(n)
        return out

    def rows(
        self,
        *,
        destination_id: str | None = None,
        states: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[Delivery]:
        table = schema.deliveries
        query = select(table).order_by(table.c.id)
        if destination_id is not None:
            query = query.where(table.c.destination_id == destination_id)
        if states is not None:
            query = query.where(table.c.state.in_(list(states)))
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            return [_to_delivery(row) for row in conn.execute(query)]

    def recent_sent(self, limit: int = 10) -> list[tuple[Delivery, str]]:
        """The last rows sent, newest first, with the paper's title."""
        table, papers = schema.deliveries, schema.papers
        query = (
            select(table, papers.c.title.label("paper_title"))
            .join(papers, papers.c.seq == table.c.paper_seq)
            .where(table.c.state == "sent")
            .order_by(table.c.sent_at.desc(), table.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(_to_delivery(row), row.paper_title) for row in conn.execute(query)]

    def oldest_pending_enqueued_at(self) -> datetime | None:
        table = schema.deliveries
        with self.engine.connect() as conn:
            value = conn.execute(
                select(func.min(table.c.enqueued_at)).where(table.c.state == "pending")
            ).scalar()
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, str):  # SQLite aggregates lose the column type
            parsed = datetime.fromisoformat(value)
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        return None
