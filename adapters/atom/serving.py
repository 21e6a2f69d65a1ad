"""The hot path: answer a feed request from cached bytes, 200 or 304, in raw ASGI.

Readers poll the same few URLs all day. Starlette's Request, Headers and URL objects cost more
than the rest of a cached answer together, so this path reads the four headers it needs
straight from the ASGI scope and sends precomputed header lists.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from adapters.atom.conditional import Rendered, not_modified

# Header names a feed answer depends on, as ASGI spells them (lower-case bytes).
_WANTED = frozenset({b"host", b"accept", b"if-none-match", b"if-modified-since"})
# Without server.public_url the Host header names self links, and each distinct host is its
# own cache entry: only plausible host[:port] values count, anything else gets our address.
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(?::\d{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5})?")


class RawResponse(Response):
    """A Response whose header list is already built: nothing is re-encoded per request."""

    def __init__(
        self, status_code: int, raw_headers: list[tuple[bytes, bytes]], body: bytes
    ) -> None:
        self.status_code = status_code
        self.raw_headers = raw_headers
        self.body = body
        self.background = None


def request_headers(scope: Scope) -> dict[bytes, str]:
    """The headers the feed path reads; the first of each wins, like Starlette's get()."""
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _WANTED and name not in found:
            found[name] = value.decode("latin-1")
    return found


def app_path(scope: Scope) -> str:
    """The request's path inside the app: without the root path it is mounted under."""
    path, root = scope["path"], scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def base_url(scope: Scope, host: str | None) -> str:
    """scheme://host[:port]/root_path, as Starlette's request.base_url has it, unslashed."""
    if not host or not _HOST.fullmatch(host):
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else "localhost"
    return f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}".rstrip("/")


def raw(headers: dict[str, str], body: bytes | None) -> list[tuple[bytes, bytes]]:
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items() if v]
    if body is not None:
        encoded.append((b"content-length", str(len(body)).encode()))
    return encoded


class Answer:
    """A rendered variant with its two possible answers prebuilt."""

    __slots__ = ("headers_200", "headers_304", "rendered")

    def __init__(self, rendered: Rendered, extra: dict[str, str] | None = None) -> None:
        self.rendered = rendered
        shared = rendered.validator_headers()
        self.headers_304 = raw(shared, None)
        full = {"Content-Type": rendered.media_type, **shared, **(extra or {})}
        self.headers_200 = raw(full, rendered.body)

    def parts(self, headers: dict[bytes, str]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, header list and body for a request with these headers: 304 or 200."""
        if not_modified(
            self.rendered, headers.get(b"if-none-match"), headers.get(b"if-modified-since")
        ):
            return 304, self.headers_304, b""
        return 200, self.headers_200, self.rendered.body

    def respond(self, headers: dict[bytes, str]) -> RawResponse:
        return RawResponse(*self.parts(headers))


async def send_text(
    send: Send, status: int, message: str, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = (message + "\n").encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ExactFeedPaths:
    """ASGI middleware answering the feed URLs this configuration serves before any routing.

    Readers poll these few URLs all day. Starlette would try its routes in order, a regex
    each, inside two exception-handling layers; one dict lookup here finds the endpoint. A
    path not listed (an unknown name or format) goes on to the templated routes. The scope
    gets the templated route, so metrics label the request as the router would have.
    """

    def __init__(self, app: ASGIApp, table: dict[str, tuple[Route, dict[str, str]]]) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            found = self.table.get(app_path(scope))
            if found is not None:
                scope["route"], scope["path_params"] = found
                await found[0].app(scope, receive, send)
                return
        await self.app(scope, receive, send)
