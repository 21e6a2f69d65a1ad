"""/papers through Discord's Interactions Endpoint URL, without a gateway: requests signed with a
test Ed25519 key by a local client, sent to the Discord output's route on a real server;
deferred answers completed through the interaction webhooks of the fake Discord API."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.signing import SigningKey
from starlette.applications import Starlette

from adapters.discord.output import discord_output
from bridge.chat import ChatService
from bridge.config import Settings, read_settings
from bridge.ledger import build_ledger
from bridge.models import Paper
from bridge.outputs import OutputContext, running_outputs
from bridge.store import open_store
from tests.fake_discord import APPLICATION_ID, Call, FakeDiscord
from tests.fake_upstream import unused_port
from tests.fakes import RecordingPublisher
from tests.local_server import serve_command

KEY = SigningKey.generate()
PUBLIC_KEY = KEY.verify_key.encode().hex()
GUILD = "400000000000000001"
CHANNEL = "400000000000000002"
USER = "400000000000000003"
MANAGE_CHANNELS = 1 << 4
SEND_MESSAGES = 1 << 11
_ids = itertools.count(1)


@pytest.fixture
def discord() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


class EndpointServer:
    """The Discord output, interactions endpoint on, served by uvicorn on 127.0.0.1 over a
    store with the real ledger and chat service; no bot token, no gateway."""

    def __init__(self, discord: FakeDiscord, database_url: str) -> None:
        self.settings = Settings.model_validate(
            {
                "store": {"database_url": database_url},
                "discord": {"api_base_url": discord.api_base, "public_key": PUBLIC_KEY},
            }
        )
        self._stack = contextlib.AsyncExitStack()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/discord/interactions"

    async def __aenter__(self) -> EndpointServer:
        self.store = open_store(self.settings.store.database_url)
        self._stack.callback(self.store.close)
        self.ledger = build_ledger(self.store, self.settings)
        # What `/papers now` posts goes to the bot's publisher; recorded here (no bot token).
        self.posted = RecordingPublisher(kind="discord")
        self.chat = ChatService(self.store, self.ledger, self.settings)
        context = OutputContext(self.settings, self.store, self.ledger, self.chat)
        outputs = await self._stack.enter_async_context(
            running_outputs(context, listen=True, factories=[discord_output])
        )
        self.ledger.publishers["discord"] = self.posted
        [output] = outputs
        self.routes = output.routes()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        self._stack.callback(sock.close)
        config = uvicorn.Config(
            Starlette(routes=self.routes), log_config=None, access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))

        async def shut() -> None:
            server.should_exit = True
            await task

        self._stack.push_async_callback(shut)
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()


@contextlib.asynccontextmanager
async def endpoint(discord: FakeDiscord, database_url: str) -> AsyncIterator[EndpointServer]:
    async with EndpointServer(discord, database_url) as server:
        yield server


def signed(body: bytes, *, key: SigningKey = KEY, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(time.time() if at is None else at))
    signature = key.sign(timestamp.encode() + body).signature.hex()
    return {
        "X-Signature-Ed25519": signature,
        "X-Signature-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def interaction(
    discord: FakeDiscord, kind: int, data: dict[str, Any], *, permissions: int = SEND_MESSAGES
) -> dict[str, Any]:
    """An interaction as Discord sends it, in a text channel of a server; its token is one
    Discord issued, so the fake accepts the answer's edits and follow-ups."""
    token = f"interaction-token-{next(_ids)}"
    discord.interaction_tokens.add(token)
    return {
        "id": str(500000000000000000 + next(_ids)),
        "application_id": APPLICATION_ID,
        "type": kind,
        "token": token,
        "version": 1,
        "guild_id": GUILD,
        "channel_id": CHANNEL,
        "channel": {"id": CHANNEL, "type": 0, "name": "papers", "guild_id": GUILD},
        "member": {
            "user": {"id": USER, "username": "ann"},
            "permissions": str(permissions),
        },
        "data": data,
    }


