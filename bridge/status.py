"""What ``paperbridge status`` and ``/healthz`` say about sources, subscriptions and deliveries.

``delivery_health(store)`` is the part ``/healthz`` shows: paused destinations (with why and
since when), destinations backing off after failures, ledger counts. A paused destination
needs a human but does not make the service unhealthy: restarting would not fix it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bridge.config import Settings
from bridge.delivery import Destination
from bridge.errors import StoreError
from bridge.store import Store
from bridge.store.ledger import LedgerStore


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _destination_json(dest: Destination, counts: dict[str, int] | None = None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": dest.id,
        "kind": dest.kind,
        "address": dest.safe_address,
        "name": dest.name,
        "paused": dest.paused,
        "paused_reason": dest.paused_reason,
        "paused_at": _iso(dest.paused_at),
        "consecutive_failures": dest.consecutive_failures,
        "retry_at": _iso(dest.retry_at),
        "last_error": dest.last_error,
        "last_delivery_at": _iso(dest.last_delivery_at),
    }
    if counts is not None:
        data["deliveries"] = {
            state: counts.get(state, 0)
            for state in ("pending", "claimed", "sent", "failed", "uncertain")
        }
    return data


def delivery_health(store: Store, now: datetime | None = None) -> dict[str, Any]:
    """Paused and retrying destinations and ledger totals, as JSON-ready data.

    Synchronous (call it with ``asyncio.to_thread``); raises StoreError if the database fails.
    """
    try:
        return _delivery_health(store, now or datetime.now(UTC))
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the delivery ledger: {exc.__class__.__name__}") from exc


def _delivery_health(store: Store, now: datetime) -> dict[str, Any]:
    db = LedgerStore(store)
    destinations = db.list_destinations()
    totals: dict[str, int] = dict.fromkeys(("pending", "claimed", "sent", "failed", "uncertain"), 0)
    for counts in db.counts().values():
        for state, n in counts.items():
            totals[state] = totals.get(state, 0) + n
    oldest = db.oldest_pending_enqueued_at()
    return {
        "destinations": len(destinations),
        "paused": [
            {
                "id": d.id,
                "kind": d.kind,
                "address": d.safe_address,
                "reason": d.paused_reason,
                "since": _iso(d.paused_at),
            }
            for d in destinations
            if d.paused
        ],
        "retrying": [
            {
                "id": d.id,
                "kind": d.kind,
                "address": d.safe_address,
                "failures": d.consecutive_failures,
                "last_error": d.last_error,
                "retry_at": _iso(d.retry_at),
            }
            for d in destinations
            if not d.paused and d.consecutive_failures
        ],
        "ledger": totals,
        "oldest_pending_age_seconds": round((now - oldest).total_seconds()) if oldest else None,
    }


def status_report(store: Store, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Everything ``paperbridge status`` prints, as JSON-ready data."""
    now = now or datetime.now(UTC)
    db = LedgerStore(store)
    problems: list[str] = []
    sources = []
    enabled = {"hf": settings.sources.hf.enabled, "arxiv": settings.sources.arxiv.enabled}
    states = {state.source: state for state in store.all_source_states()}
    for name in sorted(set(states) | {n for n, on in enabled.items() if on}):
        state = states.get(name)
        sources.append(
            {
                "source": name,
                "enabled": enabled.get(name, False),
                "last_success_at": _iso(state.last_success_at) if state else None,
                "caught_up_to": state.caught_up_to.isoformat()
                if state and state.caught_up_to
                else None,
                "last_error": state.last_error if state else None,
                "consecutive_failures": state.consecutive_failures if state else 0,
            }
        )
        if state and state.consecutive_failures:
            problems.append(
                f"source {name}: {state.consecutive_failures} failed polls in a row:"
                f" {state.last_error}"
            )
    counts = db.counts()
    destinations = db.list_destinations()
    labels = {d.id: d.label for d in destinations}
    pending = db.pending_counts()
    last_sent = db.last_sent()
    digests = [
        {
            "id": sub.id,
            "name": sub.name,
            "query": sub.query,
            "destination": labels.get(sub.destination_id, sub.destination_id),
            "time": sub.local_time,
            "time_zone": sub.time_zone,
            "all_quiet": sub.all_quiet,
            # The scheduled morning last finished, and when a paper last went out (a "now"
            # subscription or `deliver --now` sends without finishing a scheduled morning).
            "last_digest_at": _iso(sub.last_digest_at),
            "last_sent_at": _iso(last_sent.get(sub.id)),
            "pending": pending.get(sub.id, 0),
        }
        for sub in db.list_digests()
    ]
    for dest in destinations:
        if dest.paused:
            problems.append(f"destination {dest.label} paused: {dest.paused_reason}")
        elif dest.consecutive_failures:
            problems.append(
                f"destination {dest.label}: {dest.consecutive_failures} failed sends in a row"
                f" ({dest.last_error}); next try {_iso(dest.retry_at)}"
            )
    uncertain = sum(c.get("uncertain", 0) for c in counts.values())
    if uncertain:
        problems.append(
            f"{uncertain} deliveries were re-sent after a claim expired (possible duplicates)"
        )
    last = [
        {
            "sent_at": _iso(row.sent_at),
            "destination": labels.get(row.destination_id, row.destination_id),
            "arxiv_id": row.arxiv_id,
            "title": title,
        }
        for row, title in db.recent_sent(10)
    ]
    return {
        "sources": sources,
        "feeds": [{"name": s.name, "query": s.query} for s in settings.subscriptions],
        "digests": digests,
        "destinations": [_destination_json(d, counts.get(d.id, {})) for d in destinations],
        "last_deliveries": last,
        "problems": problems,
    }


