"""The one HTTP session and Web API client the Slack app posts with."""

from __future__ import annotations

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bridge.config import SlackSettings


def open_session(settings: SlackSettings) -> aiohttp.ClientSession:
    """A pooled session; its timeout is the one that counts (the SDK's own ``timeout`` only
    applies to sessions it opens itself)."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=settings.request_timeout_seconds),
        connector=aiohttp.TCPConnector(limit=256),
    )


def web_client(settings: SlackSettings, session: aiohttp.ClientSession) -> AsyncWebClient:
    # No SDK retries: a retried chat.postMessage can post twice, and the publisher decides
    # what is safe to send again (adapters.slack.publisher).
    return AsyncWebClient(
        base_url=settings.api_base_url,
        session=session,
        timeout=int(settings.request_timeout_seconds),
        retry_handlers=[],
    )
