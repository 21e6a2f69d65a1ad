"""A thin wrapper over APScheduler 3.x: jobs on intervals, crontab lines and local times of day.

Pure helpers (``daily_trigger``, ``latest_fire_time``, ``due_slot``) use APScheduler's own
triggers, so what tests compute with an injected clock is exactly what the running scheduler
does, DST included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bridge.delivery import DigestSubscription, parse_local_time

log = logging.getLogger(__name__)


class DailyTrigger(BaseTrigger):
    """Every day at hour:minute, local time in ``time_zone``; an APScheduler 3.x trigger.

    APScheduler 3.11's ``CronTrigger`` finds the next day by adding 24 hours in local time, and
    after a spring-forward it skips a day for times in the first local hour: ``CronTrigger(
    hour=0, minute=30, timezone=Europe/Berlin)`` goes from 2026-03-29 to 2026-03-31 (the bug
    class of agronholm/apscheduler#529). This trigger computes each day's time with zoneinfo
    instead, so every local day has exactly one fire time:

    - a time that does not exist that day (02:30 in Berlin on 2026-03-29) fires when the clock
      would have shown it, an hour later by the wall clock (03:30 CEST, 01:30 UTC), as
      ``CronTrigger`` does;
    - a time that happens twice (02:30 in Berlin on 2026-10-25) fires once, at the first
      (``CronTrigger`` fires at both).
    """

    def __init__(self, hour: int, minute: int, time_zone: str) -> None:
        self.hour = hour
        self.minute = minute
        self.timezone = ZoneInfo(time_zone)

    def fire_on(self, day: date) -> datetime:
        local = datetime.combine(day, time(self.hour, self.minute), tzinfo=self.timezone)
        # Through UTC and back: a non-existent wall time comes back as the real one.
        return local.astimezone(UTC).astimezone(self.timezone)

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        # APScheduler's convention: the earliest fire time at or after ``now``, or right after
        # the previous one if that is earlier (the scheduler then applies misfire rules).
        start = now
        if previous_fire_time is not None:
            start = min(now, previous_fire_time + timedelta(microseconds=1))
        day = start.astimezone(self.timezone).date() - timedelta(days=1)
        while (fire := self.fire_on(day)) < start:
            day += timedelta(days=1)
        return fire

    def __str__(self) -> str:
        return f"daily[{self.hour:02d}:{self.minute:02d} {self.timezone.key}]"

    def __repr__(self) -> str:
        return f"<DailyTrigger ({self.hour:02d}:{self.minute:02d}, timezone={self.timezone.key!r})>"


class LocalCronTrigger(BaseTrigger):
    """A crontab line in a time zone, without ``CronTrigger``'s skipped days across DST.

    It asks ``CronTrigger`` for the next fire time from the start of each local day in turn and
    takes the first that falls on that day, so no search ever steps over a DST change.
    """

    def __init__(self, line: str, time_zone: str) -> None:
        self.timezone = ZoneInfo(time_zone)
        self.cron = CronTrigger.from_crontab(line, timezone=self.timezone)
        self.line = line

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        start = now
        if previous_fire_time is not None:
            start = min(now, previous_fire_time + timedelta(microseconds=1))
        day = start.astimezone(self.timezone).date()
        for _ in range(800):  # any crontab line fires within about two years
            midnight = datetime.combine(day, time(0), tzinfo=self.timezone)
            begin = max(start, midnight.astimezone(UTC))
            fire = self.cron.get_next_fire_time(None, begin)
            probe = begin
            # In the hour a fall-back repeats, CronTrigger can answer a time already past.
            while fire is not None and fire < begin and probe < begin + timedelta(hours=2):
                probe += timedelta(minutes=1)
                fire = self.cron.get_next_fire_time(None, probe)
            if fire is None:
                return None
            if fire.astimezone(self.timezone).date() == day:
                return fire
            # The search may have stepped over a DST change and skipped a day: try each day.
            day += timedelta(days=1)
        return None

    def __str__(self) -> str:
        return f"cron[{self.line} {self.timezone.key}]"


def daily_trigger(hour: int, minute: int, time_zone: str) -> DailyTrigger:
    """Every day at hour:minute local time in ``time_zone`` (see ``DailyTrigger``)."""
    return DailyTrigger(hour, minute, time_zone)


def crontab_trigger(line: str, time_zone: str) -> LocalCronTrigger:
    return LocalCronTrigger(line, time_zone)


def latest_fire_time(
    trigger: BaseTrigger, now: datetime, lookback: timedelta = timedelta(days=8)
) -> datetime | None:
    """The last time (UTC) ``trigger`` fired at or before ``now``, looking back ``lookback``."""
    fired = past_fire_times(trigger, now, 1, lookback)
    return fired[0] if fired else None


def past_fire_times(
    trigger: BaseTrigger, now: datetime, count: int, lookback: timedelta = timedelta(days=8)
) -> list[datetime]:
    """The last ``count`` times (UTC, newest first) ``trigger`` fired at or before ``now``,
    looking back ``lookback``."""
    now = now.astimezone(UTC)
    fired: list[datetime] = []
    fire = trigger.get_next_fire_time(None, now - lookback)
    while fire is not None and fire.astimezone(UTC) <= now:
        fired.append(fire.astimezone(UTC))
        # Step in UTC: wall-clock arithmetic on an aware local time would lose the DST fold.
        fire = trigger.get_next_fire_time(fire, fired[-1] + timedelta(seconds=1))
    return fired[::-1][:count]


def digest_trigger(sub: DigestSubscription) -> DailyTrigger | None:
    """The subscription's daily trigger; None for "now" subscriptions."""
    when = parse_local_time(sub.local_time)
    if when is None:
        return None
    return daily_trigger(when[0], when[1], sub.time_zone)


def due_slot(sub: DigestSubscription, now: datetime) -> datetime | None:
    """The scheduled time (UTC) of the digest ``sub`` owes at ``now``, or None.

    It is the latest time the subscription's trigger fired at or before ``now``, provided no
    digest finished for it or later, the subscription existed then, and no digest finished on
    the same local day (on the night clocks fall back, 02:30 happens twice; one digest is
    enough).
    """
    trigger = digest_trigger(sub)
    if trigger is None:
        return None
    slot = latest_fire_time(trigger, now, lookback=timedelta(days=2))
    if slot is None:
        return None
    since = sub.last_digest_at or sub.created_at
    if since is not None and slot <= since:
        return None
    if sub.last_digest_at is not None:
        zone = ZoneInfo(sub.time_zone)
        if slot.astimezone(zone).date() == sub.last_digest_at.astimezone(zone).date():
            return None
    return slot


class JobObserver(Protocol):
    """Told how each run of a scheduled job ended (``bridge.crashes.CrashWatch``)."""

    async def ran(self, job_id: str) -> None: ...

    async def crashed(self, job_id: str, exc: Exception) -> None: ...


class Scheduler:
    def __init__(self, observer: JobObserver | None = None) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._running: set[asyncio.Task[object]] = set()
        self.observer = observer

    def _tracked(
        self, job_id: str, func: Callable[[], Awaitable[object]]
    ) -> Callable[[], Awaitable[object]]:
        """``func``, known to ``stop`` while it runs, and ending quietly when ``stop`` cancels
        it: APScheduler would log the cancellation as the job's error, with a traceback.
        A crash goes to the observer rather than to APScheduler's log, where nothing would
        ever show it in the bridge's health."""

        async def run() -> object:
            task = asyncio.current_task()
            assert task is not None
            self._running.add(task)
            try:
                result = await func()
            except asyncio.CancelledError:
                log.info("%s: interrupted by the stop; it runs again after the next start", job_id)
                return None
            except Exception as exc:
                await self._report(job_id, exc)
                return None
            else:
                if self.observer is not None:
                    await self.observer.ran(job_id)
                return result
            finally:
                self._running.discard(task)

        return run

    async def _report(self, job_id: str, exc: Exception) -> None:
        if self.observer is None:
            log.error("%s crashed", job_id, exc_info=exc)
            return
        try:
            await self.observer.crashed(job_id, exc)
        except Exception:
            log.exception("%s crashed, and reporting the crash failed too", job_id)

    def every(
        self,
        job_id: str,
        minutes: float,
        func: Callable[[], Awaitable[object]],
        *,
        start_now: bool = True,
    ) -> None:
        """Run ``func`` every ``minutes``; a run still going when the next is due is skipped."""
        self._scheduler.add_job(
            self._tracked(job_id, func),
            IntervalTrigger(minutes=minutes, timezone=UTC),
            id=job_id,
            name=job_id,
            next_run_time=datetime.now(UTC) if start_now else None,
            max_instances=1,
            coalesce=True,
            # A run delayed by a busy loop still happens; only a whole missed window is dropped.
            misfire_grace_time=int(minutes * 60),
            replace_existing=True,
        )

    def at(
        self,
        job_id: str,
        trigger: BaseTrigger,
        func: Callable[[], Awaitable[object]],
        *,
        start_now: bool = False,
        misfire_grace_seconds: int = 3600,
    ) -> None:
        """Run ``func`` whenever ``trigger`` fires (a ``daily_trigger`` or ``crontab_trigger``),
        and once at start with ``start_now``."""
        extra = {"next_run_time": datetime.now(UTC)} if start_now else {}
        # Before start, APScheduler queues a replacement beside the old job; remove it first.
        self.remove(job_id)
        self._scheduler.add_job(
            self._tracked(job_id, func),
            trigger,
            id=job_id,
            name=job_id,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=misfire_grace_seconds,
            replace_existing=True,
            **extra,
        )

    def remove(self, job_id: str) -> None:
        if self._scheduler.get_job(job_id) is not None:
            self._scheduler.remove_job(job_id)

    def job_ids(self, prefix: str = "") -> set[str]:
        return {job.id for job in self._scheduler.get_jobs() if job.id.startswith(prefix)}

    async def run_now(self, job_id: str) -> object:
        """Run the scheduled job ``job_id`` once, now, exactly as its trigger would: tracked by
        ``stop`` and its crash handed to the observer. KeyError if there is no such job."""
        job = self._scheduler.get_job(job_id)
        if job is None:
            raise KeyError(job_id)
        return await job.func()

    def trigger_of(self, job_id: str) -> BaseTrigger | None:
        job = self._scheduler.get_job(job_id)
        return job.trigger if job is not None else None

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    async def stop(self) -> None:
        """Shut down, and cancel and wait out the jobs still running, so nothing uses the
        store after it is closed."""
        self.shutdown()
        running = list(self._running)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
