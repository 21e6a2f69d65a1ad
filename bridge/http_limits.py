"""The HTTP protocol `serve` runs: uvicorn's httptools protocol with limits on what a client holds.

uvicorn with httptools accepts a header of any size (llhttp has no limit, and httptools gathers
a header's pieces until it ends) and waits forever for a request whose headers or body never
finish; its keep-alive timeout only starts after a response. An ASGI middleware sees nothing
before the headers are complete, so the limits live here, in the protocol:

* the request line and headers together: at most ``MAX_HEAD_BYTES``, else 431 and close;
* a whole request (headers and body) arrives within ``REQUEST_SECONDS`` of its first byte, or
  of the connection opening for the first request, else 408 and close (a half-sent body ends
  the app's wait as a disconnect);
* at most ``MAX_CONNECTIONS`` open at once; one more is answered 503 and closed unread.

Everything else is uvicorn's: the parser, the request cycle, keep-alive between requests.
"""

from __future__ import annotations

import asyncio
import logging
from asyncio import TimerHandle
from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

log = logging.getLogger(__name__)

# Browsers send a few kilobytes; nginx's default allows 4 lines of 8 KB and Node 16 KB in all.
MAX_HEAD_BYTES = 32 * 1024
# A slow phone on a bad link sends a Slack-sized request in well under a second.
REQUEST_SECONDS = 10.0
# Feed readers, browsers and Slack keep a few dozen connections at most; each costs a socket.
MAX_CONNECTIONS = 500


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` within the limits above; subclass to change them (tests do)."""

    max_head_bytes = MAX_HEAD_BYTES
    request_seconds = REQUEST_SECONDS
    max_connections = MAX_CONNECTIONS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # One timer per connection, not per request (arming and cancelling one per request
        # cost a bare app 5% of its requests per second): when it fires it looks at when the
        # request being received started, and fires again when that one's time is up.
        self._timer: TimerHandle | None = None
        # When the request now arriving started (its first byte, or the connection's opening
        # for the first); None while none is arriving.
        self._started: float | None = None
        # Between a request's first byte and the end of its headers; head bytes so far.
        self._in_head = False
        self._head_bytes = 0
        # Between the end of one request and the first byte of the next (or of the first).
        self._between_requests = True
        self._refused = False

    # -- connections -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse(503, "too many open connections; try again shortly", b"retry-after: 5\r\n")
            return
        # A connection that never sends a byte is held to the same deadline as a request.
        self._started = self.loop.time()
        self._timer = self.loop.call_later(self.request_seconds, self._check_deadline)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)

    # -- bytes and parser events -----------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._started is None:
            self._started = self.loop.time()  # a kept-alive connection's next request
        if self._in_head or self._between_requests:
            # Counted before the parser sees the bytes: httptools would gather a header of
            # any size before handing it over. The head ends at the first blank line.
            end = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, f"request headers larger than {self.max_head_bytes} bytes")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._between_requests = False
        self._in_head = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._started = None
        self._between_requests = True
        super().on_message_complete()

    # -- the deadline ----------------------------------------------------------------------

    def _check_deadline(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        started, now = self._started, self.loop.time()
        if started is None:  # no request arriving: look again a whole period later
            self._timer = self.loop.call_later(self.request_seconds, self._check_deadline)
            return
        if now < started + self.request_seconds:  # one arriving, with time left
            self._timer = self.loop.call_later(
                started + self.request_seconds - now, self._check_deadline
            )
            return
        if self.cycle is not None and not self.cycle.response_complete and not self._in_head:
            # The app has the request and waits for the rest of its body: hanging up makes
            # its receive() return a disconnect. An answer now could cross the app's own.
            self.transport.close()
            return
        self._refuse(408, f"the request did not arrive within {self.request_seconds:g} s")

    def _refuse(self, status: int, message: str, extra: bytes = b"") -> None:
        self._refused = True
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "unknown"
        log.info("http: refused %s with %d: %s", client, status, message)
        body = message.encode()
        self.transport.write(
            STATUS_LINE[status]
            + b"content-type: text/plain; charset=utf-8\r\n"
            + b"content-length: %d\r\n" % len(body)
            + extra
            + b"connection: close\r\n\r\n"
            + body
        )
        self.transport.close()


__all__ = ["LimitedHttpToolsProtocol", "MAX_CONNECTIONS", "MAX_HEAD_BYTES", "REQUEST_SECONDS"]
