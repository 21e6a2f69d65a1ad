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

import httpx

from adapters.chat_post import EnvUrlPublisher, json_body, retry_after_header, short
from adapters.secret_logs import mask
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
    def classify(response: httpx.Response) -> SendOutcome:
        status = response.status_code
        if 200 <= status < 300:
            return SendOutcome.sent()
        body = json_body(response)
        error = body.get("error")
        said = (error.get("message") if isinstance(error, dict) else None) or response.reason_phrase
        what = mask(short(f"{status} {said}"))
        if status == 429:
            return SendOutcome.retry("rate limited (429)", retry_after_header(response))
        if status >= 500:
            return SendOutcome.retry(f"the workflow answered {what}")
        return SendOutcome.permanent(f"the workflow is gone or refused the card ({what})")
