"""Feeds show the archive: imported and backfilled papers, newest listing day first, on both stores."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import feedparser
import httpx
import pytest

import bridge.search as search_module
import bridge.search_newest as search_newest
import bridge.store.search_index as search_index_module
from adapters.atom import FeedOptions, FeedSite
from bridge import commands
from bridge.app import Bridge, open_bridge
from bridge.config import Settings
from bridge.importer import import_paths
from bridge.models import Match, Paper
from bridge.query import match_paper, parse_query
from bridge.query.abbreviations import long_key
from bridge.query.expansions import expand, label_hits
from bridge.search import SearchBudget, search_store
from bridge.search_newest import newest_matches
from bridge.store import Store, open_store
from bridge.web import create_web_app
from tests.fake_upstream import FakeUpstream, fixture

SHARED = Path("/work/shared/fixtures")
FIXTURES = SHARED if SHARED.is_dir() else Path(__file__).parent / "fixtures"
# What a new user imports: the shared fixture listings (HF API, HF page, arXiv RSS and API).
LISTING_FILES = [
    FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json",
    FIXTURES / "hf" / "papers_page_date_2024-08-01.html",
    *sorted((FIXTURES / "arxiv").glob("*.xml")),
]


def settings_for(database_url: str, hf_url: str = "http://127.0.0.1:9") -> Settings:
    return Settings.model_validate(
        {
            "store": {"database_url": database_url},
            "sources": {"hf": {"base_url": hf_url}},
            "subscriptions": [{"name": "generalization", "query": "generalization"}],
            "fetch": {"max_attempts": 2, "backoff_base_seconds": 0.01, "timeout_seconds": 2},
        }
    )


@pytest.fixture
async def bridge(database_url: str) -> AsyncIterator[Bridge]:
    async with open_bridge(settings_for(database_url)) as opened:
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


def listing_order(store: Store, ids: list[str]) -> list[tuple[date, int]]:
    """(listing day, seq) of the papers behind feed entry ids, in the feed's order."""
    by_id = {s.paper.arxiv_id: s for s in store.listings.newest(100_000)}
    return [(by_id[i].paper.listed_on, by_id[i].seq) for i in ids]  # type: ignore[misc]


def arxiv_ids(feed: feedparser.FeedParserDict) -> list[str]:
    return [e.id.removeprefix("https://arxiv.org/abs/") for e in feed.entries]


async def test_imported_fixtures_fill_the_all_search_and_subscription_feeds(
    bridge: Bridge,
) -> None:
    counts = import_paths(bridge.store, LISTING_FILES, parallel=False)
    assert counts.new > 50
    listed = bridge.store.listings.newest(100_000)
    async with client_for(bridge) as client:
        everything = feedparser.parse((await client.get("/feeds/all.atom")).content)
        search = feedparser.parse(
            (await client.get("/feeds/search.atom", params={"q": "generalization"})).content
        )
        subscription = feedparser.parse(
            (await client.get("/feeds/subscriptions/generalization.atom")).content
        )
        as_json = (await client.get("/feeds/all.json")).json()
    # The newest 50 papers by listing day, newest first, whatever their order of storing.
    assert arxiv_ids(everything) == [s.paper.arxiv_id for s in listed[:50]]
    order = listing_order(bridge.store, arxiv_ids(everything))
    assert order == sorted(order, reverse=True)
    assert [item["id"] for item in as_json["items"]] == [e.id for e in everything.entries]
    # The search feed holds every match (fewer than 50 here), newest listing day first:
    # arXiv API results too, on the day arXiv's schedule gives them (an estimate).
    matching = search_store(bridge.store, "generalization", limit=100).items
    assert all(r.stored.paper.listed_on for r in matching)
    assert any(r.stored.paper.listed_on_estimated for r in matching)
    assert len(matching) >= 5
    assert set(arxiv_ids(search)) == {r.stored.paper.arxiv_id for r in matching}
    order = listing_order(bridge.store, arxiv_ids(search))
    assert order == sorted(order, reverse=True)
    assert all(e.content[0].value.startswith("matched ") for e in search.entries)
    # A subscription configured today shows the archive's matches at once.
    assert arxiv_ids(subscription) == arxiv_ids(search)


def hf_day(items: list[dict[str, object]], day: date) -> str:
    for item in items:
        item["paper"]["submittedOnDailyAt"] = f"{day.isoformat()}T00:00:00.000Z"  # type: ignore[index]
    return json.dumps(items)


