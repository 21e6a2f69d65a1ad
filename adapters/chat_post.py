"""One chat message sent over HTTP with the retries every webhook-style output shares: a 429
waited out when its Retry-After is short (handed to the ledger as a retry otherwise), a 5xx
tried again twice with a short pause, and a timeout or dropped connection reported as a retry
that may have posted (the ledger re-sends it marked uncertain). What each status means is the
platform's to say (``classify``)."""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import httpx

from adapters.secret_logs import keep_url_out_of_logs, mask
from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
)

log = logging.getLogger(__name__)

# Longest wait taken inside one send; a longer one goes back to the ledger.
MAX_WAIT_SECONDS = 10.0
ATTEMPTS = 3  # per message, for 429s and 5xx

Sleep = Callable[[float], Awaitable[object]]
Classify = Callable[[httpx.Response], SendOutcome]


async def send_with_retries(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    body: Any,
    classify: Classify,
    platform: str,
    sleep: Sleep = asyncio.sleep,
    headers: dict[str, str] | None = None,
) -> SendOutcome:
    outcome = SendOutcome.retry("no attempt made")
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = await client.request(method, url, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            sent_maybe = not isinstance(exc, httpx.ConnectTimeout)
            return SendOutcome.retry(f"{platform} did not answer in time", maybe_sent=sent_maybe)
        except httpx.TransportError as exc:
            sent_maybe = not isinstance(exc, httpx.ConnectError)
            return SendOutcome.retry(
                mask(f"cannot reach {platform}: {exc.__class__.__name__}"), maybe_sent=sent_maybe
            )
        outcome = classify(response)
        if outcome.status != "retry" or attempt == ATTEMPTS:
            break
        delay = outcome.retry_after if outcome.retry_after is not None else 0.5 * 2**attempt
        if delay > MAX_WAIT_SECONDS:
            break
        log.info("%s: %s; trying again in %.1f s", platform, outcome.reason, delay)
        await sleep(delay)
    return outcome


async def post_in_order(
    client: httpx.AsyncClient,
    url: str,
    bodies: Sequence[Any],
    *,
    classify: Classify,
    platform: str,
    sleep: Sleep = asyncio.sleep,
) -> SendOutcome:
    """POST each message of one digest or notice to ``url`` in turn (``send_with_retries``);
    the first that is not sent ends it, and its outcome is the digest's."""
    for body in bodies:
        outcome = await send_with_retries(
            client, "POST", url, body=body, classify=classify, platform=platform, sleep=sleep
        )
        if outcome.status != "sent":
            return outcome
    return SendOutcome.sent()


class EnvUrlPublisher(ABC):
    """A publisher that POSTs every message of a digest or notice, in order, to one webhook URL
    held by the environment variable its destination names (``KIND:ENV_NAME``). The URL is a
    secret (whoever has it can post), so a reason names the variable, never the URL, and the
    HTTP client's request log masks it. A platform says what its URLs look like, what to call
    it in a reason and what its answers mean (``classify``); it builds the message bodies."""

    kind: str  # the destination kind (a class attribute; the Publisher protocol reads it)
    url_pattern: ClassVar[re.Pattern[str]]
    url_described: ClassVar[str]  # "a Teams workflow URL": what the variable must hold
    platform: ClassVar[str]  # "the Teams workflow": who did not answer, in a retry's reason
    # How an answer's reason names the receiver and what it refused: "the workflow", "card".
    receiver: ClassVar[str]
    refused: ClassVar[str]

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        environ: Mapping[str, str],
        papers_per_message: int = 5,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.client = client
        self.environ = environ
        self.max_papers_per_message = papers_per_message
        self.sleep = sleep

    @abstractmethod
    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome: ...

    @abstractmethod
    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome: ...

    @staticmethod
    @abstractmethod
    def error_text(body: dict[str, Any]) -> Any:
        """What the platform's JSON error body says went wrong (falsy: nothing)."""

    def classify(self, response: httpx.Response) -> SendOutcome:
        """A 2xx is sent; a 429 (after its Retry-After) and a 5xx are tried again; any other
        answer means the webhook is gone or refused the message: sending it again would not
        help, so the destination pauses."""
        status = response.status_code
        if 200 <= status < 300:
            return SendOutcome.sent()
        said = self.error_text(json_body(response)) or response.reason_phrase
        what = mask(short(f"{status} {said}"))
        if status == 429:
            return SendOutcome.retry("rate limited (429)", retry_after_header(response))
        if status >= 500:
            return SendOutcome.retry(f"{self.receiver} answered {what}")
        return SendOutcome.permanent(
            f"{self.receiver} is gone or refused the {self.refused} ({what})"
        )

    async def post_all(self, destination: Destination, bodies: Sequence[Any]) -> SendOutcome:
        url = self.environ.get(destination.address, "").strip()
        if not self.url_pattern.fullmatch(url):
            return SendOutcome.permanent(
                f"environment variable {destination.address} does not hold {self.url_described}"
            )
        keep_url_out_of_logs(url)
        return await post_in_order(
            self.client,
            url,
            bodies,
            classify=self.classify,
            platform=self.platform,
            sleep=self.sleep,
        )


def retry_after_header(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the HTTP-date form is not used by chat APIs)."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def short(text: str, limit: int = 200) -> str:
    """An error text from the platform, one line and bounded, for a pause reason."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
