"""Installation into several Slack workspaces: OAuth, with installations kept in the store.

``/slack/install`` sends a person to Slack to approve the app; Slack calls back
``/slack/oauth_redirect``; Bolt exchanges the code for the workspace's bot token and saves it
through ``DatabaseInstallationStore`` into ``slack_installations``. Bot tokens are encrypted
there with ``SLACK_INSTALLATION_KEY`` (Fernet: AES-128-CBC with an HMAC), so a database dump,
a backup or ``migrate-data`` never carries a usable token; a comma-separated list of keys
decrypts with any of them and encrypts with the first (key rotation). OAuth ``state`` values
live in ``slack_oauth_states``, usable once, so any process behind the same database can take
the callback.

``Installations`` answers "which token for workspace T" from memory, refreshed from the store
once a minute and on a miss, so Bolt's authorisation (before every acknowledgement) does not
wait on the database for workspaces it knows. Enterprise Grid org-wide installation is not
supported (the manifest does not offer it).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import delete, select

from bridge.errors import ConfigError
from bridge.store import Store, schema

log = logging.getLogger(__name__)

STATE_SECONDS = 600
REFRESH_SECONDS = 60.0


def token_cipher(keys: str) -> MultiFernet:
    """The cipher for ``SLACK_INSTALLATION_KEY`` (one key, or several comma-separated)."""
    try:
        return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])
    except ValueError:
        raise ConfigError(
            "slack_installation_key",
            "must be a Fernet key (or several, comma-separated); make one with: python -c"
            ' "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"',
        ) from None


@dataclass(frozen=True, slots=True, repr=False)
class Workspace:
    """One installation, as the app needs it; the token never shows in a repr."""

    team_id: str
    enterprise_id: str | None
    bot_token: str
    bot_user_id: str | None
    bot_id: str | None
    team_name: str = ""

    def __repr__(self) -> str:
        return f"Workspace(team_id={self.team_id!r}, team_name={self.team_name!r})"


class DatabaseInstallationStore(AsyncInstallationStore):
    """Bolt's installation store on paperbridge's store; tokens encrypted at rest."""

    def __init__(self, store: Store, cipher: MultiFernet, on_change: Any = None) -> None:
        self.store = store
        self.cipher = cipher
        self._on_change = on_change

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        if not installation.team_id or installation.is_enterprise_install:
            raise ValueError("org-wide (Enterprise Grid) installation is not supported")
        if installation.bot_token is None:
            raise ValueError("the installation has no bot token (the bot scopes were not granted)")
        if installation.bot_refresh_token:
            log.warning("slack: token rotation is on for this app; paperbridge does not refresh")
        row = {
            "team_id": installation.team_id,
            "enterprise_id": installation.enterprise_id,
            "team_name": installation.team_name or "",
            "app_id": installation.app_id,
            "bot_id": installation.bot_id,
            "bot_user_id": installation.bot_user_id,
            "bot_scopes": ",".join(installation.bot_scopes or []),
            "bot_token": self.cipher.encrypt(installation.bot_token.encode()).decode(),
            "installer_user_id": installation.user_id,
            "installed_at": datetime.now(UTC),
        }
        await asyncio.to_thread(self._upsert, row)
        log.info("slack: installed in workspace %s (%s)", installation.team_id, row["team_name"])
        if self._on_change is not None:
            self._on_change(installation.team_id)

    async def async_save_bot(self, bot: Bot) -> None:
        raise NotImplementedError("installations are saved whole (async_save)")

    def _upsert(self, row: dict[str, Any]) -> None:
        table = schema.slack_installations
        with self.store.engine.begin() as conn:
            conn.execute(delete(table).where(table.c.team_id == row["team_id"]))
            conn.execute(table.insert().values(**row))

    def load(self, team_id: str | None = None) -> list[Workspace]:
        """Every installation (or one workspace's), tokens decrypted. Blocking."""
        table = schema.slack_installations
        query = select(table)
        if team_id is not None:
            query = query.where(table.c.team_id == team_id)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        found = []
        for row in rows:
            try:
                token = self.cipher.decrypt(row.bot_token.encode()).decode()
            except InvalidToken:
                log.error(
                    "slack: the token of workspace %s does not decrypt with"
                    " SLACK_INSTALLATION_KEY (a different key?); reinstall the app there",
                    row.team_id,
                )
                continue
            found.append(
                Workspace(
                    row.team_id,
                    row.enterprise_id,
                    token,
                    row.bot_user_id,
                    row.bot_id,
                    row.team_name,
                )
            )
        return found

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        if not team_id or is_enterprise_install:
            return None
        found = await asyncio.to_thread(self.load, team_id)
        if not found:
            return None
        ws = found[0]
        return Bot(
            enterprise_id=ws.enterprise_id,
            team_id=ws.team_id,
            bot_token=ws.bot_token,
            bot_id=ws.bot_id or "",
            bot_user_id=ws.bot_user_id or "",
            installed_at=time.time(),
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        bot = await self.async_find_bot(
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )
        if bot is None:
            return None
        return Installation(
            enterprise_id=bot.enterprise_id,
            team_id=bot.team_id,
            bot_token=bot.bot_token,
            bot_id=bot.bot_id,
            bot_user_id=bot.bot_user_id,
            user_id=user_id or "",
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._delete(team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        if user_id is None:  # a person's own authorisation is not kept: nothing to delete
            await self._delete(team_id)

    async def _delete(self, team_id: str | None) -> None:
        if not team_id:
            return
        table = schema.slack_installations

        def run() -> int:
            with self.store.engine.begin() as conn:
                return conn.execute(delete(table).where(table.c.team_id == team_id)).rowcount

        if await asyncio.to_thread(run):
            log.warning("slack: the app left workspace %s; its token is deleted", team_id)
        if self._on_change is not None:
            self._on_change(team_id)


class DatabaseStateStore(AsyncOAuthStateStore):
    """OAuth states in the store, each consumed once, expiring after ten minutes."""

    def __init__(self, store: Store, expiration_seconds: int = STATE_SECONDS) -> None:
        self.store = store
        self.expiration = timedelta(seconds=expiration_seconds)

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        state = secrets.token_urlsafe(32)
        table = schema.slack_oauth_states
        now = datetime.now(UTC)

        def run() -> None:
            with self.store.engine.begin() as conn:
                conn.execute(delete(table).where(table.c.expires_at < now))
                conn.execute(table.insert().values(state=state, expires_at=now + self.expiration))

        await asyncio.to_thread(run)
        return state

    async def async_consume(self, state: str) -> bool:
        table = schema.slack_oauth_states
        now = datetime.now(UTC)

        def run() -> bool:
            with self.store.engine.begin() as conn:
                gone = conn.execute(
                    delete(table).where(table.c.state == state, table.c.expires_at >= now)
                )
                return bool(gone.rowcount)

        return await asyncio.to_thread(run)


class Installations:
    """``Workspaces`` for an app installed through OAuth: tokens from the store, in memory."""

    def __init__(self, store: Store, cipher: MultiFernet) -> None:
        self.installation_store = DatabaseInstallationStore(store, cipher, self._forget)
        self._known: dict[str, Workspace] = {}
        self._loaded_at = float("-inf")
        self._refreshing: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"Installations(workspaces={sorted(self._known)!r})"

    async def load(self) -> None:
        found = await asyncio.to_thread(self.installation_store.load)
        self._known = {ws.team_id: ws for ws in found}
        self._loaded_at = time.monotonic()
        log.info("slack: installed in %d workspaces", len(self._known))

    def _forget(self, team_id: str) -> None:
        self._known.pop(team_id, None)

    def sole_team(self) -> str | None:
        return None  # installed into any number of workspaces: a channel must name its own

    async def workspace(self, team_id: str, *, fresh: bool = False) -> Workspace | None:
        if time.monotonic() - self._loaded_at > REFRESH_SECONDS and (
            self._refreshing is None or self._refreshing.done()
        ):
            # Other processes may have installed or removed the app: re-read in the background.
            self._refreshing = asyncio.create_task(self.load())
        known = self._known.get(team_id)
        if known is None or fresh:
            found = await asyncio.to_thread(self.installation_store.load, team_id)
            known = found[0] if found else None
            if known is None:
                self._known.pop(team_id, None)
            else:
                self._known[team_id] = known
        return known

    async def token_for(self, team_id: str, *, fresh: bool = False) -> str | None:
        found = await self.workspace(team_id, fresh=fresh)
        return found.bot_token if found else None

    def authorize(self) -> AsyncAuthorize:
        return _InstallationAuthorize(self)


class _InstallationAuthorize(AsyncAuthorize):
    def __init__(self, installations: Installations) -> None:
        self.installations = installations

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
        if not team_id:
            return None
        found = await self.installations.workspace(team_id)
        if found is None:
            return None
        return AuthorizeResult(
            enterprise_id=found.enterprise_id,
            team_id=found.team_id,
            team=found.team_name,
            bot_token=found.bot_token,
            bot_user_id=found.bot_user_id,
            bot_id=found.bot_id,
            user_id=user_id,
        )
