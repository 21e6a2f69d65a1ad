"""The one interface every listing source implements."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date, timedelta

from bridge.fetch import FetchResult
from bridge.models import Paper, ParseProblem, ParseResult

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Listing:
    """What a source read for one listing day (or one backfill window).

    ``complete`` is True when every page was read, so the day can count as caught up.
    ``fetched`` holds the responses whose validators may be remembered once the papers
    are stored (remembering earlier could hide papers after a crash).
    ``unreadable`` says why a page answered but could not be read (see ``unreadable``): the
    listing is then incomplete, and a poll that met it failed.
    """

    day: date | None
    papers: list[Paper] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)
    fetched: list[FetchResult] = field(default_factory=list)
    complete: bool = True
    unreadable: str | None = None

    def failed(self, why: str) -> None:
        """A page of this listing could not be read: the day is not read, whatever came before."""
        self.unreadable = why
        self.complete = False

    @property
    def url(self) -> str:
        """Where the listing was read: its one URL, or its first page's and how many more."""
        if not self.fetched:
            return "(nothing fetched)"
        more = len(self.fetched) - 1
        return self.fetched[0].url + (f" (+{more} more pages)" if more else "")


class Source(ABC):
    """A listing site: knows its URLs and formats, nothing about outputs."""

    name: str

    @abstractmethod
    def poll(self, *, caught_up_to: date | None, today: date) -> AsyncIterator[Listing]:
        """Yield the listings to read now, oldest first.

        ``caught_up_to`` is the last listing day already read completely (None on the first
        run): the source asks for every day it missed since, so downtime loses nothing.
        """

    @abstractmethod
    def backfill(
        self, *, start: date, end: date, resume_from: date | None
    ) -> AsyncIterator[Listing]:
        """Yield historical listings from ``start`` to ``end``, oldest first."""


def unreadable(parsed: ParseResult) -> str | None:
    """Why a page that answered 200 counts as a failed read, or None when it was read.

    A page whose every record was a problem (garbage bytes, a maintenance page, a changed
    layout: the parsers report a whole unreadable page as one problem) is a failure, so it
    neither moves "caught up to" nor counts as a success. An empty page with no problems is
    well-formed news of an empty day (arXiv on a holiday, HF on a weekend) and is read.
    """
    if parsed.papers or not parsed.problems:
        return None
    first = parsed.problems[0]
    more = len(parsed.problems) - 1
    return f"{first}" + (f" (and {more} more unreadable records)" if more else "")


def newest_day(papers: list[Paper], today: date) -> date | None:
    """The newest listing day among ``papers``, ignoring days after tomorrow: a record dated
    in the future is a bad record, and polls must not take its day as the one caught up to
    (they would read nothing until then)."""
    latest = today + timedelta(days=1)
    return max((p.listed_on for p in papers if p.listed_on and p.listed_on <= latest), default=None)


def log_problems(problems: list[ParseProblem]) -> None:
    """Each skipped record is logged once, here, with its source and URL; so is each field a
    record was kept without (or with cut short)."""
    for problem in problems:
        if problem.field is None:
            log.error("skipped: %s", problem)
        else:
            log.warning("%s", problem)


def refusals(refused: list[tuple[Paper, str]], url: str) -> list[ParseProblem]:
    """The papers the database refused (``AddResult.refused``) as problems naming them."""
    return [
        ParseProblem(paper.source, url, f"the database refused it: {why}", paper.arxiv_id)
        for paper, why in refused
    ]
