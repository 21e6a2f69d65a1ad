"""Digests to Microsoft Teams through a Workflows webhook (Teams' "Post to a channel when a
webhook request is received" template): ``teams:ENV_NAME`` names the environment variable
holding the workflow's URL, a secret (its ``sig`` parameter lets anyone post), never logged.

A 429 is waited out after its Retry-After (or handed to the ledger when long) and a 5xx is
tried again (``adapters.chat_post``); any other 4xx pauses the destination: the workflow was
deleted or turned off (404, 401, 403) or refused the card (400), and sending it again would not
help.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from adapters.chat_post import EnvUrlPublisher
from adapters.teams.card import digest_messages, notice_message
from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
)

KIND = "teams"
# Workflows URLs live on several Microsoft hosts (logic.azure.com, api.powerplatform.com);
# any web URL is accepted and the workflow's answer tells whether it is one.
WEBHOOK_URL = re.compile(r"https?://[^\s/?#]+/\S*")


class TeamsPublisher(EnvUrlPublisher):
    """Posts digests and notices to ``teams`` destinations."""

    kind = KIND
    url_pattern = WEBHOOK_URL
    url_described = "a Teams workflow URL"
    platform = "the Teams workflow"
    receiver = "the workflow"
    refused = "card"

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome:
        cards = digest_messages(items, subscription, run, self.max_papers_per_message)
        return await self.post_all(destination, cards)

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        return await self.post_all(destination, [notice_message(notice)])

    @staticmethod
    def error_text(body: dict[str, Any]) -> Any:
        error = body.get("error")
        return error.get("message") if isinstance(error, dict) else None
