"""The HTTP server `serve` runs: health and metrics here; feeds, Slack and Discord mount routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias

from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge import metrics
from bridge.app import Bridge
from bridge.errors import StoreError
from bridge.gauges import StoreGauges
from bridge.health import HealthCheck, HealthReport
from bridge.status import delivery_health


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def health_json(report: HealthReport, now: datetime) -> dict[str, Any]:
    """``/healthz``'s answer, bar the deliveries: ``status`` ("ok", "starting" or
    "unhealthy"), ``problems`` (why not ok, one plain sentence each: what `paperbridge
    healthcheck` prints), ``warnings``, and each source and crashed job."""
    sources: dict[str, object] = {}
    for source in report.sources:
        last = source.last_success
        sources[source.source] = {
            "state": source.condition,
            "last_success": _iso(last),
            "age_seconds": round((now - last).total_seconds()) if last else None,
            "last_error": source.last_error,
            "consecutive_failures": source.failures,
            "next_poll": _iso(source.next_poll),
            "stale": source.condition == "stale",
        }
    return {
        "status": report.status,
        "problems": report.problems,
        "warnings": report.warnings,
        "store": report.store_error or "ok",
        "sources": sources,
        "jobs": [
            {"job": job.job, "error": job.error, "at": _iso(job.at), "recorded": job.recorded}
            for job in report.jobs
        ],
    }


def health_routes(bridge: Bridge, health: HealthCheck | None = None) -> list[BaseRoute]:
    """``/healthz``: 200 only when every source had a recent real success and no scheduled
    job is crashed; 503 otherwise, with the reasons in ``problems``."""
    check = health or HealthCheck(bridge.settings, bridge.store, [s.name for s in bridge.sources])

    def read(now: datetime) -> dict[str, Any]:
        report = check.read(now)
        body = health_json(report, now)
        if not report.store_error:
            try:
                # Paused destinations show here but do not make the bridge unhealthy: a
                # restart would not fix a channel that removed the app.
                body["deliveries"] = delivery_health(bridge.store, now)
            except StoreError as exc:
                body["status"] = "unhealthy"
                body["store"] = str(exc)
                body["problems"].append(f"store: {exc}")
        return body

    async def healthz(_request: Request) -> JSONResponse:
        body = await asyncio.to_thread(read, datetime.now(UTC))
        # Probes must see the live answer, never a cached one.
        headers = {"Cache-Control": "no-store"}
        code = 200 if body["status"] == "ok" else 503
        return JSONResponse(body, status_code=code, headers=headers)

    return [Route("/healthz", healthz)]


def metrics_routes(gauges: StoreGauges | None = None) -> list[BaseRoute]:
    """``/metrics``: this process's counters and histogram, and ``gauges`` read from the store
    at scrape time (in a worker thread: they query the database)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics.REGISTRY)
    if gauges is not None:
        registry.register(gauges)

    async def exposition(_request: Request) -> Response:
        return Response(
            await asyncio.to_thread(generate_latest, registry),
            media_type=metrics.CONTENT_TYPE,
            headers={"Cache-Control": "no-store"},
        )

    return [Route("/metrics", exposition)]


# A request answered from memory: the route template (its metrics label), status, header
# list and body.
FastAnswer: TypeAlias = tuple[str, int, list[tuple[bytes, bytes]], bytes]
# Looks at a request's scope and returns its answer when it has one ready, else None. It must
# not await or block: it runs on the event loop for every request.
FastPath: TypeAlias = Callable[[Scope], FastAnswer | None]


class FrontDoor:
    """Pure ASGI app in front of Starlette: answers the requests a fast path has ready.

    Nearly all of ``serve``'s traffic is feed readers polling a few URLs whose bytes are
    cached. Through Starlette such a hit passes its entry, ServerErrorMiddleware and
    RequestTimer (a coroutine frame and a ``send`` wrapper each) before any feed code runs;
    here it is one lookup and two sends, timed into the same histogram with the same labels.
    Everything else (a miss, a failure, another route) goes to the app unchanged. A fast
    path that raises hands the request to the app too, which then answers, logs and counts
    the failure exactly as it does without this door.
    """

    def __init__(
        self,
        app: ASGIApp,
        fast_paths: Sequence[FastPath],
        histogram: metrics.Histogram = metrics.REQUEST_SECONDS,
    ) -> None:
        self.app = app
        self.fast_paths = tuple(fast_paths)
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            started = time.perf_counter()
            for fast in self.fast_paths:
                try:
                    found = fast(scope)
                except Exception:  # noqa: BLE001 - the app answers it (see the docstring)
                    break
                if found is not None:
                    template, status, headers, body = found
                    try:
                        await send(
                            {"type": "http.response.start", "status": status, "headers": headers}
                        )
                        await send({"type": "http.response.body", "body": body})
                    finally:
                        metrics.observe_request(
                            self.histogram, template, scope["method"], status, started
                        )
                    return
        await self.app(scope, receive, send)


def create_web_app(
    bridge: Bridge,
    extra_routes: list[BaseRoute] | None = None,
    middleware: list[Middleware] | None = None,
    health: HealthCheck | None = None,
    fast_paths: Sequence[FastPath] = (),
) -> ASGIApp:
    """Health, metrics and the adapters' routes; ``middleware`` runs inside the request timer.
    ``health`` (default: from the store alone) adds what this process knows beyond the store:
    ``serve`` passes one that knows its crashed jobs. ``fast_paths`` answer from memory in
    front of it all (FrontDoor)."""
    check = health or HealthCheck(bridge.settings, bridge.store, [s.name for s in bridge.sources])
    app = Starlette(
        # Mounted routes first: feeds are nearly all the traffic, and each route tried before
        # the matching one costs a regex match. None of them claims /healthz or /metrics.
        routes=[
            *(extra_routes or []),
            *health_routes(bridge, check),
            *metrics_routes(StoreGauges(check, bridge.store)),
        ],
        middleware=[Middleware(metrics.RequestTimer), *(middleware or [])],
    )
    return FrontDoor(app, fast_paths) if fast_paths else app
