"""The feed server on a real socket: conditional GET, bad input, health, metrics, `serve` itself.

Also home of ``LiveServer``, the in-process uvicorn server the reader and browser tests share.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import feedparser
import httpx
import listparser
import pytest
import uvicorn

from adapters.atom import FeedOptions, FeedSite
from bridge import metrics
from bridge.app import Bridge, open_bridge
from bridge.config import Settings
from bridge.poller import PollReport
from bridge.web import create_web_app
from tests.fake_upstream import FakeUpstream, fixture, unused_port
from tests.local_server import LocalServer, serve_command
from tests.test_web_metrics import value

HF_FIXTURE = "hf/daily_papers_api_limit30_2026-06-13.json"


def hf_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(fixture(HF_FIXTURE))
    return items


def serve_hf(upstream: FakeUpstream, items: list[dict[str, Any]]) -> None:
    """Every HF request, whatever its date, answers with ``items``."""
    upstream.add("/api/daily_papers", json.dumps(items), content_type="application/json")


def live_settings(tmp_path: Path, upstream: FakeUpstream, **extra: Any) -> Settings:
    raw: dict[str, Any] = {
        "store": {"database_url": f"sqlite:///{tmp_path / 'live.db'}"},
        # Only a couple of days to re-read per poll: the fake upstream serves any date.
        "sources": {"hf": {"base_url": upstream.base_url, "max_catch_up_days": 1}},
        "fetch": {"max_attempts": 1, "timeout_seconds": 5},
        "first_run": {"announce": "all"},
        "subscriptions": [{"name": "world", "query": "world model"}],
    }
    raw.update(extra)
    return Settings.model_validate(raw)


class LiveServer(LocalServer):
    """``paperbridge serve``'s web app on 127.0.0.1 in a background thread, with polls on demand.

    The bridge (store, fetcher, poller) lives on the server's own event loop, as in ``serve``;
    ``poll()`` runs one pass there. Data versions are re-read on every request (ttl 0) and a
    changed feed is always waited for (no stale grace), so a test sees a poll at once however
    slow the machine; test_feeds_cache covers the grace itself.
    """

    def __init__(self, settings: Settings, options: FeedOptions | None = None) -> None:
        self.settings = settings
        self.options = options or FeedOptions(version_ttl=0, stale_grace=None)
        self.bridge: Bridge | None = None
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    async def _main(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        try:
            async with open_bridge(self.settings) as bridge:
                self.bridge = bridge
                self._loop = asyncio.get_running_loop()
                site = FeedSite(bridge, self.options)
                app = create_web_app(
                    bridge,
                    extra_routes=site.routes(),
                    middleware=site.middleware(),
                    fast_paths=site.fast_paths(),
                )
                config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
                self._server = uvicorn.Server(config)
                await self._server.serve(sockets=[sock])
        finally:
            sock.close()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start() or stop(), in the test's thread
            self._failure = exc

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="live-feed-server")
        self._thread.start()
        deadline = time.monotonic() + 15
        while not (self._server and self._server.started):
            if self._failure or not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"live server did not start: {self._failure!r}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
        if self._failure is not None:
            raise self._failure

    def poll(self) -> PollReport:
        assert self._loop is not None and self.bridge is not None
        future = asyncio.run_coroutine_threadsafe(self.bridge.poller.poll_once(), self._loop)
        return future.result(timeout=30)


def requests_answered(route: str, status: int) -> int:
    """How many GETs of ``route`` (a route template) were answered ``status`` so far."""
    return metrics.REQUEST_SECONDS.count(route=route, method="GET", status=str(status))


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        yield up


@pytest.fixture
def live(tmp_path: Path, upstream: FakeUpstream) -> Iterator[LiveServer]:
    serve_hf(upstream, hf_items())
    with LiveServer(live_settings(tmp_path, upstream)) as server:
        server.poll()
        yield server


# -- every feed reads cleanly in a real reader library ---------------------------------------


def test_opml_lists_every_feed_and_feedparser_reads_each_without_bozo(live: LiveServer) -> None:
    opml = listparser.parse(httpx.get(live.url("/feeds.opml")).content)
    assert not opml.bozo, opml.bozo_exception
    urls = [feed.url for feed in opml.feeds]
    assert urls == [live.url("/feeds/all.atom"), live.url("/feeds/subscriptions/world.atom")]
    for url in [*urls, live.url("/feeds/search.atom?q=reasoning")]:
        parsed = feedparser.parse(url)
        assert parsed.status == 200
        assert not parsed.bozo, (url, parsed.get("bozo_exception"))
        assert parsed.version == "atom10"
        assert parsed.entries, url
        assert parsed.headers["content-type"] == "application/atom+xml; charset=utf-8"
        # feedparser's own conditional GET: the reader's second fetch is answered 304.
        again = feedparser.parse(url, etag=parsed.etag, modified=parsed.modified)
        assert again.status == 304
    everything = feedparser.parse(live.url("/feeds/all.atom"))
    assert len(everything.entries) == 30
    assert everything.feed.links[0].rel == "self"


def test_json_feed_is_1_1_and_matches_atom(live: LiveServer) -> None:
    response = httpx.get(live.url("/feeds/all.json"))
    assert response.headers["content-type"] == "application/feed+json; charset=utf-8"
    feed = response.json()
    assert feed["version"] == "https://jsonfeed.org/version/1.1"
    assert feed["feed_url"] == live.url("/feeds/all.json")
    atom = feedparser.parse(live.url("/feeds/all.atom"))
    assert [item["id"] for item in feed["items"]] == [entry.id for entry in atom.entries]
    for item in feed["items"]:
        assert item["content_text"] and item["title"]
        datetime.fromisoformat(item["date_published"])


# -- conditional GET over a real connection --------------------------------------------------


def test_conditional_get_and_caching_headers(live: LiveServer) -> None:
    with httpx.Client(base_url=live.base_url) as client:
        first = client.get("/feeds/all.atom")
        etag, modified = first.headers["etag"], first.headers["last-modified"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert first.headers["cache-control"] == "public, max-age=900"  # hf polls hourly
        assert client.get("/feeds/all.atom", headers={"If-None-Match": etag}).status_code == 304
        assert (
            client.get("/feeds/all.atom", headers={"If-None-Match": f'"x", W/{etag}'}).status_code
            == 304
        )
        assert (
            client.get("/feeds/all.atom", headers={"If-Modified-Since": modified}).status_code
            == 304
        )
        # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
        both = {"If-None-Match": '"other"', "If-Modified-Since": modified}
        assert client.get("/feeds/all.atom", headers=both).status_code == 200
        old = "Mon, 01 Jan 2024 00:00:00 GMT"
        assert client.get("/feeds/all.atom", headers={"If-Modified-Since": old}).status_code == 200
        not_modified = client.get("/feeds/all.atom", headers={"If-None-Match": etag})
        assert not_modified.content == b""
        assert not_modified.headers["etag"] == etag
        assert not_modified.headers["cache-control"] == "public, max-age=900"
        head = client.head("/feeds/all.atom")
        assert head.status_code == 200 and head.content == b"" and head.headers["etag"] == etag


def test_feed_bytes_are_rendered_once_per_data_version(
    live: LiveServer, upstream: FakeUpstream
) -> None:
    renders = metrics.FEED_RENDERS.value(format="atom")
    with httpx.Client(base_url=live.base_url) as client:
        bodies = {client.get("/feeds/all.atom").content for _ in range(20)}
        assert len(bodies) == 1
        assert metrics.FEED_RENDERS.value(format="atom") - renders == 1
        etag = client.get("/feeds/all.atom").headers["etag"]
        # New data, new bytes: the cache follows the store's data version.
        items = hf_items()
        items[0]["paper"]["id"] = items[0]["id"] = "2606.99999"
        items[0]["paper"]["title"] = items[0]["title"] = "A paper that arrived later"
        serve_hf(upstream, items)
        assert live.poll().new
        changed = client.get("/feeds/all.atom", headers={"If-None-Match": etag})
        assert changed.status_code == 200
        assert changed.headers["etag"] != etag
        assert metrics.FEED_RENDERS.value(format="atom") - renders == 2
        assert feedparser.parse(changed.content).entries[0].title == "A paper that arrived later"


# -- bad input -----------------------------------------------------------------------------


def test_unknown_feeds_are_404_with_a_short_text(live: LiveServer) -> None:
    for path in (
        "/feeds/nope.atom",
        "/feeds/subscriptions/nope.atom",
        "/feeds/all.rss",
        "/feeds/subscriptions/world.xml",
    ):
        response = httpx.get(live.url(path))
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/plain")
        assert "unknown feed" in response.text and len(response.text) < 100


def test_feeds_answer_get_and_head_only(live: LiveServer) -> None:
    response = httpx.post(live.url("/feeds/all.atom"), content=b"x")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"


def test_bad_queries_are_400_naming_the_problem(live: LiveServer) -> None:
    missing = httpx.get(live.url("/feeds/search.atom"))
    assert missing.status_code == 400 and "missing query" in missing.text
    blank = httpx.get(live.url("/feeds/search.json"), params={"q": "   "})
    assert blank.status_code == 400 and "missing query" in blank.text
    long = httpx.get(live.url("/feeds/search.atom"), params={"q": "x" * 501})
    assert long.status_code == 400
    assert "too long (501 characters; at most 500)" in long.text
    assert len(long.text) < 200  # the query is not echoed back
    malformed = httpx.get(live.url("/feeds/search.atom"), params={"q": "title:(world"})
    assert malformed.status_code == 400
    assert malformed.text.startswith("bad query: ") and "position" in malformed.text
    page = httpx.get(live.url("/search"), params={"q": "y" * 2000})
    assert page.status_code == 400 and "too long" in page.text
    assert "y" * 501 not in page.text
    assert httpx.get(live.url("/search"), params={"q": "a", "page": "x"}).status_code == 400


def raw_request(port: int, head: bytes, timeout: float = 10) -> int:
    """Send ``head`` as the request line and headers on a raw socket; return the status code.

    httpx refuses URLs over 64 KB, and a hostile client would not use httpx anyway.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(head + b"\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and hang up before reading it all
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1]) if answer else 0


