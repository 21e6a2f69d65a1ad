"""`paperbridge poll`: poll every source once and print what is new."""

from __future__ import annotations

import asyncio
import sys

from bridge.app import open_bridge
from bridge.config import Settings
from bridge.ledger import build_ledger, sync_configured
from bridge.paper_text import dumps, format_paper, paper_json
from bridge.poller import PollReport


def _print_report(report: PollReport, as_json: bool) -> None:
    if as_json:
        print(dumps([paper_json(p) for p in report.new]))
    else:
        for stored in report.new:
            print(format_paper(stored))
            print()
    for src in report.sources:
        status = f"error: {src.error}" if src.error else "ok"
        print(
            f"{src.source}: {len(src.new)} new, {len(src.revised)} revised, {src.merged} merged,"
            f" {src.skipped} unchanged, {src.problems} unreadable records,"
            f" {src.unstorable} unstorable records — {status}",
            file=sys.stderr,
        )


async def poll(settings: Settings, *, as_json: bool) -> int:
    async with open_bridge(settings) as bridge:
        ledger = build_ledger(bridge.store, settings)
        # Digests declared in the settings exist before the poll, so they get its papers, and
        # the matches are queued right after: a `poll`, then `deliver` later (cron) loses none.
        await asyncio.to_thread(sync_configured, ledger, settings)
        report = await bridge.poller.poll_once()
        await ledger.intake()
    _print_report(report, as_json)
    return 0 if report.ok else 1
