"""Hostile requests to every route: a clear 4xx, never a 500, never a traceback in the log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

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
    app = create_web_app(bridge, extra_routes=site.routes(), middleware=site.middleware())
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
