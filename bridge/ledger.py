"""Deliveries: matches go into a ledger, each destination gets its digest, exactly once.

The ledger is a table in the store with one row per (destination, paper)::

    pending ──claim──► claimed ──sent──► sent
       ▲                  │ └──permanent failure──► failed ──resume──► pending
       │                  │
       └──retryable failure; expired claim (marked uncertain)

**Intake.** Announcements are read from the store's announcement log
(``schema.announcements``: one entry per paper announced, in the order it was announced) past a
cursor, matched against every "new matches" digest subscription (``bridge.query.Percolator``) and
inserted as ``pending`` rows; the unique key (destination, paper) keeps a paper matched by two
subscriptions of one destination to one row (the first subscription by id carries it), and a
paper is posted to a destination once, however many listings or digests bring it. Rows and
cursor move in one transaction, so a crash loses nothing and a re-run adds nothing; papers
announced by any process or command (poll, import --announce, including papers stored quietly
long before) are taken in. A subscription gets the papers announced after it was created;
upgrading a database does not deliver its history. On PostgreSQL the cursor's upper bound is
read under a brief ``SHARE`` lock on ``papers`` (announcements are written only under the
papers' writer lock), so an id taken but not yet committed is never skipped.

**Top of the day.** A subscription with ``top = N`` takes no matches: when its digest is due,
the N most upvoted papers of the listing day that just completed are queued for it (those its
destination was already sent are passed over), and the day is recorded with them in one
transaction, so each listing day is queued once per subscription; the run then sends them like
any digest.

**Sending.** A digest run first takes its destination's lease (``job_claims``), so a destination
has at most one run, hence one message, in flight across every process. Having the lease, it
re-queues any rows still claimed for that destination (claims are only made under the lease, so
they are a dead run's) and reads the subscription and destination afresh. It then claims up to
``publisher.max_papers_per_message`` rows (``claimed``: claim token, process, time, digest
slot), sends them as one message and settles the claim by its token: ``sent`` (in the same
transaction the next batch is claimed); back to ``pending`` with the destination backing off
(retryable failure: exponential backoff with jitter, or the server's ``Retry-After``); or
``failed`` with the destination paused (permanent failure: channel gone, app removed,
forbidden). Paused destinations show in ``/healthz`` (``bridge.status.delivery_health``) and
``paperbridge status``; ``paperbridge resume`` re-queues their failed rows.

**The uncertain window.** A process can die after a message was posted and before its rows were
marked ``sent``; nothing can tell whether the post happened. Those rows are re-sent, marked
``uncertain``: at least once, so nothing is lost; and since a destination has at most one message
in flight, a crash repeats at most **one message per destination** (the batch it was sending).
The run's lease, and with it the claim, is taken over when its process is known dead (same host
and PID gone, or an earlier run of this very process: a restart resumes at once) or after
``delivery.claim_timeout_seconds`` (a process on another host). A send that times out is
treated the same way (it may have been posted). Everything else is delivered exactly once.

**Digests.** A subscription's digest runs at its local time (``bridge.jobs``,
``bridge.scheduler.due_slot``); ``last_digest_at`` records the scheduled time of the last digest
that finished, so a morning missed while the bridge was down (or interrupted, or failing) is due
again, several missed mornings coalesced into one digest with everything pending. A digest with
nothing new posts nothing, unless the subscription asks for an "all quiet" note. Subscriptions
with time "now" are sent right after each intake.

**Notices.** Besides papers, a destination may be told about the bridge itself: a source that
stopped answering and is back, or (the operator's destination) another destination paused
(``bridge.notices`` says which are due). Each sweep adds the notices due, once per destination
and key (a unique key in the store, the same in every process), and posts them like a digest's
messages: under the destination's lease, claimed by token, settled as sent, retried with the
destination's backoff, or failed with the destination paused; a run that died with a notice
claimed leaves it to be posted again, marked as possibly repeated.

**Several processes.** Polls take a lease with a minimum gap (one poll per rhythm), digest runs
take the destination's lease, and row claims skip rows others hold (``FOR UPDATE SKIP LOCKED``
on PostgreSQL; SQLite runs each claim under its single write lock). Every process sweeps; the
first to get a lease does the work and the others move on.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bridge import metrics
from bridge.config import DeliverySettings, Settings
from bridge.delivery import (
    Delivery,
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    Outage,
    SendOutcome,
    destination_id_for,
)
from bridge.errors import PermanentPublishError, PublishError
from bridge.health import enabled_sources, source_outages
from bridge.models import StoredPaper
from bridge.notices import NoticeRules
from bridge.processes import pid_namespace, process_running
from bridge.publisher import NoticePublisher, Publisher
from bridge.query import Percolator
from bridge.scheduler import due_slot
from bridge.store import Store
from bridge.store.ledger import Announced, LedgerStore
from bridge.store.listing import ListingSort

log = logging.getLogger(__name__)

# Papers read per intake transaction.
INTAKE_BATCH = 1000
# Papers of a listing day read at a time by a "top N of the day" digest.
TOP_PAGE = 100


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_holder() -> str:
    """This process's name in claims and leases: host, PID and a per-run nonce. Where the
    system says which PID namespace the process is in (Linux), the host carries it too
    ("host/namespace"): containers sharing a host name (host networking, a pod's
    containers) each number their processes on their own."""
    namespace = pid_namespace()
    host = socket.gethostname() + (f"/{namespace}" if namespace else "")
    return f"{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder: str, me: str) -> bool:
    """True when ``holder`` is certainly gone: a process on this host whose PID no longer
    runs (gone, or a zombie), or an earlier run of a process with our own PID (a restarted
    container is PID 1 again, in a new PID namespace). Other hosts, and other PID namespaces
    on this one, cannot be checked: their claims expire by time."""
    try:
        host, pid_text, nonce = holder.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    my_host, my_pid, my_nonce = me.rsplit(":", 2)
    name, _, namespace = host.partition("/")
    my_name, _, my_namespace = my_host.partition("/")
    if name != my_name:
        return False
    if pid == int(my_pid):
        return nonce != my_nonce
    if namespace != my_namespace:
        return False  # that PID names another process here, or none
    return not process_running(pid)


@dataclass(slots=True)
class _Run:
    """One digest run's bookkeeping, so each message costs as few statements as possible."""

    renewed_at: datetime
    messages: int = 0
    delivered_at: datetime | None = None


