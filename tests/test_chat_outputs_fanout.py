"""Every chat output (Mattermost, Telegram, Teams, Matrix) through the real ledger: a morning
fan-out to several channels with 429s, 5xx and (on Matrix, whose transaction ids make a retry
idempotent) answers lost after the post, across a restart, delivers every paper to every
channel exactly once and leaves no destination paused."""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from adapters.matrix.publisher import MatrixPublisher
from adapters.mattermost.publisher import MattermostPublisher
from adapters.teams.publisher import TeamsPublisher
from adapters.telegram.publisher import TelegramPublisher
from bridge.config import DeliverySettings
from bridge.delivery import Destination, DigestSubscription, Notice
from bridge.ledger import Ledger
from bridge.models import Paper
from bridge.publisher import Publisher
from bridge.store import Store
from tests.fake_chat_apis import FakeChatApi, FakeMatrix, FakeMattermost, FakeTeams, FakeTelegram
from tests.fakes import Clock

T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
TG_TOKEN = "123456789:AAH" + "s" * 32
MX_TOKEN = "syt_fanout_" + "a" * 30
ARXIV = re.compile(r"https://arxiv\.org/abs/(\d{4}\.\d{5})")
CHANNELS, PAPERS = 6, 7


async def no_sleep(seconds: float) -> None:
    return None


@dataclass
class Setup:
    fake: FakeChatApi
    addresses: list[str]  # one destination address per channel
    publisher: Callable[[httpx.AsyncClient, Clock], Publisher]
    where: Callable[[Any], str]  # the channel a delivered call went to
    text: Callable[[Any], str]  # what it showed
    rate_limit: Callable[[float], None]
    lost_answers: bool = False


def mattermost() -> Setup:
    fake = FakeMattermost().start()
    env = {f"HOOK_{n}": fake.webhook_url(f"hook{n}secretpart") for n in range(CHANNELS)}
    return Setup(
        fake,
        list(env),
        lambda client, clock: MattermostPublisher(
            client, environ=env, papers_per_message=3, sleep=no_sleep
        ),
        lambda call: call.path,
        lambda call: call.body["text"],
        lambda s: fake.fail("/hooks/", status=429, headers={"Retry-After": str(s)}),
    )


def telegram() -> Setup:
    fake = FakeTelegram(TG_TOKEN).start()
    chats = [f"-100{n}" for n in range(CHANNELS)]
    fake.chats.update(chats)
    return Setup(
        fake,
        chats,
        lambda client, clock: TelegramPublisher(
            client,
            token=TG_TOKEN,
            api_base=fake.base_url,
            papers_per_message=3,
            sleep=no_sleep,
            clock=lambda: clock.now.timestamp(),
        ),
        lambda call: str(call.body["chat_id"]),
        lambda call: call.body["text"],
        lambda s: fake.rate_limit(int(s)),
    )


def teams() -> Setup:
    fake = FakeTeams().start()
    env = {f"WF_{n}": fake.workflow_url() for n in range(CHANNELS)}
    return Setup(
        fake,
        list(env),
        lambda client, clock: TeamsPublisher(
            client, environ=env, papers_per_message=3, sleep=no_sleep
        ),
        lambda call: call.path.split("/")[2],
        lambda call: str(call.body),
        lambda s: fake.fail("/workflows/", status=429, headers={"Retry-After": str(s)}),
    )


