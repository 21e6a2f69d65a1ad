"""Digests through Mattermost / Rocket.Chat incoming webhooks, against a local stand-in: what
is posted, no mention or markup from paper text, 429s and 5xx retried, a deleted webhook
pausing the destination, the URL never shown; through the real ledger and `deliver`, each
paper posted once."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from adapters.mattermost.markup import MARKUP, escape
from adapters.mattermost.publisher import TEXT_MAX, MattermostPublisher
from bridge.cli import main
from bridge.config import DeliverySettings
from bridge.delivery import Destination, DigestRun, DigestSubscription
from bridge.ledger import Ledger
from bridge.models import Paper
from bridge.store import Store
from tests.fake_chat_apis import FakeMattermost, Sleeps, deliver_the_fixtures_twice, item
from tests.fakes import Clock

T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
HOSTILE = "@channel @all @here <!channel> <@U123> <b>bold</b> [x](javascript:alert(1)) *a* _b_ `c`"


@pytest.fixture
def chat() -> Iterator[FakeMattermost]:
    with FakeMattermost() as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as opened:
        yield opened


DEST = Destination("mattermost-1", "mattermost", "LAB_MM", name="lab")
SUB = DigestSubscription("s", DEST.id, "generalization")


def publisher(
    client: httpx.AsyncClient, env: dict[str, str], sleeps: Sleeps
) -> MattermostPublisher:
    return MattermostPublisher(client, environ=env, papers_per_message=3, sleep=sleeps)


async def test_a_digest_is_posted_with_its_header_why_and_links(
    chat: FakeMattermost, client: httpx.AsyncClient
) -> None:
    pub = publisher(client, {"LAB_MM": chat.webhook_url()}, Sleeps())
    outcome = await pub.send_digest(
        DEST, [item(1), item(2)], subscription=SUB, run=DigestRun(DEST.id, "s", None, 2)
    )
    assert outcome.status == "sent"
    [text] = chat.texts()
    assert text.startswith("2 new papers for `generalization`")
    assert "[Generalization in deep networks](https://arxiv.org/abs/2606.00001)" in text
    assert "We study **generalisation** in deep networks" in text
    assert "↳ matched generalisation in the abstract" in text
    assert "[PDF](https://arxiv.org/pdf/2606.00002" in text


async def test_later_messages_continue_and_quiet_days_get_a_note(
    chat: FakeMattermost, client: httpx.AsyncClient
) -> None:
    pub = publisher(client, {"LAB_MM": chat.webhook_url()}, Sleeps())
    run = DigestRun(DEST.id, "s", None, pending=5, messages=1)
    await pub.send_digest(DEST, [item(4), item(5)], subscription=SUB, run=run)
    assert chat.texts()[0].startswith("… continued (4–5 of 5)")
    assert (await pub.send_digest(DEST, [], subscription=SUB)).status == "sent"
    assert chat.texts()[1].startswith("All quiet for `generalization`")


async def test_hostile_paper_text_can_neither_mention_nor_format_nor_link(
    chat: FakeMattermost, client: httpx.AsyncClient
) -> None:
    pub = publisher(client, {"LAB_MM": chat.webhook_url()}, Sleeps())
    hostile = item(1, HOSTILE, abstract=HOSTILE, authors=("@all", "<!here>"))
    assert (await pub.send_digest(DEST, [hostile], subscription=SUB)).status == "sent"
    [text] = chat.texts()
    for mention in ("@channel", "@all", "@here", "<!channel>", "<!here>", "<@U123>", "<b>"):
        assert mention not in text
    assert "＠channel" in text and "＜\\!channel" in text
    # Markdown marks from paper text are escaped; the only links are ours, to arXiv.
    assert "\\[x\\]\\(javascript:alert\\(1\\)\\)" in text
    assert "](javascript" not in text and "\\*a\\*" in text and "\\`c\\`" in text
    assert "](https://arxiv.org/abs/2606.00001)" in text


def test_escaping_keeps_the_words_and_neutralises_line_starts() -> None:
    assert escape("- item") == "\\- item" and escape("1. first") == "1\\. first"
    assert escape("x\n# heading") == "x \\# heading"
    assert MARKUP.code("a`b @here <!x>") == "`aˋb ＠here ＜!x>`"
    assert MARKUP.link("https://e.org/a_(b)", "[lab]") == "[\\[lab\\]](https://e.org/a_%28b%29)"


async def test_a_long_digest_is_split_between_papers(
    chat: FakeMattermost, client: httpx.AsyncClient
) -> None:
    pub = MattermostPublisher(client, environ={"LAB_MM": chat.webhook_url()}, papers_per_message=20)
    long_abstract = "generalisation " * 400
    items = [item(n, f"Paper {n}", abstract=long_abstract) for n in range(1, 21)]
    assert (await pub.send_digest(DEST, items, subscription=SUB)).status == "sent"
    texts = chat.texts()
    assert len(texts) > 1 and all(len(t) <= TEXT_MAX for t in texts)
    shown = [n for n in range(1, 21) if any(f"[Paper {n}]" in t for t in texts)]
    assert shown == list(range(1, 21))


async def test_a_429_is_waited_out_then_posted(
    chat: FakeMattermost, client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    pub = publisher(client, {"LAB_MM": chat.webhook_url()}, sleeps)
    chat.fail("/hooks/", status=429, headers={"Retry-After": "2"})
    assert (await pub.send_digest(DEST, [item(1)], subscription=SUB)).status == "sent"
    assert sleeps.waits == [2.0] and len(chat.delivered) == 1
    chat.fail("/hooks/", status=429, headers={"Retry-After": "120"})
    outcome = await pub.send_digest(DEST, [item(2)], subscription=SUB)
    assert (outcome.status, outcome.retry_after) == ("retry", 120.0)


async def test_server_errors_are_retried_then_handed_back(
    chat: FakeMattermost, client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    pub = publisher(client, {"LAB_MM": chat.webhook_url()}, sleeps)
    chat.fail("/hooks/", times=2, status=502)
    assert (await pub.send_digest(DEST, [item(1)], subscription=SUB)).status == "sent"
    assert sleeps.waits == [1.0, 2.0]
    chat.fail("/hooks/", times=3, status=503)
    outcome = await pub.send_digest(DEST, [item(2)], subscription=SUB)
    assert outcome.status == "retry" and "503" in outcome.reason


@pytest.mark.parametrize("setup", ["deleted", "bad-request", "no-variable"])
async def test_a_gone_webhook_is_permanent_and_its_url_never_shown(
    chat: FakeMattermost,
    client: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    setup: str,
) -> None:
    url = chat.webhook_url("deletedhooksecret123")
    if setup == "deleted":
        chat.hooks.discard("deletedhooksecret123")
    if setup == "bad-request":
        chat.fail("/hooks/", status=400, body={"message": "Invalid webhook"})
    env = {} if setup == "no-variable" else {"LAB_MM": url}
    caplog.set_level(logging.DEBUG)
    outcome = await publisher(client, env, Sleeps()).send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == "permanent"
    assert "deletedhooksecret123" not in outcome.reason + caplog.text


async def test_the_ledger_pauses_the_destination_on_a_deleted_webhook(
    store: Store, chat: FakeMattermost, client: httpx.AsyncClient
) -> None:
    clock = Clock(T0)
    env = {"LAB_MM": f"{chat.base_url}/hooks/neverexisted"}
    pub = publisher(client, env, Sleeps())
    ledger = Ledger(store, {"mattermost": pub}, DeliverySettings(), clock=clock)
    ledger.db.save_destination(DEST, clock.now)
    ledger.db.save_digest(
        DigestSubscription("s", DEST.id, "drift", "08:00", "UTC", created_at=clock.now), clock.now
    )
    clock.advance(minutes=1)
    store.add_papers([Paper("2606.00001", "Drift")], now=clock.now)
    clock.now = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
    await ledger.sweep()
    [dest] = ledger.db.list_destinations()
    assert dest.paused and "404" in (dest.paused_reason or "")
    assert not chat.delivered


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
    chat: FakeMattermost,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = chat.webhook_url("clihooksecret42")
    monkeypatch.setenv("LAB_MM", url)
    config = workdir / "config.toml"
    config.write_text(
        '[[digests]]\nname = "mm"\nquery = "model"\ndestination = "mattermost:LAB_MM"\n',
        encoding="utf-8",
    )
    posted = deliver_the_fixtures_twice(config, chat, capsys, "clihooksecret42")
    assert posted >= 1 and chat.texts()[0].split(" ")[1] == "new"
    papers = [t.count("](https://arxiv.org/abs/") for t in chat.texts()]
    assert sum(papers) > 5


@pytest.mark.parametrize(
    ("env", "destination", "says"),
    [
        ({}, "mattermost:LAB_MM", "environment variable LAB_MM is not set"),
        ({"LAB_MM": "not a url"}, "mattermost:LAB_MM", "does not hold a Mattermost"),
        ({}, "mattermost:https://chat.example.org/hooks/abc", "never the URL itself"),
    ],
)
def test_check_config_names_a_missing_or_wrong_webhook_variable(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    destination: str,
    says: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = workdir / "config.toml"
    config.write_text(
        f'[[digests]]\nname = "mm"\nquery = "model"\ndestination = "{destination}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "digests.0.destination" in err and says in err
    assert "not a url" not in err
