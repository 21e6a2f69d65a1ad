"""A 200 answer with no readable record where records were expected is a failed poll.

Garbage bytes, a maintenance page or a changed layout neither move "caught up to" nor count
as a success, and their validators are never remembered (a 304 would hide the day for good).
An empty but well-formed listing (HF at the weekend, arXiv on a holiday) is a success.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from bridge.config import ArxivSettings, HuggingFaceSettings
from bridge.fetch import Fetcher
from bridge.models import ParseProblem, ParseResult
from bridge.poller import Poller
from bridge.sources.arxiv import ArxivSource
from bridge.sources.base import unreadable
from bridge.sources.hf import HuggingFaceSource
from bridge.store import Store, open_store
from tests.fake_upstream import FakeUpstream, fixture
from tests.fakes import Clock

HF_FIXTURE = "hf/daily_papers_api_limit30_2026-06-13.json"
HF_DAY = date(2026, 6, 12)
RSS_FIXTURE = "arxiv/rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_excerpt.xml"
CATS = ["cs.LG", "cs.AI", "cs.CL", "stat.ML"]
LISTING = "/rss/" + "+".join(CATS)
MAINTENANCE = "<!doctype html><html><body><h1>Down for maintenance</h1></body></html>"
GARBAGE = b"\x00\xff\xfe garbage \x1f\x8b\x08"


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'pb.db'}")
    yield store
    store.close()


@pytest.fixture
async def fetcher(db: Store) -> AsyncIterator[Fetcher]:
    async with Fetcher(
        user_agent="paperbridge-tests", timeout=2.0, max_attempts=1, validators=db
    ) as f:
        yield f


def hf_poller(upstream: FakeUpstream, db: Store, fetcher: Fetcher, now: datetime) -> Poller:
    settings = HuggingFaceSettings(base_url=upstream.base_url, recheck_days=0)
    return Poller(db, fetcher, [HuggingFaceSource(settings, fetcher)], clock=Clock(now))


def arxiv_poller(upstream: FakeUpstream, db: Store, fetcher: Fetcher, now: datetime) -> Poller:
    settings = ArxivSettings(
        enabled=True,
        categories=CATS,
        rss_base_url=upstream.base_url,
        api_base_url=upstream.base_url,
    )
    return Poller(db, fetcher, [ArxivSource(settings, fetcher)], clock=Clock(now))


def serve_hf_api(upstream: FakeUpstream, day: date, body: bytes | str, **kw: object) -> None:
    query = {"limit": 100, "p": 0, "date": day.isoformat()}
    upstream.add("/api/daily_papers", body, content_type="application/json", query=query, **kw)  # type: ignore[arg-type]


def rss_without_items() -> str:
    """The captured listing as arXiv serves it on a day without announcements."""
    text = fixture(RSS_FIXTURE).decode()
    return re.sub(r"\s*<item>.*?</item>", "", text, flags=re.S)


# -- the rule ------------------------------------------------------------------------------


def test_a_page_is_unreadable_only_when_it_had_problems_and_no_paper() -> None:
    problem = ParseProblem("hf", "http://x/api", "not JSON: Expecting value")
    assert unreadable(ParseResult([], [])) is None  # an empty day
    assert unreadable(ParseResult([], [problem])) == "hf: http://x/api: not JSON: Expecting value"
    record = ParseProblem("hf", "http://x/api", "paper has no title", "7")
    assert unreadable(ParseResult([], [record, record, record])) == (
        "hf: http://x/api record 7: paper has no title (and 2 more unreadable records)"
    )


# -- Hugging Face --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "html"),
    [
        (GARBAGE, GARBAGE),  # garbage bytes on both
        ("<html>maintenance</html>", MAINTENANCE),  # a maintenance page on both
        # A changed layout: every item lost the fields we read; the HTML has no cards.
        (json.dumps([{"paperInfo": {"arxiv": "2606.00467"}}] * 5), "<html><main></main></html>"),
    ],
    ids=["garbage", "maintenance", "changed-layout"],
)
async def test_hf_answering_200_with_nothing_readable_is_a_failed_poll(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher, api: bytes | str, html: str | bytes
) -> None:
    db.record_poll_success("hf", HF_DAY, now=datetime(2026, 6, 12, 20, tzinfo=UTC))
    serve_hf_api(upstream, HF_DAY, api, etag='"broken-api"')
    upstream.add(f"/papers/date/{HF_DAY}", html, content_type="text/html", etag='"broken-page"')
    poller = hf_poller(upstream, db, fetcher, datetime(2026, 6, 12, 22, tzinfo=UTC))

    report = await poller.poll_once()

    assert not report.ok
    error = report.sources[0].error or ""
    assert error.startswith("unreadable answer: hf: ") and f"/papers/date/{HF_DAY}" in error
    assert "the JSON API before it" in error and "/api/daily_papers" in error
    state = db.source_state("hf")
    assert state.last_success_at == datetime(2026, 6, 12, 20, tzinfo=UTC)  # not this poll
    assert state.caught_up_to == HF_DAY and state.consecutive_failures == 1
    assert state.last_error == error

    # HF is back: the day is fetched whole (no validator of the broken answers was kept).
    serve_hf_api(upstream, HF_DAY, fixture(HF_FIXTURE))
    report = await poller.poll_once()
    assert report.ok and len(report.new) == 30
    last = upstream.requests_to("/api/daily_papers")[-1]
    assert "if-none-match" not in last.headers
    state = db.source_state("hf")
    assert state.last_success_at == datetime(2026, 6, 12, 22, tzinfo=UTC)
    assert state.consecutive_failures == 0


async def test_hf_at_the_weekend_is_an_empty_day_read_successfully(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher
) -> None:
    saturday = date(2026, 6, 13)
    db.record_poll_success("hf", HF_DAY)
    serve_hf_api(upstream, HF_DAY, fixture(HF_FIXTURE))
    serve_hf_api(upstream, saturday, "[]")
    poller = hf_poller(upstream, db, fetcher, datetime(2026, 6, 13, 12, tzinfo=UTC))
    report = await poller.poll_once()
    assert report.ok
    assert db.source_state("hf").caught_up_to == saturday


async def test_the_first_poll_of_hf_failing_unreadably_leaves_the_source_never_succeeded(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher
) -> None:
    upstream.add("/api/daily_papers", GARBAGE, content_type="application/json")
    upstream.add("/papers", MAINTENANCE, content_type="text/html")
    poller = hf_poller(upstream, db, fetcher, datetime(2026, 6, 13, tzinfo=UTC))
    report = await poller.poll_once()
    assert not report.ok
    state = db.source_state("hf")
    assert state.last_success_at is None and state.caught_up_to is None
    assert state.consecutive_failures == 1


# -- arXiv ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        GARBAGE,
        MAINTENANCE,
        # A changed layout: items are there, but none has an id we can read.
        re.sub(r"<(link|guid)[^>]*>[^<]*</\1>", "", fixture(RSS_FIXTURE).decode()),
    ],
    ids=["garbage", "maintenance", "changed-layout"],
)
async def test_an_unreadable_arxiv_listing_is_a_failed_poll(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher, body: str | bytes
) -> None:
    db.record_poll_success("arxiv", date(2026, 9, 23), now=datetime(2026, 9, 23, 5, tzinfo=UTC))
    upstream.add(LISTING, body, content_type="application/rss+xml", etag='"broken"')
    poller = arxiv_poller(upstream, db, fetcher, datetime(2026, 9, 24, 5, tzinfo=UTC))

    report = await poller.poll_once()

    assert not report.ok and "unreadable answer: arxiv: " in (report.sources[0].error or "")
    state = db.source_state("arxiv")
    assert state.last_success_at == datetime(2026, 9, 23, 5, tzinfo=UTC)
    assert state.caught_up_to == date(2026, 9, 23) and state.consecutive_failures == 1

    upstream.add_fixture(LISTING, RSS_FIXTURE)
    report = await poller.poll_once()
    assert report.ok and report.new
    assert "if-none-match" not in upstream.requests_to(LISTING)[-1].headers
    assert db.source_state("arxiv").caught_up_to == date(2026, 9, 24)


async def test_an_arxiv_listing_without_announcements_is_read_successfully(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher
) -> None:
    db.record_poll_success("arxiv", date(2026, 9, 24))
    upstream.add(LISTING, rss_without_items(), content_type="application/rss+xml")
    poller = arxiv_poller(upstream, db, fetcher, datetime(2026, 9, 26, 5, tzinfo=UTC))
    report = await poller.poll_once()
    assert report.ok and report.new == []
    state = db.source_state("arxiv")
    assert state.consecutive_failures == 0 and state.caught_up_to == date(2026, 9, 24)


async def test_an_empty_api_answer_during_catch_up_does_not_skip_its_day(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher
) -> None:
    """arXiv's API sporadically answers 200 with an empty body: before, the missed day was
    counted as read and its papers were never asked for again."""
    db.record_poll_success("arxiv", date(2026, 9, 22), now=datetime(2026, 9, 22, 5, tzinfo=UTC))
    upstream.add_fixture(LISTING, RSS_FIXTURE)
    upstream.add("/api/query", b"", content_type="application/atom+xml")
    poller = arxiv_poller(upstream, db, fetcher, datetime(2026, 9, 24, 5, tzinfo=UTC))

    report = await poller.poll_once()

    assert not report.ok and "empty document" in (report.sources[0].error or "")
    # What could be read (the listing of the 24th) is stored, nothing is lost...
    assert db.get_paper("2609.26811") is not None
    # ...but the 23rd was not read: the next poll asks for it again.
    state = db.source_state("arxiv")
    assert state.caught_up_to == date(2026, 9, 22)
    assert state.last_success_at == datetime(2026, 9, 22, 5, tzinfo=UTC)

    upstream.add_fixture("/api/query", "arxiv/api_query_transformer_cs.LG_2026-06-14.xml")
    asked = len(upstream.requests_to("/api/query"))
    report = await poller.poll_once()
    assert report.ok
    assert len(upstream.requests_to("/api/query")) == asked + 1
    assert db.source_state("arxiv").caught_up_to == date(2026, 9, 24)
