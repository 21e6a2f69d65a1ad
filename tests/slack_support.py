"""What the Slack tests share: clients pointed at the fake Slack, a fake clock for the pacer,
papers and subscribed channels."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aiohttp
import uvicorn
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette

from adapters.slack import slack_output
from adapters.slack.pacer import ChannelPacer
from adapters.slack.publisher import SlackPublisher
from adapters.slack.webclient import open_session, web_client
from adapters.slack.workspaces import SingleWorkspace
from bridge.chat import ChatService
from bridge.chat.service import SEARCH_PAGE_SIZE, SearchPage
from bridge.config import Settings, SlackSettings
from bridge.ledger import build_ledger
from bridge.models import Paper
from bridge.outputs import OutputContext, running_outputs
from bridge.store import open_store
from tests.fake_slack import DEFAULT_TEAM, DEFAULT_TOKEN, FakeSlack

T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)


class PacerClock:
    """Monotonic time that moves only when the pacer sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def slack_settings(**changes: Any) -> SlackSettings:
    return SlackSettings(**changes)


class Sessions:
    """aiohttp sessions opened the way the app opens them, closed at the end of a test."""

    def __init__(self) -> None:
        self.opened: list[aiohttp.ClientSession] = []

    def open(self, settings: SlackSettings) -> aiohttp.ClientSession:
        session = open_session(settings)
        self.opened.append(session)
        return session

    async def close(self) -> None:
        for session in self.opened:
            await session.close()


def publisher(
    slack: FakeSlack,
    sessions: Sessions,
    *,
    clock: PacerClock | None = None,
    timeout: float = 5,
    **settings: Any,
) -> SlackPublisher:
    """The publisher on a fresh session to ``slack``; ``clock``: pace by a fake clock."""
    chosen = slack_settings(api_base_url=slack.api_url, request_timeout_seconds=timeout, **settings)
    if clock is not None:
        pacer = ChannelPacer(chosen.channel_interval_seconds, clock=clock, sleep=clock.sleep)
    else:
        pacer = ChannelPacer(0.0)
    client = web_client(chosen, sessions.open(chosen))
    return SlackPublisher(client, SingleWorkspace(DEFAULT_TOKEN), chosen, pacer=pacer)


def address(channel: str, team: str = DEFAULT_TEAM) -> str:
    return f"{team}:{channel}"


def papers(
    count: int, start: int = 1, title: str = "Generalization in deep networks"
) -> list[Paper]:
    return [
        Paper(
            f"2606.{n:05d}",
            f"{title} {n}",
            abstract="We study out-of-distribution generalization in depth.",
            authors=("Ann Author", "Bo Writer"),
            upvotes=n,
            sources=("hf", "arxiv"),
        )
        for n in range(start, start + count)
    ]


# -- a running server with the Slack app ------------------------------------------------------------

SIGNING_SECRET = "test-signing-secret"
CLIENT_ID = "111.222"
CLIENT_SECRET = "test-client-secret"


def signed_headers(
    body: bytes, *, secret: str = SIGNING_SECRET, at: float | None = None
) -> dict[str, str]:
    """The headers Slack sends: a timestamp and v0=HMAC-SHA256(secret, v0:ts:body)."""
    timestamp = str(int(time.time() if at is None else at))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature or "",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def command_body(
    slack: FakeSlack,
    text: str,
    *,
    channel: str = "C0CHAN",
    user: str = "U0USER",
    name: str = "r1",
    team: str = DEFAULT_TEAM,
) -> bytes:
    return urlencode(
        {
            "token": "deprecated-verification-token",
            "team_id": team,
            "team_domain": "fake",
            "channel_id": channel,
            "channel_name": "papers",
            "user_id": user,
            "user_name": "ann",
            "command": "/papers",
            "text": text,
            "api_app_id": "A0APP",
            "response_url": slack.response_url(name),
            "trigger_id": "1.2.3",
        }
    ).encode()


def action_body(slack: FakeSlack, action_id: str, value: str, *, name: str = "a1") -> bytes:
    payload = {
        "type": "block_actions",
        "team": {"id": DEFAULT_TEAM, "domain": "fake"},
        "user": {"id": "U0USER", "team_id": DEFAULT_TEAM},
        "api_app_id": "A0APP",
        "channel": {"id": "C0CHAN", "name": "papers"},
        "container": {"type": "message", "is_ephemeral": True},
        "trigger_id": "1.2.3",
        "response_url": slack.response_url(name),
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "action_ts": "1.2",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


class GatedChat(ChatService):
    """A chat service whose searches wait, in a worker thread as a slow database would, until
    the test opens the gate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    async def search(
        self, query: str, page: int = 1, per_page: int = SEARCH_PAGE_SIZE
    ) -> SearchPage:
        def slow() -> None:
            self.waiting.set()
            if not self.gate.wait(30):
                raise TimeoutError("the test never opened the gate")

        await asyncio.to_thread(slow)
        return await super().search(query, page, per_page)


class SlackServer:
    """The Slack output's routes on a real uvicorn server on 127.0.0.1, in the test's loop,
    with a store, the real ledger and the chat service behind them."""

    def __init__(
        self,
        slack: FakeSlack,
        database_url: str,
        *,
        gated: bool = False,
        app_token: str | None = None,
        installation_key: str | None = None,
        **slack_config: Any,
    ) -> None:
        oauth = installation_key is not None
        self.settings = Settings.model_validate(
            {
                "store": {"database_url": database_url},
                "slack": {
                    "api_base_url": slack.api_url,
                    "channel_interval_seconds": 0,
                    **({"client_id": CLIENT_ID} if oauth else {}),
                    **slack_config,
                },
                "slack_bot_token": None if oauth else DEFAULT_TOKEN,
                "slack_signing_secret": SIGNING_SECRET,
                "slack_app_token": app_token,
                "slack_client_secret": CLIENT_SECRET if oauth else None,
                "slack_installation_key": installation_key,
            }
        )
        self.routes: list[Any] = []
        self.gated = gated
        self.port = 0
        self._stack = contextlib.AsyncExitStack()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return self.at("/slack/events")

    def at(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def __aenter__(self) -> SlackServer:
        self.store = open_store(self.settings.store.database_url)
        self._stack.callback(self.store.close)
        self.ledger = build_ledger(self.store, self.settings)
        chat_type = GatedChat if self.gated else ChatService
        self.chat = chat_type(self.store, self.ledger, self.settings)
        context = OutputContext(self.settings, self.store, self.ledger, self.chat)
        outputs = await self._stack.enter_async_context(
            running_outputs(context, listen=True, factories=[slack_output])
        )
        self.output = outputs[0]
        self.routes = [route for output in outputs for route in output.routes()]
        app = Starlette(routes=self.routes)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._stack.callback(sock.close)
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.chat is not None and isinstance(self.chat, GatedChat):
            self.chat.gate.set()
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task
        await self._stack.aclose()


async def responses(slack: FakeSlack, name: str, count: int = 1) -> list[dict[str, Any]]:
    """The bodies posted to ``slack.response_url(name)``, once there are ``count``."""
    path = f"/response/{name}"
    await slack.wait_for(
        lambda: len([c for c in slack.calls_to("response") if c.path == path]) >= count
    )
    return [c.body for c in slack.calls_to("response") if c.path == path]
