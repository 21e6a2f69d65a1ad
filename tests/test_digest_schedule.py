"""When digests and polls run: APScheduler's own triggers, driven by a fake clock, across DST.

Nothing here sleeps or starts a scheduler: the tests ask the triggers the running scheduler
would use (``get_next_fire_time``) and the pure helpers built on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.config import Settings
from bridge.delivery import DigestSubscription
from bridge.health import poll_rhythm, stale_before
from bridge.jobs import DeliveryJobs, schedule_poll
from bridge.ledger import Ledger
from bridge.scheduler import (
    Scheduler,
    crontab_trigger,
    daily_trigger,
    digest_trigger,
    due_slot,
    latest_fire_time,
)
from bridge.store import Store, open_store
from tests.fakes import Clock, RecordingPublisher


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fire_times(trigger: object, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` fire times after ``start``, in UTC, as the scheduler computes them."""
    out: list[datetime] = []
    previous = None
    now = start
    for _ in range(count):
        fire = trigger.get_next_fire_time(previous, now)  # type: ignore[attr-defined]
        out.append(fire.astimezone(UTC))
        previous = fire
        now = fire.astimezone(UTC) + timedelta(seconds=1)
    return out


@pytest.mark.parametrize(
    ("zone", "start", "expected"),
    [
        # Berlin springs forward on 2026-03-29: 08:00 is 07:00 UTC before, 06:00 UTC after.
        (
            "Europe/Berlin",
            utc(2026, 3, 27, 12),
            [utc(2026, 3, 28, 7), utc(2026, 3, 29, 6), utc(2026, 3, 30, 6)],
        ),
        # ... and falls back on 2026-10-25: 06:00 UTC before, 07:00 UTC after.
        (
            "Europe/Berlin",
            utc(2026, 10, 23, 12),
            [utc(2026, 10, 24, 6), utc(2026, 10, 25, 7), utc(2026, 10, 26, 7)],
        ),
        # New York springs forward on 2026-03-08 and falls back on 2026-11-01.
        (
            "America/New_York",
            utc(2026, 3, 6, 14),
            [utc(2026, 3, 7, 13), utc(2026, 3, 8, 12), utc(2026, 3, 9, 12)],
        ),
        (
            "America/New_York",
            utc(2026, 10, 30, 14),
            [utc(2026, 10, 31, 12), utc(2026, 11, 1, 13), utc(2026, 11, 2, 13)],
        ),
    ],
)
def test_a_morning_digest_stays_at_eight_local_across_dst(
    zone: str, start: datetime, expected: list[datetime]
) -> None:
    assert fire_times(daily_trigger(8, 0, zone), start, 3) == expected


def test_a_time_skipped_by_spring_forward_fires_once_an_hour_later() -> None:
    # 02:30 does not exist in Berlin on 2026-03-29: it fires at 03:30 CEST (01:30 UTC).
    trigger = daily_trigger(2, 30, "Europe/Berlin")
    assert fire_times(trigger, utc(2026, 3, 28, 12), 2) == [
        utc(2026, 3, 29, 1, 30),
        utc(2026, 3, 30, 0, 30),
    ]


def test_a_time_repeated_by_fall_back_fires_once() -> None:
    # 02:30 happens twice in Berlin on 2026-10-25 (00:30 and 01:30 UTC): one digest, the first.
    trigger = daily_trigger(2, 30, "Europe/Berlin")
    assert fire_times(trigger, utc(2026, 10, 24, 12), 3) == [
        utc(2026, 10, 25, 0, 30),
        utc(2026, 10, 26, 1, 30),
        utc(2026, 10, 27, 1, 30),
    ]
    sub = DigestSubscription("s", "d", "q", "02:30", "Europe/Berlin", created_at=utc(2026, 10, 1))
    first = due_slot(sub, utc(2026, 10, 25, 0, 31))
    assert first == utc(2026, 10, 25, 0, 30)
    done = DigestSubscription(
        "s", "d", "q", "02:30", "Europe/Berlin", last_digest_at=first, created_at=sub.created_at
    )
    assert due_slot(done, utc(2026, 10, 25, 1, 31)) is None
    assert due_slot(done, utc(2026, 10, 26, 1, 31)) == utc(2026, 10, 26, 1, 30)


