"""``/papers`` in Slack: the slash command and its buttons, on a Bolt ``AsyncApp``.

Every request is acknowledged at once, within Slack's 3 seconds whatever the store or the
network does: parsing a command is pure and quick, so a mistake or ``help`` is answered in the
acknowledgement itself; everything else (searching, subscribing, posting) runs after it and
answers through the request's ``response_url``. Bolt runs a listener as a task and returns the
HTTP answer (or the Socket Mode ack) as soon as ``ack()`` is called.

Search results are visible only to the person who asked, with buttons to page and to share them
in the channel. Subscribing and unsubscribing change what the whole channel gets, so their
confirmations are posted in the channel.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import (
    MARKUP,
    MORE_ACTION,
    SHARE_ACTION,
    SlackMessage,
    read_page_value,
    search_message,
    text_message,
)
from adapters.slack.mrkdwn import escape
from adapters.slack.publisher import KIND
from bridge.chat import (
    Channel,
    ChatService,
    Help,
    ListSubscriptions,
    PostNow,
    Search,
    Subscribe,
    Unsubscribe,
    parse_command,
    parse_time_zone,
)
from bridge.chat.commands import Command, Top
from bridge.chat.render import (
    help_text,
    list_text,
    now_text,
    subscribed_text,
    unsubscribed_text,
)
from bridge.errors import ChatUsageError

log = logging.getLogger(__name__)

_ID = re.compile(r"[A-Z0-9]{1,30}")
TROUBLE = "Something went wrong on our side; please try again in a minute."


class PapersCommand:
    """The listeners behind ``/papers``; ``register`` puts them on an app."""

    def __init__(self, chat: ChatService, command: str = "/papers") -> None:
        self.chat = chat
        self.command = command

    def register(self, app: AsyncApp) -> None:
        app.command(self.command)(self.on_command)
        app.action(MORE_ACTION)(self.on_page)
        app.action(SHARE_ACTION)(self.on_share)

    # -- the slash command ----------------------------------------------------------------------

    async def on_command(
        self, ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient
    ) -> None:
        try:
            command = parse_command(str(body.get("text", "")))
        except ChatUsageError as exc:
            await ack(response_type="ephemeral", text=escape(str(exc)))
            return
        if isinstance(command, Help):
            message = text_message(help_text(MARKUP, self.command))
            await ack(response_type="ephemeral", text=message.text, blocks=message.blocks)
            return
        await ack()
        # Slack has its answer; what follows may take as long as it takes.
        try:
            await self._run(command, body, respond, client)
        except ChatUsageError as exc:
            await _reply(respond, text_message(escape(str(exc))))
        except Exception:
            log.exception("slack: /papers %s failed", type(command).__name__.lower())
            await _reply(respond, text_message(TROUBLE))

    async def _run(
        self,
        command: Command,
        body: dict[str, Any],
        respond: AsyncRespond,
        client: AsyncWebClient,
    ) -> None:
        if isinstance(command, Search):
            page = await self.chat.search(command.query, command.page)
            await _reply(respond, search_message(page))
            return
        if isinstance(command, Top):
            page = await self.chat.top(command.period, command.page)
            await _reply(respond, search_message(page))
            return
        channel = channel_of(body)
        if isinstance(command, Subscribe):
            zone = await _user_zone(client, str(body.get("user_id", "")))
            sub, created = await self.chat.subscribe(channel, command, default_zone=zone)
            hint = await _join(client, body)
            text = subscribed_text(MARKUP, sub, created) + (f"\n{hint}" if hint else "")
            await _reply(respond, text_message(text), in_channel=True)
        elif isinstance(command, Unsubscribe):
            removed = await self.chat.unsubscribe(channel, command.target)
            await _reply(respond, text_message(unsubscribed_text(MARKUP, removed)), in_channel=True)
        elif isinstance(command, ListSubscriptions):
            subs = await self.chat.subscriptions(channel)
            await _reply(respond, text_message(list_text(MARKUP, subs)))
        elif isinstance(command, PostNow):
            report = await self.chat.post_now(channel)
            await _reply(respond, text_message(escape(now_text(report))))

    # -- buttons ----------------------------------------------------------------------------------

    async def on_page(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        """The More and Previous buttons: the same private message shows another page."""
        await ack()
        wanted = read_page_value(str(action.get("value", "")))
        if wanted is None:
            await _reply(respond, text_message("That button no longer works; search again."))
            return
        try:
            page = await self.chat.reopen(wanted[0], wanted[1], top=wanted[2])
        except ChatUsageError as exc:
            await _reply(respond, text_message(escape(str(exc))))
            return
        except Exception:
            log.exception("slack: paging search results failed")
            await _reply(respond, text_message(TROUBLE))
            return
        await _reply(respond, search_message(page), replace=True)

    async def on_share(
        self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], respond: AsyncRespond
    ) -> None:
        """The Share button: the page, without buttons, for everyone; the private copy goes."""
        await ack()
        wanted = read_page_value(str(action.get("value", "")))
        if wanted is None:
            await _reply(respond, text_message("That button no longer works; search again."))
            return
        try:
            page = await self.chat.reopen(wanted[0], wanted[1], top=wanted[2])
        except Exception:
            log.exception("slack: sharing search results failed")
            await _reply(respond, text_message(TROUBLE))
            return
        user = str(body.get("user", {}).get("id", ""))
        shared = search_message(page, buttons=False, shared_by=user)
        if await _reply(respond, shared, in_channel=True):
            try:
                await respond(delete_original=True)
            except Exception as exc:  # the private copy lingering is harmless
                log.info("slack: could not remove the private results (%s)", exc.__class__.__name__)


def channel_of(body: dict[str, Any]) -> Channel:
    """The channel a request came from, as the chat service knows channels."""
    team = str(body.get("team_id") or body.get("team", {}).get("id") or "")
    channel = str(body.get("channel_id") or body.get("channel", {}).get("id") or "")
    if not (_ID.fullmatch(team) and _ID.fullmatch(channel)):
        raise ChatUsageError("I can only do that in a channel.")
    name = str(body.get("channel_name") or body.get("channel", {}).get("name") or channel)
    return Channel(KIND, f"{team}:{channel}", f"#{name}")


async def _reply(
    respond: AsyncRespond, message: SlackMessage, *, in_channel: bool = False, replace: bool = False
) -> bool:
    """Answer through the response_url; failures are logged (the person sees nothing)."""
    try:
        await respond(
            text=message.text,
            blocks=message.blocks,
            response_type="in_channel" if in_channel else "ephemeral",
            replace_original=replace,
            unfurl_links=False,
            unfurl_media=False,
        )
    except Exception as exc:
        log.warning("slack: could not answer through the response_url (%s)", exc.__class__.__name__)
        return False
    return True


async def _join(client: AsyncWebClient, body: dict[str, Any]) -> str | None:
    """Join a public channel so the morning post can go there; for a channel the app cannot
    join by itself, the hint to invite it."""
    channel = str(body.get("channel_id", ""))
    if channel.startswith("D"):
        return None  # a direct message: the app posts there if it is ours, else it pauses
    try:
        await client.conversations_join(channel=channel)
    except SlackApiError as exc:
        error = exc.response.data.get("error") if isinstance(exc.response.data, dict) else None
        log.info("slack: could not join %s (%s)", channel, error or exc.response.status_code)
        if error == "method_not_supported_for_channel_type":
            return (
                "This is a private channel: if I am not in it yet, invite me"
                " (`/invite @paperbridge`), or the posts will pause."
            )
        return (
            f"I could not join this channel ({escape(str(error))}): invite me"
            " (`/invite @paperbridge`), or the posts will pause."
        )
    except (TimeoutError, OSError) as exc:
        log.info("slack: could not join %s (%s)", channel, exc.__class__.__name__)
        return None
    return None


async def _user_zone(client: AsyncWebClient, user_id: str) -> str | None:
    """The time zone in the person's Slack profile, the default for their subscription."""
    if not _ID.fullmatch(user_id):
        return None
    try:
        answer = await client.users_info(user=user_id)
    except (SlackApiError, TimeoutError, OSError) as exc:
        log.info("slack: no time zone for %s (%s)", user_id, exc.__class__.__name__)
        return None
    zone = (answer.get("user") or {}).get("tz")
    try:
        return parse_time_zone(zone) if isinstance(zone, str) else None
    except ChatUsageError:
        return None
