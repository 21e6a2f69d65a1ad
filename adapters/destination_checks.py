"""Checks of destinations whose address names an environment variable holding a secret
(a webhook URL): shared by the outputs that post through webhooks. They never show the value."""

from __future__ import annotations

import re
from collections.abc import Mapping

from bridge.config import Settings, configured_destinations
from bridge.errors import ConfigError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def destinations_of(settings: Settings, kind: str) -> list[tuple[str, str]]:
    """(settings key, address) of every configured destination of ``kind``."""
    return [
        (key, destination.partition(":")[2])
        for key, destination in configured_destinations(settings)
        if destination.partition(":")[0] == kind
    ]


def env_url_problems(
    key: str,
    kind: str,
    address: str,
    environ: Mapping[str, str],
    pattern: re.Pattern[str],
    what: str,
) -> list[ConfigError]:
    """What is wrong with a ``KIND:ENV_NAME`` destination whose variable holds a secret URL."""
    if not _ENV_NAME.fullmatch(address):
        return [
            ConfigError(
                key,
                "give the name of an environment variable holding the webhook URL, never the"
                f" URL itself (it is a secret): {kind}:LAB_WEBHOOK_URL",
            )
        ]
    url = environ.get(address, "").strip()
    if not url:
        return [ConfigError(key, f"environment variable {address} is not set (it holds {what})")]
    if not pattern.fullmatch(url):
        return [ConfigError(key, f"environment variable {address} does not hold {what}")]
    return []
