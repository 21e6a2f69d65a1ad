"""Accept-header negotiation: does this client want a readable page rather than the feed?

A browser opening a feed URL should see a page, a feed reader the feed. Browsers list
``text/html`` first and match feed types only through ``*/*;q=0.8``; readers either name feed
types (feedparser, Miniflux) or send ``*/*`` (newsboat, curl). So: HTML only when text/html is
strictly preferred to the feed's own type; a tie goes to the feed.
"""

from __future__ import annotations

# Browsers send about 130 characters; anything far longer is not a browser worth parsing for.
_MAX_ACCEPT = 2048
_MAX_RANGES = 32


def _ranges(accept: str) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for part in accept[:_MAX_ACCEPT].split(",", _MAX_RANGES)[:_MAX_RANGES]:
        media, *params = (p.strip() for p in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = min(1.0, max(0.0, float(value)))
                except ValueError:
                    quality = 0.0
        if media:
            out.append((media.lower(), quality))
    return out


def quality(ranges: list[tuple[str, float]], media_type: str) -> float:
    """The q of the most specific range matching ``media_type`` (RFC 9110 §12.5.1)."""
    main = media_type.split("/", 1)[0] + "/*"
    best: tuple[int, float] = (-1, 0.0)
    for media, q in ranges:
        rank = 2 if media == media_type else 1 if media == main else 0 if media == "*/*" else -1
        if rank > best[0]:
            best = (rank, q)
    return best[1]


def prefers_html(accept: str | None, feed_type: str) -> bool:
    if not accept:
        return False
    ranges = _ranges(accept)
    return quality(ranges, "text/html") > quality(ranges, feed_type)
