"""Digests to Matrix rooms: ``PUT /_matrix/client/v3/rooms/{roomId}/send/m.room.message/{txnId}``
on the homeserver in ``[outputs.matrix] homeserver_url``, as the user whose access token is in
``MATRIX_ACCESS_TOKEN`` (sent in the Authorization header, never logged), to ``matrix:!room:server``
destinations (the bot user must have joined the room).

Each message's transaction id is derived from what it carries (the digest run's destination,
subscription and slot, the batch, the chunk and its papers): a retry after a lost answer or a
crash re-sends the same id, and the homeserver answers with the event it already made instead
of posting twice. A 429 ``M_LIMIT_EXCEEDED`` is waited out after its ``retry_after_ms`` (handed
to the ledger when long), a 5xx tried again; 401 (token refused), 403 (not in the room), 404
and 400 pause the destination.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from adapters.chat_post import Sleep, json_body, retry_after_header, send_with_retries, short
from adapters.chat_text import header_lines, notice_text, paper_lines
from adapters.matrix.markup import HTML, PLAIN
from adapters.secret_logs import keep_out_of_logs, mask
from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
)

KIND = "matrix"
TOKEN_VARIABLE = "MATRIX_ACCESS_TOKEN"
# Matrix events are at most 65,536 bytes of JSON; the content stays well under.
CONTENT_BYTES_MAX = 48_000


class MatrixPublisher:
    """Posts digests and notices to ``matrix`` destinations."""

    kind = KIND

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        homeserver: str,
        token: str,
        papers_per_message: int = 5,
        sleep: Sleep = asyncio.sleep,
        today: Callable[[], str] | None = None,
    ) -> None:
        self.client = client
        self.homeserver = homeserver.rstrip("/")
        self.token = token.strip()
        self.max_papers_per_message = papers_per_message
        self.sleep = sleep
        self.today = today or (lambda: datetime.now(UTC).date().isoformat())
        if self.token:
            keep_out_of_logs(self.token)

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome:
        per = self.max_papers_per_message
        head = (
            "<br>".join(header_lines(HTML, len(items), subscription, run, per)),
            "\n".join(header_lines(PLAIN, len(items), subscription, run, per)),
        )
        blocks = [
            ("<br>".join(paper_lines(HTML, item)), "\n".join(paper_lines(PLAIN, item)))
            for item in items
        ]
        contents = pack(head, blocks)
        # What makes this batch itself: a retry of it gets the same transaction ids. Not the
        # run's message count: a run restarted after a crash counts from 0 again, and its
        # resent batch must keep the id it had.
        which = [
            destination.id,
            run.subscription_id if run else (subscription.id if subscription else ""),
            run.slot.isoformat() if run and run.slot else "",
            *(item.stored.paper.arxiv_id for item in items),
        ]
        if not items or run is None or run.slot is None:
            which.append(self.today())  # an all-quiet note or a "now" run: one per day
        return await self._post_all(destination, contents, "|".join(which))

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        content = _content("<p>" + notice_text(HTML, notice) + "</p>", notice_text(PLAIN, notice))
        return await self._post_all(destination, [content], f"notice|{notice.id}")

    async def _post_all(
        self, destination: Destination, contents: Sequence[dict[str, Any]], batch: str
    ) -> SendOutcome:
        if not self.token:
            return SendOutcome.permanent(f"{TOKEN_VARIABLE} is not set")
        room = quote(destination.address, safe="")
        for chunk, content in enumerate(contents):
            txn = transaction_id(batch, chunk)
            url = f"{self.homeserver}/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}"
            outcome = await send_with_retries(
                self.client,
                "PUT",
                url,
                body=content,
                classify=_outcome,
                platform="the Matrix homeserver",
                sleep=self.sleep,
                headers={"Authorization": f"Bearer {self.token}"},
            )
            if outcome.status != "sent":
                return outcome
        return SendOutcome.sent()


def transaction_id(batch: str, chunk: int) -> str:
    """A transaction id (URL-safe, stable across processes) for one message of a batch."""
    return "pb" + hashlib.sha256(f"{batch}|{chunk}".encode()).hexdigest()[:40]


def _content(formatted: str, body: str) -> dict[str, Any]:
    return {
        "msgtype": "m.notice",  # a bot's message: clients and bridges do not answer it
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
        "m.mentions": {},
    }


def pack(
    head: tuple[str, str], blocks: Sequence[tuple[str, str]], limit: int = CONTENT_BYTES_MAX
) -> list[dict[str, Any]]:
    """Header and papers (html, plain) as message contents, each at most ``limit`` bytes of
    JSON, a paper never split across two."""
    groups: list[list[tuple[str, str]]] = [[head]]
    for block in blocks:
        if _size(groups[-1] + [block]) > limit:
            groups.append([])
        groups[-1].append(block)
    return [
        _content(
            "".join(f"<p>{html}</p>" for html, _ in group),
            "\n\n".join(plain for _, plain in group),
        )
        for group in groups
        if group
    ]


def _size(group: Sequence[tuple[str, str]]) -> int:
    formatted = "".join(f"<p>{html}</p>" for html, _ in group)
    plain = "\n\n".join(plain for _, plain in group)
    return len(json.dumps(_content(formatted, plain)).encode())


def _outcome(response: httpx.Response) -> SendOutcome:
    status = response.status_code
    body = json_body(response)
    if 200 <= status < 300:
        return SendOutcome.sent()
    what = mask(short(f"{status} {body.get('errcode', '')} {body.get('error', '')}"))
    if status == 429:
        ms = body.get("retry_after_ms")
        seconds = (
            ms / 1000
            if isinstance(ms, int | float) and not isinstance(ms, bool)
            else retry_after_header(response)
        )
        return SendOutcome.retry("rate limited (429 M_LIMIT_EXCEEDED)", seconds)
    if status >= 500:
        return SendOutcome.retry(f"the homeserver answered {what}")
    return SendOutcome.permanent(f"the homeserver refused the message ({what})")
