"""Email and signed-webhook benchmark: digests posted through the email publisher to a local
SMTP server (aiosmtpd with STARTTLS and AUTH, as in tests/test_email_output.py) and through
the signed webhook publisher to a local HTTP receiver that verifies every signature.

Baselines, measured in the same run against the same servers: a bare smtplib session
(connect, STARTTLS, login, send the same pre-rendered bytes) and a bare httpx POST of the same
pre-encoded JSON, unsigned. The difference is paperbridge's own work per message: rendering
the text and HTML parts or the JSON body, escaping, signing.

    .venv/bin/python bench/email_webhook_posts.py [--messages 200] [--papers 10]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import smtplib
import ssl
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from email.policy import SMTP as SMTP_POLICY
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402

from adapters.email.publisher import EmailPublisher  # noqa: E402
from adapters.email.render import digest_message  # noqa: E402
from adapters.email.settings import EmailSettings  # noqa: E402
from adapters.webhook.body import digest_body, encode  # noqa: E402
from adapters.webhook.publisher import SignedWebhookPublisher  # noqa: E402
from adapters.webhook.settings import WebhookSettings  # noqa: E402
from bridge.delivery import Destination, DigestItem, DigestSubscription  # noqa: E402
from bridge.models import Match, StoredPaper  # noqa: E402
from bridge.query import match_paper, parse_query  # noqa: E402
from bridge.sources.hf_parse import parse_api  # noqa: E402
from tests.test_email_output import (  # noqa: E402
    PASSWORD,
    USER,
    Mailbox,
    authenticator,
    free_port,
    self_signed,
)
from tests.test_webhook_output import verify  # noqa: E402

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SECRET = "bench-secret-0123456789"
SUB = DigestSubscription("s", "d", "model OR learning OR language", name="bench")


def items() -> list[DigestItem]:
    raw = (ROOT / "tests/fixtures/hf/daily_papers_api_limit30_2026-06-13.json").read_bytes()
    query = parse_query(SUB.query)
    out = []
    for n, paper in enumerate(parse_api(raw, "bench").papers, 1):
        hits = match_paper(query, paper) or ()
        out.append(DigestItem(StoredPaper(paper, n, NOW, True), Match("s", paper.arxiv_id, hits)))
    return out


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} messages/s ({seconds / count * 1000:.2f} ms each)"


async def bench_email(digests: list[list[DigestItem]], tmp: Path) -> tuple[float, float]:
    cert, key = self_signed(tmp)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    mailbox = Mailbox()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
    )
    controller.start()
    try:
        settings = EmailSettings(
            host="127.0.0.1",
            port=controller.port,
            security="starttls",
            sender="papers@lab.example",
            username=USER,
            password=PASSWORD,
            ca_file=str(cert),
        )
        publisher = EmailPublisher(settings)
        destination = Destination("m", "mailto", "team@lab.example")
        start = time.perf_counter()
        for digest in digests:
            outcome = await publisher.send_digest(destination, digest, subscription=SUB)
            assert outcome.status == "sent", outcome
        ours = time.perf_counter() - start
        assert len(mailbox.received) == len(digests)

        rendered = [
            digest_message(settings, "team@lab.example", digest, SUB, None).as_bytes(
                policy=SMTP_POLICY
            )
            for digest in digests
        ]
        client_tls = ssl.create_default_context(cafile=str(cert))

        def bare() -> None:
            for data in rendered:
                with smtplib.SMTP("127.0.0.1", controller.port, timeout=10) as smtp:
                    smtp.starttls(context=client_tls)
                    smtp.login(USER, PASSWORD)
                    smtp.sendmail("papers@lab.example", ["team@lab.example"], data)

        start = time.perf_counter()
        await asyncio.to_thread(bare)
        baseline = time.perf_counter() - start
        assert len(mailbox.received) == 2 * len(digests)
    finally:
        controller.stop()
    return ours, baseline


async def bench_webhook(digests: list[list[DigestItem]]) -> tuple[float, float]:
    posts: list[bool] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver would

        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            posts.append(verify(SECRET, self.headers, raw))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            publisher = SignedWebhookPublisher(
                client,
                WebhookSettings(papers_per_message=len(digests[0])),
                environ={"HOOK": url, "HOOK_SECRET": SECRET},
            )
            destination = Destination("w", "webhook", "HOOK")
            start = time.perf_counter()
            for digest in digests:
                outcome = await publisher.send_digest(destination, digest, subscription=SUB)
                assert outcome.status == "sent", outcome
            ours = time.perf_counter() - start
            assert len(posts) == len(digests) and all(posts)

            bodies = [encode(digest_body(digest, SUB, None)) for digest in digests]
            start = time.perf_counter()
            for raw in bodies:
                response = await client.post(
                    url, content=raw, headers={"Content-Type": "application/json"}
                )
                assert response.status_code == 204
            baseline = time.perf_counter() - start
    finally:
        server.shutdown()
        server.server_close()
    return ours, baseline


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--papers", type=int, default=10)
    args = parser.parse_args()
    # aiosmtpd logs a deprecation of its own on every login; not ours to show.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    pool = items()
    digests = [
        [pool[(n * args.papers + k) % len(pool)] for k in range(args.papers)]
        for n in range(args.messages)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        email_ours, email_bare = await bench_email(digests, Path(tmp))
    hook_ours, hook_bare = await bench_webhook(digests)
    count = args.messages
    print(f"{count} digests of {args.papers} papers each, one message per digest")
    print(f"email  (STARTTLS + AUTH, one session a mail): {rate(count, email_ours)}")
    print(f"  bare smtplib session, pre-rendered bytes:   {rate(count, email_bare)}")
    print(f"  ratio {email_ours / email_bare:.2f}x")
    print(f"signed webhook (verified by the receiver):    {rate(count, hook_ours)}")
    print(f"  bare httpx POST, pre-encoded, unsigned:     {rate(count, hook_bare)}")
    print(f"  ratio {hook_ours / hook_bare:.2f}x")


if __name__ == "__main__":
    asyncio.run(main())
