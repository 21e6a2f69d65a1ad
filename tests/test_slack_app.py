"""/papers over HTTP: signed requests to the real endpoint of a running server, answers through
the response_url of a fake Slack, and the 3-second acknowledgement however slow the store."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adapters.slack
from adapters.slack import slack_output
from adapters.slack.blocks import MORE_ACTION, SHARE_ACTION, page_value
from adapters.slack.output import BOT_SCOPES, EVENTS_PATH, REDIRECT_PATH
from bridge.chat import Channel, ChatService
from bridge.config import Settings, SlackSettings
from bridge.errors import ConfigError
from bridge.ledger import build_ledger
from bridge.models import Paper
from bridge.outputs import OutputContext, running_outputs
from bridge.store import open_store
from tests.fake_slack import APP_TOKEN, DEFAULT_TEAM, DEFAULT_TOKEN, FakeSlack
from tests.fake_upstream import unused_port
from tests.local_server import serve_command
from tests.slack_support import (
    SIGNING_SECRET,
    GatedChat,
    SlackServer,
    action_body,
    command_body,
    responses,
    signed_headers,
)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def stored_papers(server: SlackServer, count: int = 12) -> None:
    server.store.add_papers(
        [
            Paper(
                f"2606.{n:05d}",
                f"Generalization study {n}",
                abstract="We study out-of-distribution generalization <!channel> in depth.",
                authors=("Ann Author",),
                upvotes=n,
            )
            for n in range(1, count + 1)
        ]
    )


async def post(
    server: SlackServer, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            server.url, content=body, headers=signed_headers(body) if headers is None else headers
        )


# -- every request is verified ----------------------------------------------------------------------


async def test_unsigned_badly_signed_and_stale_requests_are_rejected(slack, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    async with SlackServer(slack, sqlite_url) as server:
        body = command_body(slack, "help")
        unsigned = await post(server, body, {"Content-Type": "application/x-www-form-urlencoded"})
        badly = await post(server, body, signed_headers(body, secret="not-the-secret"))
        tampered = await post(server, body.replace(b"help", b"list"), signed_headers(body))
        stale = await post(server, body, signed_headers(body, at=time.time() - 6 * 60))
        valid = await post(server, body)
    assert [r.status_code for r in (unsigned, badly, tampered, stale)] == [401] * 4
    assert valid.status_code == 200
    assert not slack.calls_to("response")  # nothing ran for the rejected ones


def raw_signed(body: bytes, timestamp: bytes | None = None) -> dict[str, Any]:
    """Signed as Slack would sign it, with any timestamp bytes and any body bytes at all."""
    stamp = str(int(time.time())).encode() if timestamp is None else timestamp
    mac = hmac.new(SIGNING_SECRET.encode(), b"v0:" + stamp + b":" + body, hashlib.sha256)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=" + mac.hexdigest(),
        "Content-Type": "application/x-www-form-urlencoded",
    }


async def test_malformed_timestamps_are_a_400_before_the_signature_is_checked(
    slack: FakeSlack, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    now = str(int(time.time())).encode()
    body = command_body(slack, "help")
    # b"1\xb2" reads as "1²", which str.isdigit() takes for a number and int() does not.
    stamps = (b"abc", b"", b"1e3", now + b".5", b"-1", b"1\xb2", b"9" * 40)
    async with SlackServer(slack, sqlite_url) as server:
        answers = {stamp: await post(server, body, raw_signed(body, stamp)) for stamp in stamps}
        fine = await post(server, body, raw_signed(body, now))
    assert {stamp: a.status_code for stamp, a in answers.items()} == dict.fromkeys(answers, 400)
    assert all("X-Slack-Request-Timestamp" in a.text for a in answers.values())
    assert fine.status_code == 200
    assert not slack.calls_to("response")
    assert "Traceback" not in caplog.text


async def test_signed_bodies_bolt_cannot_read_are_a_400(
    slack: FakeSlack, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    json_type = {"Content-Type": "application/json"}
    async with SlackServer(slack, sqlite_url) as server:
        latin = await post(server, b"text=caf\xe9", raw_signed(b"text=caf\xe9"))
        broken = b'{"type": "event_callback", '
        truncated = await post(server, broken, {**raw_signed(broken), **json_type})
        listed = await post(server, b"[1, 2]", {**raw_signed(b"[1, 2]"), **json_type})
        payload = b"payload=%7Bnot+json"
        bad_payload = await post(server, payload, raw_signed(payload))
    assert (latin.status_code, latin.text) == (400, "the body is not UTF-8 (byte 8)")
    assert truncated.status_code == 400 and "not valid JSON" in truncated.text
    assert listed.status_code == 400 and "not an object" in listed.text
    assert bad_payload.status_code == 400 and "not valid JSON" in bad_payload.text
    assert "Traceback" not in caplog.text


async def test_a_refused_request_is_one_log_line_without_its_body(
    slack: FakeSlack, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = command_body(slack, "secret-looking words")
    async with SlackServer(slack, sqlite_url) as server:
        caplog.clear()
        refused = await post(server, body, signed_headers(body, secret="not-the-secret"))
        records = [r for r in caplog.records if r.name.startswith(("adapters", "slack_bolt"))]
    assert refused.status_code == 401
    assert [(r.levelname, r.getMessage()) for r in records] == [
        (
            "INFO",
            "slack: refused a request from 127.0.0.1 to /slack/events:"
            " the signature does not match the body",
        )
    ]
    assert "secret-looking" not in caplog.text


async def test_help_and_bad_arguments_are_answered_in_the_acknowledgement(
    slack, sqlite_url
) -> None:  # type: ignore[no-untyped-def]
    async with SlackServer(slack, sqlite_url) as server:
        helped = await post(server, command_body(slack, "help"))
        wrong = await post(server, command_body(slack, "subscribe generalization at 25:00"))
        typo = await post(server, command_body(slack, "subscribe <!here> Europe/Berln"))
        broken = await post(server, command_body(slack, "title:(<!here> OR"))
    assert helped.json()["response_type"] == "ephemeral"
    assert "`/papers subscribe generalization at 08:00 Europe/Berlin`" in json.dumps(helped.json())
    assert wrong.json() == {
        "text": "`25:00` is not a time of day: write it like 08:00, 7:30 or 7am.",
        "response_type": "ephemeral",
    }
    assert "`Europe/Berln` is not a time zone" in typo.json()["text"]
    assert "does not parse" in broken.json()["text"]
    assert "<!here>" not in broken.text and "&lt;!here&gt;" in broken.json()["text"]


async def test_a_search_is_acknowledged_then_answered_privately(slack, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    async with SlackServer(slack, sqlite_url) as server:
        stored_papers(server)
        ack = await post(server, command_body(slack, "generalization", name="s1"))
        assert ack.status_code == 200 and ack.content == b""
        [answer] = await responses(slack, "s1")
    assert answer["response_type"] == "ephemeral"
    blocks = answer["blocks"]
    assert blocks[0]["text"]["text"] == "12 papers match `generalization` (showing 1–5)"
    assert "*generalization*" in blocks[1]["text"]["text"]
    assert "<!channel>" not in json.dumps(answer) and "&lt;!channel&gt;" in json.dumps(answer)
    labels = [e["text"]["text"] for e in blocks[-1]["elements"]]
    assert labels == ["More", "Share in channel"]


async def test_the_ack_never_waits_for_a_slow_store(slack, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    async with SlackServer(slack, sqlite_url, gated=True) as server:
        stored_papers(server)
        ack = await post(server, command_body(slack, "generalization", name="slow"))
        assert ack.status_code == 200
        # Slack has its answer while the search is still stuck in the store.
        chat = server.chat
        assert isinstance(chat, GatedChat)
        await slack.wait_for(chat.waiting.is_set)
        assert not slack.calls_to("response")
        chat.gate.set()
        [answer] = await responses(slack, "slow")
    assert answer["blocks"][0]["text"]["text"].startswith("12 papers match")


async def test_more_and_share_buttons(slack, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    async with SlackServer(slack, sqlite_url) as server:
        stored_papers(server)
        more = await post(
            server,
            action_body(slack, MORE_ACTION, page_value("generalization", 2) or "", name="m1"),
        )
        assert more.status_code == 200
        [page2] = await responses(slack, "m1")
        assert page2["replace_original"] is True and page2["response_type"] == "ephemeral"
        assert (
            page2["blocks"][0]["text"]["text"] == "12 papers match `generalization` (showing 6–10)"
        )

        shared = await post(
            server,
            action_body(slack, SHARE_ACTION, page_value("generalization", 1) or "", name="sh"),
        )
        assert shared.status_code == 200
        visible, cleanup = await responses(slack, "sh", 2)
        assert visible["response_type"] == "in_channel" and visible["replace_original"] is False
        assert all(block["type"] != "actions" for block in visible["blocks"])
        assert visible["blocks"][-1]["elements"][0]["text"] == "Shared by <@U0USER>"
        assert cleanup == {"text": "", "delete_original": True}

        forged = await post(server, action_body(slack, MORE_ACTION, "not json", name="f1"))
        assert forged.status_code == 200
        [answer] = await responses(slack, "f1")
        assert "no longer works" in answer["text"]


async def test_subscribe_list_now_and_unsubscribe_in_a_channel(slack, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    slack.user_zones["U0USER"] = "Europe/Berlin"
    async with SlackServer(slack, sqlite_url) as server:
        await post(server, command_body(slack, "subscribe generalization at 7:30", name="sub"))
        [subscribed] = await responses(slack, "sub")
        assert subscribed["response_type"] == "in_channel"
        assert subscribed["text"] == (
            "Subscribed: this channel gets new papers matching `generalization`"
            " every morning at 07:30 (Europe/Berlin)."
        )
        assert [c.body["channel"] for c in slack.calls_to("conversations.join")] == ["C0CHAN"]

        await post(server, command_body(slack, "list", name="list"))
        [listed] = await responses(slack, "list")
        assert listed["response_type"] == "ephemeral" and "1. `generalization`" in listed["text"]

        stored_papers(server, 2)  # news since the subscription
        await post(server, command_body(slack, "now", name="now"))
        [report] = await responses(slack, "now")
        assert slack.papers_posted("C0CHAN") == ["2606.00001", "2606.00002"]
        assert report["response_type"] == "ephemeral"
        assert report["text"] == "Posted new papers for 1 of 1 subscriptions."

        await post(server, command_body(slack, "unsubscribe 1", name="un"))
        [gone] = await responses(slack, "un")
        assert gone["text"] == "Unsubscribed from `generalization`."
        assert (
            server.ledger.db.digests_of(Channel("slack", f"{DEFAULT_TEAM}:C0CHAN").destination_id)
            == []
        )


async def test_a_private_channel_gets_the_invite_hint(slack, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    slack.join_errors["C0PRIV"] = "method_not_supported_for_channel_type"
    async with SlackServer(slack, sqlite_url) as server:
        await post(server, command_body(slack, "subscribe diffusion", channel="C0PRIV", name="p"))
        [answer] = await responses(slack, "p")
    assert "invite me (`/invite @paperbridge`)" in answer["text"]
    assert "(UTC)" in answer["text"]  # no profile zone: the configured one


async def test_a_request_without_a_sane_length_is_refused(slack, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    async with SlackServer(slack, sqlite_url) as server:
        big = b"x" * ((1 << 20) + 1)
        async with httpx.AsyncClient() as client:
            too_big = await client.post(server.url, content=big, headers=signed_headers(big))
    assert too_big.status_code == 413


# -- `paperbridge serve` as a real process ------------------------------------------------------------


def test_serve_mounts_the_slack_endpoint_and_never_prints_secrets(
    slack: FakeSlack, tmp_path: Path
) -> None:
    port = unused_port()
    config = tmp_path / "c.toml"
    config.write_text(
        f"""
