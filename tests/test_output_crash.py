"""kill -9 in the middle of a fan-out through the email, the signed webhook and the chat outputs
(the real publishers; a real local SMTP server with STARTTLS and AUTH, a local receiver
verifying signatures, the local fakes of Mattermost, Teams, Telegram and Matrix in
tests/fake_chat_apis.py), start again: every paper reaches every destination, and the only
duplicates are the documented ones (a message in flight at the kill, sent again marked
uncertain; none at all on Matrix, whose transaction ids make the resend idempotent), as
tests/test_delivery_crash.py shows for the file output."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote

import pytest
from sqlalchemy import text

from adapters.email.settings import PASSWORD_ENV
from bridge.models import Paper
from bridge.store import open_store
from bridge.store.ledger import LedgerStore
from tests import test_email_output, test_webhook_output
from tests.fake_chat_apis import (
    Call,
    FakeChatApi,
    FakeMatrix,
    FakeMattermost,
    FakeTeams,
    FakeTelegram,
)
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


def _prepare(url: str, kind: str, address_sql: str | None = None) -> None:
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
        if address_sql is not None:
            # One channel per destination, named from its id (SQL over ``id``).
            with store.engine.begin() as conn:
                conn.execute(text(f"UPDATE destinations SET address = {address_sql}"))
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


TG_TOKEN = "123456789:AAH" + "k" * 32
MX_TOKEN = "syt_crash_" + "b" * 30
ARXIV = re.compile(r"https://arxiv\.org/abs/(\d{4}\.\d{5})")
DEST_IDS = [f"d{n:04d}" for n in range(DESTINATIONS)]


@dataclass
class ChatFanOut:
    """A chat output's local fake, running in this process (it outlives the killed worker),
    and how to read what each destination received from it."""

    fake: FakeChatApi
    env: dict[str, str]  # for the worker: where each destination posts
    address_sql: str  # each destination's address, from its id
    destination: Callable[[Call], str]  # the destination id a delivered post went to
    shown: Callable[[Call], str]  # the text the post showed, with its papers' links


def _mattermost() -> ChatFanOut:
    fake = FakeMattermost().start()
    env = {f"HOOK_{d}": fake.webhook_url(d) for d in DEST_IDS}
    return ChatFanOut(
        fake, env, "'HOOK_' || id", lambda c: c.path.split("/")[2], lambda c: c.body["text"]
    )


def _teams() -> ChatFanOut:
    fake = FakeTeams().start()
    env = {f"WF_{d}": fake.workflow_url() for d in DEST_IDS}
    workflow = {url.split("/")[4]: d for d, url in zip(DEST_IDS, env.values(), strict=True)}
    return ChatFanOut(
        fake, env, "'WF_' || id", lambda c: workflow[c.path.split("/")[2]], lambda c: str(c.body)
    )


def _telegram() -> ChatFanOut:
    fake = FakeTelegram(TG_TOKEN).start()
    fake.chats.update("7" + d[1:] for d in DEST_IDS)  # private chats: 70000…
    return ChatFanOut(
        fake,
        {"CHAT_API": fake.base_url, "CHAT_TOKEN": TG_TOKEN},
        "'7' || substr(id, 2)",
        lambda c: "d" + str(c.body["chat_id"])[1:],
        lambda c: c.body["text"],
    )


def _matrix() -> ChatFanOut:
    fake = FakeMatrix(MX_TOKEN).start()
    fake.rooms.update(f"!{d}:example.org" for d in DEST_IDS)
    return ChatFanOut(
        fake,
        {"CHAT_API": fake.base_url, "CHAT_TOKEN": MX_TOKEN},
        "'!' || id || '\\:example.org'",  # \: a colon, not a bind parameter
        lambda c: unquote(c.path.split("/")[5]).removeprefix("!").removesuffix(":example.org"),
        lambda c: c.body["formatted_body"],
    )


CHAT_OUTPUTS = {
    "mattermost": _mattermost,
    "teams": _teams,
    "telegram": _telegram,
    "matrix": _matrix,
}


@pytest.fixture(params=sorted(CHAT_OUTPUTS))
def chat(request: pytest.FixtureRequest) -> Iterator[tuple[str, ChatFanOut]]:
    setup = CHAT_OUTPUTS[request.param]()
    try:
        yield request.param, setup
    finally:
        setup.fake.stop()


@pytest.mark.slow
def test_kill_9_mid_chat_fan_out(sqlite_url: str, chat: tuple[str, ChatFanOut]) -> None:
    kind, setup = chat
    _prepare(sqlite_url, kind, setup.address_sql)
    fake = setup.fake
    fake.delay = 0.01  # a platform that takes a moment, so the kill lands mid-flight
    _kill_then_restart(sqlite_url, kind, setup.env, lambda: len(fake.delivered))
    per_destination: dict[str, Counter[str]] = defaultdict(Counter)
    for call in fake.delivered:
        per_destination[setup.destination(call)].update(set(ARXIV.findall(setup.shown(call))))
    _check(sqlite_url, per_destination)
    if kind == "matrix":
        # A resent message keeps its transaction id: the homeserver shows it once.
        assert all(n == 1 for counts in per_destination.values() for n in counts.values())
        # …and the kill did leave posts in flight: their resends came and were recognised.
        assert len(fake.calls) > len(fake.delivered)
