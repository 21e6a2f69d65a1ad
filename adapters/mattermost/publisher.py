"""Digests through Mattermost or Rocket.Chat incoming webhooks (Slack-compatible: a JSON body
with ``text`` in markdown). The destination ``mattermost:ENV_NAME`` names the environment
variable holding the webhook URL, which is a secret: it is never logged nor shown in a reason.

A 429 is waited out after its Retry-After (or handed to the ledger when long) and a 5xx is
tried again (``adapters.chat_post``); any other 4xx pauses the destination: the webhook was
deleted or disabled (Mattermost answers 400 or 404, Rocket.Chat 404), or the message was
refused, and sending it again would not help.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence

import httpx

from adapters.chat_post import Sleep, json_body, post_in_order, retry_after_header, short
from adapters.chat_text import header_lines, notice_text, paper_lines, split_text
from adapters.mattermost.markup import MARKUP
from adapters.secret_logs import keep_url_out_of_logs, mask
from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
)

KIND = "mattermost"
# Mattermost: https://chat.example.org/hooks/ID; Rocket.Chat: https://chat.example.org/hooks/ID/TOKEN
WEBHOOK_URL = re.compile(r"https?://[^\s/?#]+(?:/[^\s?#]*)?/hooks/[A-Za-z0-9_/.-]+")
# Rocket.Chat's default message size; Mattermost takes 16,383. Longer digests are split.
TEXT_MAX = 4000


class MattermostPublisher:
    """Posts digests and notices to ``mattermost`` destinations."""

    kind = KIND

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
        return await self._post_all(destination, split_text("\n".join(head), blocks, TEXT_MAX))

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        return await self._post_all(destination, [notice_text(MARKUP, notice)[:TEXT_MAX]])

    async def _post_all(self, destination: Destination, texts: Sequence[str]) -> SendOutcome:
        url = self.environ.get(destination.address, "").strip()
        if not WEBHOOK_URL.fullmatch(url):
            return SendOutcome.permanent(
                f"environment variable {destination.address} does not hold a Mattermost or"
                " Rocket.Chat webhook URL (https://HOST/hooks/ID)"
            )
        keep_url_out_of_logs(url)
        return await post_in_order(
            self.client,
            url,
            [{"text": text} for text in texts],
            classify=_outcome,
            platform="the Mattermost webhook",
            sleep=self.sleep,
        )


def _outcome(response: httpx.Response) -> SendOutcome:
    status = response.status_code
    if 200 <= status < 300:
        return SendOutcome.sent()
    body = json_body(response)
    said = body.get("message") or body.get("error") or response.reason_phrase
    what = mask(short(f"{status} {said}"))
    if status == 429:
        return SendOutcome.retry("rate limited (429)", retry_after_header(response))
    if status >= 500:
        return SendOutcome.retry(f"the webhook answered {what}")
    return SendOutcome.permanent(f"the webhook is gone or refused the message ({what})")
