"""Settings: TOML file plus environment overrides, validated once at start; secrets masked."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from bridge.errors import ConfigError

# Read without pydantic (bridge/settings_defaults.py); reachable here as before.
from bridge.settings_defaults import CONFIG_ENV as CONFIG_ENV
from bridge.settings_defaults import config_path as config_path

DEFAULT_USER_AGENT = "paperbridge/0.1 (+https://github.com/paperbridge/paperbridge)"


class _Section(BaseModel):
    # Unknown keys are errors: a typo must fail at start, not be silently ignored.
    # defer_build: each section's validator is compiled when first used, not at import, and
    # the nested sections inside Settings' one validator: every command imports this module,
    # and building a validator per class cost `paperbridge search` about a third of this
    # module's import time (issue 14). Validation itself is unchanged.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class StoreSettings(_Section):
    database_url: str = "sqlite:///data/paperbridge.db"

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        from bridge.database_urls import database_kind

        database_kind(value)  # raises ValueError naming the URLs accepted
        return value.strip()


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def listen_host(text: str) -> str:
    """An IP address or a DNS name to listen on (``server.host``, ``serve --host``): catches
    "http://x", "host:8080" and typos before serve tries to bind."""
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    labels = text.rstrip(".").split(".")
    if len(text) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels):
        return text
    raise ValueError(f"{text!r} is not an IP address or host name")


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # The address people reach the bridge at, used in feed self links. Empty: from requests.
    public_url: str = ""
    # Entries per feed (the newest); readers and FeedBurner-like services want 50-100.
    feed_size: int = Field(default=50, ge=10, le=100)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return listen_host(value)


class FetchSettings(_Section):
    user_agent: str = DEFAULT_USER_AGENT
    timeout_seconds: float = Field(default=30.0, gt=0)
    # One attempt, from connecting to the body's last byte (timeout_seconds bounds each read).
    deadline_seconds: float = Field(default=120.0, gt=0)
    max_attempts: int = Field(default=5, ge=1, le=20)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_max_seconds: float = Field(default=300.0, gt=0)


def _check_cron(value: str) -> str:
    if value.strip():
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"not a crontab line (min hour day month weekday): {exc}") from None
    return value.strip()


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Berlin)") from exc
    return value


class _PolledSource(_Section):
    """What every source shares: when it is polled.

    Each source's default is a crontab line that follows its upstream's rhythm. Setting
    ``poll_every_minutes`` alone switches to a plain interval; setting both is an error,
    since only one of them can be the rhythm.
    """

    poll_every_minutes: int = Field(default=60, ge=1)
    # A crontab line ("min hour day month weekday") in poll_time_zone; empty: the interval.
    poll_cron: str = ""
    poll_time_zone: str = "UTC"

    @field_validator("poll_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return _check_cron(value)

    @model_validator(mode="before")
    @classmethod
    def _interval_or_crontab(cls, data: Any) -> Any:
        if isinstance(data, dict) and "poll_every_minutes" in data:
            if str(data.get("poll_cron", "")).strip():
                raise ValueError(
                    'set poll_cron or poll_every_minutes, not both (poll_cron = "" for the'
                    " interval)"
                )
            data = {**data, "poll_cron": ""}
        return data

    @field_validator("poll_time_zone")
    @classmethod
    def _poll_zone(cls, value: str) -> str:
        return _check_zone(value)


class HuggingFaceSettings(_PolledSource):
    enabled: bool = True
    base_url: str = "https://huggingface.co"
    # HF features papers on weekdays, added through the (UTC) day: every two hours on weekdays.
    # Papers added to a Friday after its last poll come with Monday's re-read (recheck_days).
    poll_cron: str = "0 */2 * * mon-fri"
    page_size: int = Field(default=100, ge=1, le=100)
    # Re-read this many recent days on each poll: HF adds papers to a day after it opens.
    recheck_days: int = Field(default=2, ge=0, le=14)
    # Catch-up never reaches further back than this (the first run uses first_run instead).
    max_catch_up_days: int = Field(default=30, ge=1)


class ArxivSettings(_PolledSource):
    enabled: bool = False
    categories: list[str] = Field(default_factory=lambda: ["cs.LG", "cs.AI", "cs.CL"])
    # Listing types that count as new papers; replacements are always kept as revisions.
    announce_types: list[Literal["new", "cross"]] = Field(
        default_factory=lambda: ["new", "cross"]  # type: ignore[arg-type]
    )
    rss_base_url: str = "https://rss.arxiv.org"
    api_base_url: str = "https://export.arxiv.org"
    # arXiv's terms of use: one request every 3 seconds, on one connection.
    min_interval_seconds: float = Field(default=3.0, ge=3.0)
    # arXiv announces Sunday-Thursday 20:00 US Eastern and its listings rebuild at midnight:
    # poll right after, and once more four hours later in case the first poll failed.
    poll_every_minutes: int = Field(default=120, ge=1)
    poll_cron: str = "15 0,4 * * mon-fri"
    poll_time_zone: str = "America/New_York"
    max_catch_up_days: int = Field(default=14, ge=1)

    @field_validator("categories")
    @classmethod
    def _categories(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one category, e.g. ['cs.LG']")
        for cat in value:
            if not cat or "+" in cat or " " in cat:
                raise ValueError(f"{cat!r} is not an arXiv category (e.g. cs.LG, math, hep-th)")
        return value


class SourcesSettings(_Section):
    hf: HuggingFaceSettings = HuggingFaceSettings()
    arxiv: ArxivSettings = ArxivSettings()


class FirstRunSettings(_Section):
    # What the first poll on an empty store announces:
    #   latest-day: store everything the listings show, announce only the newest listing day
    #   none:       store everything, announce nothing (start quiet)
    #   all:        announce everything the first poll finds
    announce: Literal["latest-day", "none", "all"] = "latest-day"


def _check_query(value: str) -> str:
    from bridge.errors import QueryError
    from bridge.query import format_query_error, parse_query

    try:
        parse_query(value)
    except QueryError as exc:
        raise ValueError(f"bad query: {format_query_error(exc)}") from None
    return value


class SubscriptionSettings(_Section):
    name: str
    query: str

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return _check_query(value)

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError("must be letters, digits, '-' or '_' (it names the feed URL)")
        return value


class DeliverySettings(_Section):
    # Digests that name no time are posted at this local time ("HH:MM").
    digest_time: str = "08:00"
    # Destinations sent to at once, per process.
    concurrency: int = Field(default=50, ge=1, le=256)
    # A claim not confirmed within this time is presumed lost with its process, and its papers
    # are sent again (the one uncertain message per destination; see bridge/ledger.py).
    claim_timeout_seconds: float = Field(default=300.0, ge=1)
    # One message may take at most this long; longer counts as a failure to retry.
    send_timeout_seconds: float = Field(default=60.0, gt=0)
    # Retries after a failed send: exponential from base to max, or the server's Retry-After.
    backoff_base_seconds: float = Field(default=30.0, gt=0)
    backoff_max_seconds: float = Field(default=3600.0, gt=0)
    # How often each process looks for due, missed and retrying digests.
    sweep_every_seconds: int = Field(default=60, ge=1)

    @field_validator("digest_time")
    @classmethod
    def _time(cls, value: str) -> str:
        from bridge.delivery import parse_local_time

        if parse_local_time(value) is None:
            raise ValueError("must be a time of day, e.g. 08:00")
        return value


# A Discord channel webhook URL (the token in its path is a secret).
DISCORD_WEBHOOK_URL = re.compile(
    r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api(?:/v\d+)?/webhooks/(\d{15,25})/([\w-]{20,100})/?"
)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


_SLACK_CHANNEL = re.compile(r"(?:[TE][A-Z0-9]{1,30}:)?[CGD][A-Z0-9]{1,30}")
# The kinds whose addresses are checked here; any other kind belongs to an output installed
# as a plug-in, which checks its own addresses (bridge.outputs says whether one owns the kind).
_CHECKED_KINDS = frozenset({"stdout", "file", "discord", "discord-webhook", "slack"})
_PLUGIN_KIND = re.compile(r"[a-z][a-z0-9_-]{0,39}")


def _check_destination(value: str) -> str:
    """A destination written in the settings."""
    kind, _, address = value.partition(":")
    if kind == "stdout" and not address:
        return value
    if kind == "file" and address:
        return value
    if kind == "discord" and address.isdigit():
        return value
    if kind == "slack" and _SLACK_CHANNEL.fullmatch(address):
        return value
    if kind == "discord-webhook":
        if DISCORD_WEBHOOK_URL.match(address) or "://" in address:
            raise ValueError(
                "give the name of an environment variable holding the webhook URL,"
                " never the URL itself (it is a secret): discord-webhook:LAB_WEBHOOK_URL"
            )
        if _ENV_NAME.fullmatch(address):
            return value
    if kind not in _CHECKED_KINDS and _PLUGIN_KIND.fullmatch(kind):
        return value
    forms = (
        "'stdout', 'file:PATH', 'discord:CHANNEL_ID', 'slack:CHANNEL_ID',"
        " 'slack:TEAM:CHANNEL' (e.g. slack:T0123:C0456)"
    )
    raise ValueError(
        f"must be {forms}, 'discord-webhook:ENV_NAME' or KIND:ADDRESS of an installed output"
    )


# The most papers a "top N of the day" digest posts: a day's highlights, not the listing.
MAX_TOP = 50


class DigestSettings(_Section):
    """A digest declared in the settings file (chat adapters add their own at run time)."""

    name: str
    # What to post: new papers matching it; with ``top``, it narrows the day's papers (empty:
    # all of them).
    query: str = ""
    # "stdout"; "file:PATH" (one JSON line per message); "discord:CHANNEL_ID" (posted by the
    # bot); "discord-webhook:ENV_NAME" (posted through the channel webhook whose URL is in
    # that environment variable: the URL is a secret, so it never goes in this file);
    # "slack:CHANNEL_ID" (posted by the Slack app; "slack:TEAM:CHANNEL" with several
    # workspaces). Slack and Discord channels are usually subscribed from the chat apps.
    destination: str = "stdout"
    time: str = ""  # "HH:MM" local, "now" (after each poll); empty: delivery.digest_time
    time_zone: str = ""  # IANA name; empty: the top-level time_zone
    all_quiet: bool = False
    # "Top N of the day" instead of new matches: the N most upvoted papers of the listing day
    # that just completed, once a day (bridge.ledger, "Top of the day").
    top: int | None = Field(default=None, ge=1, le=MAX_TOP)

    @model_validator(mode="after")
    def _what_to_post(self) -> DigestSettings:
        if self.top is None and not self.query:
            raise ValueError(
                "a digest needs a query (new papers matching it) or top = N (the N most"
                " upvoted papers of the day)"
            )
        if self.top is not None and self.time.strip().lower() == "now":
            raise ValueError('a top digest is posted once a day: give a time such as "08:00"')
        return self

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not value or not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError("must be letters, digits, '-' or '_'")
        return value

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str) -> str:
        return _check_destination(value)

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return _check_query(value) if value else value

    @field_validator("time")
    @classmethod
    def _time(cls, value: str) -> str:
        if value:
            from bridge.delivery import parse_local_time

            parse_local_time(value)
        return value

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _check_zone(value) if value else value


class AlertSettings(_Section):
    """Notices about the bridge itself, posted through the delivery ledger (bridge/notices.py):
    a source that stopped answering, and a paused destination."""

    # Where the operator hears of each paused destination and of each source that went stale
    # (and once more when it is back): a destination written as in [[digests]], or
    # "slack:TEAM:CHANNEL". Empty: only the log, `status` and /healthz tell.
    destination: str = ""
    # Channels whose digests draw on a source hear once when it has not answered for
    # source_down_hours, and once when it is back.
    channels: bool = True
    source_down_hours: float = Field(default=24.0, gt=0)

    @field_validator("destination")
    @classmethod
    def _destination(cls, value: str) -> str:
        return _check_destination(value) if value else value


class DiscordSettings(_Section):
    """The Discord bot and webhooks (adapters/discord); the bot runs when DISCORD_BOT_TOKEN is
    set, webhook digests need no bot."""

    # Discord's REST API; tests point it at a local stand-in.
    api_base_url: str = "https://discord.com/api/v10"
    # Discord's gateway, where slash commands and buttons arrive; tests point it at a stand-in.
    gateway_url: str = "wss://gateway.discord.gg"
    # Slash commands are registered in this server only (instant; for development), or
    # globally when 0 (production).
    dev_guild_id: int = Field(default=0, ge=0)
    # Register the slash commands at start when they changed since the last registration.
    sync_commands: bool = True
    # Connect to the gateway (receive slash commands). With several `serve` processes on one
    # database, one holds the gateway at a time (a lease) and another takes over if it stops.
    gateway: bool = True
    # "thread": a header message in the channel and the papers in a thread under it;
    # "channel": every message in the channel. Webhooks always post in the channel.
    digest_layout: Literal["thread", "channel"] = "thread"
    # Papers per message (one embed each; Discord allows 10 embeds and 6,000 characters).
    papers_per_message: int = Field(default=5, ge=1, le=10)
    # Who may change a channel's subscriptions (subscribe, unsubscribe, now): members with this
    # permission in the channel, or "everyone".
    manage_permission: Literal["manage_channels", "manage_guild", "administrator", "everyone"] = (
        "manage_channels"
    )
    # One webhook request may take this long (the bot's are bounded by
    # delivery.send_timeout_seconds).
    timeout_seconds: float = Field(default=15.0, gt=0)
    # The application's public key (Developer Portal, General Information; not a secret): set,
    # serve answers /papers at <public_url>/discord/interactions, Discord's "Interactions
    # Endpoint URL", with no gateway connection (adapters/discord/interactions.py).
    public_key: str = ""

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, value: str) -> str:
        value = value.strip()
        if value and not re.fullmatch(r"[0-9a-fA-F]{64}", value):
            raise ValueError(
                "must be the application's public key: 64 hexadecimal characters (Developer"
                " Portal, General Information)"
            )
        return value.lower()

    @field_validator("api_base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL, e.g. https://discord.com/api/v10")
        return value.rstrip("/")

    @field_validator("gateway_url")
    @classmethod
    def _gateway(cls, value: str) -> str:
        if not value.startswith(("wss://", "ws://")):
            raise ValueError("must be a websocket URL, e.g. wss://gateway.discord.gg")
        return value


class SlackSettings(_Section):
    """The Slack app (adapters/slack). It runs when SLACK_BOT_TOKEN (one workspace) or client_id
    with SLACK_CLIENT_SECRET (OAuth, several workspaces) is set."""

    # "http": Slack posts commands to {public_url}/slack/events, checked with the signing secret;
    # "socket": the app dials out to Slack (SLACK_APP_TOKEN), no public URL needed.
    mode: Literal["http", "socket"] = "http"
    # The slash command as created in the app (the manifest creates /papers).
    command: str = "/papers"
    # Tests and proxies point this elsewhere.
    api_base_url: str = "https://slack.com/api/"
    # OAuth installation into several workspaces: the app's client id (SLACK_CLIENT_ID works too);
    # the secret comes from SLACK_CLIENT_SECRET, the token encryption key from SLACK_INSTALLATION_KEY.
    client_id: str = ""
    # Papers per Slack message (each paper is 3 blocks; 10 keeps a message inside Block Kit limits).
    papers_per_message: int = Field(default=10, ge=1, le=10)
    # A digest of at most this many papers is one message; a bigger one is a short header
    # message with the papers in its thread. 0: always a thread.
    single_message_max_papers: int = Field(default=3, ge=0)
    # Slack allows about one message per second per channel: the next message to a channel leaves
    # at least this long after Slack answered the previous one.
    channel_interval_seconds: float = Field(default=1.0, ge=0)
    # A rate limit (429) asking to wait at most this long is waited out in place; a longer one,
    # like repeated server errors, hands the message back to the delivery ledger to retry later.
    inline_retry_max_seconds: float = Field(default=10.0, ge=0, le=30)
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=30)

    @field_validator("command")
    @classmethod
    def _command(cls, value: str) -> str:
        if not value.startswith("/") or len(value) < 2 or " " in value:
            raise ValueError("must be a slash command such as /papers")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL such as https://slack.com/api/")
        return value if value.endswith("/") else value + "/"


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Settings(_Section):
    store: StoreSettings = StoreSettings()
    server: ServerSettings = ServerSettings()
    fetch: FetchSettings = FetchSettings()
    sources: SourcesSettings = SourcesSettings()
    first_run: FirstRunSettings = FirstRunSettings()
    subscriptions: list[SubscriptionSettings] = Field(default_factory=list)
    delivery: DeliverySettings = DeliverySettings()
    digests: list[DigestSettings] = Field(default_factory=list)
    alerts: AlertSettings = AlertSettings()
    discord: DiscordSettings = DiscordSettings()
    slack: SlackSettings = SlackSettings()
    log: LogSettings = LogSettings()
    # [outputs.NAME]: the settings of an output installed as a plug-in (bridge.outputs), a plain
    # table it reads and checks itself.
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    time_zone: str = "UTC"
    # Secrets: only ever from the environment (a settings file holding one is refused), never
    # printed.
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_client_secret: SecretStr | None = None
    slack_installation_key: SecretStr | None = None
    discord_bot_token: SecretStr | None = None
    # A Hugging Face access token (HF_TOKEN): sent to the HF host only, doubling its allowance.
    hf_token: SecretStr | None = None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Berlin)") from exc
        return value

    @field_validator("digests")
    @classmethod
    def _unique_digests(cls, value: list[DigestSettings]) -> list[DigestSettings]:
        names = [digest.name for digest in value]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"digest name {name!r} is used twice")
        return value

    @field_validator("subscriptions")
    @classmethod
    def _unique_names(cls, value: list[SubscriptionSettings]) -> list[SubscriptionSettings]:
        seen: set[str] = set()
        for sub in value:
            if sub.name in seen:
                raise ValueError(f"subscription name {sub.name!r} is used twice")
            seen.add(sub.name)
        return value


# Environment variables that override a setting: name -> dotted key.
ENV_OVERRIDES: dict[str, str] = {
    "PAPERBRIDGE_DATABASE_URL": "store.database_url",
    "PAPERBRIDGE_HOST": "server.host",
    "PAPERBRIDGE_PORT": "server.port",
    "PAPERBRIDGE_PUBLIC_URL": "server.public_url",
    "PAPERBRIDGE_LOG_LEVEL": "log.level",
    "PAPERBRIDGE_HF_BASE_URL": "sources.hf.base_url",
    "PAPERBRIDGE_ARXIV_RSS_BASE_URL": "sources.arxiv.rss_base_url",
    "PAPERBRIDGE_ARXIV_API_BASE_URL": "sources.arxiv.api_base_url",
    "PAPERBRIDGE_DISCORD_API_BASE_URL": "discord.api_base_url",
    "PAPERBRIDGE_DISCORD_GATEWAY_URL": "discord.gateway_url",
    "SLACK_BOT_TOKEN": "slack_bot_token",
    "SLACK_SIGNING_SECRET": "slack_signing_secret",
    "SLACK_APP_TOKEN": "slack_app_token",
    "SLACK_CLIENT_ID": "slack.client_id",
    "SLACK_CLIENT_SECRET": "slack_client_secret",
    "SLACK_INSTALLATION_KEY": "slack_installation_key",
    "PAPERBRIDGE_SLACK_API_BASE_URL": "slack.api_base_url",
    "DISCORD_BOT_TOKEN": "discord_bot_token",
    "DISCORD_PUBLIC_KEY": "discord.public_key",
    "HF_TOKEN": "hf_token",
}
SECRET_KEYS = frozenset(
    {
        "slack_bot_token",
        "slack_signing_secret",
        "slack_app_token",
        "slack_client_secret",
        "slack_installation_key",
        "discord_bot_token",
        "hf_token",
    }
)


def load_settings(
    path: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    *,
    delivering: bool = False,
) -> Settings:
    """Read TOML (if given), apply environment overrides, validate. Raises ConfigError naming
    every wrong setting at once.

    ``delivering``: the caller posts digests (deliver, and serve and check-config through
    ``bridge.startup``), so what posting needs from the environment (webhook URLs, the bot
    token) must be there; other commands (search, status) work without it.
    """
    settings, problems = read_settings(path, environ)
    if delivering:
        problems += delivery_problems(settings, environ)
    if problems:
        raise ConfigError.several(problems)
    return settings


def read_settings(
    path: Path | None, environ: Mapping[str, str] = os.environ
) -> tuple[Settings, list[ConfigError]]:
    """The settings and every problem found in them.

    A wrong value is reported and its default takes its place (a wrong list item is left
    out, a wrong [[digests]] or [[subscriptions]] entry replaced by a stand-in), so the checks that need whole settings (``delivery_problems``, the outputs' own in
    ``bridge.startup``) still run on everything else: one run names every problem. A file
    that cannot be read or is not TOML is raised at once.
    """
    raw = _read_toml(path)
    problems: list[ConfigError] = _output_sections_in_place(raw)
    for key in sorted(SECRET_KEYS):
        if _get_dotted(raw, key) is not None:
            env_name = next(name for name, dotted in ENV_OVERRIDES.items() if dotted == key)
            problems.append(
                ConfigError(
                    key,
                    f"secrets are read from the environment only: remove it from {path} and"
                    f" set {env_name} instead",
                )
            )
            _mark(raw, (key,))
    set_by: dict[str, str] = {}
    for env_name, dotted in ENV_OVERRIDES.items():
        if env_name in environ and environ[env_name] != "":
            _set_dotted(raw, dotted, environ[env_name])
            set_by[dotted] = env_name
    settings, invalid = _validated(_without_marked(raw))
    # A wrong value from the environment is fixed there, not in the file: say where it came from.
    for number, error in enumerate(invalid):
        if error.key in set_by:
            invalid[number] = ConfigError(
                error.key, f"{error.problem} (set by {set_by[error.key]})"
            )
    return settings, problems + invalid


# The entry-point group outputs are installed under (bridge.outputs reads them).
OUTPUTS_GROUP = "paperbridge.outputs"


def _output_sections_in_place(raw: dict[str, Any]) -> list[ConfigError]:
    """Move an installed output's top-level section (``[email]``) to ``[outputs.email]``.

    An output's own settings live under ``[outputs.NAME]``; its name alone reads as well, as
    people write ``[email]`` or ``[matrix]``. Only names no setting of paperbridge's own uses
    and an installed output has (read from the entry points, without loading any output) are
    moved, so an unknown section is still reported as one. Both spellings at once is an error.
    """
    candidates = [
        key
        for key, value in raw.items()
        if key not in Settings.model_fields and isinstance(value, dict)
    ]
    if not candidates:
        return []
    from importlib.metadata import entry_points  # only for a file that needs it: ~10 ms

    installed = {entry.name for entry in entry_points(group=OUTPUTS_GROUP)}
    problems: list[ConfigError] = []
    outputs = raw.get("outputs")
    for key in candidates:
        if key not in installed:
            continue
        if not isinstance(outputs, dict):
            outputs = raw["outputs"] = {}
        if key in outputs:
            problems.append(
                ConfigError(key, f"given twice: as [{key}] and as [outputs.{key}]; keep one")
            )
            del raw[key]
            continue
        outputs[key] = raw.pop(key)
    return problems


def _read_toml(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError("--config", f"no such file: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read: {exc.strerror}") from None


# Rounds of leaving wrong values out before giving up on whole settings: each round leaves out
# at least one value, and a value left out can only bring up a missing required key.
_PRUNING_ROUNDS = 8


def _validated(raw: dict[str, Any]) -> tuple[Settings, list[ConfigError]]:
    try:
        return Settings.model_validate(raw), []
    except ValidationError as exc:
        errors = exc.errors()
    problems = [_problem(error) for error in errors]
    for _ in range(_PRUNING_ROUNDS):
        # Only the first round's errors are the user's: later ones follow from leaving
        # values out (a list item without its query) and are not reported.
        for error in errors:
            _mark(raw, error["loc"])
        raw = _without_marked(raw)
        try:
            return Settings.model_validate(raw), problems
        except ValidationError as exc:
            errors = exc.errors()
    raise ConfigError.several(problems)


def _problem(error: Any) -> ConfigError:
    """One pydantic error as the key and a sentence; the value given is quoted unless it may
    be a secret (a token, a database URL with its password, a webhook URL)."""
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    problem = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        return ConfigError(key, "unknown setting (see config.example.toml for every setting)")
    quoted = (
        key.split(".")[0] not in SECRET_KEYS
        and key != "store.database_url"
        and error["type"] != "missing"
        # A webhook URL pasted where it does not belong is still a secret.
        and not DISCORD_WEBHOOK_URL.search(str(error.get("input")))
    )
    return ConfigError(key, f"{problem} (got {error.get('input')!r})" if quoted else problem)


_LEFT_OUT = object()


def _mark(raw: Any, loc: tuple[int | str, ...]) -> None:
    """Mark the value at ``loc`` to be left out, or the deepest part of ``loc`` present (a
    missing required key leaves out the list item or section that lacks it)."""
    node: Any = raw
    parent: Any = None
    part: Any = None
    for step in loc:
        if isinstance(node, dict) and step in node:
            parent, part, node = node, step, node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            parent, part, node = node, step, node[step]
        else:
            break
    if parent is not None:
        parent[part] = _LEFT_OUT


# A wrong [[digests]] or [[subscriptions]] entry is replaced by a stand-in rather than left
# out, so the entries after it keep their numbers in what later checks report
# ("digests.1.destination"). Settings holding one are only ever checked, never run.
_STAND_INS = {"digests", "subscriptions"}


def _without_marked(node: Any, path: str = "") -> Any:
    if isinstance(node, dict):
        return {
            k: _without_marked(v, f"{path}.{k}".lstrip("."))
            for k, v in node.items()
            if v is not _LEFT_OUT
        }
    if isinstance(node, list):
        if path in _STAND_INS:
            return [
                {"name": f"left-out-{n}", "query": "left-out"}
                if v is _LEFT_OUT
                else _without_marked(v, path)
                for n, v in enumerate(node)
            ]
        return [_without_marked(v, path) for v in node if v is not _LEFT_OUT]
    return node


def configured_destinations(settings: Settings) -> list[tuple[str, str]]:
    """Every destination the settings name, with the key naming it."""
    named = [(f"digests.{n}.destination", d.destination) for n, d in enumerate(settings.digests)]
    if settings.alerts.destination:
        named.append(("alerts.destination", settings.alerts.destination))
    return named


def delivery_problems(settings: Settings, environ: Mapping[str, str]) -> list[ConfigError]:
    """What posting to the configured destinations needs and lacks: a webhook URL in the
    variable a ``discord-webhook:NAME`` destination names (the URL itself is never shown),
    the bot token for ``discord:CHANNEL`` (without it those could only pile up), a Slack app
    for ``slack:CHANNEL`` (the Slack output checks the workspace is clear)."""
    problems: list[ConfigError] = []
    for key, destination in configured_destinations(settings):
        kind, _, address = destination.partition(":")
        if kind == "discord-webhook":
            url = environ.get(address, "")
            if not url:
                problems.append(
                    ConfigError(
                        key, f"environment variable {address} is not set (it holds the webhook URL)"
                    )
                )
            elif not DISCORD_WEBHOOK_URL.fullmatch(url.strip()):
                problems.append(
                    ConfigError(
                        key,
                        f"environment variable {address} does not hold a Discord webhook URL"
                        " (https://discord.com/api/webhooks/ID/TOKEN)",
                    )
                )
        elif kind == "discord" and settings.discord_bot_token is None:
            problems.append(
                ConfigError(
                    key,
                    "discord:CHANNEL_ID is posted by the bot: set DISCORD_BOT_TOKEN (or post"
                    " through a channel webhook: discord-webhook:ENV_NAME)",
                )
            )
        elif kind == "slack" and settings.slack_bot_token is None and not settings.slack.client_id:
            problems.append(
                ConfigError(
                    key,
                    "slack destinations are posted by the Slack app: set SLACK_BOT_TOKEN (or"
                    " slack.client_id for OAuth)",
                )
            )
    return problems


def _get_dotted(raw: Mapping[str, Any], dotted: str) -> Any:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _set_dotted(raw: dict[str, Any], dotted: str, value: str) -> None:
    *parents, leaf = dotted.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def redacted(settings: Settings) -> dict[str, Any]:
    """The settings as plain data, with every secret shown as '<redacted>' or None."""
    from bridge.store import safe_url

    data = settings.model_dump(mode="json")
    for key in SECRET_KEYS:
        if data.get(key) is not None:
            data[key] = "<redacted>"
    data["store"]["database_url"] = safe_url(settings.store.database_url)
    for source in data["sources"].values():
        # Only one rhythm is in effect; showing the unused default beside it misleads.
        if source.get("poll_cron"):
            source.pop("poll_every_minutes", None)
        else:
            source.pop("poll_cron", None)
            source.pop("poll_time_zone", None)
    return data
