"""The built-in settings `paperbridge search` needs, without pydantic (issue 14).

Loading the settings means importing pydantic and building the settings models: about a
third of a `search` process once SQLAlchemy is out of it. With no settings file and no
environment variable that could change a setting, there is nothing to read or check: the
settings are the built-in defaults, and a search needs two of them (the database URL and the
log level). Any settings file, or any such variable, takes the usual way (bridge.config),
which checks everything and names every problem.

tests/test_settings_defaults.py pins these against bridge.config's models and its
ENV_OVERRIDES: a variable added there must be added here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

CONFIG_ENV = "PAPERBRIDGE_CONFIG"
# bridge.config's defaults for [store] database_url and [log] level.
DATABASE_URL = "sqlite:///data/paperbridge.db"
LOG_LEVEL = "INFO"
# The variables that set a setting: the names of bridge.config.ENV_OVERRIDES. Named one by
# one, not by prefix: researchers often have HF_HOME or HF_DATASETS_CACHE set, which set
# nothing here.
SETTING_VARIABLES = frozenset(
    {
        "PAPERBRIDGE_DATABASE_URL",
        "PAPERBRIDGE_HOST",
        "PAPERBRIDGE_PORT",
        "PAPERBRIDGE_PUBLIC_URL",
        "PAPERBRIDGE_LOG_LEVEL",
        "PAPERBRIDGE_HF_BASE_URL",
        "PAPERBRIDGE_ARXIV_RSS_BASE_URL",
        "PAPERBRIDGE_ARXIV_API_BASE_URL",
        "PAPERBRIDGE_DISCORD_API_BASE_URL",
        "PAPERBRIDGE_DISCORD_GATEWAY_URL",
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_CLIENT_ID",
        "SLACK_CLIENT_SECRET",
        "SLACK_INSTALLATION_KEY",
        "PAPERBRIDGE_SLACK_API_BASE_URL",
        "DISCORD_BOT_TOKEN",
        "DISCORD_PUBLIC_KEY",
        "HF_TOKEN",
    }
)


def config_path(explicit: str | None, environ: Mapping[str, str] = os.environ) -> Path | None:
    """--config wins over PAPERBRIDGE_CONFIG; with neither the defaults serve."""
    chosen = explicit or environ.get(CONFIG_ENV)
    return Path(chosen) if chosen else None


@dataclass(frozen=True, slots=True)
class StoreDefaults:
    database_url: str = DATABASE_URL


@dataclass(frozen=True, slots=True)
class LogDefaults:
    level: str = LOG_LEVEL


@dataclass(frozen=True, slots=True)
class BuiltInSettings:
    """The parts of bridge.config.Settings a search reads, at their defaults."""

    store: StoreDefaults = field(default_factory=StoreDefaults)
    log: LogDefaults = field(default_factory=LogDefaults)


def built_in_settings(
    path: Path | None, environ: Mapping[str, str] = os.environ
) -> BuiltInSettings | None:
    """The defaults, when no settings file is given and the environment sets nothing
    (bridge.config ignores an empty variable, so does this); else None."""
    if path is not None:
        return None
    if any(environ.get(name, "") != "" for name in SETTING_VARIABLES):
        return None
    return BuiltInSettings()
