"""Saying exactly what you mean: archives (cat:cs), unknown fields, paper ids and URLs, listing
dates and exact words. Each rule is pinned in both directions, through the parser, match_paper,
the percolator, search on SQLite and PostgreSQL, a search feed, the CLI and chat."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import feedparser
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.atom import FeedOptions, FeedSite
from bridge.app import Bridge, open_bridge
from bridge.chat import ChatService
from bridge.chat.commands import parse_command
from bridge.cli import main
from bridge.config import DeliverySettings, Settings
from bridge.errors import ChatUsageError, QueryError
from bridge.ids import paper_ids_of_query, split_arxiv_id
from bridge.ledger import Ledger
from bridge.models import Paper, Subscription
from bridge.query import (
    Category,
    Or,
    PaperId,
    Percolator,
    Phrase,
    Term,
    match_paper,
    parse_query,
)
from bridge.query.hints import empty_result_hints
from bridge.search import search_store
from bridge.store import Store, search_index
from bridge.web import create_web_app

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def make(arxiv_id: str, title: str, **facts: object) -> Paper:
    # A listing day, so the papers are in feeds too (feeds list the archive by listing day).
    values: dict[str, object] = {
        "abstract": "We study it.",
        "categories": ("cs.LG",),
        "listed_on": date(2022, 5, 2),
    }
    values.update(facts)
    return Paper(arxiv_id=arxiv_id, title=title, **values)  # type: ignore[arg-type]


PAPERS = [
    make("2401.00001", "Machine learning one", categories=("cs.LG", "stat.ML")),
    make("2401.00002", "Algebraic geometry two", categories=("math.AG",)),
    make("2401.00003", "String theory three", categories=("hep-th",)),
    make("2401.00004", "Galaxies four", categories=("astro-ph.GA",)),
    make("2401.00005", "Robots five", categories=("cs.RO",)),
    make("2401.00006", "Cosmology six", categories=("astro-ph",)),
    make("2401.00007", "Statistics seven", categories=("stat.ME", "math.ST")),
]


def brute(query: str, papers: list[Paper] = PAPERS) -> set[str]:
    parsed = parse_query(query)
    return {p.arxiv_id for p in papers if match_paper(parsed, p) is not None}


def percolated(query: str, papers: list[Paper] = PAPERS) -> set[str]:
    percolator = Percolator([Subscription("s", query)])
    return {m.arxiv_id for m in percolator.match(papers)}


def searched(store: Store, query: str) -> set[str]:
    recent = search_store(store, query, limit=100, order="recent")
    ranked = search_store(store, query, limit=100)
    found = {r.stored.paper.arxiv_id for r in recent.items}
    assert found == {r.stored.paper.arxiv_id for r in ranked.items}
    assert recent.total == len(found)
    return found


def everywhere(store: Store, query: str, papers: list[Paper] = PAPERS) -> set[str]:
    """The papers ``query`` finds, asserting match_paper, the percolator and search agree."""
    want = brute(query, papers)
    assert percolated(query, papers) == want, query
    assert searched(store, query) == want, query
    return want


@pytest.fixture
def syntax_store(store: Store) -> Store:
    store.add_papers(PAPERS, now=T0)
    return store


# --- cat:cs is the whole archive ------------------------------------------------------------------


def test_an_archive_without_a_dot_is_the_category_or_any_subject_class() -> None:
    assert parse_query("cat:cs").root == Or((Category("cs"), Category("cs.", prefix=True)))
    assert parse_query("cat:CS").root == parse_query("cat:cs").root
    # Exact categories and explicit prefixes mean what they meant.
    assert parse_query("cat:cs.LG").root == Category("cs.lg")
    assert parse_query("cat:cs*").root == Category("cs", prefix=True)


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("cat:cs", {"2401.00001", "2401.00005"}),
        ("cat:math", {"2401.00002", "2401.00007"}),
        ("cat:stat", {"2401.00001", "2401.00007"}),
        ("cat:hep-th", {"2401.00003"}),
        ("cat:astro-ph", {"2401.00004", "2401.00006"}),
        ("cat:astro", set()),  # an archive is a whole name, never a prefix of one
        ("cat:cs -cat:cs.RO", {"2401.00001"}),
        ("cat:cs OR cat:hep-th", {"2401.00001", "2401.00003", "2401.00005"}),
        ("robots cat:cs", {"2401.00005"}),
        ("robots -cat:cs", set()),
    ],
)
def test_archives_find_their_papers_everywhere(
    syntax_store: Store, query: str, found: set[str]
) -> None:
    assert everywhere(syntax_store, query) == found


# --- an unknown field is an error that lists the known ones -------------------------------------------


@pytest.mark.parametrize("query", ["foo:bar", "diffusion year:2024", "(a OR tilte:b)"])
def test_an_unknown_field_is_an_error_listing_the_known_ones(query: str) -> None:
    with pytest.raises(QueryError) as error:
        parse_query(query)
    message = str(error.value)
    assert "unknown field" in message
    for name in ("title", "abstract", "author", "cat", "source", "upvotes"):
        assert name in message


def test_an_unknown_field_reaches_the_cli_as_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--config", "/dev/null", "search", "foo:bar"]) == 2
    err = capsys.readouterr().err
    assert "unknown field 'foo:'" in err and "known fields" in err and "Traceback" not in err


async def test_an_unknown_field_reaches_chat_as_a_message(store: Store) -> None:
    ledger = Ledger(store, {}, DeliverySettings())
    chat = ChatService(store, ledger, Settings())
    with pytest.raises(ChatUsageError, match="unknown field 'foo:'"):
        await chat.search("foo:bar")
    for command in ("foo:bar", "subscribe foo:bar at 7:00"):
        with pytest.raises(ChatUsageError, match="known fields"):
            parse_command(command)


# --- the web: the search page, a search feed -----------------------------------------------------


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    settings = Settings.model_validate(
        {
            "store": {"database_url": f"sqlite:///{tmp_path / 'syntax.db'}"},
            "sources": {"hf": {"base_url": "http://127.0.0.1:9"}},
        }
    )
    async with open_bridge(settings) as opened:
        opened.store.add_papers(PAPERS, now=T0)
        yield opened


def client_for(bridge: Bridge) -> httpx.AsyncClient:
    site = FeedSite(bridge, FeedOptions(version_ttl=0, stale_grace=None))
    app = create_web_app(
        bridge,
        extra_routes=site.routes(),
        middleware=site.middleware(),
        fast_paths=site.fast_paths(),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://feeds.test")


async def feed_ids(client: httpx.AsyncClient, query: str) -> set[str]:
    response = await client.get("/feeds/search.atom", params={"q": query})
    assert response.status_code == 200, response.text
    return {e.id.rsplit("/", 1)[-1] for e in feedparser.parse(response.content).entries}


async def test_archives_in_a_search_feed_and_on_the_search_page(bridge: Bridge) -> None:
    async with client_for(bridge) as client:
        assert await feed_ids(client, "cat:cs") == {"2401.00001", "2401.00005"}
        page = await client.get("/search", params={"q": "cat:astro-ph"})
    assert page.status_code == 200
    assert "Galaxies four" in page.text and "Cosmology six" in page.text
    assert "Robots five" not in page.text


async def test_an_unknown_field_is_a_400_on_the_web(bridge: Bridge) -> None:
    async with client_for(bridge) as client:
        feed = await client.get("/feeds/search.atom", params={"q": "foo:bar"})
        page = await client.get("/search", params={"q": "foo:bar"})
    assert feed.status_code == 400 and "known fields" in feed.text
    assert page.status_code == 400 and "known fields" in page.text


# --- a query that is an arXiv id or a paper URL finds that paper ---------------------------------

ID_PAPERS = [
    make("2407.21772", "Generalization of agents"),
    make("2407.21773", "Another paper"),
    make("hep-th/9901001", "Old style string theory", categories=("hep-th",)),
    make("math/0101001", "Old style algebraic geometry", categories=("math.AG",)),
]


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("2407.21772", {"2407.21772"}),
        ("2407.21772v2", {"2407.21772"}),
        (" arXiv:2407.21772v1 ", {"2407.21772"}),
        ("hep-th/9901001", {"hep-th/9901001"}),
        ("HEP-TH/9901001v3", {"hep-th/9901001"}),
        ("math.AG/0101001v1", {"math/0101001"}),
        ("math/0101001", {"math/0101001"}),
        ("https://arxiv.org/abs/2407.21772", {"2407.21772"}),
        ("http://www.arxiv.org/abs/2407.21772v2", {"2407.21772"}),
        ("arxiv.org/pdf/2407.21772", {"2407.21772"}),
        ("https://arxiv.org/pdf/2407.21772v1.pdf", {"2407.21772"}),
        ("https://export.arxiv.org/abs/hep-th/9901001", {"hep-th/9901001"}),
        ("https://arxiv.org/abs/math.AG/0101001", {"math/0101001"}),
        ("https://huggingface.co/papers/2407.21772", {"2407.21772"}),
        ("huggingface.co/papers/2407.21772#community", {"2407.21772"}),
        ("https://www.huggingface.co/papers/2407.21772?x=1", {"2407.21772"}),
        ("<https://arxiv.org/abs/2407.21772|arxiv.org/abs/2407.21772>", {"2407.21772"}),
        ("2407.99999", set()),  # a well-formed id of a paper not stored
        # Not an id as a whole: words, searched as words (nothing holds these digits).
        ("2407.21772 agents", set()),
        ("\uff12\uff14\uff10\uff17.\uff12\uff11\uff17\uff17\uff12", set()),  # fullwidth digits
        ("https://example.org/abs/2407.21772", None),  # a URL elsewhere is no paper
    ],
)
def test_an_id_or_url_finds_that_paper_everywhere(
    store: Store, query: str, found: set[str] | None
) -> None:
    store.add_papers(ID_PAPERS, now=T0)
    if found is None:
        with pytest.raises(QueryError):
            parse_query(query)
        return
    assert everywhere(store, query, ID_PAPERS) == found


def test_an_id_is_the_whole_query() -> None:
    assert parse_query("2407.21772").root == PaperId(("2407.21772",))
    assert not isinstance(parse_query("2407.21772 agents").root, PaperId)
    assert not isinstance(parse_query('"2407.21772"').root, PaperId)
    with pytest.raises(QueryError, match="must be the whole query"):
        parse_query("agents https://arxiv.org/abs/2407.21772")


@pytest.mark.parametrize(
    "text",
    [
        "\u0662\u0664\u0660\u0667.\u0662\u0661\u0667\u0667\u0662",  # Arabic-Indic digits
        "\uff12\uff14\uff10\uff17.\uff12\uff11\uff17\uff17\uff12",  # fullwidth
        "hep-th/\u0669\u0669\u0660\u0661\u0660\u0660\u0661",
        "2407.21772v\u0662",
    ],
)
def test_ids_are_ascii_digits_only(text: str) -> None:
    assert paper_ids_of_query(text) is None
    assert split_arxiv_id(text) is None
    assert split_arxiv_id(f"https://arxiv.org/abs/{text}") is None


@given(st.text(max_size=80))
def test_finding_an_id_in_any_text_never_raises(text: str) -> None:
    found = paper_ids_of_query(text)
    assert found is None or all(i.isascii() for i in found)


async def test_an_id_in_a_search_feed_on_the_page_and_in_chat(bridge: Bridge) -> None:
    bridge.store.add_papers(ID_PAPERS, now=T0)
    async with client_for(bridge) as client:
        assert await feed_ids(client, "https://arxiv.org/abs/2407.21772v2") == {"2407.21772"}
        page = await client.get("/search", params={"q": "huggingface.co/papers/2407.21772"})
    assert page.status_code == 200
    assert "Generalization of agents" in page.text and "Another paper" not in page.text
    ledger = Ledger(bridge.store, {}, DeliverySettings())
    chat = ChatService(bridge.store, ledger, Settings())
    answer = await chat.search("2407.21772")
    assert [r.stored.paper.arxiv_id for r in answer.results.items] == ["2407.21772"]


# --- dates: the listing day ------------------------------------------------------------------------

DATED = [
    make("2401.10001", "Diffusion early", listed_on=date(2023, 12, 31)),
    make("2401.10002", "Diffusion new year", listed_on=date(2024, 1, 1)),
    make("2401.10003", "Diffusion summer", listed_on=date(2024, 8, 1)),
    make("2401.10004", "Survey summer", listed_on=date(2024, 8, 31)),
    make("2401.10005", "Diffusion autumn", listed_on=date(2024, 9, 1)),
    make("2401.10006", "Diffusion leap", listed_on=date(2024, 2, 29)),
    make("2401.10007", "Diffusion later", listed_on=date(2025, 1, 1)),
    make("2401.10008", "Diffusion undated", listed_on=None),
]


def dated(*numbers: int) -> set[str]:
    return {f"2401.{10000 + n}" for n in numbers}


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("date:2024-08-01", dated(3)),
        ("date:2024-08", dated(3, 4)),
        ("date:2024", dated(2, 3, 4, 5, 6)),
        ("date:2024-02-29", dated(6)),
        ("date:2024-01..2024-08", dated(2, 3, 4, 6)),
        ("date:2024-08-01..2024-09-01", dated(3, 4, 5)),
        ("date:2024-08..", dated(3, 4, 5, 7)),
        ("date:..2024-01", dated(1, 2)),
        ("date>=2025-01-01", dated(7)),
        ("date>2024-08", dated(5, 7)),
        ("date<2024", dated(1)),
        ("date<=2024-01", dated(1, 2)),
        ("date=2024-08-31", dated(4)),
        ("date:>=2024-09", dated(5, 7)),
        ("DATE:2023", dated(1)),
        ("diffusion date:2024-08", dated(3)),
        ("survey date:2024-08", dated(4)),
        ("diffusion -date:2024", dated(1, 7, 8)),  # no listing day: not in 2024
        ("diffusion date<2024", dated(1)),
        ("date:2023 OR date:2025", dated(1, 7)),  # below the top level: checked one by one
        ("(diffusion date:2024-08) OR survey", dated(3, 4)),
        ("date:2026", set()),
        ("cat:cs date:2024-09", dated(5)),
    ],
)
def test_dates_find_their_papers_everywhere(store: Store, query: str, found: set[str]) -> None:
    store.add_papers(DATED, now=T0)
    assert everywhere(store, query, DATED) == found


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("date:2024-02-30", "no such date '2024-02-30'"),
        ("date:2024-13", "no such date '2024-13'"),
        ("date:24", "bad date '24'"),
        ("date:2024/08", "bad date '2024/08'"),
        ("date:yesterday", "bad date 'yesterday'"),
        ("date:2024-06..2024-01", "ends before it starts"),
        ("date:2024-01..2024-99", "no such date '2024-99'"),
        ("date:..", "needs a start or an end"),
        ("date>", "bad date nothing"),
        ("date>=\u0662\u0660\u0662\u0664", "bad date"),
        ('date:"2024"', "takes a single value"),
        ("date:", "needs a term right after the colon, e.g. date:2024-08"),
        ("-date:2024", "needs something to look for"),
    ],
)
def test_a_bad_date_is_an_error_naming_it(query: str, message: str) -> None:
    with pytest.raises(QueryError, match=re.escape(message)):
        parse_query(query)


def test_a_bad_date_points_at_the_bad_part() -> None:
    with pytest.raises(QueryError) as error:
        parse_query("diffusion date:2024-01..2024-13")
    assert error.value.position == len("diffusion date:2024-01..")


_periods = st.one_of(
    st.integers(2022, 2026).map(str),
    st.tuples(st.integers(2022, 2026), st.integers(1, 12)).map(lambda p: f"{p[0]}-{p[1]:02d}"),
    st.dates(date(2022, 1, 1), date(2026, 12, 31)).map(date.isoformat),
)
_date_conditions = st.one_of(
    _periods.map(lambda p: f"date:{p}"),
    st.tuples(st.sampled_from([">=", ">", "<=", "<", "="]), _periods).map(
        lambda c: f"date{c[0]}{c[1]}"
    ),
    st.tuples(_periods, _periods).map(lambda r: f"date:{min(r)}..{max(r)}"),
    _periods.map(lambda p: f"date:{p}.."),
    _periods.map(lambda p: f"date:..{p}"),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(condition=_date_conditions, negated=st.booleans())
def test_date_ranges_agree_between_subscriptions_and_the_index(
    store: Store, condition: str, negated: bool
) -> None:
    if not store.count_papers():
        days = [date(2022, 1, 1) + timedelta(days=41 * n) for n in range(45)]
        store.add_papers(
            [make(f"2402.{n:05d}", f"Diffusion {n}", listed_on=day) for n, day in enumerate(days)]
            + [make("2402.99999", "Diffusion undated")],
            now=T0,
        )
    try:
        parse_query(condition)
    except QueryError:
        return  # e.g. 2024-05..2024 (the end's period starts before the start's)
    query = f"diffusion {'-' if negated else ''}{condition}"
    papers = [s.paper for s in store.iter_papers()]
    assert searched(store, query) == brute(query, papers)


# Stored out of day order, as a backfill stores old days after new ones, and several papers a
# day: the seq bounds of a day range (``SearchIndex.seq_range``) must hold whatever the order.
_SHUFFLED_DAYS = [date(2022, 1, 1) + timedelta(days=(17 * n) % 45) for n in range(90)]


def _store_shuffled(store: Store) -> None:
    if not store.count_papers():
        store.add_papers(
            [
                make(f"2403.{n:05d}", f"Diffusion {n}", listed_on=day)
                for n, day in enumerate(_SHUFFLED_DAYS)
            ]
            + [make("2403.99999", "Diffusion undated")],
            now=T0,
        )


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    since=st.dates(date(2021, 12, 20), date(2022, 3, 10)),
    days=st.integers(0, 70),
    shape=st.sampled_from(["range", "since", "before"]),
    limit=st.sampled_from([1, 5, 500]),
    top_limit=st.sampled_from([0, 3, 20, 5000]),
)
def test_date_search_finds_papers_stored_out_of_day_order(
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
    since: date,
    days: int,
    shape: str,
    limit: int,
    top_limit: int,
) -> None:
    # limit: the most listed days a range may span and still bound the walk (5: some ranges
    # here are bounded, some not; both must give every match); top_limit: the most for which
    # a longer range with an end bounds its newest seq alone.
    monkeypatch.setattr(search_index, "MAX_RANGE_DAYS", limit)
    monkeypatch.setattr(search_index, "MAX_TOP_DAYS", top_limit)
    _store_shuffled(store)
    last = since + timedelta(days=days)
    condition = {
        "range": f"date:{since.isoformat()}..{last.isoformat()}",
        "since": f"date>={since.isoformat()}",
        "before": f"date<{last.isoformat()}",
    }[shape]
    papers = [s.paper for s in store.iter_papers()]
    for query in (f"diffusion {condition}", condition, f"diffusion -{condition}"):
        want = brute(query, papers)
        assert searched(store, query) == want, query
        # The newest three, and all of them counted (a bound must not cut the count short).
        newest = search_store(store, query, limit=3, order="recent")
        seqs = {s.paper.arxiv_id: s.seq for s in store.iter_papers()}
        assert [r.stored.paper.arxiv_id for r in newest.items] == sorted(
            want, key=lambda arxiv_id: -seqs[arxiv_id]
        )[:3], query
        assert newest.total == len(want), query


def test_seq_range_bounds_the_papers_of_the_listing_days(store: Store) -> None:
    _store_shuffled(store)
    stored = list(store.iter_papers())

    def bounds(query: str) -> tuple[int, int] | None:
        plan = search_index.compile_query(parse_query(query))
        with store.engine.connect() as conn:
            return store.search_index.seq_range(conn, plan.conditions)

    january = [s.seq for s in stored if s.paper.listed_on and s.paper.listed_on.month == 1]
    assert bounds("diffusion date:2022-01") == (min(january), max(january))
    one_day = [s.seq for s in stored if s.paper.listed_on == date(2022, 1, 18)]
    assert len(one_day) > 1 and bounds("date:2022-01-18") == (min(one_day), max(one_day))
    assert bounds("diffusion date:2023") == (1, 0)  # no paper listed then: an empty range
    assert bounds("diffusion -date:2022-01") is None  # an exclusion is not a range to search
    # Both conditions hold: the intersection of their bounds.
    both = bounds("date>=2022-01-10 date<2022-01-20")
    wanted = [
        s.seq
        for s in stored
        if s.paper.listed_on and date(2022, 1, 10) <= s.paper.listed_on < date(2022, 1, 20)
    ]
    assert both is not None and both[0] <= min(wanted) and both[1] >= max(wanted)


def test_a_range_of_many_listed_days_bounds_its_newest_seq_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past MAX_RANGE_DAYS listed days a range with an end still bounds the newest seq
    (up to MAX_TOP_DAYS days); one without an end, and a longer one, are left unbounded."""
    _store_shuffled(store)
    stored = list(store.iter_papers())
    monkeypatch.setattr(search_index, "MAX_RANGE_DAYS", 3)

    def bounds(query: str) -> tuple[int, int] | None:
        plan = search_index.compile_query(parse_query(query))
        with store.engine.connect() as conn:
            return store.search_index.seq_range(conn, plan.conditions)

    papers = [s.paper for s in stored]
    january = [s.seq for s in stored if s.paper.listed_on and s.paper.listed_on.month == 1]
    before = [s.seq for s in stored if s.paper.listed_on and s.paper.listed_on < date(2022, 1, 20)]
    for top_limit in (5000, 3):
        monkeypatch.setattr(search_index, "MAX_TOP_DAYS", top_limit)
        assert bounds("diffusion date:2022-01") == ((0, max(january)) if top_limit > 3 else None)
        assert bounds("diffusion date<2022-01-20") == ((0, max(before)) if top_limit > 3 else None)
        assert bounds("diffusion date>=2022-01-01") is None
        for query in ("diffusion date:2022-01", "diffusion date<2022-01-20", "date<2022-01-20"):
            assert searched(store, query) == brute(query, papers), query


