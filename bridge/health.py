"""Whether each source is keeping up: its polling rhythm, when it counts as stale, what every
health view says about it (``/healthz``, ``status``, ``/metrics``, the web page), and the
outages a digest mentions so a channel knows papers may be late rather than missing.

Health is a fact, not a default: a source is ok only after a real successful poll. A source
that never had one is "starting" until its first poll finishes, then "failing"; one whose
last success is older than three of its own polls is "stale". A source whose last polls failed
but which succeeded recently is "retrying": worth a warning, not yet an outage.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from sqlalchemy.exc import SQLAlchemyError

from bridge.config import ArxivSettings, HuggingFaceSettings, Settings
from bridge.crashes import JOB_ROW_PREFIX, Crash, explain
from bridge.delivery import SOURCE_NAMES, Outage
from bridge.errors import StoreError
from bridge.scheduler import crontab_trigger, past_fire_times
from bridge.store import SourceState, Store


def poll_rhythm(settings: Settings, source: str) -> tuple[BaseTrigger | None, timedelta]:
    """A source's cron trigger (None: use the interval) and the least gap between two polls."""
    section: HuggingFaceSettings | ArxivSettings = (
        settings.sources.hf if source == "hf" else settings.sources.arxiv
    )
    return _rhythm(section.poll_cron, section.poll_time_zone, section.poll_every_minutes)


@functools.lru_cache(maxsize=64)
def _rhythm(cron: str, time_zone: str, minutes: float) -> tuple[BaseTrigger | None, timedelta]:
    # Kept: every health read asks, and a crontab's shortest gap takes ~2 ms to work out.
    # Triggers hold no state of their own, so one can serve the scheduler and every reader.
    if cron:
        trigger = crontab_trigger(cron, time_zone)
        return trigger, _cron_gap(trigger)
    return None, timedelta(minutes=minutes)


# A source is stale (``/healthz`` answers 503) after this many of its polls in a row found it
# failing: one failure is a blip, three are an outage someone should look at.
MISSED_POLLS_BEFORE_STALE = 3


def stale_before(settings: Settings, source: str, now: datetime) -> datetime:
    """A source whose last successful poll is older than this is stale: it missed
    ``MISSED_POLLS_BEFORE_STALE`` polls of its own schedule. On a weekday crontab a quiet
    weekend is therefore not an outage, while an hourly source is stale after three hours."""
    trigger, rhythm = poll_rhythm(settings, source)
    if trigger is None:
        return now - MISSED_POLLS_BEFORE_STALE * rhythm
    # The newest fires are the same in a short window as in a long one when it holds enough
    # of them; stepping a crontab over fifteen days costs ~10 ms, over one day under 1 ms.
    for lookback in (timedelta(days=1), timedelta(days=4), timedelta(days=15)):
        fired = past_fire_times(trigger, now, MISSED_POLLS_BEFORE_STALE, lookback)
        if len(fired) == MISSED_POLLS_BEFORE_STALE:
            break
    else:
        return now - timedelta(days=15)
    # A poll takes a while (arXiv's spacing, retries): allow a quarter of the rhythm.
    return fired[-1] - rhythm / 4


def _cron_gap(trigger: BaseTrigger, now: datetime | None = None) -> timedelta:
    """The shortest time between two fires over the next eight days ("15 0,4 * * mon-fri":
    four hours, not the twenty from 04:15 to the next 00:15)."""
    now = now or datetime.now(UTC)
    gaps: list[timedelta] = []
    fire = trigger.get_next_fire_time(None, now)
    while fire is not None and fire < now + timedelta(days=8) and len(gaps) < 500:
        following = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if following is None:
            break
        gaps.append(following - fire)
        fire = following
    return min(gaps, default=timedelta(days=1))


def is_stale(
    settings: Settings, source: str, last_success: datetime | None, now: datetime, started: datetime
) -> bool:
    """Three polls of the source's own schedule in a row did not succeed. A source that never
    succeeded counts from ``started`` (the process start), so a digest sent just after a new
    bridge starts does not call its sources down. Health views do not use this grace: for
    them a source that never succeeded is not ok (``assess_source``)."""
    return (last_success or started) < stale_before(settings, source, now)


