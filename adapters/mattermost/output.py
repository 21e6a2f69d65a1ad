"""Mattermost / Rocket.Chat as a paperbridge output (``bridge.outputs``): a publisher for
``mattermost:ENV_NAME`` destinations, started when the settings name one. Optional settings
in ``[outputs.mattermost]``: ``papers_per_message`` (1–20, default 5), ``timeout_seconds``."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.http_output import HttpPostingOutput, env_url_output, env_url_output_problems
from adapters.mattermost.publisher import MattermostPublisher
from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.outputs import OutputContext


def mattermost_output(context: OutputContext) -> HttpPostingOutput | None:
    """The output when a configured destination is a Mattermost or Rocket.Chat webhook."""
    return env_url_output(context, "mattermost", MattermostPublisher)


def mattermost_problems(
    settings: Settings, listen: bool, environ: Mapping[str, str] | None = None
) -> list[ConfigError]:
    """Each ``mattermost:`` destination names a set environment variable holding its webhook URL."""
    return env_url_output_problems(settings, "mattermost", MattermostPublisher, environ)