@given(st.text(max_size=40))
def test_the_parser_raises_only_query_errors_on_any_date_text(text: str) -> None:
    for query in (f"date:{text}", f"date>={text}", f"diffusion date<{text}"):
        try:
            parse_query(query)
        except QueryError:
            pass


async def test_dates_in_a_search_feed_and_in_chat(bridge: Bridge) -> None:
    bridge.store.add_papers(DATED, now=T0)
    async with client_for(bridge) as client:
        assert await feed_ids(client, "diffusion date:2024-08") == dated(3)
        bad = await client.get("/feeds/search.atom", params={"q": "date:2024-02-30"})
        page = await client.get("/search", params={"q": "date:2024-13"})
    assert bad.status_code == 400 and "no such date '2024-02-30'" in bad.text
    assert page.status_code == 400 and "no such date" in page.text
    ledger = Ledger(bridge.store, {}, DeliverySettings())
    chat = ChatService(bridge.store, ledger, Settings())
    answer = await chat.search("date>=2024-09")
    assert {r.stored.paper.arxiv_id for r in answer.results.items} == dated(5, 7)
    with pytest.raises(ChatUsageError, match="no such date"):
        parse_command("diffusion date:2024-02-30")


def test_a_bad_date_is_exit_2_in_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["--config", "/dev/null", "search", "date:2024-02-30"]) == 2
    assert "no such date '2024-02-30'" in capsys.readouterr().err


