"""A delivery process for the email and webhook kill -9 tests: sweeps the ledger through the
real email or signed-webhook publisher until nothing is due, then exits.

Run as ``python -m tests.output_crash_worker DATABASE_URL KIND PAPERS_PER_MESSAGE CONCURRENCY``
(KIND: mailto or webhook). Where to send comes from the environment: SMTP_PORT and SMTP_CA
(a local server with STARTTLS and AUTH, the password in PAPERBRIDGE_SMTP_PASSWORD), or the
URL and secret the webhook destinations name.
"""

from __future__ import annotations

import asyncio
import os
import sys

import httpx

from adapters.email.publisher import EmailPublisher
from adapters.email.settings import PASSWORD_ENV, EmailSettings
from adapters.webhook.publisher import SignedWebhookPublisher
from adapters.webhook.settings import WebhookSettings
from bridge.config import DeliverySettings
from bridge.ledger import Ledger
from bridge.store import open_store


async def main(url: str, kind: str, per_message: int, concurrency: int) -> int:
    store = open_store(url)
    async with httpx.AsyncClient(timeout=10) as client:
        if kind == "mailto":
            publisher: EmailPublisher | SignedWebhookPublisher = EmailPublisher(
                EmailSettings(
                    host="127.0.0.1",
                    port=int(os.environ["SMTP_PORT"]),
                    security="starttls",
                    sender="papers@lab.example",
                    username="bridge",
                    password=os.environ[PASSWORD_ENV],
                    ca_file=os.environ["SMTP_CA"],
                    papers_per_message=per_message,
                )
            )
        else:
            publisher = SignedWebhookPublisher(
                client, WebhookSettings(papers_per_message=per_message), environ=os.environ
            )
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