def format_status(report: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    lines = ["Sources"]
    for src in report["sources"]:
        state = "ok" if not src["last_error"] or not src["consecutive_failures"] else "failing"
        lines.append(
            f"  {src['source']:<6} {'enabled' if src['enabled'] else 'disabled':<8}"
            f" last success {src['last_success_at'] or 'never'},"
            f" caught up to {src['caught_up_to'] or '-'}  {state}"
        )
    lines.append("Subscriptions")
    for feed in report["feeds"]:
        lines.append(f"  feed   {feed['name']}: {feed['query']!r}")
    for sub in report["digests"]:
        lines.append(
            f"  digest {sub['name'] or sub['id']}: {sub['query']!r} -> {sub['destination']}"
            f" at {sub['time']} {sub['time_zone']}; last sent {sub['last_sent_at'] or 'never'};"
            f" {sub['pending']} pending"
        )
    if not report["feeds"] and not report["digests"]:
        lines.append("  (none)")
    lines.append("Destinations")
    for dest in report["destinations"]:
        counts = dest["deliveries"]
        state = "paused" if dest["paused"] else "ok"
        # As Destination.shown_as: `stdout`, not `stdout:` (it has no address).
        shown = f"{dest['kind']}:{dest['address']}" if dest["address"] else dest["kind"]
        lines.append(
            f"  {shown} ({dest['id']}) {state};"
            f" sent {counts['sent']}, pending {counts['pending']}, failed {counts['failed']};"
            f" last delivery {dest['last_delivery_at'] or 'never'}"
        )
    if not report["destinations"]:
        lines.append("  (none)")
    lines.append("Last deliveries")
    for row in report["last_deliveries"]:
        lines.append(
            f"  {row['sent_at']} {row['destination']} arXiv:{row['arxiv_id']} {row['title']}"
        )
    if not report["last_deliveries"]:
        lines.append("  (none)")
    lines.append("Problems")
    lines += [f"  - {problem}" for problem in report["problems"]] or ["  (none)"]
    return "\n".join(lines)
