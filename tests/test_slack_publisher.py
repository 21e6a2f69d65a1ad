"""The Slack publisher against a fake Slack Web API on 127.0.0.1, through the real ledger."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator

import pytest

from adapters.slack.publisher import SlackPublisher, parse_address
from bridge.chat import Channel, ChatService, Subscribe
from bridge.config import DeliverySettings, Settings
from bridge.delivery import Destination, DigestItem, DigestRun, SendOutcome
from bridge.ledger import Ledger
from bridge.models import Match, Paper, StoredPaper
from bridge.store import Store, open_store
from bridge.store.ledger import LedgerStore
from tests.fake_slack import FakeSlack
from tests.fakes import Clock
from tests.slack_support import T0, PacerClock, Sessions, address, papers, publisher


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[Sessions]:
    sessions = Sessions()
    yield sessions
    await sessions.close()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[Store]:
    opened = open_store(sqlite_url)
    yield opened
    opened.close()


def destination(channel: str) -> Destination:
    return Destination(f"slack-{channel}", "slack", address(channel), name=f"#{channel}")


def items(count: int, start: int = 1) -> list[DigestItem]:
    return [
        DigestItem(StoredPaper(p, n, T0, True), Match("s", p.arxiv_id))
        for n, p in enumerate(papers(count, start), start)
    ]


class World:
    """A store, a ledger with the Slack publisher, and channels subscribed through chat."""

    def __init__(self, store: Store, pub: SlackPublisher) -> None:
        self.clock = Clock(T0)
        self.store = store
        self.publisher = pub
        self.ledger = Ledger(
            store,
            {"slack": pub},
            DeliverySettings(backoff_base_seconds=30),
            clock=self.clock,
            rng=lambda: 0.5,
        )
        self.chat = ChatService(store, self.ledger, Settings())

    async def subscribe(self, channel: str, query: str = "generalization") -> Channel:
        chan = Channel("slack", address(channel), f"#{channel}")
        await self.chat.subscribe(chan, Subscribe(query))
        return chan

    def add(self, count: int, start: int = 1) -> None:
        self.store.add_papers(papers(count, start), now=self.clock.advance(minutes=1))


# -- one digest ---------------------------------------------------------------------------------


async def test_a_small_digest_is_one_message_with_its_header(slack, session, sqlite_store) -> None:  # type: ignore[no-untyped-def]
    world = World(sqlite_store, publisher(slack, session))
    await world.subscribe("C1")
    world.add(2)
    report = await world.ledger.sweep(force=True)
    assert list(report.digests.values()) == ["sent"]
    [message] = slack.posted["C1"]
    assert message["text"].startswith("2 papers for generalization: Generalization in deep")
    assert message["blocks"][0]["text"]["text"] == "*2 new papers for `generalization`*"
    assert slack.papers_posted("C1") == ["2606.00001", "2606.00002"]
    assert message["unfurl_links"] is False and "link_names" not in message
    call = slack.calls_to("chat.postMessage")[0]
    assert call.token == "xoxb-fake-bot-token"


async def test_a_big_digest_is_a_header_with_the_papers_in_its_thread(
    slack, session, sqlite_store
) -> None:  # type: ignore[no-untyped-def]
    world = World(sqlite_store, publisher(slack, session))
    await world.subscribe("C1")
    world.add(25)
    await world.ledger.sweep(force=True)
    header, *thread = slack.posted["C1"]
    assert header["text"] == "25 new papers for generalization"
    assert "thread_ts" not in header
    assert [len(message["blocks"]) for message in thread] == [20, 20, 10]
    assert {message["thread_ts"] for message in thread} == {header["ts"]}
    assert sorted(slack.papers_posted("C1")) == [f"2606.{n:05d}" for n in range(1, 26)]


async def test_hostile_paper_text_reaches_slack_inert(slack, session, sqlite_store) -> None:  # type: ignore[no-untyped-def]
    world = World(sqlite_store, publisher(slack, session))
    await world.subscribe("C1")
    hostile = "<!channel> <!here> <@U123> <http://evil|click>"
    world.store.add_papers(
        [
            Paper(
                "2606.00001",
                f"Generalization {hostile}",
                abstract=f"We study generalization. {hostile}",
                authors=("<@U123>", "<!here>"),
            )
        ],
        now=world.clock.advance(minutes=1),
    )
    await world.ledger.sweep(force=True)
    [call] = slack.calls_to("chat.postMessage")
    sent = json.dumps(call.body)  # exactly what went over the wire
    for bad in ("<!channel>", "<!here>", "<@U123>", "<http://evil"):
        assert bad not in sent
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;http://evil|click&gt;" in sent
    assert "link_names" not in call.body and call.body.get("parse") in (None, "none")


# -- faults ---------------------------------------------------------------------------------------


async def test_a_short_rate_limit_is_waited_out_in_place(slack, session) -> None:  # type: ignore[no-untyped-def]
    clock = PacerClock()
    pub = publisher(slack, session, clock=clock)
    slack.fail("chat.postMessage", status=429, retry_after=3)
    outcome = await pub.send_digest(destination("C1"), items(2))
    assert outcome == SendOutcome.sent()
    assert clock.sleeps == [3.0]
    assert len(slack.posted["C1"]) == 1
    assert [c.status for c in slack.calls_to("chat.postMessage")] == [429, 200]


async def test_a_long_rate_limit_goes_back_to_the_ledger_with_retry_after(slack, session) -> None:  # type: ignore[no-untyped-def]
    clock = PacerClock()
    pub = publisher(slack, session, clock=clock)
    slack.fail("chat.postMessage", status=429, retry_after=45)
    outcome = await pub.send_digest(destination("C1"), items(2))
    assert (outcome.status, outcome.retry_after, outcome.maybe_sent) == ("retry", 45.0, False)
    assert clock.sleeps == [] and not slack.posted["C1"]


async def test_server_errors_that_never_posted_are_retried_in_place(slack, session) -> None:  # type: ignore[no-untyped-def]
    clock = PacerClock()
    pub = publisher(slack, session, clock=clock)
    slack.fail("chat.postMessage", status=503)
    slack.fail("chat.postMessage", status=502)
    assert await pub.send_digest(destination("C1"), items(1)) == SendOutcome.sent()
    assert clock.sleeps == [1.0, 2.0]  # backoff between attempts
    slack.fail("chat.postMessage", status=503, times=3)
    outcome = await pub.send_digest(destination("C1"), items(1, 5))
    assert (outcome.status, outcome.maybe_sent) == ("retry", False)  # three tries, then the ledger


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"status": 500}, "Slack answered HTTP 500"),
        ({"error": "internal_error"}, "Slack internal_error"),
        ({"hang": True}, "no answer from Slack in time"),
    ],
)
async def test_answers_that_may_have_posted_are_never_repeated_in_place(
    slack, session, fault, reason
) -> None:  # type: ignore[no-untyped-def]
    pub = publisher(slack, session, timeout=0.3)
    slack.fail("chat.postMessage", **fault)
    outcome = await pub.send_digest(destination("C1"), items(1))
    assert (outcome.status, outcome.reason, outcome.maybe_sent) == ("retry", reason, True)
    assert len(slack.calls_to("chat.postMessage")) == 1


@pytest.mark.parametrize(
    "error",
    [
        "channel_not_found",
        "not_in_channel",
        "is_archived",
        "account_inactive",
        "token_revoked",
        "invalid_auth",
        "missing_scope",
    ],
)
async def test_a_channel_that_removed_the_app_is_permanent(slack, session, error) -> None:  # type: ignore[no-untyped-def]
    pub = publisher(slack, session)
    slack.channel_errors["C1"] = error
    outcome = await pub.send_digest(destination("C1"), items(1))
    assert outcome.status == "permanent" and outcome.reason.startswith(f"Slack {error}: ")
    assert "xoxb" not in outcome.reason
    assert len(slack.calls_to("chat.postMessage")) == 1


async def test_a_refused_header_posts_nothing(slack, session) -> None:  # type: ignore[no-untyped-def]
    pub = publisher(slack, session)
    run = DigestRun("slack-C1", "s", None, pending=12)
    slack.fail("chat.postMessage", error="invalid_blocks", channel="C1")
    outcome = await pub.send_digest(destination("C1"), items(10), run=run)
    assert outcome.status == "permanent" and "malformed" in outcome.reason
    assert run.anchor is None and not slack.posted["C1"]


async def test_a_header_over_a_failed_thread_is_deleted(slack, session) -> None:  # type: ignore[no-untyped-def]
    pub = publisher(slack, session)
    run = DigestRun("slack-C1", "s", None, pending=12)
    first = await pub.send_digest(destination("C1"), items(10), run=run)
    assert first == SendOutcome.sent() and run.anchor is not None
    # A new run: its header posts, then its thread message hits a long rate limit.
    run2 = DigestRun("slack-C1", "s", None, pending=12)
    original = slack._answer

    def refuse_thread(method, body, token, channel, now):  # type: ignore[no-untyped-def]
        if method == "chat.postMessage" and body.get("thread_ts"):
            return slack._rate_limited(600)
        return original(method, body, token, channel, now)

    slack._answer = refuse_thread  # type: ignore[method-assign]
    outcome = await pub.send_digest(destination("C1"), items(10, 20), run=run2)
    assert (outcome.status, outcome.retry_after) == ("retry", 600)
    header_ts = slack.posted["C1"][-1]["ts"]
    assert slack.deleted == [("C1", header_ts)] and run2.anchor is None


async def test_bad_addresses_and_unknown_workspaces_are_permanent(slack, session) -> None:  # type: ignore[no-untyped-def]
    pub = publisher(slack, session)
    bad = Destination("slack-x", "slack", "https://hooks.slack.com/services/T/B/secret")
    outcome = await pub.send_digest(bad, items(1))
    assert outcome.status == "permanent" and "not a Slack destination" in outcome.reason
    with pytest.raises(ValueError):
        parse_address("#general")
    assert parse_address("T01:C02") == ("T01", "C02")
    assert parse_address("C0123") == (None, "C0123")  # slack:C0123 declared in the settings


# -- pace -------------------------------------------------------------------------------------------


async def test_messages_to_one_channel_keep_slacks_pace(session) -> None:  # type: ignore[no-untyped-def]
    clock = PacerClock()
    # The fake enforces one message per second per channel on the same clock.
    with FakeSlack(channel_interval=1.0, clock=clock) as strict:
        pub = publisher(strict, session, clock=clock)
        run = DigestRun("slack-C1", "s", None, pending=30)
        for start in (1, 11, 21):
            assert (
                await pub.send_digest(destination("C1"), items(10, start), run=run)
                == SendOutcome.sent()
            )
            run.messages += 1
        other = await pub.send_digest(destination("C2"), items(1))
        assert other == SendOutcome.sent()
        assert strict.rate_limited == 0
        times = [c.at for c in strict.calls_to("chat.postMessage") if c.body["channel"] == "C1"]
        assert [round(b - a, 6) for a, b in zip(times, times[1:], strict=False)] == [1.0, 1.0, 1.0]
        # Another channel does not wait for C1.
        c2 = [c.at for c in strict.calls_to("chat.postMessage") if c.body["channel"] == "C2"]
        assert c2[0] == times[-1]


# -- fan-out with faults, through the real ledger ---------------------------------------------------


async def test_fan_out_with_faults_delivers_every_paper_once(slack, session, store) -> None:  # type: ignore[no-untyped-def]
    world = World(store, publisher(slack, session, timeout=2))
    channels = [f"C{n:03d}" for n in range(30)]
    for channel in channels:
        await world.subscribe(channel)
    world.add(14)  # a header and two thread messages per channel
    slack.channel_errors["C007"] = "not_in_channel"
    for channel in ("C001", "C002", "C003"):
        slack.fail("chat.postMessage", channel=channel, status=429, retry_after=120)
    for channel in ("C010", "C011"):
        slack.fail("chat.postMessage", channel=channel, status=503, times=3)
    slack.fail("chat.postMessage", channel="C020", error="service_unavailable", times=3)
    slack.fail("chat.postMessage", channel="C021", hang=True)  # timed out, not posted
    slack.fail("chat.postMessage", channel="C022", status=502)  # retried in place

    for _ in range(6):  # sweeps, the clock moving past every backoff
        await world.ledger.sweep()
        world.clock.advance(hours=1)
        await world.ledger.sweep(force=True)

    healthy = [c for c in channels if c != "C007"]
    for channel in healthy:
        assert Counter(slack.papers_posted(channel)) == {
            f"2606.{n:05d}": 1 for n in range(1, 15)
        }, channel
    assert slack.papers_posted("C007") == []
    dest = world.ledger.db.get_destination(Channel("slack", address("C007")).destination_id)
    assert dest is not None and dest.paused and "not_in_channel" in (dest.paused_reason or "")
    rows = LedgerStore(store).rows()
    assert Counter(row.state for row in rows if row.destination_id != dest.id) == {
        "sent": 14 * len(healthy)
    }
    # The paused channel's papers wait for `paperbridge resume` (the batch tried: failed).
    assert Counter(row.state for row in rows if row.destination_id == dest.id) == {
        "failed": 10,
        "pending": 4,
    }