def enabled_sources(settings: Settings) -> list[str]:
    return [name for name in ("hf", "arxiv") if getattr(settings.sources, name).enabled]


def source_outages(
    settings: Settings,
    sources: Iterable[str],
    states: Mapping[str, SourceState],
    now: datetime,
    started: datetime,
) -> tuple[Outage, ...]:
    """The stale ones among ``sources``."""
    outages = []
    for source in sources:
        state = states.get(source)
        last = state.last_success_at if state else None
        if is_stale(settings, source, last, now, started):
            outages.append(Outage(source, last))
    return tuple(outages)


# -- what health views say ---------------------------------------------------------------------

# "unknown": the store could not be read, so nothing can be said about the source.
Condition = Literal["ok", "retrying", "starting", "failing", "stale", "unknown"]

# What to do while a source cannot be reached: papers can still come in by hand.
LOAD_MEANWHILE = (
    "papers can be loaded meanwhile with `paperbridge import FILE` (a listing saved by hand)"
    " or `paperbridge backfill --from DATE`"
)


def local_time(moment: datetime, time_zone: str, *, seconds: bool = False) -> str:
    """``moment`` as people read it: in ``time_zone``, to the minute (or second), zone named."""
    shown = moment.astimezone(ZoneInfo(time_zone))
    return shown.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def next_poll(
    settings: Settings, source: str, last_attempt: datetime | None, now: datetime
) -> datetime:
    """When the source is polled next: its crontab's next fire time, or one interval after
    the last poll (``now`` before the first one, which ``serve`` runs at start)."""
    trigger, rhythm = poll_rhythm(settings, source)
    if trigger is not None:
        fire = trigger.get_next_fire_time(None, now)
        if fire is not None:
            return fire.astimezone(UTC)
    if last_attempt is None:
        return now
    return last_attempt + rhythm


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """One source as every health view shows it; ``problem`` is the sentence saying what is
    wrong (None when nothing is)."""

    source: str
    condition: Condition
    last_success: datetime | None
    last_error: str | None
    failures: int
    next_poll: datetime
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.condition in ("ok", "retrying")

    @property
    def unreachable(self) -> bool:
        """Polls are failing now (as opposed to just starting, or fine)."""
        return self.condition in ("retrying", "failing", "stale")


def assess_source(
    settings: Settings,
    source: str,
    state: SourceState | None,
    now: datetime,
    *,
    serving: bool = True,
) -> SourceHealth:
    """What the store's record of ``source`` says about its health at ``now``; ``serving``:
    said by a running ``serve`` (which polls every source at start), not by ``status``."""
    zone = settings.time_zone
    last = state.last_success_at if state else None
    failures = state.consecutive_failures if state else 0
    error = state.last_error if state and failures else None
    upcoming = next_poll(settings, source, state.last_attempt_at if state else None, now)
    when = (
        f"next poll at {local_time(upcoming, zone)}"
        if upcoming > now
        else "next poll due now (it runs while `paperbridge serve` runs)"
    )
    name = f"{source} ({SOURCE_NAMES.get(source, source)})"
    failed = (
        f"{failures} poll{'s' if failures != 1 else ''} in a row failed, the last with: {error}"
    )

    def health(condition: Condition, problem: str | None) -> SourceHealth:
        return SourceHealth(source, condition, last, error, failures, upcoming, problem)

    if last is None:
        if not failures and serving:
            return health("starting", f"starting: the first poll of {name} is under way")
        if not failures:
            never = "`paperbridge serve` polls it (or `paperbridge poll`)"
            return health("starting", f"{name} has never been polled: {never}")
        return health("failing", f"{name} has never been read: {failed}; {when}")
    if last < stale_before(settings, source, now):
        since = f"{name} has not been read since {local_time(last, zone)}"
        if not failures:
            return health("stale", f"{since}: no poll has run since; {when}")
        return health("stale", f"{since}: {failed}; {when}")
    if failures:
        return health("retrying", f"{name}: {failed}; last read {local_time(last, zone)}; {when}")
    skipped = state.skipped_records if state else 0
    if skipped:
        # The poll succeeded, but records were left out: not an outage, never silent either.
        first = f", the first: {state.skip_problem}" if state and state.skip_problem else ""
        records = f"{skipped} record{'s' if skipped != 1 else ''}"
        return health("ok", f"{name}: its last poll skipped {records} it could not use{first}")
    return health("ok", None)


