"""The delivery ledger on SQLite and PostgreSQL: queued once, claimed once, sent once.

Time is a fake clock; publishers are ``RecordingPublisher``s. The crash and multi-process cases
with real processes are in test_delivery_crash.py and test_multiprocess.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from bridge.config import DeliverySettings, Settings
from bridge.delivery import Destination, DigestSubscription, SendOutcome, mask_address
from bridge.errors import PermanentPublishError, PublishError
from bridge.ledger import Ledger, holder_is_dead, new_holder, sync_configured
from bridge.models import Paper
from bridge.processes import pid_namespace, process_running
from bridge.status import delivery_health, format_status, status_report
from bridge.store import Store, open_store, schema
from bridge.store.ledger import INTAKE_JOB, LedgerStore
from bridge.store.migrations import MIGRATIONS, _v1_core_tables, current_version
from tests.fakes import Clock, RecordingPublisher

# Monday 2026-06-01, 05:00 UTC; digests default to 08:00 UTC.
T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
MORNING = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


def paper(n: int, title: str = "Generalization in deep networks", **kw: object) -> Paper:
    return Paper(f"2606.{n:05d}", title, abstract="We study it.", **kw)  # type: ignore[arg-type]


def make_ledger(
    store: Store,
    clock: Clock,
    publisher: RecordingPublisher | None = None,
    *,
    holder: str | None = None,
    **settings: object,
) -> Ledger:
    pub = publisher or RecordingPublisher()
    return Ledger(
        store,
        {pub.kind: pub},
        DeliverySettings(**settings),  # type: ignore[arg-type]
        clock=clock,
        holder=holder,
        rng=lambda: 0.5,
    )


def subscribe(
    ledger: Ledger,
    dest_id: str,
    *,
    sub_id: str | None = None,
    query: str = "generalization",
    time: str = "08:00",
    zone: str = "UTC",
    all_quiet: bool = False,
    kind: str = "fake",
) -> DigestSubscription:
    now = ledger.clock()
    if ledger.db.get_destination(dest_id) is None:
        ledger.db.save_destination(Destination(dest_id, kind, f"chan-{dest_id}"), now)
    sub = DigestSubscription(
        sub_id or f"sub-{dest_id}",
        dest_id,
        query,
        time,
        zone,
        all_quiet=all_quiet,
        created_at=now,
    )
    ledger.db.save_digest(sub, now)
    return sub


def states(store: Store) -> Counter[str]:
    return Counter(row.state for row in LedgerStore(store).rows())


# -- intake ------------------------------------------------------------------------------------


async def test_intake_queues_each_destination_and_paper_once(store: Store) -> None:
    clock = Clock(T0)
    ledger = make_ledger(store, clock)
    subscribe(ledger, "lab", sub_id="lab-gen")
    subscribe(ledger, "lab", sub_id="lab-deep", query="deep")  # same destination, same paper
    subscribe(ledger, "team", sub_id="team-gen")
    subscribe(ledger, "other", query="transformers")
    clock.advance(minutes=1)
    store.add_papers([paper(1), paper(2, "Unrelated title")], now=clock())
    store.add_papers([paper(3)], announce=False, now=clock())  # stored quietly: never delivered

    assert await ledger.intake() == 2
    rows = LedgerStore(store).rows()
    # One row per (destination, paper); the first subscription (by id) carries it.
    assert sorted((r.destination_id, r.arxiv_id, r.subscription_id) for r in rows) == [
        ("lab", "2606.00001", "lab-deep"),
        ("team", "2606.00001", "team-gen"),
    ]
    assert all(r.state == "pending" and r.attempts == 0 for r in rows)
    assert rows[0].match.why() == "matched deep in the title"
    # Running again (here or in another process) adds nothing; new papers are taken in.
    assert await ledger.intake() == 0
    store.add_papers([paper(4)], now=clock.advance(minutes=1))
    assert await ledger.intake() == 2
    assert len(LedgerStore(store).rows()) == 4


async def test_a_new_subscription_gets_only_papers_first_seen_after_it(store: Store) -> None:
    clock = Clock(T0)
    ledger = make_ledger(store, clock)
    store.add_papers([paper(1)], now=clock())
    clock.advance(minutes=5)
    subscribe(ledger, "lab")
    store.add_papers([paper(2)], now=clock.advance(minutes=1))
    await ledger.intake()
    assert [r.arxiv_id for r in LedgerStore(store).rows()] == ["2606.00002"]


async def test_upgrading_a_database_with_papers_does_not_deliver_its_history(
    sqlite_url: str,
) -> None:
    store = open_store(sqlite_url, migrate_schema=False)
    try:
        with store.engine.begin() as conn:
            schema.schema_version.create(conn)
            _v1_core_tables(conn)
            conn.execute(schema.schema_version.insert().values(version=1))
            for n in (1, 2):  # papers stored by a version-1 paperbridge
                conn.execute(
                    schema.papers.insert().values(
                        arxiv_id=f"2606.0000{n}",
                        title="Generalization",
                        first_seen_at=T0,
                        changed_at=T0,
                        announced=True,
                    )
                )
        assert store.migrate() == len(MIGRATIONS)
        with store.engine.connect() as conn:
            assert current_version(conn) == len(MIGRATIONS)
            cursor = conn.execute(
                select(schema.progress.c.cursor).where(schema.progress.c.job == INTAKE_JOB)
            ).scalar_one()
        # The intake counts the announcement log (migration 8), which starts after the history.
        assert int(cursor) == 0
        clock = Clock(T0)
        ledger = make_ledger(store, clock)
        subscribe(ledger, "lab")
        store.add_papers([paper(3)], now=clock.advance(minutes=1))
        assert await ledger.intake() == 1
        assert [r.arxiv_id for r in LedgerStore(store).rows()] == ["2606.00003"]
    finally:
        store.close()


def test_a_fresh_database_takes_in_from_the_first_paper(store: Store) -> None:
    assert LedgerStore(store).intake_cursor() == 0


# -- claims and leases ---------------------------------------------------------------------------


async def _queued(store: Store, count: int, *, dest: str = "lab") -> Ledger:
    clock = Clock(T0)
    ledger = make_ledger(store, clock)
    subscribe(ledger, dest)
    store.add_papers([paper(n) for n in range(1, count + 1)], now=clock.advance(minutes=1))
    await ledger.intake()
    return ledger


async def test_claims_are_disjoint_and_settle_only_by_their_token(store: Store) -> None:
    ledger = await _queued(store, 5)
    db = ledger.db
    first = db.claim_batch("sub-lab", 2, "host-a:1:x", T0)
    second = db.claim_batch("sub-lab", 2, "host-b:2:y", T0)
    assert len(first) == len(second) == 2
    assert not {r.id for r in first} & {r.id for r in second}
    assert all(r.state == "claimed" and r.attempts == 1 for r in first + second)
    assert first[0].claim_token and first[0].claim_token != second[0].claim_token
    db.settle_sent(first[0].claim_token or "", "lab", T0)
    db.settle_sent(first[0].claim_token or "", "lab", T0)  # settled once: a no-op
    assert states(store) == {"sent": 2, "claimed": 2, "pending": 1}


async def test_claims_racing_from_threads_never_overlap(store: Store) -> None:
    ledger = await _queued(store, 120)
    claimed: list[list[int]] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        db = LedgerStore(store)
        mine: list[int] = []
        try:
            while batch := db.claim_batch("sub-lab", 3, f"host-{n}:{n}:x", T0):
                mine.extend(r.id for r in batch)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        claimed.append(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    every = [row_id for mine in claimed for row_id in mine]
    assert len(every) == len(set(every)) == 120
    assert states(ledger.store) == {"claimed": 120}


def test_a_lease_is_held_once_and_a_poll_lease_keeps_its_rhythm(store: Store) -> None:
    db = LedgerStore(store)
    until = T0 + timedelta(minutes=5)
    assert db.try_lease("destination:lab", "a:1:x", T0, until)
    assert not db.try_lease("destination:lab", "b:2:y", T0, until)
    db.release_lease("destination:lab", "a:1:x", T0)
    assert db.try_lease("destination:lab", "b:2:y", T0, until)
    # An expired lease (its holder went quiet) can be taken over.
    later_still = until + timedelta(seconds=1)
    assert db.try_lease("destination:lab", "a:1:x", later_still, later_still + timedelta(minutes=5))
    gap = timedelta(minutes=54)
    assert db.try_lease("poll:hf", "a:1:x", T0, until, min_gap=gap)
    db.release_lease("poll:hf", "a:1:x", T0 + timedelta(minutes=1))
    later = T0 + timedelta(minutes=10)
    assert not db.try_lease("poll:hf", "b:2:y", later, later + timedelta(minutes=5), min_gap=gap)
    hour = T0 + timedelta(minutes=60)
    assert db.try_lease("poll:hf", "b:2:y", hour, hour + timedelta(minutes=5), min_gap=gap)


def test_dead_processes_are_recognised_on_this_host_only() -> None:
    me = new_holder()
    host, pid, _nonce = me.rsplit(":", 2)
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = int(finished.stdout)
    assert holder_is_dead(f"{host}:{gone}:abc", me)
    assert holder_is_dead(f"{host}:{pid}:earlier", me)  # an earlier run with our own PID
    assert not holder_is_dead(me, me)
    assert not holder_is_dead(f"{host}:1:abc", me)  # PID 1 is alive
    assert not holder_is_dead(f"elsewhere:{gone}:abc", me)  # cannot know: expires by time
    assert not holder_is_dead("garbage", me)


@pytest.mark.skipif(not pid_namespace(), reason="the system does not say its PID namespace")
def test_pids_of_another_pid_namespace_are_not_looked_up_here() -> None:
    me = new_holder()
    host, pid, _nonce = me.rsplit(":", 2)
    name, namespace = host.split("/")
    assert namespace == pid_namespace()
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = int(finished.stdout)
    elsewhere = f"{name}/{int(namespace) + 1}"  # a container sharing our host name
    assert holder_is_dead(f"{host}:{gone}:abc", me)
    # There that PID may well run: its lease expires by time.
    assert not holder_is_dead(f"{elsewhere}:{gone}:abc", me)
    assert not holder_is_dead(f"{elsewhere}:1:abc", me)
    # Our own PID with another nonce is an earlier run, as a restarted container (PID 1 in a
    # new namespace) finds its own leases.
    assert holder_is_dead(f"{elsewhere}:{pid}:earlier", me)


@contextmanager
def zombie() -> Iterator[int]:
    """The PID of a child process that has exited and is not reaped yet (a zombie) while the
    block runs."""
    child = subprocess.Popen([sys.executable, "-c", ""])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
        yield child.pid
    finally:
        child.wait()


needs_proc = pytest.mark.skipif(
    not os.path.exists("/proc/self/stat"), reason="zombies are told apart through /proc"
)


@needs_proc
def test_a_zombie_process_is_dead() -> None:
    me = new_holder()
    host = me.rsplit(":", 2)[0]
    with zombie() as pid:
        os.kill(pid, 0)  # what a bare signal check sees: it succeeds on a zombie
        assert not process_running(pid)
        assert holder_is_dead(f"{host}:{pid}:abc", me)
    assert process_running(os.getpid())


@needs_proc
def test_a_lease_held_by_a_zombie_is_taken_over_at_once(store: Store) -> None:
    ledger = make_ledger(store, Clock(T0))
    host = ledger.holder.rsplit(":", 2)[0]
    until = T0 + timedelta(minutes=5)
    with zombie() as pid:
        assert ledger.db.try_lease("poll:hf", f"{host}:{pid}:gone", T0, until)
        assert not ledger.db.try_lease("poll:hf", ledger.holder, T0, until)
        # No time passes: the holder is known dead, its lease is free now.
        assert ledger.db.expire_dead_leases(ledger.is_dead) == 1
        assert ledger.db.try_lease("poll:hf", ledger.holder, T0, until)


# -- digests ---------------------------------------------------------------------------------------


async def test_a_digest_sends_batches_at_its_time_and_finishes(store: Store) -> None:
    clock = Clock(T0)
    publisher = RecordingPublisher(max_papers_per_message=2)
    ledger = make_ledger(store, clock, publisher)
    subscribe(ledger, "lab")
    store.add_papers([paper(n) for n in range(1, 6)], now=clock.advance(minutes=1))

    report = await ledger.sweep()
    assert report.enqueued == 5 and report.digests == {}  # not 08:00 yet
    assert publisher.sent == []
    clock.now = MORNING + timedelta(seconds=5)
    report = await ledger.sweep()
    assert report.digests == {"sub-lab": "sent"}
    assert [len(m.arxiv_ids) for m in publisher.sent] == [2, 2, 1]
    # One run: every message knows the run's size and its own place (for a header or thread).
    assert [(m.run_pending, m.run_message) for m in publisher.sent] == [(5, 0), (5, 1), (5, 2)]
    assert sorted(a for _, a in publisher.delivered()) == [f"2606.{n:05d}" for n in range(1, 6)]
    assert states(store) == {"sent": 5}
    sub = ledger.db.get_digest("sub-lab")
    assert sub is not None and sub.last_digest_at == MORNING
    dest = ledger.db.get_destination("lab")
    assert dest is not None and dest.last_delivery_at == clock.now
    # Later the same day: nothing is due and nothing is sent again.
    clock.advance(hours=3)
    assert (await ledger.sweep()).digests == {}
    assert await ledger.run_digest("sub-lab") == "not-due"
    assert len(publisher.sent) == 3


async def test_mornings_missed_while_down_are_delivered_once_on_return(store: Store) -> None:
    clock = Clock(T0)
    publisher = RecordingPublisher()
    ledger = make_ledger(store, clock, publisher)
    subscribe(ledger, "lab", zone="Europe/Berlin")
    store.add_papers([paper(1)], now=clock.advance(minutes=1))
    await ledger.intake()
    # Down for three days; more papers came in meanwhile (a poll by another tool).
    store.add_papers([paper(2)], now=clock.advance(days=1))
    clock.now = datetime(2026, 6, 4, 9, 30, tzinfo=UTC)  # after Thursday 08:00 Berlin
    restarted = make_ledger(store, clock, publisher)
    report = await restarted.sweep()
    assert report.digests == {"sub-lab": "sent"}
    assert [m.arxiv_ids for m in publisher.sent] == [("2606.00001", "2606.00002")]
    sub = restarted.db.get_digest("sub-lab")
    # The three missed mornings were coalesced into the latest one (08:00 CEST = 06:00 UTC).
    assert sub is not None and sub.last_digest_at == datetime(2026, 6, 4, 6, 0, tzinfo=UTC)
    assert (await restarted.sweep()).digests == {}


async def test_nothing_new_posts_nothing_unless_all_quiet_is_asked(store: Store) -> None:
    clock = Clock(T0)
    publisher = RecordingPublisher()
    ledger = make_ledger(store, clock, publisher)
    subscribe(ledger, "silent")
    subscribe(ledger, "chatty", all_quiet=True)
    clock.now = MORNING + timedelta(minutes=1)
    report = await ledger.sweep()
    assert report.digests == {"sub-chatty": "quiet", "sub-silent": "empty"}
    assert publisher.sent == [SentMessageLike("chatty")]
    # Both mornings are done: no second note.
    assert (await ledger.sweep()).digests == {}
    # A morning with news gets the news and no note.
    store.add_papers([paper(1)], now=clock.advance(hours=1))
    clock.now = MORNING + timedelta(days=1, minutes=1)
    report = await ledger.sweep()
    assert report.digests == {"sub-chatty": "sent", "sub-silent": "sent"}
    assert [m.arxiv_ids for m in publisher.sent[1:]] == [("2606.00001",), ("2606.00001",)]


def SentMessageLike(dest: str) -> object:  # noqa: N802 (reads like a constructor)
    from tests.fakes import SentMessage

    return SentMessage(dest, f"sub-{dest}", ())


async def test_a_now_subscription_is_sent_right_after_intake(store: Store) -> None:
    clock = Clock(T0)
    publisher = RecordingPublisher()
    ledger = make_ledger(store, clock, publisher)
    subscribe(ledger, "live", time="now")
    store.add_papers([paper(1)], now=clock.advance(minutes=1))
    assert (await ledger.sweep()).digests == {"sub-live": "sent"}
    assert (await ledger.sweep()).digests == {}  # nothing pending: nothing to run
    assert publisher.delivered() == [("live", "2606.00001")]


async def test_deliver_now_sends_everything_pending_whatever_the_schedule(store: Store) -> None:
    ledger = await _queued(store, 3)
    publisher = ledger.publishers["fake"]
    assert isinstance(publisher, RecordingPublisher)
    assert (await ledger.sweep(force=True)).digests == {"sub-lab": "sent"}
    assert len(publisher.delivered()) == 3
    sub = ledger.db.get_digest("sub-lab")
    assert sub is not None and sub.last_digest_at is None  # the morning digest still happens


# -- failures --------------------------------------------------------------------------------------


async def test_a_retryable_failure_backs_off_then_delivers_once(store: Store) -> None:
    clock = Clock(T0)
    publisher = RecordingPublisher()
    ledger = make_ledger(store, clock, publisher)
    subscribe(ledger, "lab")
    store.add_papers([paper(1), paper(2)], now=clock.advance(minutes=1))
    clock.now = MORNING
    publisher.fail_next(SendOutcome.retry("rate limited", retry_after=120))
    assert (await ledger.sweep()).digests == {"sub-lab": "retry"}
    dest = ledger.db.get_destination("lab")
    assert dest is not None and dest.consecutive_failures == 1
    assert dest.retry_at == MORNING + timedelta(seconds=120)
    assert states(store) == {"pending": 2}
    assert delivery_health(store, MORNING)["retrying"][0]["last_error"] == "rate limited"

    clock.advance(seconds=60)
    assert (await ledger.sweep()).digests == {}  # still backing off
    assert await ledger.run_digest("sub-lab") == "backoff"
    clock.advance(seconds=61)
    assert (await ledger.sweep()).digests == {"sub-lab": "sent"}
    assert publisher.delivered() == [("lab", "2606.00001"), ("lab", "2606.00002")]
    dest = ledger.db.get_destination("lab")
    assert dest is not None and dest.consecutive_failures == 0 and dest.retry_at is None
    sub = ledger.db.get_digest("sub-lab")
    assert sub is not None and sub.last_digest_at == MORNING


def test_backoff_grows_exponentially_and_honours_retry_after() -> None:
    ledger = Ledger.__new__(Ledger)
    ledger.settings = DeliverySettings(backoff_base_seconds=30, backoff_max_seconds=3600)
    ledger._rng = lambda: 0.5  # no jitter
    assert [ledger.backoff(n) for n in (1, 2, 3, 8)] == [30, 60, 120, 3600]
    assert ledger.backoff(5, retry_after=7) == 7
    assert ledger.backoff(1, retry_after=86400) == 3600


async def test_a_permanent_failure_pauses_the_destination_until_resumed(store: Store) -> None:
    clock = Clock(T0)
    publisher = RecordingPublisher()
    ledger = make_ledger(store, clock, publisher)
    subscribe(ledger, "gone")
    subscribe(ledger, "fine")
    store.add_papers([paper(1)], now=clock.advance(minutes=1))
    clock.now = MORNING
    publisher.fail_next(SendOutcome.permanent("channel_not_found"), destination_id="gone")
    report = await ledger.sweep()
    assert report.digests == {"sub-fine": "sent", "sub-gone": "permanent"}
    assert publisher.delivered() == [("fine", "2606.00001")]
    health = delivery_health(store, clock())
    assert health["paused"] == [
        {
            "id": "gone",
            "kind": "fake",
            "address": "chan-gone",
            "reason": "channel_not_found",
            "since": MORNING.isoformat(),
        }
    ]
    assert health["ledger"]["failed"] == 1
    text = format_status(status_report(store, Settings(), clock()))
    assert "destination fake:chan-gone paused: channel_not_found" in text
    clock.advance(hours=1)
    assert (await ledger.sweep()).digests == {}  # paused: nothing tried

    assert await ledger.resume("gone") == 1
    assert (await ledger.sweep()).digests == {"sub-gone": "sent"}
    assert sorted(publisher.delivered()) == [("fine", "2606.00001"), ("gone", "2606.00001")]
    assert delivery_health(store, clock())["paused"] == []


@pytest.mark.parametrize(
    ("raised", "result", "uncertain"),
    [
        (PublishError("slack: 503"), "retry", False),
        (PermanentPublishError("discord: webhook deleted"), "permanent", False),
        (RuntimeError("bug in the adapter"), "retry", False),
        (SendOutcome.retry("timed out after posting", maybe_sent=True), "retry", True),
    ],
)
async def test_publisher_errors_become_outcomes(
    store: Store,
    raised: BaseException | SendOutcome,
    result: str,
    uncertain: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ledger = await _queued(store, 1)
    publisher = ledger.publishers["fake"]
    assert isinstance(publisher, RecordingPublisher)
    publisher.fail_next(raised)
    with caplog.at_level(logging.ERROR, logger="bridge.ledger"):
        assert await ledger.run_digest("sub-lab", force=True) == result
    (row,) = ledger.db.rows()
    assert row.state == ("failed" if result == "permanent" else "pending")
    assert row.uncertain is uncertain
    if isinstance(raised, RuntimeError):
        assert "publisher crashed" in caplog.text


async def test_a_send_that_hangs_times_out_and_counts_as_uncertain(store: Store) -> None:
    ledger = await _queued(store, 1)
    ledger.settings = DeliverySettings(send_timeout_seconds=0.05)

    class Hanging(RecordingPublisher):
        async def send_digest(self, *args: object, **kw: object) -> SendOutcome:
            await asyncio.Event().wait()
            raise AssertionError

    ledger.publishers["fake"] = Hanging()
    assert await ledger.run_digest("sub-lab", force=True) == "retry"
    (row,) = ledger.db.rows()
    assert row.state == "pending" and row.uncertain


# -- crashes and several processes -------------------------------------------------------------------


async def test_a_run_that_died_mid_digest_is_resent_once_after_its_lease(store: Store) -> None:
    """A process on another host died between posting a batch and confirming it: after its
    lease expires, the digest runs again and re-sends that one batch, marked uncertain."""
    clock = Clock(T0)
    publisher = RecordingPublisher(max_papers_per_message=2)
    ledger = make_ledger(store, clock, publisher, claim_timeout_seconds=300)
    subscribe(ledger, "lab")
    store.add_papers([paper(n) for n in range(1, 5)], now=clock.advance(minutes=1))
    await ledger.intake()
    clock.now = MORNING
    dead = "elsewhere:99:gone"
    lease_until = MORNING + timedelta(seconds=300)
    assert ledger.db.try_lease("destination:lab", dead, MORNING, lease_until)
    lost = ledger.db.claim_batch("sub-lab", 2, dead, MORNING, MORNING)
    assert [r.arxiv_id for r in lost] == ["2606.00001", "2606.00002"]

    # While its lease lasts, nobody else sends to that destination.
    assert (await ledger.sweep()).digests == {"sub-lab": "busy"}
    assert publisher.sent == []

    clock.now = lease_until + timedelta(seconds=1)
    report = await ledger.sweep()
    assert report.recovered == 2  # expired claims
    assert report.digests == {"sub-lab": "sent"}
    assert [m.arxiv_ids for m in publisher.sent] == [
        ("2606.00001", "2606.00002"),
        ("2606.00003", "2606.00004"),
    ]
    assert publisher.sent[0].uncertain == ("2606.00001", "2606.00002")
    assert states(store) == {"sent": 4}
    assert delivery_health(store, clock())["ledger"]["uncertain"] == 2
    sub = ledger.db.get_digest("sub-lab")
    assert sub is not None and sub.last_digest_at == MORNING
    assert (await ledger.sweep()).digests == {}


async def test_a_restart_on_the_same_host_resumes_at_once(store: Store) -> None:
    """The dead run was this host's: no waiting for the claim timeout."""
    clock = Clock(T0)
    publisher = RecordingPublisher(max_papers_per_message=2)
    ledger = make_ledger(store, clock, publisher)
    subscribe(ledger, "lab")
    store.add_papers([paper(n) for n in range(1, 4)], now=clock.advance(minutes=1))
    await ledger.intake()
    clock.now = MORNING
    earlier_run = ledger.holder.rsplit(":", 1)[0] + ":earlier"  # our PID, another run
    assert ledger.db.try_lease(
        "destination:lab", earlier_run, MORNING, MORNING + timedelta(hours=1)
    )
    ledger.db.claim_batch("sub-lab", 2, earlier_run, MORNING, MORNING)
    clock.advance(seconds=5)
    report = await ledger.sweep()
    assert report.recovered == 2 and report.digests == {"sub-lab": "sent"}
    assert sorted(a for _, a in publisher.delivered()) == ["2606.00001", "2606.00002", "2606.00003"]


