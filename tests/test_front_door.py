"""The front door (bridge.web.FrontDoor): cached feeds answered before Starlette, the same
answer, the same metrics; everything else goes to the app unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.atom import FeedOptions, FeedSite
from adapters.atom.output import FeedsOutput
from bridge import metrics
from bridge.app import Bridge, open_bridge
from bridge.config import Settings
from bridge.models import Paper
from bridge.outputs import Output, output_fast_paths
from bridge.web import FastAnswer, FrontDoor, create_web_app

FEED_ROUTE = "/feeds/all.{fmt}"


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    settings = Settings.model_validate(
        {
            "store": {"database_url": f"sqlite:///{tmp_path / 'front.db'}"},
            "sources": {"hf": {"base_url": "http://127.0.0.1:9"}},
            "subscriptions": [{"name": "world", "query": "world"}],
        }
    )
    async with open_bridge(settings) as opened:
        opened.store.add_papers([Paper("2606.10001", "World models", "About world models.")])
        yield opened


class CountingApp:
    """The app behind the door, counting the requests that reach it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.paths: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


def histogram() -> metrics.Histogram:
    return metrics.Histogram(
        "front_test_seconds", "test", ("route", "method", "status"), registry=CollectorRegistry()
    )


def client(app: ASGIApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://feeds.test")


async def test_a_cached_feed_is_answered_in_front_with_the_apps_bytes(bridge: Bridge) -> None:
    site = FeedSite(bridge, FeedOptions(version_ttl=60))
    inner = CountingApp(create_web_app(bridge, extra_routes=site.routes()))
    timed = histogram()
    door = FrontDoor(inner, site.fast_paths(), timed)
    async with client(door) as c, client(inner) as plain:
        first = await c.get("/feeds/all.atom")  # rendered by the app, then cached
        assert first.status_code == 200 and inner.paths == ["/feeds/all.atom"]
        again = await c.get("/feeds/all.atom")
        head = await c.head("/feeds/all.atom")
        tag = again.headers["etag"]
        unchanged = await c.get("/feeds/all.atom", headers={"If-None-Match": tag})
        assert inner.paths == ["/feeds/all.atom"]  # none of those three reached the app
        # What the app itself answers for the same requests, header for header.
        from_app = await plain.get("/feeds/all.atom")
        from_app_304 = await plain.get("/feeds/all.atom", headers={"If-None-Match": tag})
    assert (again.status_code, again.content) == (200, first.content)
    assert again.headers.multi_items() == from_app.headers.multi_items()
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == again.headers["content-length"]
    assert unchanged.status_code == 304 == from_app_304.status_code
    assert unchanged.headers.multi_items() == from_app_304.headers.multi_items()
    # Timed under the route template, as RequestTimer labels the app's requests.
    assert timed.count(route=FEED_ROUTE, method="GET", status="200") == 1
    assert timed.count(route=FEED_ROUTE, method="HEAD", status="200") == 1
    assert timed.count(route=FEED_ROUTE, method="GET", status="304") == 1


async def test_everything_but_a_cached_hit_goes_to_the_app(bridge: Bridge) -> None:
    site = FeedSite(bridge, FeedOptions(version_ttl=60))
    inner = CountingApp(create_web_app(bridge, extra_routes=site.routes()))
    door = FrontDoor(inner, site.fast_paths(), histogram())
    async with client(door) as c:
        await c.get("/feeds/all.atom")
        await c.get("/feeds/search.atom?q=world")  # cached from here on
        posted = await c.post("/feeds/all.atom")
        unknown = await c.get("/feeds/subscriptions/nobody.atom")
        bad = await c.get("/feeds/search.atom?q=%22unclosed")
        health = await c.get("/healthz")
        cached = await c.get("/feeds/search.atom?q=world")
    assert posted.status_code == 405 and posted.headers["allow"] == "GET, HEAD"
    assert unknown.status_code == 404 and bad.status_code == 400
    assert health.status_code in (200, 503)
    assert cached.status_code == 200
    assert inner.paths == [
        "/feeds/all.atom",
        "/feeds/search.atom",
        "/feeds/all.atom",
        "/feeds/subscriptions/nobody.atom",
        "/feeds/search.atom",
        "/healthz",
    ]


async def test_a_fast_path_that_fails_leaves_the_request_to_the_app(bridge: Bridge) -> None:
    def broken(_scope: Scope) -> FastAnswer | None:
        raise RuntimeError("a bug in a fast path")

    site = FeedSite(bridge, FeedOptions(version_ttl=60))
    inner = CountingApp(create_web_app(bridge, extra_routes=site.routes()))
    timed = histogram()
    async with client(FrontDoor(inner, [broken], timed)) as c:
        answer = await c.get("/feeds/all.atom")
    assert answer.status_code == 200 and inner.paths == ["/feeds/all.atom"]
    assert timed.count(route=FEED_ROUTE, method="GET", status="200") == 0


async def test_accept_and_host_are_remembered_per_client_kind_and_bounded(bridge: Bridge) -> None:
    site = FeedSite(bridge, FeedOptions(version_ttl=60))
    door = create_web_app(bridge, extra_routes=site.routes(), fast_paths=site.fast_paths())
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    reader = {"Accept": "application/atom+xml"}
    async with client(door) as c:
        for _ in range(2):  # the second round is answered from what the first worked out
            page = await c.get("/feeds/all.atom", headers=browser)
            feed = await c.get("/feeds/all.atom", headers=reader)
            other = await c.get("/feeds/all.atom", headers={**reader, "Host": "papers.example"})
            assert page.headers["content-type"].startswith("text/html")
            assert feed.headers["content-type"].startswith("application/atom+xml")
            assert b"http://feeds.test/feeds/all.atom" in feed.content
            assert b"http://papers.example/feeds/all.atom" in other.content
        for n in range(300):  # clients choose the Host header: the memo stays bounded
            await c.get("/feeds/all.atom", headers={"Host": f"h{n}.example"})
    assert len(site._negotiated) <= 256


class PlainOutput:
    """An output with routes of its own and no fast path (``fast_paths`` is optional)."""

    name = "plain"

    def publishers(self) -> dict[str, Any]:
        return {}

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self, *, listen: bool) -> None:
        pass

    async def stop(self) -> None:
        pass


async def test_serve_takes_the_fast_paths_of_the_outputs_that_bring_any(bridge: Bridge) -> None:
    site = FeedSite(bridge)
    outputs: list[Output] = [PlainOutput(), FeedsOutput(site)]
    assert output_fast_paths(outputs) == [site.fast_answer]
