"""Slack: ``/papers`` as a slash command (Bolt, HTTP or Socket Mode) and morning digests posted
to channels, with Block Kit rendering that stays inside Slack's limits.

    output.py      the Output ``serve`` and ``deliver`` run (bridge.outputs)
    commands.py    the /papers listeners: ack at once, work after
    verify.py      whether an HTTP request comes from Slack, checked before Bolt reads it
    publisher.py   digests to channels for the delivery ledger; outcomes from Slack's answers
    blocks.py      papers, digests and search pages as Block Kit (pure)
    mrkdwn.py      escaping of every untrusted text
    pacer.py       about one message per second per channel
    workspaces.py  which bot token speaks in which workspace
    manifest.yml   the app, created with one paste
"""

from adapters.slack.output import SlackOutput, slack_output, slack_problems

__all__ = ["SlackOutput", "slack_output", "slack_problems"]
