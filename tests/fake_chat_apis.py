"""Real HTTP servers on 127.0.0.1 standing in for chat platforms' posting APIs: Mattermost /
Rocket.Chat incoming webhooks, Telegram's Bot API, Teams Workflows webhooks and Matrix's
client-server API. Each records every request with its JSON body and what it delivered, and
answers as the platform does; ``fail`` injects 429s, 5xx and 4xx on the next requests whose
path matches a pattern.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import pytest

from bridge.cli import main
from bridge.delivery import DigestItem
from bridge.models import Hit, Match, Paper, StoredPaper
from tests.local_server import LocalServer

HF_FILE = Path(__file__).parent / "fixtures" / "hf" / "daily_papers_api_limit30_2026-06-13.json"


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # decoded JSON, or None


@dataclass
class Fault:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # True: the request is carried out, then this answer is sent instead of the real one (a
    # post that arrived while its answer was lost).
    after_processing: bool = False


class FakeChatApi(LocalServer):
    """The shared server: subclasses answer requests in ``answer``."""

    name = "fake-chat"

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.delivered: list[Call] = []  # the posts that succeeded: what the channel shows
        self._faults: list[tuple[re.Pattern[str], deque[Fault]]] = []
        # Seconds each answer waits after the request was carried out: a platform that takes
        # a moment, so a killed sender leaves posts that arrived but were never answered.
        self.delay = 0.0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake is not running"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                call = Call(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                status, answer, headers = fake._handle(call)
                if fake.delay:
                    time.sleep(fake.delay)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                try:
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender was killed before its answer: what a crash test does

            do_POST = do_PUT = do_GET = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, name=self.name
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None

    def fail(
        self,
        path_pattern: str,
        times: int = 1,
        *,
        status: int = 500,
        body: Any = None,
        headers: dict[str, str] | None = None,
        after_processing: bool = False,
    ) -> None:
        """The next ``times`` requests whose path matches ``path_pattern`` get this answer."""
        fault = Fault(
            status,
            body if body is not None else {"message": "injected"},
            headers or {},
            after_processing,
        )
        with self._lock:
            self._faults.append((re.compile(path_pattern), deque([fault] * times)))

    def _handle(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        with self._lock:
            self.calls.append(call)
            fault = None
            for pattern, queue in self._faults:
                if queue and pattern.search(call.path):
                    fault = queue.popleft()
                    break
            if fault is not None and not fault.after_processing:
                return fault.status, fault.body, fault.headers
            status, answer, headers = self.answer(call)
            # A repeated request the platform recognised (Matrix's transaction ids) shows once.
            repeated = headers.pop("X-Fake-Repeated", None)
            if 200 <= status < 300 and not repeated:
                self.delivered.append(call)
            if fault is not None:
                return fault.status, fault.body, fault.headers
            return status, answer, headers

    def answer(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError


class FakeMattermost(FakeChatApi):
    """Incoming webhooks at ``/hooks/ID``: ``ok`` for a known one (Mattermost answers a
    plain ``ok``), 404 for a deleted one, 400 for a body without text."""

    name = "fake-mattermost"

    def __init__(self) -> None:
        super().__init__()
        self.hooks: set[str] = set()
        self._ids = itertools.count(1)

    def webhook_url(self, hook_id: str | None = None) -> str:
        hook_id = hook_id or f"hook{next(self._ids):04d}secretpart"
        self.hooks.add(hook_id)
        return f"{self.base_url}/hooks/{hook_id}"

    def answer(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"/hooks/([^/?]+)", call.path)
        if call.method != "POST" or m is None or m.group(1) not in self.hooks:
            return 404, {"message": "Unable to find the webhook", "status_code": 404}, {}
        if not isinstance(call.body, dict) or not call.body.get("text"):
            return 400, {"message": "Unable to parse the incoming data", "status_code": 400}, {}
        return 200, b"ok", {}

    def texts(self) -> list[str]:
        return [call.body["text"] for call in self.delivered]


class FakeTelegram(FakeChatApi):
    """The Bot API's ``/bot{TOKEN}/sendMessage``: 401 for another token, 400 "chat not found"
    for an unknown chat, 403 for a chat the bot was kicked from, 400 for text over 4,096
    characters (UTF-16) or HTML with a tag Telegram does not allow."""

    name = "fake-telegram"
    ALLOWED_TAGS = {"b", "i", "u", "s", "a", "code", "pre", "blockquote", "tg-spoiler"}

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.chats: set[str] = set()
        self.kicked: set[str] = set()
        self._ids = itertools.count(1)

    def answer(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        m = re.fullmatch(r"/bot([^/]+)/sendMessage", call.path)
        if m is None or call.method != "POST":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}, {}
        if m.group(1) != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}, {}
        body = call.body if isinstance(call.body, dict) else {}
        chat = str(body.get("chat_id", ""))
        if chat in self.kicked:
            return 403, _tg_error(403, "Forbidden: bot was kicked from the group chat"), {}
        if chat not in self.chats:
            return 400, _tg_error(400, "Bad Request: chat not found"), {}
        text = str(body.get("text", ""))
        if body.get("parse_mode") != "HTML":
            return 400, _tg_error(400, "Bad Request: the fake expects parse_mode HTML"), {}
        tags = {t.lower() for t in re.findall(r"</?([A-Za-z][\w-]*)", text)}
        if not tags <= self.ALLOWED_TAGS:
            return 400, _tg_error(400, f"Bad Request: can't parse entities: {sorted(tags)}"), {}
        if len(text.encode("utf-16-le")) // 2 > 4096 or not text.strip():
            return 400, _tg_error(400, "Bad Request: message is too long or empty"), {}
        message = {"message_id": next(self._ids), "chat": {"id": chat}, "text": text}
        return 200, {"ok": True, "result": message}, {}

    def rate_limit(self, retry_after: int, times: int = 1) -> None:
        self.fail(
            "/sendMessage",
            times,
            status=429,
            body={
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            },
        )

    def texts(self, chat: str | None = None) -> list[str]:
        return [
            c.body["text"] for c in self.delivered if chat is None or str(c.body["chat_id"]) == chat
        ]


def _tg_error(code: int, description: str) -> dict[str, Any]:
    return {"ok": False, "error_code": code, "description": description}


class FakeTeams(FakeChatApi):
    """Teams Workflows webhooks: ``POST /workflows/ID/triggers/manual/paths/invoke?…&sig=…``
    answers 202 when the signature is right and the body is one Adaptive Card under 28 KB;
    404 for a deleted workflow, 401 for a wrong signature, 413/400 for a card too big or
    malformed. ``cards`` are the delivered cards' bodies."""

    name = "fake-teams"
    BYTES_MAX = 28 * 1024

    def __init__(self) -> None:
        super().__init__()
        self.workflows: dict[str, str] = {}  # id -> signature
        self._ids = itertools.count(1)
        self.sizes: list[int] = []

    def workflow_url(self, signature: str | None = None) -> str:
        number = next(self._ids)
        workflow = f"wf{number:04d}"
        self.workflows[workflow] = signature or f"sig{number:04d}" + "Q" * 30
        return (
            f"{self.base_url}/workflows/{workflow}/triggers/manual/paths/invoke"
            f"?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0"
            f"&sig={self.workflows[workflow]}"
        )

    def answer(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        from urllib.parse import parse_qs, urlsplit

        parts = urlsplit(call.path)
        m = re.fullmatch(r"/workflows/([^/]+)/triggers/manual/paths/invoke", parts.path)
        if m is None or m.group(1) not in self.workflows:
            return 404, {"error": {"code": "WorkflowNotFound", "message": "not found"}}, {}
        if parse_qs(parts.query).get("sig") != [self.workflows[m.group(1)]]:
            return 401, {"error": {"code": "DirectApiAuthorizationRequired", "message": "sig"}}, {}
        raw = json.dumps(call.body, ensure_ascii=False).encode()
        self.sizes.append(len(raw))
        if len(raw) > self.BYTES_MAX:
            return 413, {"error": {"code": "MessageSizeTooBig", "message": "too big"}}, {}
        body = call.body if isinstance(call.body, dict) else {}
        attachments = body.get("attachments") or []
        if body.get("type") != "message" or len(attachments) != 1:
            return 400, {"error": {"code": "BadRequest", "message": "no card"}}, {}
        card = attachments[0].get("content") or {}
        if card.get("type") != "AdaptiveCard" or not card.get("body"):
            return 400, {"error": {"code": "BadRequest", "message": "not a card"}}, {}
        return 202, b"", {}

    def cards(self) -> list[list[dict[str, Any]]]:
        return [c.body["attachments"][0]["content"]["body"] for c in self.delivered]

    def texts(self) -> list[str]:
        return ["\n".join(b.get("text", "") for b in card) for card in self.cards()]


class FakeMatrix(FakeChatApi):
    """A homeserver's ``PUT /_matrix/client/v3/rooms/{room}/send/m.room.message/{txnId}``:
    401 M_UNKNOWN_TOKEN for another access token, 403 M_FORBIDDEN for a room the user is not
    in, and a transaction id seen before answered with its first event id and not posted
    again (the spec's idempotency)."""

    name = "fake-matrix"

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token
        self.rooms: set[str] = set()
        self.transactions: dict[str, str] = {}
        self._ids = itertools.count(1)

    def answer(self, call: Call) -> tuple[int, Any, dict[str, str]]:
        from urllib.parse import unquote

        m = re.fullmatch(
            r"/_matrix/client/v3/rooms/([^/]+)/send/m\.room\.message/([^/?]+)", call.path
        )
        if m is None or call.method != "PUT":
            return 404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}, {}
        if call.headers.get("authorization") != f"Bearer {self.token}":
            return 401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Invalid access token"}, {}
        room, txn = unquote(m.group(1)), unquote(m.group(2))
        if room not in self.rooms:
            return 403, {"errcode": "M_FORBIDDEN", "error": "User not in room"}, {}
        if txn in self.transactions:
            return 200, {"event_id": self.transactions[txn]}, {"X-Fake-Repeated": "1"}
        body = call.body if isinstance(call.body, dict) else {}
        if not body.get("body") or len(json.dumps(body).encode()) > 65_536:
            return 400, {"errcode": "M_TOO_LARGE", "error": "event too large or empty"}, {}
        event_id = f"$event{next(self._ids)}"
        self.transactions[txn] = event_id
        return 200, {"event_id": event_id}, {}

    def rate_limit(self, retry_after_ms: int, times: int = 1) -> None:
        self.fail(
            "/send/",
            times,
            status=429,
            body={
                "errcode": "M_LIMIT_EXCEEDED",
                "error": "Too many requests",
                "retry_after_ms": retry_after_ms,
            },
        )

    def contents(self) -> list[dict[str, Any]]:
        return [c.body for c in self.delivered]


