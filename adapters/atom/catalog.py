"""Which feeds exist (all papers, one per subscription, any query) and what each one holds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from adapters.atom.entries import FeedEntry, explain, to_entry
from bridge.config import Settings
from bridge.errors import QueryError
from bridge.search_newest import newest_matches
from bridge.store import Store

# Newest entries per feed. Readers keep 50-200 entries and some reject feeds near 1 MB; 50
# papers with abstracts come to about 120 KB of Atom.
FEED_SIZE = 50
# The query language's own limit (bridge.query.parser.MAX_QUERY_LENGTH); checked here first
# so an over-long query costs nothing.
MAX_QUERY_LENGTH = 500
FORMATS = ("atom", "json")
# What no feed can carry: XML 1.0 forbids C0 controls but tab and line breaks, surrogates and
# U+FFFE/U+FFFF; DEL, C1 controls and the other noncharacters are no text anyone types either.
_NOT_TEXT = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(
        f"{chr(plane + 0xFFFE)}{chr(plane + 0xFFFF)}" for plane in range(0, 0x110000, 0x10000)
    )
    + "]"
)


class UnknownFeed(LookupError):
    """No such feed: answered 404."""


@dataclass(frozen=True, slots=True)
class FeedSpec:
    """One feed: its name for caches and ids, its title, its path and its query (None: all)."""

    key: str
    title: str
    path: str  # without the format extension, e.g. "/feeds/all"
    query: str | None = None
    params: str = ""  # the URL query string, with its "?", for search feeds

    def url(self, base: str, fmt: str) -> str:
        return f"{base}{self.path}.{fmt}{self.params}"

    def view_url(self, base: str) -> str:
        """The readable page: the Atom URL, which serves HTML to a browser."""
        return self.url(base, "atom")

    @property
    def tag(self) -> str:
        """The feed's atom:id: independent of the host name it was fetched under."""
        return f"tag:paperbridge,2026:{quote(self.key, safe='/:=?&')}"


class Catalog:
    """The feeds a configuration offers."""

    def __init__(self, settings: Settings, *, max_query_length: int = MAX_QUERY_LENGTH) -> None:
        self.max_query_length = max_query_length
        self.all = FeedSpec("feeds/all", "paperbridge: all new papers", "/feeds/all")
        self.subscriptions = {
            sub.name: FeedSpec(
                f"feeds/subscriptions/{sub.name}",
                f"paperbridge: {sub.name}",
                f"/feeds/subscriptions/{sub.name}",
                sub.query,
            )
            for sub in settings.subscriptions
        }

    def listed(self) -> list[FeedSpec]:
        """Every standing feed, for the web page and the OPML file."""
        return [self.all, *self.subscriptions.values()]

    def subscription(self, name: str) -> FeedSpec:
        try:
            return self.subscriptions[name]
        except KeyError:
            raise UnknownFeed(f"no subscription named {name!r}") from None

    def search(self, query: str | None) -> FeedSpec:
        """The feed for any query; raises QueryError for a missing or over-long one."""
        query = self.check_query(query)
        params = "?" + urlencode({"q": query})
        return FeedSpec(
            f"feeds/search?q={query}", f"paperbridge: {query}", "/feeds/search", query, params
        )

    def check_query(self, query: str | None) -> str:
        if query is None or not query.strip():
            raise QueryError("missing query: add ?q=words, e.g. ?q=generalization", 0, "")
        if len(query) > self.max_query_length:
            raise QueryError(
                f"query is too long ({len(query)} characters; at most {self.max_query_length})",
                self.max_query_length,
                query[: self.max_query_length],
            )
        bad = _NOT_TEXT.search(query)
        if bad is not None:
            raise QueryError(
                f"the query holds a control or non-text character (U+{ord(bad.group()):04X});"
                " queries are plain text",
                bad.start(),
                query,
            )
        return query.strip()


def load_entries(store: Store, spec: FeedSpec, size: int = FEED_SIZE) -> list[FeedEntry]:
    """A feed's newest papers by listing day, from the whole archive. Blocking: run it in a
    thread.

    Polled, imported and backfilled papers alike: someone who loads a year of history sees
    it at once, and a subscription's feed is full the moment it is configured. Entry ids are
    the papers' arXiv URLs, so a reader shows a paper once however often it comes back.
    Announcing (chat digests) is the ledger's business and stays news only.
    """
    if spec.query is None:
        return [to_entry(stored) for stored in store.listings.newest(size)]
    results = newest_matches(store, spec.query, limit=size)
    return [to_entry(r.stored, why=explain(r.hits, r.why)) for r in results]
