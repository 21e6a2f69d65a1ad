"""Installation into several workspaces: the OAuth flow through a running server, tokens kept
encrypted in the store (SQLite and PostgreSQL), each workspace answered and posted to with its
own token, and a removed app forgotten."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from slack_sdk.oauth.installation_store import Installation
from sqlalchemy import select

from adapters.slack import slack_output
from adapters.slack.installations import (
    DatabaseStateStore,
    Installations,
    token_cipher,
)
from adapters.slack.output import BOT_SCOPES, INSTALL_PATH, REDIRECT_PATH
from bridge.chat import ChatService
from bridge.config import Settings
from bridge.delivery import Destination
from bridge.errors import ConfigError
from bridge.ledger import build_ledger
from bridge.outputs import OutputContext
from bridge.store import Store, schema
from tests.fake_slack import FakeSlack
from tests.slack_support import (
    CLIENT_ID,
    SlackServer,
    command_body,
    papers,
    responses,
    signed_headers,
)

KEY = Fernet.generate_key().decode()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(tokens={}) as fake:
        for n, team in enumerate(("T0ONE", "T0TWO"), 1):
            token = f"xoxb-team-{n}-secret"
            fake.tokens[token] = team
            fake.oauth_codes[f"code-{n}"] = {
                "ok": True,
                "app_id": "A0APP",
                "authed_user": {"id": "U0INSTALLER"},
                "scope": ",".join(BOT_SCOPES),
                "token_type": "bot",
                "access_token": token,
                "bot_user_id": f"U0BOT{n}",
                "team": {"id": team, "name": f"Team {n}"},
                "enterprise": None,
                "is_enterprise_install": False,
            }
        yield fake


async def install(server: SlackServer, code: str) -> httpx.Response:
    """What a browser does: open the install page, follow Slack back with the code."""
    async with httpx.AsyncClient() as browser:
        page = await browser.get(server.at(INSTALL_PATH))
        assert page.status_code == 200
        link = re.search(r'href="(https://slack\.com/oauth/v2/authorize\?[^"]+)"', page.text)
        assert link is not None
        query = parse_qs(urlsplit(link.group(1).replace("&amp;", "&")).query)
        assert query["client_id"] == [CLIENT_ID]
        assert query["scope"] == [",".join(BOT_SCOPES)]
        state = query["state"][0]
        # The state cookie is Secure; behind HTTPS the browser sends it back.
        cookie = page.headers["set-cookie"].split(";")[0]
        return await browser.get(
            server.at(REDIRECT_PATH),
            params={"code": code, "state": state},
            headers={"Cookie": cookie},
        )


async def test_installing_keeps_an_encrypted_token_and_serves_that_workspace(
    slack, sqlite_url
) -> None:  # type: ignore[no-untyped-def]
    async with SlackServer(slack, sqlite_url, installation_key=KEY) as server:
        done = await install(server, "code-2")
        assert done.status_code == 200
        [exchange] = slack.calls_to("oauth.v2.access")
        assert exchange.body["client_id"] == CLIENT_ID and exchange.body["code"] == "code-2"
        with server.store.engine.connect() as conn:
            row = conn.execute(select(schema.slack_installations)).one()
        assert row.team_id == "T0TWO" and row.team_name == "Team 2"
        assert "xoxb" not in row.bot_token  # encrypted at rest
        assert Fernet(KEY.encode()).decrypt(row.bot_token.encode()) == b"xoxb-team-2-secret"

        # A command from that workspace is answered with that workspace's token...
        body = command_body(slack, "subscribe generalization", team="T0TWO", name="sub")
        async with httpx.AsyncClient() as client:
            ack = await client.post(server.url, content=body, headers=signed_headers(body))
        assert ack.status_code == 200
        await slack.wait_for(lambda: bool(slack.calls_to("response")))
        [join] = slack.calls_to("conversations.join")
        assert join.token == "xoxb-team-2-secret"
        # ...and its morning post goes out with it too.
        server.store.add_papers(papers(2))
        await server.ledger.sweep(force=True)
        [post] = slack.calls_to("chat.postMessage")
        assert post.token == "xoxb-team-2-secret" and post.body["channel"] == "C0CHAN"

        # A workspace that never installed the app gets nothing done.
        stranger = command_body(slack, "generalization", team="T0NONE", name="x")
        async with httpx.AsyncClient() as client:
            refused = await client.post(
                server.url, content=stranger, headers=signed_headers(stranger)
            )
        assert refused.status_code == 200
        [told] = await responses(slack, "x")
        assert "not installed in this workspace" in told["text"]
        assert len(slack.calls_to("response")) == 2  # the subscription's, and this


async def test_an_oauth_state_is_good_for_one_callback(slack, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    async with SlackServer(slack, sqlite_url, installation_key=KEY) as server:
        states = DatabaseStateStore(server.store)
        state = await states.async_issue()
        assert await states.async_consume(state)
        assert not await states.async_consume(state)
        assert not await states.async_consume("made-up")
        # Without its cookie a callback is refused, code or not.
        async with httpx.AsyncClient() as browser:
            forged = await browser.get(
                server.at(REDIRECT_PATH), params={"code": "code-1", "state": state}
            )
        assert forged.status_code != 200
        assert not slack.calls_to("oauth.v2.access")


async def test_a_removed_app_is_forgotten(slack, sqlite_url) -> None:  # type: ignore[no-untyped-def]
    async with SlackServer(slack, sqlite_url, installation_key=KEY) as server:
        assert (await install(server, "code-1")).status_code == 200
        event = json.dumps(
            {
                "type": "event_callback",
                "team_id": "T0ONE",
                "api_app_id": "A0APP",
                "event": {"type": "app_uninstalled"},
                "event_id": "Ev1",
                "event_time": 1700000000,
            }
        ).encode()
        headers = {**signed_headers(event), "Content-Type": "application/json"}
        async with httpx.AsyncClient() as client:
            answer = await client.post(server.url, content=event, headers=headers)
        assert answer.status_code == 200

        def installed() -> list[object]:
            with server.store.engine.connect() as conn:
                return list(conn.execute(select(schema.slack_installations)).all())

        # Events are acknowledged first and handled after.
        await slack.wait_for(lambda: not installed())
        publisher = server.output.publishers()["slack"]
        outcome = await publisher.send_digest(Destination("d", "slack", "T0ONE:C1"), [])
        assert outcome.status == "permanent" and "not installed" in outcome.reason


async def test_installations_on_every_database_with_key_rotation(store: Store) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    first = Installations(store, token_cipher(old))
    await first.installation_store.async_save(
        Installation(
            app_id="A0APP",
            team_id="T0ONE",
            team_name="One",
            bot_token="xoxb-one",
            bot_id="B1",
            bot_user_id="U1",
            bot_scopes=list(BOT_SCOPES),
            user_id="U0",
        )
    )
    rotated = Installations(store, token_cipher(f"{new},{old}"))
    await rotated.load()
    assert await rotated.token_for("T0ONE") == "xoxb-one"
    assert await rotated.token_for("T0NOPE") is None
    assert "xoxb" not in repr(rotated) + repr(await rotated.workspace("T0ONE"))
    # A key that fits none of them: the workspace is skipped with an error, not a crash.
    lost = Installations(store, token_cipher(Fernet.generate_key().decode()))
    await lost.load()
    assert await lost.token_for("T0ONE") is None


def oauth_settings(**values: object) -> Settings:
    return Settings.model_validate(values)


@pytest.mark.parametrize(
    ("values", "key"),
    [
        (
            {
                "slack_bot_token": "xoxb-x",
                "slack": {"client_id": "1.2"},
                "slack_client_secret": "s",
            },
            "slack_bot_token",
        ),
        ({"slack": {"client_id": "1.2"}}, "slack_client_secret"),
        ({"slack_client_secret": "s"}, "slack.client_id"),
        ({"slack": {"client_id": "1.2"}, "slack_client_secret": "s"}, "slack_installation_key"),
        (
            {
                "slack": {"client_id": "1.2"},
                "slack_client_secret": "s",
                "slack_installation_key": "short",
            },
            "slack_installation_key",
        ),
    ],
)
def test_a_half_configured_app_stops_at_start_naming_the_key(
    sqlite_url: str, values: dict, key: str
) -> None:
    settings = oauth_settings(store={"database_url": sqlite_url}, **values)
    from bridge.store import open_store

    store = open_store(sqlite_url)
    try:
        ledger = build_ledger(store, settings)
        context = OutputContext(settings, store, ledger, ChatService(store, ledger, settings))
        with pytest.raises(ConfigError) as caught:
            slack_output(context)
        assert caught.value.key == key
        assert "xoxb-x" not in str(caught.value) and "short" not in str(caught.value)
    finally:
        store.close()
