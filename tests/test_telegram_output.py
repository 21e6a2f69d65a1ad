"""Digests through a Telegram bot, against a local stand-in for the Bot API: HTML with only
Telegram's tags and paper text escaped (no mention, tag or link injection), the 4,096-character
limit, pacing, 429s with ``retry_after`` and 5xx retried, a kicked bot or a missing chat
pausing the destination, the token never shown; through `deliver`, each paper posted once."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from adapters.telegram.markup import MARKUP, WORD_JOINER, utf16_length
from adapters.telegram.publisher import GROUP_INTERVAL, TEXT_MAX, TelegramPublisher
from bridge.cli import main
from bridge.config import DeliverySettings
from bridge.delivery import Destination, DigestRun, DigestSubscription
from bridge.ledger import Ledger
from bridge.models import Paper
from bridge.store import Store
from tests.fake_chat_apis import FakeTelegram, Sleeps, deliver_the_fixtures_twice, item
from tests.fakes import Clock

T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
TOKEN = "123456789:AAH" + "s" * 32
GROUP = "-1001234567890"
HOSTILE = '@channel @all <b>bold</b> <script>x</script> [x](javascript:alert(1)) <@U123> & "q"'


@pytest.fixture
def telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram(TOKEN) as fake:
        fake.chats.add(GROUP)
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as opened:
        yield opened


def publisher(
    fake: FakeTelegram, client: httpx.AsyncClient, sleeps: Sleeps, per: int = 3, token: str = TOKEN
) -> TelegramPublisher:
    return TelegramPublisher(
        client,
        token=token,
        api_base=fake.base_url,
        papers_per_message=per,
        sleep=sleeps,
        clock=sleeps.clock,
    )


DEST = Destination("telegram-1", "telegram", GROUP, name="lab")
SUB = DigestSubscription("s", DEST.id, "generalization")


async def test_a_digest_is_posted_as_html_with_why_and_links(
    telegram: FakeTelegram, client: httpx.AsyncClient
) -> None:
    pub = publisher(telegram, client, Sleeps())
    run = DigestRun(DEST.id, "s", None, 2)
    assert (await pub.send_digest(DEST, [item(1), item(2)], subscription=SUB, run=run)).status == (
        "sent"
    )
    [call] = telegram.delivered
    assert call.body["parse_mode"] == "HTML" and call.body["chat_id"] == GROUP
    assert call.body["link_preview_options"] == {"is_disabled": True}
    text = call.body["text"]
    assert text.startswith("2 new papers for <code>generalization</code>")
    assert '<a href="https://arxiv.org/abs/2606.00001">Generalization in deep networks</a>' in text
    assert "We study <b>generalisation</b> in deep networks" in text
    assert "↳ matched generalisation in the abstract" in text


async def test_hostile_paper_text_is_shown_as_text(
    telegram: FakeTelegram, client: httpx.AsyncClient
) -> None:
    pub = publisher(telegram, client, Sleeps())
    hostile = item(1, HOSTILE, abstract=HOSTILE, authors=("@all",))
    outcome = await pub.send_digest(DEST, [hostile], subscription=SUB)
    # The fake refuses any tag Telegram does not allow: it was accepted, so none got through.
    assert outcome.status == "sent"
    [text] = telegram.texts()
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "<script" not in text and "<b>bold" not in text
    assert "@channel" not in text and f"@{WORD_JOINER}channel" in text
    assert "@all" not in text and "&lt;@" in text and '&amp; "q"' in text
    # The only links are ours.
    assert 'href="javascript' not in text
    assert text.count("<a href=") == 3  # title, arXiv, PDF


def test_markup_pieces() -> None:
    assert MARKUP.code("a<b> & @x") == f"<code>a&lt;b&gt; &amp; @{WORD_JOINER}x</code>"
    assert MARKUP.link('https://e.org/?a=1&b="2"', "<i>") == (
        '<a href="https://e.org/?a=1&amp;b=&quot;2&quot;">&lt;i&gt;</a>'
    )
    assert utf16_length("📰a") == 3


async def test_a_long_digest_is_split_under_4096_characters(
    telegram: FakeTelegram, client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    pub = publisher(telegram, client, sleeps, per=20)
    abstract = "generalisation 📰 " * 300
    items = [item(n, f"Paper {n}", abstract=abstract) for n in range(1, 21)]
    assert (await pub.send_digest(DEST, items, subscription=SUB)).status == "sent"
    texts = telegram.texts()
    assert len(texts) > 1 and all(utf16_length(t) <= TEXT_MAX for t in texts)
    assert [n for n in range(1, 21) if any(f">Paper {n}</a>" in t for t in texts)] == list(
        range(1, 21)
    )
    # Posts to one group are paced at 20 a minute.
    assert sleeps.waits and all(w == pytest.approx(GROUP_INTERVAL) for w in sleeps.waits)
    assert len(sleeps.waits) == len(texts) - 1


async def test_a_paper_with_absurdly_long_text_still_fits_one_message(
    telegram: FakeTelegram, client: httpx.AsyncClient
) -> None:
    pub = publisher(telegram, client, Sleeps())
    huge = item(1, "<&>" * 5000, abstract="&" * 20000, authors=("&" * 9000,))
    assert (await pub.send_digest(DEST, [huge], subscription=SUB)).status == "sent"
    [text] = telegram.texts()
    # Cut to whole lines (never inside an entity or a tag): the linked title comes first.
    assert utf16_length(text) <= TEXT_MAX
    assert '<a href="https://arxiv.org/abs/2606.00001">&lt;&amp;&gt;' in text


async def test_a_paced_chat_goes_back_to_the_ledger_when_the_wait_is_long(
    telegram: FakeTelegram, client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    pub = publisher(telegram, client, sleeps)
    for n in range(3):
        pub.pacer.sent(GROUP)  # as if posted moments ago
        pub.pacer._next_in[GROUP] += 20.0 * n
    outcome = await pub.send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == "retry" and outcome.retry_after is not None
    assert not telegram.calls


async def test_a_429_is_waited_out_then_posted(
    telegram: FakeTelegram, client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    pub = publisher(telegram, client, sleeps)
    telegram.rate_limit(retry_after=3)
    assert (await pub.send_digest(DEST, [item(1)], subscription=SUB)).status == "sent"
    assert 3.0 in sleeps.waits and len(telegram.delivered) == 1
    telegram.rate_limit(retry_after=300)
    sleeps.now[0] += 10  # past the group's pacing
    outcome = await pub.send_digest(DEST, [item(2)], subscription=SUB)
    assert (outcome.status, outcome.retry_after) == ("retry", 300.0)


async def test_server_errors_are_retried(telegram: FakeTelegram, client: httpx.AsyncClient) -> None:
    sleeps = Sleeps()
    pub = publisher(telegram, client, sleeps)
    telegram.fail("/sendMessage", times=2, status=502)
    assert (await pub.send_digest(DEST, [item(1)], subscription=SUB)).status == "sent"
    assert sleeps.waits == [1.0, 2.0]


@pytest.mark.parametrize(
    ("setup", "says"),
    [
        ("kicked", "403 Forbidden: bot was kicked"),
        ("no-chat", "400 Bad Request: chat not found"),
        ("bad-token", "401 Unauthorized"),
        ("migrated", "use telegram:-1009999"),
    ],
)
async def test_refusals_are_permanent_and_the_token_never_shown(
    telegram: FakeTelegram,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    setup: str,
    says: str,
) -> None:
    token = TOKEN
    if setup == "kicked":
        telegram.kicked.add(GROUP)
    if setup == "no-chat":
        telegram.chats.clear()
    if setup == "bad-token":
        token = "987654321:BBH" + "t" * 32
    if setup == "migrated":
        telegram.fail(
            "/sendMessage",
            status=400,
            body={
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: group chat was upgraded to a supergroup chat",
                "parameters": {"migrate_to_chat_id": -1009999},
            },
        )
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # the CLI tests quieten httpx
    pub = publisher(telegram, client, Sleeps(), token=token)
    outcome = await pub.send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == "permanent" and says in outcome.reason
    assert token not in outcome.reason + caplog.text
    assert "…/sendMessage" in caplog.text  # httpx logged the request, token masked


async def test_the_ledger_pauses_a_chat_the_bot_was_kicked_from(
    store: Store, telegram: FakeTelegram, client: httpx.AsyncClient
) -> None:
    clock = Clock(T0)
    telegram.kicked.add(GROUP)
    pub = publisher(telegram, client, Sleeps())
    ledger = Ledger(store, {"telegram": pub}, DeliverySettings(), clock=clock)
    ledger.db.save_destination(DEST, clock.now)
    ledger.db.save_digest(
        DigestSubscription("s", DEST.id, "drift", "08:00", "UTC", created_at=clock.now), clock.now
    )
    clock.advance(minutes=1)
    store.add_papers([Paper("2606.00001", "Drift")], now=clock.now)
    clock.now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    await ledger.sweep()
    [dest] = ledger.db.list_destinations()
    assert dest.paused and "kicked" in (dest.paused_reason or "")
    assert not telegram.delivered


# -- through the command line --------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PAPERBRIDGE_") or name.endswith(("_TOKEN", "_SECRET")):
            monkeypatch.delenv(name)
    return tmp_path


def test_deliver_twice_posts_each_paper_once(
    workdir: Path,
    telegram: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    telegram.chats.add("424242")  # a private chat: paced at one message a second
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    config = workdir / "config.toml"
    config.write_text(
        f"""
