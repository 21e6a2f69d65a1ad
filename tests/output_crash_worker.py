"""A delivery process for the outputs' kill -9 tests: sweeps the ledger through the real
publisher of one output until nothing is due, then exits.

Run as ``python -m tests.output_crash_worker DATABASE_URL KIND PAPERS_PER_MESSAGE CONCURRENCY``
(KIND: mailto, webhook, mattermost, teams, telegram or matrix). Where to send comes from the
environment: SMTP_PORT and SMTP_CA (a local server with STARTTLS and AUTH, the password in
PAPERBRIDGE_SMTP_PASSWORD); the URL (and secret) each webhook, Mattermost or Teams destination
names; CHAT_API and CHAT_TOKEN (the local fake's address and the bot or access token) for
Telegram and Matrix.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

import httpx

from adapters.email.publisher import EmailPublisher
from adapters.email.settings import PASSWORD_ENV, EmailSettings
from adapters.matrix.publisher import MatrixPublisher
from adapters.mattermost.publisher import MattermostPublisher
from adapters.teams.publisher import TeamsPublisher
from adapters.telegram.publisher import TelegramPublisher
from adapters.webhook.publisher import SignedWebhookPublisher
from adapters.webhook.settings import WebhookSettings
from bridge.config import DeliverySettings
from bridge.ledger import Ledger
from bridge.publisher import Publisher
from bridge.store import open_store

# Telegram's pacing (30 messages/s per bot, 1 s between messages to one private chat) runs on
# a clock this many times faster, so a 60-chat fan-out takes about as long as the other
# outputs' while the real Pacer still spaces every message.
TELEGRAM_SPEEDUP = 10.0


async def _fast_sleep(seconds: float) -> None:
    await asyncio.sleep(seconds / TELEGRAM_SPEEDUP)


def _publisher(kind: str, client: httpx.AsyncClient, per_message: int) -> Publisher:
    env = os.environ
    if kind == "mailto":
        return EmailPublisher(
            EmailSettings(
                host="127.0.0.1",
                port=int(env["SMTP_PORT"]),
                security="starttls",
                sender="papers@lab.example",
                username="bridge",
                password=env[PASSWORD_ENV],
                ca_file=env["SMTP_CA"],
                papers_per_message=per_message,
            )
        )
    if kind == "webhook":
        return SignedWebhookPublisher(
            client, WebhookSettings(papers_per_message=per_message), environ=env
        )
    if kind == "mattermost":
        return MattermostPublisher(client, environ=env, papers_per_message=per_message)
    if kind == "teams":
        return TeamsPublisher(client, environ=env, papers_per_message=per_message)
    if kind == "telegram":
        return TelegramPublisher(
            client,
            token=env["CHAT_TOKEN"],
            api_base=env["CHAT_API"],
            papers_per_message=per_message,
            sleep=_fast_sleep,
            clock=lambda: time.monotonic() * TELEGRAM_SPEEDUP,
        )
    if kind == "matrix":
        return MatrixPublisher(
            client,
            homeserver=env["CHAT_API"],
            token=env["CHAT_TOKEN"],
            papers_per_message=per_message,
        )
    raise SystemExit(f"unknown kind {kind!r}")


async def main(url: str, kind: str, per_message: int, concurrency: int) -> int:
    store = open_store(url)
    async with httpx.AsyncClient(timeout=10) as client:
        publisher = _publisher(kind, client, per_message)
        try:
            ledger = Ledger(store, {kind: publisher}, DeliverySettings(concurrency=concurrency))
            while True:
                report = await ledger.sweep()
                if not report.digests:
                    return 0
                if any(r not in ("sent", "empty", "quiet") for r in report.digests.values()):
                    print(f"unexpected: {report.digests}", file=sys.stderr)
                    return 1
        finally:
            store.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    raise SystemExit(asyncio.run(main(args[0], args[1], int(args[2]), int(args[3]))))
