"""Checks of destinations whose address names an environment variable holding a secret
(a webhook URL): shared by the outputs that post through webhooks. They never show the value."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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


# Every chat output's [outputs.NAME] knows these two.
COMMON_OPTIONS = ("papers_per_message", "timeout_seconds")


def option_problems(
    output: str, options: Mapping[str, Any], known: tuple[str, ...] = COMMON_OPTIONS
) -> list[ConfigError]:
    """Unknown keys in ``[outputs.OUTPUT]``, and ``papers_per_message`` (1–20) and
    ``timeout_seconds`` (up to 120) when given."""
    problems = [
        ConfigError(f"outputs.{output}.{name}", f"unknown setting (known: {', '.join(known)})")
        for name in options
        if name not in known
    ]
    per = options.get("papers_per_message", 5)
    if not isinstance(per, int) or isinstance(per, bool) or not 1 <= per <= 20:
        problems.append(
            ConfigError(f"outputs.{output}.papers_per_message", "must be a whole number 1–20")
        )
    timeout = options.get("timeout_seconds", 10.0)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 120:
        problems.append(
            ConfigError(f"outputs.{output}.timeout_seconds", "must be a number of seconds 0–120")
        )
    return problems
