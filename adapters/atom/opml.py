"""Render the list of every feed as OPML 2.0, for one-click import into a feed reader."""

from __future__ import annotations

from collections.abc import Sequence

from lxml import etree

from adapters.atom.catalog import FeedSpec

MEDIA_TYPE = "text/x-opml; charset=utf-8"


def render_opml(feeds: Sequence[FeedSpec], base: str) -> bytes:
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = "paperbridge feeds"
    etree.SubElement(head, "docs").text = "http://opml.org/spec2.opml"
    body = etree.SubElement(root, "body")
    for spec in feeds:
        # type="rss" is what OPML 2.0 names every feed outline, Atom included.
        etree.SubElement(
            body,
            "outline",
            text=spec.title,
            title=spec.title,
            type="rss",
            xmlUrl=spec.url(base, "atom"),
            # The site's page, with every feed and a search box: what a reader links as the
            # feed's home. (The feed URL also answers browsers, but it is the feed itself.)
            htmlUrl=f"{base}/",
        )
    result: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return result
