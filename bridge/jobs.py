"""The scheduled jobs of ``serve``: each poll once per rhythm across processes, each digest at
its subscription's local time, and a sweeper that catches up on whatever was missed.

- **Polls** keep their rhythm (``poll_every_minutes``, or a ``poll_cron`` line in
  ``poll_time_zone``). Every process schedules them; a run first takes the lease
  ``poll:<source>``, which is refused while another process holds it or took it less than
  0.9 × the rhythm ago (0.5 × the shortest gap of a crontab line, whose fire times are the same
  in every process), so a poll runs once per slot however many processes serve. A restart within
  the rhythm therefore waits for the next slot instead of polling again at once. A finished poll
  sweeps the ledger (new papers in, "now" subscriptions out).
- **Digests**: one APScheduler job per subscription on a ``DailyTrigger`` (hour:minute in the
  subscription's zone; see ``bridge.scheduler`` for why not ``CronTrigger``), kept in step with
  the store by the sweeper.
- **The sweeper** (every ``delivery.sweep_every_seconds``, and at start) recovers expired
  claims, takes new matches in, and runs every digest that is due: ``due_slot`` says a digest is
  due when its latest scheduled time has passed and no digest finished for it (a morning missed
  while the bridge was down, an interrupted or failed one); several missed mornings are
  coalesced into one (``bridge.scheduler.due_slot``).
- **Crashes**: a job that raises (a full disk while taking a lease, a bug) is left to raise:
  the scheduler hands it to its observer (``bridge.crashes.CrashWatch``), which logs it once
  and records it as a problem of the job's source, or of the job, for every health view.

Everything here reads the time from the ledger's clock, so tests drive it with a fake one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from bridge.config import Settings
from bridge.health import poll_rhythm
from bridge.ledger import Ledger
from bridge.scheduler import Scheduler, digest_trigger

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[object]]


def schedule_poll(
    scheduler: Scheduler, ledger: Ledger, settings: Settings, source: str, job: Job
) -> None:
    """Schedule one source's poll on its rhythm, run once per slot across processes (and once
    at start, which the lease skips when another process polled moments ago)."""
    trigger, rhythm = poll_rhythm(settings, source)
    if trigger is None:
        wrapped = exclusive(ledger, f"poll:{source}", rhythm * 0.9, job)
        scheduler.every(f"poll:{source}", rhythm.total_seconds() / 60, wrapped)
    else:
        wrapped = exclusive(ledger, f"poll:{source}", rhythm * 0.5, job)
        scheduler.at(f"poll:{source}", trigger, wrapped, start_now=True)


def exclusive(ledger: Ledger, name: str, min_gap: timedelta, job: Job) -> Job:
    """``job`` wrapped to run in one process per slot: it takes the lease ``name`` (refused
    while held elsewhere or taken less than ``min_gap`` ago), renews it while running,
    releases it after, then sweeps the ledger."""

    async def run() -> None:
        now = ledger.clock()
        ttl = ledger.claim_timeout
        taken = await asyncio.to_thread(
            ledger.db.try_lease, name, ledger.holder, now, now + ttl, min_gap=min_gap
        )
        if not taken:
            log.debug("%s: ran in another process this slot; skipped", name)
            return
        await _holding(ledger, name, job)
        try:
            await ledger.sweep()
        except Exception:
            log.exception("ledger sweep after %s failed", name)

    return run


async def run_as_leader(
    ledger: Ledger,
    name: str,
    job: Job,
    *,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    on_wait: Callable[[], None] | None = None,
) -> None:
    """Run ``job`` in one process at a time among all that share the store (a chat gateway
    connection, which must not be held twice): wait until the lease ``name`` is free, take it,
    keep it renewed while ``job`` runs, release it when ``job`` ends. If the holder dies,
    another process takes over once the lease expires (``delivery.claim_timeout_seconds``),
    or at its next try when the holder is known dead on this host. ``on_wait`` is called
    once, the first time this process has to wait."""
    ttl = ledger.claim_timeout
    waited = False
    while True:
        now = ledger.clock()
        taken = await asyncio.to_thread(ledger.db.try_lease, name, ledger.holder, now, now + ttl)
        if taken:
            break
        if not waited and on_wait is not None:
            on_wait()
        waited = True
        await asyncio.to_thread(ledger.db.expire_dead_leases, ledger.is_dead)
        await sleep(ttl.total_seconds() / 3)
    await _holding(ledger, name, job)


async def _holding(ledger: Ledger, name: str, job: Job) -> None:
    """Run ``job`` with the lease ``name`` just taken: renewed while it runs, released after."""
    renewer = asyncio.create_task(_renew(ledger, name))
    try:
        await job()
    finally:
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        await asyncio.to_thread(ledger.db.release_lease, name, ledger.holder, ledger.clock())


async def _renew(ledger: Ledger, name: str) -> None:
    ttl = ledger.claim_timeout
    while True:
        await asyncio.sleep(ttl.total_seconds() / 3)
        await asyncio.to_thread(ledger.db.renew_lease, name, ledger.holder, ledger.clock() + ttl)


class DeliveryJobs:
    """Installs the sweeper and one daily job per digest subscription into a Scheduler."""

    def __init__(self, scheduler: Scheduler, ledger: Ledger) -> None:
        self.scheduler = scheduler
        self.ledger = ledger
        self._installed: dict[str, tuple[str, str]] = {}

    def install(self) -> None:
        every = self.ledger.settings.sweep_every_seconds / 60
        self.scheduler.every("deliveries:sweep", every, self.sweep, start_now=True)

    async def sweep(self) -> None:
        # A crash goes to the scheduler's observer, which records it as the job's problem
        # (``bridge.crashes``); the service keeps running and the next sweep tries again.
        await self.sync()
        report = await self.ledger.sweep()
        sent = sum(1 for result in report.digests.values() if result in ("sent", "quiet"))
        if report.recovered or report.enqueued or sent:
            log.info(
                "ledger sweep: %d recovered, %d queued, %d digests sent",
                report.recovered,
                report.enqueued,
                sent,
            )

    async def sync(self) -> None:
        """Schedule a daily job per timed subscription; drop jobs of removed ones."""
        subs = await asyncio.to_thread(self.ledger.db.list_digests)
        wanted = {f"digest:{sub.id}": sub for sub in subs if not sub.immediate}
        for job_id in self.scheduler.job_ids("digest:") - wanted.keys():
            self.scheduler.remove(job_id)
            self._installed.pop(job_id, None)
        for job_id, sub in wanted.items():
            signature = (sub.local_time, sub.time_zone)
            trigger = digest_trigger(sub)
            if trigger is None or self._installed.get(job_id) == signature:
                continue
            self.scheduler.at(job_id, trigger, self._digest_job(sub.id))
            self._installed[job_id] = signature

    def _digest_job(self, subscription_id: str) -> Job:
        async def run() -> None:
            # A crash is the scheduler observer's to record, as in ``sweep``; the sweeper
            # sends a digest whose run failed at its next pass (``due_slot``).
            await self.ledger.intake()
            await self.ledger.run_digest(subscription_id)

        return run
