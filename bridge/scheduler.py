"""A thin wrapper over APScheduler 3.x: each source polled on its own rhythm."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(timezone=UTC)

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
            func,
            IntervalTrigger(minutes=minutes, timezone=UTC),
            id=job_id,
            next_run_time=datetime.now(UTC) if start_now else None,
            max_instances=1,
            coalesce=True,
            # A run delayed by a busy loop still happens; only a whole missed window is dropped.
            misfire_grace_time=int(minutes * 60),
            replace_existing=True,
        )

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
