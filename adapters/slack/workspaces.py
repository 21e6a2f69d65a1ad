"""Which bot token speaks for the app in each Slack workspace, for posting and for Bolt.

With one workspace that is ``SLACK_BOT_TOKEN``; with OAuth it is each workspace's installation
(``adapters.slack.installations``). Bolt asks before every request (``authorize``), so the
answer must come from memory: a slow database must never delay the 3-second acknowledgement.
"""

from __future__ import annotations

import logging
from typing import Protocol

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)


class Workspaces(Protocol):
    async def token_for(self, team_id: str, *, fresh: bool = False) -> str | None:
        """The bot token for ``team_id``; None when the app is not installed there.
        ``fresh``: read it again from where it is kept (the remembered one was refused)."""
        ...

    def authorize(self) -> AsyncAuthorize:
        """Bolt's authorization: who the app is in the workspace a request came from."""
        ...

    def sole_team(self) -> str | None:
        """The workspace a channel named without one (``slack:C0456``) is in: the only one
        there is, or None when the app may be in several."""
        ...


class SingleWorkspace:
    """One workspace, one bot token (``SLACK_BOT_TOKEN``). The token also serves the other
    workspaces of an Enterprise Grid organisation it was installed into."""

    def __init__(self, token: str) -> None:
        self._token = token
        self.team_id: str | None = None
        self.bot_user_id: str | None = None
        self.bot_id: str | None = None

    def __repr__(self) -> str:
        return f"SingleWorkspace(team_id={self.team_id!r})"

    async def identify(self, client: AsyncWebClient) -> None:
        """Learn the bot's own ids (auth.test). Failing is logged, not fatal: posting works
        without them, and Slack may just be unreachable for a moment."""
        try:
            answer = await client.auth_test(token=self._token)
        except SlackApiError as exc:
            error = exc.response.data.get("error") if isinstance(exc.response.data, dict) else None
            log.error(
                "slack: SLACK_BOT_TOKEN was refused by Slack (%s)",
                error or exc.response.status_code,
            )
            return
        except (TimeoutError, OSError) as exc:
            log.warning(
                "slack: could not reach Slack to check the bot token (%s)", exc.__class__.__name__
            )
            return
        self.team_id = answer.get("team_id")
        self.bot_user_id = answer.get("user_id")
        self.bot_id = answer.get("bot_id")
        log.info("slack: bot token belongs to workspace %s", self.team_id)

    async def token_for(self, team_id: str, *, fresh: bool = False) -> str | None:
        return self._token

    def authorize(self) -> AsyncAuthorize:
        return _SingleAuthorize(self)

    def sole_team(self) -> str | None:
        # The token speaks for its workspace whether or not auth.test answered at start.
        return self.team_id or ""


class _SingleAuthorize(AsyncAuthorize):
    def __init__(self, workspace: SingleWorkspace) -> None:
        self.workspace = workspace

    async def __call__(
        self,
        *,
        context: AsyncBoltContext,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        actor_enterprise_id: str | None = None,
        actor_team_id: str | None = None,
        actor_user_id: str | None = None,
    ) -> AuthorizeResult | None:
        return AuthorizeResult(
            enterprise_id=enterprise_id,
            team_id=team_id or self.workspace.team_id,
            bot_token=self.workspace._token,
            bot_user_id=self.workspace.bot_user_id,
            bot_id=self.workspace.bot_id,
            user_id=user_id,
        )
