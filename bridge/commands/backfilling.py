"""`paperbridge backfill`: load past listings, resumably."""

from __future__ import annotations

import asyncio
import sys
from datetime import date
from urllib.parse import urlsplit

from bridge.app import build_fetcher, open_bridge
from bridge.backfill import DayRun, check_arguments, hf_interval, summary
from bridge.config import Settings
from bridge.sources.arxiv import ArxivSource
from bridge.sources.hf import FIRST_LISTING_DAY, HuggingFaceSource


async def backfill(
    settings: Settings,
    *,
    start: date | None,
    end: date,
    arxiv_categories: str | None,
    hf: bool,
    restart: bool,
    retry_failed: bool = False,
) -> int:
    """Load past listings (bridge.backfill); 1 when some day failed and was skipped."""
    # Every argument is checked before the first request.
    cats = check_arguments(start, end, arxiv_categories=arxiv_categories, hf=hf)
    hf_start = max(start or FIRST_LISTING_DAY, FIRST_LISTING_DAY)
    if hf and ((start is not None and start < FIRST_LISTING_DAY) or end < FIRST_LISTING_DAY):
        # Earlier days would be asked for and found empty without a word.
        then = "loading them from there" if end >= FIRST_LISTING_DAY else "none in this range"
        print(
            f"backfill: Hugging Face Daily Papers start on {FIRST_LISTING_DAY}; {then}",
            file=sys.stderr,
        )
    has_token = settings.hf_token is not None
    interval = hf_interval(has_token)
    allowed = (
        "1,000 requests per 5 minutes with HF_TOKEN"
        if has_token
        else ("500 requests per 5 minutes without a token; set HF_TOKEN for 1,000")
    )
    outcomes = []
    async with open_bridge(settings) as bridge:
        hf_host = urlsplit(settings.sources.hf.base_url).netloc
        hf_fetcher = build_fetcher(settings, bridge.store, extra_intervals={hf_host: interval})
        async with hf_fetcher:
            if hf and hf_start <= end:
                print(f"backfill: Hugging Face allows {allowed}", file=sys.stderr)
                source = HuggingFaceSource(settings.sources.hf, hf_fetcher)
                run = DayRun(
                    bridge.store,
                    source,
                    "backfill:hf",
                    interval=interval,
                    fetched=lambda: hf_fetcher.requests,
                )
                outcome = await run.run(hf_start, end, restart=restart, retry_failed=retry_failed)
                outcomes.append(outcome)
            if cats and start is not None:
                arxiv_settings = settings.sources.arxiv.model_copy(update={"categories": cats})
                arxiv = ArxivSource(arxiv_settings, bridge.fetcher)
                job = f"backfill:arxiv:{'+'.join(cats)}:{start.isoformat()}"
                run = DayRun(
                    bridge.store,
                    arxiv,
                    job,
                    interval=settings.sources.arxiv.min_interval_seconds,
                    fetched=lambda: bridge.fetcher.requests,
                )
                outcome = await run.run(start, end, restart=restart, retry_failed=retry_failed)
                outcomes.append(outcome)
        total = await asyncio.to_thread(bridge.store.count_papers)
    text, ok = summary(outcomes, "paperbridge backfill --retry-failed (with the same --from/--to)")
    if text:
        print(text, file=sys.stderr)
    print(f"backfill done; the store holds {total} papers")
    return 0 if ok else 1
