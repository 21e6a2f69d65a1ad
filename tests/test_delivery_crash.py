"""kill -9 in the middle of a fan-out to 1,000 destinations, start again: every paper reaches
every destination, and the only duplicates are the documented ones (at most one message per
destination: the batch that was posted but not yet confirmed when the process died)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bridge.models import Paper
from bridge.store import open_store
from bridge.store.ledger import LedgerStore
from tests.fleet import seed_fleet

ROOT = Path(__file__).resolve().parent.parent
DESTINATIONS = 1000
PAPERS = 4
PER_MESSAGE = 2  # 2 messages per destination, 2,000 in all
CONCURRENCY = 8


def _prepare(url: str, out: Path) -> None:
    store = open_store(url)
    try:
        then = datetime.now(UTC) - timedelta(days=2)
        seed_fleet(
            store, DESTINATIONS, kind="file", address=str(out), query="drift", created_at=then
        )
        papers = [Paper(f"2607.{n:05d}", f"Drift number {n}") for n in range(PAPERS)]
        store.add_papers(papers, now=then + timedelta(minutes=1))
    finally:
        store.close()


def _worker(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.crash_worker", url, str(PER_MESSAGE), str(CONCURRENCY)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )


def _lines(path: Path) -> list[dict[str, object]]:
    """The whole messages in the file. A message being written when it is read, or torn by
    the kill, is not one: the publisher starts the next line after it, and the ledger sends
    its papers again."""
    if not path.exists():
        return []
    messages = []
    for line in path.read_text().splitlines():
        try:
            messages.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return messages


def _torn_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip()) - len(_lines(path))


@pytest.mark.slow
def test_kill_9_mid_fan_out_then_restart_delivers_everything(
    database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "sent.jsonl"
    _prepare(database_url, out)
    total_messages = DESTINATIONS * -(-PAPERS // PER_MESSAGE)

    first = _worker(database_url)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None:
        if out.exists() and out.stat().st_size > 0 and len(_lines(out)) >= total_messages // 3:
            break
        time.sleep(0.005)
    assert first.poll() is None, "the worker finished before it could be killed"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert first.returncode == -signal.SIGKILL
    assert first.stderr is not None
    first.stderr.close()
    killed_at = len(_lines(out))
    assert 0 < killed_at < total_messages

    second = _worker(database_url)
    _, errors = second.communicate(timeout=120)
    assert second.returncode == 0, errors.decode()

    # Only a write in flight at the kill can be torn.
    assert _torn_lines(out) <= CONCURRENCY
    per_destination: dict[str, Counter[str]] = defaultdict(Counter)
    for message in _lines(out):
        papers = message["papers"]
        assert isinstance(papers, list)
        per_destination[str(message["destination"])].update(papers)
    expected = {f"2607.{n:05d}" for n in range(PAPERS)}
    assert len(per_destination) == DESTINATIONS
    duplicated: list[tuple[str, str]] = []
    for dest, counts in per_destination.items():
        assert set(counts) == expected, f"{dest} is missing {expected - set(counts)}"
        again = [paper for paper, n in counts.items() if n > 1]
        # At most one message per destination was uncertain: its papers, once more.
        assert len(again) <= PER_MESSAGE and all(counts[p] == 2 for p in again), (dest, counts)
        duplicated += [(dest, paper) for paper in again]
    # Only messages in flight when the process died can repeat: at most one per destination
    # being sent, and at most CONCURRENCY destinations at once.
    assert len({dest for dest, _ in duplicated}) <= CONCURRENCY

    store = open_store(database_url)
    try:
        rows = LedgerStore(store).rows()
    finally:
        store.close()
    assert Counter(row.state for row in rows) == {"sent": DESTINATIONS * PAPERS}
    uncertain = {(row.destination_id, row.arxiv_id) for row in rows if row.uncertain}
    # Every duplicate was flagged uncertain (re-sent after the crash), never an ordinary row.
    assert set(duplicated) <= uncertain
    assert len(uncertain) <= CONCURRENCY * PER_MESSAGE
