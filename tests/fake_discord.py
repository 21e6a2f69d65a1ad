"""A real HTTP server on 127.0.0.1 standing in for Discord's REST API: it records every request
with its JSON body, creates messages and threads, answers webhooks, and injects 429s, 5xx,
timeouts, and channels or webhooks that are gone or forbidden.

Point ``[discord] api_base_url`` (or a publisher's ``api_base``) at ``fake.api_base``.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from tests.local_server import LocalServer

BOT_USER = {
    "id": "1000000000000000001",
    "username": "paperbridge",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
}
APPLICATION_ID = "1000000000000000002"

# Discord's JSON error codes (discord-api-docs, topics/opcodes-and-status-codes).
UNKNOWN_CHANNEL = (404, 10003, "Unknown Channel")
UNKNOWN_WEBHOOK = (404, 10015, "Unknown Webhook")
MISSING_ACCESS = (403, 50001, "Missing Access")
MISSING_PERMISSIONS = (403, 50013, "Missing Permissions")
INVALID_WEBHOOK_TOKEN = (401, 50027, "Invalid Webhook Token")


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the server saw it."""

    method: str
    path: str  # without the /api/v10 prefix
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any  # the decoded JSON body, or None


@dataclass
class Fault:
    status: int
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0  # > 0: stay silent this long, then hang up


class FakeDiscord(LocalServer):
    """``with FakeDiscord() as discord:`` serves Discord's API at ``discord.api_base``."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        # Message creations that succeeded (2xx), in order: what a channel really shows.
        self.delivered: list[Call] = []
        self.gone: set[str] = set()  # channel ids that answer 404 Unknown Channel
        self.forbidden: set[str] = set()  # channel ids that answer 403 Missing Access
        self.webhooks: dict[str, str] = {}  # id -> token of the webhooks that exist
        self.threads: dict[str, str] = {}  # thread id -> the channel it was started in
        # Tokens of the interactions answered: each is also the token of the interaction's
        # webhook (follow-ups and edits of the answer), for 15 minutes on Discord.
        self.interaction_tokens: set[str] = set()
        self._faults: list[tuple[re.Pattern[str], deque[Fault]]] = []
        self._ids = itertools.count(1_100_000_000_000_000_000)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException | None] = []

    # -- running ----------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        assert self._server is not None, "FakeDiscord is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/v10"

    def webhook_url(self, webhook_id: str, token: str) -> str:
        """A real-looking webhook URL (discord.com) for a webhook this server knows."""
        self.webhooks[webhook_id] = token
        return f"https://discord.com/api/webhooks/{webhook_id}/{token}"

    def start(self) -> Self:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-discord"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None

    # -- faults -----------------------------------------------------------------------------------

    def fail(
        self,
        path_pattern: str,
        times: int = 1,
        *,
        status: int = 500,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        hang: float = 0.0,
    ) -> None:
        """The next ``times`` requests whose path (without /api/v10) matches the regular
        expression ``path_pattern`` get this answer instead."""
        fault = Fault(status, body or {"message": "injected", "code": 0}, headers or {}, hang)
        with self._lock:
            self._faults.append((re.compile(path_pattern), deque([fault] * times)))

    def rate_limit(
        self, path_pattern: str, retry_after: float, *, times: int = 1, scope: str = "user"
    ) -> None:
        """429s as Discord sends them: JSON ``retry_after``, the rate-limit headers and the
        ``Via`` header that tells them from a Cloudflare ban."""
        self.fail(
            path_pattern,
            times,
            status=429,
            body={
                "message": "You are being rate limited.",
                "retry_after": retry_after,
                "global": False,
            },
            headers={
                "Retry-After": str(max(1, round(retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": str(retry_after),
                "X-RateLimit-Bucket": "fakebucket",
                "X-RateLimit-Scope": scope,
                "Via": "1.1 google",
            },
        )

    def _fault_for(self, path: str) -> Fault | None:
        with self._lock:
            for pattern, queue in self._faults:
                if queue and pattern.search(path):
                    return queue.popleft()
        return None

    # -- what was sent ----------------------------------------------------------------------------

    def posts(self) -> list[Call]:
        """Every message creation: channel messages and webhook executions, in order."""
        return [call for call in self.calls if is_message_post(call)]

    def messages_to(self, channel_or_thread_id: str) -> list[Call]:
        return [c for c in self.posts() if c.path == f"/channels/{channel_or_thread_id}/messages"]

    def next_id(self) -> str:
        return str(next(self._ids))

    def new_thread(self, channel_id: str) -> str:
        thread_id = self.next_id()
        with self._lock:
            self.threads[thread_id] = channel_id
        return thread_id

    def channel_of(self, call: Call) -> str:
        """The channel a message post landed in, a digest thread counting as its channel."""
        target = call.path.split("/")[2]
        return self.threads.get(target, target)

    # -- answering --------------------------------------------------------------------------------

    def answer(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        path = call.path
        if call.method == "GET" and path == "/users/@me":
            return 200, BOT_USER, {}
        if call.method == "GET" and path == "/oauth2/applications/@me":
            return 200, _application(), {}
        if call.method == "GET" and path == "/gateway/bot":
            return 503, {"message": "the fake has no gateway", "code": 0}, {}
        m = re.fullmatch(r"/applications/(\d+)(?:/guilds/(\d+))?/commands", path)
        if m and call.method == "PUT":
            commands = [
                {**command, "id": self.next_id(), "application_id": APPLICATION_ID, "version": "1"}
                for command in call.body or []
            ]
            return 200, commands, {}
        m = re.fullmatch(r"/channels/(\d+)/messages", path)
        if m and call.method == "POST":
            refused = self._channel_problem(m.group(1))
            return refused or (200, self.message(m.group(1), call.body), {})
        m = re.fullmatch(r"/channels/(\d+)/messages/(\d+)/threads", path)
        if m and call.method == "POST":
            refused = self._channel_problem(m.group(1))
            if refused:
                return refused
            thread = {
                "id": self.new_thread(m.group(1)),
                "type": 11,
                "parent_id": m.group(1),
                "name": (call.body or {}).get("name", ""),
            }
            return 201, thread, {}
        m = re.fullmatch(r"/interactions/(\d+)/([^/]+)/callback", path)
        if m and call.method == "POST":
            self.interaction_tokens.add(m.group(2))
            return 200, self._interaction_callback(m.group(1), call.body or {}), {}
        m = re.fullmatch(r"/webhooks/(\d+)/([^/]+)/messages/@original", path)
        if m and m.group(2) in self.interaction_tokens and call.method in ("PATCH", "DELETE"):
            if call.method == "DELETE":
                return 204, None, {}
            return 200, self.message("0", call.body), {}
        m = re.fullmatch(r"/webhooks/(\d+)/([^/]+)", path)
        if m and call.method == "POST" and m.group(2) in self.interaction_tokens:
            return 200, self.message("0", call.body), {}  # an interaction's follow-up
        if m and call.method == "POST":
            webhook_id, token = m.groups()
            if webhook_id not in self.webhooks:
                return _error(*UNKNOWN_WEBHOOK)
            if self.webhooks[webhook_id] != token:
                return _error(*INVALID_WEBHOOK_TOKEN)
            message = self.message(f"9{webhook_id[1:]}", call.body)
            if call.query.get("wait") != "true":
                return 204, None, {}
            return 200, message, {}
        return 404, {"message": "404: Not Found", "code": 0}, {}

    def _interaction_callback(self, interaction_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to ``?with_response=1``: the interaction and what the answer created."""
        kind = body.get("type")
        data = body.get("data") or {}
        resource: dict[str, Any] = {"type": kind}
        if kind in (4, 7):  # a message sent, or the clicked message updated
            resource["message"] = self.message("0", data)
        return {
            "interaction": {
                "id": interaction_id,
                "type": 2,
                "response_message_loading": kind == 5,
                "response_message_ephemeral": bool(data.get("flags", 0) & 64),
            },
            "resource": resource,
        }

    def _channel_problem(self, channel_id: str) -> tuple[int, Any, dict[str, str]] | None:
        if channel_id in self.gone:
            return _error(*UNKNOWN_CHANNEL)
        if channel_id in self.forbidden:
            return _error(*MISSING_ACCESS)
        return None

    def message(self, channel_id: str, body: Any) -> dict[str, Any]:
        """A message as Discord returns it, posted in ``channel_id`` with ``body``'s content
        and embeds."""
        body = body or {}
        return {
            "id": self.next_id(),
            "channel_id": channel_id,
            "author": BOT_USER,
            "content": body.get("content", ""),
            "embeds": body.get("embeds", []),
            "timestamp": "2026-06-01T08:00:00.000000+00:00",
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "pinned": False,
            "type": 0,
        }