def command(
    discord: FakeDiscord, name: str, *, permissions: int = SEND_MESSAGES, **options: Any
) -> dict[str, Any]:
    sub = {
        "type": 1,
        "name": name,
        "options": [
            {"name": key, "type": 5 if isinstance(value, bool) else 3, "value": value}
            for key, value in options.items()
        ],
    }
    data = {"id": "1", "name": "papers", "type": 1, "options": [sub]}
    return interaction(discord, 2, data, permissions=permissions)


def button(discord: FakeDiscord, custom_id: str) -> dict[str, Any]:
    return interaction(discord, 3, {"custom_id": custom_id, "component_type": 2})


async def send(server: EndpointServer, payload: dict[str, Any]) -> httpx.Response:
    body = json.dumps(payload).encode()
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(server.url, content=body, headers=signed(body))


async def completed(
    discord: FakeDiscord, payload: dict[str, Any], count: int = 1, within: float = 15
) -> list[Call]:
    """The calls that completed ``payload``'s answer (edits, deletions, follow-ups), once
    there are ``count``."""
    prefix = f"/webhooks/{APPLICATION_ID}/{payload['token']}"
    deadline = time.monotonic() + within
    while True:
        calls = [c for c in list(discord.calls) if c.path.startswith(prefix)]
        if len(calls) >= count:
            return calls
        assert time.monotonic() < deadline, f"only {calls} after {within} s"
        await asyncio.sleep(0.02)


def add_papers(server: EndpointServer, count: int) -> None:
    server.store.add_papers(
        [
            Paper(
                f"2606.{n:05d}",
                f"Generalization study {n}",
                abstract="We study generalization @everyone <@123456789012345678>.",
            )
            for n in range(1, count + 1)
        ]
    )


# -- signatures -------------------------------------------------------------------------------------


async def test_only_requests_discord_signed_are_answered(
    discord: FakeDiscord, sqlite_url: str
) -> None:
    ping = json.dumps({"type": 1, "id": "1", "application_id": APPLICATION_ID}).encode()
    async with endpoint(discord, sqlite_url) as server, httpx.AsyncClient(timeout=10) as client:
        answered = await client.post(server.url, content=ping, headers=signed(ping))
        assert answered.status_code == 200 and answered.json() == {"type": 1}

        other_key = signed(ping, key=SigningKey.generate())
        stale = signed(ping, at=time.time() - 3600)
        tampered = signed(ping)
        bad: list[dict[str, str]] = [
            {},  # no signature at all
            {"X-Signature-Timestamp": tampered["X-Signature-Timestamp"]},
            {**tampered, "X-Signature-Ed25519": "zz" * 64},
            {**tampered, "X-Signature-Ed25519": "00" * 64},
            other_key,
            stale,
        ]
        for headers in bad:
            refused = await client.post(server.url, content=ping, headers=headers)
            assert refused.status_code == 401, headers
        # The right signature over another body.
        refused = await client.post(server.url, content=ping + b" ", headers=tampered)
        assert refused.status_code == 401
        # Signed, but not an interaction: a 400, never a 500.
        for body in (b"[]", b"{}", b"not json", b'{"type": 2, "data": 5}', b'{"type": 99}'):
            answer = await client.post(server.url, content=body, headers=signed(body))
            assert answer.status_code == 400, body
    assert discord.calls == []  # nothing reached Discord's API


# -- search and buttons -----------------------------------------------------------------------------


