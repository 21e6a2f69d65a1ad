"""Composition root: builds every long-lived resource from Settings and owns their lifetimes."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from bridge.config import Settings
from bridge.fetch import Fetcher
from bridge.poller import Poller
from bridge.sources.arxiv import ArxivSource
from bridge.sources.base import Source
from bridge.sources.hf import HuggingFaceSource
from bridge.store import Store, open_store

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Bridge:
    """The running pieces, shared by every command and output."""

    settings: Settings
    store: Store
    fetcher: Fetcher
    sources: list[Source]
    poller: Poller


def build_fetcher(
    settings: Settings,
    store: Store | None = None,
    *,
    extra_intervals: dict[str, float] | None = None,
) -> Fetcher:
    """The one HTTP client; ``extra_intervals`` spaces requests to more hosts (backfill)."""
    arxiv = settings.sources.arxiv
    min_interval = {
        urlsplit(arxiv.rss_base_url).netloc: arxiv.min_interval_seconds,
        urlsplit(arxiv.api_base_url).netloc: arxiv.min_interval_seconds,
        **(extra_intervals or {}),
    }
    return Fetcher(
        user_agent=settings.fetch.user_agent,
        timeout=settings.fetch.timeout_seconds,
        deadline=settings.fetch.deadline_seconds,
        max_attempts=settings.fetch.max_attempts,
        backoff_base=settings.fetch.backoff_base_seconds,
        backoff_max=settings.fetch.backoff_max_seconds,
        min_interval=min_interval,
        validators=store,
        host_headers=_hf_token_header(settings),
    )


def _hf_token_header(settings: Settings) -> dict[str, dict[str, str]]:
    """HF_TOKEN as a bearer token for the HF host alone (a token doubles HF's allowance)."""
    if settings.hf_token is None:
        return {}
    host = urlsplit(settings.sources.hf.base_url).hostname or ""
    return {host: {"Authorization": f"Bearer {settings.hf_token.get_secret_value()}"}}


def build_sources(settings: Settings, fetcher: Fetcher) -> list[Source]:
    sources: list[Source] = []
    if settings.sources.hf.enabled:
        sources.append(HuggingFaceSource(settings.sources.hf, fetcher))
    if settings.sources.arxiv.enabled:
        sources.append(ArxivSource(settings.sources.arxiv, fetcher))
    return sources


@contextlib.asynccontextmanager
async def open_bridge(settings: Settings) -> AsyncIterator[Bridge]:
    """Open the store, the shared HTTP client and the sources; close them all on exit."""
    async with contextlib.AsyncExitStack() as stack:
        store = open_store(settings.store.database_url)
        stack.callback(store.close)
        fetcher = await stack.enter_async_context(build_fetcher(settings, store))
        sources = build_sources(settings, fetcher)
        poller = Poller(store, fetcher, sources, first_run=settings.first_run.announce)
        yield Bridge(settings, store, fetcher, sources, poller)