def test_the_first_local_hour_is_not_skipped_after_spring_forward() -> None:
    # APScheduler 3.11's CronTrigger(hour=0, minute=30) jumps from 2026-03-29 to 2026-03-31 in
    # Berlin (and from 03-08 to 03-10 in New York); DailyTrigger has every day.
    assert fire_times(daily_trigger(0, 30, "Europe/Berlin"), utc(2026, 3, 28, 12), 3) == [
        utc(2026, 3, 28, 23, 30),  # 03-29 00:30 CET
        utc(2026, 3, 29, 22, 30),  # 03-30 00:30 CEST
        utc(2026, 3, 30, 22, 30),
    ]
    # The same for crontab lines (arXiv's rhythm: after midnight US Eastern, on weekdays).
    arxiv = crontab_trigger("15 0 * * mon-fri", "America/New_York")
    assert fire_times(arxiv, utc(2026, 3, 6, 12), 2) == [
        utc(2026, 3, 9, 4, 15),
        utc(2026, 3, 10, 4, 15),
    ]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "America/New_York", "Australia/Sydney"])
@pytest.mark.parametrize(("hour", "minute"), [(0, 0), (0, 30), (2, 30), (8, 0), (23, 59)])
def test_every_local_day_of_a_year_has_exactly_one_digest(
    zone: str, hour: int, minute: int
) -> None:
    from zoneinfo import ZoneInfo

    trigger = daily_trigger(hour, minute, zone)
    fires = fire_times(trigger, utc(2025, 12, 31, 12), 368)
    days = [fire.astimezone(ZoneInfo(zone)).date() for fire in fires]
    assert len(set(days)) == len(days)
    assert all((b - a).days == 1 for a, b in zip(days, days[1:], strict=False))


def test_latest_fire_time_looks_back_across_a_dst_change() -> None:
    trigger = daily_trigger(8, 0, "Europe/Berlin")
    assert latest_fire_time(trigger, utc(2026, 3, 29, 5, 59)) == utc(2026, 3, 28, 7)
    assert latest_fire_time(trigger, utc(2026, 3, 29, 6, 0)) == utc(2026, 3, 29, 6)
    assert latest_fire_time(trigger, utc(2026, 3, 29, 6, 0), lookback=timedelta(hours=1)) == utc(
        2026, 3, 29, 6
    )
    assert latest_fire_time(trigger, utc(2026, 3, 29, 5), lookback=timedelta(hours=1)) is None


def sub_at(time: str = "08:00", zone: str = "Europe/Berlin", **kw: object) -> DigestSubscription:
    base: dict[str, object] = {"created_at": utc(2026, 3, 1)}
    base.update(kw)
    return DigestSubscription("s", "d", "q", time, zone, **base)  # type: ignore[arg-type]


def test_due_slot_is_the_latest_unfinished_morning() -> None:
    # Never sent, created long ago: the latest morning is due, earlier ones are coalesced.
    assert due_slot(sub_at(), utc(2026, 3, 30, 9)) == utc(2026, 3, 30, 6)
    assert due_slot(sub_at(), utc(2026, 3, 30, 5)) == utc(2026, 3, 29, 6)
    # Finished this morning: nothing until tomorrow.
    done = sub_at(last_digest_at=utc(2026, 3, 30, 6))
    assert due_slot(done, utc(2026, 3, 30, 23)) is None
    assert due_slot(done, utc(2026, 3, 31, 6)) == utc(2026, 3, 31, 6)
    # Down from Friday to Monday: Monday's morning is due once, with everything pending.
    friday = sub_at(last_digest_at=utc(2026, 3, 27, 7))
    assert due_slot(friday, utc(2026, 3, 30, 11)) == utc(2026, 3, 30, 6)
    # Created after this morning's time: first digest tomorrow.
    late = sub_at(created_at=utc(2026, 3, 30, 7))
    assert due_slot(late, utc(2026, 3, 30, 12)) is None
    assert due_slot(late, utc(2026, 3, 31, 6, 1)) == utc(2026, 3, 31, 6)
    # "now" subscriptions have no schedule.
    assert due_slot(sub_at("now"), utc(2026, 3, 30, 9)) is None
    assert digest_trigger(sub_at("now")) is None


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    store = open_store(sqlite_url)
    yield store
    store.close()


