"""Which notices about the bridge itself are due, decided from what the store says.

- A source that has been stale (``bridge.health``: its last three scheduled polls failed, so a
  quiet weekend never counts) and silent for ``[alerts] source_down_hours`` (24) tells each
  channel whose digests draw on it: "Hugging Face Daily Papers has not answered since …; papers
  will come late, not be lost". The operator destination (``[alerts] destination``) hears as
  soon as the source is stale.
- When that source answers again, each destination that was told it was down hears it is back.
  A notice still unsent by then is dropped instead: an outage over before anyone heard of it
  needs no news.
- A destination paused after a failure it cannot recover from (channel gone, app removed) tells
  the operator destination, once per pause. The paused destination itself cannot be told:
  posting there is what fails.

Each notice has a key built from facts every process reads alike: an outage is its source and
the source's last success before it (``source-down:hf:2026-11-24T20:00:00+00:00``), a pause its
destination and when it was paused. Every process sweeping the same store, or one restarted,
adds the same keys, and the store keeps a key once per destination; the ledger then posts each
notice under the destination's lease, as it posts digests: once, whoever sweeps.

Pure rules here (``NoticeRules``); ``bridge.ledger`` reads the store, applies them and posts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from bridge.config import Settings
from bridge.delivery import Destination, DigestSubscription, destination_id_for
from bridge.errors import QueryError
from bridge.health import enabled_sources, is_stale
from bridge.query import parse_query, required_terms
from bridge.store import SourceState
from bridge.store.ledger import NoticeRow, OpenNotice

DOWN = "source-down"
BACK = "source-back"
PAUSED = "destination-paused"


@dataclass(frozen=True, slots=True)
class SourceCondition:
    """How a source stands now."""

    source: str
    last_success: datetime | None
    stale: bool
    # Since its last success, or since this process started when it never had one (as
    # ``bridge.health.is_stale`` counts).
    silent_for: timedelta


def down_key(source: str, last_success: datetime | None) -> str:
    return f"{DOWN}:{source}:{last_success.isoformat() if last_success else 'never'}"


@lru_cache(maxsize=4096)
def sources_drawn_on(query: str) -> frozenset[str] | None:
    """The sources a digest query can get papers from: those its query requires
    (``source:arxiv``), or None for every source."""
    try:
        required = required_terms(parse_query(query))
    except QueryError:
        return None  # checked when it was saved; were it not, it may draw on anything
    named = frozenset(
        term.removeprefix("source:") for term in required if term.startswith("source:")
    )
    return named or None


class NoticeRules:
    """The rules above for one bridge's settings. ``started``: when this process started (a
    source that never answered is silent since then, as ``bridge.health`` has it)."""

    def __init__(self, settings: Settings, started: datetime) -> None:
        self.settings = settings
        self.alerts = settings.alerts
        self.started = started
        kind, _, address = settings.alerts.destination.partition(":")
        self.operator = destination_id_for(kind, address) if kind else None

    def conditions(
        self, states: Mapping[str, SourceState], now: datetime, watched: Iterable[str] = ()
    ) -> list[SourceCondition]:
        """Every enabled source's condition at ``now``.

        Working out staleness walks the source's crontab back (tens of milliseconds), and the
        ledger sweeps every minute: it is worked out only where an answer can matter, for a
        source silent long enough to tell channels of, one with a notice ``watched`` for its
        end, or any when an operator destination hears of every stale source. The others are
        reported not stale.
        """
        after = timedelta(hours=self.alerts.source_down_hours)
        watched = set(watched)
        found = []
        for source in enabled_sources(self.settings):
            state = states.get(source)
            last = state.last_success_at if state else None
            silent_for = now - (last or self.started)
            stale = (
                self.operator is not None or silent_for >= after or source in watched
            ) and is_stale(self.settings, source, last, now, self.started)
            found.append(SourceCondition(source, last, stale, silent_for))
        return found

    def due(
        self,
        conditions: Iterable[SourceCondition],
        destinations: Mapping[str, Destination],
        digests: Iterable[DigestSubscription],
    ) -> list[NoticeRow]:
        """The notices that should exist now (most exist already; the store adds the rest).
        A paused destination gets none: it cannot take them, and it gets those still due once
        it is resumed."""
        stale = [c for c in conditions if c.stale]
        rows: list[NoticeRow] = []
        after = timedelta(hours=self.alerts.source_down_hours)
        long_down = [c for c in stale if c.silent_for >= after] if self.alerts.channels else []
        if long_down:
            # Destination -> the sources its digests draw on (None: every source).
            drawn: dict[str, frozenset[str] | None] = {}
            for sub in digests:
                sources = sources_drawn_on(sub.query)
                if sub.destination_id in drawn:
                    known = drawn[sub.destination_id]
                    sources = None if known is None or sources is None else known | sources
                drawn[sub.destination_id] = sources
            for condition in long_down:
                for dest_id, sources in drawn.items():
                    dest = destinations.get(dest_id)
                    if dest is None or dest.paused:
                        continue
                    if sources is None or condition.source in sources:
                        rows.append(_down(condition, dest_id))
        operator = destinations.get(self.operator) if self.operator else None
        if operator is not None and not operator.paused:
            rows += [_down(condition, operator.id) for condition in stale]
            rows += [
                _paused(dest, operator.id)
                for dest in destinations.values()
                if dest.paused and dest.id != operator.id
            ]
        return rows

    def ended(
        self, open_notices: Iterable[OpenNotice], conditions: Iterable[SourceCondition]
    ) -> list[tuple[OpenNotice, NoticeRow | None]]:
        """Source-down notices whose outage is over, each with the "back" notice to add (None
        when it was never posted, or the source was disabled rather than answering)."""
        now_of = {c.source: c for c in conditions}
        ended: list[tuple[OpenNotice, NoticeRow | None]] = []
        for notice in open_notices:
            condition = now_of.get(notice.source)
            if condition is not None and condition.stale and condition.last_success == notice.since:
                continue  # still the same outage
            if notice.state == "claimed":
                continue  # being posted right now: closed once it is settled
            answered = (
                condition is not None
                and condition.last_success is not None
                and (notice.since is None or condition.last_success > notice.since)
            )
            back = None
            if notice.state == "sent" and answered and condition is not None:
                back = NoticeRow(
                    key=BACK + notice.key.removeprefix(DOWN),
                    destination_id=notice.destination_id,
                    kind="source-back",
                    source=notice.source,
                    since=condition.last_success,
                )
            ended.append((notice, back))
        return ended


def _down(condition: SourceCondition, destination_id: str) -> NoticeRow:
    return NoticeRow(
        key=down_key(condition.source, condition.last_success),
        destination_id=destination_id,
        kind="source-down",
        source=condition.source,
        since=condition.last_success,
    )


def _paused(dest: Destination, destination_id: str) -> NoticeRow:
    when = dest.paused_at.isoformat() if dest.paused_at else "unknown"
    return NoticeRow(
        key=f"{PAUSED}:{dest.id}:{when}",
        destination_id=destination_id,
        kind="destination-paused",
        since=dest.paused_at,
        about_id=dest.id,
        about=dest.label,
        detail=dest.paused_reason or "",
    )
