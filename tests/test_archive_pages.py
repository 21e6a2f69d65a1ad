"""The archive on the web page, on SQLite and PostgreSQL: the front page, day/week/month views,
cards, the search page's sort and paging (the same order as `paperbridge search --sort`), and
snippets that show and mark what matched."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.atom import FeedOptions, FeedSite
from adapters.atom.archive_pages import PAGE_SIZE
from adapters.atom.cards import to_card
from adapters.atom.periods import BadPeriod, parse_period
from bridge import cli
from bridge.app import Bridge, open_bridge
from bridge.config import Settings
from bridge.importer import import_paths
from bridge.models import Hit, Paper, StoredPaper
from bridge.search import SORTS
from bridge.store.listing import ListingSort
from bridge.web import create_web_app

FIXTURES = Path(__file__).parent / "fixtures"
CARD_ID = re.compile(r'<article class="paper card" id="paper-([^"]+)"')


def settings_for(database_url: str) -> Settings:
    return Settings.model_validate(
        {
            "store": {"database_url": database_url},
            "sources": {"hf": {"base_url": "http://127.0.0.1:9"}},
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
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://pages.test")


def card_ids(html: str) -> list[str]:
    return CARD_ID.findall(html)


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a rel="{rel}"[^>]* href="([^"]+)"', html)
    return unescape(found.group(1)) if found else None


def paper(n: int, day: date, **changes: Any) -> Paper:
    values: dict[str, Any] = dict(
        arxiv_id=f"2408.{10000 + n}",
        title=f"Paper number {n}",
        abstract=f"An abstract about topic {n}.",
        authors=("Ada Lovelace",),
        source="hf",
        listed_on=day,
        upvotes=n,
    )
    values.update(changes)
    return Paper(**values)


async def test_a_new_user_sees_imported_fixtures_on_the_front_page_and_by_day(
    bridge: Bridge,
) -> None:
    # Imported quietly (no --announce): nothing was ever announced, and still everything shows.
    import_paths(bridge.store, sorted(FIXTURES.glob("*/*")))
    store = bridge.store
    assert not store.recent_papers(5, announced_only=True)
    async with client_for(bridge) as client:
        front = await client.get("/")
        assert front.status_code == 200
        assert "No papers yet" not in front.text
        newest = store.listings.newest(PAGE_SIZE)
        assert card_ids(front.text) == [p.paper.arxiv_id for p in newest]

        day = await client.get("/papers/2024-08-01")
        assert day.status_code == 200
        listed = store.listings.in_period(date(2024, 8, 1), date(2024, 8, 1), limit=1000)
        assert 0 < len(listed) <= PAGE_SIZE
        shown = card_ids(day.text)
        assert shown == [p.paper.arxiv_id for p in listed]
        votes = {p.paper.arxiv_id: p.paper.upvotes for p in listed}
        assert [votes[i] for i in shown] == sorted(votes.values(), key=lambda v: -(v or -1))
        assert votes[shown[0]] == max(v or 0 for v in votes.values()) > 0
        assert f'<span id="total">{len(listed)}</span>' in day.text

        # /papers alone opens the newest listing day.
        latest = store.listings.latest_day()
        assert latest is not None
        opened = await client.get("/papers")
        assert opened.status_code == 200
        assert latest.strftime("%A, %d %B %Y") in opened.text

        by_title = await client.get("/papers/2024-08-01", params={"sort": "title"})
        titles = {p.paper.arxiv_id: p.paper.title.lower() for p in listed}
        assert [titles[i] for i in card_ids(by_title.text)] == sorted(titles.values())


async def test_the_front_page_pages_with_a_keyset_cursor(bridge: Bridge) -> None:
    start = date(2024, 8, 1)
    # Two batches, the older days stored last (a backfill after a poll).
    bridge.store.add_papers([paper(n, start + timedelta(days=10 + n % 5)) for n in range(40)])
    bridge.store.add_papers([paper(100 + n, start + timedelta(days=n % 7)) for n in range(35)])
    expected = [p.paper.arxiv_id for p in bridge.store.listings.newest(1000)]
    assert len(expected) == 75
    seen: list[str] = []
    async with client_for(bridge) as client:
        url: str | None = "/"
        pages = 0
        while url is not None:
            answer = await client.get(url)
            assert answer.status_code == 200
            seen += card_ids(answer.text)
            url = link(answer.text, "next")
            pages += 1
        assert pages == 3 and seen == expected

        for bad in ("yesterday", "2024-13-01.5", "2024-08-01", "2024-08-01.-1"):
            answer = await client.get("/", params={"after": bad})
            assert answer.status_code == 400
            assert f"bad cursor after={bad!r}" in answer.text


async def test_day_week_and_month_views_navigate_past_empty_days(bridge: Bridge) -> None:
    days = [date(2024, 7, 26), date(2024, 8, 1), date(2024, 8, 5)]
    bridge.store.add_papers([paper(n, days[n % 3]) for n in range(3 * PAGE_SIZE + 3)])
    async with client_for(bridge) as client:
        first = (await client.get("/papers/2024-08-01")).text
        # Previous and next skip the empty days in between.
        assert re.search(r'class="prev-period" href="[^"]*/papers/2024-07-26"', first)
        assert re.search(r'class="next-period" href="[^"]*/papers/2024-08-05"', first)
        assert "/papers/2024-W31" in first and "/papers/2024-08" in first
        # A day with more papers than a page: page 2 holds the rest, in the same order.
        everything = bridge.store.listings.in_period(days[1], days[1], limit=1000)
        page_two_url = link(first, "next")
        assert page_two_url is not None and page_two_url.endswith("/papers/2024-08-01?page=2")
        second = (await client.get(page_two_url)).text
        assert card_ids(first) + card_ids(second) == [p.paper.arxiv_id for p in everything]
        assert link(second, "prev") is not None

        # An empty day still answers, pointing at the nearest listings.
        empty = await client.get("/papers/2024-07-30")
        assert empty.status_code == 200
        assert "No papers were listed on this day." in empty.text
        assert "/papers/2024-07-26" in empty.text and "/papers/2024-08-01" in empty.text

        week = (await client.get("/papers/2024-W31")).text  # 29 Jul - 4 Aug: only 1 Aug
        assert "Week 31 of 2024" in week
        assert f'<span id="total">{len(everything)}</span>' in week
        assert re.search(r'class="prev-period" href="[^"]*/papers/2024-W30"', week)
        assert re.search(r'class="next-period" href="[^"]*/papers/2024-W32"', week)
        month = (await client.get("/papers/2024-08", params={"sort": "newest"})).text
        august = bridge.store.listings.in_period(
            date(2024, 8, 1), date(2024, 8, 31), sort=ListingSort.NEWEST, limit=PAGE_SIZE
        )
        assert card_ids(month) == [p.paper.arxiv_id for p in august]
        assert re.search(r'class="prev-period" href="[^"]*/papers/2024-07"', month)

        for path, status, message in [
            ("/papers/2024-02-30", 404, "2024-02-30 is not a date"),
            ("/papers/2024-W54", 404, "2024 has no week 54"),
            ("/papers/2024-13", 404, "there is no month 13"),
            ("/papers/yesterday", 404, "names no listing: use a day (2024-08-01)"),
            ("/papers/0001-01-01", 404, "no papers are listed in the year 1"),
            ("/papers/2024-08-01?sort=votes", 400, "unknown sort 'votes'"),
            ("/papers/2024-08-01?page=0", 400, "bad page '0'"),
            ("/papers/2024-08-01?page=x", 400, "bad page 'x'"),
            ("/papers/2024-08-01?page=9", 404, "page 9 is past the last page of 2024-08-01 (2)"),
        ]:
            answer = await client.get(path)
            assert (answer.status_code, message in answer.text) == (status, True), path


async def test_cards_show_what_hf_shows_and_only_web_links(bridge: Bridge) -> None:
    day = date(2024, 8, 1)
    bridge.store.add_papers(
        [
            paper(
                1,
                day,
                title="<script>alert(1)</script> Card paper",
                abstract="An <img src=x onerror=alert(2)> abstract.",
                upvotes=42,
                num_comments=7,
                github_repo="https://github.com/example/cards",
                github_stars=1234,
                project_page="https://cards.example/",
                ai_summary="A one-line <b>summary</b>.",
                thumbnail="https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2408.10001.png",
            ),
            paper(
                2,
                day,
                source="arxiv",
                upvotes=None,
                categories=("cs.LG", "stat.ML"),
                github_repo="javascript:alert(3)",
                project_page="data:text/html,hi",
                thumbnail="javascript:alert(4)",
            ),
        ]
    )
    async with client_for(bridge) as client:
        answer = await client.get("/papers/2024-08-01")
    html = answer.text
    assert "img-src 'self' https:" in answer.headers["content-security-policy"]
    hf_card, arxiv_card = html.split('<article class="paper card"')[1:3]
    assert (
        '<img src="https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2408.10001.png"'
        in hf_card
    )
    assert 'loading="lazy"' in hf_card
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Card paper" in hf_card
    assert "An &lt;img src=x onerror=alert(2)&gt; abstract." in hf_card
    assert (
        '<p class="summary" title="Hugging Face\'s AI summary">A one-line &lt;b&gt;summary'
        in hf_card
    )
    assert "▲ 42" in hf_card and "7 comments" in hf_card
    assert 'href="https://github.com/example/cards"' in hf_card
    assert 'GitHub: example/cards <span class="stars">★ 1234</span>' in hf_card
    assert 'href="https://cards.example/"' in hf_card
    assert 'href="https://huggingface.co/papers/2408.10001"' in hf_card

    assert "<img" not in arxiv_card and "javascript:" not in html and "data:text" not in html
    assert '<span class="categories">cs.LG stat.ML</span>' in arxiv_card
    assert "▲" not in arxiv_card and "comments" not in arxiv_card
    assert 'href="https://arxiv.org/abs/2408.10002"' in arxiv_card


LONG = (
    "We study how large systems learn from data at scale, with many settings and baselines, "
    "across a great number of tasks drawn from vision, language and control benchmarks, and "
    "report careful ablations over architecture, optimisation, data mixture and compute. "
    "Only much later in this long abstract do we turn to generalisation, the topic of the query, "
    "and close."
)


async def test_snippets_start_at_the_match_and_never_claim_what_they_do_not_show(
    bridge: Bridge,
) -> None:
    day = date(2024, 8, 1)
    early = "Generalization first. " + LONG
    bridge.store.add_papers(
        [
            paper(1, day, title="A long study", abstract=LONG),
            paper(2, day, title="Early and late", abstract=early),
        ]
    )
    async with client_for(bridge) as client:
        html = (await client.get("/search", params={"q": "generalization"})).text
    cards = {
        CARD_ID.search(chunk).group(1): chunk  # type: ignore[union-attr]
        for chunk in re.findall(r'<article class="paper card".*?</article>', html, re.S)
    }
    late = cards["2408.10001"]
    abstract = re.search(r'<p class="abstract">(.*?)</p>', late, re.S).group(1)  # type: ignore[union-attr]
    # The preview starts near the match rather than at the start of the abstract.
    assert abstract.startswith("…") and "We study" not in abstract
    assert "<mark>generalisation</mark>" in abstract
    assert '<p class="why">matched generalisation in the abstract</p>' in late

    both = cards["2408.10002"]
    shown = re.search(r'<p class="abstract">(.*?)</p>', both, re.S).group(1)  # type: ignore[union-attr]
    assert shown.startswith("<mark>Generalization</mark> first.")
    assert "generalisation" not in shown  # cut before the second match...
    # ...so the line says where it is without claiming the excerpt shows it.
    assert (
        '<p class="why">matched Generalization in the abstract; also generalisation further on'
        " in the abstract (not shown)</p>"
    ) in both


def cli_order(
    database_url: str, tmp_path: Path, query: str, sort: str, page: int, capsys: Any
) -> list[str]:
    config = tmp_path / "cli.toml"
    config.write_text(f'[store]\ndatabase_url = "{database_url}"\n', encoding="utf-8")
    args = ["search", "--config", str(config), "--json", "--limit", "20", "--page", str(page)]
    assert cli.main([*args, "--sort", sort, *query.split()]) == 0
    return [item["arxiv_id"] for item in json.loads(capsys.readouterr().out)["items"]]


async def test_web_search_sorts_and_pages_in_the_cli_s_order(
    bridge: Bridge, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tuple(SORTS) == cli.SEARCH_SORTS
    base = datetime(2024, 8, 1, tzinfo=UTC)
    bridge.store.add_papers(
        [
            paper(
                n,
                (base + timedelta(days=n % 9)).date(),
                title=f"World models {n}" if n % 4 == 0 else f"Agents {n}",
                abstract=f"Planning with a world model, case {n}." if n % 4 else f"Case {n}.",
                upvotes=(n * 37) % 101 if n % 6 else None,
            )
            for n in range(45)
        ]
    )
    query = "world model"
    async with client_for(bridge) as client:
        for sort in SORTS:
            web: list[str] = []
            url: str | None = f"/search?q=world+model&sort={sort}"
            if sort == "relevance":
                url = "/search?q=world+model"
            page = 0
            while url is not None:
                answer = await client.get(url)
                assert answer.status_code == 200, answer.text
                page += 1
                ids = card_ids(answer.text)
                assert ids == cli_order(
                    bridge.settings.store.database_url, tmp_path, query, sort, page, capsys
                )
                web += ids
                url = link(answer.text, "next")
            assert page == 3 and len(web) == len(set(web)) == 45
            if sort == "upvotes":
                votes = {p.paper.arxiv_id: p.paper.upvotes for p in bridge.store.recent_papers(100)}
                assert [votes[i] for i in web] == sorted(
                    (votes[i] for i in web), key=lambda v: -(v if v is not None else -1)
                )
            current = re.search(r'<strong aria-current="true">(\w+)</strong>', answer.text)
            assert current is not None and current.group(1).lower() == sort
        bad = await client.get("/search", params={"q": "world", "sort": "stars"})
        assert bad.status_code == 400
        assert "unknown sort &#39;stars&#39;: use one of relevance, newest, upvotes" in bad.text


def test_periods_read_as_iso_8601_writes_them() -> None:
    assert parse_period("2024-08-01").name == "2024-08-01"
    week = parse_period("2024-W31")
    assert (week.first, week.last) == (date(2024, 7, 29), date(2024, 8, 4))
    month = parse_period("2024-02")
    assert (month.first, month.last, month.name) == (date(2024, 2, 1), date(2024, 2, 29), "2024-02")
    assert [p.name for p in parse_period("2024-08-01").wider()] == ["2024-W31", "2024-08"]
    assert parse_period("2020-W53").first == date(2020, 12, 28)
    for bad in ("2024-8-1", "2024-W1", "20240801", "2024-00", "", "2024-08-01x"):
        with pytest.raises(BadPeriod):
            parse_period(bad)


def test_the_matched_line_claims_only_what_the_card_shows() -> None:
    abstract = "Short start. " + "Filler words here. " * 30 + "A late world model."
    stored = StoredPaper(
        Paper("2408.00001", "Worlds", abstract=abstract, authors=("Ada World",), source="hf"),
        seq=1,
        first_seen_at=datetime(2024, 8, 1, tzinfo=UTC),
        announced=False,
    )
    late = abstract.index("world")
    hits = (
        Hit("title", "Worlds", 0, 6),
        Hit("abstract", "world", late, late + 5),
        Hit("authors", "World", 4, 9),
    )
    card = to_card(stored, hits)
    # The abstract's match lies beyond the preview: the preview starts near it instead.
    assert card.abstract[0] == ("…", False) and ("world", True) in card.abstract
    assert card.why == "matched Worlds in the title; world in the abstract; World in the authors"
    assert card.title == (("Worlds", True),)

    early = (Hit("abstract", "Short", 0, 5), *hits[1:2])
    card = to_card(stored, early)
    assert card.abstract[0] == ("Short", True) and ("world", True) not in card.abstract
    assert card.why == (
        "matched Short in the abstract; also world further on in the abstract (not shown)"
    )


async def test_a_feed_read_in_the_browser_shows_the_matched_words_it_names(
    bridge: Bridge,
) -> None:
    bridge.store.add_papers([paper(1, date(2024, 8, 1), title="A long study", abstract=LONG)])
    html_accept = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
    async with client_for(bridge) as client:
        view = await client.get(
            "/feeds/search.atom", params={"q": "generalization"}, headers=html_accept
        )
    assert view.status_code == 200 and "text/html" in view.headers["content-type"]
    assert '<p class="why">matched generalisation in the abstract</p>' in view.text
    abstract = re.search(r'<p class="abstract">(.*?)</p>', view.text, re.S)
    assert abstract is not None and "generalisation, the topic of the query" in abstract.group(1)


async def test_upvotes_sort_orders_the_newest_pool_and_says_so(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.atom import routes
    from bridge import search

    # A pool of 10 stands for the 1,000 of a real store: 25 matches, the newest 10 sorted.
    monkeypatch.setattr(search, "UPVOTES_POOL", 10)
    monkeypatch.setattr(routes, "UPVOTES_POOL", 10)
    papers = [paper(n, date(2024, 8, 1), upvotes=n) for n in range(25)]
    bridge.store.add_papers(papers)
    async with client_for(bridge) as client:
        answer = await client.get("/search", params={"q": "abstract", "sort": "upvotes"})
    assert answer.status_code == 200
    newest = sorted(bridge.store.recent_papers(100), key=lambda p: -p.seq)[:10]
    expected = [p.paper.arxiv_id for p in sorted(newest, key=lambda p: -(p.paper.upvotes or 0))]
    assert card_ids(answer.text) == expected
    assert "Sorted by upvotes: the newest 10 matches." in answer.text
    assert link(answer.text, "next") is None
