"""A digest sent while a source is down says so, so a channel knows papers may be late rather
than missing; once the source answers again, digests say nothing of it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.discord.render import digest_header
from adapters.slack.blocks import header_message
from bridge.config import load_settings
from bridge.delivery import DigestSubscription, Outage, outage_notice
from bridge.ledger import Ledger, build_ledger
from bridge.models import Paper
from bridge.publisher import builtin_publishers
from bridge.store import Store
from tests.fakes import Clock
from tests.fleet import seed_fleet

WEDNESDAY_8AM = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


def test_the_notice_names_the_source_and_when_it_last_answered_in_the_channels_zone() -> None:
    tuesday_evening = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)
    assert outage_notice((Outage("hf", tuesday_evening),), "Europe/Berlin") == (
        "Hugging Face Daily Papers has not answered since Tue 24 Nov 21:00 (Europe/Berlin)."
        " Papers listed meanwhile will follow once it is back."
    )
    both = outage_notice((Outage("hf", tuesday_evening), Outage("arxiv", None)), "UTC")
    assert "; arXiv has not answered yet." in both and both.endswith("once they are back.")
    assert outage_notice((), "UTC") == ""


def _one_digest_due(store: Store, out: Path) -> None:
    """A file destination subscribed to "drift" since Monday, and one paper for it."""
    monday = WEDNESDAY_8AM - timedelta(days=2)
    seed_fleet(store, 1, kind="file", address=str(out), query="drift", created_at=monday)
    store.add_papers(
        [Paper("2611.00001", "Drift in the night")], now=WEDNESDAY_8AM - timedelta(days=1)
    )


def _digest_lines(store: Store, tmp_path: Path, last_hf_success: datetime) -> list[dict]:
    out = tmp_path / "sent.jsonl"
    _one_digest_due(store, out)
    store.record_poll_success("hf", None, now=last_hf_success)
    ledger = build_ledger(store, load_settings(None, {}), clock=Clock(WEDNESDAY_8AM))
    asyncio.run(ledger.sweep())
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_a_digest_while_hugging_face_is_down_carries_the_notice(
    store: Store, tmp_path: Path
) -> None:
    # HF is polled every two hours on weekdays: since Tuesday 20:00 it missed 22, 00, 02 … 08.
    [message] = _digest_lines(store, tmp_path, datetime(2026, 11, 24, 20, 0, tzinfo=UTC))
    assert message["papers"] == ["2611.00001"]
    assert message["notice"].startswith("Hugging Face Daily Papers has not answered since Tue")


def test_a_digest_while_every_source_answers_has_none(store: Store, tmp_path: Path) -> None:
    [message] = _digest_lines(store, tmp_path, WEDNESDAY_8AM - timedelta(minutes=5))
    assert message["papers"] == ["2611.00001"] and message["notice"] == ""


def test_chat_headers_show_the_notice_as_plain_text() -> None:
    sub = DigestSubscription("s1", "d1", "drift", "08:00", "UTC")
    notice = "Hugging Face Daily Papers has not answered since Tue 24 Nov 20:00 (UTC)."
    slack = header_message(sub, 3, notice)
    assert any(
        block["type"] == "context" and notice in block["elements"][0]["text"]
        for block in slack.blocks
    )
    assert header_message(sub, 3).blocks == [
        block for block in slack.blocks if notice not in json.dumps(block)
    ]
    discord = digest_header(sub, 3, notice)
    assert discord.splitlines()[1] == f"-# ⚠️ {notice}"
    assert digest_header(sub, 3) == discord.splitlines()[0]


def test_a_digest_goes_out_when_the_outages_cannot_be_read(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "sent.jsonl"
    _one_digest_due(store, out)

    def unreadable(_now: datetime) -> tuple[Outage, ...]:
        raise RuntimeError("source states unreadable")

    ledger = Ledger(store, builtin_publishers(), clock=Clock(WEDNESDAY_8AM), outages=unreadable)
    asyncio.run(ledger.sweep())
    [message] = [json.loads(line) for line in out.read_text().splitlines()]
    assert message["papers"] == ["2611.00001"] and message["notice"] == ""


def test_a_sweep_reads_the_outages_once_for_all_its_digests(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "sent.jsonl"
    monday = WEDNESDAY_8AM - timedelta(days=2)
    seed_fleet(store, 3, kind="file", address=str(out), query="drift", created_at=monday)
    store.add_papers(
        [Paper("2611.00001", "Drift in the night")], now=WEDNESDAY_8AM - timedelta(days=1)
    )
    reads: list[datetime] = []

    def hf_down(now: datetime) -> tuple[Outage, ...]:
        reads.append(now)
        return (Outage("hf", None),)

    ledger = Ledger(store, builtin_publishers(), clock=Clock(WEDNESDAY_8AM), outages=hf_down)
    asyncio.run(ledger.sweep())
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(messages) == 3
    assert all(m["notice"].startswith("Hugging Face Daily Papers has not") for m in messages)
    assert reads == [WEDNESDAY_8AM]
