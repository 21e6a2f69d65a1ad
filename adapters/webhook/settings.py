"""What a ``webhook:ENV_NAME`` destination needs: the URL in the environment variable it
names and the signing secret in ``ENV_NAME_SECRET`` (both secrets: never in the settings file,
never logged), and the optional ``[outputs.webhook]`` table (``timeout``,
``papers_per_message``)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.config import Settings, configured_destinations
from bridge.errors import ConfigError

KIND = "webhook"
SECTION = "webhook"  # [outputs.webhook]
SECRET_SUFFIX = "_SECRET"
MIN_SECRET_CHARS = 16
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    timeout: float = 10.0
    papers_per_message: int = 50


def secret_name(address: str) -> str:
    return address + SECRET_SUFFIX


def endpoint_problem(address: str, environ: Mapping[str, str]) -> str | None:
    """Why ``webhook:address`` cannot be posted to, or None."""
    if not _ENV_NAME.fullmatch(address):
        return (
            "give the name of an environment variable holding the URL, never the URL itself"
            " (webhook:LAB_HOOK)"
        )
    url = environ.get(address, "").strip()
    if not url:
        return f"environment variable {address} is not set (it holds the webhook's URL)"
    if not url.startswith(("https://", "http://")) or any(c.isspace() for c in url):
        return f"environment variable {address} does not hold an http(s) URL"
    secret = environ.get(secret_name(address), "")
    if len(secret) < MIN_SECRET_CHARS:
        return (
            f"environment variable {secret_name(address)} must hold the signing secret"
            f" (at least {MIN_SECRET_CHARS} characters)"
        )
    return None


def webhook_problems(
    settings: Settings, listen: bool = False, environ: Mapping[str, str] | None = None
) -> list[ConfigError]:
    environ = os.environ if environ is None else environ
    problems = []
    for key, destination in configured_destinations(settings):
        kind, _, address = destination.partition(":")
        if kind == KIND and (why := endpoint_problem(address, environ)):
            problems.append(ConfigError(key, why))
    _, found = _parse(settings.outputs.get(SECTION, {}))
    return problems + found


def webhook_settings(settings: Settings) -> WebhookSettings:
    parsed, problems = _parse(settings.outputs.get(SECTION, {}))
    if problems:
        raise ConfigError.several(problems)
    return parsed


def configured(settings: Settings) -> bool:
    return SECTION in settings.outputs or any(
        destination.partition(":")[0] == KIND
        for _, destination in configured_destinations(settings)
    )


def _parse(table: Mapping[str, Any]) -> tuple[WebhookSettings, list[ConfigError]]:
    problems = [
        ConfigError(f"outputs.{SECTION}.{name}", "unknown setting (see README, Signed webhooks)")
        for name in sorted(set(table) - {"timeout", "papers_per_message"})
    ]
    timeout = table.get("timeout", 10)
    if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 < timeout <= 120:
        problems.append(ConfigError(f"outputs.{SECTION}.timeout", "must be seconds, 0 to 120"))
        timeout = 10
    per_message = table.get("papers_per_message", 50)
    if (
        not isinstance(per_message, int)
        or isinstance(per_message, bool)
        or not 1 <= per_message <= 200
    ):
        problems.append(
            ConfigError(f"outputs.{SECTION}.papers_per_message", "must be between 1 and 200")
        )
        per_message = 50
    return WebhookSettings(float(timeout), per_message), problems