# --- the web page: the same hints as the CLI and chat, and a short syntax help ------------------


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("robots or survey", "write OR in capitals"),
        ("robo*", "not wildcards"),
        ("stars>100", "only upvotes and date can be compared"),
        ("2401.00005 robots", "only as the whole query"),
    ],
)
async def test_the_search_page_gives_the_hints_the_cli_and_chat_give(
    bridge: Bridge, query: str, says: str
) -> None:
    assert any(says in hint for hint in empty_result_hints(query))
    async with client_for(bridge) as client:
        page = await client.get("/search", params={"q": query})
    assert page.status_code == 200
    assert '<ul class="hints" id="hints">' in page.text
    assert html.escape(says, quote=True) in page.text or says in page.text


async def test_hints_only_for_an_empty_result_and_help_is_escaped_plain_html(
    bridge: Bridge,
) -> None:
    async with client_for(bridge) as client:
        found = await client.get("/search", params={"q": "robo* OR robots"})
        empty = await client.get("/search")
        hostile = await client.get("/search", params={"q": "<b>x</b> or <script>"})
    # robo* is a habit from elsewhere, but this query found papers: no hint.
    assert empty_result_hints("robo* OR robots")
    shown = re.sub(r"<[^>]+>", "", found.text)  # matched words are marked in the title
    assert "Robots five" in shown and 'id="hints"' not in found.text
    assert 'id="hints"' not in empty.text
    for page in (found, empty, hostile):
        assert '<details class="syntax" id="syntax"' in page.text
        assert "<summary>How to write a query</summary>" in page.text
        assert "<code>date:2024-08  date&gt;=2025-01-01</code>" in page.text
        assert "<code>&#34;world model&#34;</code>" in page.text
        assert "<script" not in page.text
    assert '<details class="syntax" id="syntax" open>' in empty.text
    assert "&lt;b&gt;x&lt;/b&gt;" in hostile.text and "<b>x</b>" not in hostile.text
    assert 'id="hints"' in hostile.text


