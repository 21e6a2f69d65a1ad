"""The service behind /papers, on SQLite and PostgreSQL: search, subscriptions, post now."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.chat import Channel, ChatService, Subscribe
from bridge.chat.service import MAX_SUBSCRIPTIONS_PER_CHANNEL
from bridge.config import DeliverySettings, Settings
from bridge.errors import ChatUsageError
from bridge.ledger import Ledger
from bridge.models import Paper
from bridge.store import Store
from tests.fakes import Clock, RecordingPublisher

T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
CHANNEL = Channel("fake", "T1:C1", "#papers")
OTHER = Channel("fake", "T1:C2", "#other")


def paper(n: int, title: str, abstract: str = "We study it.") -> Paper:
    return Paper(f"2606.{n:05d}", title, abstract=abstract, upvotes=n)


@pytest.fixture
def setup(store: Store) -> tuple[ChatService, RecordingPublisher, Clock]:
    clock = Clock(T0)
    publisher = RecordingPublisher()
    ledger = Ledger(store, {"fake": publisher}, DeliverySettings(), clock=clock)
    settings = Settings(time_zone="Europe/Berlin")
    return ChatService(store, ledger, settings), publisher, clock


async def test_subscribing_uses_the_defaults_and_again_updates(setup) -> None:  # type: ignore[no-untyped-def]
    chat, _, _ = setup
    sub, created = await chat.subscribe(CHANNEL, Subscribe("generalization"))
    assert created
    assert (sub.query, sub.local_time, sub.time_zone, sub.all_quiet) == (
        "generalization",
        "08:00",
        "Europe/Berlin",
        False,
    )
    dest = chat.ledger.db.get_destination(CHANNEL.destination_id)
    assert dest is not None and (dest.kind, dest.address, dest.name) == ("fake", "T1:C1", "#papers")

    again, created = await chat.subscribe(
        CHANNEL, Subscribe("generalization", "07:15", "Asia/Tokyo", True)
    )
    assert not created and again.id == sub.id
    assert (again.local_time, again.time_zone, again.all_quiet) == ("07:15", "Asia/Tokyo", True)
    assert [s.id for s in await chat.subscriptions(CHANNEL)] == [sub.id]

    # The person's own zone, when the platform knows it, beats the deployment's.
    other, _ = await chat.subscribe(OTHER, Subscribe("gan"), default_zone="America/Chicago")
    assert other.time_zone == "America/Chicago"
    assert [s.query for s in await chat.subscriptions(OTHER)] == ["gan"]


async def test_unsubscribe_by_number_query_or_all(setup) -> None:  # type: ignore[no-untyped-def]
    chat, _, clock = setup
    for query in ("alpha", "beta", "gamma"):
        clock.advance(seconds=1)  # list order is creation order
        await chat.subscribe(CHANNEL, Subscribe(query))
    assert [s.query for s in await chat.subscriptions(CHANNEL)] == ["alpha", "beta", "gamma"]

    removed = await chat.unsubscribe(CHANNEL, "2")
    assert [s.query for s in removed] == ["beta"]
    removed = await chat.unsubscribe(CHANNEL, "  GAMMA ")
    assert [s.query for s in removed] == ["gamma"]
    with pytest.raises(ChatUsageError, match="no subscription 5"):
        await chat.unsubscribe(CHANNEL, "5")
    with pytest.raises(ChatUsageError, match="No subscription here has that query"):
        await chat.unsubscribe(CHANNEL, "delta")
    assert [s.query for s in await chat.unsubscribe(CHANNEL, "all")] == ["alpha"]
    # The last subscription gone, the channel is forgotten as a destination too.
    assert chat.ledger.db.get_destination(CHANNEL.destination_id) is None
    with pytest.raises(ChatUsageError, match="no subscriptions"):
        await chat.unsubscribe(CHANNEL, "all")


async def test_a_channel_has_a_sane_number_of_subscriptions(setup) -> None:  # type: ignore[no-untyped-def]
    chat, _, _ = setup
    for n in range(MAX_SUBSCRIPTIONS_PER_CHANNEL):
        await chat.subscribe(CHANNEL, Subscribe(f"topic{n}"))
    with pytest.raises(ChatUsageError, match="the most it can have"):
        await chat.subscribe(CHANNEL, Subscribe("one-more"))
    # Changing an existing one is still allowed.
    await chat.subscribe(CHANNEL, Subscribe("topic0", "09:00"))


async def test_post_now_sends_what_matched_since_the_last_post(setup) -> None:  # type: ignore[no-untyped-def]
    chat, publisher, clock = setup
    with pytest.raises(ChatUsageError, match="no subscriptions yet"):
        await chat.post_now(CHANNEL)
    await chat.subscribe(CHANNEL, Subscribe("generalization"))
    clock.advance(minutes=1)
    chat.store.add_papers(
        [paper(1, "Better generalisation"), paper(2, "Unrelated"), paper(3, "Generalizing")],
        now=clock.now,
    )
    report = await chat.post_now(CHANNEL)
    assert report.sent == 1
    assert publisher.delivered() == [
        (CHANNEL.destination_id, "2606.00001"),
        (CHANNEL.destination_id, "2606.00003"),
    ]
    again = await chat.post_now(CHANNEL)
    assert again.sent == 0 and set(again.outcomes.values()) == {"empty"}
    assert len(publisher.sent) == 1


async def test_a_paused_channel_resumes_when_subscribed_again(setup) -> None:  # type: ignore[no-untyped-def]
    chat, _, clock = setup
    await chat.subscribe(CHANNEL, Subscribe("generalization"))
    chat.ledger.db.pause_destination(CHANNEL.destination_id, "channel_not_found", clock.now)
    await chat.subscribe(CHANNEL, Subscribe("diffusion"))
    dest = chat.ledger.db.get_destination(CHANNEL.destination_id)
    assert dest is not None and not dest.paused


async def test_search_pages_and_explains_bad_queries(setup) -> None:  # type: ignore[no-untyped-def]
    chat, _, clock = setup
    chat.store.add_papers(
        [paper(n, f"Generalization study {n}") for n in range(1, 13)], now=clock.now
    )
    first = await chat.search("generalisation", per_page=5)
    assert len(first.results.items) == 5 and first.results.total == 12 and first.has_more
    last = await chat.search("generalisation", page=3, per_page=5)
    assert len(last.results.items) == 2 and not last.has_more and last.first_number == 11
    seen = {
        r.stored.paper.arxiv_id
        for p in (1, 2, 3)
        for r in (await chat.search("generalize", page=p)).results.items
    }
    assert len(seen) == 12
    with pytest.raises(ChatUsageError, match="does not parse"):
        await chat.search("title:(a OR")
