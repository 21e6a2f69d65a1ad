"""The service behind ``/papers`` on every chat platform: search, the top of a period,
subscriptions, post now.

A chat channel is a ``Channel`` (the platform, an address its publisher can post to, and a
name for people); its subscriptions are ledger digest subscriptions on the destination of that
address, so the morning posts go through the delivery ledger like every other digest. All
database work runs in threads: a chat adapter's event loop never waits on the store. Searches
run in the search pool (``bridge.search_pool``), shared with the web page and the feeds.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field
from datetime import date, timedelta

from bridge.chat.commands import TOP_PERIODS, Subscribe, parse_period
from bridge.config import Settings
from bridge.delivery import Destination, DigestSubscription, destination_id_for
from bridge.errors import ChatUsageError, QueryError, SearchBusy, SearchTooBroad
from bridge.ledger import Ledger
from bridge.query import format_query_error
from bridge.search import SearchResult, SearchResults, search_store
from bridge.search_pool import SearchPool, shared_pool
from bridge.store import Store
from bridge.store.listing import ListingSort

# More than this many subscriptions in one channel is a mistake, not a use.
MAX_SUBSCRIPTIONS_PER_CHANNEL = 25
SEARCH_PAGE_SIZE = 5


@dataclass(frozen=True, slots=True)
class Channel:
    """A chat channel that can get digests.

    ``kind`` names the publisher ("slack", "discord", "discord-webhook"); ``address`` is what
    that publisher posts to (a workspace and channel id, a Discord channel id, a webhook URL);
    ``name`` is how people call it ("#papers").
    """

    kind: str
    address: str
    name: str = ""

    @property
    def destination_id(self) -> str:
        return destination_id_for(self.kind, self.address)


@dataclass(frozen=True, slots=True)
class Period:
    """The listing days ``/papers top`` shows: ``spec`` as asked ("today", "week", "month",
    "2024-08-01"), resolved to ``first``..``last`` (both None: the archive has no listing
    day yet)."""

    spec: str
    first: date | None
    last: date | None

    @property
    def label(self) -> str:
        """How replies name it: "2024-08-01", "the week of 2024-07-29", "August 2024"."""
        if self.first is None or self.last is None:
            return "today"
        if self.first == self.last:
            return self.first.isoformat()
        if self.spec == "week":
            return f"the week of {self.first.isoformat()}"
        return self.first.strftime("%B %Y")


def resolve_period(spec: str, latest: date | None) -> Period:
    """``spec`` as listing days. "today" is the newest listing day in the archive (HF lists
    on weekdays, and a listing may arrive late: the calendar day could be empty); "week" and
    "month" are the calendar week (Monday to Sunday, as HF's weekly page) and month holding
    that day; a date is that day."""
    if spec not in ("today", "week", "month"):
        day = date.fromisoformat(spec)
        return Period(spec, day, day)
    if latest is None:
        return Period(spec, None, None)
    if spec == "week":
        monday = latest - timedelta(days=latest.weekday())
        return Period(spec, monday, monday + timedelta(days=6))
    if spec == "month":
        first = latest.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        return Period(spec, first, following - timedelta(days=1))
    return Period(spec, latest, latest)


@dataclass(frozen=True, slots=True)
class SearchPage:
    """One page of papers: search results, or (``period`` set) the most upvoted papers of a
    period, in which case ``query`` is the period as asked."""

    query: str
    page: int  # 1-based
    per_page: int
    results: SearchResults
    period: Period | None = None

    @property
    def has_more(self) -> bool:
        return self.results.total > self.page * self.per_page

    @property
    def first_number(self) -> int:
        """The rank of the first result on this page (1-based)."""
        return (self.page - 1) * self.per_page + 1


@dataclass(frozen=True, slots=True)
class NowReport:
    """What ``/papers now`` did: subscription -> what its digest run did ("sent", "empty",
    "paused", "retry", ...; see ``Ledger.run_digest``)."""

    outcomes: dict[str, str] = field(default_factory=dict)
    subscriptions: tuple[DigestSubscription, ...] = ()

    @property
    def sent(self) -> int:
        return sum(1 for outcome in self.outcomes.values() if outcome == "sent")


class ChatService:
    def __init__(
        self,
        store: Store,
        ledger: Ledger,
        settings: Settings,
        searches: SearchPool | None = None,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.settings = settings
        self.searches = searches or shared_pool()

    # -- search -------------------------------------------------------------------------------

    async def search(
        self, query: str, page: int = 1, per_page: int = SEARCH_PAGE_SIZE
    ) -> SearchPage:
        """One page of results, ranked as `paperbridge search` ranks them."""
        page = max(1, page)
        try:
            results = await self.searches.run(
                search_store, self.store, query, limit=per_page, offset=(page - 1) * per_page
            )
        except QueryError as exc:
            raise ChatUsageError(f"That query does not parse: {format_query_error(exc)}") from None
        except SearchTooBroad as exc:
            raise ChatUsageError(str(exc)) from None
        except SearchBusy as exc:
            raise ChatUsageError(
                f"Too many searches are running right now; try again in {exc.retry_after} seconds."
            ) from None
        return SearchPage(query, page, per_page, results)

    # -- top of a period ------------------------------------------------------------------------

    async def top(self, period: str, page: int = 1, per_page: int = SEARCH_PAGE_SIZE) -> SearchPage:
        """One page of the most upvoted papers of ``period`` (``commands.parse_period``'s
        spelling; anything else is a ChatUsageError), most upvoted first."""
        spec = parse_period(period)
        return await asyncio.to_thread(self._top, spec, max(1, page), per_page)

    def _top(self, spec: str, page: int, per_page: int) -> SearchPage:
        listings = self.store.listings
        period = resolve_period(spec, listings.latest_day() if spec in TOP_PERIODS else None)
        if period.first is None or period.last is None:
            return SearchPage(spec, page, per_page, SearchResults(), period)
        total = listings.count_in_period(period.first, period.last)
        offset = (page - 1) * per_page
        papers = (
            listings.in_period(
                period.first,
                period.last,
                sort=ListingSort.UPVOTES,
                limit=per_page,
                offset=offset,
            )
            if offset < total
            else []
        )
        results = SearchResults([SearchResult(stored) for stored in papers], total)
        return SearchPage(spec, page, per_page, results, period)

    async def reopen(self, query: str, page: int, *, top: bool = False) -> SearchPage:
        """The page a paging or share button leads to: of a search, or of ``top``."""
        return await (self.top(query, page) if top else self.search(query, page))

    # -- subscriptions ------------------------------------------------------------------------

    async def subscribe(
        self, channel: Channel, command: Subscribe, *, default_zone: str | None = None
    ) -> tuple[DigestSubscription, bool]:
        """Subscribe ``channel`` to a query; the same query again changes its time and options.
        Returns the subscription and whether it is new. ``default_zone``: the zone of the
        person subscribing, when the platform knows it."""
        return await asyncio.to_thread(self._subscribe, channel, command, default_zone)

    def _subscribe(
        self, channel: Channel, command: Subscribe, default_zone: str | None
    ) -> tuple[DigestSubscription, bool]:
        db = self.ledger.db
        now = self.ledger.clock()
        dest_id = channel.destination_id
        existing = db.digests_of(dest_id)
        sub_id = subscription_id(dest_id, command.query)
        created = all(sub.id != sub_id for sub in existing)
        if created and len(existing) >= MAX_SUBSCRIPTIONS_PER_CHANNEL:
            raise ChatUsageError(
                f"This channel already has {len(existing)} subscriptions, the most it can have."
                " Unsubscribe from one first, or combine queries with OR."
            )
        dest = db.get_destination(dest_id)
        if dest is None:
            db.save_destination(
                Destination(
                    dest_id, channel.kind, channel.address, name=channel.name, origin="chat"
                ),
                now,
            )
        elif dest.paused:
            # Subscribing again is how people say "the channel works again" (the app was
            # re-added); if it still does not, the next post pauses it again.
            db.resume_destination(dest_id, now)
        sub = DigestSubscription(
            id=sub_id,
            destination_id=dest_id,
            query=command.query,
            local_time=command.local_time or self.settings.delivery.digest_time,
            time_zone=command.time_zone or default_zone or self.settings.time_zone,
            all_quiet=command.all_quiet,
            origin="chat",
        )
        db.save_digest(sub, now)
        return db.get_digest(sub_id) or sub, created

    async def subscriptions(self, channel: Channel) -> list[DigestSubscription]:
        """The channel's subscriptions, oldest first (the numbers `unsubscribe` takes)."""
        return await asyncio.to_thread(self.ledger.db.digests_of, channel.destination_id)

    async def unsubscribe(self, channel: Channel, target: str) -> list[DigestSubscription]:
        """Remove subscriptions by number (from `list`), by query, or "all"; returns them."""
        return await asyncio.to_thread(self._unsubscribe, channel, target)

    def _unsubscribe(self, channel: Channel, target: str) -> list[DigestSubscription]:
        db = self.ledger.db
        subs = db.digests_of(channel.destination_id)
        if not subs:
            raise ChatUsageError("This channel has no subscriptions.")
        wanted = target.strip()
        if wanted.lower() == "all":
            chosen = subs
        elif wanted.isdigit():
            number = int(wanted)
            if not 1 <= number <= len(subs):
                raise ChatUsageError(
                    f"There is no subscription {number} here; `list` shows numbers 1 to"
                    f" {len(subs)}."
                )
            chosen = [subs[number - 1]]
        else:
            chosen = [sub for sub in subs if _same_query(sub.query, wanted)]
            if not chosen:
                raise ChatUsageError(
                    "No subscription here has that query; `list` shows them with their numbers."
                )
        for sub in chosen:
            db.delete_digest(sub.id)
        if len(chosen) == len(subs):
            db.delete_destination(channel.destination_id)
        return chosen

    # -- post now -----------------------------------------------------------------------------

    async def post_now(self, channel: Channel) -> NowReport:
        """Send the channel's digests at once: everything matched since its last post."""
        subs = await self.subscriptions(channel)
        if not subs:
            raise ChatUsageError(
                "This channel has no subscriptions yet; try `subscribe generalization`."
            )
        await self.ledger.intake()
        outcomes = {}
        for sub in subs:
            outcomes[sub.id] = await self.ledger.run_digest(
                sub.id, force=True, destination_id=sub.destination_id
            )
        return NowReport(outcomes, tuple(subs))


def subscription_id(destination_id: str, query: str) -> str:
    """Stable per channel and query, so subscribing twice updates rather than duplicates."""
    digest = hashlib.sha256(_query_key(query).encode()).hexdigest()[:10]
    return f"{destination_id}.{digest}"


def _query_key(query: str) -> str:
    return " ".join(query.split())


def _same_query(a: str, b: str) -> bool:
    return _query_key(a).casefold() == _query_key(b).casefold()
