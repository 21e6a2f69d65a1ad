"""kill -9 in the middle of a fan-out through the email and the signed webhook outputs (the
real publishers, a real local SMTP server with STARTTLS and AUTH, a local receiver verifying
signatures), start again: every paper reaches every destination, and the only duplicates are
the documented ones (a message in flight at the kill, sent again marked uncertain), as
tests/test_delivery_crash.py shows for the file output."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.email.settings import PASSWORD_ENV
from bridge.models import Paper
from bridge.store import open_store
from bridge.store.ledger import LedgerStore
from tests import test_email_output, test_webhook_output
from tests.fleet import seed_fleet
from tests.test_email_output import PASSWORD, SmtpServer
from tests.test_webhook_output import SECRET, Receiver

# The two outputs' local servers, as their own tests run them.
certificate = test_email_output.certificate
smtp_server = test_email_output.smtp_server
receiver = test_webhook_output.receiver

ROOT = Path(__file__).resolve().parent.parent
DESTINATIONS = 60
PAPERS = 4
PER_MESSAGE = 2  # 2 messages per destination
CONCURRENCY = 4
EXPECTED = {f"2607.{n:05d}" for n in range(PAPERS)}


def _prepare(url: str, kind: str) -> None:
    store = open_store(url)
    try:
        then = datetime.now(UTC) - timedelta(days=2)
        seed_fleet(
            store, DESTINATIONS, kind=kind, address="LAB_HOOK", query="drift", created_at=then
        )
        if kind == "mailto":
            # One mailbox per destination, so the server can tell them apart.
            with store.engine.begin() as conn:
                conn.execute(text("UPDATE destinations SET address = id || '@lab.example'"))
        papers = [Paper(f"2607.{n:05d}", f"Drift number {n}") for n in range(PAPERS)]
        store.add_papers(papers, now=then + timedelta(minutes=1))
    finally:
        store.close()


def _worker(url: str, kind: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.output_crash_worker",
            url,
            kind,
            str(PER_MESSAGE),
            str(CONCURRENCY),
        ],
        cwd=ROOT,
        env={**os.environ, **env},
        stderr=subprocess.PIPE,
    )


def _kill_then_restart(url: str, kind: str, env: dict[str, str], count: Callable[[], int]) -> None:
    total = DESTINATIONS * -(-PAPERS // PER_MESSAGE)
    first = _worker(url, kind, env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and first.poll() is None and count() < total // 3:
        time.sleep(0.005)
    assert first.poll() is None, "the worker finished before it could be killed"
    os.kill(first.pid, signal.SIGKILL)
    first.wait(timeout=10)
    assert first.stderr is not None
    first.stderr.close()
    assert 0 < count() < total
    second = _worker(url, kind, env)
    _, errors = second.communicate(timeout=180)
    assert second.returncode == 0, errors.decode()


def _check(url: str, per_destination: dict[str, Counter[str]]) -> None:
    assert len(per_destination) == DESTINATIONS
    duplicated: list[tuple[str, str]] = []
    for dest, counts in per_destination.items():
        assert set(counts) == EXPECTED, f"{dest} is missing {EXPECTED - set(counts)}"
        again = [paper for paper, n in counts.items() if n > 1]
        assert len(again) <= PER_MESSAGE and all(counts[p] == 2 for p in again), (dest, counts)
        duplicated += [(dest, paper) for paper in again]
    assert len({dest for dest, _ in duplicated}) <= CONCURRENCY
    store = open_store(url)
    try:
        rows = LedgerStore(store).rows()
    finally:
        store.close()
    assert Counter(row.state for row in rows) == {"sent": DESTINATIONS * PAPERS}
    uncertain = {(row.destination_id, row.arxiv_id) for row in rows if row.uncertain}
    assert set(duplicated) <= uncertain


@pytest.mark.slow
def test_kill_9_mid_webhook_fan_out(sqlite_url: str, receiver: Receiver) -> None:
    _prepare(sqlite_url, "webhook")
    receiver.delay = 0.01  # a receiver that takes a moment, so the kill lands mid-flight
    env = {"LAB_HOOK": receiver.url, "LAB_HOOK_SECRET": SECRET}
    _kill_then_restart(sqlite_url, "webhook", env, lambda: len(receiver.posts))
    assert all(post.verified for post in receiver.posts)
    per_destination: dict[str, Counter[str]] = defaultdict(Counter)
    for post in receiver.posts:
        # The digest's id is the subscription's: s0000 goes to d0000.
        dest = "d" + post.body["digest"]["id"].removeprefix("s")
        per_destination[dest].update(p["arxiv_id"] for p in post.body["papers"])
    _check(sqlite_url, per_destination)


@pytest.mark.slow
def test_kill_9_mid_email_fan_out(sqlite_url: str, smtp_server: SmtpServer) -> None:
    _prepare(sqlite_url, "mailto")
    env = {
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_CA": str(smtp_server.ca_file),
        PASSWORD_ENV: PASSWORD,
    }
    mailbox = smtp_server.mailbox
    _kill_then_restart(sqlite_url, "mailto", env, lambda: len(mailbox.received))
    per_destination: dict[str, Counter[str]] = defaultdict(Counter)
    for mail in mailbox.received:
        [to] = mail.recipients
        body = mail.message.get_body(("plain",))
        assert body is not None
        papers = [
            line.split()[0].removeprefix("arXiv:")
            for line in body.get_content().splitlines()
            if line.startswith("  arXiv:")
        ]
        per_destination[to.removesuffix("@lab.example")].update(papers)
    _check(sqlite_url, per_destination)