async def test_search_is_deferred_then_completed_through_the_webhook(
    discord: FakeDiscord, sqlite_url: str
) -> None:
    async with endpoint(discord, sqlite_url) as server:
        add_papers(server, 12)
        payload = command(discord, "search", query="generalization")
        answer = await send(server, payload)
        assert answer.json() == {"type": 5, "data": {"flags": 64}}  # private, "thinking…"
        [edit] = await completed(discord, payload)
        assert edit.method == "PATCH" and edit.path.endswith("/messages/@original")
        body = edit.body
        assert body["allowed_mentions"] == {"parse": []}
        assert body["content"].startswith("12 papers match `generalization` (showing 1–5)")
        assert len(body["embeds"]) == 5
        description = body["embeds"][0]["description"]
        assert "\\@everyone" in description and "\\<\\@123456789012345678\\>" in description
        ids = [c["custom_id"] for row in body["components"] for c in row["components"]]
        assert ids == ["pb:p:0:generalization", "pb:p:2:generalization", "pb:s:1:generalization"]

        # Next page: the message is edited in place.
        pressed = button(discord, "pb:p:2:generalization")
        assert (await send(server, pressed)).json() == {"type": 6}
        [page_two] = await completed(discord, pressed)
        assert page_two.method == "PATCH" and "(showing 6–10)" in page_two.body["content"]

        # Share: a public message naming who shared it, without pinging them.
        shared = button(discord, "pb:s:1:generalization")
        assert (await send(server, shared)).json() == {"type": 5, "data": {"flags": 0}}
        [post] = await completed(discord, shared)
        assert post.body["content"].startswith(f"<@{USER}> shared: ")
        assert post.body["allowed_mentions"] == {"parse": []}

        stale = button(discord, "something-else")
        answer = await send(server, stale)
        assert answer.json()["type"] == 4 and answer.json()["data"]["flags"] == 64


async def test_bad_queries_and_help_are_answered_at_once(
    discord: FakeDiscord, sqlite_url: str
) -> None:
    async with endpoint(discord, sqlite_url) as server:
        answer = (await send(server, command(discord, "search", query="title:(a OR"))).json()
        assert answer["type"] == 4 and answer["data"]["flags"] == 64
        assert answer["data"]["allowed_mentions"] == {"parse": []}
        helped = (await send(server, command(discord, "help"))).json()
        assert helped["type"] == 4 and "/papers search" in helped["data"]["content"]
        zones = {
            "type": 1,
            "name": "subscribe",
            "options": [
                {"name": "query", "type": 3, "value": "gan"},
                {"name": "time_zone", "type": 3, "value": "berl", "focused": True},
            ],
        }
        completion = interaction(discord, 4, {"name": "papers", "type": 1, "options": [zones]})
        choices = (await send(server, completion)).json()
        assert choices["type"] == 8
        assert {"name": "Europe/Berlin", "value": "Europe/Berlin"} in choices["data"]["choices"]


# -- subscriptions, across two serve processes -------------------------------------------------------


async def test_subscribe_list_now_unsubscribe_on_any_of_two_processes(
    discord: FakeDiscord, sqlite_url: str
) -> None:
    async with endpoint(discord, sqlite_url) as one, endpoint(discord, sqlite_url) as two:
        refused = (await send(one, command(discord, "subscribe", query="generalization"))).json()
        assert refused["type"] == 4 and "Manage Channels" in refused["data"]["content"]

        subscribe = command(
            discord, "subscribe", permissions=MANAGE_CHANNELS, query="generalization", time="7:30"
        )
        assert (await send(one, subscribe)).json() == {"type": 5, "data": {"flags": 0}}
        [announced] = await completed(discord, subscribe)
        assert announced.body["content"].startswith(
            "Subscribed: this channel gets new papers matching `generalization`"
        )

        # The other process knows it: everything is in the store.
        listing = command(discord, "list")
        assert (await send(two, listing)).json() == {"type": 5, "data": {"flags": 64}}
        [listed] = await completed(discord, listing)
        assert "1. `generalization`" in listed.body["content"]

        add_papers(two, 2)
        now = command(discord, "now", permissions=MANAGE_CHANNELS)
        assert (await send(two, now)).json() == {"type": 5, "data": {"flags": 64}}
        [reported] = await completed(discord, now)
        assert reported.body["content"] == "Posted new papers for 1 of 1 subscriptions."
        assert [m.arxiv_ids for m in two.posted.sent] == [("2606.00001", "2606.00002")]

        # A mistake after a public deferral: the "thinking…" answer is withdrawn, the member
        # alone is told.
        wrong = command(discord, "unsubscribe", permissions=MANAGE_CHANNELS, which="7")
        assert (await send(one, wrong)).json() == {"type": 5, "data": {"flags": 0}}
        deleted, told = await completed(discord, wrong, 2)
        assert deleted.method == "DELETE" and told.method == "POST"
        assert told.body["flags"] == 64

        gone = command(discord, "unsubscribe", permissions=MANAGE_CHANNELS, which="1")
        await send(two, gone)
        [unsubscribed] = await completed(discord, gone)
        assert unsubscribed.body["content"] == "Unsubscribed from `generalization`."


