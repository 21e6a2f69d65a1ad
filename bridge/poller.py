"""poll_once: fetch every configured source, parse, store, and return what is new."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from bridge.errors import BridgeError
from bridge.fetch import Fetcher
from bridge.models import Paper, StoredPaper
from bridge.sources.base import Listing, Source, log_problems, refusals
from bridge.store import Store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SourceReport:
    source: str
    new: list[StoredPaper] = field(default_factory=list)
    revised: list[StoredPaper] = field(default_factory=list)
    merged: int = 0
    skipped: int = 0
    problems: int = 0  # records (or pages) that could not be read
    unstorable: int = 0  # records the database refused
    first_problem: str | None = None  # the first of either, as logged
    error: str | None = None


@dataclass(slots=True)
class PollReport:
    """What one pass found, per source. ``new`` is what outputs announce."""

    sources: list[SourceReport] = field(default_factory=list)

    @property
    def new(self) -> list[StoredPaper]:
        seen: set[str] = set()
        out: list[StoredPaper] = []
        for report in self.sources:
            for stored in report.new:
                if stored.announced and stored.paper.arxiv_id not in seen:
                    seen.add(stored.paper.arxiv_id)
                    out.append(stored)
        return out

    @property
    def ok(self) -> bool:
        return all(report.error is None for report in self.sources)


class Poller:
    """Reads sources into the store. One instance lives as long as the service."""

    def __init__(
        self,
        store: Store,
        fetcher: Fetcher,
        sources: Sequence[Source],
        *,
        first_run: str = "latest-day",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.sources = list(sources)
        self.first_run = first_run
        self.clock = clock
        # One pass at a time: a scheduled poll and a manual one must not interleave.
        self._lock = asyncio.Lock()

    async def poll_once(self, only: str | None = None) -> PollReport:
        """One pass over every source (or just the one named ``only``)."""
        async with self._lock:
            report = PollReport()
            for source in self.sources:
                if only is None or source.name == only:
                    report.sources.append(await self._poll_source(source))
            return report

    async def _poll_source(self, source: Source) -> SourceReport:
        report = SourceReport(source.name)
        now = self.clock()
        state = await asyncio.to_thread(self.store.source_state, source.name)
        first_run = state.caught_up_to is None and state.last_success_at is None
        caught_up_to = state.caught_up_to
        try:
            listings = [
                listing
                async for listing in source.poll(caught_up_to=caught_up_to, today=now.date())
            ]
        except BridgeError as exc:
            # Nothing from a partial pass is lost: listings already read were not stored,
            # and the next pass asks for the same days again.
            report.error = str(exc)
            log.error("poll %s failed: %s", source.name, exc)
            await asyncio.to_thread(self.store.record_poll_failure, source.name, str(exc), now)
            return report
        announce = self._announce_policy(listings, first_run)
        for listing in listings:
            await self._store_listing(listing, announce, report)
            if listing.complete and listing.day is not None:
                if caught_up_to is None or listing.day > caught_up_to:
                    caught_up_to = listing.day
        unreadable = [listing.unreadable for listing in listings if listing.unreadable]
        if unreadable:
            # What could be read is stored, but the poll failed: "caught up to" and the last
            # success stay where they were, so the next poll asks for these days again.
            report.error = f"unreadable answer: {unreadable[0]}"
            log.error("poll %s failed: %s", source.name, report.error)
            await asyncio.to_thread(self.store.record_poll_failure, source.name, report.error, now)
            return report
        await asyncio.to_thread(
            self.store.record_poll_success,
            source.name,
            caught_up_to,
            now,
            skipped=report.problems + report.unstorable,
            skip_problem=report.first_problem,
        )
        return report

    def _announce_policy(self, listings: list[Listing], first_run: bool) -> Callable[[Paper], bool]:
        if not first_run or self.first_run == "all":
            return lambda _paper: True
        if self.first_run == "none":
            return lambda _paper: False
        newest = max(
            (p.listed_on for lst in listings for p in lst.papers if p.listed_on), default=None
        )
        return lambda paper: newest is not None and paper.listed_on == newest

    async def _store_listing(
        self, listing: Listing, announce: Callable[[Paper], bool], report: SourceReport
    ) -> None:
        log_problems(listing.problems)
        result = await asyncio.to_thread(self.store.add_papers, listing.papers, announce=announce)
        # Only now that the papers are stored may a 304 stand in for this response; never for
        # an unreadable one, which must be fetched whole again.
        if not listing.unreadable:
            for fetched in listing.fetched:
                self.fetcher.remember(fetched)
        unreadable = [problem for problem in listing.problems if problem.field is None]
        refused = refusals(result.refused, listing.url)
        log_problems(refused)
        report.problems += len(unreadable)
        report.unstorable += len(refused)
        if report.first_problem is None and (unreadable or refused):
            report.first_problem = str((unreadable or refused)[0])
        report.new.extend(result.new)
        report.revised.extend(result.revised)
        report.merged += result.merged
        report.skipped += result.skipped


async def store_listings(
    store: Store, listings: list[Listing], *, announce: bool
) -> tuple[int, int, int]:
    """Store listings read outside a poll (import, backfill); returns (new, merged, skipped)."""
    new = merged = skipped = 0
    for listing in listings:
        log_problems(listing.problems)
        result = await asyncio.to_thread(store.add_papers, listing.papers, announce=announce)
        log_problems(refusals(result.refused, listing.url))
        new += len(result.new)
        merged += result.merged + len(result.revised)
        skipped += result.skipped
    return new, merged, skipped


def today_utc() -> date:
    return datetime.now(UTC).date()