[store]
database_url = "sqlite:///{tmp_path / "serve.db"}"
[sources.hf]
enabled = false
[slack]
api_base_url = "{slack.api_url}"
""",
        encoding="utf-8",
    )
    env = {**os.environ, "SLACK_BOT_TOKEN": DEFAULT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    command = serve_command(config, port)
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        url = f"http://127.0.0.1:{port}/slack/events"
        body = command_body(slack, "generalization", name="serve")
        deadline = time.monotonic() + 30
        answer = None
        while answer is None and time.monotonic() < deadline:
            try:
                answer = httpx.post(url, content=body, headers=signed_headers(body))
            except httpx.TransportError:
                time.sleep(0.1)
        assert answer is not None and answer.status_code == 200
        unsigned = httpx.post(
            url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert unsigned.status_code == 401
        while not slack.calls_to("response") and time.monotonic() < deadline:
            time.sleep(0.05)
        [reply] = slack.calls_to("response")
        assert reply.body["text"].startswith("No stored paper matches generalization")
        assert slack.calls_to("auth.test"), "the bot token is checked at start"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=15)
    text = output.decode()
    assert "slack: answering /papers at /slack/events" in text
    assert "will be unused" not in text  # Bolt's noise about the token it found itself
    assert DEFAULT_TOKEN not in text and SIGNING_SECRET not in text


# -- Socket Mode ----------------------------------------------------------------------------------------


def command_payload(slack: FakeSlack, text: str, name: str) -> dict[str, Any]:
    return dict(parse_qsl(command_body(slack, text, name=name).decode()))


async def test_socket_mode_acknowledges_envelopes_and_answers(slack, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    async with SlackServer(slack, sqlite_url, mode="socket", app_token=APP_TOKEN) as server:
        assert server.routes == []  # nothing listens on HTTP for commands
        await slack.wait_for(lambda: slack.socket_clients == 1)
        stored_papers(server)
        slack.socket_send(
            {
                "envelope_id": "e-help",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": command_payload(slack, "help", "h"),
            }
        )
        slack.socket_send(
            {
                "envelope_id": "e-search",
                "type": "slash_commands",
                "accepts_response_payload": True,
                "payload": command_payload(slack, "generalization", "sock"),
            }
        )
        await slack.wait_for(lambda: {"e-help", "e-search"} <= set(slack.acks))
        [answer] = await responses(slack, "sock")
    assert slack.calls_to("apps.connections.open")[0].token == APP_TOKEN
    assert "`/papers generalization`" in json.dumps(slack.acks["e-help"]["payload"])
    assert "payload" not in slack.acks["e-search"]  # an empty ack: the results follow
    assert answer["blocks"][0]["text"]["text"] == "12 papers match `generalization` (showing 1–5)"


# -- the app manifest -------------------------------------------------------------------------------------


def test_the_manifest_creates_the_app_this_code_expects() -> None:
    manifest = yaml.safe_load((Path(adapters.slack.__file__).parent / "manifest.yml").read_text())
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == SlackSettings().command
    assert command["url"].endswith(EVENTS_PATH)
    assert manifest["settings"]["interactivity"]["request_url"] == command["url"]
    assert manifest["settings"]["event_subscriptions"]["request_url"] == command["url"]
    assert manifest["oauth_config"]["redirect_urls"][0].endswith(REDIRECT_PATH)
    # The scopes the OAuth flow asks for are the manifest's, and cover every method called.
    assert manifest["oauth_config"]["scopes"]["bot"] == list(BOT_SCOPES)
    assert {"commands", "chat:write", "channels:join", "users:read"} == set(BOT_SCOPES)


async def test_http_mode_without_a_signing_secret_stops_serve_but_not_deliver(
    slack: FakeSlack, sqlite_url: str
) -> None:
    settings = Settings.model_validate(
        {
            "store": {"database_url": sqlite_url},
            "slack": {"api_base_url": slack.api_url},
            "slack_bot_token": DEFAULT_TOKEN,
        }
    )
    store = open_store(sqlite_url)
    try:
        ledger = build_ledger(store, settings)
        context = OutputContext(settings, store, ledger, ChatService(store, ledger, settings))
        with pytest.raises(ConfigError) as caught:
            async with running_outputs(context, listen=True, factories=[slack_output]):
                pass
        assert caught.value.key == "slack_signing_secret"
        # `paperbridge deliver` only posts: it needs no signing secret.
        async with running_outputs(context, listen=False, factories=[slack_output]) as outputs:
            assert list(outputs[0].publishers()) == ["slack"] and outputs[0].routes() == []
    finally:
        store.close()


# -- hostile requests: never a 500, never a traceback -----------------------------------------------


# What a client can put in a header value at all: no control characters but tab.
_WIRE = st.binary(max_size=40).map(
    lambda b: bytes(c for c in b if c == 9 or 32 <= c != 127).strip(b" \t")
)
_BODIES = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.sampled_from(
        [
            b"{}",
            b"[]",
            b"null",
            b'{"type": 1}',
            b'{"type": "event_callback", "event": 5}',
            b'{"type": "url_verification"}',
            b'{"type": "block_actions", "actions": "x"}',
            b"payload=%7B%7D",
            b"payload=%5B%5D",
            b'payload={"type": "block_actions", "actions": [{}]}',
            b"command=/papers&text=help",
            b"command=/papers",
            b"command=/papers&text=" + b"x" * 3000,
            b"\xff\xfe",
            b"[" * 5000,
        ]
    ),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    body=_BODIES,
    content_type=st.sampled_from(
        [
            None,
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
            "application/json; charset=latin-1",
        ]
    ),
    timestamp=st.one_of(st.none(), st.just(b"now"), _WIRE),
    signature=st.one_of(st.none(), st.just(b"right"), _WIRE),
)
def test_no_slack_request_is_answered_with_a_500(
    hostile_slack: tuple[asyncio.Runner, SlackServer],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    content_type: str | None,
    timestamp: bytes | None,
    signature: bytes | None,
) -> None:
    runner, server = hostile_slack
    headers: dict[str, Any] = {}
    stamp = str(int(time.time())).encode() if timestamp == b"now" else timestamp
    if stamp is not None:
        headers["X-Slack-Request-Timestamp"] = stamp
    if signature == b"right" and stamp is not None:
        headers["X-Slack-Signature"] = raw_signed(body, stamp)["X-Slack-Signature"]
    elif signature is not None:
        headers["X-Slack-Signature"] = signature
    if content_type is not None:
        headers["Content-Type"] = content_type
    answer = runner.run(post(server, body, headers))
    assert answer.status_code < 500, (body, headers, answer.text)
    assert "Traceback" not in caplog.text


@pytest.fixture(scope="module")
def hostile_slack() -> Iterator[tuple[asyncio.Runner, SlackServer]]:
    runner = asyncio.Runner()
    with FakeSlack() as fake, tempfile.TemporaryDirectory() as workdir:
        server = SlackServer(fake, f"sqlite:///{workdir}/slack.db")
        runner.run(server.__aenter__())
        try:
            yield runner, server
        finally:
            runner.run(server.__aexit__(None, None, None))
            runner.close()
