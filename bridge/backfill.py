"""Loading past listings day by day: paced to the upstream's allowance, resumable, and a day
that keeps failing is recorded and skipped instead of ending the run.

Why the project's own HF client and not huggingface_hub's ``list_daily_papers`` /
``list_papers``: every request here goes through ``bridge.fetch.Fetcher`` (per-host pacing,
Retry-After and HF's ``RateLimit`` header, a deadline per exchange, a size cap, fault-injection
tests against ``tests/fake_upstream.py``), and every answer through our parser's limits
(``bridge.sources.limits``), which skip one bad record rather than a whole day. huggingface_hub
would bring its own HTTP stack and retry policy for two endpoints, parse into its own
``PaperInfo`` (without our limits or the HTML fallback), and a large dependency to lock.

Progress lives in the store's ``progress`` table: ``JOB`` holds the last day done (days go
oldest first, so an interrupted run resumes after it), ``JOB:failed`` the days that failed
after the fetcher's retries, which ``--retry-failed`` reads again.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TextIO

from bridge.errors import BridgeError, FetchError
from bridge.poller import store_listings
from bridge.sources.base import Source
from bridge.store import Store

# Hugging Face's allowance for API requests: per 5 minutes, 1,000 with an access token and
# 500 without (https://huggingface.co/docs/hub/rate-limits).
HF_WINDOW_SECONDS = 300.0
HF_REQUESTS_WITH_TOKEN = 1000
HF_REQUESTS_ANONYMOUS = 500
# A tenth of the allowance is left for what else uses the same address (a running `serve`
# polls HF too), so the backfill never meets a 429 of its own making.
HF_SHARE = 0.9
# A progress line every so many days when the output is not a terminal.
REPORT_EVERY = 30


def hf_interval(has_token: bool) -> float:
    """Seconds between two requests to HF so the backfill stays inside the allowance."""
    allowed = HF_REQUESTS_WITH_TOKEN if has_token else HF_REQUESTS_ANONYMOUS
    return HF_WINDOW_SECONDS / (allowed * HF_SHARE)


def failed_job(job: str) -> str:
    return f"{job}:failed"


def read_failed(store: Store, job: str) -> list[date]:
    saved = store.get_progress(failed_job(job))
    return sorted({date.fromisoformat(day) for day in saved.split(",") if day}) if saved else []


def _write_failed(store: Store, job: str, days: list[date]) -> None:
    store.set_progress(failed_job(job), ",".join(day.isoformat() for day in sorted(set(days))))


def duration(seconds: float) -> str:
    """A rough human duration: '40 s', '12 min', '3 h 20 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


@dataclass
class Outcome:
    """What one source's backfill did."""

    job: str
    days_total: int
    days_done: int = 0
    new: int = 0
    merged: int = 0
    failed: dict[date, str] = field(default_factory=dict)


