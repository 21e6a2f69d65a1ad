"""RenderCache and the HTTP validators: one render per version, shared, bounded, stale on a slow store."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

from adapters.atom.cache import RenderCache
from adapters.atom.conditional import Rendered, not_modified


class Renders:
    """A render function that counts its calls and can be held back until released."""

    def __init__(self, blocked: bool = False, name: str = "render") -> None:
        self.name = name
        self.calls = 0
        self.release = threading.Event()
        if not blocked:
            self.release.set()

    def __call__(self) -> str:
        self.calls += 1
        assert self.release.wait(5)
        return f"{self.name} {self.calls}"


async def test_one_render_per_version_shared_by_concurrent_requests() -> None:
    cache: RenderCache[str] = RenderCache()
    render = Renders(blocked=True)
    waiting = [asyncio.create_task(cache.get("feed", "v1", render)) for _ in range(20)]
    await asyncio.sleep(0.05)
    render.release.set()
    assert set(await asyncio.gather(*waiting)) == {"render 1"}
    assert await cache.get("feed", "v1", render) == "render 1"
    assert await cache.get("feed", "v2", render) == "render 2"
    assert render.calls == 2


async def test_a_slow_render_serves_the_previous_bytes_after_the_grace() -> None:
    cache: RenderCache[str] = RenderCache()
    assert await cache.get("feed", "v1", Renders()) == "render 1"
    slow = Renders(blocked=True, name="slow")
    assert await cache.get("feed", "v2", slow, stale_grace=0.05) == "render 1"
    assert await cache.get("feed", "v2", slow, stale_grace=0.05) == "render 1"
    slow.release.set()
    assert await cache.get("feed", "v2", slow, stale_grace=1) == "slow 1"
    assert slow.calls == 1  # later requests joined the render already running


async def test_failures_are_not_cached_and_the_cache_is_bounded() -> None:
    cache: RenderCache[str] = RenderCache(max_entries=3)

    def broken() -> str:
        raise ValueError("store said no")

    with pytest.raises(ValueError, match="store said no"):
        await cache.get("feed", "v1", broken)
    assert await cache.get("feed", "v1", Renders()) == "render 1"
    for n in range(10):
        await cache.get(f"search {n}", "v1", Renders())
    assert len(cache._items) == 3


def rendered(last_modified: datetime) -> Rendered:
    return Rendered(b"<feed/>", "application/atom+xml", last_modified, "public, max-age=900")


@pytest.mark.parametrize(
    ("if_none_match", "if_modified_since", "expected"),
    [
        (None, None, False),
        ("*", None, True),
        ("ETAG", None, True),
        ("ETAG", "Sat, 13 Jun 2026 07:59:59 GMT", True),  # the tag as sent: If-None-Match wins
        ("ETAG ", None, True),
        ('"nope", ETAG', None, True),
        ("W/ETAG", None, True),  # weak comparison, as RFC 9110 asks for GET
        ('"nope"', "Sat, 13 Jun 2026 08:00:00 GMT", False),  # If-None-Match wins
        (None, "Sat, 13 Jun 2026 08:00:00 GMT", True),
        (None, "Sat, 13 Jun 2026 09:00:00 GMT", True),
        (None, "Sat, 13 Jun 2026 07:59:59 GMT", False),
        (None, "yesterday", False),
        (None, "Sat, 13 Jun 2026 08:00:00", False),  # no zone: not a valid HTTP date
    ],
)
def test_not_modified_follows_rfc_9110(
    if_none_match: str | None, if_modified_since: str | None, expected: bool
) -> None:
    answer = rendered(datetime(2026, 6, 13, 8, 0, 0, 999, tzinfo=UTC))
    if if_none_match is not None:
        if_none_match = if_none_match.replace("ETAG", answer.etag)
    assert not_modified(answer, if_none_match, if_modified_since) is expected


def test_etag_is_strong_and_follows_the_bytes() -> None:
    moment = datetime(2026, 6, 13, tzinfo=UTC)
    one, same = rendered(moment), rendered(moment)
    other = Rendered(b"<feed>2</feed>", "application/atom+xml", moment, "no-cache")
    assert one.etag == same.etag != other.etag
    assert one.etag.startswith('"') and one.etag.endswith('"')
    assert one.last_modified_http == "Sat, 13 Jun 2026 00:00:00 GMT"
