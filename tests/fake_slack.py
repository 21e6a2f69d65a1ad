"""A fake Slack on 127.0.0.1: the Web API, response_url webhooks, OAuth and Socket Mode.

A real aiohttp server in a thread of its own (or its own process: ``python -m tests.fake_slack``)
that paperbridge reaches through ``[slack] api_base_url``. It records every call, answers the
methods paperbridge uses the way Slack does (``{"ok": false, "error": …}`` with HTTP 200 for
Slack errors, 429 with ``Retry-After`` for rate limits), enforces Slack's limit of about one
message per second per channel when asked to, and injects faults: HTTP statuses, Slack errors,
answers that never come (timeouts) and answers lost after the message was posted.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.local_server import ThreadedAsyncServer

DEFAULT_TOKEN = "xoxb-fake-bot-token"
DEFAULT_TEAM = "T0FAKE"
APP_TOKEN = "xapp-fake-app-token"
BOT_USER = "U0BOT"
_PAPER_LINK = re.compile(r"<https://arxiv\.org/abs/([^|>]+)\|")


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the fake saw it and what it answered."""

    method: str  # "chat.postMessage", …; "response" for a response_url post
    token: str | None
    body: dict[str, Any]
    at: float  # the fake's clock
    status: int
    error: str | None = None
    path: str = ""


@dataclass
class Fault:
    method: str
    channel: str | None = None
    status: int = 200
    error: str | None = None
    retry_after: float | None = None
    hang: bool = False  # no answer until the fake stops: the client times out
    posted: bool = False  # the message is posted, then the answer is lost (hang or error)


def papers_in(message: dict[str, Any]) -> list[str]:
    """The arXiv ids a message links papers to (titles link to the abstract page)."""
    texts = []
    for block in message.get("blocks", []):
        if block.get("type") == "section":
            texts.append(block["text"]["text"])
    return [m.group(1) for text in texts for m in _PAPER_LINK.finditer(text)]


