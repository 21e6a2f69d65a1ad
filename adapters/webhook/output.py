"""The signed webhook output as ``serve`` and ``deliver`` run it: one HTTP client for every
``webhook:`` destination, opened on start and closed on stop; no routes."""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx
from starlette.routing import BaseRoute

from adapters.webhook.publisher import USER_AGENT, SignedWebhookPublisher
from adapters.webhook.settings import KIND, WebhookSettings, configured, webhook_settings
from bridge.outputs import OutputContext
from bridge.publisher import Publisher


class WebhookOutput:
    name = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        # Redirects are never followed: the signed body goes only to the configured URL.
        self.client = httpx.AsyncClient(
            timeout=settings.timeout, follow_redirects=False, headers={"User-Agent": USER_AGENT}
        )
        self.publisher = SignedWebhookPublisher(self.client, settings, environ=os.environ)

    def publishers(self) -> Mapping[str, Publisher]:
        return {KIND: self.publisher}

    def routes(self) -> list[BaseRoute]:
        return []

    async def start(self, *, listen: bool) -> None:
        return None

    async def stop(self) -> None:
        await self.client.aclose()


def webhook_output(context: OutputContext) -> WebhookOutput | None:
    """None when no webhook: destination is declared (and no [outputs.webhook] section)."""
    if not configured(context.settings):
        return None
    return WebhookOutput(webhook_settings(context.settings))