# --- exact words: =word matches the word only as written -----------------------------------------

WORDED = [
    make("2403.00001", "Generalized Quasi-Einstein manifolds"),
    make("2403.00002", "Generalization bounds for deep models", abstract="We prove bounds."),
    make("2403.00003", "A generalized linear model", abstract="One model, no more."),
    make("2403.00004", "Generalisation in Pre-Trained LLMs", abstract="Naïve agents."),
    make("2403.00005", "Survey", abstract="We survey generalization theory.", ai_keywords=("GPs",)),
    make("2403.00006", "Many models", abstract="Pretrained models of the GPS signal."),
    make("2403.00007", "Generalizing agents", abstract="It generalizes."),
    make("2403.00008", "Bounds", abstract="Generalization error bounds, and generalization."),
]


def worded(*numbers: int) -> set[str]:
    return {f"2403.{n:05d}" for n in numbers}


@pytest.mark.parametrize(
    ("query", "found"),
    [
        # The word as usual finds every spelling and inflection; =word only itself.
        ("generalization", worded(1, 2, 3, 4, 5, 7, 8)),
        ("=generalization", worded(2, 5, 8)),
        ("=Generalization", worded(2, 5, 8)),  # case is folded
        ("=generalized", worded(1, 3)),
        ("=generalisation", worded(4)),  # no spelling variant either
        ("=generalizes", worded(7)),
        ("=model", worded(3)),  # a word that is its own term: "models" is not it
        ("=models", worded(2, 6)),
        ("model -=models", worded(3)),
        ("=naive", worded(4)),  # accents are folded
        ("=llms", worded(4)),
        ("=llm", set()),  # no acronym plural folding
        ("=pretrained", worded(4, 6)),  # a hyphenated word joined, as written
        ("=pre-trained", worded(4, 6)),
        ("=gps", worded(5, 6)),  # GPs and GPS both fold to gps
        ("title:=generalization", worded(2)),
        ('"=generalization bounds"', worded(2)),
        ('"generalization =bounds"', worded(2)),
        ('"=generalization error"', worded(8)),
        ('"=generalized linear"', worded(3)),
        ('"=generalization =bounds"', worded(2)),
        ("=generalization OR =generalized", worded(1, 2, 3, 5, 8)),
        ("=generalization -survey", worded(2, 8)),
        ("generalization -=generalization", worded(1, 3, 4, 7)),
        ("author:=lecun", set()),  # names are never stemmed: = changes nothing there
    ],
)
def test_exact_words_find_only_themselves_everywhere(
    store: Store, query: str, found: set[str]
) -> None:
    store.add_papers(WORDED, now=T0)
    assert everywhere(store, query, WORDED) == found


