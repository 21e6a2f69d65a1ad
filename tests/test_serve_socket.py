"""The socket `paperbridge serve` listens on (``bridge.commands.serving._listen``)."""

from __future__ import annotations

import asyncio
import socket

from bridge.commands.serving import _listen


def _nodelay_of_a_served_connection(sock: socket.socket) -> int:
    """TCP_NODELAY of a connection accepted on ``sock`` by asyncio, as uvicorn serves it."""

    async def probe() -> int:
        loop = asyncio.get_running_loop()
        seen: asyncio.Future[int] = loop.create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                accepted = transport.get_extra_info("socket")
                seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await loop.create_server(Probe, sock=sock)
        async with server:
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            try:
                return await asyncio.wait_for(seen, 10)
            finally:
                writer.close()

    return asyncio.run(probe())


def test_served_connections_do_not_wait_for_the_clients_acks() -> None:
    # With Nagle's algorithm on, a response written as its head and then its body held the
    # body until the client's delayed ACK came: about 40 ms on every request, whatever the
    # request (a 404 took 44 ms), and a cap of some 18 requests a second per connection.
    assert _nodelay_of_a_served_connection(_listen("127.0.0.1", 0)) != 0
