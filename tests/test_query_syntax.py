"""Saying exactly what you mean: archives (cat:cs), unknown fields, paper ids and URLs, listing
dates and exact words. Each rule is pinned in both directions, through the parser, match_paper,
the percolator, search on SQLite and PostgreSQL, a search feed, the CLI and chat."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import feedparser
import httpx
import pytest

from adapters.atom import FeedOptions, FeedSite
from bridge.app import Bridge, open_bridge
from bridge.chat import ChatService
from bridge.chat.commands import parse_command
from bridge.cli import main
from bridge.config import DeliverySettings, Settings
from bridge.errors import ChatUsageError, QueryError
from bridge.ledger import Ledger
from bridge.models import Paper, Subscription
from bridge.query import Category, Or, Percolator, match_paper, parse_query
from bridge.search import search_store
from bridge.store import Store
from bridge.web import create_web_app

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def make(arxiv_id: str, title: str, **facts: object) -> Paper:
    values: dict[str, object] = {"abstract": "We study it.", "categories": ("cs.LG",)}
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
    app = create_web_app(bridge, extra_routes=site.routes(), middleware=site.middleware())
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