@dataclass(frozen=True, slots=True)
class JobProblem:
    """A scheduled job whose last run crashed (and has not run cleanly since)."""

    job: str
    error: str
    at: datetime | None
    # False: the store refused the record (a full disk); only the process that saw it knows.
    recorded: bool = True


@dataclass(frozen=True, slots=True)
class HealthReport:
    sources: tuple[SourceHealth, ...]
    jobs: tuple[JobProblem, ...] = ()
    # Why the store could not be read; None when it answered.
    store_error: str | None = None
    time_zone: str = "UTC"

    @property
    def problems(self) -> list[str]:
        """Why the bridge is not ok, one plain sentence each; empty when it is."""
        out = [f"store: {self.store_error}"] if self.store_error else []
        out += [s.problem for s in self.sources if not s.ok and s.problem]
        for job in self.jobs:
            when = f" at {local_time(job.at, self.time_zone)}" if job.at else ""
            unrecorded = "" if job.recorded else " (the store could not record it)"
            out.append(f"{job.job} crashed{when}: {job.error}{unrecorded}")
        return out

    @property
    def warnings(self) -> list[str]:
        """Worth a look, not an outage (yet): sources retrying after a recent success."""
        return [s.problem for s in self.sources if s.ok and s.problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def status(self) -> Literal["ok", "starting", "unhealthy"]:
        """What /healthz says: "ok", "unhealthy", or "starting" while the only thing wrong is
        first polls still under way."""
        if self.ok:
            return "ok"
        if self.jobs or self.store_error:
            return "unhealthy"
        if all(s.ok or s.condition == "starting" for s in self.sources):
            return "starting"
        return "unhealthy"

    @property
    def unreachable(self) -> list[SourceHealth]:
        return [s for s in self.sources if s.unreachable]


def read_health(
    settings: Settings,
    store: Store,
    sources: Sequence[str],
    now: datetime,
    crashes: Sequence[Crash] = (),
    *,
    serving: bool = True,
) -> HealthReport:
    """The health of ``sources`` and of the scheduled jobs, from the store and from
    ``crashes`` (what this process saw and perhaps could not record). Blocking: call it with
    ``asyncio.to_thread`` from async code. Never raises for a failing store: that is part of
    the answer."""
    store_error: str | None = None
    states: dict[str, SourceState] = {}
    try:
        states = {state.source: state for state in store.all_source_states()}
    except (StoreError, SQLAlchemyError) as exc:
        store_error = explain(exc)
    assessed = tuple(
        SourceHealth(name, "unknown", None, None, 0, next_poll(settings, name, None, now), None)
        if store_error
        else assess_source(settings, name, states.get(name), now, serving=serving)
        for name in sources
    )
    jobs = {
        state.source.removeprefix(JOB_ROW_PREFIX): JobProblem(
            state.source.removeprefix(JOB_ROW_PREFIX),
            (state.last_error or "no error recorded").removeprefix("crashed: "),
            state.last_error_at,
        )
        for state in states.values()
        if state.source.startswith(JOB_ROW_PREFIX) and state.consecutive_failures
    }
    for crash in crashes:
        # A recorded crash is in the store already (a poll's as a failed poll of its source);
        # one the store refused is newer than anything the store holds about its job.
        if not crash.recorded:
            jobs[crash.job] = JobProblem(crash.job, crash.error, crash.at, recorded=False)
    return HealthReport(assessed, tuple(jobs.values()), store_error, settings.time_zone)


class HealthCheck:
    """Reads the bridge's health for every view: the store's record of each enabled source
    and job, plus the crashes this process saw (``crashes``; a ``CrashWatch`` in ``serve``)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        sources: Sequence[str] | None = None,
        crashes: Callable[[], Sequence[Crash]] = tuple,
        *,
        serving: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store
        self.sources = list(enabled_sources(settings) if sources is None else sources)
        self.crashes = crashes
        self.serving = serving

    def read(self, now: datetime | None = None) -> HealthReport:
        """Blocking; see ``read_health``."""
        now = now or datetime.now(UTC)
        return read_health(
            self.settings, self.store, self.sources, now, self.crashes(), serving=self.serving
        )
