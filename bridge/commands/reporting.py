"""`paperbridge status`: sources, subscriptions, destinations, deliveries, problems."""

from __future__ import annotations

import json

from bridge.commands.stores import open_existing
from bridge.config import Settings


def status(settings: Settings, *, as_json: bool) -> int:
    from bridge.status import format_status, status_report

    store = open_existing(settings)
    try:
        report = status_report(store, settings)
    finally:
        store.close()
    print(json.dumps(report, ensure_ascii=False, indent=2) if as_json else format_status(report))
    return 0
