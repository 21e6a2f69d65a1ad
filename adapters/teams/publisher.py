"""Digests to Microsoft Teams through a Workflows webhook (Teams' "Post to a channel when a
webhook request is received" template): ``teams:ENV_NAME`` names the environment variable
holding the workflow's URL, a secret (its ``sig`` parameter lets anyone post), never logged.

A 429 is waited out after its Retry-After (or handed to the ledger when long) and a 5xx is
tried again (``adapters.chat_post``); any other 4xx pauses the destination: the workflow was
deleted or turned off (404, 401, 403) or refused the card (400), and sending it again would not
help.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from adapters.chat_post import Sleep, json_body, post_in_order, retry_after_header, short
from adapters.secret_logs import keep_url_out_of_logs, mask
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


class TeamsPublisher:
    """Posts digests and notices to ``teams`` destinations."""

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
        cards = digest_messages(items, subscription, run, self.max_papers_per_message)
        return await self._post_all(destination, cards)

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        return await self._post_all(destination, [notice_message(notice)])

    async def _post_all(
        self, destination: Destination, cards: Sequence[dict[str, Any]]
    ) -> SendOutcome:
        url = self.environ.get(destination.address, "").strip()
        if not WEBHOOK_URL.fullmatch(url):
            return SendOutcome.permanent(
                f"environment variable {destination.address} does not hold a Teams workflow URL"
            )
        keep_url_out_of_logs(url)
        return await post_in_order(
            self.client,
            url,
            cards,
            classify=_outcome,
            platform="the Teams workflow",
            sleep=self.sleep,
        )


def _outcome(response: httpx.Response) -> SendOutcome:
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
