"""Process-wide counters and a latency histogram, exposed in the Prometheus text format.

Any stage may count something (``metrics.POLLS.inc(source="hf", outcome="ok")``); the web
server renders everything at ``/metrics``. A hand-rolled registry instead of prometheus_client:
five counters and one histogram need no global collectors or multiprocess modes.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds; dense at the low end where a cached feed lives, sparse where a cold render lives.
DEFAULT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

Labels = tuple[str, ...]

# Methods are labels too; anything else a client invents is counted as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _label_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


class _Metric:
    kind = ""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(labels)
        # Counted from request handlers, worker threads (asyncio.to_thread) and the scheduler.
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> Labels:
        if set(labels) != set(self.label_names):
            raise ValueError(f"{self.name} takes labels {self.label_names}, got {tuple(labels)}")
        return tuple(str(labels[name]) for name in self.label_names)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


class Counter(_Metric):
    """A number that only goes up (resets when the process restarts)."""

    kind = "counter"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        self._values: dict[Labels, float] = {}

    def inc(self, amount: float = 1, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0) + amount

    def value(self, **labels: str) -> float:
        with self._lock:
            return self._values.get(self._key(labels), 0)

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        if not items and not self.label_names:
            items = [((), 0)]
        return [
            f"{self.name}{_label_text(self.label_names, key)} {_number(value)}"
            for key, value in items
        ]


class Histogram(_Metric):
    """Observations counted into cumulative buckets, plus their sum and count."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Iterable[float] = DEFAULT_BUCKETS,
    ) -> None:
        super().__init__(name, help_text, labels)
        self.buckets = tuple(sorted(buckets))
        # Per label set: one count per bucket (non-cumulative; summed on render), sum, count.
        self._series: dict[Labels, tuple[list[int], list[float]]] = {}

    def observe(self, value: float, **labels: str) -> None:
        self.observe_labels(self._key(labels), value)

    def observe_labels(self, key: Labels, value: float) -> None:
        """``observe`` with the label values already in order: the per-request path."""
        slot = bisect.bisect_left(self.buckets, value)
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = ([0] * (len(self.buckets) + 1), [0.0, 0.0])
            series[0][slot] += 1
            series[1][0] += value
            series[1][1] += 1

    def count(self, **labels: str) -> int:
        with self._lock:
            series = self._series.get(self._key(labels))
            return int(series[1][1]) if series else 0

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted((key, (list(c), list(s))) for key, (c, s) in self._series.items())
        lines: list[str] = []
        for key, (counts, (total, count)) in items:
            running = 0
            for bound, n in zip((*self.buckets, float("inf")), counts, strict=True):
                running += n
                le = "+Inf" if bound == float("inf") else _number(bound)
                labels = _label_text(self.label_names, key, f'le="{le}"')
                lines.append(f"{self.name}_bucket{labels} {running}")
            plain = _label_text(self.label_names, key)
            lines.append(f"{self.name}_sum{plain} {_number(total)}")
            lines.append(f"{self.name}_count{plain} {int(count)}")
        return lines


class Registry:
    """The metrics of one process, rendered together."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: Any) -> Any:
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is registered twice")
        self._metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help_text: str, labels: Sequence[str] = ()) -> Counter:
        result: Counter = self._add(Counter(name, help_text, labels))
        return result

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        buckets: Iterable[float] = DEFAULT_BUCKETS,
    ) -> Histogram:
        result: Histogram = self._add(Histogram(name, help_text, labels, buckets))
        return result

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics.values():
            lines += metric.header()
            lines += metric.samples()
        return "\n".join(lines) + "\n"


REGISTRY = Registry()

POLLS = REGISTRY.counter(
    "paperbridge_polls_total",
    "Source polls, by source and outcome (ok, error).",
    ("source", "outcome"),
)
PAPERS = REGISTRY.counter(
    "paperbridge_papers_total", "Papers stored as new, by the source that found them.", ("source",)
)
MATCHES = REGISTRY.counter(
    "paperbridge_matches_total", "New papers matched to a subscription.", ("subscription",)
)
DELIVERIES = REGISTRY.counter(
    "paperbridge_deliveries_total",
    "Messages delivered, by output and outcome.",
    ("output", "outcome"),
)
ERRORS = REGISTRY.counter(
    "paperbridge_errors_total", "Errors handled and logged, by where they happened.", ("where",)
)
FEED_RENDERS = REGISTRY.counter(
    "paperbridge_feed_renders_total",
    "Feeds rendered (not served from cache), by format.",
    ("format",),
)
REQUEST_SECONDS = REGISTRY.histogram(
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
            method = scope["method"] if scope["method"] in _METHODS else "other"
            labels = (template, method, str(status))
            self.histogram.observe_labels(labels, time.perf_counter() - start)
