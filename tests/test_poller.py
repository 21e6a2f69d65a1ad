"""poll_once against a real local HTTP server replaying recorded HF and arXiv responses."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from bridge.config import ArxivSettings, HuggingFaceSettings
from bridge.fetch import Fetcher
from bridge.poller import Poller
from bridge.sources.arxiv import ArxivSource
from bridge.sources.hf import HuggingFaceSource
from bridge.store import Store, open_store
from tests.fake_upstream import FakeUpstream, fixture, unused_port

HF_FIXTURE = "hf/daily_papers_api_limit30_2026-06-13.json"
HF_DAY = date(2026, 6, 12)
RSS_FIXTURE = "arxiv/rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_excerpt.xml"
CATS = ["cs.LG", "cs.AI", "cs.CL", "stat.ML"]


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


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
        user_agent="paperbridge-tests",
        timeout=2.0,
        max_attempts=2,
        backoff_base=0.01,
        backoff_max=0.05,
        validators=db,
    ) as f:
        yield f


def hf_source(upstream: FakeUpstream, fetcher: Fetcher, **kw: object) -> HuggingFaceSource:
    settings = HuggingFaceSettings(base_url=upstream.base_url, **kw)  # type: ignore[arg-type]
    return HuggingFaceSource(settings, fetcher)


def arxiv_source(upstream: FakeUpstream, fetcher: Fetcher) -> ArxivSource:
    settings = ArxivSettings(
        enabled=True,
        categories=CATS,
        rss_base_url=upstream.base_url,
        api_base_url=upstream.base_url,
    )
    return ArxivSource(settings, fetcher)


def serve_hf_day(upstream: FakeUpstream, day: date | None, body: bytes | str, **kw: object) -> None:
    query: dict[str, str | int] = {"limit": 100, "p": 0}
    if day is not None:
        query["date"] = day.isoformat()
    upstream.add("/api/daily_papers", body, content_type="application/json", query=query, **kw)  # type: ignore[arg-type]


def serve_empty_hf_days(upstream: FakeUpstream, first: date, last: date) -> None:
    day = first
    while day <= last:
        serve_hf_day(upstream, day, "[]")
        day += timedelta(days=1)


def hf_items_with_ids(*arxiv_ids: str) -> str:
    items = json.loads(fixture(HF_FIXTURE))
    out = []
    for item, arxiv_id in zip(items, arxiv_ids, strict=False):
        item["paper"]["id"] = arxiv_id
        out.append(item)
    return json.dumps(out)


async def test_first_run_announces_latest_day_then_nothing_twice(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher, tmp_path: Path
) -> None:
    serve_hf_day(upstream, None, fixture(HF_FIXTURE))
    clock = Clock(datetime(2026, 6, 13, 9, tzinfo=UTC))
    poller = Poller(db, fetcher, [hf_source(upstream, fetcher)], clock=clock)

    report = await poller.poll_once()
    assert report.ok
    assert len(report.new) == 30
    assert {p.paper.listed_on for p in report.new} == {HF_DAY}
    assert db.source_state("hf").caught_up_to == HF_DAY

    # The next poll re-reads recent days by date; the same papers are not new again.
    serve_hf_day(upstream, HF_DAY, fixture(HF_FIXTURE))
    serve_empty_hf_days(upstream, HF_DAY - timedelta(days=2), clock.now.date())
    serve_hf_day(upstream, HF_DAY, fixture(HF_FIXTURE))
    report = await poller.poll_once()
    assert report.ok and report.new == []
    assert report.sources[0].skipped == 30

    # A restart (a new store handle on the same file, a new poller) announces nothing.
    again = open_store(str(db.engine.url))
    try:
        restarted = Poller(again, fetcher, [hf_source(upstream, fetcher)], clock=clock)
        report = await restarted.poll_once()
        assert report.ok and report.new == []
    finally:
        again.close()


async def test_catch_up_asks_for_every_missed_day(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher
) -> None:
    db.record_poll_success("hf", date(2026, 6, 5))
    today = date(2026, 6, 13)
    serve_empty_hf_days(upstream, date(2026, 6, 1), today)
    serve_hf_day(upstream, HF_DAY, fixture(HF_FIXTURE))
    poller = Poller(
        db,
        fetcher,
        [hf_source(upstream, fetcher, recheck_days=1)],
        clock=Clock(datetime(2026, 6, 13, 7, tzinfo=UTC)),
    )
    report = await poller.poll_once()
    asked = [r.query.get("date") for r in upstream.requests_to("/api/daily_papers")]
    assert asked == [(date(2026, 6, 4) + timedelta(days=i)).isoformat() for i in range(10)]
    # Papers from a missed day are announced: the outage lost nothing.
    assert len(report.new) == 30
    assert db.source_state("hf").caught_up_to == today


async def test_hf_pages_until_a_short_page(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher
) -> None:
    items = json.loads(fixture(HF_FIXTURE))
    db.record_poll_success("hf", HF_DAY)
    for page in range(4):
        chunk = items[page * 10 : page * 10 + 10]
        upstream.add(
            "/api/daily_papers",
            json.dumps(chunk),
            content_type="application/json",
            query={"limit": 10, "p": page, "date": HF_DAY.isoformat()},
        )
    poller = Poller(
        db,
        fetcher,
        [hf_source(upstream, fetcher, page_size=10, recheck_days=0)],
        clock=Clock(datetime(2026, 6, 12, 20, tzinfo=UTC)),
    )
    report = await poller.poll_once()
    assert len(report.new) == 30
    assert [r.query["p"] for r in upstream.requests_to("/api/daily_papers")] == ["0", "1", "2", "3"]


async def test_hf_api_down_falls_back_to_html_listing(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher
) -> None:
    day = date(2024, 8, 1)
    db.record_poll_success("hf", day)
    upstream.fail("/api/daily_papers", times=10, status=503)
    upstream.add_fixture(f"/papers/date/{day.isoformat()}", "hf/papers_page_date_2024-08-01.html")
    poller = Poller(
        db,
        fetcher,
        [hf_source(upstream, fetcher, recheck_days=0)],
        clock=Clock(datetime(2024, 8, 1, 18, tzinfo=UTC)),
    )
    report = await poller.poll_once()
    assert report.ok
    assert len(report.new) == 13
    assert db.count_papers() == 13


async def test_no_network_records_failure_keeps_store_and_recovers(
    db: Store, fetcher: Fetcher, caplog: pytest.LogCaptureFixture
) -> None:
    dead = f"http://127.0.0.1:{unused_port()}"
    source = HuggingFaceSource(HuggingFaceSettings(base_url=dead), fetcher)
    db.add_papers([])
    poller = Poller(db, fetcher, [source], clock=Clock(datetime(2026, 6, 13, tzinfo=UTC)))
    with caplog.at_level(logging.ERROR):
        report = await poller.poll_once()
    assert not report.ok and report.new == []
    assert dead in (report.sources[0].error or "")
    state = db.source_state("hf")
    assert state.consecutive_failures == 1 and state.last_success_at is None
    assert any("poll hf failed" in r.message for r in caplog.records)


async def test_paper_on_hf_and_arxiv_is_stored_and_announced_once(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher
) -> None:
    upstream.add_fixture("/rss/" + "+".join(CATS), RSS_FIXTURE)
    serve_hf_day(upstream, None, hf_items_with_ids("2609.26811", "2609.26820", "2606.00467"))
    clock = Clock(datetime(2026, 9, 24, 12, tzinfo=UTC))
    poller = Poller(
        db,
        fetcher,
        [arxiv_source(upstream, fetcher), hf_source(upstream, fetcher)],
        first_run="all",
        clock=clock,
    )
    report = await poller.poll_once()
    assert report.ok
    announced = sorted(p.paper.arxiv_id for p in report.new)
    # RSS: two new, one cross-list; the replacement is a revision. HF adds one more paper.
    assert announced == ["2205.06398", "2606.00467", "2609.26811", "2609.26820"]
    merged = db.get_paper("2609.26811")
    assert merged is not None
    assert merged.paper.sources == ("arxiv", "hf")
    assert merged.paper.upvotes is not None and merged.paper.categories == ("cs.LG",)
    replaced = db.get_paper("2009.13987")
    assert replaced is not None and not replaced.announced and replaced.paper.version == 3


async def test_arxiv_conditional_get_and_catch_up_by_date_range(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher
) -> None:
    listing_path = "/rss/" + "+".join(CATS)
    upstream.add_fixture(listing_path, RSS_FIXTURE, etag='"listing-0924"')
    upstream.add_fixture("/api/query", "arxiv/api_query_transformer_cs.LG_2026-06-14.xml")
    db.record_poll_success("arxiv", date(2026, 9, 21))
    poller = Poller(
        db,
        fetcher,
        [arxiv_source(upstream, fetcher)],
        clock=Clock(datetime(2026, 9, 24, 6, tzinfo=UTC)),
    )
    report = await poller.poll_once()
    assert report.ok
    windows = [r.query["search_query"] for r in upstream.requests_to("/api/query")]
    # Days 22 and 23 were missed: each is asked for by submission date.
    assert len(windows) == 2
    assert "submittedDate:[202609210000 TO 202609230000]" in windows[0]
    assert "submittedDate:[202609220000 TO 202609240000]" in windows[1]
    assert all("cat:cs.LG OR cat:cs.AI" in w for w in windows)
    assert {"2609.26811", "2606.13677"} <= {p.paper.arxiv_id for p in report.new}
    assert db.source_state("arxiv").caught_up_to == date(2026, 9, 24)

    # The listing has not changed: the server answers 304 and nothing is re-read.
    report = await poller.poll_once()
    assert report.ok and report.new == []
    last = upstream.requests_to(listing_path)[-1]
    assert last.headers.get("if-none-match") == '"listing-0924"'


async def test_bad_record_is_skipped_good_ones_kept_and_error_names_url(
    upstream: FakeUpstream, db: Store, fetcher: Fetcher, caplog: pytest.LogCaptureFixture
) -> None:
    items = json.loads(fixture(HF_FIXTURE))
    items[3] = {"paper": {"id": "not-an-id", "title": 7}}
    serve_hf_day(upstream, None, json.dumps(items))
    poller = Poller(
        db, fetcher, [hf_source(upstream, fetcher)], clock=Clock(datetime(2026, 6, 13, tzinfo=UTC))
    )
    with caplog.at_level(logging.ERROR):
        report = await poller.poll_once()
    assert len(report.new) == 29 and report.sources[0].problems == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "hf" in errors[0] and "/api/daily_papers" in errors[0]