def test_huge_query_strings_and_headers_neither_crash_nor_slow_the_server(
    live: LiveServer,
) -> None:
    get = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close"
    baseline = httpx.get(live.url("/feeds/all.atom")).elapsed
    start = time.perf_counter()
    huge_query = b"/feeds/search.atom?q=" + b"a+" * 1_000_000
    assert raw_request(live.port, get % huge_query) in (0, 400, 414, 431)
    many_params = b"/search?" + b"&".join(b"p%d=1" % n for n in range(50_000))
    assert raw_request(live.port, get % many_params) in (0, 200, 400, 414, 431)
    for header in (
        b"If-None-Match: " + b", ".join(b'"%d"' % n for n in range(5_000)),
        b"Accept: " + b"text/html;q=0.5," * 3_000,
        b"If-Modified-Since: " + b"x" * 10_000,
        b"X-Junk: " + b"j" * 1_000_000,
        b"\r\n".join(b"X-Many-%d: 1" % n for n in range(10_000)),
    ):
        status = raw_request(live.port, (get % b"/feeds/all.atom") + b"\r\n" + header)
        assert status in (0, 200, 400, 431), header[:40]
    assert time.perf_counter() - start < 5
    # Still serving, as fast as before.
    after = httpx.get(live.url("/feeds/all.atom"))
    assert after.status_code == 200
    assert after.elapsed < baseline + timedelta(seconds=0.5)


