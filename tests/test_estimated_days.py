"""Papers from the arXiv API get the listing day arXiv's schedule gives them, marked as an
estimate: they appear in the feeds, day views and listings, and a listing's true day (RSS,
Hugging Face) always wins over the estimate, whatever the order they arrive in. On SQLite and
PostgreSQL where storage is involved."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import text

from bridge.app import Bridge, open_bridge
from bridge.importer import import_paths
from bridge.merge import fold, merge
from bridge.models import Paper
from bridge.sources import arxiv_parse
from bridge.sources.arxiv_schedule import EASTERN, listing_day
from bridge.store import open_store
from tests.test_archive_pages import CARD_ID, client_for, settings_for

FIXTURES = Path(__file__).parent / "fixtures"
API_FILE = FIXTURES / "arxiv" / "api_query_transformer_cs.LG_2026-06-14.xml"
RSS_FILE = FIXTURES / "arxiv" / "rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_excerpt.xml"


def eastern(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=EASTERN)


# -- the schedule ----------------------------------------------------------------------------

# 2026-09-21 is a Monday.
CASES = [
    (eastern(2026, 9, 21, 13, 59), date(2026, 9, 22)),  # Mon before 14:00: listed Tue
    (eastern(2026, 9, 21, 14, 0), date(2026, 9, 23)),  # Mon at 14:00: the next mailing
    (eastern(2026, 9, 23, 0, 1), date(2026, 9, 24)),  # Wed night: Wed's mailing, Thu
    (eastern(2026, 9, 24, 13, 59), date(2026, 9, 25)),  # Thu before: listed Fri
    (eastern(2026, 9, 24, 14, 0), date(2026, 9, 28)),  # Thu after: announced Sun, Mon
    (eastern(2026, 9, 25, 13, 59), date(2026, 9, 28)),  # Fri before: announced Sun, Mon
    (eastern(2026, 9, 25, 14, 0), date(2026, 9, 29)),  # Fri after: announced Mon, Tue
    (eastern(2026, 9, 26, 10, 0), date(2026, 9, 29)),  # Sat: announced Mon, Tue
    (eastern(2026, 9, 27, 23, 59), date(2026, 9, 29)),  # Sun night: the same mailing
    # The deadline is Eastern time, so the same UTC time falls on either side of it with
    # daylight saving time: 18:30 UTC is 13:30 EST (before) and 14:30 EDT (after). US DST
    # began on 2026-03-08 and ended on 2026-11-01.
    (datetime(2026, 3, 2, 18, 30, tzinfo=UTC), date(2026, 3, 3)),  # Mon, EST: before
    (datetime(2026, 3, 9, 18, 30, tzinfo=UTC), date(2026, 3, 11)),  # Mon, EDT: after
    (datetime(2026, 10, 26, 18, 30, tzinfo=UTC), date(2026, 10, 28)),  # Mon, EDT: after
    (datetime(2026, 11, 2, 18, 30, tzinfo=UTC), date(2026, 11, 3)),  # Mon, EST: before
    # A Friday evening in UTC is still Friday afternoon in New York.
    (datetime(2026, 9, 25, 17, 59, tzinfo=UTC), date(2026, 9, 28)),  # 13:59 EDT Fri
    (datetime(2026, 9, 26, 1, 0, tzinfo=UTC), date(2026, 9, 29)),  # Fri 21:00 EDT
]


@pytest.mark.parametrize(("submitted", "listed"), CASES)
def test_listing_day_follows_arxivs_schedule(submitted: datetime, listed: date) -> None:
    assert listing_day(submitted) == listed


def test_a_naive_time_is_utc() -> None:
    assert listing_day(datetime(2026, 3, 9, 18, 30)) == date(2026, 3, 11)


def schedule_oracle(submitted: datetime) -> date:
    """arXiv's availability table read literally: the first weekday deadline (14:00 Eastern)
    after the submission; that deadline's mailing is announced the same evening, Friday's on
    Sunday; the listing day is the day after the announcing evening."""
    local = submitted.astimezone(EASTERN)
    day = local.date()
    while day.weekday() >= 5 or datetime.combine(day, time(14), EASTERN) <= local:
        day += timedelta(days=1)
    announced = day + timedelta(days=2) if day.weekday() == 4 else day
    return announced + timedelta(days=1)


instants = st.datetimes(
    min_value=datetime(1995, 1, 1), max_value=datetime(2040, 12, 31), timezones=st.just(UTC)
)


@given(instants)
def test_listing_day_matches_the_availability_table(submitted: datetime) -> None:
    listed = listing_day(submitted)
    assert listed == schedule_oracle(submitted)
    assert listed.weekday() < 5
    local_day = submitted.astimezone(EASTERN).date()
    assert local_day < listed <= local_day + timedelta(days=4)


@given(instants, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)))
def test_a_later_submission_is_never_listed_earlier(submitted: datetime, later: timedelta) -> None:
    assert listing_day(submitted) <= listing_day(submitted + later)


def test_api_records_carry_their_estimate() -> None:
    papers = arxiv_parse.parse_api(API_FILE.read_bytes(), str(API_FILE)).papers
    assert papers
    for paper in papers:
        assert paper.published_at is not None
        assert paper.listed_on == listing_day(paper.published_at)
        assert paper.listed_on_estimated
    # The listings' own days are not estimates.
    listed = arxiv_parse.parse_listing(RSS_FILE.read_bytes(), str(RSS_FILE)).papers
    assert listed and all(p.listed_on and not p.listed_on_estimated for p in listed)


def test_an_api_time_at_the_end_of_the_calendar_gives_no_day() -> None:
    entry = API_FILE.read_text().replace(
        "<published>2026-06-11T17:59:49Z</published>", "<published>9999-12-31T23:00:00Z</published>"
    )
    papers = arxiv_parse.parse_api(entry.encode(), "u").papers
    mana = next(p for p in papers if p.arxiv_id == "2606.13677")
    assert mana.listed_on is None and not mana.listed_on_estimated


# -- merging -----------------------------------------------------------------------------------

days = st.dates(min_value=date(2024, 1, 1), max_value=date(2024, 12, 31))
records = st.lists(
    st.one_of(
        st.none(),
        st.tuples(days, st.booleans()),  # (day, estimated)
    ),
    min_size=1,
    max_size=6,
)


def record(day_and_kind: tuple[date, bool] | None) -> Paper:
    if day_and_kind is None:
        return Paper("2401.00001", "A paper")
    day, estimated = day_and_kind
    return Paper("2401.00001", "A paper", listed_on=day, listed_on_estimated=estimated)


@given(records, st.randoms())
def test_a_true_day_wins_over_estimates_in_any_order(
    seen: list[tuple[date, bool] | None], rng: object
) -> None:
    papers = [record(r) for r in seen]
    rng.shuffle(papers)  # type: ignore[attr-defined]
    merged = fold(papers)["2401.00001"]
    true_days = [r[0] for r in seen if r is not None and not r[1]]
    estimates = [r[0] for r in seen if r is not None and r[1]]
    if true_days:
        assert (merged.listed_on, merged.listed_on_estimated) == (min(true_days), False)
    elif estimates:
        assert (merged.listed_on, merged.listed_on_estimated) == (min(estimates), True)
    else:
        assert (merged.listed_on, merged.listed_on_estimated) == (None, False)


def test_merge_rules_spelled_out() -> None:
    early, late = date(2024, 8, 1), date(2024, 8, 5)
    estimate = Paper("2401.00001", "A", listed_on=early, listed_on_estimated=True)
    listed = Paper("2401.00001", "A", listed_on=late)
    # A true day replaces an earlier estimate, and an estimate never replaces a true day.
    assert merge(estimate, listed).listed_on == late
    assert not merge(estimate, listed).listed_on_estimated
    assert merge(listed, estimate) == listed
    # Two estimates or two true days: the earliest.
    assert merge(estimate, estimate.with_changes(listed_on=late)).listed_on == early
    assert merge(listed, listed.with_changes(listed_on=early)).listed_on == early


# -- the archive shows them --------------------------------------------------------------------


@pytest.fixture
async def bridge(database_url: str) -> AsyncIterator[Bridge]:
    async with open_bridge(settings_for(database_url)) as opened:
        yield opened


def feed_ids(content: bytes) -> list[str]:
    feed = feedparser.parse(content)
    return [e.id.removeprefix("https://arxiv.org/abs/") for e in feed.entries]


async def test_an_imported_api_file_is_in_the_feeds_and_its_day_view(bridge: Bridge) -> None:
    counts = import_paths(bridge.store, [API_FILE], parallel=False)
    assert counts.new == 5
    mana = bridge.store.get_paper("2606.13677")
    assert mana is not None
    assert (mana.paper.listed_on, mana.paper.listed_on_estimated) == (date(2026, 6, 12), True)
    async with client_for(bridge) as client:
        everything = feed_ids((await client.get("/feeds/all.atom")).content)
        search = feed_ids(
            (await client.get("/feeds/search.atom", params={"q": "articulated tools"})).content
        )
        day_view = await client.get("/papers/2026-06-12")
    assert set(everything) == {
        "2606.13677",
        "2606.13591",
        "2606.13568",
        "2606.13515",
        "2606.13501",
    }
    assert search == ["2606.13677"]
    assert day_view.status_code == 200
    assert "2606.13677" in CARD_ID.findall(day_view.text)


def api_record(arxiv_id: str, submitted: datetime) -> Paper:
    return Paper(
        arxiv_id,
        "Sparse world models",
        version=1,
        published_at=submitted,
        listed_on=listing_day(submitted),
        listed_on_estimated=True,
    )


def rss_record(arxiv_id: str, day: date) -> Paper:
    return Paper(arxiv_id, "Sparse world models", version=1, listed_on=day, announce_type="new")


# Submitted Tuesday 11:00 EDT: estimated Wednesday; say arXiv listed it on Thursday instead
# (a holiday, or a moderation hold), and once a day early (an estimate that was late).
SUBMITTED = eastern(2026, 9, 22, 11)
ESTIMATE = date(2026, 9, 23)


@pytest.mark.parametrize("true_day", [date(2026, 9, 24), date(2026, 9, 22)])
async def test_a_later_listing_moves_the_paper_to_its_true_day(
    bridge: Bridge, true_day: date
) -> None:
    store = bridge.store
    store.add_papers([api_record("2609.00001", SUBMITTED)])
    async with client_for(bridge) as client:
        before = await client.get(f"/papers/{ESTIMATE}")
        assert "2609.00001" in CARD_ID.findall(before.text)
        store.add_papers([rss_record("2609.00001", true_day)])
        stored = store.get_paper("2609.00001")
        assert stored is not None
        assert (stored.paper.listed_on, stored.paper.listed_on_estimated) == (true_day, False)
        moved = await client.get(f"/papers/{true_day}")
        left = await client.get(f"/papers/{ESTIMATE}")
        search = feed_ids(
            (await client.get("/feeds/search.atom", params={"q": "sparse world"})).content
        )
    assert "2609.00001" in CARD_ID.findall(moved.text)
    assert "2609.00001" not in CARD_ID.findall(left.text)
    assert search == ["2609.00001"]
    assert [s.paper.listed_on for s in store.listings.in_period(true_day, true_day)] == [true_day]


async def test_an_api_record_after_the_listing_keeps_the_true_day(bridge: Bridge) -> None:
    store = bridge.store
    true_day = date(2026, 9, 24)
    store.add_papers([rss_record("2609.00002", true_day)])
    # The backfill's estimate is a day earlier: the earliest day would win if it were a
    # listing's, but it is an estimate.
    result = store.add_papers([api_record("2609.00002", SUBMITTED)])
    stored = store.get_paper("2609.00002")
    assert stored is not None
    assert (stored.paper.listed_on, stored.paper.listed_on_estimated) == (true_day, False)
    # The API record still fills the facts the listing lacked.
    assert stored.paper.published_at == SUBMITTED and result.merged == 1


async def test_an_hf_day_replaces_the_estimate(bridge: Bridge) -> None:
    store = bridge.store
    store.add_papers([api_record("2609.00003", SUBMITTED)])
    hf = Paper("2609.00003", "Sparse world models", source="hf", listed_on=date(2026, 9, 25))
    store.add_papers([hf])
    stored = store.get_paper("2609.00003")
    assert stored is not None
    assert (stored.paper.listed_on, stored.paper.listed_on_estimated) == (date(2026, 9, 25), False)


async def test_pages_and_json_feed_say_a_day_is_expected_until_it_is_listed(
    bridge: Bridge,
) -> None:
    store = bridge.store
    store.add_papers([api_record("2609.00004", SUBMITTED)])
    async with client_for(bridge) as client:
        page = (await client.get(f"/papers/{ESTIMATE}")).text
        item = (await client.get("/feeds/all.json")).json()["items"][0]["_paperbridge"]
        assert "23 Sep 2026 (expected)</time>" in page
        assert 'class="estimated"' in page
        assert (item["listed_on"], item["listed_on_estimated"]) == ("2026-09-23", True)

        store.add_papers([rss_record("2609.00004", ESTIMATE)])
        page = (await client.get(f"/papers/{ESTIMATE}")).text
        item = (await client.get("/feeds/all.json")).json()["items"][0]["_paperbridge"]
    assert "23 Sep 2026</time>" in page and "(expected)" not in page
    assert (item["listed_on"], item["listed_on_estimated"]) == ("2026-09-23", False)


# -- stores from before estimates --------------------------------------------------------------


def test_migration_estimates_the_days_stored_api_papers_lacked(database_url: str) -> None:
    store = open_store(database_url)
    try:
        api = arxiv_parse.parse_api(API_FILE.read_bytes(), str(API_FILE)).papers
        hf_only = Paper("2609.00009", "Only on HF", source="hf", published_at=SUBMITTED)
        store.add_papers([*api, rss_record("2609.00004", date(2026, 9, 24)), hf_only])
        # The store as version 9 left it: no column, and no day for the API papers.
        with store.engine.begin() as conn:
            conn.execute(text("UPDATE papers SET listed_on = NULL WHERE arxiv_id LIKE '2606.%'"))
            conn.execute(text("ALTER TABLE papers DROP COLUMN listed_on_estimated"))
            conn.execute(text("UPDATE schema_version SET version = 9"))
    finally:
        store.close()
    store = open_store(database_url)
    try:
        days = {
            s.paper.arxiv_id: (s.paper.listed_on, s.paper.listed_on_estimated)
            for s in store.iter_papers()
        }
        listed = {s.paper.arxiv_id for s in store.listings.newest(100)}
    finally:
        store.close()
    for paper in api:
        assert paper.published_at is not None
        assert days[paper.arxiv_id] == (listing_day(paper.published_at), True)
    assert days["2609.00004"] == (date(2026, 9, 24), False)
    # HF's publishedAt is not a submission time: no day is made up from it.
    assert days["2609.00009"] == (None, False)
    assert listed == {p.arxiv_id for p in api} | {"2609.00004"}
