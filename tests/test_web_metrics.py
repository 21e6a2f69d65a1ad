"""/metrics: the counters and latency histogram dashboards read (names unchanged), their request
timer, and the gauges read from the store at scrape time that alerts are written against."""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bridge import metrics
from bridge.config import Settings
from bridge.delivery import Destination, DigestSubscription
from bridge.gauges import StoreGauges
from bridge.health import HealthCheck
from bridge.ledger import Ledger
from bridge.metrics import Counter, Histogram, RequestTimer
from bridge.models import Paper
from bridge.store import Store, open_store
from bridge.web import metrics_routes
from tests.fakes import Clock


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


def test_histogram_exposition_is_prometheus_clients_own() -> None:
    # Counted in plain lists (bridge.metrics.Histogram), read as prometheus_client reads its
    # own histogram: the same lines, labels, order and values.
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    names = ("route", "method", "status")
    reference = prometheus_client.Histogram(
        "demo_http_seconds",
        'Help with "quotes" \\ and more.',
        names,
        buckets=metrics.DEFAULT_BUCKETS,
        registry=theirs,
    )
    mine = Histogram("demo_http_seconds", 'Help with "quotes" \\ and more.', names, registry=ours)
    picks = random.Random(7)
    for _ in range(500):
        seconds = picks.choice([0.0005, 0.001, 5.0, 9.5, picks.random(), picks.random() / 100])
        key = (
            picks.choice(["/a", "/b/{x}", 'un"match\\ed\n']),
            "GET",
            picks.choice(["200", "304"]),
        )
        reference.labels(*key).observe(seconds)
        mine.observe_labels(key, seconds)
    assert generate_latest(ours).decode() == generate_latest(theirs).decode()
    with pytest.raises(ValueError):
        mine.observe(1.0, route="/a")


def test_counting_from_many_threads_loses_nothing() -> None:
    counter = Counter("demo_total", "Threads.", registry=CollectorRegistry())
    latency = Histogram(
        "demo_threads_seconds", "Threads.", ("route",), registry=CollectorRegistry()
    )

    def work() -> None:
        for _ in range(10_000):
            counter.inc()
            latency.observe_labels(("/a",), 0.01)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.value() == 40_000
    assert latency.count(route="/a") == 40_000


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


# -- gauges read from the store ------------------------------------------------------------


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    yield store
    store.close()


async def scrape(gauges: StoreGauges) -> str:
    app = Starlette(routes=metrics_routes(gauges))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


async def test_store_gauges_are_read_at_scrape_time(store: Store) -> None:
    """Papers imported by another process count at once (papers_total stayed 0 after
    imports: it counts this process's polls), and so do pending and paused deliveries."""
    settings = Settings.model_validate({"sources": {"arxiv": {"enabled": True}}})
    ticks = Clock(datetime(2026, 6, 13, 12, tzinfo=UTC))
    gauges = StoreGauges(HealthCheck(settings, store), store, count_ttl=30, clock=lambda: 0.0)

    text = await scrape(gauges)
    assert value(text, "paperbridge_papers_stored") == 0
    # Never polled: not up, and "last success" is 0, so `time() - x > N` alerts fire at once.
    assert value(text, "paperbridge_source_up", source="hf") == 0
    assert value(text, "paperbridge_source_last_success_timestamp_seconds", source="hf") == 0
    assert value(text, "paperbridge_healthy") == 0 and value(text, "paperbridge_store_up") == 1

    ledger = Ledger(store, {}, clock=ticks)
    ledger.db.save_destination(Destination("lab", "fake", "chan"), ticks())
    ledger.db.save_destination(Destination("gone", "fake", "chan-2"), ticks())
    ledger.db.save_digest(DigestSubscription("s", "lab", "drift", "08:00", "UTC"), ticks())
    ledger.db.pause_destination("gone", "channel_not_found", ticks())
    store.add_papers([Paper(f"2606.{n:05d}", f"Drift {n}") for n in range(7)], now=ticks())
    await ledger.intake()
    polled = datetime.now(UTC).replace(microsecond=0)
    store.record_poll_success("hf", None, now=polled)
    store.record_poll_success("arxiv", None, now=polled)

    gauges = StoreGauges(HealthCheck(settings, store), store, count_ttl=30, clock=lambda: 0.0)
    text = await scrape(gauges)
    assert value(text, "paperbridge_papers_stored") == 7
    assert value(text, "paperbridge_deliveries_pending") == 7
    assert value(text, "paperbridge_destinations_paused") == 1
    last = value(text, "paperbridge_source_last_success_timestamp_seconds", source="hf")
    assert last == polled.timestamp()
    assert value(text, "paperbridge_source_up", source="arxiv") == 1
    assert value(text, "paperbridge_healthy") == 1
    assert value(text, "paperbridge_jobs_crashed") == 0


async def test_the_paper_count_is_kept_for_a_short_while(sqlite_store: Store) -> None:
    now = [0.0]
    gauges = StoreGauges(
        HealthCheck(Settings(), sqlite_store), sqlite_store, count_ttl=30, clock=lambda: now[0]
    )
    assert value(await scrape(gauges), "paperbridge_papers_stored") == 0
    sqlite_store.add_papers([Paper("2606.00001", "Drift")])
    now[0] = 29.0
    assert value(await scrape(gauges), "paperbridge_papers_stored") == 0
    now[0] = 30.0
    assert value(await scrape(gauges), "paperbridge_papers_stored") == 1


async def test_a_store_that_cannot_be_read_is_reported_not_counted_as_zero(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'gone.db'}")
    gauges = StoreGauges(HealthCheck(Settings(), store), store)
    store.close()
    (tmp_path / "gone.db").unlink()  # wiped under the running bridge: no table answers
    try:
        text = await scrape(gauges)
    finally:
        store.close()
    assert value(text, "paperbridge_store_up") == 0
    assert value(text, "paperbridge_healthy") == 0
    assert value(text, "paperbridge_papers_stored") is None