def test_exact_words_parse_to_their_own_terms() -> None:
    assert parse_query("=generalization").root == Term("=generalization")
    assert parse_query("=Generalized").root == Term("=generalized")
    assert parse_query("author:=LeCun").root == Term("lecun", ("authors",))
    phrase = parse_query('"=generalization bounds"').root
    assert isinstance(phrase, Phrase)
    assert phrase.slots == ((("=generalization",),), (("bound",),))
    for bad in ("=", '"="', "= ="):
        with pytest.raises(QueryError):
            parse_query(bad)


def test_exact_hits_quote_the_paper_and_say_why(store: Store) -> None:
    store.add_papers(WORDED, now=T0)
    results = search_store(store, "=generalization", limit=10)
    by_id = {r.stored.paper.arxiv_id: r for r in results.items}
    assert by_id["2403.00008"].why == "matched Generalization in the abstract"
    assert [h.text for h in by_id["2403.00008"].hits] == ["Generalization", "generalization"]
    assert [h.text for h in by_id["2403.00005"].hits] == ["generalization"]


def test_the_index_format_changed_so_stored_indexes_rebuild() -> None:
    from bridge.store.search_index import INDEX_FORMAT, fingerprint

    assert INDEX_FORMAT == "6" and fingerprint().startswith("6:")