def is_message_post(call: Call) -> bool:
    return call.method == "POST" and bool(
        re.fullmatch(r"/channels/\d+/messages", call.path) or call.path.startswith("/webhooks/")
    )


def _error(status: int, code: int, message: str) -> tuple[int, Any, dict[str, str]]:
    return status, {"message": message, "code": code}, {}


def _application() -> dict[str, Any]:
    return {
        "id": APPLICATION_ID,
        "name": "paperbridge",
        "description": "",
        "icon": None,
        "bot_public": False,
        "bot_require_code_grant": False,
        "owner": {**BOT_USER, "id": "1000000000000000003", "username": "owner", "bot": False},
        "verify_key": "00" * 32,
        "flags": 0,
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.fake.errors.append(sys.exc_info()[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        fake = self.server.fake
        parts = urlsplit(self.path)
        path = parts.path.removeprefix("/api/v10")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = (
            json.loads(raw) if raw and "json" in (self.headers.get("Content-Type") or "") else None
        )
        call = Call(
            self.command,
            path,
            dict(parse_qsl(parts.query)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        with fake._lock:
            fake.calls.append(call)
        fault = fake._fault_for(path)
        if fault is not None and fault.hang:
            fake._stopping.wait(fault.hang)
            self.close_connection = True
            return
        if fault is not None:
            self._send(fault.status, fault.body, fault.headers)
            return
        status, answer, headers = fake.answer(call)
        if 200 <= status < 300 and is_message_post(call):
            with fake._lock:
                fake.delivered.append(call)
        self._send(status, answer, headers)

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
