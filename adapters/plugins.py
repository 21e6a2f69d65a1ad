"""The entry points of paperbridge's own outputs (pyproject.toml, group paperbridge.outputs;
see bridge.outputs), declared as any package declares its own.

Kept light on purpose: every command that builds the delivery ledger (``poll`` too) reads the
installed outputs, and would otherwise import discord.py, Bolt and the feed site each time
(about a second). Each output's modules load only when it is created or its settings checked.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from bridge.config import Settings
from bridge.errors import ConfigError
from bridge.outputs import Output, OutputContext, OutputPlugin
from bridge.publisher import Publisher


def _stdout_publishers() -> Mapping[str, Publisher]:
    from adapters.stdout import StdoutPublisher

    return {"stdout": StdoutPublisher(sys.stdout)}


def _file_publishers() -> Mapping[str, Publisher]:
    from adapters.stdout import FilePublisher

    return {"file": FilePublisher()}


def _discord(context: OutputContext) -> Output | None:
    from adapters.discord.output import discord_output

    return discord_output(context)


def _slack(context: OutputContext) -> Output | None:
    from adapters.slack.output import slack_output

    return slack_output(context)


def _slack_problems(settings: Settings, listen: bool) -> list[ConfigError]:
    from adapters.slack.output import slack_problems

    return slack_problems(settings, listen)


def _feeds(context: OutputContext) -> Output | None:
    from adapters.atom.output import feeds_output

    return feeds_output(context)


def _email(context: OutputContext) -> Output | None:
    from adapters.email.output import email_output

    return email_output(context)


def _email_problems(settings: Settings, listen: bool) -> list[ConfigError]:
    from adapters.email.settings import email_problems

    return email_problems(settings, listen)


def _webhook(context: OutputContext) -> Output | None:
    from adapters.webhook.output import webhook_output

    return webhook_output(context)


def _webhook_problems(settings: Settings, listen: bool) -> list[ConfigError]:
    from adapters.webhook.settings import webhook_problems

    return webhook_problems(settings, listen)


# Both need no settings: their publishers are the ledger's from the start.
stdout = OutputPlugin(kinds=("stdout",), publishers=_stdout_publishers)
file = OutputPlugin(kinds=("file",), publishers=_file_publishers)
# What posting to these kinds needs from the environment (a bot token, a webhook URL) is
# checked with the settings (bridge.config.delivery_problems).
discord = OutputPlugin(kinds=("discord", "discord-webhook"), create=_discord)
slack = OutputPlugin(kinds=("slack",), create=_slack, check=_slack_problems)
# The feeds and the page: routes and middleware in serve, nothing pushed.
feeds = OutputPlugin(create=_feeds)
# Digests by email over SMTP ([outputs.email], mailto:ADDRESS destinations).
email = OutputPlugin(kinds=("mailto",), create=_email, check=_email_problems)
# Digests as signed JSON POSTs (webhook:ENV_NAME destinations, [outputs.webhook]).
webhook = OutputPlugin(kinds=("webhook",), create=_webhook, check=_webhook_problems)


def _mattermost(context: OutputContext) -> Output | None:
    from adapters.mattermost.output import mattermost_output

    return mattermost_output(context)


def _mattermost_problems(settings: Settings, listen: bool) -> list[ConfigError]:
    from adapters.mattermost.output import mattermost_problems

    return mattermost_problems(settings, listen)


# Mattermost and Rocket.Chat incoming webhooks: "mattermost:ENV_NAME" (the URL is a secret).
mattermost = OutputPlugin(kinds=("mattermost",), create=_mattermost, check=_mattermost_problems)


def _telegram(context: OutputContext) -> Output | None:
    from adapters.telegram.output import telegram_output

    return telegram_output(context)


def _telegram_problems(settings: Settings, listen: bool) -> list[ConfigError]:
    from adapters.telegram.output import telegram_problems

    return telegram_problems(settings, listen)


# A Telegram bot's sendMessage: "telegram:CHAT_ID", the token in TELEGRAM_BOT_TOKEN.
telegram = OutputPlugin(kinds=("telegram",), create=_telegram, check=_telegram_problems)


def _teams(context: OutputContext) -> Output | None:
    from adapters.teams.output import teams_output

    return teams_output(context)


def _teams_problems(settings: Settings, listen: bool) -> list[ConfigError]:
    from adapters.teams.output import teams_problems

    return teams_problems(settings, listen)


# Microsoft Teams Workflows webhooks: "teams:ENV_NAME" (the URL is a secret), Adaptive Cards.
teams = OutputPlugin(kinds=("teams",), create=_teams, check=_teams_problems)


def _matrix(context: OutputContext) -> Output | None:
    from adapters.matrix.output import matrix_output

    return matrix_output(context)


def _matrix_problems(settings: Settings, listen: bool) -> list[ConfigError]:
    from adapters.matrix.output import matrix_problems

    return matrix_problems(settings, listen)


# Matrix rooms through the client-server API: "matrix:!room:server", MATRIX_ACCESS_TOKEN.
matrix = OutputPlugin(kinds=("matrix",), create=_matrix, check=_matrix_problems)