class FakeSlack(ThreadedAsyncServer):
    """Start with ``with FakeSlack() as slack:``; point the client at ``slack.api_url``.

    Args:
        channel_interval: the least time between two messages to one channel; a message
            sooner gets 429 with Retry-After (0: no limit).
        clock: the fake's clock for the rate limit and call times.
        tokens: bot token -> team id.
    """

    thread_name = "fake Slack"

    def __init__(
        self,
        *,
        channel_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        tokens: dict[str, str] | None = None,
        port: int = 0,
    ) -> None:
        super().__init__()
        self.channel_interval = channel_interval
        self.clock = clock
        self.tokens = dict(tokens or {DEFAULT_TOKEN: DEFAULT_TEAM})
        self.calls: list[Call] = []
        # channel -> messages posted there, each with its "ts" (and "thread_ts" in a thread)
        self.posted: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.deleted: list[tuple[str, str]] = []
        self.channel_errors: dict[str, str] = {}
        self.user_zones: dict[str, str] = {}
        self.join_errors: dict[str, str] = {}
        # OAuth: code -> the oauth.v2.access answer
        self.oauth_codes: dict[str, dict[str, Any]] = {}
        self.acks: dict[str, dict[str, Any]] = {}
        self.rate_limited = 0
        self._faults: list[Fault] = []
        self._last_post: dict[str, float] = {}
        self._seq = 0
        self._lock = threading.Lock()
        self._port = port
        self._runner: web.AppRunner | None = None
        self._sockets: list[web.WebSocketResponse] = []

    # -- addresses --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base_url}/response/{name}"

    # -- control ----------------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        times: int = 1,
        channel: str | None = None,
        status: int = 200,
        error: str | None = None,
        retry_after: float | None = None,
        hang: bool = False,
        posted: bool = False,
    ) -> None:
        """The next ``times`` calls of ``method`` (to ``channel``) fail this way."""
        with self._lock:
            for _ in range(times):
                self._faults.append(
                    Fault(method, channel, status, error, retry_after, hang, posted)
                )

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in list(self.calls) if call.method == method]

    def papers_posted(self, channel: str) -> list[str]:
        return [paper for message in self.posted[channel] for paper in papers_in(message)]

    async def wait_for(self, predicate: Callable[[], bool], within: float = 10.0) -> None:
        """Until ``predicate()`` holds (the fake runs in another thread); fails after
        ``within`` seconds, which only a broken test ever reaches."""
        deadline = time.monotonic() + within
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError("the fake Slack never saw what the test waited for")
            await asyncio.sleep(0.005)

    # -- Socket Mode ------------------------------------------------------------------------------

    def socket_send(self, envelope: dict[str, Any]) -> None:
        """Send an envelope to every connected Socket Mode client."""
        assert self._loop is not None

        async def send() -> None:
            for ws in list(self._sockets):
                await ws.send_str(json.dumps(envelope))

        asyncio.run_coroutine_threadsafe(send(), self._loop).result(timeout=10)

    @property
    def socket_clients(self) -> int:
        return len(self._sockets)

    # -- lifecycle --------------------------------------------------------------------------------

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/response/{name}", self._response)
        app.router.add_get("/socket", self._socket)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self._port, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None
        self._port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._started.set()
        await self._stopping.wait()
        for ws in list(self._sockets):
            await ws.close()
        await self._runner.cleanup()

    # -- handlers ---------------------------------------------------------------------------------

    async def _read(self, request: web.Request) -> dict[str, Any]:
        body: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw:
            if request.content_type == "application/json":
                body.update(json.loads(raw))
            else:
                body.update(parse_qsl(raw.decode(), keep_blank_values=True))
        return body

    def _take_fault(self, method: str, channel: str | None) -> Fault | None:
        with self._lock:
            for index, fault in enumerate(self._faults):
                if fault.method == method and fault.channel in (None, channel):
                    return self._faults.pop(index)
        return None

    def _record(self, call: Call) -> None:
        self.calls.append(call)

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        body = await self._read(request)
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Basic "):  # oauth.v2.access: the app's client id and secret
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            body.update(client_id=client_id, client_secret=secret)
            auth = ""
        token = auth.removeprefix("Bearer ").strip() or body.get("token")
        channel = body.get("channel")
        now = self.clock()
        fault = self._take_fault(method, channel)
        if fault is not None:
            if fault.posted and method == "chat.postMessage":
                self._post(body, channel or "")
            self._record(Call(method, token, body, now, fault.status, fault.error, request.path))
            if fault.hang:
                assert self._stopping is not None
                await self._stopping.wait()
                return web.Response(status=503, text="the fake Slack stopped")
            if fault.status == 429:
                self.rate_limited += 1
                return self._rate_limited(fault.retry_after or 1)
            if fault.status != 200:
                return web.Response(status=fault.status, text="upstream trouble")
            return web.json_response({"ok": False, "error": fault.error or "internal_error"})
        answer = self._answer(method, body, token, channel, now)
        if isinstance(answer, web.Response):
            self._record(Call(method, token, body, now, answer.status, None, request.path))
            return answer
        error = None if answer.get("ok") else answer.get("error")
        self._record(Call(method, token, body, now, 200, error, request.path))
        return web.json_response(answer)

    def _rate_limited(self, retry_after: float) -> web.Response:
        return web.json_response(
            {"ok": False, "error": "ratelimited"},
            status=429,
            headers={"Retry-After": str(math.ceil(retry_after))},
        )

    def _answer(
        self, method: str, body: dict[str, Any], token: str | None, channel: str | None, now: float
    ) -> dict[str, Any] | web.Response:
        if method == "oauth.v2.access":
            found = self.oauth_codes.get(body.get("code", ""))
            return found if found else {"ok": False, "error": "invalid_code"}
        if method == "apps.connections.open":
            if token != APP_TOKEN:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/socket"}
        team = self.tokens.get(token or "")
        if team is None:
            return {"ok": False, "error": "invalid_auth"}
        if method == "auth.test":
            return {
                "ok": True,
                "team_id": team,
                "team": "Fake Team",
                "user_id": BOT_USER,
                "bot_id": "B0BOT",
                "url": "https://fake.slack.com/",
            }
        if method == "users.info":
            zone = self.user_zones.get(body.get("user", ""))
            if zone is None:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {"id": body["user"], "tz": zone}}
        if method == "conversations.join":
            error = self.join_errors.get(channel or "")
            if error:
                return {"ok": False, "error": error}
            return {"ok": True, "channel": {"id": channel}}
        if method == "chat.delete":
            self.deleted.append((channel or "", body.get("ts", "")))
            return {"ok": True, "channel": channel, "ts": body.get("ts")}
        if method == "chat.postMessage":
            if not channel:
                return {"ok": False, "error": "channel_not_found"}
            gone = self.channel_errors.get(channel)
            if gone:
                return {"ok": False, "error": gone}
            if self.channel_interval > 0:
                with self._lock:
                    last = self._last_post.get(channel)
                    wait = self.channel_interval - (now - last) if last is not None else 0.0
                    if wait > 0:
                        self.rate_limited += 1
                        return self._rate_limited(wait)
                    self._last_post[channel] = now
            return {"ok": True, "channel": channel, "ts": self._post(body, channel)}
        return {"ok": False, "error": "unknown_method"}

    def _post(self, body: dict[str, Any], channel: str) -> str:
        with self._lock:
            self._seq += 1
            ts = f"1700000000.{self._seq:06d}"
        message = {"ts": ts, **body}
        blocks = message.get("blocks")
        if isinstance(blocks, str):  # form-encoded clients send blocks as a JSON string
            message["blocks"] = json.loads(blocks)
        self.posted[channel].append(message)
        return ts

    async def _response(self, request: web.Request) -> web.Response:
        body = await self._read(request)
        self._record(Call("response", None, body, self.clock(), 200, None, request.path))
        return web.Response(text="ok")

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    data = json.loads(message.data)
                    if "envelope_id" in data:
                        self.acks[data["envelope_id"]] = data
        finally:
            self._sockets.remove(ws)
        return ws


# -- as a process, for the benchmark --------------------------------------------------------------


class _Stats:
    """What bench/slack_fanout.py asks the fake process at the end."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack

    async def handle(self, _request: web.Request) -> web.Response:
        posted = {channel: self.slack.papers_posted(channel) for channel in self.slack.posted}
        times = defaultdict(list)
        for call in list(self.slack.calls):
            if call.method == "chat.postMessage" and call.status == 200 and not call.error:
                times[call.body.get("channel")].append(call.at)
        gaps = [
            b - a for ts in times.values() for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)
        ]
        accepted = [t for ts in times.values() for t in ts]
        return web.json_response(
            {
                "messages": len(accepted),
                "rate_limited": self.slack.rate_limited,
                "first": min(accepted, default=0.0),
                "last": max(accepted, default=0.0),
                "min_gap": min(gaps, default=0.0),
                "papers": posted,
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the fake Slack Web API on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--channel-interval", type=float, default=1.0)
    args = parser.parse_args()
    slack = FakeSlack(channel_interval=args.channel_interval, port=args.port)
    stats = _Stats(slack)

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", slack._api)
        app.router.add_get("/_stats", stats.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", args.port, backlog=4096)
        await site.start()
        assert site._server is not None
        slack._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        print(f"fake-slack listening on {slack.base_url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
