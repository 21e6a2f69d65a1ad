"""What ``paperbridge status`` and ``/healthz`` say about sources, subscriptions and deliveries.

``delivery_health(store)`` is the part ``/healthz`` shows: paused destinations (with why and
since when), destinations backing off after failures, ledger counts. A paused destination
needs a human but does not make the service unhealthy: restarting would not fix it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from bridge.config import Settings
from bridge.crashes import JOB_ROW_PREFIX
from bridge.delivery import Destination
from bridge.errors import StoreError
from bridge.health import LOAD_MEANWHILE, HealthCheck, enabled_sources, local_time
from bridge.store import Store
from bridge.store.ledger import LedgerStore


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _destination_json(
    dest: Destination,
    counts: dict[str, int] | None = None,
    stamp: Callable[[datetime | None], str | None] = _iso,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": dest.id,
        "kind": dest.kind,
        "address": dest.safe_address,
        "name": dest.name,
        "paused": dest.paused,
        "paused_reason": dest.paused_reason,
        "paused_at": stamp(dest.paused_at),
        "consecutive_failures": dest.consecutive_failures,
        "retry_at": stamp(dest.retry_at),
        "last_error": dest.last_error,
        "last_delivery_at": stamp(dest.last_delivery_at),
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
    """Everything ``paperbridge status`` prints, as JSON-ready data; times in the configured
    ``time_zone``, to the second."""
    now = now or datetime.now(UTC)
    zone = ZoneInfo(settings.time_zone)

    def stamp(value: datetime | None) -> str | None:
        return value.astimezone(zone).replace(microsecond=0).isoformat() if value else None

    db = LedgerStore(store)
    enabled = enabled_sources(settings)
    health = HealthCheck(settings, store, enabled, serving=False).read(now)
    assessed = {source.source: source for source in health.sources}
    states = {
        state.source: state
        for state in store.all_source_states()
        if not state.source.startswith(JOB_ROW_PREFIX)
    }
    sources = []
    for name in sorted(set(states) | set(enabled)):
        state = states.get(name)
        source = assessed.get(name)
        sources.append(
            {
                "source": name,
                "enabled": source is not None,
                "state": _SHOWN_CONDITION[source.condition] if source else "disabled",
                "last_success_at": stamp(state.last_success_at) if state else None,
                "caught_up_to": state.caught_up_to.isoformat()
                if state and state.caught_up_to
                else None,
                "last_error": state.last_error if state else None,
                "consecutive_failures": state.consecutive_failures if state else 0,
                "next_poll": stamp(source.next_poll) if source else None,
            }
        )
    problems = [*health.problems, *health.warnings]
    if health.unreachable:
        problems.append(LOAD_MEANWHILE[0].upper() + LOAD_MEANWHILE[1:])
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
            "top": sub.top,  # "top N of the day" instead of new matches; None: new matches
            # The scheduled morning last finished, and when a paper last went out (a "now"
            # subscription or `deliver --now` sends without finishing a scheduled morning).
            "last_digest_at": stamp(sub.last_digest_at),
            "last_sent_at": stamp(last_sent.get(sub.id)),
            "pending": pending.get(sub.id, 0),
        }
        for sub in db.list_digests()
    ]
    for dest in destinations:
        if dest.paused:
            problems.append(f"destination {dest.label} paused: {dest.paused_reason}")
        elif dest.consecutive_failures:
            retry = dest.retry_at and f"; next try {local_time(dest.retry_at, settings.time_zone)}"
            problems.append(
                f"destination {dest.label}: {dest.consecutive_failures} failed sends in a row"
                f" ({dest.last_error}){retry or ''}"
            )
    if store.mining_pending():
        # Not a failure, but searches do not widen these papers' acronyms and compounds yet,
        # and only an import acts on it (bridge/store/expansions.py, ``PENDING``).
        problems.append(
            "papers stored by an import that is still running, or was stopped or killed before"
            " its end, are not yet mined for acronyms and compounds; the import's end mines"
            " them, or any `paperbridge import` run again"
        )
    uncertain = sum(c.get("uncertain", 0) for c in counts.values())
    if uncertain:
        problems.append(
            f"{uncertain} deliveries were re-sent after a claim expired (possible duplicates)"
        )
    last = [
        {
            "sent_at": stamp(row.sent_at),
            "destination": labels.get(row.destination_id, row.destination_id),
            "arxiv_id": row.arxiv_id,
            "title": title,
        }
        for row, title in db.recent_sent(10)
    ]
    return {
        "time_zone": settings.time_zone,
        "sources": sources,
        "feeds": [{"name": s.name, "query": s.query} for s in settings.subscriptions],
        "digests": digests,
        "destinations": [_destination_json(d, counts.get(d.id, {}), stamp) for d in destinations],
        "last_deliveries": last,
        "problems": problems,
    }


# How ``status`` names each health condition (``bridge.health``): it runs beside ``serve``,
# so a source without a finished poll has simply never been polled, as far as it can tell.
_SHOWN_CONDITION = {
    "ok": "ok",
    "retrying": "retrying",
    "starting": "never polled",
    "failing": "failing",
    "stale": "stale",
    "unknown": "unknown",
}


def _when(value: str | None) -> str:
    """A timestamp from the report as people read it: date and time, without the offset
    (the report's time zone is said once, at the top)."""
    return value[:19].replace("T", " ") if value else "never"


def format_status(report: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    lines = [f"Times in {report['time_zone']}", "Sources"]
    for src in report["sources"]:
        upcoming = f", next poll {_when(src['next_poll'])}" if src["next_poll"] else ""
        lines.append(
            f"  {src['source']:<6} {'enabled' if src['enabled'] else 'disabled':<8}"
            f" last success {_when(src['last_success_at'])},"
            f" caught up to {src['caught_up_to'] or '-'}{upcoming}  {src['state']}"
        )
    lines.append("Subscriptions")
    for feed in report["feeds"]:
        lines.append(f"  feed   {feed['name']}: {feed['query']!r}")
    for sub in report["digests"]:
        what = repr(sub["query"])
        if sub.get("top") is not None:
            what = f"top {sub['top']} of the day" + (f" matching {what}" if sub["query"] else "")
        lines.append(
            f"  digest {sub['name'] or sub['id']}: {what} -> {sub['destination']}"
            f" at {sub['time']} {sub['time_zone']}; last sent {_when(sub['last_sent_at'])};"
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
            f" last delivery {_when(dest['last_delivery_at'])}"
        )
    if not report["destinations"]:
        lines.append("  (none)")
    lines.append("Last deliveries")
    for row in report["last_deliveries"]:
        lines.append(
            f"  {_when(row['sent_at'])} {row['destination']} arXiv:{row['arxiv_id']} {row['title']}"
        )
    if not report["last_deliveries"]:
        lines.append("  (none)")
    lines.append("Problems")
    lines += [f"  - {problem}" for problem in report["problems"]] or ["  (none)"]
    return "\n".join(lines)