async def test_a_missed_morning_runs_on_start_with_a_fake_clock(sqlite_store: Store) -> None:
    """The bridge was down over Berlin's DST change; on start the sweep sends one digest."""
    from bridge.delivery import Destination
    from bridge.models import Paper

    clock = Clock(utc(2026, 3, 27, 20))
    publisher = RecordingPublisher()
    ledger = Ledger(sqlite_store, {"fake": publisher}, clock=clock)
    ledger.db.save_destination(Destination("d", "fake", "c"), clock())
    ledger.db.save_digest(
        DigestSubscription("s", "d", "drift", "08:00", "Europe/Berlin", created_at=clock()),
        clock(),
    )
    sqlite_store.add_papers([Paper("2603.00001", "Drift")], now=clock.advance(minutes=1))
    clock.now = utc(2026, 3, 30, 6, 30)  # Monday 08:30 CEST, after two missed mornings
    report = await ledger.sweep()
    assert report.digests == {"s": "sent"}
    assert [m.arxiv_ids for m in publisher.sent] == [("2603.00001",)]
    sub = ledger.db.get_digest("s")
    assert sub is not None and sub.last_digest_at == utc(2026, 3, 30, 6)


async def test_delivery_jobs_follow_the_stored_subscriptions(sqlite_store: Store) -> None:
    from bridge.delivery import Destination

    clock = Clock(utc(2026, 3, 27, 20))
    ledger = Ledger(sqlite_store, {}, clock=clock)
    ledger.db.save_destination(Destination("d", "fake", "c"), clock())
    for sub in (
        DigestSubscription("berlin", "d", "q", "08:00", "Europe/Berlin"),
        DigestSubscription("ny", "d", "q", "07:15", "America/New_York"),
        DigestSubscription("live", "d", "q", "now"),
    ):
        ledger.db.save_digest(sub, clock())
    scheduler = Scheduler()
    jobs = DeliveryJobs(scheduler, ledger)
    jobs.install()
    await jobs.sync()
    assert scheduler.job_ids() == {"deliveries:sweep", "digest:berlin", "digest:ny"}
    berlin = scheduler.trigger_of("digest:berlin")
    assert fire_times(berlin, utc(2026, 3, 28, 12), 2) == [utc(2026, 3, 29, 6), utc(2026, 3, 30, 6)]
    ny = scheduler.trigger_of("digest:ny")
    assert fire_times(ny, utc(2026, 3, 7, 14), 2) == [
        utc(2026, 3, 8, 11, 15),
        utc(2026, 3, 9, 11, 15),
    ]
    # Moved, then removed: the jobs follow.
    ledger.db.save_digest(DigestSubscription("ny", "d", "q", "09:00", "America/New_York"), clock())
    ledger.db.delete_digest("berlin")
    await jobs.sync()
    assert scheduler.job_ids("digest:") == {"digest:ny"}
    ny = scheduler.trigger_of("digest:ny")
    assert fire_times(ny, utc(2026, 3, 7, 14, 1), 1) == [utc(2026, 3, 8, 13)]


def test_sources_keep_their_rhythm_interval_or_crontab(sqlite_store: Store) -> None:
    settings = Settings.model_validate(
        {
            "sources": {
                "hf": {"poll_every_minutes": 30},
                "arxiv": {"enabled": True, "poll_cron": "15 0,4 * * mon-fri"},
            }
        }
    )
    trigger, gap = poll_rhythm(settings, "hf")
    assert trigger is None and gap == timedelta(minutes=30)
    trigger, gap = poll_rhythm(settings, "arxiv")
    # After arXiv's listings rebuild at midnight US Eastern, on weekdays.
    assert fire_times(trigger, utc(2026, 3, 6, 12), 3) == [
        utc(2026, 3, 9, 4, 15),  # Monday 00:15 EDT (DST began Sunday)
        utc(2026, 3, 9, 8, 15),
        utc(2026, 3, 10, 4, 15),
    ]
    assert gap == timedelta(hours=4)  # the shortest spacing, not the next one
    scheduler = Scheduler()
    ledger = Ledger(sqlite_store, {})

    async def job() -> None:
        return None

    schedule_poll(scheduler, ledger, settings, "hf", job)
    schedule_poll(scheduler, ledger, settings, "arxiv", job)
    assert scheduler.job_ids("poll:") == {"poll:hf", "poll:arxiv"}


