"""The HTTP protocol `serve` runs: uvicorn's httptools protocol with limits on what a client holds.

uvicorn with httptools accepts a header of any size (llhttp has no limit, and httptools gathers
a header's pieces until it ends) and waits forever for a request whose headers or body never
finish; its keep-alive timeout only starts after a response. An ASGI middleware sees nothing
before the headers are complete, so the limits live here, in the protocol:

* the request line and headers together: at most ``MAX_HEAD_BYTES``, else 431 and close;
* a whole request (headers and body) arrives within ``REQUEST_SECONDS`` of its first byte, or
  of the connection opening for the first request, else 408 and close (only the close while
  the app holds a request it has not answered: a half-sent body ends its wait as a disconnect);
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

_data_received = HttpToolsProtocol.data_received
_on_message_begin = HttpToolsProtocol.on_message_begin
_on_headers_complete = HttpToolsProtocol.on_headers_complete
_on_message_complete = HttpToolsProtocol.on_message_complete


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` within the limits above; subclass to change them (tests do).

    Its cost rides on every request, so the common one (a whole request in one read) adds
    only a few attribute writes and one ``find`` over its bytes: no clock read, no timer.
    """

    max_head_bytes = MAX_HEAD_BYTES
    request_seconds = REQUEST_SECONDS
    max_connections = MAX_CONNECTIONS

    # Slots, not the instance dict: uvicorn's protocol keeps 28 attributes there, and past
    # 30 CPython stops sharing the dict's keys and reads every attribute (uvicorn's too)
    # by a slower lookup.
    __slots__ = ("_timer", "_started", "_arriving", "_counting", "_head_bytes", "_refused")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # At most one timer per connection, armed only while a request is arriving: when it
        # fires it looks at when the request now arriving started, and fires again when that
        # one's time is up. A request that arrives whole in one read never arms it, and the
        # end of a message cancels it. (A timer armed per request cost a bare app 5% of its
        # requests per second; one armed for a connection's whole life 2-3%, in process:
        # asyncio's timer heap, which uvicorn's keep-alive timers pass through on every
        # request, compares its entries in Python.)
        self._timer: TimerHandle | None = None
        # When the request now arriving started (the read that brought its first byte, or the
        # connection's opening for the first); None while none is arriving or it has not been
        # stamped yet (see data_received).
        self._started: float | None = None
        # Bytes have come that no complete message has used up yet.
        self._arriving = False
        # Head bytes are counted between requests and within a head; these so far.
        self._counting = True
        self._head_bytes = 0
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
    # uvicorn's own methods are called as plain functions: ``super()`` builds an object on
    # every call, and these run four times a request.

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._counting:
            # Counted before the parser sees the bytes: httptools would gather a header of
            # any size before handing it over. The head ends at the first blank line.
            end = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, f"request headers larger than {self.max_head_bytes} bytes")
                return
        self._arriving = True
        _data_received(self, data)
        if self._arriving and self._started is None:
            # Part of a request is still to come: its time runs from now, the read that
            # brought its first byte (a kept-alive connection's next request).
            self._started = self.loop.time()
            if self._timer is None:
                self._timer = self.loop.call_later(self.request_seconds, self._check_deadline)

    def on_message_begin(self) -> None:
        _on_message_begin(self)
        # After a complete message in the same read (pipelining): the next one is arriving.
        self._arriving = True

    def on_headers_complete(self) -> None:
        self._counting = False
        self._head_bytes = 0
        _on_headers_complete(self)

    def on_message_complete(self) -> None:
        self._arriving = False
        self._started = None
        self._counting = True
        if self._timer is not None:  # nothing to time until the next request's first read
            self._timer.cancel()
            self._timer = None
        _on_message_complete(self)

    # -- the deadline ----------------------------------------------------------------------

    def _check_deadline(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        started = self._started
        if started is None:  # no request arriving: the next one's first read arms it again
            return
        left = started + self.request_seconds - self.loop.time()
        if left > 0:  # one arriving, with time left
            self._timer = self.loop.call_later(left, self._check_deadline)
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # The app has a request and has not finished answering it (it may wait for the
            # rest of this one's body): hanging up makes its receive() return a disconnect.
            # An answer now could cross the app's own.
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