async def test_backfilled_days_fill_the_feeds_and_change_their_validators(
    database_url: str,
) -> None:
    items = json.loads(fixture("hf/daily_papers_api_limit30_2026-06-13.json"))
    with FakeUpstream() as up:
        first = date(2026, 6, 8)
        for n in range(3):
            day = first + timedelta(days=n)
            up.add(
                "/api/daily_papers",
                hf_day(items[n * 10 : n * 10 + 10], day),
                content_type="application/json",
                query={"limit": 100, "p": 0, "date": day.isoformat()},
            )
        settings = settings_for(database_url, up.base_url)
        async with open_bridge(settings) as opened:
            # One paper polled before, on a later day than the backfill loads.
            polled = Paper(
                "2606.99999", "Generalization of polled things", listed_on=date(2026, 6, 12)
            )
            opened.store.add_papers([polled])
            async with client_for(opened) as client:
                before = await client.get("/feeds/all.atom")
                assert len(feedparser.parse(before.content).entries) == 1
                search_before = await client.get("/feeds/search.json", params={"q": "models"})
                await commands.backfill(
                    settings,
                    start=first,
                    end=first + timedelta(days=2),
                    arxiv_categories=None,
                    hf=True,
                    restart=False,
                )
                after = await client.get(
                    "/feeds/all.atom", headers={"If-None-Match": before.headers["etag"]}
                )
                again = await client.get(
                    "/feeds/all.atom", headers={"If-None-Match": after.headers["etag"]}
                )
                search_after = await client.get(
                    "/feeds/search.json",
                    params={"q": "models"},
                    headers={"If-None-Match": search_before.headers["etag"]},
                )
    # The archive changed, so the validators did: the reader gets the new feed, then a 304.
    assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"]
    assert again.status_code == 304
    # A search feed too: empty before, the backfilled matches after, under a new ETag.
    assert search_before.json()["items"] == []
    assert search_after.status_code == 200 and search_after.json()["items"]
    assert search_after.headers["etag"] != search_before.headers["etag"]
    feed = feedparser.parse(after.content)
    ids = arxiv_ids(feed)
    assert len(ids) == 31 and ids[0] == "2606.99999"
    # The backfilled days follow, newest day first; within a day, as stored, newest first.
    backfilled = [item["paper"]["id"] for item in items[:30]]
    expected = [*backfilled[20:30][::-1], *backfilled[10:20][::-1], *backfilled[:10][::-1]]
    assert ids[1:] == expected


# -- the order itself, against a brute force ---------------------------------------------------


def scrambled_archive(count: int, seed: int = 5) -> list[Paper]:
    """Papers on 40 listing days, stored in no order of day (imports, backfills, polls)."""
    rng = random.Random(seed)
    words = ["sparse", "graph", "diffusion", "world", "robot", "protein", "language", "vision"]
    papers = []
    for n in range(count):
        title = " ".join(rng.sample(words, 3))
        papers.append(
            Paper(
                f"2606.{n:05d}",
                f"{title} models {n}",
                abstract=f"We study {rng.choice(words)} {rng.choice(words)} models.",
                listed_on=date(2026, 1, 1) + timedelta(days=rng.randrange(40)),
                upvotes=rng.choice([None, 0, 3, 12, 40]),
            )
        )
    return papers


UNLIMITED = SearchBudget(papers=1_000_000, seconds=1e9)


def brute_force(store: Store, query: str, limit: int) -> list[str]:
    parsed = parse_query(query)
    everything = store.listings.newest(100_000)  # already newest listing day first
    return [s.paper.arxiv_id for s in everything if match_paper(parsed, s.paper) is not None][
        :limit
    ]


