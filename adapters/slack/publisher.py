"""Posts digests to Slack channels for the delivery ledger, and says what happened.

A digest of a few papers is one message; a bigger one is a short header message with the papers
in its thread (``DigestRun.anchor`` keeps the header's ts across the run's messages). Messages
to one channel are paced (``ChannelPacer``). What Slack answers becomes a ``SendOutcome``:

- a rate limit (429) asking for a short wait, and a 502/503 or a connection refused, are
  retried here, at most ``MAX_ATTEMPTS`` times and ``inline_retry_max_seconds`` of waiting in
  all: the digest goes on at once instead of after the ledger's next sweep;
- a longer rate limit or repeated trouble goes back to the ledger as ``retry`` (with Slack's
  ``Retry-After``); a timeout, a dropped connection, a 500 or an ``internal_error`` may have
  posted the message, so they are never retried here and go back as ``retry(maybe_sent=True)``;
- a channel that removed the app, was archived or whose token was revoked is ``permanent``:
  the ledger pauses the destination until someone resumes it.

A destination's address is ``TEAM:CHANNEL`` (``T0123:C0456``; what subscribing from Slack
saves), or ``CHANNEL`` alone (``slack:C0456`` declared in the settings) for the one workspace of
``SLACK_BOT_TOKEN``; the workspace's bot token comes from ``Workspaces``. Tokens never appear in outcomes or logs.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.blocks import (
    SlackMessage,
    digest_messages,
    header_message,
    notice_message,
    quiet_message,
)
from adapters.slack.pacer import ChannelPacer
from adapters.slack.workspaces import Workspaces
from bridge.config import SlackSettings
from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
    run_notice,
)

log = logging.getLogger(__name__)

KIND = "slack"
MAX_ATTEMPTS = 3
_ADDRESS = re.compile(r"(?:(?P<team>[TE][A-Z0-9]{1,30}):)?(?P<channel>[CGD][A-Z0-9]{1,30})")

# The channel or the app's access is gone: retrying cannot help, a person must act.
GONE = {
    "channel_not_found": "the channel is gone, or private and the app is not in it",
    "not_in_channel": "the app is not in the channel; invite it, then resume",
    "is_archived": "the channel is archived",
    "account_inactive": "the app's bot user was deactivated",
    "token_revoked": "the app was removed from the workspace",
    "token_expired": "the app's token expired",
    "invalid_auth": "the app's token is not valid",
    "not_authed": "no token was accepted",
    "missing_scope": "the app lacks the chat:write scope; reinstall it",
    "no_permission": "the app may not post here",
    "team_access_not_granted": "the app has no access to this workspace",
    "restricted_action": "the workspace forbids the app to post here",
    "restricted_action_read_only_channel": "the channel is read-only",
    "restricted_action_thread_only_channel": "the channel allows only thread replies",
    "restricted_action_non_threadable_channel": "the channel has no threads",
    "ekm_access_denied": "the workspace's keys deny access",
    "org_login_required": "the workspace is being migrated",
    "team_not_found": "the workspace is gone",
}
# Slack refused the message itself: a bug here, not a passing problem; a person must look.
MALFORMED = {
    "invalid_blocks",
    "invalid_blocks_format",
    "msg_too_long",
    "msg_blocks_too_long",
    "no_text",
    "invalid_arguments",
    "invalid_arg_name",
    "invalid_array_arg",
    "invalid_charset",
    "invalid_form_data",
    "invalid_post_type",
    "missing_post_type",
    "too_many_attachments",
    "invalid_thread_ts",
}
# The token was refused: after a reinstall another process may already hold the new one.
AUTH_ERRORS = {"invalid_auth", "token_revoked", "token_expired", "not_authed"}
# "It's possible some aspect of the operation succeeded before the error was raised."
MAYBE_POSTED = {"internal_error", "fatal_error"}


def parse_address(address: str) -> tuple[str | None, str]:
    """``T0123:C0456`` -> (team, channel); ``C0456`` -> (None, channel); ValueError for
    anything else."""
    found = _ADDRESS.fullmatch(address)
    if found is None:
        raise ValueError(
            f"{address!r} is not a Slack destination (CHANNEL or TEAM:CHANNEL, e.g. T0123:C0456)"
        )
    return found["team"], found["channel"]


def outcome_of(exc: BaseException) -> SendOutcome:
    """What a failed chat.postMessage means for the ledger."""
    if isinstance(exc, SlackApiError):
        status = exc.response.status_code
        data = exc.response.data if isinstance(exc.response.data, dict) else {}
        error = str(data.get("error") or f"HTTP {status}")
        if status == 429 or error == "ratelimited":
            return SendOutcome.retry("Slack rate limit", _retry_after(exc.response.headers))
        if status >= 500:
            # A 502/503 never reached Slack's application; a 500 or 504 may have done its work.
            return SendOutcome.retry(
                f"Slack answered HTTP {status}", maybe_sent=status in (500, 504)
            )
        if error in GONE:
            return SendOutcome.permanent(f"Slack {error}: {GONE[error]}")
        if error in MALFORMED:
            log.error("slack: Slack refused a digest message as malformed (%s): a bug", error)
            return SendOutcome.permanent(f"Slack {error}: the message was refused as malformed")
        return SendOutcome.retry(f"Slack {error}", maybe_sent=error in MAYBE_POSTED)
    if isinstance(exc, TimeoutError):
        return SendOutcome.retry("no answer from Slack in time", maybe_sent=True)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return SendOutcome.retry(f"cannot connect to Slack ({exc.__class__.__name__})")
    if isinstance(exc, aiohttp.ClientError):
        return SendOutcome.retry(
            f"connection to Slack failed ({exc.__class__.__name__})", maybe_sent=True
        )
    raise exc


def _retry_after(headers: Any) -> float:
    try:
        return max(0.0, float(headers.get("Retry-After", "1")))
    except (TypeError, ValueError):
        return 1.0


class SlackPublisher:
    """The ``slack`` publisher. One per process: its pacer spans every run."""

    kind = KIND

    def __init__(
        self,
        client: AsyncWebClient,
        workspaces: Workspaces,
        settings: SlackSettings,
        *,
        pacer: ChannelPacer | None = None,
    ) -> None:
        self.client = client
        self.workspaces = workspaces
        self.settings = settings
        self.max_papers_per_message = settings.papers_per_message
        self.pacer = pacer or ChannelPacer(settings.channel_interval_seconds)

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome:
        poster = await self._poster(destination)
        if isinstance(poster, SendOutcome):
            return poster
        notice = run_notice(run, subscription)
        if not items:
            outcome, _ = await poster.post(quiet_message(subscription, notice))
            return outcome
        total = run.pending if run is not None and run.pending else len(items)
        if total <= self.settings.single_message_max_papers:
            first = run is None or run.messages == 0
            header = total if first else None
            messages = digest_messages(items, subscription, header_count=header, notice=notice)
            return await poster.post_all(messages)
        anchor = run.anchor if run is not None else None
        header_ts = None
        if anchor is None:
            outcome, anchor = await poster.post(header_message(subscription, total, notice))
            if outcome.status != "sent" or anchor is None:
                return outcome
            header_ts = anchor
            if run is not None:
                run.anchor = anchor
        outcome = await poster.post_all(digest_messages(items, subscription), thread_ts=anchor)
        if outcome.status != "sent" and header_ts is not None and not poster.maybe_posted:
            # A header over an empty thread helps nobody; the retry posts a new one.
            await poster.delete(header_ts)
            if run is not None:
                run.anchor = None
        return outcome

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        poster = await self._poster(destination)
        if isinstance(poster, SendOutcome):
            return poster
        outcome, _ = await poster.post(notice_message(notice))
        return outcome

    async def _poster(self, destination: Destination) -> _Poster | SendOutcome:
        """A poster for the destination's channel with its workspace's token, or why there
        can be none."""
        try:
            team, channel = parse_address(destination.address)
        except ValueError as exc:
            return SendOutcome.permanent(str(exc))
        if team is None:
            team = self.workspaces.sole_team()
            if team is None:
                return SendOutcome.permanent(
                    f"slack:{channel} names no workspace and the app is installed in several:"
                    " write slack:TEAM:CHANNEL"
                )
        token = await self.workspaces.token_for(team)
        if token is None:
            return SendOutcome.permanent(f"the Slack app is not installed in workspace {team}")
        return _Poster(self, team, token, channel)


class _Poster:
    """Posts to one channel with one token: pacing, inline retries, and what was posted."""

    def __init__(self, publisher: SlackPublisher, team: str, token: str, channel: str) -> None:
        self.publisher = publisher
        self.team = team
        self.token = token
        self.channel = channel
        self.posted = 0
        self.maybe_posted = False

    async def post_all(
        self, messages: list[SlackMessage], *, thread_ts: str | None = None
    ) -> SendOutcome:
        for message in messages:
            outcome, _ = await self.post(message, thread_ts=thread_ts)
            if outcome.status != "sent":
                if self.posted:
                    # Part of this batch is in the channel: a retry may repeat it.
                    return SendOutcome(outcome.status, outcome.reason, outcome.retry_after, True)
                return outcome
        return SendOutcome.sent()

    async def post(
        self, message: SlackMessage, *, thread_ts: str | None = None
    ) -> tuple[SendOutcome, str | None]:
        """chat.postMessage, retried in place while that is safe and quick."""
        settings = self.publisher.settings
        pacer = self.publisher.pacer
        arguments: dict[str, Any] = {
            "channel": self.channel,
            "text": message.text,
            "blocks": message.blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            arguments["thread_ts"] = thread_ts
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            async with pacer.turn(self.channel):
                try:
                    response = await self.publisher.client.chat_postMessage(
                        token=self.token, **arguments
                    )
                except (SlackApiError, TimeoutError, aiohttp.ClientError) as exc:
                    outcome = outcome_of(exc)
                    if outcome.status == "permanent" and await self._new_token(exc):
                        continue
                else:
                    self.posted += 1
                    ts = response.get("ts")
                    return SendOutcome.sent(), ts if isinstance(ts, str) else None
            if outcome.status != "retry" or outcome.maybe_sent:
                self.maybe_posted = self.maybe_posted or outcome.maybe_sent
                return outcome, None
            wait = outcome.retry_after if outcome.retry_after is not None else float(attempt)
            if attempt == MAX_ATTEMPTS or waited + wait > settings.inline_retry_max_seconds:
                return outcome, None
            log.info("slack: %s to %s; trying again in %.0f s", outcome.reason, self.channel, wait)
            pacer.hold(self.channel, wait)
            waited += wait

    async def _new_token(self, exc: BaseException) -> bool:
        """After an auth error: whether the workspace has another token now (reinstalled)."""
        if not isinstance(exc, SlackApiError) or not isinstance(exc.response.data, dict):
            return False
        if exc.response.data.get("error") not in AUTH_ERRORS:
            return False
        fresh = await self.publisher.workspaces.token_for(self.team, fresh=True)
        if fresh is None or fresh == self.token:
            return False
        self.token = fresh
        return True

    async def delete(self, ts: str) -> None:
        try:
            await self.publisher.client.chat_delete(token=self.token, channel=self.channel, ts=ts)
        except (SlackApiError, TimeoutError, aiohttp.ClientError) as exc:
            log.info(
                "slack: could not remove an empty digest header in %s (%s)",
                self.channel,
                exc.__class__.__name__,
            )
