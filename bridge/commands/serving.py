"""`paperbridge serve`: the bridge itself: polls, deliveries, outputs and the web app."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import uvicorn

from bridge import metrics
from bridge.app import Bridge, open_bridge
from bridge.chat import ChatService
from bridge.config import Settings
from bridge.crashes import CrashWatch, explain, is_disk_full
from bridge.errors import BridgeError
from bridge.health import LOAD_MEANWHILE, HealthCheck, local_time, next_poll
from bridge.http_limits import LimitedHttpToolsProtocol
from bridge.jobs import DeliveryJobs, schedule_poll
from bridge.ledger import build_ledger, sync_configured
from bridge.outputs import (
    OutputContext,
    output_fast_paths,
    output_middleware,
    running_outputs,
)
from bridge.scheduler import Scheduler
from bridge.store import safe_url
from bridge.web import create_web_app

# The name these lines were always logged under (before the commands were split in modules),
# which logging configurations and tests/test_health.py filter on.
log = logging.getLogger("bridge.commands")


def _listen(host: str, port: int) -> socket.socket:
    """The HTTP socket, bound before anything else starts; BridgeError if it cannot be.

    Left to uvicorn, the bind comes after the scheduler and the outputs started, and a busy
    port ends in uvicorn's sys.exit with jobs cancelled mid-flight: tracebacks, exit 3, and
    "serving on" already logged. Bound first, a busy port is one line and nothing ran.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not left 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only
    # on connections whose socket says TCP, and accepted ones copy this socket's. With it
    # on, a response written as head then body held the body until the client's delayed
    # ACK: about 40 ms added to every request (bench/serve_processes.py, RESULTS.md).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # As uvicorn does: a restart may bind while the last run's connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise BridgeError(f"cannot listen on {_host_port(host, port)}: {reason}") from None
    return sock


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(settings: Settings, host: str, port: int) -> int:
    sock = _listen(host, port)
    port = sock.getsockname()[1]  # the port given, or the one chosen for --port 0
    try:
        return await _serve(settings, sock, host, port)
    except Exception as exc:
        # Opening the store, migrating it or saving the configured digests on a full disk:
        # one line naming the path, not a driver's statement dump or a traceback.
        if is_disk_full(exc):
            raise BridgeError(
                f"serve cannot run: {explain(exc, settings.store.database_url)}"
            ) from None
        raise


async def _serve(settings: Settings, sock: socket.socket, host: str, port: int) -> int:
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(contextlib.closing(sock))
        bridge = await stack.enter_async_context(open_bridge(settings))
        # Crashed jobs are logged, recorded and shown by every health view (bridge.crashes).
        watch = CrashWatch(bridge.store, settings.store.database_url)
        health = HealthCheck(
            settings, bridge.store, [s.name for s in bridge.sources], watch.open_crashes
        )
        scheduler = Scheduler(observer=watch)
        # Deliveries (bridge/ledger.py): digests and each poll run once across processes.
        ledger = build_ledger(bridge.store, settings)
        await asyncio.to_thread(sync_configured, ledger, settings)
        context = OutputContext(
            settings,
            bridge.store,
            ledger,
            ChatService(bridge.store, ledger, settings),
            bridge=bridge,
            health=health,
        )
        # Every output, the feeds and the page included, is an installed plug-in.
        outputs = await stack.enter_async_context(running_outputs(context, listen=True))
        for source in bridge.sources:
            schedule_poll(scheduler, ledger, settings, source.name, _poll_job(bridge, source.name))
        DeliveryJobs(scheduler, ledger).install()
        routes = [route for output in outputs for route in output.routes()]
        app = create_web_app(
            bridge,
            extra_routes=routes,
            middleware=output_middleware(outputs),
            health=health,
            fast_paths=output_fast_paths(outputs),
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            # Bounded headers, requests that must arrive in time, a bounded number of sockets.
            http=LimitedHttpToolsProtocol,
        )
        # A search thread holds the GIL while it checks papers; switching every 1 ms (not 5)
        # lets the event loop answer /healthz and feeds in between: /healthz p99 beside 8
        # worst-case searches went from 83 to 39-52 ms (bench/worst_case.py, RESULTS.md).
        sys.setswitchinterval(0.001)
        server = _GracefulServer(config)
        scheduler.start()
        log.info(
            "serving on http://%s (store %s)",
            _host_port(host, port),
            safe_url(settings.store.database_url),
        )
        try:
            await server.serve(sockets=[sock])
        finally:
            await scheduler.stop()
    log.info("stopped")
    return 0


class _GracefulServer(uvicorn.Server):
    """uvicorn, but a SIGTERM or SIGINT only ends ``serve()``.

    Plain uvicorn raises the signal again once its own shutdown is done, and the default
    handler then ends the process before the rest of ``serve`` cleans up: chat connections
    closed, the scheduler stopped, the store closed. Here the signal just makes ``serve()``
    return, and the command exits 0 after everything has been closed.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _poll_job(bridge: Bridge, source: str):  # type: ignore[no-untyped-def]
    async def job() -> None:
        try:
            report = await bridge.poller.poll_once(only=source)
        except Exception:
            # A crash, not a failed fetch (the poller records those): the scheduler's observer
            # logs it and records it as a failed poll of the source (bridge.crashes).
            metrics.POLLS.inc(source=source, outcome="error")
            metrics.ERRORS.inc(where=f"poll:{source}")
            raise
        for src in report.sources:
            metrics.POLLS.inc(source=src.source, outcome="error" if src.error else "ok")
            metrics.PAPERS.inc(len(src.new), source=src.source)
            if src.error:
                metrics.ERRORS.inc(where=f"poll:{src.source}")
                # The failure itself was logged by the poller; say what happens next.
                now = datetime.now(UTC)
                upcoming = next_poll(bridge.settings, src.source, now, now)
                log.warning(
                    "poll %s: next poll at %s; %s",
                    src.source,
                    local_time(upcoming, bridge.settings.time_zone),
                    LOAD_MEANWHILE,
                )
                continue
            log.info(
                "poll %s: %d new, %d revised, %d merged",
                src.source,
                len(src.new),
                len(src.revised),
                src.merged,
            )

    return job
