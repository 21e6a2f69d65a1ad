"""Feed content: RFC 4287 shape, stable ids and times, hostile text, JSON Feed, links, options."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import feedparser
import httpx
import pytest
from lxml import etree

from adapters.atom import FeedOptions, FeedSite
from adapters.atom.entries import clean_text, entry_updated, explain, to_entry
from bridge.app import Bridge, open_bridge
from bridge.config import Settings
from bridge.models import Hit, Paper, StoredPaper
from bridge.web import create_web_app

ATOM = "{http://www.w3.org/2005/Atom}"
HOSTILE_TITLE = "<script>alert(1)</script> & ]]>\x00\x07\x1b café\ufffe"
HOSTILE_ABSTRACT = "</content></entry><entry><id>evil</id> <![CDATA[ x ]]> &amp; &lt; \x0b end"


def make_paper(n: int, **changes: Any) -> Paper:
    values: dict[str, Any] = dict(
        arxiv_id=f"2606.{10000 + n}",
        title=f"World models {n}",
        abstract=f"We study world models, number {n}, and their generalization.",
        authors=("Ada Lovelace", "Alan Turing"),
        source="hf",
        listed_on=date(2026, 6, 12),
        published_at=datetime(2026, 6, 11, 17, 0, tzinfo=UTC),
        categories=("cs.LG", "cs.AI"),
        upvotes=n,
        github_repo="https://github.com/example/world",
        ai_summary=f"A one-line summary {n}.",
    )
    values.update(changes)
    return Paper(**values)


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    settings = Settings.model_validate(
        {
            "store": {"database_url": f"sqlite:///{tmp_path / 'feeds.db'}"},
            "sources": {"hf": {"base_url": "http://127.0.0.1:9"}},
            "subscriptions": [{"name": "world", "query": "world"}],
        }
    )
    async with open_bridge(settings) as opened:
        yield opened


def client_for(bridge: Bridge, options: FeedOptions | None = None) -> httpx.AsyncClient:
    """The app in-process: what a real socket would add is covered in test_web_server."""
    site = FeedSite(bridge, options or FeedOptions(version_ttl=0, stale_grace=None))
    app = create_web_app(
        bridge,
        extra_routes=site.routes(),
        middleware=site.middleware(),
        fast_paths=site.fast_paths(),
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://feeds.test")


def one(parent: Any, tag: str) -> Any:
    found = parent.findall(ATOM + tag)
    assert len(found) == 1, f"{parent.tag} has {len(found)} <{tag}>"
    return found[0]


def rfc3339(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    assert moment.tzinfo is not None, text
    return moment


async def test_atom_feed_follows_rfc_4287(bridge: Bridge) -> None:
    bridge.store.add_papers([make_paper(n) for n in range(30)])  # one batch, one instant
    bridge.store.add_papers([make_paper(99, authors=(), source="arxiv")])
    async with client_for(bridge) as client:
        response = await client.get("/feeds/all.atom")
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    root = etree.fromstring(response.content)
    assert root.tag == ATOM + "feed"
    assert one(root, "id").text == "tag:paperbridge,2026:feeds/all"
    assert one(root, "title").text
    feed_updated = rfc3339(one(root, "updated").text)
    assert one(one(root, "author"), "name").text == "paperbridge"
    links = {
        (link.get("rel"), link.get("type")): link.get("href")
        for link in root.findall(ATOM + "link")
    }
    assert links[("self", "application/atom+xml")] == "http://feeds.test/feeds/all.atom"
    entries = root.findall(ATOM + "entry")
    assert len(entries) == 31
    updated = [rfc3339(one(entry, "updated").text) for entry in entries]
    assert len(set(updated)) == len(updated), "entries share an updated instant"
    assert updated == sorted(updated, reverse=True)  # newest first
    assert feed_updated == updated[0]
    ids = [one(entry, "id").text for entry in entries]
    assert ids[0] == "https://arxiv.org/abs/2606.10099"
    assert len(set(ids)) == len(ids)
    first_hf = entries[1]
    assert one(first_hf, "title").text == "World models 29"
    assert [a.findtext(ATOM + "name") for a in first_hf.findall(ATOM + "author")] == [
        "Ada Lovelace",
        "Alan Turing",
    ]
    assert [c.get("term") for c in first_hf.findall(ATOM + "category")] == ["cs.LG", "cs.AI"]
    content = one(first_hf, "content")
    assert content.get("type") == "text"
    assert "their generalization" in content.text
    assert one(first_hf, "summary").text == "A one-line summary 29."
    rels = [
        (link.get("rel", "alternate"), link.get("href")) for link in first_hf.findall(ATOM + "link")
    ]
    assert rels == [
        ("alternate", "https://huggingface.co/papers/2606.10029"),
        ("related", "https://arxiv.org/abs/2606.10029"),
        ("related", "https://arxiv.org/pdf/2606.10029"),
        ("related", "https://github.com/example/world"),
    ]
    rfc3339(one(first_hf, "published").text)
    arxiv_only = entries[0]
    assert arxiv_only.find(ATOM + "link").get("href") == "https://arxiv.org/abs/2606.10099"
    assert not arxiv_only.findall(ATOM + "author")  # the feed-level author covers it


async def test_entry_ids_and_times_survive_revisions_restarts_and_rerenders(
    bridge: Bridge,
) -> None:
    bridge.store.add_papers([make_paper(1, version=1), make_paper(2, version=1)])
    async with client_for(bridge) as client:
        before = feedparser.parse((await client.get("/feeds/all.atom")).content)
    revised = make_paper(1, version=2, title="World models 1, revised", announce_type="replace")
    result = bridge.store.add_papers([revised])
    assert result.revised
    # A new app over the same store stands for a restart: nothing is kept in memory.
    async with client_for(bridge) as client:
        after = feedparser.parse((await client.get("/feeds/all.atom")).content)
        again = await client.get("/feeds/all.atom")
        assert again.content == (await client.get("/feeds/all.atom")).content
    assert [e.id for e in after.entries] == [e.id for e in before.entries]
    assert [e.updated for e in after.entries] == [e.updated for e in before.entries]
    assert after.entries[1].id == "https://arxiv.org/abs/2606.10001"  # never the v2 URL
    assert after.entries[1].title == "World models 1, revised"


def test_entry_updated_is_distinct_stable_and_honest() -> None:
    seen = datetime(2026, 6, 13, 8, 30, 15, 123456)  # naive, as SQLite returns it
    stored = [StoredPaper(make_paper(n), 1_000_000 + n, seen, True) for n in range(5)]
    times = [entry_updated(s) for s in stored]
    assert len(set(times)) == 5
    assert times == sorted(times)
    assert times == [entry_updated(s) for s in stored]
    assert all(abs(t - seen.replace(tzinfo=UTC)) < timedelta(seconds=1) for t in times)
    assert all(t.tzinfo is not None for t in times)


async def test_hostile_titles_and_abstracts_come_out_as_text_everywhere(bridge: Bridge) -> None:
    bridge.store.add_papers(
        [make_paper(1, title=HOSTILE_TITLE, abstract=HOSTILE_ABSTRACT, authors=("<b>Eve</b>",))]
    )
    expected_title = clean_text(HOSTILE_TITLE)
    assert expected_title == "<script>alert(1)</script> & ]]> café"
    async with client_for(bridge) as client:
        atom = (await client.get("/feeds/all.atom")).content
        json_feed = (await client.get("/feeds/all.json")).json()
        page = (await client.get("/")).text
        results = (await client.get("/search", params={"q": "alert"})).text
        browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
        view = (await client.get("/feeds/all.atom", headers=browser)).text
    root = etree.fromstring(atom)  # strict XML parser: any slip would raise here
    entries = root.findall(ATOM + "entry")
    assert len(entries) == 1
    assert entries[0].findtext(ATOM + "title") == expected_title
    assert entries[0].findtext(ATOM + "id") == "https://arxiv.org/abs/2606.10001"
    assert "</content></entry><entry><id>evil</id>" in entries[0].findtext(ATOM + "content")
    assert b"<script>" not in atom
    parsed = feedparser.parse(atom)
    assert not parsed.bozo
    assert parsed.entries[0].title == expected_title
    assert json_feed["items"][0]["title"] == expected_title
    for html in (page, results, view):
        assert "<script>" not in html and "<b>Eve" not in html
        # The search page marks the matched word: the only markup inside the title.
        html = html.replace("<mark>alert</mark>", "alert")
        assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; ]]&gt; café" in html
        assert "&lt;b&gt;Eve&lt;/b&gt;" in html


async def test_json_feed_1_1_fields(bridge: Bridge) -> None:
    bridge.store.add_papers([make_paper(n) for n in range(3)])
    async with client_for(bridge) as client:
        response = await client.get("/feeds/subscriptions/world.json")
    assert response.headers["content-type"] == "application/feed+json; charset=utf-8"
    feed = json.loads(response.content)
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["title"] == "paperbridge: world"
    assert feed["feed_url"] == "http://feeds.test/feeds/subscriptions/world.json"
    item = feed["items"][0]
    assert item["id"] == "https://arxiv.org/abs/2606.10002"
    assert item["url"] == "https://huggingface.co/papers/2606.10002"
    assert item["external_url"] == "https://arxiv.org/abs/2606.10002"
    assert item["authors"] == [{"name": "Ada Lovelace"}, {"name": "Alan Turing"}]
    assert item["tags"] == ["cs.LG", "cs.AI"]
    assert item["summary"] == "A one-line summary 2."
    assert "generalization" in item["content_text"]
    assert rfc3339(item["date_published"])


async def test_feeds_hold_the_newest_papers_by_listing_day_up_to_the_size(
    bridge: Bridge,
) -> None:
    bridge.store.add_papers([make_paper(n) for n in range(60)])
    # Stored later, quietly, as a backfill stores them: an older day and a newer one.
    old_day = make_paper(500, title="Backfilled world", listed_on=date(2025, 1, 2))
    new_day = make_paper(501, title="Tomorrow's world", listed_on=date(2026, 6, 13))
    bridge.store.add_papers([old_day, new_day], announce=False)
    async with client_for(bridge) as client:
        default = feedparser.parse((await client.get("/feeds/all.atom")).content)
        query = feedparser.parse((await client.get("/feeds/search.atom?q=world")).content)
    for feed in (default, query):
        assert len(feed.entries) == 50
        # Newest listing day first, then newest stored; the older day is past the size.
        assert feed.entries[0].id == "https://arxiv.org/abs/2606.10501"
        assert feed.entries[1].id == "https://arxiv.org/abs/2606.10059"
        assert all("Backfilled" not in e.title for e in feed.entries)
    async with client_for(bridge, FeedOptions(size=62, version_ttl=0, stale_grace=None)) as client:
        everything = feedparser.parse((await client.get("/feeds/all.atom")).content)
    assert everything.entries[-1].title == "Backfilled world"
    async with client_for(bridge, FeedOptions(size=10, version_ttl=0, stale_grace=None)) as client:
        small = feedparser.parse((await client.get("/feeds/all.atom")).content)
    assert len(small.entries) == 10


async def test_subscription_and_search_feeds_and_opml(bridge: Bridge) -> None:
    bridge.store.add_papers([make_paper(1), make_paper(2, title="Protein folding", abstract="")])
    async with client_for(bridge) as client:
        world = feedparser.parse((await client.get("/feeds/subscriptions/world.atom")).content)
        search = await client.get("/feeds/search.atom", params={"q": "protein"})
        opml = etree.fromstring((await client.get("/feeds.opml")).content)
    assert [e.title for e in world.entries] == ["World models 1"]
    # The match explanation leads the entry's text.
    assert world.entries[0].content[0].value.startswith("matched ")
    parsed = feedparser.parse(search.content)
    assert [e.title for e in parsed.entries] == ["Protein folding"]
    assert parsed.feed.id == "tag:paperbridge,2026:feeds/search?q=protein"
    assert parsed.feed.links[0].href == "http://feeds.test/feeds/search.atom?q=protein"
    assert opml.get("version") == "2.0"
    outlines = opml.findall("body/outline")
    assert [(o.get("type"), o.get("xmlUrl")) for o in outlines] == [
        ("rss", "http://feeds.test/feeds/all.atom"),
        ("rss", "http://feeds.test/feeds/subscriptions/world.atom"),
    ]
    assert all(o.get("text") for o in outlines)


async def test_public_url_setting_names_the_links(tmp_path: Path) -> None:
    settings = Settings.model_validate(
        {
            "store": {"database_url": f"sqlite:///{tmp_path / 'p.db'}"},
            "server": {"public_url": "https://papers.example.org/bridge/"},
        }
    )
    async with open_bridge(settings) as opened, client_for(opened) as client:
        feed = feedparser.parse((await client.get("/feeds/all.atom")).content)
        assert feed.feed.links[0].href == "https://papers.example.org/bridge/feeds/all.atom"
        # An empty feed is still valid Atom, with a fixed (not "now") updated time.
        assert not feed.bozo


async def test_an_empty_feed_dates_from_the_store_not_1970(bridge: Bridge) -> None:
    created = bridge.store.created_at()
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)
    async with client_for(bridge) as client:
        response = await client.get("/feeds/search.atom", params={"q": "nothing-matches-this"})
        index = await client.get("/")
    updated = rfc3339(one(etree.fromstring(response.content), "updated").text)
    assert updated == created
    assert response.headers["last-modified"] == format_datetime(
        created.replace(microsecond=0), usegmt=True
    )
    assert index.headers["last-modified"] == response.headers["last-modified"]
    # Stable: another process (or a restart) renders the very same bytes.
    async with client_for(bridge) as again:
        second = await again.get("/feeds/search.atom", params={"q": "nothing-matches-this"})
    assert second.content == response.content
    assert second.headers["etag"] == response.headers["etag"]


async def test_opml_links_the_site_and_has_a_real_last_modified(bridge: Bridge) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    async with client_for(bridge) as client:
        first = await client.get("/feeds.opml")
        outlines = etree.fromstring(first.content).findall("body/outline")
        assert {o.get("htmlUrl") for o in outlines} == {"http://feeds.test/"}
        modified = parsedate_to_datetime(first.headers["last-modified"])
        assert before <= modified <= datetime.now(UTC)
        # So a reader that sends only If-Modified-Since is told nothing changed.
        again = await client.get(
            "/feeds.opml", headers={"If-Modified-Since": first.headers["last-modified"]}
        )
        assert again.status_code == 304


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
            "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
            True,
        ),  # Chromium
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # Firefox
        (
            "application/atom+xml,application/rdf+xml,application/rss+xml,application/x-netcdf,"
            "application/xml;q=0.9,text/xml;q=0.2,*/*;q=0.1",
            False,
        ),  # feedparser
        ("*/*", False),  # newsboat, curl
        ("", False),
        ("application/atom+xml, text/html", False),  # a tie goes to the feed
        ("text/html;q=bogus, */*", False),
    ],
)
async def test_browsers_get_a_readable_page_and_readers_the_feed(
    bridge: Bridge, accept: str, html: bool
) -> None:
    bridge.store.add_papers([make_paper(1)])
    async with client_for(bridge) as client:
        response = await client.get("/feeds/all.atom", headers={"Accept": accept})
    assert response.headers["vary"] == "Accept"
    if html:
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert "This is a feed" in response.text and "World models 1" in response.text
        assert "http://feeds.test/feeds/all.atom" in response.text
        assert "script-src" not in response.headers["content-security-policy"]
    else:
        assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"


def test_links_drop_non_web_urls_and_explanations_read_well() -> None:
    stored = StoredPaper(
        make_paper(1, github_repo="javascript:alert(1)", project_page="https://proj.example/"),
        1,
        datetime(2026, 6, 13, tzinfo=UTC),
        True,
    )
    entry = to_entry(stored, why="matched generalization in the abstract")
    assert [link.title for link in entry.links] == ["Hugging Face", "arXiv", "PDF", "Project page"]
    assert entry.text.startswith("matched generalization in the abstract\n\n")
    hits = (Hit("abstract", "generalisation", 3, 17), Hit("title", "World", 0, 5))
    assert explain(hits, None) == "matched generalisation in the abstract; World in the title"
    assert explain((), None) is None


def test_many_authors_are_summarised() -> None:
    authors = tuple(f"Author {n}" for n in range(3000))
    stored = StoredPaper(make_paper(1, authors=authors), 1, datetime(2026, 6, 13, tzinfo=UTC), True)
    entry = to_entry(stored)
    assert len(entry.authors) == 25 and entry.more_authors == 2975
    assert entry.author_line.endswith("and 2975 more")


async def test_routes_alone_serve_what_the_fast_path_serves(bridge: Bridge) -> None:
    bridge.store.add_papers([make_paper(1)])
    site = FeedSite(bridge, FeedOptions(version_ttl=0, stale_grace=None))
    plain = create_web_app(bridge, extra_routes=site.routes())
    transport = httpx.ASGITransport(plain)
    async with (
        client_for(bridge) as fast,
        httpx.AsyncClient(transport=transport, base_url="http://feeds.test") as slow,
    ):
        for path in (
            "/feeds/all.atom",
            "/feeds/subscriptions/world.json",
            "/feeds/search.atom?q=world",
        ):
            a, b = await fast.get(path), await slow.get(path)
            assert (a.status_code, a.content) == (b.status_code, b.content) == (200, b.content)


async def test_implausible_host_headers_do_not_name_links(bridge: Bridge) -> None:
    async with client_for(bridge) as client:
        good = await client.get("/feeds/all.atom", headers={"Host": "papers.example:8080"})
        bad = await client.get("/feeds/all.atom", headers={"Host": "x/<script>"})
    assert feedparser.parse(good.content).feed.links[0].href == (
        "http://papers.example:8080/feeds/all.atom"
    )
    self_link = feedparser.parse(bad.content).feed.links[0].href
    assert self_link.startswith("http://feeds.test") and "script" not in self_link
