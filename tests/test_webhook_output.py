"""Signed JSON webhooks against a local HTTP receiver that verifies every signature as the
README's verifier does: the versioned body, the HMAC over timestamp and body, replays and
tampering refused, 429/5xx retried after Retry-After, other 4xx and redirects pausing, the
URL never shown; and through `paperbridge deliver`, every paper posted exactly once."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.webhook.publisher import SignedWebhookPublisher
from adapters.webhook.settings import WebhookSettings, webhook_problems
from bridge.config import Settings
from bridge.delivery import Destination, DigestItem, DigestRun, DigestSubscription, Notice
from bridge.models import Match, Paper, StoredPaper

FIXTURES = Path(__file__).parent / "fixtures"
HF_FILE = FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json"
T0 = dt.datetime(2026, 6, 1, 5, 0, tzinfo=dt.UTC)
SECRET = "whsec-0123456789abcdef"
HOSTILE = "<script>alert(1)</script> @everyone\r\n<!channel>"


# The README's verifier ("Signed webhooks"), as it is there (a type added): what a receiver runs.
def verify(secret: str, headers: Any, body: bytes, max_age: int = 300) -> bool:
    timestamp = headers.get("X-Paperbridge-Timestamp", "")
    given = headers.get("X-Paperbridge-Signature-256", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > max_age:
        return False  # missing, or too old: a replay
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest(given, "sha256=" + mac.hexdigest())


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    raw: bytes
    verified: bool

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.raw)


@dataclass
class Receiver:
    """Answers each POST with the next of ``answers`` (status, headers), then 204."""

    url: str = ""
    posts: list[Post] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    delay: float = 0.0


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.posts.append(
                Post(self.path, dict(self.headers), raw, verify(SECRET, self.headers, raw))
            )
            if state.delay:
                time.sleep(state.delay)
            status, headers = state.answers.pop(0) if state.answers else (204, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/papers?token=t0ken"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def item(n: int, title: str = "Generalization in deep networks") -> DigestItem:
    paper = Paper(f"2606.{n:05d}", title, abstract="We study generalisation.", sources=("hf",))
    return DigestItem(StoredPaper(paper, n, T0, True), Match("s", paper.arxiv_id))


DEST = Destination("webhook-1", "webhook", "LAB_HOOK", name="lab")
SUB = DigestSubscription("s", DEST.id, "generalization", name="lab-morning")


def publisher(client: httpx.AsyncClient, receiver: Receiver, **env: str) -> SignedWebhookPublisher:
    environ = {"LAB_HOOK": receiver.url, "LAB_HOOK_SECRET": SECRET, **env}
    return SignedWebhookPublisher(client, WebhookSettings(), environ=environ)


@pytest.fixture
async def client() -> Any:
    async with httpx.AsyncClient(timeout=1.0, follow_redirects=False) as opened:
        yield opened


async def test_a_digest_is_a_signed_versioned_json_post(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    outcome = await publisher(client, receiver).send_digest(
        DEST, [item(1), item(2, HOSTILE)], subscription=SUB, run=DigestRun(DEST.id, "s", None, 2)
    )
    assert outcome.status == "sent", outcome
    [post] = receiver.posts
    assert post.verified
    assert post.path == "/hooks/papers?token=t0ken"
    assert post.headers["Content-Type"] == "application/json"
    assert abs(int(post.headers["X-Paperbridge-Timestamp"]) - time.time()) < 60
    body = post.body
    assert body["version"] == 1 and body["type"] == "digest"
    assert body["digest"] == {
        "id": "s",
        "name": "lab-morning",
        "query": "generalization",
        "top": None,
        "part": 1,
        "notice": None,
    }
    assert [p["arxiv_id"] for p in body["papers"]] == ["2606.00001", "2606.00002"]
    # Paper text is data: sent exactly as it is, for the receiver to escape where it shows it.
    assert body["papers"][1]["title"] == HOSTILE
    assert body["papers"][0]["links"]["abs"] == "https://arxiv.org/abs/2606.00001"
    assert body["papers"][0]["uncertain"] is False
    dt.datetime.fromisoformat(body["sent_at"])


async def test_the_url_is_kept_out_of_the_logs(
    receiver: Receiver, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    # httpx logs every request's URL at INFO; the URL may carry a token.
    # httpx's own logger at DEBUG: an earlier test's logging set-up may have raised its level.
    caplog.set_level(logging.DEBUG, logger="httpx")
    outcome = await publisher(client, receiver).send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == "sent", outcome
    assert "HTTP Request" in caplog.text  # the request was logged, without its URL
    assert "t0ken" not in caplog.text and "/hooks/papers" not in caplog.text


async def test_a_notice_is_signed_too(receiver: Receiver, client: httpx.AsyncClient) -> None:
    notice = Notice(1, DEST.id, "source-down", source="hf", since=T0)
    assert (await publisher(client, receiver).send_notice(DEST, notice)).status == "sent"
    [post] = receiver.posts
    assert post.verified and post.body["type"] == "notice"
    assert post.body["notice"]["kind"] == "source-down" and post.body["notice"]["source"] == "hf"


def test_the_verifier_refuses_tampering_other_secrets_and_replays() -> None:
    from adapters.webhook.body import signature

    raw = b'{"version":1}'
    now = int(time.time())
    headers = {"X-Paperbridge-Timestamp": str(now), "X-Paperbridge-Signature-256": ""}
    headers["X-Paperbridge-Signature-256"] = signature(SECRET, now, raw)
    assert verify(SECRET, headers, raw)
    assert not verify(SECRET, headers, b'{"version":2}')
    assert not verify("another-secret-value", headers, raw)
    old = now - 3600
    replay = {
        "X-Paperbridge-Timestamp": str(old),
        "X-Paperbridge-Signature-256": signature(SECRET, old, raw),
    }
    assert not verify(SECRET, replay, raw)
    # The timestamp is signed: moving it forward breaks the signature.
    moved = dict(replay, **{"X-Paperbridge-Timestamp": str(now)})
    assert not verify(SECRET, moved, raw)


@pytest.mark.parametrize(
    ("status", "headers", "expected", "retry_after"),
    [
        (429, {"Retry-After": "7"}, "retry", 7.0),
        (503, {}, "retry", None),
        (500, {}, "retry", None),
        (404, {}, "permanent", None),
        (401, {}, "permanent", None),
        (302, {"Location": "http://127.0.0.1:9/elsewhere"}, "permanent", None),
    ],
)
async def test_answers_decide_retry_or_pause(
    receiver: Receiver,
    client: httpx.AsyncClient,
    status: int,
    headers: dict[str, str],
    expected: str,
    retry_after: float | None,
) -> None:
    receiver.answers.append((status, headers))
    outcome = await publisher(client, receiver).send_digest(DEST, [item(1)], subscription=SUB)
    assert outcome.status == expected
    assert outcome.retry_after == retry_after
    assert str(status) in outcome.reason and "t0ken" not in outcome.reason
    assert len(receiver.posts) == 1  # a redirect is not followed


async def test_retry_after_as_an_http_date(receiver: Receiver, client: httpx.AsyncClient) -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    receiver.answers.append((503, {"Retry-After": format_datetime(later, usegmt=True)}))
    outcome = await publisher(client, receiver).send_digest(DEST, [item(1)])
    assert outcome.status == "retry"
    assert outcome.retry_after is not None and 100 < outcome.retry_after <= 121


async def test_a_slow_receiver_is_retried_as_maybe_sent(receiver: Receiver) -> None:
    receiver.delay = 1.0
    async with httpx.AsyncClient(timeout=0.3) as client:
        outcome = await publisher(client, receiver).send_digest(DEST, [item(1)])
    assert outcome.status == "retry" and outcome.maybe_sent
    assert "did not answer in time" in outcome.reason


async def test_a_missing_secret_pauses_without_showing_the_url(
    receiver: Receiver, client: httpx.AsyncClient
) -> None:
    pub = SignedWebhookPublisher(client, WebhookSettings(), environ={"LAB_HOOK": receiver.url})
    outcome = await pub.send_digest(DEST, [item(1)])
    assert outcome.status == "permanent" and "LAB_HOOK_SECRET" in outcome.reason
    assert receiver.url not in outcome.reason and not receiver.posts


def test_settings_are_checked() -> None:
    def problems(destination: str, environ: dict[str, str]) -> list[str]:
        settings = Settings.model_validate(
            {"digests": [{"name": "d", "query": "q", "destination": destination}]}
        )
        return [f"{p.key}: {p.problem}" for p in webhook_problems(settings, False, environ)]

    ok = {"LAB_HOOK": "https://hooks.lab.example/p", "LAB_HOOK_SECRET": SECRET}
    assert problems("webhook:LAB_HOOK", ok) == []
    [unset] = problems("webhook:LAB_HOOK", {})
    assert unset == (
        "digests.0.destination: environment variable LAB_HOOK is not set (it holds the"
        " webhook's URL)"
    )
    [short] = problems("webhook:LAB_HOOK", {"LAB_HOOK": ok["LAB_HOOK"], "LAB_HOOK_SECRET": "x"})
    assert "LAB_HOOK_SECRET must hold the signing secret" in short
    [not_url] = problems("webhook:LAB_HOOK", {**ok, "LAB_HOOK": "hooks.lab.example"})
    assert "does not hold an http(s) URL" in not_url


# -- through `paperbridge deliver`: exactly once -----------------------------------------------


def paperbridge(
    workdir: Path, env_extra: dict[str, str], *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PAPERBRIDGE_", "SLACK_", "DISCORD_"))
    }
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_deliver_posts_each_paper_once(receiver: Receiver, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent("""
        [outputs.webhook]
        papers_per_message = 4

        [[digests]]
        name = "models"
        query = "model"
        destination = "webhook:LAB_HOOK"
        time = "08:00"
        """)
    )
    env = {"LAB_HOOK": receiver.url, "LAB_HOOK_SECRET": SECRET}
    checked = paperbridge(tmp_path, env, "--config", str(config), "check-config")
    assert checked.returncode == 0, checked.stderr
    first = paperbridge(tmp_path, env, "--config", str(config), "deliver")
    assert first.returncode == 0, first.stderr
    assert paperbridge(tmp_path, {}, "import", "--announce", str(HF_FILE)).returncode == 0
    # The first post fails with a 503: deliver says so (exit 1) and the ledger keeps it.
    receiver.answers.append((503, {"Retry-After": "0"}))
    failed = paperbridge(tmp_path, env, "--config", str(config), "deliver", "--now")
    assert failed.returncode == 1 and "answered 503" in failed.stderr
    assert len(receiver.posts) == 1
    for _ in range(2):  # the retry posts everything; the run after it finds nothing to post
        done = paperbridge(tmp_path, env, "--config", str(config), "deliver", "--now")
        assert done.returncode == 0, done.stderr
        assert receiver.url not in failed.stderr + done.stdout + done.stderr
    assert "LAB_HOOK_SECRET" not in done.stderr and SECRET not in done.stderr
    assert all(post.verified for post in receiver.posts)
    accepted = receiver.posts[1:]
    papers = [p["arxiv_id"] for post in accepted for p in post.body["papers"]]
    assert len(papers) >= 2 and len(papers) == len(set(papers))
    assert all(0 < len(post.body["papers"]) <= 4 for post in accepted)
    assert set(papers) >= {p["arxiv_id"] for p in receiver.posts[0].body["papers"]}


@pytest.mark.slow
def test_check_config_names_a_missing_secret(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[[digests]]\nname = "d"\nquery = "q"\ndestination = "webhook:LAB_HOOK"\n')
    refused = paperbridge(
        tmp_path,
        {"LAB_HOOK": "https://hooks.lab.example/x"},
        "--config",
        str(config),
        "check-config",
    )
    assert refused.returncode == 2
    assert "digests.0.destination: environment variable LAB_HOOK_SECRET" in refused.stderr
    assert "hooks.lab.example" not in refused.stderr
