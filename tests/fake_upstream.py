"""A real HTTP server on 127.0.0.1 that stands in for HF and arXiv, with faults on request."""

from __future__ import annotations

import mimetypes
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal, NamedTuple, Self
from urllib.parse import parse_qsl, urlsplit

from tests.local_server import LocalServer

FIXTURES = Path(__file__).parent / "fixtures"

FaultKind = Literal["status", "timeout", "reset", "truncate", "drip"]

_CONTENT_TYPES = {
    ".json": "application/json; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
}


class Request(NamedTuple):
    """One request as the server saw it; header names are lower-cased."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    time: float


@dataclass
class Route:
    body: bytes
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/plain; charset=utf-8"
    query: dict[str, str] | None = None
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0


@dataclass
class Fault:
    kind: FaultKind
    status: int = 503
    retry_after: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 2.0


def fixture(name: str) -> bytes:
    """Bytes of tests/fixtures/<name>, e.g. ``fixture("arxiv/rss_cs.AI_2026-04-27_excerpt.xml")``."""
    return (FIXTURES / name).read_bytes()


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _Server(ThreadingHTTPServer):
    # Handler threads are joined on close (rather than left as daemons) so a test cannot leak
    # a thread still writing into a socket that belongs to the next test.
    daemon_threads = False
    block_on_close = True

    def __init__(self, upstream: FakeUpstream) -> None:
        self.upstream = upstream
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Registered here, in the accept loop, so close_connections() cannot miss a socket
        # whose handler thread has not started yet.
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake handler threads blocked reading an idle keep-alive connection."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up mid-answer is what several tests do on purpose; keep stderr quiet
        # but keep the evidence for tests that want it.
        self.upstream.errors.append(sys.exc_info()[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the client's delayed ACK adds 40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(send_body=True)

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, *, send_body: bool) -> None:
        up = self.server.upstream
        parts = urlsplit(self.path)
        path = parts.path
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.lower(): v for k, v in self.headers.items()}
        up._record(Request(self.command, path, query, headers, time.monotonic()))
        fault, route = up._take(path, query)
        up._enter()
        try:
            self._respond(up, fault, route, headers, send_body)
        finally:
            up._leave()

    def _respond(
        self,
        up: FakeUpstream,
        fault: Fault | None,
        route: Route | None,
        headers: dict[str, str],
        send_body: bool,
    ) -> None:

        if fault is not None and fault.kind == "timeout":
            # Wait on the stop event, not time.sleep, so shutting down never waits for it.
            up._stopping.wait(fault.delay)
            self._hang_up(reset=False)
            return
        if fault is not None and fault.kind == "reset":
            self._hang_up(reset=True)
            return
        if fault is not None and fault.kind == "drip":
            self._drip(up, route, fault.delay)
            return
        if fault is not None and fault.kind == "truncate":
            body = route.body if route is not None and route.body else b"x" * 64
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._hang_up(reset=False)
            return
        if fault is not None:
            extra = dict(fault.headers)
            if fault.retry_after is not None:
                extra["Retry-After"] = fault.retry_after
            phrase = _phrase(fault.status)
            self._send(fault.status, phrase.encode(), "text/plain; charset=utf-8", extra, send_body)
            return

        if route is None:
            self._send(404, b"Not Found", "text/plain; charset=utf-8", {}, send_body)
            return
        if route.delay:
            up._stopping.wait(route.delay)
        extra = dict(route.headers)
        if route.etag is not None:
            extra["ETag"] = route.etag
        if route.last_modified is not None:
            extra["Last-Modified"] = route.last_modified
        if route.status == 200 and _not_modified(route, headers):
            self._send(304, b"", None, extra, send_body=False)
            return
        self._send(route.status, route.body, route.content_type, extra, send_body)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str | None,
        headers: Mapping[str, str],
        send_body: bool,
    ) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body and status != 304:
            self.wfile.write(body)

    def _drip(self, up: FakeUpstream, route: Route | None, interval: float) -> None:
        """A whole, honest answer sent 1 KB every ``interval`` seconds: each read gets bytes
        in time, so only a deadline on the whole exchange stops a client waiting for it."""
        body = route.body if route is not None and route.body else b"x" * 65536
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        for start in range(0, len(body), 1024):
            if up._stopping.wait(interval):
                break
            self.wfile.write(body[start : start + 1024])
            self.wfile.flush()
        self.close_connection = True

    def _hang_up(self, *, reset: bool) -> None:
        self.close_connection = True
        if reset:
            # Linger 0 makes close() send RST instead of FIN: a real "connection reset by peer".
            # Closed here, because the server would otherwise shutdown(SHUT_WR) first and send
            # a polite FIN before the RST.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _not_modified(route: Route, headers: Mapping[str, str]) -> bool:
    # RFC 9110 §13.2.2: If-None-Match wins; If-Modified-Since counts only without it.
    inm = headers.get("if-none-match")
    if inm is not None:
        if route.etag is None:
            return False
        if inm.strip() == "*":
            return True
        wanted = {_weak(tag) for tag in inm.split(",")}
        return _weak(route.etag) in wanted
    ims = headers.get("if-modified-since")
    if ims is not None and route.last_modified is not None:
        try:
            return parsedate_to_datetime(route.last_modified) <= parsedate_to_datetime(ims)
        except (TypeError, ValueError):
            return False
    return False


def _weak(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


class FakeUpstream(LocalServer):
    """``with FakeUpstream() as up:`` serves routes added by the test at ``up.base_url``.

    Routes match on path, and on the exact query when one is given; a route with a query wins
    over one without. Faults queued with ``fail`` are used up first, one per request to the
    path, whatever its query. Unknown paths answer 404.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.errors: list[BaseException | None] = []
        # Requests being answered right now, and the most seen at once: shows whether a client
        # kept to one connection at a time.
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._routes: dict[str, list[Route]] = {}
        self._faults: dict[str, deque[Fault]] = {}
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeUpstream is not running")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def start(self) -> Self:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"fake-upstream:{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def add(
        self,
        path: str,
        body: bytes | str,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        content_type: str = "text/plain; charset=utf-8",
        query: Mapping[str, str | int] | None = None,
        etag: str | None = None,
        last_modified: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Serve ``body`` at ``path``; replaces an earlier route with the same path and query.

        ``etag`` / ``last_modified`` (or the same names in ``headers``) make the route answer
        304 to a matching If-None-Match / If-Modified-Since. ``delay`` holds the answer back,
        for tests that need requests to overlap.
        """
        extra = dict(headers or {})
        for name in list(extra):
            if name.lower() == "etag" and etag is None:
                etag = extra.pop(name)
            elif name.lower() == "last-modified" and last_modified is None:
                last_modified = extra.pop(name)
        route = Route(
            body=body.encode() if isinstance(body, str) else body,
            status=status,
            headers=extra,
            content_type=content_type,
            query=None if query is None else {k: str(v) for k, v in query.items()},
            etag=etag,
            last_modified=last_modified,
            delay=delay,
        )
        with self._lock:
            routes = [r for r in self._routes.get(path, []) if r.query != route.query]
            routes.append(route)
            self._routes[path] = routes

    def add_fixture(
        self,
        path: str,
        name: str,
        *,
        content_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        """Serve tests/fixtures/<name> at ``path``, typed by its extension unless told."""
        if content_type is None:
            suffix = Path(name).suffix
            content_type = _CONTENT_TYPES.get(suffix) or (
                mimetypes.guess_type(name)[0] or "application/octet-stream"
            )
        self.add(path, fixture(name), content_type=content_type, **kwargs)

    def fail(
        self,
        path: str,
        times: int = 1,
        *,
        status: int = 503,
        retry_after: str | int | None = None,
        kind: FaultKind = "status",
        headers: Mapping[str, str] | None = None,
        delay: float = 2.0,
    ) -> None:
        """Make the next ``times`` requests to ``path`` fail.

        ``kind``: "status" answers ``status`` (with Retry-After if given); "timeout" stays
        silent for ``delay`` seconds, then hangs up (use a client timeout well below it);
        "reset" closes the connection with RST, unanswered; "truncate" promises a full body in
        Content-Length and sends half; "drip" sends the route's body (64 KB without a route)
        1 KB every ``delay`` seconds.
        """
        fault = Fault(
            kind=kind,
            status=status,
            retry_after=None if retry_after is None else str(retry_after),
            headers=dict(headers or {}),
            delay=delay,
        )
        with self._lock:
            self._faults.setdefault(path, deque()).extend(fault for _ in range(times))

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def requests_to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _take(self, path: str, query: dict[str, str]) -> tuple[Fault | None, Route | None]:
        with self._lock:
            faults = self._faults.get(path)
            fault = faults.popleft() if faults else None
            routes = self._routes.get(path, [])
            route = next((r for r in routes if r.query == query), None)
            if route is None:
                route = next((r for r in routes if r.query is None), None)
            return fault, route
