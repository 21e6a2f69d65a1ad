"""The built-in settings `paperbridge search` needs, without pydantic (issue 14).

Loading the settings means importing pydantic and building the settings models: about a
third of a `search` process once SQLAlchemy is out of it. With no settings file and no
environment variable that could change a setting, there is nothing to read or check: the
settings are the built-in defaults, and a search needs two of them (the database URL and the
log level). Any settings file, or any such variable, takes the usual way (bridge.config),
which checks everything and names every problem.

tests/test_settings_defaults.py pins these against bridge.config's models and its
ENV_OVERRIDES.
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
# Every variable of bridge.config.ENV_OVERRIDES starts with one of these: with none set,
# the environment changes no setting.
ENV_PREFIXES = ("PAPERBRIDGE_", "SLACK_", "DISCORD_", "HF_")


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
    if any(value != "" and name.startswith(ENV_PREFIXES) for name, value in environ.items()):
        return None
    return BuiltInSettings()
