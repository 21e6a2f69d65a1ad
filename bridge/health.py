"""Whether each source is keeping up: its polling rhythm, when it counts as stale, and the
outages a digest mentions so a channel knows papers may be late rather than missing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from bridge.config import ArxivSettings, HuggingFaceSettings, Settings
from bridge.delivery import Outage
from bridge.scheduler import crontab_trigger, past_fire_times
from bridge.store import SourceState


def poll_rhythm(settings: Settings, source: str) -> tuple[BaseTrigger | None, timedelta]:
    """A source's cron trigger (None: use the interval) and the least gap between two polls."""
    section: HuggingFaceSettings | ArxivSettings = (
        settings.sources.hf if source == "hf" else settings.sources.arxiv
    )
    if section.poll_cron:
        trigger = crontab_trigger(section.poll_cron, section.poll_time_zone)
        return trigger, _cron_gap(trigger)
    return None, timedelta(minutes=section.poll_every_minutes)


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
    fired = past_fire_times(trigger, now, MISSED_POLLS_BEFORE_STALE, timedelta(days=15))
    if len(fired) < MISSED_POLLS_BEFORE_STALE:
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
    succeeded counts from ``started`` (the process start), so a new bridge is not stale."""
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
