"""Microsoft Teams as a paperbridge output (``bridge.outputs``): a publisher for
``teams:ENV_NAME`` destinations, started when the settings name one. Optional settings
in ``[outputs.teams]``: ``papers_per_message`` (1–20, default 5), ``timeout_seconds``."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.http_output import HttpPostingOutput, env_url_output, env_url_output_problems
from adapters.teams.publisher import TeamsPublisher
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.outputs import OutputContext


def teams_output(context: OutputContext) -> HttpPostingOutput | None:
    """The output when a configured destination is a Teams Workflows webhook."""
    return env_url_output(context, "teams", TeamsPublisher)


def teams_problems(
    settings: Settings, listen: bool, environ: Mapping[str, str] | None = None
) -> list[ConfigError]:
    """Each ``teams:`` destination names a set environment variable holding its webhook URL."""
    return env_url_output_problems(settings, "teams", TeamsPublisher, environ)