async def test_two_processes_sharing_one_database_send_everything_once(store: Store) -> None:
    clock = Clock(T0)
    publisher = RecordingPublisher(max_papers_per_message=3)
    one = make_ledger(store, clock, publisher, holder="host-one:1:a", concurrency=4)
    two = make_ledger(store, clock, publisher, holder="host-two:2:b", concurrency=4)
    for n in range(20):
        subscribe(one, f"d{n:02d}")
    store.add_papers([paper(n) for n in range(1, 11)], now=clock.advance(minutes=1))
    clock.now = MORNING
    first, second = await asyncio.gather(one.sweep(), two.sweep())
    delivered = publisher.delivered()
    assert len(delivered) == len(set(delivered)) == 200
    assert states(store) == {"sent": 200}
    # Every digest ran in exactly one of them; the other found it busy or already done.
    for n in range(20):
        results = {first.digests.get(f"sub-d{n:02d}"), second.digests.get(f"sub-d{n:02d}")}
        assert "sent" in results and results <= {"sent", "busy", "not-due", None}


# -- configuration, addresses ------------------------------------------------------------------------


def test_configured_digests_are_synced_into_the_store(store: Store, tmp_path: object) -> None:
    ledger = make_ledger(store, Clock(T0))
    settings = Settings.model_validate(
        {
            "time_zone": "Europe/Berlin",
            "digests": [
                {"name": "gen", "query": "generalization"},
                {
                    "name": "rl",
                    "query": "reinforcement",
                    "destination": "file:/tmp/rl.jsonl",
                    "time": "07:30",
                    "time_zone": "UTC",
                    "all_quiet": True,
                },
            ],
        }
    )
    sync_configured(ledger, settings)
    subs = {s.id: s for s in ledger.db.list_digests()}
    assert set(subs) == {"config-gen", "config-rl"}
    assert (subs["config-gen"].local_time, subs["config-gen"].time_zone) == (
        "08:00",
        "Europe/Berlin",
    )
    assert (subs["config-rl"].local_time, subs["config-rl"].all_quiet) == ("07:30", True)
    kinds = sorted(d.kind for d in ledger.db.list_destinations())
    assert kinds == ["file", "stdout"]
    # Removing one from the settings removes it (and its now unused destination).
    sync_configured(ledger, Settings.model_validate({"digests": [{"name": "gen", "query": "x"}]}))
    assert [s.id for s in ledger.db.list_digests()] == ["config-gen"]
    assert [d.kind for d in ledger.db.list_destinations()] == ["stdout"]
    # A bad query never gets this far: the settings refuse it.
    with pytest.raises(ValidationError, match="bad query"):
        Settings.model_validate({"digests": [{"name": "bad", "query": "(a"}]})


def test_webhook_addresses_never_show_in_full() -> None:
    url = "https://discord.com/api/webhooks/123/s3cr3t-token"
    dest = Destination("d", "discord", url)
    assert "s3cr3t" not in repr(dest) and "s3cr3t" not in dest.label
    assert mask_address(url) == "https://discord.com/…"
    assert mask_address("C0123456") == "C0123456"