# -- health and metrics --------------------------------------------------------------------


def test_healthz_reports_sources_and_turns_503_when_stale(live: LiveServer) -> None:
    body = httpx.get(live.url("/healthz")).json()
    assert body["status"] == "ok" and body["store"] == "ok"
    hf = body["sources"]["hf"]
    assert hf["stale"] is False and hf["last_error"] is None and hf["age_seconds"] < 60
    assert live.bridge is not None
    # Stale under any schedule: HF polls every two hours on weekdays (test_digest_schedule.py
    # pins the schedule-aware rule itself).
    long_ago = datetime.now(UTC) - timedelta(days=5)
    live.bridge.store.record_poll_success("hf", None, now=long_ago)
    response = httpx.get(live.url("/healthz"))
    assert response.status_code == 503
    assert response.json()["sources"]["hf"]["stale"] is True
    assert response.json()["sources"]["hf"]["age_seconds"] >= 5 * 86400 - 5


def test_metrics_are_prometheus_text_with_request_latency(live: LiveServer) -> None:
    httpx.get(live.url("/feeds/all.atom"))
    httpx.get(live.url("/no/such/page"))
    response = httpx.get(live.url("/metrics"))
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = response.text
    for name in ("polls", "papers", "matches", "deliveries", "errors"):
        assert f"# TYPE paperbridge_{name}_total counter" in text
    assert "# TYPE paperbridge_http_request_duration_seconds histogram" in text
    bucket = "paperbridge_http_request_duration_seconds_bucket"
    feed = {"route": "/feeds/all.{fmt}", "method": "GET", "status": "200", "le": "+Inf"}
    assert (value(text, bucket, **feed) or 0) >= 1
    # Unmatched URLs share one label: a scanner cannot grow the series without bound.
    unmatched = {"route": "unmatched", "method": "GET", "status": "404", "le": "+Inf"}
    assert (value(text, bucket, **unmatched) or 0) >= 1
    assert "/no/such/page" not in text
    # The store's own figures, read at scrape time.
    assert value(text, "paperbridge_papers_stored") == 30
    assert value(text, "paperbridge_source_up", source="hf") == 1


# -- `paperbridge serve` as a real process ---------------------------------------------------


def test_serve_process_polls_and_serves_feeds_page_and_metrics(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    serve_hf(upstream, hf_items())
    port = unused_port()
    config = tmp_path / "c.toml"
    config.write_text(
        f"""
[store]
database_url = "sqlite:///{tmp_path / "serve.db"}"
[sources.hf]
base_url = "{upstream.base_url}"
[fetch]
max_attempts = 1
[[subscriptions]]
name = "world"
query = "world model"
""",
        encoding="utf-8",
    )
    command = serve_command(config, port)
    proc = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        entries: list[Any] = []
        while time.monotonic() < deadline and not entries:
            try:
                entries = feedparser.parse(httpx.get(f"{base}/feeds/all.atom").content).entries
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert entries, "serve never showed the polled papers in its feed"
        world = feedparser.parse(httpx.get(f"{base}/feeds/subscriptions/world.atom").content)
        assert world.entries and not world.bozo
        assert "paperbridge: world" in httpx.get(f"{base}/").text
        text = httpx.get(f"{base}/metrics").text
        assert value(text, "paperbridge_polls_total", source="hf", outcome="ok") == 1
        assert value(text, "paperbridge_papers_total", source="hf") == 30
        assert value(text, "paperbridge_papers_stored") == 30
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
