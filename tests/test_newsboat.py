"""A real feed reader (Debian's newsboat) subscribed to the bridge across a poll that adds papers."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from tests.fake_upstream import FakeUpstream
from tests.test_web_server import (
    LiveServer,
    hf_items,
    live_settings,
    requests_answered,
    serve_hf,
)

NEWSBOAT = shutil.which("newsboat")
pytestmark = pytest.mark.skipif(
    NEWSBOAT is None and not os.environ.get("CI"),
    reason="newsboat is not installed (scripts/test installs it; CI never skips)",
)
FEED_ROUTE = "/feeds/all.{fmt}"
SUB_ROUTE = "/feeds/subscriptions/{name}.{fmt}"


class Newsboat:
    """newsboat driven headless: ``-x reload`` fetches every feed, its cache is SQLite."""

    def __init__(self, home: Path, urls: list[str]) -> None:
        self.home = home
        self.cache = home / "cache.db"
        (home / "urls").write_text("\n".join(urls) + "\n", encoding="utf-8")

    def run(self, *commands: str) -> str:
        result = subprocess.run(
            [NEWSBOAT or "newsboat", "-u", "urls", "-c", "cache.db", "-C", "/dev/null"]
            + [arg for command in commands for arg in ("-x", command)],
            cwd=self.home,
            # newsboat wants a home for its lock and history files; keep it inside the test.
            env={**os.environ, "HOME": str(self.home), "XDG_CONFIG_HOME": str(self.home)},
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return result.stdout

    def reload(self) -> None:
        self.run("reload")

    def unread(self) -> int:
        # e.g. "30 unread articles"
        return int(self.run("print-unread").split()[0])

    def guids(self) -> list[str]:
        """Every article newsboat keeps, over all feeds (it files one id under one feed)."""
        with sqlite3.connect(self.cache) as db:
            rows = db.execute("SELECT guid FROM rss_item").fetchall()
        return [row[0] for row in rows]

    def etag(self, feed_url: str) -> str | None:
        with sqlite3.connect(self.cache) as db:
            row = db.execute("SELECT etag FROM rss_feed WHERE rssurl = ?", (feed_url,)).fetchone()
        return row[0] if row else None


def test_newsboat_sees_each_paper_once_new_ones_appear_and_reloads_get_304(
    tmp_path: Path,
) -> None:
    items = hf_items()
    with FakeUpstream() as upstream:
        serve_hf(upstream, items[:20])
        with LiveServer(live_settings(tmp_path, upstream)) as live:
            assert len(live.poll().new) == 20
            all_feed = live.url("/feeds/all.atom")
            world = live.url("/feeds/subscriptions/world.atom")
            reader = Newsboat(tmp_path, [all_feed, world])

            reader.reload()
            reader.reload()
            first = reader.guids()
            # The subscription's papers are also in the all-papers feed: same id, one article.
            assert len(first) == 20 == len(set(first))
            assert all(guid.startswith("https://arxiv.org/abs/") for guid in first)
            assert reader.unread() == 20

            serve_hf(upstream, items)  # the listing grows by ten papers
            assert len(live.poll().new) == 10
            reader.reload()
            after = reader.guids()
            assert len(after) == 30 == len(set(after))
            assert set(first) < set(after)
            expected = {f"https://arxiv.org/abs/{item['paper']['id']}" for item in items}
            assert set(after) == expected
            assert reader.etag(all_feed) and reader.etag(world)

            not_modified = requests_answered(FEED_ROUTE, 304)
            not_modified_sub = requests_answered(SUB_ROUTE, 304)
            reader.reload()
            reader.reload()
            # newsboat sends If-None-Match from its third reload on; these are its 4th and 5th.
            assert requests_answered(FEED_ROUTE, 304) - not_modified == 2
            assert requests_answered(SUB_ROUTE, 304) - not_modified_sub == 2
            assert sorted(reader.guids()) == sorted(after)
            assert reader.unread() == 30