# -- what the chat-output tests share -------------------------------------------------------

ITEM_TIME = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)


class Sleeps:
    """A publisher's sleeper: records each wait and returns at once, moving ``now`` (a clock a
    publisher may be given, ``clock``) as if the time had passed."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = [1000.0]

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now[0] += seconds

    def clock(self) -> float:
        return self.now[0]


def item(n: int, title: str = "Generalization in deep networks", **kw: object) -> DigestItem:
    """A digest item: paper ``2606.<n>`` matched on "generalisation" in its abstract."""
    abstract = str(kw.pop("abstract", "We study generalisation in deep networks."))
    paper = Paper(f"2606.{n:05d}", title, abstract=abstract, **kw)  # type: ignore[arg-type]
    hits = (Hit("abstract", "generalisation", 9, 23),)
    return DigestItem(StoredPaper(paper, n, ITEM_TIME, True), Match("s", paper.arxiv_id, hits))


def deliver_the_fixtures_twice(
    config: Path, api: FakeChatApi, capsys: pytest.CaptureFixture[str], secret: str
) -> int:
    """Through the CLI with ``config`` (one digest to ``api``): ``deliver`` (creates the digest),
    ``import --announce`` of the HF fixture, ``deliver --now`` twice, ``check-config``. Checks
    that the second delivery posted nothing and that no output showed ``secret``; returns how
    many messages the first delivery posted."""
    assert main(["--config", str(config), "deliver"]) == 0
    assert main(["import", "--announce", str(HF_FILE)]) == 0
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    posted = len(api.delivered)
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    assert len(api.delivered) == posted  # nothing new: nothing posted
    assert main(["--config", str(config), "check-config"]) == 0
    out = capsys.readouterr()
    assert secret not in out.out + out.err
    return posted
