"""Digests to Matrix rooms, against a local stand-in homeserver: sanitised HTML and a plain
body, no mention or markup from paper text, transaction ids that make a retry post once, 429
``retry_after_ms`` and 5xx retried, a room the bot is not in pausing the destination, the token
never shown; through `deliver`, each paper posted once."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from adapters.matrix.markup import HTML, WORD_JOINER
from adapters.matrix.publisher import MatrixPublisher, transaction_id
from bridge.cli import main
from bridge.config import DeliverySettings
from bridge.delivery import Destination, DigestRun, DigestSubscription
from bridge.ledger import Ledger
from bridge.models import Paper
from bridge.store import Store
from tests.fake_chat_apis import FakeMatrix, Sleeps, deliver_the_fixtures_twice, item
from tests.fakes import Clock

T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
TOKEN = "syt_cGFwZXJicmlkZ2U_" + "a" * 30
ROOM = "!lab:example.org"
HOSTILE = '@room @channel <b>bold</b> <a href="https://matrix.to/#/@alice:x">x</a> [x](javascript:alert(1)) <@U123>'


@pytest.fixture
def matrix() -> Iterator[FakeMatrix]:
    with FakeMatrix(TOKEN) as fake:
        fake.rooms.add(ROOM)
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as opened:
        yield opened


def publisher(
    fake: FakeMatrix, client: httpx.AsyncClient, sleeps: Sleeps, token: str = TOKEN
) -> MatrixPublisher:
    return MatrixPublisher(
        client, homeserver=fake.base_url, token=token, papers_per_message=3, sleep=sleeps
    )


DEST = Destination("matrix-1", "matrix", ROOM, name="lab")
SUB = DigestSubscription("s", DEST.id, "generalization")
SLOT = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


async def test_a_digest_is_an_html_notice_with_a_plain_body(
    matrix: FakeMatrix, client: httpx.AsyncClient
) -> None:
    pub = publisher(matrix, client, Sleeps())
    run = DigestRun(DEST.id, "s", SLOT, 2)
    assert (
        await pub.send_digest(DEST, [item(1), item(2)], subscription=SUB, run=run)
    ).status == "sent"
    [call] = matrix.delivered
    assert (
        call.method == "PUT" and "/rooms/%21lab%3Aexample.org/send/m.room.message/pb" in call.path
    )
    content = call.body
    assert content["msgtype"] == "m.notice" and content["m.mentions"] == {}
    assert content["format"] == "org.matrix.custom.html"
    html = content["formatted_body"]
    assert html.startswith("<p>2 new papers for <code>generalization</code></p>")
    assert '<a href="https://arxiv.org/abs/2606.00001">Generalization in deep networks</a>' in html
    assert "We study <b>generalisation</b> in deep networks" in html
    body = content["body"]
    assert body.startswith("2 new papers for “generalization”")
    assert "Generalization in deep networks <https://arxiv.org/abs/2606.00001>" in body
    assert "↳ matched generalisation in the abstract" in body


async def test_hostile_paper_text_can_neither_mention_nor_format_nor_link(
    matrix: FakeMatrix, client: httpx.AsyncClient
) -> None:
    pub = publisher(matrix, client, Sleeps())
    hostile = item(
        1, HOSTILE, abstract=HOSTILE, authors=("@room",), project_page="https://matrix.to/#/@bob:x"
    )
    assert (await pub.send_digest(DEST, [hostile], subscription=SUB)).status == "sent"
    content = matrix.contents()[0]
    html, body = content["formatted_body"], content["body"]
    for text in (html, body):
        assert "@room" not in text and "@channel" not in text and f"@{WORD_JOINER}room" in text
    assert "<b>bold" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html
    assert '<a href="https://matrix.to' not in html and '<a href="javascript' not in html
    assert html.count("<a href=") == 3  # title, arXiv, PDF: the project page to matrix.to is text
    assert "<https://matrix.to" not in body


def test_html_pieces() -> None:
    assert HTML.link("https://matrix.to/#/@a:b", "pill") == "pill"
    assert HTML.code("<x> & @y") == f"<code>&lt;x&gt; &amp; @{WORD_JOINER}y</code>"


async def test_a_retry_after_a_lost_answer_posts_once(
    matrix: FakeMatrix, client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    pub = publisher(matrix, client, sleeps)
    run = DigestRun(DEST.id, "s", SLOT, 2, messages=1)  # the run's second message
    # The homeserver posts the event, then the answer is lost (a 502 from a proxy).
    matrix.fail("/send/", status=502, after_processing=True)
    assert (await pub.send_digest(DEST, [item(1)], subscription=SUB, run=run)).status == "sent"
    assert len(matrix.calls) == 2 and len(matrix.delivered) == 1
    assert matrix.calls[0].path == matrix.calls[1].path  # the same transaction id
    # A new process sending the same batch again (after a crash) uses the same id too, though
    # its run starts afresh and counts this as its first message.
    again = publisher(matrix, client, sleeps)
    await again.send_digest(DEST, [item(1)], subscription=SUB, run=DigestRun(DEST.id, "s", SLOT, 1))
    assert len(matrix.delivered) == 1 and matrix.calls[2].path == matrix.calls[0].path
    # Another batch is another transaction.
    await pub.send_digest(DEST, [item(2)], subscription=SUB, run=DigestRun(DEST.id, "s", SLOT, 1))
    assert len(matrix.delivered) == 2
    assert transaction_id("a", 0) != transaction_id("a", 1)


async def test_a_429_waits_its_retry_after_ms_and_5xx_are_retried(
    matrix: FakeMatrix, client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    pub = publisher(matrix, client, sleeps)
    matrix.rate_limit(retry_after_ms=1500)
    assert (await pub.send_digest(DEST, [item(1)], subscription=SUB)).status == "sent"
    assert sleeps.waits == [1.5]
    matrix.fail("/send/", times=2, status=500)
    assert (await pub.send_digest(DEST, [item(2)], subscription=SUB)).status == "sent"
    assert sleeps.waits == [1.5, 1.0, 2.0] and len(matrix.delivered) == 2
    matrix.rate_limit(retry_after_ms=60_000)
    outcome = await pub.send_digest(DEST, [item(3)], subscription=SUB)
    assert (outcome.status, outcome.retry_after) == ("retry", 60.0)


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("not-joined", "403 M_FORBIDDEN"),
        ("bad-token", "401 M_UNKNOWN_TOKEN"),
        ("no-token", "MATRIX_ACCESS_TOKEN is not set"),
    ],
)
async def test_refusals_are_permanent_and_the_token_never_shown(
    matrix: FakeMatrix,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    setup: str,
    says: str,
) -> None:
    token = {"bad-token": "syt_other_" + "b" * 30, "no-token": ""}.get(setup, TOKEN)
    if setup == "not-joined":
        matrix.rooms.clear()
    caplog.set_level(logging.DEBUG)
    outcome = await publisher(matrix, client, Sleeps(), token).send_digest(
        DEST, [item(1)], subscription=SUB
    )
    assert outcome.status == "permanent" and says in outcome.reason
    assert TOKEN not in outcome.reason + caplog.text


async def test_a_big_digest_is_split_under_the_event_size(
    matrix: FakeMatrix, client: httpx.AsyncClient
) -> None:
    pub = MatrixPublisher(client, homeserver=matrix.base_url, token=TOKEN, papers_per_message=20)
    # Escaping makes each paper several times its text (titles are cut at 300 characters).
    items = [item(n, f"Paper {n} " + "<&>" * 200, abstract="<&> " * 200) for n in range(1, 21)]
    assert (await pub.send_digest(DEST, items, subscription=SUB)).status == "sent"
    assert len(matrix.delivered) > 1
    shown = "".join(c["formatted_body"] for c in matrix.contents())
    assert all(f">Paper {n} " in shown for n in range(1, 21))
    assert all(len(str(c).encode()) < 60_000 for c in matrix.contents())


async def test_the_ledger_pauses_a_room_the_bot_left(
    store: Store, matrix: FakeMatrix, client: httpx.AsyncClient
) -> None:
    clock = Clock(T0)
    matrix.rooms.clear()
    ledger = Ledger(
        store, {"matrix": publisher(matrix, client, Sleeps())}, DeliverySettings(), clock=clock
    )
    ledger.db.save_destination(DEST, clock.now)
    ledger.db.save_digest(
        DigestSubscription("s", DEST.id, "drift", "08:00", "UTC", created_at=clock.now), clock.now
    )
    clock.advance(minutes=1)
    store.add_papers([Paper("2606.00001", "Drift")], now=clock.now)
    clock.now = SLOT
    await ledger.sweep()
    [dest] = ledger.db.list_destinations()
    assert dest.paused and "M_FORBIDDEN" in (dest.paused_reason or "")


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PAPERBRIDGE_") or name.endswith(("_TOKEN", "_SECRET")):
            monkeypatch.delenv(name)
    return tmp_path


def test_deliver_twice_posts_each_paper_once(
    workdir: Path,
    matrix: FakeMatrix,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MATRIX_ACCESS_TOKEN", TOKEN)
    config = workdir / "config.toml"
    config.write_text(
        f"""
