"""Digests through Mattermost or Rocket.Chat incoming webhooks (Slack-compatible: a JSON body
with ``text`` in markdown). The destination ``mattermost:ENV_NAME`` names the environment
variable holding the webhook URL, which is a secret: it is never logged nor shown in a reason.

A 429 is waited out after its Retry-After (or handed to the ledger when long) and a 5xx is
tried again (``adapters.chat_post``); any other 4xx pauses the destination: the webhook was
deleted or disabled (Mattermost answers 400 or 404, Rocket.Chat 404), or the message was
refused, and sending it again would not help.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from adapters.chat_post import EnvUrlPublisher
from adapters.chat_text import header_lines, notice_text, paper_lines, split_text
from adapters.mattermost.markup import MARKUP
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


class MattermostPublisher(EnvUrlPublisher):
    """Posts digests and notices to ``mattermost`` destinations."""

    kind = KIND
    url_pattern = WEBHOOK_URL
    url_described = "a Mattermost or Rocket.Chat webhook URL (https://HOST/hooks/ID)"
    platform = "the Mattermost webhook"
    receiver = "the webhook"
    refused = "message"

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
        texts = split_text("\n".join(head), blocks, TEXT_MAX)
        return await self.post_all(destination, [{"text": text} for text in texts])

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        return await self.post_all(destination, [{"text": notice_text(MARKUP, notice)[:TEXT_MAX]}])

    @staticmethod
    def error_text(body: dict[str, Any]) -> Any:
        return body.get("message") or body.get("error")
