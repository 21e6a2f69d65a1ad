"""/metrics: the counters and latency histogram dashboards read (names unchanged) and their
request timer, in prometheus_client's text format."""

from __future__ import annotations

import threading

import httpx
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bridge import metrics
from bridge.metrics import Counter, Histogram, RequestTimer


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, parsed by prometheus_client's own reader."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def test_the_names_dashboards_read_are_kept() -> None:
    text = generate_latest(metrics.REGISTRY).decode()
    for name, kind in [
        ("paperbridge_polls_total", "counter"),
        ("paperbridge_papers_total", "counter"),
        ("paperbridge_matches_total", "counter"),
        ("paperbridge_deliveries_total", "counter"),
        ("paperbridge_errors_total", "counter"),
        ("paperbridge_feed_renders_total", "counter"),
        ("paperbridge_job_crashes_total", "counter"),
        ("paperbridge_http_request_duration_seconds", "histogram"),
    ]:
        assert f"# TYPE {name} {kind}\n" in text, name
    assert "_created" not in text  # no second series per counter


def test_counters_count_by_label_and_refuse_wrong_labels() -> None:
    registry = CollectorRegistry()
    polls = Counter("demo_polls_total", "Polls.", ("source", "outcome"), registry=registry)
    plain = Counter("demo_plain_total", "No labels.", registry=registry)
    polls.inc(source="hf", outcome="ok")
    polls.inc(2, source="hf", outcome="ok")
    polls.inc(source='ar"x\\iv\n', outcome="error")
    text = generate_latest(registry).decode()
    assert value(text, "demo_polls_total", source="hf", outcome="ok") == 3
    assert value(text, "demo_polls_total", source='ar"x\\iv\n', outcome="error") == 1
    assert value(text, "demo_plain_total") == 0  # an unlabelled counter shows from the start
    assert polls.value(source="hf", outcome="ok") == 3
    with pytest.raises(ValueError):
        plain.inc(-1)
    with pytest.raises(ValueError):
        polls.inc(source="hf")


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    registry = CollectorRegistry()
    latency = Histogram(
        "demo_seconds", "Latency.", ("route",), buckets=(0.1, 1.0), registry=registry
    )
    for seconds in (0.05, 0.1, 0.5):
        latency.observe(seconds, route="/a")
    latency.observe_labels(("/a",), 3.0)
    text = generate_latest(registry).decode()
    assert value(text, "demo_seconds_bucket", route="/a", le="0.1") == 2
    assert value(text, "demo_seconds_bucket", route="/a", le="1.0") == 3
    assert value(text, "demo_seconds_bucket", route="/a", le="+Inf") == 4
    assert value(text, "demo_seconds_sum", route="/a") == pytest.approx(3.65)
    assert latency.count(route="/a") == 4


def test_counting_from_many_threads_loses_nothing() -> None:
    counter = Counter("demo_total", "Threads.", registry=CollectorRegistry())

    def work() -> None:
        for _ in range(10_000):
            counter.inc()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.value() == 40_000


async def test_request_timer_labels_by_route_template_and_bounds_methods() -> None:
    registry = CollectorRegistry()
    latency = Histogram(
        "demo_http_seconds", "HTTP.", ("route", "method", "status"), registry=registry
    )

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.path_params['name']}")

    app = Starlette(routes=[Route("/hello/{name}", hello)])
    timed = RequestTimer(app, latency)
    transport = httpx.ASGITransport(timed)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/hello/ada")).text == "hello ada"
        await client.get("/hello/alan")
        await client.get("/nowhere")
        await client.request("BREW", "/hello/tea")
    assert latency.count(route="/hello/{name}", method="GET", status="200") == 2
    assert latency.count(route="unmatched", method="GET", status="404") == 1
    assert latency.count(route="/hello/{name}", method="other", status="405") == 1
    assert "ada" not in generate_latest(registry).decode()