# -- settings -----------------------------------------------------------------------------------------


def test_the_public_key_is_checked_with_the_settings(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("")
    settings, problems = read_settings(config, {"DISCORD_PUBLIC_KEY": PUBLIC_KEY.upper()})
    assert problems == [] and settings.discord.public_key == PUBLIC_KEY
    _, problems = read_settings(config, {"DISCORD_PUBLIC_KEY": "not-a-key"})
    [problem] = problems
    assert problem.key == "discord.public_key" and "64 hexadecimal" in str(problem)


def test_serve_mounts_the_endpoint_beside_the_feeds(discord: FakeDiscord, tmp_path: Path) -> None:
    """The installed outputs, found through their entry points, make up serve's web server:
    the Discord endpoint (no bot token, no gateway) next to the feeds and the page."""
    port = unused_port()
    config = tmp_path / "c.toml"
    config.write_text(
        f"""
[store]
database_url = "sqlite:///{tmp_path / "serve.db"}"
[sources.hf]
enabled = false
[discord]
api_base_url = "{discord.api_base}"
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "SLACK_"))}
    env["DISCORD_PUBLIC_KEY"] = PUBLIC_KEY
    proc = subprocess.Popen(
        serve_command(config, port),
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        ping = json.dumps({"type": 1, "id": "1", "application_id": APPLICATION_ID}).encode()
        deadline = time.monotonic() + 60
        answer = None
        while answer is None and time.monotonic() < deadline:
            try:
                answer = httpx.post(
                    f"{base}/discord/interactions", content=ping, headers=signed(ping)
                )
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200 and answer.json() == {"type": 1}
        unsigned = httpx.post(f"{base}/discord/interactions", content=ping)
        assert unsigned.status_code == 401
        assert httpx.get(f"{base}/feeds/all.atom").status_code == 200
        assert httpx.get(f"{base}/").status_code == 200
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=15)
    assert "discord: answering /papers at /discord/interactions" in output.decode()


# -- hostile requests: never a 500, never a traceback ------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_OPTION = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["query", "which", "time", "time_zone", "all_quiet", "x"]),
        "type": st.sampled_from([3, 5, 1, "3"]),
        "value": _JSON,
    },
    optional={"focused": st.booleans()},
)
_SUBCOMMAND = st.fixed_dictionaries(
    {
        "type": st.sampled_from([1, 2, "1"]),
        "name": st.sampled_from(["search", "subscribe", "unsubscribe", "list", "now", "help", "?"]),
        "options": st.one_of(st.lists(_OPTION, max_size=4), _JSON),
    }
)
_DATA = st.one_of(
    _JSON,
    st.fixed_dictionaries(
        {
            "name": st.sampled_from(["papers", "other", 5]),
            "options": st.lists(_SUBCOMMAND, max_size=2),
        }
    ),
    st.fixed_dictionaries({"custom_id": st.one_of(st.text(max_size=30), st.just("pb:p:2:gan"))}),
)
_INTERACTIONS = st.fixed_dictionaries(
    {"type": st.sampled_from([1, 2, 3, 4, 5, "2", None])},
    optional={
        "application_id": st.one_of(st.just(APPLICATION_ID), _JSON),
        "token": st.one_of(st.just("hostile-token"), _JSON),
        "guild_id": st.one_of(st.just(GUILD), _JSON),
        "channel": st.one_of(
            st.just({"id": CHANNEL, "type": 0, "name": "papers"}),
            st.fixed_dictionaries({"id": _JSON, "type": _JSON}),
            _JSON,
        ),
        "member": st.one_of(
            st.just({"user": {"id": USER}, "permissions": str(MANAGE_CHANNELS)}),
            st.fixed_dictionaries({"user": _JSON, "permissions": _JSON}),
            _JSON,
        ),
        "user": _JSON,
        "data": _DATA,
    },
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    body=st.one_of(st.binary(max_size=200), _INTERACTIONS.map(lambda i: json.dumps(i).encode())),
    signature=st.sampled_from(["right", "none", "garbage", "old"]),
)
def test_no_interaction_is_answered_with_a_500(
    hostile_discord: tuple[asyncio.Runner, EndpointServer],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    signature: str,
) -> None:
    runner, server = hostile_discord
    headers = {
        "right": signed(body),
        "none": {},
        "garbage": {**signed(body), "X-Signature-Ed25519": "ab" * 64},
        "old": signed(body, at=time.time() - 600),
    }[signature]

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(timeout=10) as client:
            return await client.post(server.url, content=body, headers=headers)

    answer = runner.run(post())
    assert answer.status_code < 500, (body, signature, answer.text)
    if signature != "right":
        assert answer.status_code == 401
    assert "Traceback" not in caplog.text


@pytest.fixture(scope="module")
def hostile_discord() -> Iterator[tuple[asyncio.Runner, EndpointServer]]:
    runner = asyncio.Runner()
    with FakeDiscord() as fake, tempfile.TemporaryDirectory() as workdir:
        server = EndpointServer(fake, f"sqlite:///{workdir}/discord.db")
        runner.run(server.__aenter__())
        try:
            yield runner, server
        finally:
            runner.run(server.__aexit__(None, None, None))
            runner.close()


async def test_a_rate_limited_or_unavailable_completion_is_tried_again(
    discord: FakeDiscord, sqlite_url: str
) -> None:
    async with endpoint(discord, sqlite_url) as server:
        add_papers(server, 2)
        payload = command(discord, "search", query="generalization")
        original = f"/webhooks/{APPLICATION_ID}/{payload['token']}/messages/@original"
        discord.rate_limit(re.escape(original), 0.05)
        discord.fail(re.escape(original), status=503)
        assert (await send(server, payload)).json()["type"] == 5
        tries = await completed(discord, payload, 3)
        assert [c.method for c in tries] == ["PATCH"] * 3
        assert tries[-1].body["content"].startswith("2 papers match")
        # A long rate limit is not waited out while the member watches: logged, given up.
        later = command(discord, "search", query="generalization")
        discord.rate_limit(re.escape(later["token"]), 60)
        await send(server, later)
        [once] = await completed(discord, later)
        await asyncio.sleep(0.2)
        assert len([c for c in discord.calls if later["token"] in c.path]) == 1
        assert once.method == "PATCH"


async def test_an_interaction_without_a_follow_up_address_is_refused_before_any_work(
    discord: FakeDiscord, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with endpoint(discord, sqlite_url) as server:
        for missing in ("token", "application_id"):
            payload = command(discord, "search", query="generalization")
            del payload[missing]
            answer = await send(server, payload)
            assert answer.status_code == 400, missing
        await asyncio.sleep(0.2)  # any work started would have failed by now
    assert "Traceback" not in caplog.text and discord.calls == []