class DayRun:
    """Backfills one source's days in order, reporting as it goes."""

    def __init__(
        self,
        store: Store,
        source: Source,
        job: str,
        *,
        interval: float,
        fetched: Callable[[], int],
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        report_every: int = REPORT_EVERY,
    ) -> None:
        self.store = store
        self.source = source
        self.job = job
        self.interval = interval
        self._fetched = fetched
        self.out = out
        self.clock = clock
        self.report_every = report_every

    def _say(self, text: str) -> None:
        print(f"{self.job}: {text}", file=self.out or sys.stderr, flush=True)

    def eta(self, days_left: int, days_read: int, requests: int) -> str:
        """How long the rest takes at the paced rate: requests a day as measured so far."""
        per_day = requests / days_read if days_read and requests else 1.0
        return duration(days_left * per_day * self.interval)

    async def run(self, start: date, end: date, *, restart: bool, retry_failed: bool) -> Outcome:
        store = self.store
        failed_before = [] if restart else await asyncio.to_thread(read_failed, store, self.job)
        if retry_failed:
            days = [day for day in failed_before if start <= day <= end]
            outcome = Outcome(self.job, len(days))
            self._say(f"reading again the {len(days)} days that failed before")
        else:
            saved = None if restart else await asyncio.to_thread(store.get_progress, self.job)
            resume = date.fromisoformat(saved) + timedelta(days=1) if saved else start
            first = max(start, resume)
            days = [first + timedelta(days=n) for n in range((end - first).days + 1)]
            outcome = Outcome(self.job, (end - start).days + 1)
            outcome.days_done = outcome.days_total - len(days)
            if outcome.days_done:
                self._say(f"resuming after {saved}: {outcome.days_done} days were done before")
        self._say(
            f"{len(days)} days to read ({start} to {end}); at the allowed rate (one request"
            f" every {self.interval:.2f} s) that takes at least {self.eta(len(days), 0, 0)}"
        )
        still_failed = set(failed_before)
        requests_before = self._fetched()
        started = self.clock()
        for number, day in enumerate(days, start=1):
            problem = await self._one_day(day, outcome)
            if problem is None:
                still_failed.discard(day)
            else:
                still_failed.add(day)
                outcome.failed[day] = problem
                self._say(f"{day} failed: {problem}; skipped, the run goes on")
            if not retry_failed:
                # Progress moves only after the day is stored (or recorded as failed): an
                # interruption resumes after the last day finished.
                await asyncio.to_thread(store.set_progress, self.job, day.isoformat())
            if problem is not None or day in failed_before:
                await asyncio.to_thread(_write_failed, store, self.job, sorted(still_failed))
            outcome.days_done += 1
            if number % self.report_every == 0 or number == len(days):
                requests = self._fetched() - requests_before
                left = len(days) - number
                self._say(
                    f"{outcome.days_done}/{outcome.days_total} days, {outcome.new} new papers,"
                    f" {outcome.merged} merged, {len(outcome.failed)} days failed;"
                    f" {self.clock() - started:.0f} s so far"
                    + (f", about {self.eta(left, number, requests)} to go" if left else "")
                )
        return outcome

    async def _one_day(self, day: date, outcome: Outcome) -> str | None:
        """Read and store one day; why it failed, or None."""
        try:
            async for listing in self.source.backfill(start=day, end=day, resume_from=None):
                new, merged, _skipped = await store_listings(self.store, [listing], announce=False)
                outcome.new += new
                outcome.merged += merged
                if listing.unreadable:
                    return f"{listing.url}: {listing.unreadable}"
        except FetchError as exc:
            return str(exc)
        return None


def check_arguments(
    start: date | None, end: date, *, arxiv_categories: str | None, hf: bool
) -> list[str]:
    """The arXiv categories asked for; raises BridgeError on any wrong argument, before any
    request is made (a run must not load an hour of HF and then refuse its arXiv part)."""
    if start is not None and start > end:
        # A reversed range would load nothing and still say "done".
        raise BridgeError(f"backfill: --from {start} is after --to {end}; nothing to load")
    cats: list[str] = []
    if arxiv_categories is not None:
        cats = [c.strip() for c in arxiv_categories.replace(",", "+").split("+") if c.strip()]
        if not cats:
            raise BridgeError("backfill: --arxiv needs categories, e.g. --arxiv cs.LG+cs.CL")
        if start is None:
            raise BridgeError("backfill --arxiv needs --from DATE (arXiv is large)")
    if not hf and not cats:
        raise BridgeError("backfill: --no-hf and no --arxiv: nothing to load")
    return cats


def summary(outcomes: list[Outcome], retry_hint: str) -> tuple[str, bool]:
    """The closing lines, and whether every day was read."""
    lines = []
    ok = True
    for outcome in outcomes:
        lines.append(
            f"{outcome.job}: {outcome.days_done}/{outcome.days_total} days,"
            f" {outcome.new} new papers, {outcome.merged} merged"
        )
        if outcome.failed:
            ok = False
            days = ", ".join(day.isoformat() for day in sorted(outcome.failed))
            lines.append(
                f"{outcome.job}: {len(outcome.failed)} days failed and were skipped: {days}."
                f" Retry them with: {retry_hint}"
            )
    return "\n".join(lines), ok
