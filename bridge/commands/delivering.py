"""`paperbridge deliver`: one sweep of the ledger, as `serve` does on schedule."""

from __future__ import annotations

import asyncio
import sys

from bridge.chat import ChatService
from bridge.config import Settings
from bridge.ledger import build_ledger, sync_configured
from bridge.outputs import OutputContext, running_outputs
from bridge.store import open_store


async def deliver(settings: Settings, *, now: bool) -> int:
    """One sweep of the ledger: new matches in, due digests out (``now``: everything pending)."""
    store = open_store(settings.store.database_url)
    try:
        ledger = build_ledger(store, settings)
        await asyncio.to_thread(sync_configured, ledger, settings)
        context = OutputContext(settings, store, ledger, ChatService(store, ledger, settings))
        async with running_outputs(context, listen=False):
            report = await ledger.sweep(force=now)
    finally:
        store.close()
    outcomes: dict[str, int] = {}
    for result in report.digests.values():
        outcomes[result] = outcomes.get(result, 0) + 1
    summary = ", ".join(f"{n} {result}" for result, n in sorted(outcomes.items())) or "none due"
    print(
        f"{report.enqueued} queued, {report.recovered} recovered; digests: {summary}",
        file=sys.stderr,
    )
    return 1 if outcomes.get("retry") or outcomes.get("permanent") else 0
