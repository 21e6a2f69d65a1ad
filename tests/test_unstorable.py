"""One bad record never stops intake: import and poll store every good record around it, on
SQLite and PostgreSQL alike, and name the bad one (source, URL, paper id) in the log."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.fetch import Fetcher
from bridge.import_pieces import detect_and_parse
from bridge.importer import import_paths
from bridge.poller import Poller
from bridge.store import Store, open_store, schema
from tests.fake_upstream import FakeUpstream, fixture
from tests.test_poller import HF_DAY, HF_FIXTURE, Clock, hf_source, serve_hf_day

FIXTURES = Path(__file__).parent / "fixtures"
ARXIV_FIXTURE = FIXTURES / "arxiv" / "api_query_transformer_cs.LG_2026-06-14.xml"
RSS_FIXTURE = FIXTURES / "arxiv" / "rss_cs.LG+cs.AI+cs.CL+stat.ML_2026-09-24_excerpt.xml"
BAD_ID = "2407.21772v99999999999999999999"


def hf_listing(bad_id: str = BAD_ID) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(fixture(HF_FIXTURE))
    items[3]["paper"]["id"] = bad_id
    return items


def skipped_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped: ")]


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def both(sqlite_url: str, postgres_url: str) -> Iterator[tuple[Store, Store]]:
    """An SQLite and a PostgreSQL store, to show they end up holding the same."""
    stores = open_store(sqlite_url), open_store(postgres_url)
    try:
        yield stores
    finally:
        for store in stores:
            store.close()


def fetcher_for(store: Store) -> Fetcher:
    return Fetcher(
        user_agent="paperbridge-tests",
        timeout=10.0,  # generous: a loaded machine must not fail a poll here
        max_attempts=2,
        backoff_base=0.01,
        backoff_max=0.05,
        validators=store,
    )


# --- the reported defect: a version beyond 2^31 ------------------------------------------------


@pytest.mark.parametrize("bad_id", [BAD_ID, "2407.21772v2147483648"])
def test_import_skips_a_version_beyond_32_bits_and_stores_every_other_record_and_file(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, bad_id: str
) -> None:
    bad = tmp_path / "hf.json"
    bad.write_text(json.dumps(hf_listing(bad_id)))
    files = [ARXIV_FIXTURE, bad, RSS_FIXTURE]  # a good file before the bad one and after it
    good_ids = {
        paper.arxiv_id
        for path in files
        for paper in detect_and_parse(path.read_text(), str(path)).papers
        if paper.arxiv_id != "2407.21772"
    }
    store = open_store(database_url)
    try:
        with caplog.at_level(logging.ERROR):
            counts = import_paths(store, files, parallel=True, workers=2)
        assert (counts.problems, counts.unstorable, counts.unreadable_files) == (1, 0, 0)
        assert all(store.get_paper(arxiv_id) for arxiv_id in good_ids)
        assert store.count_papers() == len(good_ids) and store.get_paper("2407.21772") is None
    finally:
        store.close()
    assert skipped_lines(caplog) == [
        f"skipped: hf: {bad} record 2407.21772: version {bad_id.split('v')[1]}"
        " is not from 1 to 2,147,483,647"
    ]


async def test_a_poll_skips_a_version_beyond_32_bits_stores_the_rest_and_records_the_skip(
    database_url: str, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(database_url)
    clock = Clock(datetime(2026, 6, 13, 9, tzinfo=UTC))
    try:
        async with fetcher_for(store) as fetcher:
            poller = Poller(store, fetcher, [hf_source(upstream, fetcher)], clock=clock)
            serve_hf_day(upstream, None, json.dumps(hf_listing()))
            with caplog.at_level(logging.ERROR):
                report = await poller.poll_once()
            assert report.ok and len(report.new) == 29
            (hf,) = report.sources
            assert (hf.problems, hf.unstorable) == (1, 0)
            state = store.source_state("hf")
            # A success (the rest is stored, the day caught up), and not a silent one.
            assert state.last_success_at == clock.now and state.consecutive_failures == 0
            assert state.caught_up_to == HF_DAY and state.skipped_records == 1
            assert state.skip_problem is not None and "record 2407.21772" in state.skip_problem
            assert "/api/daily_papers" in state.skip_problem

            # The next clean poll says so.
            for day in (HF_DAY - timedelta(days=2), HF_DAY - timedelta(days=1), HF_DAY):
                serve_hf_day(upstream, day, "[]")
            serve_hf_day(upstream, date(2026, 6, 13), fixture(HF_FIXTURE))
            report = await poller.poll_once()
            # The record the bad one stood in for, whole this time.
            assert report.ok and [p.paper.arxiv_id for p in report.new] == ["2606.13174"]
            assert store.source_state("hf").skipped_records == 0
    finally:
        store.close()
    (line,) = skipped_lines(caplog)
    assert line.startswith("skipped: hf: http://127.0.0.1:") and "record 2407.21772" in line


async def test_a_page_whose_only_record_is_out_of_range_fails_no_poll(
    sqlite_url: str, upstream: FakeUpstream
) -> None:
    # The page was read: its one record is skipped, the poll succeeds and says so.
    serve_hf_day(upstream, None, json.dumps(hf_listing()[3:4]))
    store = open_store(sqlite_url)
    try:
        async with fetcher_for(store) as fetcher:
            clock = Clock(datetime(2026, 6, 13, 9, tzinfo=UTC))
            poller = Poller(store, fetcher, [hf_source(upstream, fetcher)], clock=clock)
            report = await poller.poll_once()
        assert report.ok and report.sources[0].problems == 1
        assert store.source_state("hf").skipped_records == 1
    finally:
        store.close()


async def test_a_first_poll_does_not_take_a_day_in_the_future_as_caught_up(
    sqlite_url: str, upstream: FakeUpstream
) -> None:
    # Caught up to 2099, every later poll would ask for nothing until then.
    items = json.loads(fixture(HF_FIXTURE))
    items[0]["paper"]["submittedOnDailyAt"] = "2099-01-01T00:00:00.000Z"
    serve_hf_day(upstream, None, json.dumps(items))
    store = open_store(sqlite_url)
    try:
        async with fetcher_for(store) as fetcher:
            clock = Clock(datetime(2026, 6, 13, 9, tzinfo=UTC))
            poller = Poller(store, fetcher, [hf_source(upstream, fetcher)], clock=clock)
            assert (await poller.poll_once()).ok
        assert store.source_state("hf").caught_up_to == HF_DAY
        assert store.count_papers() == 30
    finally:
        store.close()


# --- any bad record, among good ones, through import and poll on both stores -----------------

# Values that break one store or the other, or a parser, or an output.
_HUGE_INTS = st.integers(min_value=-(2**80), max_value=2**80)
_BAD_TEXT = st.one_of(
    st.text(alphabet=st.characters(codec=None), max_size=30),  # NUL, surrogates, controls
    st.sampled_from(["\x00", "\ud800", "a\udfffb", "\ufffe"]),
    st.integers(min_value=1_000, max_value=30_000).map(lambda n: "w" * n),
    st.integers(min_value=2, max_value=2_000).map(lambda n: "-".join(["ab"] * n)),
)
_BAD_TIMES = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:30:00+01:00",
            "9999-12-31T23:30:00-01:00",
            "1899-12-31T23:59:59.000Z",
            "2101-01-01T00:00:00.000Z",
            "garbage",
        ]
    ),
    st.datetimes(timezones=st.none() | st.timezones()).map(datetime.isoformat),
)
_BAD_URLS = st.one_of(
    st.sampled_from(["javascript:alert(1)", "ftp://x/y", "https://a b", "https://x/\x00"]),
    st.integers(min_value=2_000, max_value=5_000).map(lambda n: "https://x.org/" + "a" * n),
    _BAD_TEXT,
)
# (where in the item, what to put there); "{id}" in an id stands for the item's own id.
_MUTATIONS = st.one_of(
    st.tuples(
        st.just(("paper", "id")),
        st.one_of(
            st.integers(min_value=2**31, max_value=2**90).map(lambda v: f"{{id}}v{v}"),
            st.integers(min_value=0, max_value=2**31).map(lambda v: f"{{id}}v{v}"),
            st.integers(min_value=58, max_value=300).map(lambda n: "a" * n + "/1234567"),
            st.text(max_size=20),
        ),
    ),
    st.tuples(
        st.sampled_from([("paper", "upvotes"), ("paper", "githubStars"), ("numComments",)]),
        st.one_of(_HUGE_INTS, st.floats(), st.booleans(), st.text(max_size=5)),
    ),
    st.tuples(
        st.sampled_from(
            [
                ("title",),
                ("paper", "title"),
                ("summary",),
                ("paper", "ai_summary"),
                ("organization", "fullname"),
            ]
        ),
        _BAD_TEXT,
    ),
    st.tuples(
        st.just(("paper", "authors")),
        st.lists(st.fixed_dictionaries({"name": _BAD_TEXT}), min_size=1, max_size=3),
    ),
    st.tuples(st.just(("paper", "ai_keywords")), st.lists(_BAD_TEXT, min_size=1, max_size=3)),
    st.tuples(
        st.sampled_from([("paper", "publishedAt"), ("paper", "submittedOnDailyAt")]), _BAD_TIMES
    ),
    st.tuples(
        st.sampled_from([("paper", "githubRepo"), ("paper", "projectPage"), ("thumbnail",)]),
        _BAD_URLS,
    ),
)
_examples = count()


def listing_with(
    mutation: tuple[tuple[str, ...], Any], bad_at: int
) -> tuple[list[Any], str, list[str]]:
    """Six items from the recorded listing under fresh ids, one of them mutated; the
    mutated item's id as it was before, and the other items' ids."""
    first = 10_000 + next(_examples) * 10
    items = json.loads(fixture(HF_FIXTURE))[:6]
    ids = [f"2602.{first + n:05d}" for n in range(len(items))]
    for item, arxiv_id in zip(items, ids, strict=True):
        item["paper"]["id"] = arxiv_id
    bad_id = ids.pop(bad_at)
    path, value = mutation
    if path == ("paper", "id") and isinstance(value, str):
        value = value.replace("{id}", bad_id)
    target = items[bad_at]
    for key in path[:-1]:
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[path[-1]] = value
    return items, bad_id, ids


def assert_intake(
    stores: tuple[Store, Store], raw_id: object, bad_id: str, good_ids: list[str], lines: list[str]
) -> None:
    """Every good item stored in both stores; the bad one stored the same way in both, or
    in neither and then named in the log (by its id, or by the text in its id field)."""
    for store in stores:
        assert all(store.get_paper(arxiv_id) is not None for arxiv_id in good_ids)
    held = [store.get_paper(bad_id) for store in stores]
    assert (held[0] is None) == (held[1] is None)
    if held[0] is None:
        named = [line for line in lines if bad_id in line or repr(str(raw_id))[:30] in line]
        assert len(named) == 2, lines  # once per store
    # The two stores agree on every paper, field by field.
    for arxiv_id in [*good_ids, bad_id]:
        one, other = (store.get_paper(arxiv_id) for store in stores)
        assert (one and one.paper) == (other and other.paper)


_PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.postgres
@_PROPERTY
@given(mutation=_MUTATIONS, bad_at=st.integers(min_value=0, max_value=5))
def test_import_stores_every_good_record_around_any_bad_one_on_both_stores(
    both: tuple[Store, Store],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    mutation: tuple[tuple[str, ...], Any],
    bad_at: int,
) -> None:
    items, bad_id, good_ids = listing_with(mutation, bad_at)
    path = tmp_path / "listing.json"
    path.write_text(json.dumps(items))
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        counts = [import_paths(store, [path], parallel=False) for store in both]
    assert counts[0] == counts[1]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert all(f"hf: {path}" in line for line in lines)
    assert_intake(both, items[bad_at]["paper"]["id"], bad_id, good_ids, lines)


@pytest.fixture
async def pollers(both: tuple[Store, Store], upstream: FakeUpstream) -> AsyncIterator[list[Poller]]:
    clock = Clock(datetime(2026, 6, 13, 9, tzinfo=UTC))
    async with fetcher_for(both[0]) as one, fetcher_for(both[1]) as other:
        yield [
            Poller(store, fetcher, [hf_source(upstream, fetcher)], clock=clock)
            for store, fetcher in zip(both, (one, other), strict=True)
        ]


@pytest.mark.postgres
@_PROPERTY
@given(mutation=_MUTATIONS, bad_at=st.integers(min_value=0, max_value=5))
async def test_a_poll_stores_every_good_record_around_any_bad_one_on_both_stores(
    both: tuple[Store, Store],
    pollers: list[Poller],
    upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    mutation: tuple[tuple[str, ...], Any],
    bad_at: int,
) -> None:
    items, bad_id, good_ids = listing_with(mutation, bad_at)
    serve_hf_day(upstream, None, json.dumps(items))
    for store in both:  # each example is a first poll: the listing of the latest day
        with store.engine.begin() as conn:
            conn.execute(schema.source_state.delete())
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        reports = [await poller.poll_once() for poller in pollers]
    assert all(report.ok for report in reports)
    states = [store.source_state("hf") for store in both]
    assert states[0].skipped_records == states[1].skipped_records
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert all("hf: http://127.0.0.1:" in line for line in lines)
    assert_intake(both, items[bad_at]["paper"]["id"], bad_id, good_ids, lines)
