"""The HTTP server `serve` runs: health now; feeds, Slack and Discord mount their routes here."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from bridge.app import Bridge
from bridge.errors import StoreError


def _stale_after(bridge: Bridge, source: str) -> timedelta:
    minutes = {
        "hf": bridge.settings.sources.hf.poll_every_minutes,
        "arxiv": bridge.settings.sources.arxiv.poll_every_minutes,
    }.get(source, 60)
    # Three missed polls in a row means something is wrong.
    return timedelta(minutes=3 * minutes)


def health_routes(bridge: Bridge) -> list[BaseRoute]:
    async def healthz(_request: Request) -> JSONResponse:
        now = datetime.now(UTC)
        body: dict[str, object] = {"status": "ok"}
        healthy = True
        try:
            await asyncio.to_thread(bridge.store.ping)
            body["store"] = "ok"
        except StoreError as exc:
            body["store"] = str(exc)
            healthy = False
        states = {s.source: s for s in await asyncio.to_thread(bridge.store.all_source_states)}
        sources: dict[str, object] = {}
        for source in bridge.sources:
            state = states.get(source.name)
            last = state.last_success_at if state else None
            age = (now - last).total_seconds() if last else None
            stale = age is None or age > _stale_after(bridge, source.name).total_seconds()
            sources[source.name] = {
                "last_success": last.isoformat() if last else None,
                "age_seconds": round(age) if age is not None else None,
                "last_error": state.last_error if state else None,
                "stale": stale,
            }
            # A source that has never succeeded yet (just started) is not "stale" for 503.
            if stale and last is not None:
                healthy = False
        body["sources"] = sources
        if not healthy:
            body["status"] = "unhealthy"
        return JSONResponse(body, status_code=200 if healthy else 503)

    return [Route("/healthz", healthz)]


def create_web_app(bridge: Bridge, extra_routes: list[BaseRoute] | None = None) -> Starlette:
    return Starlette(routes=[*health_routes(bridge), *(extra_routes or [])])
