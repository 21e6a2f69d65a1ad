"""Hostile requests to every route: a clear 4xx, never a 500, never a traceback in the log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.atom import FeedOptions, FeedSite
from bridge.app import Bridge, open_bridge
from bridge.config import Settings
from bridge.web import create_web_app
from tests.test_feeds import make_paper


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[Bridge]:
    settings = Settings.model_validate(
        {
            "store": {"database_url": f"sqlite:///{tmp_path / 'hostile.db'}"},
            "sources": {"hf": {"base_url": "http://127.0.0.1:9"}},
            "subscriptions": [{"name": "world", "query": "world"}],
        }
    )
    async with open_bridge(settings) as opened:
        opened.store.add_papers([make_paper(n) for n in range(5)])
        yield opened


def client_for(bridge: Bridge) -> httpx.AsyncClient:
    site = FeedSite(bridge, FeedOptions(version_ttl=0, stale_grace=None))
    app = create_web_app(
        bridge,
        extra_routes=site.routes(),
        middleware=site.middleware(),
        fast_paths=site.fast_paths(),
    )
    # A server error reaches the test as a 500 answer, not as the exception itself.
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://feeds.test")


@pytest.mark.parametrize("bad", ["\x01", "\x00", "\x1b", "\x7f", "\ufffe", "\uffff", "\U0010ffff"])
async def test_a_query_with_a_control_or_non_text_character_is_a_400(
    bridge: Bridge, bad: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with client_for(bridge) as client:
        answers = [
            await client.get(path, params={"q": f"world {bad}"})
            for path in ("/feeds/search.atom", "/feeds/search.json", "/search")
        ]
    assert [a.status_code for a in answers] == [400, 400, 400]
    named = f"U+{ord(bad):04X}"
    assert all(named in a.text for a in answers)
    assert "Traceback" not in caplog.text


# -- every route, hostile input: never a 500 ---------------------------------------------------------

# Every route `serve` mounts for the web (grep -rn "Route(" adapters bridge), with the
# parameters each one reads; Slack's are swept below against a running Slack output.
PATHS = [
    "/",
    "/search",
    "/feeds/all.atom",
    "/feeds/all.json",
    "/feeds/all.xml",
    "/feeds/search.atom",
    "/feeds/search.json",
    "/feeds/subscriptions/world.atom",
    "/feeds/subscriptions/nobody.json",
    "/feeds/anything/else",
    "/feeds.opml",
    "/static/paperbridge.css",
    "/static/favicon.svg",
    "/favicon.ico",
    "/healthz",
    "/metrics",
]
# Text as a client can put it on the wire: header values are bytes, read as latin-1.
_wire_text = st.text(st.characters(max_codepoint=0xFF, exclude_characters="\r\n"), max_size=60)
_any_text = st.text(max_size=80)
_query_value = st.one_of(
    _any_text,
    st.sampled_from(
        ["upvotes>=0 -the", "0", "-1", "251", "1e3", "999999999999999999999", "((((", '"', "*"]
    ),
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[asyncio.Runner, Any]]:
    """The app `serve` builds, and one event loop to drive it from synchronous examples."""
    runner = asyncio.Runner()
    settings = Settings.model_validate(
        {
            "store": {"database_url": f"sqlite:///{tmp_path_factory.mktemp('sweep') / 's.db'}"},
            "sources": {"hf": {"base_url": "http://127.0.0.1:9"}},
            "subscriptions": [{"name": "world", "query": "world"}],
        }
    )
    opened = open_bridge(settings)
    bridge = runner.run(opened.__aenter__())
    bridge.store.add_papers([make_paper(n) for n in range(30)])
    client = client_for(bridge)
    try:
        yield runner, client
    finally:
        runner.run(client.aclose())
        runner.run(opened.__aexit__(None, None, None))
        runner.close()


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from(PATHS),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"]),
    params=st.dictionaries(
        st.sampled_from(["q", "page", "fmt", "limit", "x"]), _query_value, max_size=3
    ),
    headers=st.dictionaries(
        st.sampled_from(
            ["accept", "host", "if-none-match", "if-modified-since", "accept-encoding", "x-any"]
        ),
        _wire_text,
        max_size=4,
    ),
)
def test_no_route_answers_hostile_input_with_a_500(
    served: tuple[asyncio.Runner, httpx.AsyncClient],
    caplog: pytest.LogCaptureFixture,
    path: str,
    method: str,
    params: dict[str, str],
    headers: dict[str, str],
) -> None:
    runner, client = served
    raw = {name.encode(): value.encode("latin-1") for name, value in headers.items()}
    response = runner.run(client.request(method, path, params=params, headers=raw))
    assert response.status_code < 500 or response.status_code == 503, (path, params, headers)
    assert "Traceback" not in caplog.text