def test_sources_default_to_their_upstreams_rhythm() -> None:
    settings = Settings()
    hf, _ = poll_rhythm(settings, "hf")
    # Every two hours on weekdays (UTC); nothing at the weekend, when HF lists nothing.
    assert fire_times(hf, utc(2026, 11, 27, 21), 3) == [
        utc(2026, 11, 27, 22),
        utc(2026, 11, 30, 0),
        utc(2026, 11, 30, 2),
    ]
    arxiv, _ = poll_rhythm(settings, "arxiv")
    # After the listings rebuild at midnight US Eastern (05:00 UTC in winter), Monday to Friday.
    assert fire_times(arxiv, utc(2026, 11, 27, 10), 2) == [
        utc(2026, 11, 30, 5, 15),
        utc(2026, 11, 30, 9, 15),
    ]
    # An interval alone replaces the crontab; both at once is a mistake.
    interval = Settings.model_validate({"sources": {"hf": {"poll_every_minutes": 30}}})
    assert poll_rhythm(interval, "hf") == (None, timedelta(minutes=30))
    with pytest.raises(ValidationError, match="not both"):
        Settings.model_validate(
            {"sources": {"hf": {"poll_every_minutes": 30, "poll_cron": "0 * * * *"}}}
        )


def test_a_source_is_stale_after_three_missed_polls_of_its_own_schedule() -> None:
    settings = Settings()
    monday_morning = utc(2026, 11, 30, 1)
    # HF polled last on Friday evening: the weekend has no polls, so it is not stale yet...
    assert utc(2026, 11, 27, 22) > stale_before(settings, "hf", monday_morning)
    # ...but three weekday polls later it is.
    assert utc(2026, 11, 27, 22) < stale_before(settings, "hf", utc(2026, 11, 30, 4, 1))
    # arXiv last polled Friday 04:15 EST is fine on Monday 01:00 EST, stale on Tuesday.
    friday = utc(2026, 11, 27, 9, 15)
    assert friday > stale_before(settings, "arxiv", utc(2026, 11, 30, 6))
    assert friday < stale_before(settings, "arxiv", utc(2026, 12, 1, 6))
    # An interval: three intervals.
    hourly = Settings.model_validate({"sources": {"hf": {"poll_every_minutes": 60}}})
    now = utc(2026, 11, 28, 12)
    assert stale_before(hourly, "hf", now) == now - timedelta(hours=3)


def test_bad_schedules_are_config_errors(tmp_path: Path) -> None:
    from bridge.config import load_settings
    from bridge.errors import ConfigError

    for toml, key in [
        ('[sources.arxiv]\npoll_cron = "every morning"\n', "sources.arxiv.poll_cron"),
        ('[[digests]]\nname = "x"\nquery = "q"\ntime = "8am"\n', "digests.0.time"),
        ('[[digests]]\nname = "x"\nquery = "q"\ntime_zone = "Mars/Base"\n', "digests.0.time_zone"),
        ('[delivery]\ndigest_time = "now"\n', "delivery.digest_time"),
    ]:
        path = tmp_path / "bad.toml"
        path.write_text(toml)
        with pytest.raises(ConfigError) as caught:
            load_settings(path, {})
        assert caught.value.key == key


async def test_a_leader_job_runs_in_one_process_at_a_time(sqlite_store: Store) -> None:
    import asyncio

    from bridge.jobs import run_as_leader

    clock = Clock(utc(2026, 6, 1, 5))
    first = Ledger(sqlite_store, {}, clock=clock, holder="host-a:1:a")
    second = Ledger(sqlite_store, {}, clock=clock, holder="host-b:2:b")
    ran: list[str] = []
    release_first = asyncio.Event()
    waits: list[float] = []
    waited: list[str] = []

    async def first_job() -> None:
        ran.append("first")
        await release_first.wait()

    async def second_job() -> None:
        ran.append("second")

    async def second_sleep(seconds: float) -> None:
        waits.append(seconds)
        release_first.set()  # the first process stops (it shuts down cleanly)
        for _ in range(50):
            await asyncio.sleep(0)

    leader = asyncio.create_task(run_as_leader(first, "gateway", first_job))
    await asyncio.sleep(0.05)
    assert ran == ["first"]
    await asyncio.wait_for(
        run_as_leader(
            second, "gateway", second_job, sleep=second_sleep, on_wait=lambda: waited.append("x")
        ),
        5,
    )
    await leader
    assert ran == ["first", "second"] and waited == ["x"] and len(waits) >= 1

    # A holder that dies without releasing is replaced once its lease expires.
    async def never_ends() -> None:
        await asyncio.Event().wait()

    stuck = asyncio.create_task(run_as_leader(first, "gateway", never_ends))
    await asyncio.sleep(0.05)

    async def later(seconds: float) -> None:
        clock.advance(seconds=seconds)  # time passes; the stuck holder never renews

    await asyncio.wait_for(run_as_leader(second, "gateway", second_job, sleep=later), 5)
    assert ran == ["first", "second", "second"]
    stuck.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stuck
