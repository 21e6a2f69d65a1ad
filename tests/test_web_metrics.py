"""bridge.metrics: Prometheus text exposition, counters, the latency histogram and its middleware."""

from __future__ import annotations

import threading

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bridge.metrics import Registry, RequestTimer


def test_counters_render_in_prometheus_text_format() -> None:
    registry = Registry()
    polls = registry.counter("demo_polls_total", "Polls.", ("source", "outcome"))
    plain = registry.counter("demo_plain_total", "No labels.")
    polls.inc(source="hf", outcome="ok")
    polls.inc(2, source="hf", outcome="ok")
    polls.inc(source='ar"x\\iv\n', outcome="error")
    text = registry.render()
    assert text.endswith("\n")
    assert "# HELP demo_polls_total Polls.\n# TYPE demo_polls_total counter\n" in text
    assert 'demo_polls_total{source="hf",outcome="ok"} 3\n' in text
    assert 'demo_polls_total{source="ar\\"x\\\\iv\\n",outcome="error"} 1\n' in text
    assert "demo_plain_total 0\n" in text  # an unlabelled counter shows from the start
    assert polls.value(source="hf", outcome="ok") == 3
    with pytest.raises(ValueError, match="only goes up"):
        plain.inc(-1)
    with pytest.raises(ValueError, match="takes labels"):
        polls.inc(source="hf")
    with pytest.raises(ValueError, match="registered twice"):
        registry.counter("demo_plain_total", "Again.")


def test_histogram_buckets_are_cumulative_with_sum_and_count() -> None:
    registry = Registry()
    latency = registry.histogram("demo_seconds", "Latency.", ("route",), buckets=(0.1, 1.0))
    for value in (0.05, 0.1, 0.5, 3.0):
        latency.observe(value, route="/a")
    lines = registry.render().splitlines()
    assert lines[2:] == [
        'demo_seconds_bucket{route="/a",le="0.1"} 2',
        'demo_seconds_bucket{route="/a",le="1"} 3',
        'demo_seconds_bucket{route="/a",le="+Inf"} 4',
        'demo_seconds_sum{route="/a"} 3.65',
        'demo_seconds_count{route="/a"} 4',
    ]


def test_counting_from_many_threads_loses_nothing() -> None:
    counter = Registry().counter("demo_total", "Threads.")

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
    registry = Registry()
    latency = registry.histogram("demo_http_seconds", "HTTP.", ("route", "method", "status"))

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
    assert "ada" not in registry.render()
