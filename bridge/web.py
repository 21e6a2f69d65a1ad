"""The HTTP server `serve` runs: health and metrics here; feeds, Slack and Discord mount routes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bridge import metrics
from bridge.app import Bridge
from bridge.errors import StoreError
from bridge.health import is_stale
from bridge.status import delivery_health


def health_routes(bridge: Bridge, started: datetime | None = None) -> list[BaseRoute]:
    """``/healthz``; ``started``: when this process started (default: now), which stands in
    for a source's last success until it has one, so a source that never worked (a firewall,
    a wrong base_url) turns the bridge unhealthy after the same three missed polls."""
    started = started or datetime.now(UTC)

    async def healthz(_request: Request) -> JSONResponse:
        now = datetime.now(UTC)
        body: dict[str, object] = {"status": "ok"}
        healthy = True
        states = {}
        try:
            await asyncio.to_thread(bridge.store.ping)
            body["store"] = "ok"
            states = {s.source: s for s in await asyncio.to_thread(bridge.store.all_source_states)}
            # Paused destinations show here but do not make the bridge unhealthy: a restart
            # would not fix a channel that removed the app.
            body["deliveries"] = await asyncio.to_thread(delivery_health, bridge.store)
        except StoreError as exc:
            body["store"] = str(exc)
            healthy = False
        sources: dict[str, object] = {}
        for source in bridge.sources:
            state = states.get(source.name)
            last = state.last_success_at if state else None
            age = (now - last).total_seconds() if last else None
            stale = is_stale(bridge.settings, source.name, last, now, started)
            sources[source.name] = {
                "last_success": last.isoformat() if last else None,
                "age_seconds": round(age) if age is not None else None,
                "last_error": state.last_error if state else None,
                "stale": stale,
            }
            if stale:
                healthy = False
        body["sources"] = sources
        if not healthy:
            body["status"] = "unhealthy"
        # Probes must see the live answer, never a cached one.
        headers = {"Cache-Control": "no-store"}
        return JSONResponse(body, status_code=200 if healthy else 503, headers=headers)

    return [Route("/healthz", healthz)]


def metrics_routes(registry: CollectorRegistry = metrics.REGISTRY) -> list[BaseRoute]:
    async def exposition(_request: Request) -> Response:
        return Response(
            await asyncio.to_thread(generate_latest, registry),
            media_type=metrics.CONTENT_TYPE,
            headers={"Cache-Control": "no-store"},
        )

    return [Route("/metrics", exposition)]


def create_web_app(
    bridge: Bridge,
    extra_routes: list[BaseRoute] | None = None,
    middleware: list[Middleware] | None = None,
) -> Starlette:
    """Health, metrics and the adapters' routes; ``middleware`` runs inside the request timer."""
    return Starlette(
        # Mounted routes first: feeds are nearly all the traffic, and each route tried before
        # the matching one costs a regex match. None of them claims /healthz or /metrics.
        routes=[*(extra_routes or []), *health_routes(bridge), *metrics_routes()],
        middleware=[Middleware(metrics.RequestTimer), *(middleware or [])],
    )