[outputs.matrix]
homeserver_url = "{matrix.base_url}"
[[digests]]
name = "mx"
query = "model"
destination = "matrix:{ROOM}"
""",
        encoding="utf-8",
    )
    posted = deliver_the_fixtures_twice(config, matrix, capsys, TOKEN)
    assert posted >= 1 and " new papers for " in matrix.contents()[0]["body"]
    assert (
        sum(c["formatted_body"].count('<a href="https://arxiv.org/abs/') for c in matrix.contents())
        > 5
    )


@pytest.mark.parametrize(
    ("token", "extra", "destination", "key", "says"),
    [
        (
            None,
            True,
            f"matrix:{ROOM}",
            "digests.0.destination",
            "need an access token in MATRIX_ACCESS_TOKEN",
        ),
        (
            TOKEN,
            False,
            f"matrix:{ROOM}",
            "outputs.matrix.homeserver_url",
            "need the homeserver's URL",
        ),
        (TOKEN, True, "matrix:#lab:example.org", "digests.0.destination", "must be matrix:ROOM_ID"),
    ],
)
def test_check_config_names_what_matrix_lacks(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    token: str | None,
    extra: bool,
    destination: str,
    key: str,
    says: str,
) -> None:
    if token:
        monkeypatch.setenv("MATRIX_ACCESS_TOKEN", token)
    section = '[outputs.matrix]\nhomeserver_url = "https://matrix.example.org"\n' if extra else ""
    config = workdir / "config.toml"
    config.write_text(
        f'{section}[[digests]]\nname = "mx"\nquery = "model"\ndestination = "{destination}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "check-config"]) == 2
    err = capsys.readouterr().err
    assert key in err and says in err and TOKEN not in err
