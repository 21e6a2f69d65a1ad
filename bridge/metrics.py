"""This process's counters and request latency histogram, in prometheus_client's registry.

Any stage may count something (``metrics.POLLS.inc(source="hf", outcome="ok")``); the web
server exposes the registry at ``/metrics`` together with the gauges read from the store at
scrape time (``bridge.gauges``). Each process keeps its own registry: counters say what this
process did, and a scraper adds them up across processes.
"""

from __future__ import annotations

import math
import threading
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import accumulate

import prometheus_client
from prometheus_client import CollectorRegistry
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The text format /metrics has always been served in; every Prometheus version reads it.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; dense at the low end where a cached feed lives, sparse where a cold render lives.
DEFAULT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# Methods are labels too; anything else a client invents is counted as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# A `_created` series beside every counter doubles the output and no dashboard reads it.
prometheus_client.disable_created_metrics()

REGISTRY = CollectorRegistry()


class Counter:
    """A prometheus_client counter, counted the way every stage counts: ``inc(n, **labels)``."""

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        self.name = name
        self.registry = registry
        self._metric = prometheus_client.Counter(name, help_text, labels, registry=registry)
        self._labelled = bool(labels)

    def inc(self, amount: float = 1, **labels: str) -> None:
        (self._metric.labels(**labels) if self._labelled else self._metric).inc(amount)

    def value(self, **labels: str) -> float:
        return self.registry.get_sample_value(self.name, labels) or 0.0


class Histogram:
    """A histogram counted in plain lists and read by the registry at scrape time.

    Every HTTP request is observed here. prometheus_client's own histogram takes a lock per
    value and walks the buckets in Python on each observation (2.4 µs, a third of what a
    cached feed costs the app); here it is one bisect and two additions under one lock. The
    exposition is the same: cumulative ``_bucket`` lines with ``le``, ``_count`` and ``_sum``.
    """

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str],
        buckets: Sequence[float] = DEFAULT_BUCKETS,
        registry: CollectorRegistry = REGISTRY,
    ) -> None:
        bounds = [float(bound) for bound in buckets]
        if bounds != sorted(bounds):
            raise ValueError(f"{name}: buckets not in order: {buckets}")
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.name = name
        self.help_text = help_text
        self.labels = tuple(labels)
        self.registry = registry
        self._bounds = tuple(bounds)
        self._le = [floatToGoString(bound) for bound in bounds]
        # Label values -> observations per bucket (not cumulative), then the sum.
        self._series: dict[tuple[str, ...], list[float]] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def observe(self, value: float, **labels: str) -> None:
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name} takes the labels {self.labels}, not {tuple(labels)}")
        self.observe_labels(tuple(str(labels[name]) for name in self.labels), value)

    def observe_labels(self, key: tuple[str, ...], value: float) -> None:
        """``key``: the label values in order (the per-request path: not checked)."""
        index = bisect_left(self._bounds, value)  # the first bucket with value <= le
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = [0.0] * (len(self._bounds) + 1)
            series[index] += 1
            series[-1] += value

    def describe(self) -> list[Metric]:
        return [HistogramMetricFamily(self.name, self.help_text, labels=self.labels)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.help_text, labels=self.labels)
        with self._lock:
            taken = [(key, series.copy()) for key, series in self._series.items()]
        for key, series in taken:
            cumulative = accumulate(series[:-1])
            family.add_metric(list(key), list(zip(self._le, cumulative, strict=True)), series[-1])
        yield family

    def count(self, **labels: str) -> int:
        return int(self.registry.get_sample_value(f"{self.name}_count", labels) or 0)


POLLS = Counter(
    "paperbridge_polls_total",
    "Source polls run by this process, by source and outcome (ok, error).",
    ("source", "outcome"),
)
PAPERS = Counter(
    "paperbridge_papers_total",
    "Papers this process's polls stored as new, by source (imports and other processes not"
    " included: paperbridge_papers_stored counts the store).",
    ("source",),
)
MATCHES = Counter(
    "paperbridge_matches_total", "New papers matched to a subscription.", ("subscription",)
)
DELIVERIES = Counter(
    "paperbridge_deliveries_total",
    "Messages delivered, by output and outcome.",
    ("output", "outcome"),
)
ERRORS = Counter(
    "paperbridge_errors_total", "Errors handled and logged, by where they happened.", ("where",)
)
JOB_CRASHES = Counter(
    "paperbridge_job_crashes_total",
    "Scheduled jobs that crashed (raised instead of finishing), by job.",
    ("job",),
)
FEED_RENDERS = Counter(
    "paperbridge_feed_renders_total",
    "Feeds rendered (not served from cache), by format.",
    ("format",),
)
REQUEST_SECONDS = Histogram(
    "paperbridge_http_request_duration_seconds",
    "HTTP request latency in seconds, by route template, method and status.",
    ("route", "method", "status"),
)


class RequestTimer:
    """Pure ASGI middleware that times each HTTP request into ``REQUEST_SECONDS``.

    Not Starlette's BaseHTTPMiddleware: that one wraps every response in a stream and costs a
    large share of a cached feed's time. The route label is the route's path template (set by
    the router in the scope), so arbitrary URLs cannot grow the label set.
    """

    def __init__(self, app: ASGIApp, histogram: Histogram = REQUEST_SECONDS) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            template = getattr(scope.get("route"), "path", None) or "unmatched"
            observe_request(self.histogram, template, scope["method"], status, start)


def observe_request(
    histogram: Histogram, template: str, method: str, status: int, started: float
) -> None:
    """One HTTP request into ``histogram``: its route template, method and status, and the
    seconds since ``started`` (``time.perf_counter()``). RequestTimer and the web server's
    front door (bridge.web) both count through here, so their labels are the same."""
    labels = (template, method if method in _METHODS else "other", str(status))
    histogram.observe_labels(labels, time.perf_counter() - started)