@pytest.mark.parametrize(("few", "bucket"), [(1000, None), (3, None), (3, 8)])
def test_newest_matches_are_the_newest_by_listing_day(
    store: Store, few: int, bucket: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both ways of answering (sort the few matches, walk the days) give the brute force's
    order, over an archive whose storing order is not its listing order. With buckets of 8
    seqs, PostgreSQL reads a window of days through the buckets its seqs span, and past 16
    buckets through the seqs alone (``SearchIndex._seq_range``)."""
    monkeypatch.setattr(search_newest, "FEW", few)
    if bucket is not None:
        monkeypatch.setattr(search_index_module, "SEQ_BUCKET", bucket)
        monkeypatch.setattr(search_index_module, "MAX_FLAG_BUCKETS", 16)
    papers = scrambled_archive(300)
    for start in range(0, len(papers), 37):  # many batches, as many imports would store them
        store.add_papers(papers[start : start + 37], announce=False)
    store.add_papers([Paper("2606.99000", "Undated sparse graph", abstract="sparse")])
    for query in [
        "sparse",
        "protein models",
        '"graph diffusion"',
        "robot OR vision",
        "sparse upvotes>=10",
        "-sparse upvotes>=3",  # the index cannot narrow it: each window's papers are checked
        "title:world -language",
        "abstract:sparse",  # a word in one field: tested on the doc
        '"sparse graph" OR abstract:diffusion',
        # The query's own listing days: the walk starts and stops there.
        "sparse date:2026-01-05",
        "date:2026-01-03..2026-01-12",
        "graph date<2026-01-08",
        "robot date>=2026-02-01",
        "sparse -date:2026-01",
        "nothing-matches-this",
    ]:
        for limit in (1, 7, 50):
            # Order is what is tested here, not time: a loaded machine must not fail it.
            results = newest_matches(store, query, limit=limit, budget=UNLIMITED)
            found = [r.stored.paper.arxiv_id for r in results]
            assert found == brute_force(store, query, limit), (query, limit)
    # Undated papers are in no listing, as on the listing pages; search still finds them.
    assert "2606.99000" not in [
        r.stored.paper.arxiv_id for r in newest_matches(store, "undated", limit=5)
    ]
    assert search_store(store, "undated").total == 1


def test_a_feed_of_old_listing_days_walks_only_those_days(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``word date:…`` of days long before the newest: the walk over listing days starts at
    the query's last day and stops at its first, whatever lies after (it walked every newer
    window first, and answered "too broad" at 1,000,000 papers)."""
    monkeypatch.setattr(search_newest, "FEW", 3)
    papers = scrambled_archive(300)
    later = [
        Paper(f"2607.{n:05d}", f"sparse later {n}", listed_on=date(2026, 3, 1) + timedelta(days=n))
        for n in range(200)
    ]
    store.add_papers(papers + later, announce=False)
    windows: list[tuple[date, date]] = []
    seqs_of = store.search_index.listing_seqs

    def counting(conn, first: date, last: date):  # type: ignore[no-untyped-def]
        windows.append((first, last))
        return seqs_of(conn, first, last)

    monkeypatch.setattr(store.search_index, "listing_seqs", counting)
    query = "sparse date:2026-01-03..2026-01-06"
    found = [r.stored.paper.arxiv_id for r in newest_matches(store, query, limit=50)]
    assert found == brute_force(store, query, 50) and found
    assert windows and all(
        date(2026, 1, 3) <= first <= last <= date(2026, 1, 6) for first, last in windows
    )


def test_listing_seqs_are_the_first_and_last_seq_of_the_days(store: Store) -> None:
    """The seq range of a window of listing days (on SQLite found day by day through the
    index) is the plain min and max over the papers listed then, in an archive stored in no
    order of day; a window with no paper listed has none."""
    papers = scrambled_archive(200, seed=9)
    for start in range(0, len(papers), 23):
        store.add_papers(papers[start : start + 23], announce=False)
    store.add_papers([Paper("2606.99000", "Undated sparse graph", abstract="sparse")])
    seqs = {s.paper.arxiv_id: s.seq for s in store.iter_papers()}
    rng = random.Random(4)
    with store.engine.connect() as conn:
        for _ in range(60):
            first = date(2025, 12, 28) + timedelta(days=rng.randrange(48))
            last = first + timedelta(days=rng.choice([0, 0, 1, 3, 9, 30, 60]))
            listed = [seqs[p.arxiv_id] for p in papers if first <= p.listed_on <= last]
            want = (min(listed), max(listed)) if listed else None
            assert store.search_index.listing_seqs(conn, first, last) == want, (first, last)


def test_an_empty_store_and_a_zero_limit_answer_nothing(database_url: str) -> None:
    store = open_store(database_url)
    try:
        assert newest_matches(store, "sparse", limit=50) == []
        store.add_papers(scrambled_archive(5))
        assert newest_matches(store, "models", limit=0) == []
    finally:
        store.close()


# -- why each entry is there, from the index ---------------------------------------------------


def text_why(store: Store, query: str, paper: Paper) -> str | None:
    """The "matched …" line as analyzing the paper's text gives it (what feeds said before)."""
    expanded = expand(parse_query(query), store.expansion_table())
    hits = match_paper(expanded.query, paper)
    assert hits is not None
    return Match("", "", label_hits(hits, expanded.labels)).why() if hits else None


def why_papers() -> list[Paper]:
    return [
        *scrambled_archive(120),
        Paper(
            "2606.90001",
            "Sparse world models",
            abstract="Sparse protein models; out-of-distribution (OOD) robustness.",
            ai_summary="A sparse robot.",
            categories=("cs.LG", "q-bio.BM"),
            listed_on=date(2026, 3, 1),
        ),
        Paper(
            "2606.90003",
            "Shifts",
            abstract="Out-of-distribution (OOD) shifts in graph models.",
            listed_on=date(2026, 3, 2),
        ),
        Paper(
            "2606.90002",
            "Graph diffusion for proteins",
            abstract="Out of distribution detection of graph diffusion models.",
            authors=("Ada Lovelace",),
            categories=("cs.AI",),
            listed_on=date(2026, 3, 2),
        ),
    ]


def read_why(why: str | None) -> dict[str, set[str]]:
    """A "matched …" line as field -> its words, each as the analyzer reads it."""
    if why is None:
        return {}
    places = why.removeprefix("matched ").split("; ")
    out: dict[str, set[str]] = {}
    for place in places:
        words, field = place.rsplit(" in the ", 1)
        out[field] = {long_key(word) for word in words.split(", ")}
    return out


# The index's line is the text's line, word for word.
SAME_WORDING = [
    "sparse",
    "protein models",
    '"graph diffusion"',
    "robot OR vision",
    "title:world -language",
    "sparse upvotes>=10",
    "cat:cs.LG sparse",
    "world OR (graph -robot)",
    "abstract:diffusion OR title:diffusion",
    "author:lovelace diffusion",
]


@pytest.mark.parametrize("query", SAME_WORDING)
def test_the_index_says_why_an_entry_matched_as_its_text_does(
    store: Store, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add_papers(why_papers(), announce=False)
    checked: list[str] = []
    check = search_module._Checker.__call__

    def counting(self: search_module._Checker, paper: Paper):  # type: ignore[no-untyped-def]
        checked.append(paper.arxiv_id)
        return check(self, paper)

    monkeypatch.setattr(search_module._Checker, "__call__", counting)
    results = newest_matches(store, query, limit=50, budget=UNLIMITED)
    assert results, query
    # No paper's text was analyzed but where a field writes a word otherwise ("proteins").
    assert set(checked) <= {"2606.90002"}, query
    for result in results:
        assert result.why == text_why(store, query, result.stored.paper), (query, result)


def test_the_index_names_the_fields_the_text_holds_in_the_query_words(store: Store) -> None:
    store.add_papers(why_papers(), announce=False)
    whys = {
        r.stored.paper.arxiv_id: r.why
        for r in newest_matches(store, "protein", limit=50, budget=UNLIMITED)
    }
    # "proteins" in the title, "protein" in the abstract: the words the text shows, in each
    # field the paper holds them in, and only there.
    assert whys["2606.90002"] == "matched proteins in the title"
    assert whys["2606.90001"] == "matched protein in the abstract"
    for arxiv_id, why in whys.items():
        paper = next(p for p in why_papers() if p.arxiv_id == arxiv_id)
        fields = {h.field for h in match_paper(parse_query("protein"), paper) or ()}
        named = {f for f in ("title", "abstract", "AI summary") if f"in the {f}" in (why or "")}
        assert named == {"AI summary" if f == "ai_summary" else f for f in fields}, arxiv_id


def test_widened_forms_keep_the_papers_own_spelling(store: Store) -> None:
    store.add_papers(why_papers(), announce=False)
    for query in ("OOD", "OOD sparse", "out-of-distribution"):
        results = newest_matches(store, query, limit=50, budget=UNLIMITED)
        assert results, query
        for result in results:
            expected = read_why(text_why(store, query, result.stored.paper))
            assert read_why(result.why) == expected, query
    # A paper holding only an added form ("out of distribution" for OOD) is said from its
    # text, in its own spelling, labelled with the query's word.
    whys = {r.stored.paper.arxiv_id: r.why for r in newest_matches(store, "OOD", limit=5)}
    assert whys["2606.90002"] == "matched Out of distribution (OOD) in the abstract"
