"""Digests to Microsoft Teams through a Workflows webhook, against a local stand-in: Adaptive
Cards with paper text that can neither format, link nor mention, split under Teams' 28 KB,
429s and 5xx retried, a deleted workflow pausing the destination, the URL never shown; through
`deliver`, each paper posted once."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from adapters.teams.card import BYTES_MAX, MARKUP, inert
from adapters.teams.publisher import TeamsPublisher
from bridge.cli import main
from bridge.config import DeliverySettings
from bridge.delivery import Destination, DigestRun, DigestSubscription
from bridge.ledger import Ledger
from bridge.models import Paper
from bridge.store import Store
from tests.fake_chat_apis import FakeTeams, Sleeps, deliver_the_fixtures_twice, item
from tests.fakes import Clock

T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)
HOSTILE = "@channel <at>Everyone</at> <b>bold</b> [x](javascript:alert(1)) <@U123> *a* _b_"


@pytest.fixture
def teams() -> Iterator[FakeTeams]:
    with FakeTeams() as fake:
        yield fake


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=2.0) as opened:
        yield opened


DEST = Destination("teams-1", "teams", "LAB_TEAMS", name="lab")
SUB = DigestSubscription("s", DEST.id, "generalization")


def publisher(
    client: httpx.AsyncClient, env: dict[str, str], sleeps: Sleeps, per: int = 3
) -> TeamsPublisher:
    return TeamsPublisher(client, environ=env, papers_per_message=per, sleep=sleeps)


async def test_a_digest_is_one_adaptive_card(teams: FakeTeams, client: httpx.AsyncClient) -> None:
    pub = publisher(client, {"LAB_TEAMS": teams.workflow_url()}, Sleeps())
    run = DigestRun(DEST.id, "s", None, 2)
    outcome = await pub.send_digest(DEST, [item(1), item(2)], subscription=SUB, run=run)
    assert outcome.status == "sent"
    [card] = teams.cards()
    assert card[0]["text"] == "2 new papers for “generalization”"
    texts = [block["text"] for block in card]
    assert "[Generalization in deep networks](https://arxiv.org/abs/2606.00001)" in texts
    assert "We study **generalisation** in deep networks." in texts
    assert "↳ matched generalisation in the abstract" in texts
    assert all(block["type"] == "TextBlock" and block["wrap"] for block in card)


async def test_later_messages_continue_and_quiet_days_get_a_note(
    teams: FakeTeams, client: httpx.AsyncClient
) -> None:
    pub = publisher(client, {"LAB_TEAMS": teams.workflow_url()}, Sleeps())
    run = DigestRun(DEST.id, "s", None, pending=5, messages=1)
    await pub.send_digest(DEST, [item(4), item(5)], subscription=SUB, run=run)
    assert teams.cards()[0][0]["text"] == "… continued (4–5 of 5)"
    await pub.send_digest(DEST, [], subscription=SUB)
    assert teams.cards()[1][0]["text"].startswith("All quiet for “generalization”")


async def test_hostile_paper_text_can_neither_mention_nor_format_nor_link(
    teams: FakeTeams, client: httpx.AsyncClient
) -> None:
    pub = publisher(client, {"LAB_TEAMS": teams.workflow_url()}, Sleeps())
    hostile = item(1, HOSTILE, abstract=HOSTILE, authors=("<at>All</at>",))
    assert (await pub.send_digest(DEST, [hostile], subscription=SUB)).status == "sent"
    [text] = teams.texts()
    assert "<at>" not in text and "<b>" not in text and "<@" not in text
    assert "](javascript" not in text and "[x]" not in text and "*a*" not in text
    assert "＜at>Everyone＜/at>" in text and "［x］(javascript:alert(1))" in text
    # The card mentions nobody: no msteams entities, and every link is ours.
    assert "entities" not in str(teams.delivered[0].body)
    assert text.count("](https://arxiv.org/") == 3


def test_inert_text() -> None:
    assert inert("- a list\nand more") == "\u2010 a list and more"
    assert inert("1. first") == "1\u2024 first"
    assert MARKUP.link("https://e.org/a_(b)", "[x]") == "[［x］](https://e.org/a_%28b%29)"


async def test_a_big_digest_is_split_under_the_size_limit(
    teams: FakeTeams, client: httpx.AsyncClient
) -> None:
    pub = publisher(client, {"LAB_TEAMS": teams.workflow_url()}, Sleeps(), per=20)
    # Titles are cut at 300 characters; CJK text is three bytes a character in the JSON.
    items = [item(n, f"Paper {n} " + "語" * 300, abstract="語彙 " * 100) for n in range(1, 21)]
    assert (await pub.send_digest(DEST, items, subscription=SUB)).status == "sent"
    assert len(teams.delivered) > 1 and max(teams.sizes) <= BYTES_MAX
    texts = "\n".join(teams.texts())
    assert all(f"[Paper {n} " in texts for n in range(1, 21))


async def test_a_429_is_waited_out_and_5xx_retried(
    teams: FakeTeams, client: httpx.AsyncClient
) -> None:
    sleeps = Sleeps()
    pub = publisher(client, {"LAB_TEAMS": teams.workflow_url()}, sleeps)
    teams.fail("/workflows/", status=429, headers={"Retry-After": "4"})
    assert (await pub.send_digest(DEST, [item(1)], subscription=SUB)).status == "sent"
    assert sleeps.waits == [4.0]
    teams.fail("/workflows/", times=2, status=503)
    assert (await pub.send_digest(DEST, [item(2)], subscription=SUB)).status == "sent"
    assert sleeps.waits == [4.0, 1.0, 2.0] and len(teams.delivered) == 2
    teams.fail("/workflows/", status=429, headers={"Retry-After": "90"})
    outcome = await pub.send_digest(DEST, [item(3)], subscription=SUB)
    assert (outcome.status, outcome.retry_after) == ("retry", 90.0)


@pytest.mark.parametrize("setup", ["deleted", "bad-signature", "no-variable"])
async def test_a_gone_workflow_is_permanent_and_its_url_never_shown(
    teams: FakeTeams, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, setup: str
) -> None:
    url = teams.workflow_url("SECRETSIGNATURE" + "k" * 20)
    if setup == "deleted":
        teams.workflows.clear()
    if setup == "bad-signature":
        url = url.replace("SECRETSIGNATURE", "WRONGSIGNATURE0")
    env = {} if setup == "no-variable" else {"LAB_TEAMS": url}
    caplog.set_level(logging.DEBUG)
    outcome = await publisher(client, env, Sleeps()).send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == "permanent"
    assert "SIGNATURE" not in outcome.reason + caplog.text


async def test_the_ledger_pauses_the_destination_of_a_deleted_workflow(
    store: Store, teams: FakeTeams, client: httpx.AsyncClient
) -> None:
    clock = Clock(T0)
    env = {"LAB_TEAMS": teams.workflow_url()}
    teams.workflows.clear()
    ledger = Ledger(
        store, {"teams": publisher(client, env, Sleeps())}, DeliverySettings(), clock=clock
    )
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


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PAPERBRIDGE_") or name.endswith(("_TOKEN", "_SECRET")):
            monkeypatch.delenv(name)
    return tmp_path


def test_deliver_twice_posts_each_paper_once(
    workdir: Path,
    teams: FakeTeams,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LAB_TEAMS", teams.workflow_url("CLISIGNATURE" + "m" * 20))
    config = workdir / "config.toml"
    config.write_text(
        '[[digests]]\nname = "t"\nquery = "model"\ndestination = "teams:LAB_TEAMS"\n',
        encoding="utf-8",
    )
    posted = deliver_the_fixtures_twice(config, teams, capsys, "CLISIGNATURE")
    assert posted >= 1 and " new papers for " in teams.texts()[0]
    assert sum(t.count("](https://arxiv.org/abs/") for t in teams.texts()) > 5


@pytest.mark.parametrize(
    ("env", "destination", "says"),
    [
        ({}, "teams:LAB_TEAMS", "environment variable LAB_TEAMS is not set"),
        ({"LAB_TEAMS": "nope"}, "teams:LAB_TEAMS", "does not hold a Teams workflow URL"),
        ({}, "teams:https://x.logic.azure.com/workflows/1", "never the URL itself"),
    ],
)
def test_check_config_names_a_missing_or_wrong_variable(
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
        f'[[digests]]\nname = "t"\nquery = "model"\ndestination = "{destination}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "digests.0.destination" in err and says in err
