"""Render a feed as JSON Feed 1.1 (https://jsonfeed.org/version/1.1)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from adapters.atom.catalog import FeedSpec
from adapters.atom.entries import FeedEntry

MEDIA_TYPE = "application/feed+json; charset=utf-8"
VERSION = "https://jsonfeed.org/version/1.1"


def _item(entry: FeedEntry) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": entry.id,
        "url": entry.url,
        "title": entry.title,
        "content_text": entry.text,
        "date_published": entry.updated.isoformat(),
        "authors": [{"name": name} for name in entry.authors],
        "tags": list(entry.categories),
        # Readers ignore what they do not know; "_" marks an extension (spec, "Extensions").
        "_paperbridge": {
            "arxiv_id": entry.arxiv_id,
            "why": entry.why,
            "upvotes": entry.upvotes,
            "listed_on": entry.day.isoformat() if entry.day else None,
            # True when the day comes from arXiv's schedule and no listing has confirmed it.
            "listed_on_estimated": entry.day_estimated,
            "links": {link.title: link.href for link in entry.links},
        },
    }
    if entry.more_authors:
        item["authors"].append({"name": f"and {entry.more_authors} more"})
    if not item["authors"]:
        del item["authors"]  # the feed's own author stands in, as in Atom
    if entry.tldr:
        item["summary"] = entry.tldr
    related = [link.href for link in entry.related if link.title == "arXiv"]
    if related:
        item["external_url"] = related[0]
    return item


def render_json_feed(spec: FeedSpec, entries: Sequence[FeedEntry], base: str) -> bytes:
    feed = {
        "version": VERSION,
        "title": spec.title,
        "home_page_url": f"{base}/",
        "feed_url": spec.url(base, "json"),
        "description": (
            f"Papers matching {spec.query}" if spec.query else "Every new paper the bridge found"
        ),
        "authors": [{"name": "paperbridge", "url": f"{base}/"}],
        "language": "en",
        "items": [_item(entry) for entry in entries],
    }
    return json.dumps(feed, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
