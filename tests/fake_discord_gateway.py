"""A stand-in for Discord's gateway on 127.0.0.1: the websocket the bot holds to receive slash
commands and button clicks.

It speaks the gateway protocol as discord.py uses it (discord-api-docs, topics/gateway): HELLO
on connect, READY after a valid IDENTIFY (close code 4004 for a wrong token), HEARTBEAT_ACK for
every heartbeat, RESUMED after a RESUME. Messages go out as plain JSON text frames, which
discord.py accepts alongside compressed ones. A test then sends events to the connected bot
with ``dispatch`` (``INTERACTION_CREATE``, …), and the bot answers them over the REST API
(``tests/fake_discord.FakeDiscord``).

Point ``[discord] gateway_url`` at ``gateway.url``.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

from aiohttp import WSMsgType, web

from tests.fake_discord import APPLICATION_ID, BOT_USER
from tests.local_server import ThreadedAsyncServer

HELLO, HEARTBEAT, IDENTIFY, RESUME, HEARTBEAT_ACK, DISPATCH = 10, 1, 2, 6, 11, 0
AUTHENTICATION_FAILED = 4004


class FakeGateway(ThreadedAsyncServer):
    """``with FakeGateway(token) as gateway:`` serves the gateway at ``gateway.url``."""

    thread_name = "fake Discord gateway"

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.identified: list[dict[str, Any]] = []  # IDENTIFY payloads ("d"), in order
        self.resumed: list[dict[str, Any]] = []
        self.heartbeats = 0
        self.connections = 0
        self.ready = threading.Event()
        self._port = 0
        self._sequence = 0
        self._socket: web.WebSocketResponse | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/"

    # -- lifecycle --------------------------------------------------------------------------------

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_get("/", self._connection)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        assert site._server is not None
        self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        await self._stopping.wait()
        if self._socket is not None:
            await self._socket.close()
        await runner.cleanup()

    # -- the test's side ----------------------------------------------------------------------

    def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send the connected bot an event, as Discord does (waits until it is sent)."""
        assert self._loop is not None and self._socket is not None, "no bot is connected"
        sent = asyncio.run_coroutine_threadsafe(self._dispatch(event, data), self._loop)
        sent.result(timeout=15)

    # -- the bot's side -----------------------------------------------------------------------

    async def _connection(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self._socket = ws
        await self._send(ws, {"op": HELLO, "d": {"heartbeat_interval": 41_250}})
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            payload = json.loads(message.data)
            op, data = payload.get("op"), payload.get("d")
            if op == HEARTBEAT:
                self.heartbeats += 1
                await self._send(ws, {"op": HEARTBEAT_ACK})
            elif op == IDENTIFY:
                self.identified.append(data)
                if data.get("token") != self.token:
                    await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
                    break
                await self._dispatch("READY", self._ready())
                self.ready.set()
            elif op == RESUME:
                self.resumed.append(data)
                await self._dispatch("RESUMED", {})
        if self._socket is ws:
            self._socket = None
        return ws

    def _ready(self) -> dict[str, Any]:
        return {
            "v": 10,
            "user": BOT_USER,
            "guilds": [],  # no guild to wait for: commands carry what they need
            "session_id": "fake-session",
            "resume_gateway_url": self.url,
            "application": {"id": APPLICATION_ID, "flags": 0},
        }

    async def _dispatch(self, event: str, data: dict[str, Any]) -> None:
        assert self._socket is not None
        self._sequence += 1
        await self._send(self._socket, {"op": DISPATCH, "t": event, "s": self._sequence, "d": data})

    @staticmethod
    async def _send(ws: web.WebSocketResponse, payload: dict[str, Any]) -> None:
        payload.setdefault("s", None)
        payload.setdefault("t", None)
        await ws.send_str(json.dumps(payload))
