"""POSTs signed digest messages to ``webhook:ENV_NAME`` destinations.

Outcomes follow HTTP: 2xx is delivered; 429 and 5xx (and 408) are retried by the ledger after
the ``Retry-After`` the receiver gave (seconds or an HTTP date), or its own backoff; any other
answer (4xx, or a redirect: one is never followed, the body and signature go only where the
operator said) pauses the destination. A timeout after the request went out may have been
delivered: it is retried marked uncertain (each paper then carries ``"uncertain": true``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from adapters.secret_logs import keep_url_out_of_logs
from adapters.webhook.body import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    digest_body,
    encode,
    notice_body,
    signature,
)
from adapters.webhook.settings import KIND, WebhookSettings, endpoint_problem, secret_name
from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
)

USER_AGENT = "paperbridge-webhook/1"


class SignedWebhookPublisher:
    kind = KIND

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: WebhookSettings,
        *,
        environ: Mapping[str, str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.max_papers_per_message = settings.papers_per_message
        self.environ = environ
        self.clock = clock

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome:
        return await self.post(destination, digest_body(items, subscription, run))

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        return await self.post(destination, notice_body(notice))

    async def post(self, destination: Destination, body: dict[str, Any]) -> SendOutcome:
        address = destination.address
        if problem := endpoint_problem(address, self.environ):
            return SendOutcome.permanent(problem)
        url = self.environ[address].strip()
        secret = self.environ[secret_name(address)]
        raw = encode(body)
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(secret, timestamp, raw),
        }
        # The URL is a secret (it may carry a token): reasons name the variable, never the URL,
        # and the HTTP client's request log masks it.
        keep_url_out_of_logs(url)
        where = f"webhook {address}"
        try:
            response = await self.client.post(url, content=raw, headers=headers)
        except httpx.TimeoutException as exc:
            return SendOutcome.retry(
                f"{where} did not answer in time",
                maybe_sent=not isinstance(exc, httpx.ConnectTimeout),
            )
        except httpx.TransportError as exc:
            return SendOutcome.retry(
                f"cannot reach {where}: {type(exc).__name__}",
                maybe_sent=not isinstance(exc, httpx.ConnectError),
            )
        return outcome(response.status_code, response.headers.get("retry-after"), where)


def outcome(status: int, retry_after: str | None, where: str) -> SendOutcome:
    if 200 <= status < 300:
        return SendOutcome.sent()
    if status in (408, 429) or status >= 500:
        return SendOutcome.retry(f"{where} answered {status}", retry_after_seconds(retry_after))
    if 300 <= status < 400:
        return SendOutcome.permanent(f"{where} answered {status}: redirects are not followed")
    return SendOutcome.permanent(f"{where} answered {status}")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now: a number, or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
