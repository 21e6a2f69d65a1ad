"""Two real ``paperbridge serve`` processes on one PostgreSQL schema: each poll and each digest
runs once, every (destination, paper) is delivered once, and both processes take a share."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bridge.models import Paper
from bridge.store import Store, open_store, schema
from bridge.store.ledger import LedgerStore
from tests.fake_upstream import FakeUpstream, fixture, unused_port
from tests.fleet import seed_fleet
from tests.local_server import serve_command

ROOT = Path(__file__).resolve().parent.parent
DESTINATIONS = 200
PAPERS = 12  # FilePublisher sends 10 per message: two messages per destination
HF_FIXTURE = "hf/daily_papers_api_limit30_2026-06-13.json"


def _prepare(url: str, out: Path) -> None:
    store = open_store(url)
    try:
        then = datetime.now(UTC) - timedelta(days=3)
        seed_fleet(
            store,
            DESTINATIONS,
            kind="file",
            address=str(out),
            # A word no paper from the fake HF listing has: those wait for tomorrow.
            query="zyxquanta",
            created_at=then,
            time_zone="Europe/Berlin",
        )
        papers = [Paper(f"2608.{n:05d}", f"Zyxquanta result {n}") for n in range(PAPERS)]
        store.add_papers(papers, now=then + timedelta(hours=1))
    finally:
        store.close()


@pytest.fixture
def upstream() -> Iterator[FakeUpstream]:
    with FakeUpstream() as up:
        up.add(
            "/api/daily_papers",
            fixture(HF_FIXTURE),
            content_type="application/json",
            query={"limit": "100", "p": "0"},
        )
        yield up


def _serve(config: Path, workdir: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBRIDGE_")}
    return subprocess.Popen(
        serve_command(config, unused_port()),
        cwd=workdir,
        env=dict(env, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _done(store: Store) -> bool:
    rows = LedgerStore(store).rows()
    with store.engine.connect() as conn:
        unfinished = conn.execute(
            select(schema.digest_subscriptions.c.id).where(
                schema.digest_subscriptions.c.last_digest_at.is_(None)
            )
        ).first()
    polled = store.source_state("hf").last_attempt_at is not None
    return (
        polled
        and unfinished is None
        and len(rows) >= DESTINATIONS * PAPERS
        and all(row.state == "sent" for row in rows)
    )


@pytest.mark.postgres
@pytest.mark.slow
def test_two_serve_processes_poll_once_and_deliver_everything_once(
    postgres_url: str, tmp_path: Path, upstream: FakeUpstream
) -> None:
    out = tmp_path / "sent.jsonl"
    _prepare(postgres_url, out)
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[store]
database_url = "{postgres_url}"
[sources.hf]
base_url = "{upstream.base_url}"
[first_run]
announce = "all"
[fetch]
max_attempts = 1
timeout_seconds = 5
[delivery]
sweep_every_seconds = 1
""",
        encoding="utf-8",
    )
    procs = [_serve(config, tmp_path), _serve(config, tmp_path)]
    store = open_store(postgres_url)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _done(store):
            assert all(p.poll() is None for p in procs), "a serve process exited"
            time.sleep(0.2)
        finished = _done(store)
        rows = LedgerStore(store).rows()
    finally:
        store.close()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        logs = [proc.communicate(timeout=20)[1].decode() for proc in procs]
    assert finished, "not everything was delivered within 60 s:\n" + "\n".join(logs)

    # Every (destination, paper) exactly once, by one process or the other.
    sent = Counter(
        (message["destination"], paper)
        for message in map(json.loads, out.read_text().splitlines())
        for paper in message["papers"]
    )
    assert len(sent) == DESTINATIONS * PAPERS
    assert set(sent.values()) == {1}, [k for k, n in sent.items() if n > 1][:5]
    assert not any(row.uncertain for row in rows)
    senders = Counter(row.claimed_by.split(":")[1] for row in rows if row.claimed_by)
    assert len(senders) == 2, f"one process did all the work: {senders}"
    # One HF poll, by one of them: no URL was asked twice.
    asked = Counter((r.path, tuple(sorted(r.query.items()))) for r in upstream.requests)
    assert asked and max(asked.values()) == 1, asked