@given(st.text(max_size=60))
def test_the_parser_raises_only_query_errors_on_any_text(text: str) -> None:
    for query in (text, f"={text}", f'"={text}"', f"title:={text}"):
        try:
            parsed = parse_query(query)
        except QueryError:
            continue
        match_paper(parsed, WORDED[1])


async def test_exact_words_in_a_search_feed_and_chat(bridge: Bridge) -> None:
    bridge.store.add_papers(WORDED, now=T0)
    async with client_for(bridge) as client:
        assert await feed_ids(client, "=generalized") == worded(1, 3)
    ledger = Ledger(bridge.store, {}, DeliverySettings())
    chat = ChatService(bridge.store, ledger, Settings())
    answer = await chat.search('"=generalization bounds"')
    assert [r.stored.paper.arxiv_id for r in answer.results.items] == ["2403.00002"]


_VOCABULARY = [
    "generalization",
    "Generalized",
    "generalisation",
    "bounds",
    "bound",
    "model",
    "models",
    "pre-trained",
    "pretrained",
    "LLMs",
    "gps",
    "agents",
    "naive",
    "error",
]


@st.composite
def _exact_queries(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(_VOCABULARY), min_size=1, max_size=3))
    marked = [("=" if draw(st.booleans()) else "") + w for w in words]
    if len(marked) > 1 and draw(st.booleans()):
        return '"' + " ".join(marked) + '"'
    joiner = draw(st.sampled_from([" ", " OR "]))
    query = joiner.join(marked)
    if draw(st.booleans()):
        query += " -" + draw(st.sampled_from(["=survey", "=models", "survey", "=generalized"]))
    return query


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(query=_exact_queries())
def test_exact_words_agree_between_subscriptions_and_the_index(store: Store, query: str) -> None:
    if not store.count_papers():
        store.add_papers(WORDED, now=T0)
    everywhere(store, query, WORDED)