def matrix() -> Setup:
    fake = FakeMatrix(MX_TOKEN).start()
    rooms = [f"!room{n}:example.org" for n in range(CHANNELS)]
    fake.rooms.update(rooms)
    return Setup(
        fake,
        rooms,
        lambda client, clock: MatrixPublisher(
            client,
            homeserver=fake.base_url,
            token=MX_TOKEN,
            papers_per_message=3,
            sleep=no_sleep,
        ),
        lambda call: call.path.split("/")[5],
        lambda call: call.body["formatted_body"],
        lambda s: fake.rate_limit(int(s * 1000)),
        lost_answers=True,
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as opened:
        yield opened


@pytest.mark.parametrize("make", [mattermost, telegram, teams, matrix])
async def test_a_fan_out_with_faults_delivers_every_paper_once_across_a_restart(
    store: Store, client: httpx.AsyncClient, make: Callable[[], Setup]
) -> None:
    setup = make()
    kind = make.__name__
    try:
        clock = Clock(T0)
        first = Ledger(store, {}, DeliverySettings(), clock=clock)
        for n, address in enumerate(setup.addresses):
            dest = Destination(f"{kind}-{n}", kind, address, name=f"#c{n}")
            first.db.save_destination(dest, clock.now)
            first.db.save_digest(
                DigestSubscription(f"s{n}", dest.id, "drift", "08:00", "UTC", created_at=clock.now),
                clock.now,
            )
        clock.advance(minutes=1)
        store.add_papers(
            [Paper(f"2606.{n:05d}", f"Drift {n}") for n in range(PAPERS)], now=clock.now
        )
        rng = random.Random(11)
        path = {"mattermost": "/hooks/", "telegram": "/sendMessage", "teams": "/workflows/"}
        pattern = path.get(kind, "/send/")
        for _ in range(15):  # faults on about half the posts
            fault = rng.choice(["429", "500", "503", "lost"])
            if fault == "429":
                setup.rate_limit(rng.choice([1, 40]))
            elif fault == "lost" and setup.lost_answers:
                setup.fake.fail(pattern, status=502, after_processing=True)
            else:
                setup.fake.fail(pattern, status=500 if fault == "lost" else int(fault))

        def ledger() -> Ledger:
            settings = DeliverySettings(backoff_base_seconds=1, backoff_max_seconds=60)
            publishers = {kind: setup.publisher(client, clock)}
            return Ledger(store, publishers, settings, clock=clock, rng=lambda: 0.5)

        clock.now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
        await ledger().sweep()
        second = ledger()  # a restart: a new process on the same database
        for _ in range(30):
            clock.advance(minutes=2)
            await second.sweep()

        per_channel: Counter[tuple[str, str]] = Counter()
        for call in setup.fake.delivered:
            for paper in set(ARXIV.findall(setup.text(call))):
                per_channel[(setup.where(call), paper)] += 1
        assert len(setup.fake.calls) > len(setup.fake.delivered) + 10  # the faults happened
        assert len({where for where, _ in per_channel}) == CHANNELS
        assert set(per_channel.values()) == {1}, "a paper reached a channel twice"
        assert sum(per_channel.values()) == CHANNELS * PAPERS
        assert Counter(row.state for row in second.db.rows()) == {"sent": CHANNELS * PAPERS}
        assert not any(d.paused for d in second.db.list_destinations())
    finally:
        setup.fake.stop()


HOSTILE = "Telegram said <b>no</b> @channel @room <@U1> [x](javascript:1) & <at>All</at>"
LONG_PAUSED = Notice(
    7,
    "ops",
    "destination-paused",
    about_id="lab",
    about="telegram:-100",
    detail=HOSTILE + " & more" * 800,
    since=datetime(2026, 11, 24, 6, 1, tzinfo=UTC),
)


@pytest.mark.parametrize("make", [mattermost, telegram, teams, matrix])
async def test_a_notice_with_a_long_hostile_reason_is_posted_escaped(
    client: httpx.AsyncClient, make: Callable[[], Setup]
) -> None:
    setup = make()
    try:
        pub = setup.publisher(client, Clock(T0))
        kind = make.__name__
        dest = Destination("ops", kind, setup.addresses[0])
        assert (await pub.send_notice(dest, LONG_PAUSED)).status == "sent"  # type: ignore[attr-defined]
        [call] = setup.fake.delivered
        shown = setup.text(call)
        # What would format, link or mention on this platform must not show raw: markdown
        # links where text is markdown, tags where it is HTML, @names where they notify.
        markdown = kind in ("mattermost", "teams")
        forbidden = ["<b>no</b>", "<@U1>", "<at>All"]
        forbidden += ["[x](javascript"] if markdown else []
        forbidden += [] if kind == "teams" else ["@channel", "@room"]  # Teams needs <at>
        for raw in forbidden:
            assert raw not in shown
        assert "…" in shown  # the reason was cut to fit
    finally:
        setup.fake.stop()
