"""Digests through a Telegram bot: ``POST {api}/bot{TOKEN}/sendMessage`` with ``parse_mode =
HTML``, to ``telegram:CHAT_ID`` destinations (a chat id such as ``-1001234567890``, or a public
channel's ``@name``). The token comes from ``TELEGRAM_BOT_TOKEN``; it sits in the request path,
so it is masked in logs and never put in a reason.

Telegram's limits are kept here: a message is at most 4,096 characters (counted in UTF-16
after the tags are read; the HTML is measured, which is never shorter), so a digest is split
between papers; a bot sends at most ~30 messages a second overall and ~20 a minute to one
group, so posts are paced (``Pacer``): short waits are slept, a long one goes back to the
ledger as a retry. A 429 carries ``parameters.retry_after``; 5xx are tried again. 400 (chat not
found, a group upgraded to a supergroup), 401 (token refused) and 403 (the bot was kicked or
blocked) pause the destination.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

from adapters.chat_post import (
    MAX_WAIT_SECONDS,
    Sleep,
    json_body,
    retry_after_header,
    send_with_retries,
    short,
)
from adapters.chat_text import header_lines, notice_text, paper_lines, split_text
from adapters.secret_logs import keep_out_of_logs, mask
from adapters.telegram.markup import MARKUP, utf16_length
from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
)

KIND = "telegram"
TOKEN_VARIABLE = "TELEGRAM_BOT_TOKEN"
DEFAULT_API = "https://api.telegram.org"
TEXT_MAX = 4096
# Telegram's FAQ: about 30 messages a second across chats, 20 a minute in one group.
GLOBAL_INTERVAL = 1 / 30
GROUP_INTERVAL = 60 / 20
PRIVATE_INTERVAL = 1.0


class Pacer:
    """When the next message may go: the bot's overall rate and each chat's own."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._next_any = 0.0
        self._next_in: dict[str, float] = {}

    def wait_for(self, chat_id: str) -> float:
        """Seconds until a message may go to ``chat_id`` (0: now)."""
        now = self.clock()
        return max(0.0, self._next_any - now, self._next_in.get(chat_id, 0.0) - now)

    def sent(self, chat_id: str) -> None:
        now = self.clock()
        self._next_any = max(self._next_any, now) + GLOBAL_INTERVAL
        # Groups and channels have negative ids or @names; a private chat is a user's id.
        group = chat_id.startswith(("-", "@"))
        self._next_in[chat_id] = now + (GROUP_INTERVAL if group else PRIVATE_INTERVAL)


class TelegramPublisher:
    """Posts digests and notices to ``telegram`` destinations."""

    kind = KIND

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        token: str,
        api_base: str = DEFAULT_API,
        papers_per_message: int = 5,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.token = token.strip()
        self.api_base = api_base.rstrip("/")
        self.max_papers_per_message = papers_per_message
        self.sleep = sleep
        self.pacer = Pacer(clock)
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
        head = header_lines(MARKUP, len(items), subscription, run, self.max_papers_per_message)
        blocks = ["\n".join(paper_lines(MARKUP, item)) for item in items]
        texts = split_text("\n".join(head), blocks, TEXT_MAX, utf16_length)
        return await self._post_all(destination, texts)

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        return await self._post_all(destination, [notice_text(MARKUP, notice)])

    async def _post_all(self, destination: Destination, texts: Sequence[str]) -> SendOutcome:
        if not self.token:
            return SendOutcome.permanent(f"{TOKEN_VARIABLE} is not set")
        chat_id = destination.address
        url = f"{self.api_base}/bot{self.token}/sendMessage"
        for text in texts:
            wait = self.pacer.wait_for(chat_id)
            if wait > MAX_WAIT_SECONDS:
                return SendOutcome.retry("pacing posts to this chat", retry_after=wait)
            if wait > 0:
                await self.sleep(wait)
            body = {
                "chat_id": chat_id,
                "text": text,
                "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True},
            }
            outcome = await send_with_retries(
                self.client,
                "POST",
                url,
                body=body,
                classify=_outcome,
                platform="Telegram",
                sleep=self.sleep,
            )
            self.pacer.sent(chat_id)
            if outcome.status != "sent":
                return outcome
        return SendOutcome.sent()


def _outcome(response: httpx.Response) -> SendOutcome:
    status = response.status_code
    body = json_body(response)
    if 200 <= status < 300 and body.get("ok", True):
        return SendOutcome.sent()
    said = mask(short(f"{status} {body.get('description') or response.reason_phrase}"))
    found = body.get("parameters")
    parameters: dict[str, Any] = found if isinstance(found, dict) else {}
    if status == 429:
        retry_after = parameters.get("retry_after")
        seconds = (
            float(retry_after)
            if isinstance(retry_after, int | float) and not isinstance(retry_after, bool)
            else retry_after_header(response)
        )
        return SendOutcome.retry("rate limited (429)", seconds)
    if status >= 500:
        return SendOutcome.retry(f"Telegram answered {said}")
    if "migrate_to_chat_id" in parameters:
        new_id = parameters["migrate_to_chat_id"]
        return SendOutcome.permanent(
            f"the group became a supergroup: use telegram:{new_id} instead ({said})"
        )
    return SendOutcome.permanent(f"Telegram refused the message ({said})")
