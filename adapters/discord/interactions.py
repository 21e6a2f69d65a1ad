"""``/papers`` over HTTP: Discord's "Interactions Endpoint URL", with no gateway connection.

Discord POSTs each slash command, button press and autocomplete to
``<public_url>/discord/interactions``, signed with the application's key (``verify.py``;
anything unsigned is a 401). The answer must come within 3 seconds, in the HTTP response:
PING gets PONG, cheap answers (help, a bad query, a missing permission, autocomplete) are sent
at once, and anything touching the store answers "deferred" (type 5, or 6 for a button that
edits its message) and is completed in the background through the interaction's webhook
(``PATCH /webhooks/{application}/{token}/messages/@original``, follow-ups ``POST`` to
``/webhooks/{application}/{token}``), which needs no bot token. The commands, buttons, texts
and limits are the Cog's (``cog.py``, ``views.py``): both turn the same ``bridge.chat``
service's answers into the same Discord messages.

Nothing here is held in memory between requests (button custom ids carry their query and
page, subscriptions are in the store), so any ``serve`` process behind the same database can
answer any interaction: several can sit behind one load balancer, where the gateway is held
by one process at a time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import discord
import httpx
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from adapters.discord.cog import (
    CHOICE_MAX,
    CHOICES_MAX,
    FAILED,
    NOT_A_DIGEST_CHANNEL,
    NOT_A_SERVER_CHANNEL,
    permission_text,
    zone_choices,
)
from adapters.discord.render import (
    MARKUP,
    NO_MENTIONS,
    DiscordMessage,
    clip,
    help_text,
    pack,
    search_message,
)
from adapters.discord.verify import InteractionCheck
from adapters.discord.views import SEARCH_QUERY_MAX, results_view
from adapters.discord.webhook import redact_webhook_tokens_in_logs
from bridge.chat import (
    Channel,
    ChatService,
    Subscribe,
    checked_query,
    parse_time_of_day,
    parse_time_zone,
)
from bridge.chat.render import list_text, now_text, subscribed_text, unsubscribed_text, when_text
from bridge.chat.service import SearchPage
from bridge.config import DiscordSettings
from bridge.errors import ChatUsageError, StoreError

log = logging.getLogger(__name__)

PATH = "/discord/interactions"
# Discord's interactions are a few kilobytes; anything far bigger is not Discord.
MAX_BODY_BYTES = 1 << 20
# Completing an answer: tries per request, and the longest rate-limit wait taken for it.
MAX_ATTEMPTS = 3
MAX_INLINE_WAIT = 5.0

# Interaction types (discord-api-docs, interactions/receiving-and-responding).
PING, APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE = 1, 2, 3, 4
# Response types.
PONG, MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, CHOICES = 1, 4, 5, 6, 8
EPHEMERAL = 1 << 6
# Option types: a subcommand, and the values /papers takes.
SUBCOMMAND = 1
# Channel types digests can be posted in: text and announcement (the Cog's POSTABLE).
POSTABLE = {discord.ChannelType.text.value, discord.ChannelType.news.value}
# The buttons' custom ids (views.py): "pb:p:PAGE:QUERY" pages, "pb:s:PAGE:QUERY" shares.
_BUTTON = re.compile(r"pb:(?P<what>[ps]):(?P<page>\d{1,3}):(?P<query>.+)", re.DOTALL)


class Malformed(Exception):
    """A signed interaction of a shape this endpoint does not know: answered 400."""


class InteractionsEndpoint:
    """The Starlette endpoint; ``close()`` waits for (or cancels) the work still completing
    deferred answers."""

    def __init__(
        self,
        chat: ChatService,
        settings: DiscordSettings,
        client: httpx.AsyncClient,
        check: InteractionCheck,
    ) -> None:
        self.chat = chat
        self.settings = settings
        self.client = client
        self.check = check
        self.api_base = settings.api_base_url.rstrip("/")
        self._work: set[asyncio.Task[None]] = set()
        redact_webhook_tokens_in_logs()  # follow-up URLs hold the interaction's token

    async def handle(self, request: Request) -> Response:
        length = request.headers.get("content-length", "")
        if not (length.isascii() and length.isdigit()):
            return _refuse(request, 411, "a Content-Length is required")
        if int(length) > MAX_BODY_BYTES:
            return _refuse(request, 413, "too large for a Discord interaction")
        body = await request.body()
        refusal = self.check.refusal(request.headers, body)
        if refusal is not None:
            return _refuse(request, 401, refusal)
        try:
            interaction = json.loads(body)
            if not isinstance(interaction, dict):
                raise Malformed("the body is not a JSON object")
            return await self.answer(Interaction(interaction))
        except (ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
            return _refuse(request, 400, f"the body is not an interaction: {exc}")
        except (Malformed, KeyError, TypeError) as exc:
            return _refuse(request, 400, f"an interaction this endpoint cannot read ({exc!r})")

    async def close(self) -> None:
        if self._work:
            # Answers still being completed get a moment; Discord's tokens outlive a restart.
            _, pending = await asyncio.wait(self._work, timeout=5)
            for task in pending:
                task.cancel()
            await asyncio.wait(self._work)

    # -- dispatch ---------------------------------------------------------------------------------

    async def answer(self, it: Interaction) -> Response:
        kind = it.raw["type"]
        if kind == PING:
            return JSONResponse({"type": PONG})
        # Any other answer may be completed later through the follow-up webhook: its address
        # is checked now, so a payload without one is a 400, not a failure after the reply.
        it.webhook_path()
        if kind == APPLICATION_COMMAND:
            return await self._command(it)
        if kind == MESSAGE_COMPONENT:
            return self._button(it)
        if kind == AUTOCOMPLETE:
            return JSONResponse({"type": CHOICES, "data": {"choices": await self._choices(it)}})
        raise Malformed(f"interaction type {kind!r}")

    async def _command(self, it: Interaction) -> Response:
        name, options = it.subcommand()
        if name == "help":
            return _tell(help_text())
        if name == "search":
            return self._search(it, options)
        if name == "list":
            channel = it.channel()
            if channel is None:
                return _tell(NOT_A_SERVER_CHANNEL)
            return self._defer(it, self._list(it, channel), ephemeral=True)
        channel_or_refusal = self._managed_channel(it)
        if isinstance(channel_or_refusal, Response):
            return channel_or_refusal
        channel = channel_or_refusal
        if name == "subscribe":
            return self._subscribe(it, channel, options)
        if name == "unsubscribe":
            which = _text(options, "which")
            return self._defer(it, self._unsubscribe(it, channel, which), ephemeral=False)
        if name == "now":
            return self._defer(it, self._now(it, channel), ephemeral=True)
        raise Malformed(f"/papers {name!r}")

    # -- search and its buttons -----------------------------------------------------------------

    def _search(self, it: Interaction, options: Mapping[str, Any]) -> Response:
        query = _text(options, "query")
        if len(query) > SEARCH_QUERY_MAX:  # the Cog's option caps it; Discord enforces that
            return _tell(f"A search is at most {SEARCH_QUERY_MAX} characters.")
        try:
            checked_query(query)
        except ChatUsageError as exc:
            return _tell(str(exc))

        async def work() -> None:
            try:
                page = await self.chat.search(query)
            except ChatUsageError as exc:
                await self._edit(it, _body(str(exc)))
                return
            await self._edit(it, _results(page))

        return self._defer(it, work(), ephemeral=True)

    def _button(self, it: Interaction) -> Response:
        data = it.raw["data"]
        found = _BUTTON.fullmatch(str(data["custom_id"]))
        if found is None:
            return _tell("This button is no longer in use; search again.")
        query, page = found["query"], max(1, int(found["page"]))
        if found["what"] == "p":

            async def paged() -> None:
                try:
                    results = await self.chat.search(query, page)
                except ChatUsageError as exc:
                    await self._follow_up(it, _body(str(exc), ephemeral=True))
                    return
                await self._edit(it, _results(results))

            # The message with the button is edited in place.
            return self._start(it, paged(), {"type": DEFERRED_UPDATE})

        async def shared() -> None:
            try:
                results = await self.chat.search(query, page)
            except ChatUsageError as exc:
                await self._retract(it, str(exc))
                return
            message = search_message(results)
            # The mention names who shared; allowed_mentions keeps it from pinging.
            content = f"<@{it.user_id()}> shared: {message.content}"
            await self._edit(it, _body(content, message.embeds))

        return self._defer(it, shared(), ephemeral=False)  # a new, public message

    async def _choices(self, it: Interaction) -> list[dict[str, str]]:
        name, options = it.subcommand()
        focused = next(
            (o for o in it.subcommand_options() if isinstance(o, dict) and o.get("focused")), None
        )
        current = str(focused.get("value", "")) if focused else ""
        if name == "subscribe" and focused and focused.get("name") == "time_zone":
            return [{"name": c.name, "value": str(c.value)} for c in zone_choices(current)]
        if name == "unsubscribe" and focused and focused.get("name") == "which":
            channel = it.channel()
            if channel is None:
                return []
            try:
                subs = await self.chat.subscriptions(channel)
            except StoreError as exc:  # suggestions are a courtesy: none, rather than a 500
                log.warning("discord: no completions for /papers unsubscribe: %s", exc)
                return []
            choices = []
            for number, sub in enumerate(subs, 1):
                label = clip(f"{number}. {sub.query} · {when_text(sub)}", CHOICE_MAX)
                if current.lower() in label.lower():
                    value = sub.query if len(sub.query) <= CHOICE_MAX else str(number)
                    choices.append({"name": label, "value": value})
            if len(subs) > 1 and current.lower() in "all":
                choices.append({"name": f"all {len(subs)} subscriptions", "value": "all"})
            return choices[:CHOICES_MAX]
        return []

    # -- subscriptions ----------------------------------------------------------------------------

    def _managed_channel(self, it: Interaction) -> Channel | Response:
        required = self.settings.manage_permission
        if required != "everyone" and not getattr(it.permissions(), required, False):
            return _tell(permission_text(required))
        channel = it.channel()
        return _tell(NOT_A_DIGEST_CHANNEL) if channel is None else channel

    def _subscribe(self, it: Interaction, channel: Channel, options: Mapping[str, Any]) -> Response:
        time, zone = options.get("time"), options.get("time_zone")
        try:
            command = Subscribe(
                checked_query(" ".join(_text(options, "query").split())),
                parse_time_of_day(str(time)) if time else None,
                parse_time_zone(str(zone)) if zone else None,
                bool(options.get("all_quiet", False)),
            )
        except ChatUsageError as exc:
            return _tell(str(exc))

        async def work() -> None:
            try:
                sub, created = await self.chat.subscribe(channel, command)
            except ChatUsageError as exc:
                await self._retract(it, str(exc))
                return
            await self._edit(it, _body(subscribed_text(MARKUP, sub, created)))

        # The channel sees what it will get; a problem found in the store is told privately.
        return self._defer(it, work(), ephemeral=False)

    async def _unsubscribe(self, it: Interaction, channel: Channel, which: str) -> None:
        try:
            removed = await self.chat.unsubscribe(channel, which)
        except ChatUsageError as exc:
            await self._retract(it, str(exc))
            return
        await self._edit(it, _body(unsubscribed_text(MARKUP, removed)))

    async def _list(self, it: Interaction, channel: Channel) -> None:
        subs = await self.chat.subscriptions(channel)
        # 25 long queries outgrow one message's 2,000 characters: follow-ups then.
        first, *more = pack(list_text(MARKUP, subs), [])
        await self._edit(it, _body(first.content))
        for message in more:
            await self._follow_up(it, _body(message.content, ephemeral=True))

    async def _now(self, it: Interaction, channel: Channel) -> None:
        try:
            report = await self.chat.post_now(channel)
        except ChatUsageError as exc:
            await self._edit(it, _body(str(exc)))
            return
        await self._edit(it, _body(now_text(report)))

    # -- deferred answers -------------------------------------------------------------------------

    def _defer(self, it: Interaction, work: Awaitable[None], *, ephemeral: bool) -> Response:
        answer = {"type": DEFERRED_MESSAGE, "data": {"flags": EPHEMERAL if ephemeral else 0}}
        return self._start(it, work, answer)

    def _start(self, it: Interaction, work: Awaitable[None], answer: dict[str, Any]) -> Response:
        """Answer now with ``answer`` and complete it in the background. The work starts
        after this response is sent: its edit of the answer must not arrive before it."""
        gate = asyncio.Event()
        task = asyncio.create_task(self._complete(it, gate, work))
        self._work.add(task)
        task.add_done_callback(self._work.discard)

        async def opened() -> None:  # runs once the response has been sent
            gate.set()

        return JSONResponse(answer, background=BackgroundTask(opened))

    async def _complete(self, it: Interaction, gate: asyncio.Event, work: Awaitable[None]) -> None:
        try:
            await asyncio.wait_for(gate.wait(), timeout=10)
        except TimeoutError:
            pass  # the response was never sent (the client left): Discord retries nothing
        try:
            await work
        except Exception:
            log.exception("discord: /papers %s failed (interactions endpoint)", it.describe())
            try:
                await self._retract(it, FAILED)
            except Exception:  # Discord unreachable: the log has it
                log.warning("discord: could not tell the member that /papers failed")

    async def _edit(self, it: Interaction, body: dict[str, Any]) -> None:
        body.pop("flags", None)  # an answer's visibility was fixed when it was deferred
        await self._call("PATCH", f"{it.webhook_path()}/messages/@original", body)

    async def _follow_up(self, it: Interaction, body: dict[str, Any]) -> None:
        await self._call("POST", it.webhook_path(), body)

    async def _retract(self, it: Interaction, text: str) -> None:
        """Replace a "thinking…" answer by a private one: the channel need not see a mistake."""
        await self._call("DELETE", f"{it.webhook_path()}/messages/@original", None)
        await self._follow_up(it, _body(text, ephemeral=True))

    async def _call(self, method: str, path: str, body: dict[str, Any] | None) -> None:
        """One request to the interaction's webhook. A 429 asking for a short wait, and a
        502/503 (the request was not handled), are tried again: the member is waiting for the
        answer, and the token stays valid for 15 minutes."""
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = await self.client.request(method, self.api_base + path, json=body)
            except httpx.HTTPError as exc:
                log.warning("discord: completing an interaction failed: %s", type(exc).__name__)
                return
            wait = _retry_wait(response)
            if wait is None or attempt == MAX_ATTEMPTS:
                break
            await asyncio.sleep(wait)
        if response.status_code >= 400:
            # The URL holds the interaction's token: only the method and the status are logged.
            log.warning(
                "discord: Discord refused %s of an interaction's answer: %s %s",
                method,
                response.status_code,
                response.text[:200],
            )


def _retry_wait(response: httpx.Response) -> float | None:
    """How long to wait before trying ``response``'s request again, or None not to."""
    if response.status_code in (502, 503):
        return 1.0
    if response.status_code != 429:
        return None
    try:
        wait = float(response.json()["retry_after"])
    except (ValueError, TypeError, KeyError):  # not Discord's JSON: not waited on blindly
        return None
    return wait if 0 <= wait <= MAX_INLINE_WAIT else None


