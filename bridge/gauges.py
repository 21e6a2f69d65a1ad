"""The gauges a monitoring system alerts on, read from the store when /metrics is scraped.

Counters (``bridge.metrics``) belong to the process that counted. These gauges are facts of the
shared store (each source's last successful poll, papers stored, deliveries pending,
destinations paused), read at scrape time, so every process that serves /metrics answers the
same whichever one is scraped, and a paper imported by `paperbridge import` counts at once.
That is why a plain per-process registry is enough here: no prometheus multiprocess mode, no
shared files. Only the scraped process's own unrecorded crashes (a full disk refused the
record) differ between processes, and those belong to that process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily, Metric

from bridge.crashes import explain
from bridge.health import HealthCheck
from bridge.store import Store
from bridge.store.ledger import LedgerStore

log = logging.getLogger(__name__)


class StoreGauges:
    """A prometheus_client collector (``collect()``) over one store and its health.

    Counting papers scans the table on PostgreSQL (about 85 ms at 1M papers; SQLite: a few
    ms; bench/papers_count.py), so that one count is kept for ``count_ttl`` seconds, well
    within any alert's patience; the rest is a handful of small indexed reads, fresh on
    every scrape.
    """

    def __init__(
        self,
        health: HealthCheck,
        store: Store,
        *,
        count_ttl: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.health = health
        self.store = store
        self.count_ttl = count_ttl
        self.clock = clock
        self._papers: tuple[float, int] | None = None
        # Two scrapes at once count once.
        self._lock = threading.Lock()

    def papers_stored(self) -> int:
        with self._lock:
            now = self.clock()
            if self._papers is None or now - self._papers[0] >= self.count_ttl:
                self._papers = (now, self.store.count_papers())
            return self._papers[1]

    def collect(self) -> Iterator[Metric]:
        report = self.health.read()
        yield _gauge("paperbridge_healthy", "1 when /healthz answers 200, else 0.", report.ok)
        up = GaugeMetricFamily(
            "paperbridge_source_up",
            "1 when the source's polls are ok (a recent success); 0 when it is starting,"
            " has never been read, or is stale.",
            labels=["source"],
        )
        last = GaugeMetricFamily(
            "paperbridge_source_last_success_timestamp_seconds",
            "Unix time of the source's last successful poll; 0 when it never had one.",
            labels=["source"],
        )
        failures = GaugeMetricFamily(
            "paperbridge_source_consecutive_failures",
            "Polls of the source that failed since its last success.",
            labels=["source"],
        )
        for source in report.sources:
            up.add_metric([source.source], 1 if source.ok else 0)
            seen = source.last_success.timestamp() if source.last_success else 0
            last.add_metric([source.source], seen)
            failures.add_metric([source.source], source.failures)
        yield from (up, last, failures)
        yield _gauge(
            "paperbridge_jobs_crashed",
            "Scheduled jobs whose last run crashed and has not run cleanly since.",
            len(report.jobs),
        )
        yield _gauge(
            "paperbridge_store_up", "1 when the store answered this scrape.", not report.store_error
        )
        if report.store_error:
            return  # unknown figures are left out, not shown as zero
        try:
            papers, pending, paused = self._figures()
        except Exception as exc:
            log.warning("metrics: cannot read the store's figures: %s", explain(exc))
            return
        yield _gauge("paperbridge_papers_stored", "Papers in the store.", papers)
        yield _gauge(
            "paperbridge_deliveries_pending",
            "Papers waiting to be delivered, over every destination.",
            pending,
        )
        yield _gauge(
            "paperbridge_destinations_paused",
            "Destinations paused until a human resumes them (`paperbridge status`).",
            paused,
        )

    def _figures(self) -> tuple[int, int, int]:
        ledger = LedgerStore(self.store)
        pending = sum(ledger.pending_counts().values())
        paused = sum(1 for dest in ledger.list_destinations() if dest.paused)
        return self.papers_stored(), pending, paused


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=float(value))
