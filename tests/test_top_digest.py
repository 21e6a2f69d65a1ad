""" "Top N of the day" digests: the most upvoted papers of the listing day that just
completed, once a day per place, through the ledger; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
from datetime import date, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.cli import main
from bridge.config import DigestSettings, Settings
from bridge.delivery import Destination, DigestSubscription
from bridge.ledger import Ledger, sync_configured
from bridge.models import Paper
from bridge.store import Store
from bridge.store.ledger import LedgerStore
from tests.fakes import Clock, RecordingPublisher
from tests.test_ledger import MORNING, T0, make_ledger, subscribe

FRIDAY = date(2026, 5, 29)  # the listing day completed before Monday 2026-06-01's digest
MONDAY = date(2026, 6, 1)


def listed(n: int, day: date, upvotes: int, title: str = "Generalization paper") -> Paper:
    return Paper(f"2605.{n:05d}", f"{title} {n}", listed_on=day, upvotes=upvotes, sources=("hf",))


def seed(store: Store) -> None:
    friday = [listed(n, FRIDAY, upvotes=n) for n in range(1, 9)]
    friday.append(listed(50, FRIDAY, upvotes=0, title="Diffusion paper"))
    # Listed on Monday itself: that day is not over at Monday's digest.
    store.add_papers([*friday, listed(99, MONDAY, upvotes=100)], announce=False, now=T0)


def top_digest(ledger: Ledger, *, top: int = 3, query: str = "", dest: str = "lab") -> None:
    now = ledger.clock()
    if ledger.db.get_destination(dest) is None:
        ledger.db.save_destination(Destination(dest, "fake", f"chan-{dest}"), now)
    sub = DigestSubscription(
        f"top-{dest}", dest, query, "08:00", "UTC", name="top", created_at=now, top=top
    )
    ledger.db.save_digest(sub, now)


async def test_the_top_of_the_completed_day_is_posted_once(store: Store) -> None:
    seed(store)
    clock = Clock(T0)
    publisher = RecordingPublisher()
    ledger = make_ledger(store, clock, publisher)
    top_digest(ledger)
    # Nothing is announced, so intake gives a top digest nothing: it is not a match digest.
    assert await ledger.intake() == 0
    assert (await ledger.sweep()).digests == {}  # 05:00: not due yet
    clock.now = MORNING
    assert (await ledger.sweep()).digests == {"top-lab": "sent"}
    assert [m.arxiv_ids for m in publisher.sent] == [("2605.00008", "2605.00007", "2605.00006")]
    # Later that day, even forced: Friday was posted, nothing twice.
    clock.advance(hours=3)
    assert (await ledger.sweep(force=True)).digests == {"top-lab": "empty"}
    assert len(publisher.sent) == 1
    # Tuesday's digest: Monday is over, and its one paper is the top.
    clock.now = MORNING + timedelta(days=1)
    assert (await ledger.sweep()).digests == {"top-lab": "sent"}
    assert publisher.sent[-1].arxiv_ids == ("2605.00099",)


async def test_papers_a_place_already_had_are_passed_over(store: Store) -> None:
    seed(store)
    clock = Clock(T0)
    publisher = RecordingPublisher()
    ledger = make_ledger(store, clock, publisher)
    subscribe(ledger, "lab", sub_id="matches", time="now")
    # The most upvoted Friday paper was announced and posted to the place as a match.
    store.add_papers(
        [listed(8, FRIDAY, upvotes=8)], now=clock.advance(minutes=1), announce_known=True
    )
    await ledger.sweep()
    assert [m.arxiv_ids for m in publisher.sent] == [("2605.00008",)]
    top_digest(ledger)
    clock.now = MORNING
    report = await ledger.sweep()
    assert report.digests["top-lab"] == "sent"
    assert publisher.sent[-1].arxiv_ids == ("2605.00007", "2605.00006", "2605.00005")


async def test_a_query_narrows_the_days_papers(store: Store) -> None:
    seed(store)
    clock = Clock(MORNING)
    publisher = RecordingPublisher()
    ledger = make_ledger(store, clock, publisher)
    top_digest(ledger, query="diffusion")
    # Friday's one diffusion paper, however few votes it has.
    assert (await ledger.sweep(force=True)).digests == {"top-lab": "sent"}
    assert [m.arxiv_ids for m in publisher.sent] == [("2605.00050",)]
    clock.advance(days=1)  # Tuesday: Monday's listing has no diffusion paper
    assert (await ledger.sweep(force=True)).digests == {"top-lab": "empty"}
    assert LedgerStore(store).top_day("top-lab") == MONDAY


async def test_a_day_is_queued_once_however_many_processes_try(store: Store) -> None:
    seed(store)
    clock = Clock(MORNING)
    first = make_ledger(store, clock, holder="a:1:x")
    second = make_ledger(store, clock, holder="b:2:y")
    top_digest(first)
    sub = first.db.get_digest("top-lab")
    assert sub is not None
    assert first._enqueue_top(sub, MORNING) == 3
    assert second._enqueue_top(sub, MORNING) == 0
    # A process that read the recorded day before another moved it changes nothing.
    assert not first.db.enqueue_top([], "top-lab", None, FRIDAY, MORNING)
    assert len(LedgerStore(store).rows()) == 3


def test_top_digests_are_configured_and_checked() -> None:
    entry = DigestSettings(name="hf-top", top=10, destination="stdout", time="09:00")
    assert entry.query == "" and entry.top == 10
    with pytest.raises(ValidationError, match="needs a query"):
        DigestSettings(name="nothing")
    with pytest.raises(ValidationError, match="once a day"):
        DigestSettings(name="t", top=5, time="now")
    with pytest.raises(ValidationError):
        DigestSettings(name="t", top=0)


def test_sync_declares_the_top(store: Store) -> None:
    settings = Settings.model_validate(
        {"digests": [{"name": "hf-top", "top": 5, "destination": "stdout"}]}
    )
    ledger = make_ledger(store, Clock(T0))
    sync_configured(ledger, settings)
    (sub,) = ledger.db.list_digests()
    assert (sub.id, sub.top, sub.query) == ("config-hf-top", 5, "")


FIXTURES = Path(__file__).parent / "fixtures"
HF_FILE = FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json"


def test_deliver_posts_the_top_of_an_imported_day(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PAPERBRIDGE_"):
            monkeypatch.delenv(name)
    out = tmp_path / "top.jsonl"
    config = tmp_path / "config.toml"
    config.write_text(
        f'[[digests]]\nname = "hf-top"\ntop = 3\ndestination = "file:{out}"\ntime = "08:00"\n',
        encoding="utf-8",
    )
    # Imported quietly: a top digest needs no announcement, and posts 3, not 30.
    assert main(["--config", str(config), "import", str(HF_FILE)]) == 0
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    assert "1 sent" in capsys.readouterr().err
    (message,) = [json.loads(line) for line in out.read_text().splitlines()]
    votes = [item["upvotes"] for item in message["items"]]
    assert len(votes) == 3 and votes == sorted(votes, reverse=True)
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    assert len(out.read_text().splitlines()) == 1  # the day once
    capsys.readouterr()
    assert main(["--config", str(config), "status"]) == 0
    assert "digest hf-top: top 3 of the day -> file:" in capsys.readouterr().out
