"""Render a feed as Atom 1.0 (RFC 4287) through feedgen; every text construct is type="text"."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem

from adapters.atom.catalog import FeedSpec
from adapters.atom.entries import FeedEntry, Link

MEDIA_TYPE = "application/atom+xml; charset=utf-8"


class _EntryLinks(BaseEntryExtension):  # type: ignore[misc]
    """Writes an entry's links. feedgen 1.0's own entry links lose rel, type and title (its
    loop variable shadows the link dict), which would leave four rel=alternate links."""

    def __init__(self) -> None:
        self.links: tuple[Link, ...] = ()

    def extend_atom(self, entry: Any) -> Any:
        for link in self.links:
            attributes = {"href": link.href, "rel": link.rel, "title": link.title}
            if link.type:
                attributes["type"] = link.type
            xml_elem("link", entry, **attributes)
        return entry


def feed_updated(entries: Sequence[FeedEntry], empty_since: datetime) -> datetime:
    """The newest entry's time; for an empty feed ``empty_since``, the time the store was
    created: the feed has been empty since then at most, and a fixed time keeps its bytes
    (and ETag) the same in every process and after restarts."""
    return max((entry.updated for entry in entries), default=empty_since)


def render_atom(
    spec: FeedSpec, entries: Sequence[FeedEntry], base: str, updated: datetime
) -> bytes:
    """The feed as Atom; ``updated`` is its feed_updated()."""
    fg = FeedGenerator()
    fg.register_extension("paperlinks", BaseExtension, _EntryLinks, atom=True, rss=False)
    fg.id(spec.tag)
    fg.title(spec.title)
    fg.subtitle(
        f"Papers matching {spec.query}" if spec.query else "Every new paper the bridge found"
    )
    # RFC 4287 needs a feed author unless every entry has one; papers without authors exist.
    fg.author(name="paperbridge", uri=f"{base}/")
    fg.link(href=spec.url(base, "atom"), rel="self", type="application/atom+xml")
    fg.link(href=f"{base}/", rel="alternate", type="text/html")
    fg.link(href=spec.url(base, "json"), rel="alternate", type="application/feed+json")
    fg.generator("paperbridge")
    fg.language("en")
    fg.updated(updated)
    for entry in entries:
        fe = fg.add_entry(order="append")
        fe.id(entry.id)
        fe.title(entry.title)
        fe.updated(entry.updated)
        if entry.published is not None:
            fe.published(entry.published)
        for name in entry.authors:
            fe.author(name=name)
        if entry.more_authors:
            fe.author(name=f"and {entry.more_authors} more")
        fe.paperlinks.links = entry.links
        for term in entry.categories:
            fe.category(term=term, scheme="https://arxiv.org/archive/")
        if entry.tldr:
            fe.summary(entry.tldr, type="text")
        # type="text": lxml escapes <, > and &, so a title or abstract can never become markup.
        fe.content(entry.text, type="text")
    body: bytes = fg.atom_str(pretty=False, encoding="UTF-8")
    return body
