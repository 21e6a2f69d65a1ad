"""The HTTP routes of feeds and the web page, mounted into the server `paperbridge serve` runs."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from adapters.atom import archive_pages, atom, jsonfeed, opml, page
from adapters.atom.cache import DataVersion, RenderCache
from adapters.atom.cards import Card, to_card
from adapters.atom.catalog import (
    FEED_SIZE,
    FORMATS,
    MAX_QUERY_LENGTH,
    Catalog,
    FeedSpec,
    UnknownFeed,
    load_entries,
)
from adapters.atom.conditional import Rendered
from adapters.atom.negotiate import prefers_html
from adapters.atom.serving import (
    Answer,
    ExactFeedPaths,
    RawResponse,
    app_path,
    base_url,
    request_headers,
    send_text,
)
from adapters.atom.templates import FAVICON, STYLESHEET
from bridge import metrics
from bridge.app import Bridge
from bridge.errors import QueryError, SearchBusy, SearchTooBroad, StoreError
from bridge.health import HealthCheck, HealthReport
from bridge.query.hints import empty_result_hints
from bridge.search import UPVOTES_POOL, Order, SearchResults, order_for, search_store
from bridge.search_pool import SearchPool, shared_pool
from bridge.store import Store
from bridge.web import FastAnswer, FastPath

log = logging.getLogger(__name__)

PAGE_SIZE = 20
# Deep pages cost the database an OFFSET scan and nobody reads page 250 of a search.
MAX_PAGE = 250
_MEDIA_TYPES = {"atom": atom.MEDIA_TYPE, "json": jsonfeed.MEDIA_TYPE, "html": page.MEDIA_TYPE}
_FEED_TYPES = {"atom": "application/atom+xml", "json": "application/feed+json"}
_STATIC = {"Cache-Control": "public, max-age=86400"}
# How many (Accept, Host, ...) combinations _variant remembers; the oldest goes first.
_NEGOTIATED = 256
# The search page's sort switch: bridge.search.SORTS, as the page labels them.
_SEARCH_SORTS = (("relevance", "Relevance"), ("newest", "Newest"), ("upvotes", "Upvotes"))


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """Tunables of the feed server; ``size`` should become a setting (server.feed_size)."""

    size: int = FEED_SIZE
    max_query_length: int = MAX_QUERY_LENGTH
    # How long a data version is trusted before the database is asked again (seconds).
    version_ttl: float = 1.0
    cache_entries: int = 256
    # While a changed feed re-renders, readers wait at most this long, then get the old bytes
    # (None: always wait). A reader polling in that moment sees the news one poll later.
    stale_grace: float | None = 0.5
    # Cache-Control max-age; None: a quarter of the shortest poll interval.
    max_age: int | None = None


def _max_age(bridge: Bridge) -> int:
    sources = bridge.settings.sources
    minutes = [s.poll_every_minutes for s in (sources.hf, sources.arxiv) if s.enabled]
    # Nothing changes between polls; a quarter of the interval bounds how late a reader that
    # honours max-age (Miniflux) sees a new paper, while sparing the server most requests.
    return max(60, min(3600, min(minutes, default=60) * 60 // 4))


class _Failure(Exception):
    """A request that ends in a short text answer (status, message and extra headers)."""

    def __init__(
        self, status: int, message: str, headers: tuple[tuple[bytes, bytes], ...] = ()
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def _busy(exc: SearchBusy) -> _Failure:
    return _Failure(503, str(exc), ((b"retry-after", str(exc.retry_after).encode()),))


class FeedEndpoint:
    """Raw ASGI endpoint for one family of feeds: "all", "subscription" or "search"."""

    def __init__(self, site: FeedSite, kind: str) -> None:
        self.site = site
        self.kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await send_text(send, 405, "method not allowed", [(b"allow", b"GET, HEAD")])
            return
        try:
            # Nearly every request: the cached bytes, found and sent without an await in
            # between (no coroutine for the lookup, no Response object to call).
            found = self.site.cached(scope, self.kind)
            if found is not None:
                status, headers, body = found
                await send({"type": "http.response.start", "status": status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
            response = await self.site.feed(scope, self.kind)
        except _Failure as failure:
            await send_text(send, failure.status, failure.message, failure.headers)
            return
        await response(scope, receive, send)


class FeedSite:
    """Feeds and pages over one store; rendered bytes are shared by every request."""

    def __init__(
        self,
        bridge: Bridge,
        options: FeedOptions | None = None,
        *,
        health: HealthCheck | None = None,
        searches: SearchPool | None = None,
    ) -> None:
        self.options = options or FeedOptions()
        # What the front page says about health (``serve`` passes one knowing its crashes).
        self.health = health or HealthCheck(
            bridge.settings, bridge.store, [source.name for source in bridge.sources]
        )
        # Searches (the search page, search and subscription feeds) run in their own threads,
        # so a burst of them never takes the threads health checks and plain feeds use.
        self.searches = searches or shared_pool()
        # Per feed variant: the last rendered bytes and their Last-Modified (see _advance).
        self._stamps: dict[Hashable, tuple[int, datetime]] = {}
        self.store = bridge.store
        self.catalog = Catalog(bridge.settings, max_query_length=self.options.max_query_length)
        self.public_url = bridge.settings.server.public_url.rstrip("/")
        self.version = DataVersion(bridge.store, self.options.version_ttl)
        self.cache: RenderCache[Answer] = RenderCache(self.options.cache_entries)
        self.cache_control = f"public, max-age={self.options.max_age or _max_age(bridge)}"
        # The feed list (OPML) comes from the settings read at start: it changed then at most.
        self.started = datetime.now(UTC).replace(microsecond=0)
        self._store_created: datetime | None = None
        # _variant's memo: (format, Accept, Host, scheme, root path, server) -> html?, base URL.
        self._negotiated: dict[Hashable, tuple[bool, str]] = {}
        # fast_answer's table: feed URL -> route template, path parameters, feed family.
        self._fast_table: dict[str, tuple[str, dict[str, str], str]] | None = None

    def store_created(self) -> datetime:
        """When the store was created (blocking, read once): an empty feed's updated time."""
        if self._store_created is None:
            self._store_created = self.store.created_at()
        return self._store_created

    def base(self, scope: Scope, host: str | None) -> str:
        """Where clients reach us: the configured public URL, else what this request used."""
        return self.public_url or base_url(scope, host)

    # -- the one path every cached answer takes ----------------------------------------------

    async def _answer(
        self,
        key: Hashable,
        render: Callable[[], Answer],
        run: Callable[[Callable[[], Answer]], Awaitable[Answer]] = asyncio.to_thread,
    ) -> Answer:
        try:
            version = await self.version.get()
            return await self.cache.get(
                key, version, render, stale_grace=self.options.stale_grace, run=run
            )
        except SearchBusy as exc:
            raise _busy(exc) from None
        except StoreError as exc:
            log.error("feeds: store unavailable: %s", exc)
            metrics.ERRORS.inc(where="feeds")
            raise _Failure(503, "the paper store is unavailable; try again shortly") from None

    def _render_feed(
        self, key: Hashable, spec: FeedSpec, fmt: str, html: bool, base: str
    ) -> Answer:
        entries = load_entries(self.store, spec, self.options.size)
        updated = atom.feed_updated(entries, self.store_created())
        if html:
            limit = self.options.max_query_length
            body = page.render_feed_view(spec, fmt, entries, base, limit)
        elif fmt == "atom":
            body = atom.render_atom(spec, entries, base, updated)
        else:
            body = jsonfeed.render_json_feed(spec, entries, base)
        kind = "html" if html else fmt
        metrics.FEED_RENDERS.inc(format=kind)
        rendered = Rendered(
            body, _MEDIA_TYPES[kind], self._advance(key, body, updated), self.cache_control
        )
        return Answer(rendered, page.SECURITY_HEADERS if html else None)

    def _advance(self, key: Hashable, body: bytes, newest: datetime) -> datetime:
        """Last-Modified that moves forward whenever the bytes change.

        The newest entry's time alone can stand still (papers stored within the same second
        as the previous newest, or an older paper revised), and a reader that sends only
        If-Modified-Since would then be told 304 about changed bytes. HTTP dates have
        one-second resolution, so a change is stamped at least a second after the last one.
        """
        digest = hash(body)  # in-process comparison only
        previous = self._stamps.get(key)
        stamp = newest
        if previous is not None and previous[0] != digest:
            stamp = max(newest, previous[1] + timedelta(seconds=1))
        elif previous is not None:
            stamp = previous[1]
        self._stamps[key] = (digest, stamp)
        if len(self._stamps) > 4 * self.options.cache_entries:
            self._stamps.pop(next(iter(self._stamps)))
        return stamp

    def _spec(self, scope: Scope, kind: str) -> FeedSpec:
        if kind == "all":
            return self.catalog.all
        if kind == "subscription":
            try:
                return self.catalog.subscription(scope["path_params"]["name"])
            except UnknownFeed:
                raise _Failure(404, "unknown feed: no subscription by that name (see /)") from None
        try:
            return self.catalog.search(QueryParams(scope["query_string"]).get("q"))
        except QueryError as exc:
            raise _Failure(400, f"bad query: {exc}") from None

    def _variant(
        self, scope: Scope, kind: str
    ) -> tuple[FeedSpec, str, bool, str, dict[bytes, str]]:
        """Which feed and variant a request asks for; _Failure if none."""
        fmt = scope["path_params"]["fmt"]
        if fmt not in FORMATS:
            raise _Failure(404, "unknown feed format: use .atom or .json")
        spec = self._spec(scope, kind)
        headers = request_headers(scope)
        accept, host = headers.get(b"accept"), headers.get(b"host")
        # Readers send the same Accept and Host on every poll: what they mean is worked out
        # once (the Accept parse costs a cached hit about 3 µs). Everything base() reads is
        # in the key; the table is bounded, as clients choose what these headers say.
        key = (fmt, accept, host, scope.get("scheme"), scope.get("root_path"), scope.get("server"))
        found = self._negotiated.get(key)
        if found is None:
            # A browser opening the feed gets a readable page at the same URL (Vary: Accept).
            found = (prefers_html(accept, _FEED_TYPES[fmt]), self.base(scope, host))
            if len(self._negotiated) >= _NEGOTIATED:
                self._negotiated.pop(next(iter(self._negotiated)))
            self._negotiated[key] = found
        html, base = found
        return spec, fmt, html, base, headers

    def cached(
        self, scope: Scope, kind: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The answer (status, headers, body) when a trusted version's bytes are cached, else
        None (then ``await feed()``); the same answer ``feed`` gives, without awaiting."""
        spec, fmt, html, base, headers = self._variant(scope, kind)
        answer = self._fresh((spec.key, fmt, html, base))
        return None if answer is None else answer.parts(headers)

    async def feed(self, scope: Scope, kind: str) -> RawResponse:
        spec, fmt, html, base, headers = self._variant(scope, kind)
        key = (spec.key, fmt, html, base)
        answer = self._fresh(key)
        if answer is None:
            run = self.searches.run if spec.query is not None else asyncio.to_thread
            try:
                answer = await self._answer(
                    key, lambda: self._render_feed(key, spec, fmt, html, base), run
                )
            except QueryError as exc:
                if kind == "subscription":
                    log.error("feeds: subscription %s has a bad query: %s", spec.key, exc)
                    raise _Failure(500, f"this subscription's query is invalid: {exc}") from None
                raise _Failure(400, f"bad query: {exc}") from None
            except SearchTooBroad as exc:
                if kind == "subscription":
                    # The query is the operator's, not the reader's: the log tells the one who
                    # can narrow it; the reader gets why, as for any query (never a 500).
                    log.error("feeds: subscription %s is too broad to serve: %s", spec.key, exc)
                    raise _Failure(
                        422, f"This subscription's query is too broad to serve as a feed. {exc}"
                    ) from None
                raise _Failure(422, str(exc)) from None
        return answer.respond(headers)

    def _fresh(self, key: Hashable) -> Answer | None:
        """Nearly every request: a trusted version and its bytes, found without awaiting."""
        version = self.version.current()
        return None if version is None else self.cache.peek(key, version)

    # -- pages and other endpoints -----------------------------------------------------------

    async def unknown_feed(self, _request: Request) -> Response:
        return _text(404, "unknown feed (see / for every feed)")

    async def opml(self, request: Request) -> Response:
        headers = request_headers(request.scope)
        base = self.base(request.scope, headers.get(b"host"))
        feeds = self.catalog.listed()

        def render() -> Answer:
            body = opml.render_opml(feeds, base)
            return Answer(Rendered(body, opml.MEDIA_TYPE, self.started, self.cache_control, ""))

        # The list changes only with the configuration, i.e. never while the process runs.
        answer = await self.cache.get(("opml", base), "settings", render)
        return answer.respond(headers)

    async def index(self, request: Request) -> Response:
        headers = request_headers(request.scope)
        base = self.base(request.scope, headers.get(b"host"))
        try:
            after = archive_pages.parse_cursor(request.query_params.get("after"))
        except archive_pages.PageError as exc:
            return _text(exc.status, exc.message)
        # Read on every request: health changes without the papers changing, and the notice
        # is part of the cache key, so a page saying "may be late" is not served once fixed.
        notice = _notice(await asyncio.to_thread(self.health.read))

        def render() -> Answer:
            limit = self.options.max_query_length
            front = archive_pages.render_front(
                self.store, self.catalog.listed(), after, base, limit, notice, self.store_created()
            )
            rendered = Rendered(front.body, page.MEDIA_TYPE, front.updated, "no-cache", vary="")
            return Answer(rendered, page.SECURITY_HEADERS)

        try:
            answer = await self._answer(("index", base, notice, after), render)
        except _Failure as failure:
            return _text(failure.status, failure.message)
        return answer.respond(headers)

    async def listing(self, request: Request) -> Response:
        """A day's, week's or month's papers (``/papers/2024-08-01``, ``2024-W31``,
        ``2024-08``); ``/papers`` alone is the newest listing day."""
        headers = request_headers(request.scope)
        base = self.base(request.scope, headers.get(b"host"))
        name = request.path_params.get("period")

        def render() -> Answer:
            period = archive_pages.period_for(self.store, name)
            wanted = archive_pages.ListingRequest.read(period, request.query_params)
            limit = self.options.max_query_length
            listing = archive_pages.render_listing(
                self.store, wanted, base, limit, self.store_created()
            )
            rendered = Rendered(listing.body, page.MEDIA_TYPE, listing.updated, "no-cache", vary="")
            return Answer(rendered, page.SECURITY_HEADERS)

        try:
            if name is not None:
                # Checked before the cache: a bad URL costs no cache entry and no thread.
                period = archive_pages.period_for(self.store, name)
                archive_pages.ListingRequest.read(period, request.query_params)
            params = request.query_params
            key = ("listing", base, name, params.get("sort"), params.get("page"))
            answer = await self._answer(key, render)
        except archive_pages.PageError as exc:
            return _text(exc.status, exc.message)
        except _Failure as failure:
            return _text(failure.status, failure.message)
        return answer.respond(headers)

    async def search_page(self, request: Request) -> Response:
        base = self.base(request.scope, request.headers.get("host"))
        raw = request.query_params.get("q")
        sort = request.query_params.get("sort") or "relevance"
        try:
            number = int(request.query_params.get("page", "1"))
        except ValueError:
            number = 0
        if not 1 <= number <= MAX_PAGE:
            return self._search_page(base, raw, error=f"page must be 1 to {MAX_PAGE}", status=400)
        if raw is None or not raw.strip():
            return self._search_page(base, None)
        try:
            # The same order `paperbridge search --sort` gives (bridge.search.SORTS).
            order = order_for(sort)
            spec = self.catalog.search(raw)
            outcome, seconds = await self.searches.run(
                _timed_search, self.store, spec.query or "", (number - 1) * PAGE_SIZE, order
            )
        except QueryError as exc:
            return self._search_page(base, raw, error=f"bad query: {exc}", status=400)
        except SearchBusy as exc:
            retry = {"Retry-After": str(exc.retry_after)}
            return self._search_page(base, raw, error=str(exc), status=503, headers=retry)
        except StoreError as exc:
            log.error("search: store unavailable: %s", exc)
            metrics.ERRORS.inc(where="search")
            return self._search_page(base, raw, error="the paper store is unavailable", status=503)
        # The search's own time in its worker, queueing left out (bench/worst_case.py).
        timing = {"Server-Timing": f"search;dur={seconds * 1000:.1f}"}
        if isinstance(outcome, SearchTooBroad):
            return self._search_page(base, raw, error=str(outcome), status=422, headers=timing)
        results = outcome
        cards = [to_card(r.stored, r.hits) for r in results.items]

        def page_url(n: int, chosen: str = sort) -> str:
            params = {"q": spec.query or "", "sort": chosen, "page": str(n)}
            if chosen == "relevance":
                del params["sort"]
            if n == 1:
                del params["page"]
            return f"{base}/search?{urlencode(params)}"

        # Upvotes order sorts the newest UPVOTES_POOL matches only (bridge.search).
        last = min(results.total, UPVOTES_POOL) if order == "upvotes" else results.total
        more = number * PAGE_SIZE < last and number < MAX_PAGE
        note = None
        if order == "upvotes" and results.total > UPVOTES_POOL:
            note = f"Sorted by upvotes: the newest {UPVOTES_POOL:,} matches."
        sorts = [(label, page_url(1, name), name == sort) for name, label in _SEARCH_SORTS]
        return self._search_page(
            base,
            spec.query,
            feed=spec,
            cards=cards,
            total=results.total_text,
            # Another engine's habits, as the CLI and chat explain them for an empty result.
            hints=empty_result_hints(spec.query or "") if not results.total else (),
            prev_url=page_url(number - 1) if number > 1 else None,
            next_url=page_url(number + 1) if more else None,
            headers=timing,
            sorts=sorts,
            page_number=number,
            note=note,
            sort=sort,
        )

    def _search_page(
        self,
        base: str,
        query: str | None,
        *,
        feed: FeedSpec | None = None,
        cards: list[Card] | None = None,
        total: int | str = 0,
        error: str | None = None,
        status: int = 200,
        prev_url: str | None = None,
        next_url: str | None = None,
        headers: dict[str, str] | None = None,
        sorts: page.SortLinks = (),
        page_number: int = 1,
        note: str | None = None,
        sort: str = "relevance",
        hints: Sequence[str] = (),
    ) -> Response:
        body = page.render_search(
            base=base,
            # An over-long query is not echoed back whole into the page.
            query=query[: self.options.max_query_length] if query else None,
            feed=feed,
            cards=cards or [],
            total=total,
            error=error,
            prev_url=prev_url,
            next_url=next_url,
            max_query_length=self.options.max_query_length,
            sorts=sorts,
            page_number=page_number,
            note=note,
            sort=sort,
            hints=hints,
        )
        every = {"Cache-Control": "no-cache", **page.SECURITY_HEADERS, **(headers or {})}
        return Response(body, status_code=status, headers=every, media_type=page.MEDIA_TYPE)

    async def stylesheet(self, _request: Request) -> Response:
        return Response(STYLESHEET, media_type="text/css; charset=utf-8", headers=_STATIC)

    async def favicon(self, _request: Request) -> Response:
        return Response(FAVICON, media_type="image/svg+xml", headers=_STATIC)

    def _feed_routes(self) -> list[Route]:
        return [
            Route("/feeds/all.{fmt}", FeedEndpoint(self, "all"), name="feed_all"),
            Route(
                "/feeds/subscriptions/{name}.{fmt}",
                FeedEndpoint(self, "subscription"),
                name="feed_subscription",
            ),
            Route("/feeds/search.{fmt}", FeedEndpoint(self, "search"), name="feed_search"),
        ]

    def routes(self) -> list[BaseRoute]:
        return [
            *self._feed_routes(),
            Route("/feeds.opml", self.opml, name="opml"),
            Route("/feeds/{rest:path}", self.unknown_feed),
            Route("/", self.index, name="index"),
            Route("/search", self.search_page, name="search"),
            Route("/papers", self.listing, name="listing_latest"),
            Route("/papers/{period}", self.listing, name="listing"),
            Route("/static/paperbridge.css", self.stylesheet, name="stylesheet"),
            Route("/static/favicon.svg", self.favicon, name="favicon"),
            Route("/favicon.ico", self.favicon),
        ]

    def _exact_paths(self) -> dict[str, tuple[Route, dict[str, str]]]:
        """Every configured feed URL: its route and the path parameters routing would find."""
        everything, subscription, search = self._feed_routes()
        table: dict[str, tuple[Route, dict[str, str]]] = {}
        for fmt in FORMATS:
            table[f"/feeds/all.{fmt}"] = (everything, {"fmt": fmt})
            table[f"/feeds/search.{fmt}"] = (search, {"fmt": fmt})
            for name in self.catalog.subscriptions:
                params = {"name": name, "fmt": fmt}
                table[f"/feeds/subscriptions/{name}.{fmt}"] = (subscription, params)
        return table

    def middleware(self) -> list[Middleware]:
        """The fast path for every configured feed URL (see ExactFeedPaths)."""
        return [Middleware(ExactFeedPaths, table=self._exact_paths())]

    def fast_paths(self) -> list[FastPath]:
        """Cached feeds answered in front of the web app (bridge.web.FrontDoor)."""
        return [self.fast_answer]

    def fast_answer(self, scope: Scope) -> FastAnswer | None:
        """A configured feed URL whose bytes are cached: the answer ``FeedEndpoint`` would
        send (the route's template for metrics, status, headers, body); None for anything
        else, a failure included, which the app then answers as usual."""
        if self._fast_table is None:
            self._fast_table = {
                path: (route.path, params, route.endpoint.kind)
                for path, (route, params) in self._exact_paths().items()
                if isinstance(route.endpoint, FeedEndpoint)
            }
        found = self._fast_table.get(app_path(scope))
        if found is None or scope["method"] not in ("GET", "HEAD"):
            return None
        template, params, kind = found
        scope["path_params"] = params
        try:
            hit = self.cached(scope, kind)
        except _Failure:
            return None
        return None if hit is None else (template, *hit)


def _notice(report: HealthReport) -> page.HealthNotice:
    # Sources retrying after a recent success are worth saying too: papers may come late.
    return page.HealthNotice(
        problems=(*report.problems, *report.warnings),
        starting=report.status == "starting",
        unreachable=bool(report.unreachable),
    )


def _timed_search(
    store: Store, query: str, offset: int, order: Order = "recent"
) -> tuple[SearchResults | SearchTooBroad, float]:
    """A search page's results, or why it is too broad, and the seconds the search took."""
    started = time.perf_counter()
    try:
        outcome: SearchResults | SearchTooBroad = search_store(
            store, query, limit=PAGE_SIZE, offset=offset, order=order
        )
    except SearchTooBroad as exc:
        outcome = exc
    return outcome, time.perf_counter() - started


def _text(status: int, message: str) -> Response:
    return Response(
        message + "\n",
        status_code=status,
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-store"},
    )


def feed_routes(bridge: Bridge, options: FeedOptions | None = None) -> list[BaseRoute]:
    """Every route of the feeds and the web page, for ``create_web_app(extra_routes=...)``.

    Without ``FeedSite.middleware()`` everything works, only the feed path is slower.
    """
    return FeedSite(bridge, options).routes()
