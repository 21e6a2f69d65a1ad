"""arXiv: the daily listing feed for a set of categories, and the API for catch-up and backfill."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import date, timedelta

from bridge.config import ArxivSettings
from bridge.fetch import Fetcher
from bridge.models import Paper
from bridge.sources.arxiv_parse import parse_api, parse_listing
from bridge.sources.base import Listing, Source, newest_day, unreadable
from bridge.sources.limits import within_limits

log = logging.getLogger(__name__)

# The API returns at most 2,000 entries per call; smaller pages fail less often.
API_PAGE_SIZE = 500
# Beyond 30,000 results for one query the API answers 400; a day of even the largest
# archives is far below that, so backfill asks one day at a time.
API_RESULT_CAP = 30_000


class ArxivSource(Source):
    name = "arxiv"

    def __init__(self, settings: ArxivSettings, fetcher: Fetcher) -> None:
        self.settings = settings
        self.fetcher = fetcher
        self.categories = list(settings.categories)
        self.rss_base = settings.rss_base_url.rstrip("/")
        self.api_base = settings.api_base_url.rstrip("/")

    @property
    def listing_url(self) -> str:
        return f"{self.rss_base}/rss/{'+'.join(self.categories)}"

    def _wanted(self, paper: Paper) -> bool:
        # Replacements are always recorded (as revisions); other types only when configured.
        if paper.is_revision_listing:
            return True
        return paper.announce_type is None or paper.announce_type in self.settings.announce_types

    async def poll(self, *, caught_up_to: date | None, today: date) -> AsyncIterator[Listing]:
        result = await self.fetcher.get(self.listing_url)
        listing = Listing(day=None, fetched=[result])
        if result.text is not None:
            parsed = parse_listing(result.text, result.url)
            # Judged on what the parser read, before the limits skip any record.
            why = unreadable(parsed)
            parsed = within_limits(parsed, result.url)
            listing.problems = parsed.problems
            listing.papers = [p for p in parsed.papers if self._wanted(p)]
            listing.day = newest_day(parsed.papers, today)
            if why:
                listing.failed(why)
        # An empty listing (weekend, holiday) or an unchanged one says nothing about the day.
        if caught_up_to is not None and listing.day is not None:
            gap_start = caught_up_to + timedelta(days=1)
            if gap_start < listing.day:
                # The days between the last one read and this listing were missed.
                oldest = today - timedelta(days=self.settings.max_catch_up_days)
                gap_end = listing.day - timedelta(days=1)
                async for missed in self._read_range(max(gap_start, oldest), gap_end):
                    yield missed
        yield listing

    async def backfill(
        self, *, start: date, end: date, resume_from: date | None
    ) -> AsyncIterator[Listing]:
        day = start if resume_from is None else max(start, resume_from + timedelta(days=1))
        while day <= end:
            async for listing in self._read_range(day, day):
                yield listing
            day += timedelta(days=1)

    async def _read_range(self, first: date, last: date) -> AsyncIterator[Listing]:
        """Papers submitted in [first - 1 day, last], one listing per day window.

        Submission and announcement days differ (a paper submitted on Monday afternoon is
        announced on Tuesday), so windows overlap by a day; the store drops the repeats.
        """
        day = first
        while day <= last:
            yield await self._query_window(day - timedelta(days=1), day + timedelta(days=1), day)
            day += timedelta(days=1)

    async def _query_window(self, start: date, end: date, label: date) -> Listing:
        cats = " OR ".join(f"cat:{c}" for c in self.categories)
        span = f"submittedDate:[{start:%Y%m%d}0000 TO {end:%Y%m%d}0000]"
        listing = Listing(day=label)
        offset = 0
        while offset < API_RESULT_CAP:
            params: dict[str, str | int] = {
                "search_query": f"({cats}) AND {span}",
                "start": offset,
                "max_results": API_PAGE_SIZE,
                "sortBy": "submittedDate",
                "sortOrder": "ascending",
            }
            # API results change once a day; conditional GET would only hide a retry.
            result = await self.fetcher.get(f"{self.api_base}/api/query", params, conditional=False)
            listing.fetched.append(result)
            parsed = parse_api(result.text or "", result.url)
            # Entries on the page, counted before the limits add problems about fields.
            got = len(parsed.papers) + len(parsed.problems)
            why = unreadable(parsed)
            parsed = within_limits(parsed, result.url)
            listing.problems.extend(parsed.problems)
            listing.papers.extend(parsed.papers)
            if why:
                # An empty body or an error entry (the API's sporadic failures) is not an
                # empty day: the day stays unread and is asked for again.
                listing.failed(why)
                break
            total = parsed.total_results or 0
            offset += got
            # A short page is the last one (the API pages up to max_results at a time).
            if got < API_PAGE_SIZE or offset >= total:
                break
        else:
            listing.complete = False
        return listing

    async def fetch_ids(self, arxiv_ids: list[str]) -> Listing:
        """Current metadata for specific papers (the API's id_list)."""
        listing = Listing(day=None)
        for start in range(0, len(arxiv_ids), 100):
            chunk = arxiv_ids[start : start + 100]
            result = await self.fetcher.get(
                f"{self.api_base}/api/query",
                {"id_list": ",".join(chunk), "max_results": len(chunk)},
                conditional=False,
            )
            parsed = within_limits(parse_api(result.text or "", result.url), result.url)
            listing.problems.extend(parsed.problems)
            listing.papers.extend(parsed.papers)
        return listing