[outputs.telegram]
api_base_url = "{telegram.base_url}"
papers_per_message = 20
[[digests]]
name = "tg"
query = "model"
destination = "telegram:424242"
""",
        encoding="utf-8",
    )
    posted = deliver_the_fixtures_twice(config, telegram, capsys, TOKEN)
    assert posted >= 1 and " new papers for " in telegram.texts()[0]
    assert sum(t.count('<a href="https://arxiv.org/abs/') for t in telegram.texts()) > 5


@pytest.mark.parametrize(
    ("token", "destination", "says"),
    [
        (None, "telegram:-100123", "need the bot's token in TELEGRAM_BOT_TOKEN"),
        ("not-a-token", "telegram:-100123", "does not hold a bot token"),
        (TOKEN, "telegram:lab chat", "must be telegram:CHAT_ID"),
    ],
)
def test_check_config_names_a_missing_token_or_a_wrong_chat(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    token: str | None,
    destination: str,
    says: str,
) -> None:
    if token:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
    config = workdir / "config.toml"
    config.write_text(
        f'[[digests]]\nname = "tg"\nquery = "model"\ndestination = "{destination}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "digests.0.destination" in err and says in err
    assert "not-a-token" not in err and TOKEN not in err


def test_check_config_names_wrong_output_settings(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    config = workdir / "config.toml"
    config.write_text(
        '[outputs.telegram]\napi_base_url = "ftp://x"\npapers_per_message = 0\ncolour = "red"\n'
        '[[digests]]\nname = "tg"\nquery = "model"\ndestination = "telegram:-100123"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "outputs.telegram.colour: unknown setting" in err
    assert "outputs.telegram.papers_per_message: must be a whole number 1–20" in err
    assert "outputs.telegram.api_base_url: must be an http(s) URL" in err