class Interaction:
    """The fields of an interaction payload this endpoint reads, each checked as it is read
    (KeyError, TypeError or ``Malformed``: a 400)."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    def webhook_path(self) -> str:
        application, token = str(self.raw["application_id"]), str(self.raw["token"])
        if not application.isdigit() or not re.fullmatch(r"[\w.-]{1,500}", token):
            raise Malformed("application_id or token")
        return f"/webhooks/{application}/{token}"

    def subcommand(self) -> tuple[str, dict[str, Any]]:
        data = self.raw["data"]
        if data["name"] != "papers":
            raise Malformed(f"command {data['name']!r}")
        [sub] = [o for o in data["options"] if o["type"] == SUBCOMMAND]
        return str(sub["name"]), {
            str(o["name"]): o.get("value") for o in sub.get("options", []) if isinstance(o, dict)
        }

    def subcommand_options(self) -> list[Any]:
        [sub] = [o for o in self.raw["data"]["options"] if o["type"] == SUBCOMMAND]
        options = sub.get("options", [])
        return options if isinstance(options, list) else []

    def channel(self) -> Channel | None:
        """The channel as a digest destination, when digests can go there (the Cog's rule)."""
        channel = self.raw.get("channel")
        if self.raw.get("guild_id") is None or not isinstance(channel, dict):
            return None
        if channel.get("type") not in POSTABLE:
            return None
        channel_id = str(channel["id"])
        if not channel_id.isdigit():
            raise Malformed("channel id")
        return Channel("discord", channel_id, f"#{channel.get('name', '')}")

    def permissions(self) -> discord.Permissions:
        member = self.raw.get("member")
        if not isinstance(member, dict):
            return discord.Permissions.none()
        return discord.Permissions(int(member.get("permissions") or 0))

    def user_id(self) -> str:
        member = self.raw.get("member")
        user = member.get("user") if isinstance(member, dict) else self.raw.get("user")
        if not isinstance(user, dict):
            raise Malformed("no user")
        user_id = str(user["id"])
        if not user_id.isdigit():
            raise Malformed("user id")
        return user_id

    def describe(self) -> str:
        data = self.raw.get("data")
        if isinstance(data, dict) and "custom_id" in data:
            return "button"
        try:
            return self.subcommand()[0]
        except (Malformed, KeyError, TypeError, ValueError):
            return "?"


def _text(options: Mapping[str, Any], name: str) -> str:
    value = options.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"option {name!r}")
    return value


def _body(
    content: str, embeds: Sequence[discord.Embed] = (), *, ephemeral: bool = False
) -> dict[str, Any]:
    """A message as the interaction webhooks take it; nothing in it can ping anyone."""
    body: dict[str, Any] = {
        "content": content,
        "embeds": [embed.to_dict() for embed in embeds],
        "allowed_mentions": NO_MENTIONS,
    }
    if ephemeral:
        body["flags"] = EPHEMERAL
    return body


def _results(page: SearchPage) -> dict[str, Any]:
    message: DiscordMessage = search_message(page)
    body = _body(message.content, message.embeds)
    body["components"] = results_view(page).to_components()
    return body


def _tell(text: str) -> Response:
    """An answer only the member sees, sent at once."""
    return JSONResponse({"type": MESSAGE, "data": _body(text, ephemeral=True)})


def _refuse(request: Request, status: int, reason: str) -> Response:
    # One line, never the body: anyone can post here, and a body may hold a member's text.
    client = request.client.host if request.client else "unknown"
    log.info("discord: refused a request from %s to %s: %s", client, PATH, reason)
    return PlainTextResponse(reason, status)
