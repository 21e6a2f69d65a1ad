"""Notices about the bridge itself, through the delivery ledger: a channel whose digests draw on a
source that has not answered for a day hears it once, and once that it is back; the operator's
destination hears of each pause once. Once means once: over many sweeps, with two ledgers (two
processes) on one store, and after a restart."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bridge.config import Settings
from bridge.delivery import Destination, Notice, SendOutcome, notice_text
from bridge.ledger import Ledger, build_ledger, sync_configured
from bridge.models import Paper
from bridge.notices import down_key
from bridge.store import Store, open_store
from bridge.store.ledger import NoticeRow
from tests.fakes import Clock

# HF is polled every two hours on weekdays: it last answered on Tuesday at 06:00.
TUESDAY_6AM = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def settings_for(tmp_path: Path, *digests: tuple[str, str], **alerts: object) -> Settings:
    """A file destination per (name, query), at 08:00, and ``[alerts]``."""
    return Settings.model_validate(
        {
            "digests": [
                {"name": name, "query": query, "destination": f"file:{tmp_path / name}.jsonl"}
                for name, query in digests
            ],
            "alerts": alerts,
        }
    )


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def notices(path: Path) -> list[tuple[str, str]]:
    """(kind, text) of each notice a file destination got."""
    return [(line["event"]["kind"], line["notice"]) for line in lines(path) if "event" in line]


class Fleet:
    """``processes`` ledgers, each on its own connection to one store (as many `serve`
    processes), sharing a fake clock."""

    def __init__(self, url: str, settings: Settings, clock: Clock, processes: int = 2) -> None:
        self.stores = [open_store(url) for _ in range(processes)]
        self.settings = settings
        self.clock = clock
        self.ledgers = [build_ledger(store, settings, clock=clock) for store in self.stores]
        sync_configured(self.ledgers[0], settings)

    def sweep(self, times: int = 1) -> None:
        async def every_ledger_at_once() -> None:
            await asyncio.gather(*(ledger.sweep() for ledger in self.ledgers))

        for _ in range(times):
            asyncio.run(every_ledger_at_once())

    def restart(self) -> None:
        self.ledgers = [build_ledger(s, self.settings, clock=self.clock) for s in self.stores]

    def close(self) -> None:
        for store in self.stores:
            store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(TUESDAY_6AM)


@pytest.fixture
def fleet_of(database_url: str, clock: Clock) -> Iterator[Any]:
    made: list[Fleet] = []

    def make(settings: Settings) -> Fleet:
        made.append(Fleet(database_url, settings, clock))
        return made[-1]

    yield make
    for fleet in made:
        fleet.close()


def test_a_source_silent_for_a_day_is_told_once_to_each_channel_drawing_on_it(
    tmp_path: Path, clock: Clock, fleet_of: Any
) -> None:
    settings = settings_for(
        tmp_path,
        ("lab", "generalization"),
        ("hf-only", "source:hf diffusion"),
        ("arxiv-only", "source:arxiv gan"),
    )
    fleet = fleet_of(settings)
    fleet.stores[0].record_poll_success("hf", None, now=TUESDAY_6AM)
    # Stale after three missed polls, but a day has not passed: nothing yet.
    clock.now = TUESDAY_6AM + timedelta(hours=23, minutes=59)
    fleet.sweep(3)
    assert notices(tmp_path / "lab.jsonl") == []
    clock.now = TUESDAY_6AM + timedelta(hours=24, minutes=1)
    fleet.sweep(5)
    fleet.restart()
    fleet.sweep(2)
    clock.advance(hours=20)
    fleet.sweep(3)
    expected = [
        (
            "source-down",
            "Hugging Face Daily Papers has not answered since Tue 24 Nov 06:00 (UTC). Papers it"
            " lists meanwhile will come late, not be lost: they follow once it is back.",
        )
    ]
    assert notices(tmp_path / "lab.jsonl") == expected
    assert notices(tmp_path / "hf-only.jsonl") == expected
    # A digest that only takes arXiv papers loses nothing while Hugging Face is down.
    assert notices(tmp_path / "arxiv-only.jsonl") == []

    # HF answers again: one "back" notice each, whether or not a digest is due.
    back_at = clock.advance(hours=1)
    fleet.stores[1].record_poll_success("hf", None, now=back_at)
    clock.advance(minutes=1)
    fleet.sweep(4)
    fleet.restart()
    fleet.sweep(2)
    for name in ("lab", "hf-only"):
        assert [kind for kind, _ in notices(tmp_path / f"{name}.jsonl")] == [
            "source-down",
            "source-back",
        ]
    assert notices(tmp_path / "lab.jsonl")[1][1] == (
        "Hugging Face Daily Papers is back (it answered at Thu 26 Nov 03:01 (UTC)). The papers it"
        " listed meanwhile follow with the next digest."
    )
    assert notices(tmp_path / "arxiv-only.jsonl") == []

    # The next outage is news again.
    clock.advance(days=2)
    fleet.sweep(2)
    assert [kind for kind, _ in notices(tmp_path / "lab.jsonl")] == [
        "source-down",
        "source-back",
        "source-down",
    ]


def test_the_notice_is_in_the_channels_time_zone(
    tmp_path: Path, clock: Clock, fleet_of: Any
) -> None:
    settings = Settings.model_validate(
        {
            "digests": [
                {
                    "name": "berlin",
                    "query": "generalization",
                    "destination": f"file:{tmp_path / 'berlin.jsonl'}",
                    "time_zone": "Europe/Berlin",
                }
            ]
        }
    )
    fleet = fleet_of(settings)
    fleet.stores[0].record_poll_success("hf", None, now=TUESDAY_6AM)
    clock.advance(hours=25)
    fleet.sweep()
    [(_, text)] = notices(tmp_path / "berlin.jsonl")
    assert "since Tue 24 Nov 07:00 (Europe/Berlin)" in text


def test_a_weekend_without_polls_is_no_outage(tmp_path: Path, clock: Clock, fleet_of: Any) -> None:
    fleet = fleet_of(settings_for(tmp_path, ("lab", "generalization")))
    friday_last_poll = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
    fleet.stores[0].record_poll_success("hf", None, now=friday_last_poll)
    clock.now = datetime(2026, 11, 30, 0, 30, tzinfo=UTC)  # Monday, before its first poll
    fleet.sweep(2)
    assert notices(tmp_path / "lab.jsonl") == []


def test_a_notice_not_yet_posted_when_the_source_is_back_is_dropped(
    tmp_path: Path, clock: Clock, fleet_of: Any
) -> None:
    fleet = fleet_of(settings_for(tmp_path, ("lab", "generalization")))
    ledger = fleet.ledgers[0]
    [dest] = [d for d in ledger.db.list_destinations() if d.kind == "file"]
    fleet.stores[0].record_poll_success("hf", None, now=TUESDAY_6AM)
    # The channel is backing off after a failed send when the notice becomes due...
    clock.advance(hours=25)
    ledger.db.record_failure(
        dest.id, "disk full", clock.now, retry_at=clock.now + timedelta(hours=2)
    )
    fleet.sweep(2)
    assert notices(tmp_path / "lab.jsonl") == []
    # ...and HF answers before it may post again: no "down", hence no "back" either.
    fleet.stores[0].record_poll_success("hf", None, now=clock.advance(hours=1))
    clock.advance(hours=2)
    fleet.sweep(2)
    assert notices(tmp_path / "lab.jsonl") == []
    assert [(row["kind"], row["state"]) for row in ledger.db.notices()] == [
        ("source-down", "dropped")
    ]


def test_the_operator_hears_of_each_pause_once_and_of_a_stale_source_at_once(
    tmp_path: Path, clock: Clock, fleet_of: Any
) -> None:
    ops = tmp_path / "ops.jsonl"
    gone = tmp_path / "gone"
    settings = Settings.model_validate(
        {
            "digests": [
                {
                    "name": "lab",
                    "query": "generalization",
                    "destination": f"file:{gone / 'lab.jsonl'}",
                    "time": "now",
                }
            ],
            "alerts": {"destination": f"file:{ops}"},
            "time_zone": "Europe/Berlin",  # the operator's, as it has no digest of its own
        }
    )
    fleet = fleet_of(settings)
    store = fleet.stores[0]
    store.record_poll_success("hf", None, now=TUESDAY_6AM)
    store.add_papers([Paper("2611.00001", "Generalization at night")], now=clock.advance(minutes=1))
    # The directory is gone: the file output cannot post there, and pauses the destination.
    fleet.sweep()
    [lab] = [d for d in fleet.ledgers[0].db.list_destinations() if d.paused]
    fleet.sweep(3)
    fleet.restart()
    fleet.sweep(2)
    [(kind, text)] = notices(ops)
    assert kind == "destination-paused"
    assert text == (
        f"Posting to file:{gone / 'lab.jsonl'} is paused since Tue 24 Nov 07:01 (Europe/Berlin):"
        " file: no such"
        f" directory for {gone / 'lab.jsonl'}. Once that is fixed: paperbridge resume {lab.id}"
    )
    # Resumed while still broken: paused again, and that is a new pause to hear of.
    fleet.ledgers[0].db.resume_destination(lab.id, clock.advance(minutes=5))
    fleet.sweep(3)
    assert [kind for kind, _ in notices(ops)] == ["destination-paused"] * 2

    # The operator hears of a stale source without the channels' day of patience (HF: three
    # polls two hours apart missed), and of its return; the paused channel hears nothing.
    clock.now = TUESDAY_6AM + timedelta(hours=7)
    fleet.sweep(2)
    store.record_poll_success("hf", None, now=clock.advance(hours=1))
    fleet.sweep(2)
    assert [kind for kind, _ in notices(ops)] == [
        "destination-paused",
        "destination-paused",
        "source-down",
        "source-back",
    ]
    assert not gone.exists()


def test_a_notice_claimed_by_a_process_that_died_is_posted_again_marked(
    tmp_path: Path, clock: Clock, fleet_of: Any
) -> None:
    fleet = fleet_of(settings_for(tmp_path, ("lab", "generalization")))
    db = fleet.ledgers[0].db
    [dest] = db.list_destinations()
    fleet.stores[0].record_poll_success("hf", None, now=TUESDAY_6AM)
    clock.advance(hours=25)
    # A process on another host added the notice and claimed it under the destination's
    # lease, then died before posting or confirming.
    row = NoticeRow(down_key("hf", TUESDAY_6AM), dest.id, "source-down", "hf", TUESDAY_6AM)
    assert db.add_notices([row], clock.now) == 1
    [added] = db.notices()
    lease = f"destination:{dest.id}"
    assert db.try_lease(lease, "elsewhere:1:gone", clock.now, clock.now + timedelta(minutes=5))
    assert db.claim_notice(added["id"], "elsewhere:1:gone", clock.now) is not None
    fleet.sweep()
    assert notices(tmp_path / "lab.jsonl") == []  # its lease still holds
    clock.advance(minutes=6)
    fleet.sweep(3)
    [line] = lines(tmp_path / "lab.jsonl")
    assert line["event"] == {
        "kind": "source-down",
        "source": "hf",
        "about": None,
        "since": TUESDAY_6AM.isoformat(),
        "uncertain": True,
    }
    [settled] = db.notices()
    assert settled["state"] == "sent" and settled["uncertain"] and settled["attempts"] == 2


class NoticeRecorder:
    """A publisher that posts notices (and digests) as ``outcomes`` say, recording each try."""

    kind = "file"
    max_papers_per_message = 10

    def __init__(self, *outcomes: SendOutcome) -> None:
        self.outcomes = list(outcomes)
        self.tries: list[Notice] = []

    async def send_digest(self, destination: Destination, items: Any, **_: Any) -> SendOutcome:
        return SendOutcome.sent()

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        self.tries.append(notice)
        return self.outcomes.pop(0) if self.outcomes else SendOutcome.sent()


def test_a_failed_notice_waits_out_the_destinations_backoff_then_goes_once(
    tmp_path: Path, clock: Clock, fleet_of: Any
) -> None:
    fleet = fleet_of(settings_for(tmp_path, ("lab", "generalization")))
    recorder = NoticeRecorder(SendOutcome.retry("rate limited", retry_after=600))
    for ledger in fleet.ledgers:
        ledger.publishers["file"] = recorder
    fleet.stores[0].record_poll_success("hf", None, now=TUESDAY_6AM)
    clock.advance(hours=25)
    fleet.sweep(3)
    assert len(recorder.tries) == 1
    clock.advance(minutes=11)
    fleet.sweep(3)
    assert [n.kind for n in recorder.tries] == ["source-down", "source-down"]
    [row] = fleet.ledgers[0].db.notices()
    assert row["state"] == "sent" and row["attempts"] == 2


def test_a_permanent_failure_pauses_the_destination_as_a_digest_would(
    tmp_path: Path, clock: Clock, fleet_of: Any
) -> None:
    fleet = fleet_of(settings_for(tmp_path, ("lab", "generalization")))
    recorder = NoticeRecorder(SendOutcome.permanent("channel_not_found"))
    for ledger in fleet.ledgers:
        ledger.publishers["file"] = recorder
    fleet.stores[0].record_poll_success("hf", None, now=TUESDAY_6AM)
    clock.advance(hours=25)
    fleet.sweep(3)
    [dest] = [d for d in fleet.ledgers[0].db.list_destinations() if d.kind == "file"]
    assert dest.paused and dest.paused_reason == "channel_not_found"
    assert len(recorder.tries) == 1


def test_an_output_that_cannot_post_notices_drops_them_and_keeps_its_digests(
    store: Store, tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    class DigestsOnly:
        kind = "file"
        max_papers_per_message = 10

        async def send_digest(self, destination: Destination, items: Any, **_: Any) -> SendOutcome:
            return SendOutcome.sent()

    settings = settings_for(tmp_path, ("lab", "generalization"))
    ledger = build_ledger(store, settings, {"file": DigestsOnly()}, clock=clock)
    sync_configured(ledger, settings)
    store.record_poll_success("hf", None, now=TUESDAY_6AM)
    clock.advance(hours=25)
    asyncio.run(ledger.sweep())
    asyncio.run(ledger.sweep())
    assert [row["state"] for row in ledger.db.notices()] == ["dropped"]
    assert "the file output cannot post notices" in caplog.text
    assert not ledger.db.list_destinations()[0].paused


def test_no_notices_from_a_ledger_built_without_rules(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "lab.jsonl"
    settings = settings_for(tmp_path, ("lab", "generalization"))
    clock = Clock(TUESDAY_6AM + timedelta(days=3))
    ledger = Ledger(store, {}, clock=clock)
    sync_configured(ledger, settings)
    asyncio.run(ledger.sweep())
    assert not out.exists() and ledger.db.notices() == []


def test_notice_texts() -> None:
    never = Notice(1, "d", "source-down", source="arxiv")
    assert notice_text(never).startswith("arXiv has not answered yet. Papers it lists meanwhile")
    paused = Notice(
        2,
        "ops",
        "destination-paused",
        about_id="slack-1",
        about="slack:T1:C1",
        detail="Slack channel_not_found: the channel is gone",
        since=datetime(2026, 11, 24, 6, 1, tzinfo=UTC),
        time_zone="Europe/Berlin",
    )
    assert notice_text(paused) == (
        "Posting to slack:T1:C1 is paused since Tue 24 Nov 07:01 (Europe/Berlin): Slack"
        " channel_not_found: the channel is gone. Once that is fixed: paperbridge resume slack-1"
    )