@dataclass(slots=True)
class SweepReport:
    recovered: int = 0
    enqueued: int = 0
    # subscription id -> what its digest run did ("sent", "quiet", "empty", "busy", …)
    digests: dict[str, str] = field(default_factory=dict)
    # destination id -> what posting its notices did ("sent", "busy", "retry", …)
    notices: dict[str, str] = field(default_factory=dict)


class Ledger:
    """Takes matches in, sends digests, settles outcomes. One per process.

    Args:
        store: the open store.
        publishers: kind -> Publisher ("stdout", "file"; Slack and Discord add theirs).
        settings: the ``[delivery]`` settings.
        clock: returns the current aware UTC time; tests pass a fake one.
        holder: this process's name in claims (default: host:pid:nonce).
    """

    def __init__(
        self,
        store: Store,
        publishers: Mapping[str, Publisher],
        settings: DeliverySettings | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        holder: str | None = None,
        rng: Callable[[], float] = random.random,
        outages: Callable[[datetime], tuple[Outage, ...]] | None = None,
        notices: NoticeRules | None = None,
    ) -> None:
        self.store = store
        self.db = LedgerStore(store)
        self.publishers = dict(publishers)
        self.settings = settings or DeliverySettings()
        self.clock = clock
        self.holder = holder or new_holder()
        self._rng = rng
        # Which sources are down at a given time (bridge.health); digests mention them.
        self._outages = outages
        # Which notices about the bridge itself are due (bridge.notices); None: no notices.
        self.notices = notices
        self._warned_kinds: set[str] = set()
        # Papers by seq, read once per sweep however many destinations get them.
        self._papers: dict[int, StoredPaper] = {}
        # asyncio primitives belong to one event loop; made again if the loop changes.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._destination_locks: dict[str, asyncio.Lock] = {}
        self._semaphore = asyncio.Semaphore(self.settings.concurrency)

    def _primitives(self) -> tuple[dict[str, asyncio.Lock], asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._destination_locks = {}
            self._semaphore = asyncio.Semaphore(self.settings.concurrency)
        return self._destination_locks, self._semaphore

    @property
    def claim_timeout(self) -> timedelta:
        return timedelta(seconds=self.settings.claim_timeout_seconds)

    @property
    def send_timeout(self) -> float:
        # A claim must outlive any send, or a slow send would be taken over and sent twice.
        return min(self.settings.send_timeout_seconds, self.settings.claim_timeout_seconds / 2)

    def is_dead(self, holder: str) -> bool:
        """Whether the process named ``holder`` (in a claim or lease) is certainly gone."""
        return holder_is_dead(holder, self.holder)

    # -- recovery and intake --------------------------------------------------------------------

    async def recover(self) -> int:
        """Put expired claims back to pending (uncertain) and free dead processes' leases."""
        now = self.clock()
        recovered = await asyncio.to_thread(
            self.db.recover, now, now - self.claim_timeout, self.is_dead
        )
        await asyncio.to_thread(self.db.expire_dead_leases, self.is_dead)
        if recovered:
            log.warning(
                "ledger: %d deliveries were claimed by a process that stopped before confirming;"
                " they will be sent again (possibly a second time)",
                recovered,
            )
        return recovered

    async def intake(self) -> int:
        """Match announced papers not yet taken in against every digest subscription and add the
        ledger rows. Returns how many (destination, paper) rows were offered."""
        return await asyncio.to_thread(self._intake)

    def _intake(self) -> int:
        high = self.db.safe_high_water()
        if high is None:
            log.info("ledger: papers table busy; intake waits for the next sweep")
            return 0
        offered = 0
        percolator: Percolator | None = None
        subs: dict[str, DigestSubscription] = {}
        cursor = self.db.intake_cursor()
        while cursor < high:
            entries = self.db.announced_after(cursor, high, INTAKE_BATCH)
            new_cursor = entries[-1].id if len(entries) == INTAKE_BATCH else high
            rows: list[dict[str, Any]] = []
            if entries:
                if percolator is None:
                    # "Top N of the day" digests take no new matches (see _enqueue_top).
                    subs = {sub.id: sub for sub in self.db.list_digests() if sub.top is None}
                    # Compiled with the acronyms the archive defines now: a percolator
                    # lives for one intake, so each intake sees the table as it has grown.
                    percolator = Percolator(
                        (sub.as_subscription() for sub in subs.values()),
                        self.store.expansion_table(),
                    )
                rows = self._rows_for(percolator, subs, entries)
            now = self.clock()
            if self.db.enqueue(rows, cursor, new_cursor, now):
                offered += len(rows)
                cursor = new_cursor
            else:
                cursor = self.db.intake_cursor()  # another process took this range
        if offered:
            log.info("ledger: %d new deliveries queued", offered)
        return offered

    def _rows_for(
        self,
        percolator: Percolator,
        subs: Mapping[str, DigestSubscription],
        entries: Sequence[Announced],
    ) -> list[dict[str, Any]]:
        by_id = {entry.stored.paper.arxiv_id: entry for entry in entries}
        rows: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for match in percolator.match(entry.stored.paper for entry in entries):
            sub = subs[match.subscription_id]
            entry = by_id[match.arxiv_id]
            stored = entry.stored
            # News from before the subscription existed. When the paper was announced counts,
            # not when it was stored: an archive announced today is today's news.
            if sub.created_at is not None and entry.announced_at < sub.created_at:
                continue
            key = (sub.destination_id, match.arxiv_id)
            if key in seen:
                continue
            seen.add(key)
            rows.append(LedgerStore.ledger_row(sub.destination_id, sub.id, stored, match.hits))
            metrics.MATCHES.inc(subscription=sub.id)
        return rows

    # -- digests ----------------------------------------------------------------------------------

    async def sweep(self, *, force: bool = False) -> SweepReport:
        """Recover, take new matches in, and run every digest that is due (a missed morning, an
        unfinished or failed one, a "now" subscription with pending papers). ``force``: send
        every pending paper now, whatever the schedule."""
        report = SweepReport()
        report.recovered = await self.recover()
        report.enqueued = await self.intake()
        now = self.clock()
        subs, destinations, pending = await asyncio.to_thread(self._overview)
        due: list[str] = []
        for sub in subs:
            dest = destinations.get(sub.destination_id)
            if dest is None or _waiting(dest, now):
                continue
            if force or sub.immediate:
                # A top digest queues its day when it runs: nothing is pending before that.
                if pending.get(sub.id) or (force and sub.top is not None):
                    due.append(sub.id)
            elif due_slot(sub, now) is not None:
                due.append(sub.id)
        owner = {sub.id: sub.destination_id for sub in subs}
        self._papers.clear()  # papers change (merged facts): a sweep reads them afresh
        # Notices wait, as digests do, for a destination to take messages and an output to
        # post them.
        told = [
            dest_id
            for dest_id in await self._notices_due(now, subs, destinations)
            if not _waiting(destinations[dest_id], now) and self._publisher(destinations[dest_id])
        ]
        # Read once for the sweep, not once for each of perhaps a thousand destinations.
        down = await self._down() if due else ()
        # Notices first: a destination's lock is taken in this order, so a notice that a
        # source is down goes before the digest that says so too.
        results = await asyncio.gather(
            *(self.run_notices(dest_id) for dest_id in told),
            *(
                self.run_digest(sub_id, force=force, destination_id=owner[sub_id], outages=down)
                for sub_id in due
            ),
        )
        report.notices = dict(zip(told, results[: len(told)], strict=True))
        report.digests = dict(zip(due, results[len(told) :], strict=True))
        return report

    async def _down(self) -> tuple[Outage, ...]:
        """The sources down now, for the digest's header; a failure to tell is no reason to
        hold the digest back."""
        if self._outages is None:
            return ()
        try:
            return await asyncio.to_thread(self._outages, self.clock())
        except Exception:
            log.warning("ledger: cannot tell which sources are down", exc_info=True)
            return ()

    def _overview(
        self,
    ) -> tuple[list[DigestSubscription], dict[str, Destination], dict[str, int]]:
        subs = self.db.list_digests()
        destinations = {d.id: d for d in self.db.list_destinations()}
        return subs, destinations, self.db.pending_counts()

    async def run_digest(
        self,
        subscription_id: str,
        *,
        force: bool = False,
        destination_id: str | None = None,
        outages: tuple[Outage, ...] | None = None,
    ) -> str:
        """Run one subscription's digest if it is due; returns what happened: "sent", "quiet",
        "empty", "not-due", "busy", "paused", "backoff", "no-publisher", "retry", "permanent",
        "gone". ``destination_id`` and ``outages`` (the sources down) save reads when the
        caller knows them."""
        if destination_id is None:
            known = await asyncio.to_thread(self.db.get_digest, subscription_id)
            if known is None:
                return "gone"
            destination_id = known.destination_id
        locks, semaphore = self._primitives()
        lock = locks.setdefault(destination_id, asyncio.Lock())
        async with lock, semaphore:
            now = self.clock()
            # One transaction: the destination's lease, its orphaned claims re-queued, and the
            # subscription and destination as they are now (another process may have just
            # finished this digest).
            run = await asyncio.to_thread(
                self.db.begin_run,
                destination_id,
                subscription_id,
                self.holder,
                now,
                now + self.claim_timeout,
            )
            if not run.taken:
                return "busy"
            if run.orphans:
                log.warning(
                    "ledger: %d deliveries to destination %s were claimed by a run that stopped"
                    " before confirming; sending them again (possibly a second time)",
                    run.orphans,
                    destination_id,
                )
            finish: list[tuple[str, datetime]] = []
            state = _Run(renewed_at=now)
            try:
                if run.subscription is None or run.destination is None:
                    return "gone"
                if run.subscription.destination_id != destination_id:
                    return "busy"  # moved meanwhile; the next sweep runs it
                return await self._run_leased(
                    run.subscription, run.destination, force, finish, state, outages
                )
            finally:
                await asyncio.to_thread(
                    self.db.end_run,
                    destination_id,
                    self.holder,
                    self.clock(),
                    finish=finish[0] if finish else None,
                    delivered_at=state.delivered_at,
                )

    async def _run_leased(
        self,
        sub: DigestSubscription,
        dest: Destination,
        force: bool,
        finish: list[tuple[str, datetime]],
        state: _Run,
        outages: tuple[Outage, ...] | None,
    ) -> str:
        now = self.clock()
        if dest.paused:
            return "paused"
        if dest.retry_at is not None and dest.retry_at > now:
            return "backoff"
        slot: datetime | None = None
        if not (force or sub.immediate):
            slot = due_slot(sub, now)
            if slot is None:
                return "not-due"
        publisher = self._publisher(dest)
        if publisher is None:
            return "no-publisher"
        if sub.top is not None:
            # Under the destination's lease: the day's papers are queued, then sent below.
            await asyncio.to_thread(self._enqueue_top, sub, slot or now)
        # Only an all-quiet note needs to know whether an earlier try of this slot sent papers.
        earlier = 0
        if slot is not None and sub.all_quiet:
            earlier = await asyncio.to_thread(self.db.sent_in_slot, sub.id, slot)
        limit = max(1, publisher.max_papers_per_message)
        claim = (sub.id, limit, slot)
        batch = await asyncio.to_thread(
            self.db.claim_batch, sub.id, limit, self.holder, self.clock(), slot
        )
        if outages is None:
            outages = await self._down()
        run = DigestRun(dest.id, sub.id, slot, pending=len(batch), outages=outages)
        if len(batch) == limit:
            # Only a full first batch can have more behind it; publishers show the total.
            run.pending += await asyncio.to_thread(self.db.pending_count, sub.id)
        sent = 0
        while batch:
            # A full batch may have more behind it: confirming it claims the next one too.
            outcome, batch_after = await self._send(
                publisher, dest, sub, batch, claim if len(batch) == limit else None, state, run
            )
            if outcome.status != "sent":
                return outcome.status
            sent += len(batch)
            batch = batch_after
        if slot is None:
            return "sent" if sent else "empty"
        result = "sent" if sent or earlier else "empty"
        if result == "empty" and sub.all_quiet:
            outcome, _ = await self._send(publisher, dest, sub, [], None, state, run)
            if outcome.status != "sent":
                return outcome.status
            result = "quiet"
        finish.append((sub.id, slot))  # recorded with the lease's release, in one transaction
        return result

    # -- top of the day ---------------------------------------------------------------------------

    def _enqueue_top(self, sub: DigestSubscription, at: datetime) -> int:
        """Queue the ``sub.top`` most upvoted papers of the listing day that completed before
        ``at`` (the digest's slot) in its time zone, unless that day was queued already;
        returns how many. Papers its destination already has are passed over (a paper is
        posted to a place once), the next ones taken instead; ``sub.query``, when given,
        narrows the day's papers. The work is one listing day's papers at most."""
        assert sub.top is not None
        today = at.astimezone(ZoneInfo(sub.time_zone)).date()
        day, _after = self.store.listings.days_around(today, today)
        if day is None:
            return 0
        done = self.db.top_day(sub.id)
        if done is not None and done >= day:
            return 0
        percolator = Percolator([sub.as_subscription()]) if sub.query.strip() else None
        rows: list[dict[str, Any]] = []
        offset = 0
        while len(rows) < sub.top:
            page = self.store.listings.in_period(
                day, day, sort=ListingSort.UPVOTES, limit=TOP_PAGE, offset=offset
            )
            if not page:
                break
            offset += len(page)
            has = self.db.delivered_here(sub.destination_id, [p.paper.arxiv_id for p in page])
            fresh = [stored for stored in page if stored.paper.arxiv_id not in has]
            hits: dict[str, tuple[Any, ...]] = {}
            if percolator is not None:
                hits = {m.arxiv_id: m.hits for m in percolator.match(p.paper for p in fresh)}
                fresh = [stored for stored in fresh if stored.paper.arxiv_id in hits]
            for stored in fresh[: sub.top - len(rows)]:
                rows.append(
                    LedgerStore.ledger_row(
                        sub.destination_id, sub.id, stored, hits.get(stored.paper.arxiv_id, ())
                    )
                )
        if not self.db.enqueue_top(rows, sub.id, done, day, self.clock()):
            return 0  # another process queued this day meanwhile
        log.info("ledger: top %d of %s queued for %s", len(rows), day, sub.name or sub.id)
        return len(rows)

    # -- notices ----------------------------------------------------------------------------------

    async def _notices_due(
        self,
        now: datetime,
        subs: Sequence[DigestSubscription],
        destinations: Mapping[str, Destination],
    ) -> list[str]:
        """Add the notices due now and close those whose outage ended; returns the
        destinations with notices to post. A failure to tell holds nothing else back."""
        if self.notices is None:
            return []
        try:
            return await asyncio.to_thread(self._plan_notices, now, subs, destinations)
        except Exception:
            log.warning("ledger: cannot work out which notices are due", exc_info=True)
            return []

    def _plan_notices(
        self,
        now: datetime,
        subs: Sequence[DigestSubscription],
        destinations: Mapping[str, Destination],
    ) -> list[str]:
        assert self.notices is not None
        states = {state.source: state for state in self.store.all_source_states()}
        still_open = self.db.open_source_notices()
        conditions = self.notices.conditions(states, now, {n.source for n in still_open})
        for notice, back in self.notices.ended(still_open, conditions):
            self.db.close_source_notice(notice, back, now)
        added = self.db.add_notices(self.notices.due(conditions, destinations, subs), now)
        if added:
            log.info("ledger: %d notices queued", added)
        return sorted(d for d in self.db.notice_destinations() if d in destinations)

    async def run_notices(self, destination_id: str) -> str:
        """Post a destination's pending notices, one message each; returns what happened:
        "sent", "busy", "paused", "backoff", "no-publisher", "gone", "retry", "permanent"."""
        locks, semaphore = self._primitives()
        lock = locks.setdefault(destination_id, asyncio.Lock())
        async with lock, semaphore:
            now = self.clock()
            run = await asyncio.to_thread(
                functools.partial(
                    self.db.begin_notices,
                    destination_id,
                    self.holder,
                    now,
                    now + self.claim_timeout,
                    default_zone=self.notices.settings.time_zone if self.notices else "UTC",
                )
            )
            if not run.taken:
                return "busy"
            try:
                if run.orphans:
                    log.warning(
                        "ledger: %d notices to destination %s were claimed by a run that stopped"
                        " before confirming; sending them again (possibly a second time)",
                        run.orphans,
                        destination_id,
                    )
                if run.destination is None:
                    return "gone"
                return await self._post_notices(run.destination, run.notices)
            finally:
                await asyncio.to_thread(
                    self.db.release_lease,
                    f"destination:{destination_id}",
                    self.holder,
                    self.clock(),
                )

    async def _post_notices(self, dest: Destination, notices: Sequence[Notice]) -> str:
        now = self.clock()
        if dest.paused:
            return "paused"
        if dest.retry_at is not None and dest.retry_at > now:
            return "backoff"
        publisher = self._publisher(dest)
        if publisher is None:
            return "no-publisher"
        if not isinstance(publisher, NoticePublisher):
            reason = f"the {dest.kind} output cannot post notices"
            dropped = await asyncio.to_thread(self.db.drop_notices, dest.id, reason)
            log.warning("ledger: %s; %d notices to %s dropped", reason, dropped, dest.label)
            return "no-publisher"
        for notice in notices:
            token = await asyncio.to_thread(
                self.db.claim_notice, notice.id, self.holder, self.clock()
            )
            if token is None:
                continue  # dropped meanwhile: its outage ended before it was posted
            outcome = await self._attempt(dest, publisher.send_notice(dest, notice))
            await asyncio.to_thread(self._settle_notice, dest, token, outcome)
            if outcome.status != "sent":
                return outcome.status
            log.info("ledger: %s notice posted to %s", notice.kind, dest.label)
        return "sent"

    def _settle_notice(self, dest: Destination, token: str, outcome: SendOutcome) -> None:
        now = self.clock()
        if outcome.status == "sent":
            self.db.settle_notice(token, dest.id, now)
            return
        if outcome.status == "permanent":
            log.error(
                "ledger: %s refuses deliveries permanently (%s); paused until resumed",
                dest.label,
                outcome.reason,
            )
            self.db.settle_notice(token, dest.id, now, error=outcome.reason)
            return
        failures = dest.consecutive_failures + 1
        delay = self.backoff(failures, outcome.retry_after)
        log.warning(
            "ledger: sending a notice to %s failed (%s); retry %d in %.0f s",
            dest.label,
            outcome.reason,
            failures,
            delay,
        )
        self.db.settle_notice(
            token,
            dest.id,
            now,
            error=outcome.reason,
            retry_at=now + timedelta(seconds=delay),
            uncertain=outcome.maybe_sent,
        )

    async def _attempt(self, dest: Destination, sending: Awaitable[SendOutcome]) -> SendOutcome:
        """One message's outcome, within the send timeout; whatever a publisher raises
        becomes an outcome (anything unexpected is logged as the bug it is, and retried)."""
        try:
            return await asyncio.wait_for(sending, self.send_timeout)
        except TimeoutError:
            return SendOutcome.retry(f"no answer within {self.send_timeout:g} s", maybe_sent=True)
        except PermanentPublishError as exc:
            return SendOutcome.permanent(str(exc))
        except PublishError as exc:
            return SendOutcome.retry(str(exc))
        except Exception as exc:
            log.exception("ledger: %s publisher crashed sending to %s", dest.kind, dest.label)
            return SendOutcome.retry(f"{exc.__class__.__name__}: {exc}")

    def _publisher(self, dest: Destination) -> Publisher | None:
        """The publisher for the destination's kind; None (said once per kind) when no output
        posts it in this process (a chat app not configured): its messages wait."""
        publisher = self.publishers.get(dest.kind)
        if publisher is None and dest.kind not in self._warned_kinds:
            self._warned_kinds.add(dest.kind)
            log.warning("ledger: no publisher for %s destinations; they wait", dest.kind)
        return publisher

    async def _items(self, batch: list[Delivery]) -> list[DigestItem]:
        wanted = [row.paper_seq for row in batch if row.paper_seq not in self._papers]
        if wanted:
            found = await asyncio.to_thread(self.store.get_papers_by_seq, wanted)
            if len(self._papers) > 10_000:
                self._papers.clear()
            self._papers.update(found)
        return [
            DigestItem(self._papers[row.paper_seq], row.match, row.uncertain)
            for row in batch
            if row.paper_seq in self._papers
        ]

    async def _send(
        self,
        publisher: Publisher,
        dest: Destination,
        sub: DigestSubscription,
        batch: list[Delivery],
        claim_next: tuple[str, int, datetime | None] | None,
        state: _Run,
        run: DigestRun,
    ) -> tuple[SendOutcome, list[Delivery]]:
        """Send one message (``batch`` empty: the all-quiet note) and settle its claim; when it
        was sent and ``claim_next`` is given, the next batch is claimed in the same
        transaction and returned."""
        items = await self._items(batch) if batch else []
        outcome = await self._attempt(
            dest, publisher.send_digest(dest, items, subscription=sub, run=run)
        )
        if outcome.status == "sent":
            run.messages += 1
        metrics.DELIVERIES.inc(output=dest.kind, outcome=outcome.status)
        if outcome.status != "sent":
            metrics.ERRORS.inc(where=f"deliver:{dest.kind}")
        following = await asyncio.to_thread(self._settle, dest, batch, outcome, claim_next, state)
        return outcome, following

    def _settle(
        self,
        dest: Destination,
        batch: list[Delivery],
        outcome: SendOutcome,
        claim_next: tuple[str, int, datetime | None] | None = None,
        state: _Run | None = None,
    ) -> list[Delivery]:
        now = self.clock()
        token = batch[0].claim_token if batch else None
        if outcome.status == "sent":
            state = state or _Run(renewed_at=now)
            first = state.messages == 0
            state.messages += 1
            state.delivered_at = now
            if not token:
                self.db.record_success(dest.id, now)
                return []
            # The first message clears the destination's failures; a long run extends its
            # lease now and then; the next batch is claimed in the same transaction.
            renew = None
            if now - state.renewed_at > self.claim_timeout / 3:
                renew = (f"destination:{dest.id}", self.holder, now + self.claim_timeout)
                state.renewed_at = now
            nxt = None
            if claim_next is not None:
                sub_id, limit, slot = claim_next
                nxt = (sub_id, limit, self.holder, slot)
            return self.db.settle_sent(
                token, dest.id, now, touch=first, renew=renew, claim_next=nxt
            )
        if outcome.status == "permanent":
            log.error(
                "ledger: %s refuses deliveries permanently (%s); paused until resumed",
                dest.label,
                outcome.reason,
            )
            if token:
                self.db.settle_failed(token, dest.id, outcome.reason, now)
            else:
                self.db.record_failure(dest.id, outcome.reason, now, pause=True)
            return []
        failures = dest.consecutive_failures + 1
        delay = self.backoff(failures, outcome.retry_after)
        retry_at = now + timedelta(seconds=delay)
        log.warning(
            "ledger: sending to %s failed (%s); retry %d in %.0f s",
            dest.label,
            outcome.reason,
            failures,
            delay,
        )
        if token:
            self.db.settle_retry(
                token, dest.id, outcome.reason, now, retry_at, uncertain=outcome.maybe_sent
            )
        else:
            self.db.record_failure(dest.id, outcome.reason, now, retry_at=retry_at)
        return []

    def backoff(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failure in a row: the server's
        ``Retry-After`` when it gave one, else exponential with ±20 % jitter; both capped."""
        cap = self.settings.backoff_max_seconds
        if retry_after is not None:
            return max(0.0, min(retry_after, cap))
        base = self.settings.backoff_base_seconds * 2 ** min(failures - 1, 30)
        return min(cap, base) * (0.8 + 0.4 * self._rng())

    # -- administration ---------------------------------------------------------------------------

    async def resume(self, destination_id: str) -> int:
        """Unpause a destination; its failed rows are queued again. Returns how many."""
        return await asyncio.to_thread(self.db.resume_destination, destination_id, self.clock())


def _waiting(dest: Destination, now: datetime) -> bool:
    """Paused, or backing off after a failure: nothing is sent to it now."""
    return dest.paused or (dest.retry_at is not None and dest.retry_at > now)


# -- wiring ---------------------------------------------------------------------------------------


def build_ledger(
    store: Store,
    settings: Settings,
    publishers: Mapping[str, Publisher] | None = None,
    *,
    clock: Callable[[], datetime] = utcnow,
) -> Ledger:
    """The ledger with the built-in publishers (stdout, file) plus ``publishers``."""
    from bridge.publisher import builtin_publishers

    chosen: dict[str, Publisher] = dict(builtin_publishers())
    chosen.update(publishers or {})
    started = clock()

    def outages(now: datetime) -> tuple[Outage, ...]:
        states = {state.source: state for state in store.all_source_states()}
        return source_outages(settings, enabled_sources(settings), states, now, started)

    return Ledger(
        store,
        chosen,
        settings.delivery,
        clock=clock,
        outages=outages,
        notices=NoticeRules(settings, started),
    )


def sync_configured(ledger: Ledger, settings: Settings, *, prune: bool = True) -> None:
    """Make the store's config-declared digests and destinations match ``[[digests]]`` and
    ``[alerts] destination``.

    Digests added at run time (chat apps) are left alone. Their queries were checked when the
    settings were loaded. ``prune=False`` only adds and updates, removing nothing: for a
    command that is not where digests are managed (`import --announce`, perhaps run without
    the service's --config), which must not delete the service's digests.
    """
    now = ledger.clock()
    db = ledger.db
    wanted: set[str] = set()
    used: set[str] = set()
    if settings.alerts.destination:
        kind, _, address = settings.alerts.destination.partition(":")
        dest_id = destination_id_for(kind, address)
        # The operator's channel may be one the chat apps know already: kept as it is.
        if db.get_destination(dest_id) is None:
            db.save_destination(
                Destination(
                    dest_id,
                    kind,
                    address,
                    name=f"{kind}:{address}" if address else kind,
                    origin="config",
                ),
                now,
            )
        used.add(dest_id)
    for entry in settings.digests:
        kind, _, address = entry.destination.partition(":")
        dest_id = destination_id_for(kind, address)
        db.save_destination(
            Destination(
                dest_id,
                kind,
                address,
                name=f"{kind}:{address}" if address else kind,
                origin="config",
            ),
            now,
        )
        sub_id = f"config-{entry.name}"
        db.save_digest(
            DigestSubscription(
                id=sub_id,
                destination_id=dest_id,
                query=entry.query,
                local_time=entry.time or settings.delivery.digest_time,
                time_zone=entry.time_zone or settings.time_zone,
                all_quiet=entry.all_quiet,
                name=entry.name,
                origin="config",
                top=entry.top,
            ),
            now,
        )
        wanted.add(sub_id)
        used.add(dest_id)
    if not prune:
        return
    for sub in db.list_digests():
        if sub.origin == "config" and sub.id not in wanted:
            db.delete_digest(sub.id)
    remaining = {sub.destination_id for sub in db.list_digests()}
    for dest in db.list_destinations():
        if dest.origin == "config" and dest.id not in used and dest.id not in remaining:
            db.delete_destination(dest.id)
