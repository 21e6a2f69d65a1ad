"""Hugging Face Daily Papers: the JSON API by date, with the HTML listing as a fallback."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import date, timedelta

from bridge.config import HuggingFaceSettings
from bridge.errors import FetchError
from bridge.fetch import Fetcher
from bridge.sources.base import Listing, Source, newest_day, unreadable
from bridge.sources.hf_parse import parse_api, parse_html
from bridge.sources.limits import within_limits

log = logging.getLogger(__name__)

# The first Daily Papers listing; backfill starts here.
FIRST_LISTING_DAY = date(2023, 5, 4)


class HuggingFaceSource(Source):
    name = "hf"

    def __init__(self, settings: HuggingFaceSettings, fetcher: Fetcher) -> None:
        self.settings = settings
        self.fetcher = fetcher
        self.base_url = settings.base_url.rstrip("/")

    async def poll(self, *, caught_up_to: date | None, today: date) -> AsyncIterator[Listing]:
        if caught_up_to is None:
            # First run: the newest listing day is whatever HF features last.
            listing = await self.read_day(None)
            listing.day = newest_day(listing.papers, today)
            yield listing
            return
        # Re-read the last few days: HF keeps adding papers to a day after it opens.
        start = caught_up_to - timedelta(days=self.settings.recheck_days)
        start = max(start, today - timedelta(days=self.settings.max_catch_up_days))
        day = start
        while day <= today:
            try:
                listing = await self.read_day(day)
            except FetchError as exc:
                if day != today or exc.status != 400:
                    raise
                # HF answers 400 for a day it has not opened yet (clocks differ a little).
                listing = Listing(day=day, complete=False)
            yield listing
            day += timedelta(days=1)

    async def backfill(
        self, *, start: date, end: date, resume_from: date | None
    ) -> AsyncIterator[Listing]:
        day = max(start, FIRST_LISTING_DAY)
        if resume_from is not None:
            day = max(day, resume_from + timedelta(days=1))
        while day <= end:
            yield await self.read_day(day, conditional=False)
            day += timedelta(days=1)

    async def read_day(self, day: date | None, *, conditional: bool = True) -> Listing:
        """Every page of one listing day (None: the latest day HF features, whose day the
        caller works out from the papers)."""
        try:
            return await self._read_api(day, conditional)
        except FetchError as exc:
            if exc.status is not None and exc.status < 500 and exc.status != 429:
                # The API refused the request itself (e.g. a date HF does not have yet);
                # the HTML page would say the same.
                raise
            log.warning("hf: JSON API failed (%s); trying the HTML listing", exc)
            listing = await self._read_html(day, conditional)
            if listing.unreadable:
                listing.failed(f"{listing.unreadable}; the JSON API before it: {exc}")
            return listing

    async def _read_api(self, day: date | None, conditional: bool) -> Listing:
        listing = Listing(day=day)
        size = self.settings.page_size
        page = 0
        while True:
            params: dict[str, str | int] = {"limit": size, "p": page}
            if day is not None:
                params["date"] = day.isoformat()
            result = await self.fetcher.get(
                f"{self.base_url}/api/daily_papers", params, conditional=conditional
            )
            listing.fetched.append(result)
            if result.not_modified or result.text is None:
                # Unchanged since we last stored it: later pages are unchanged too.
                break
            parsed = parse_api(result.text, result.url)
            if not parsed.papers and parsed.problems:
                raise FetchError(result.url, f"unreadable response: {parsed.problems[0].problem}")
            # Items on the page, counted before the limits add problems about fields. A page
            # read whole is not unreadable even when the limits skip every paper on it.
            items = len(parsed.papers) + len(parsed.problems)
            parsed = within_limits(parsed, result.url)
            listing.problems.extend(parsed.problems)
            listing.papers.extend(parsed.papers)
            if items < size:
                break
            page += 1
        return listing

    async def _read_html(self, day: date | None, conditional: bool) -> Listing:
        url = f"{self.base_url}/papers" + (f"/date/{day.isoformat()}" if day else "")
        result = await self.fetcher.get(url, conditional=conditional)
        listing = Listing(day=day, fetched=[result])
        if result.text is not None:
            parsed = parse_html(result.text, result.url)
            # Judged on what the parser read: a page read whole is not unreadable even when
            # the limits skip every paper on it.
            why = unreadable(parsed)
            parsed = within_limits(parsed, result.url)
            listing.papers = parsed.papers
            listing.problems = parsed.problems
            if why:
                listing.failed(why)
        return listing
