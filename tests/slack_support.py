"""What the Slack tests share: clients pointed at the fake Slack, a fake clock for the pacer,
papers and subscribed channels."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import aiohttp

from adapters.slack.pacer import ChannelPacer
from adapters.slack.publisher import SlackPublisher
from adapters.slack.webclient import open_session, web_client
from adapters.slack.workspaces import SingleWorkspace
from bridge.config import SlackSettings
from bridge.models import Paper
from tests.fake_slack import DEFAULT_TEAM, DEFAULT_TOKEN, FakeSlack

T0 = datetime(2026, 6, 1, 5, 0, tzinfo=UTC)


class PacerClock:
    """Monotonic time that moves only when the pacer sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def slack_settings(**changes: Any) -> SlackSettings:
    return SlackSettings(**changes)


class Sessions:
    """aiohttp sessions opened the way the app opens them, closed at the end of a test."""

    def __init__(self) -> None:
        self.opened: list[aiohttp.ClientSession] = []

    def open(self, settings: SlackSettings) -> aiohttp.ClientSession:
        session = open_session(settings)
        self.opened.append(session)
        return session

    async def close(self) -> None:
        for session in self.opened:
            await session.close()


def publisher(
    slack: FakeSlack,
    sessions: Sessions,
    *,
    clock: PacerClock | None = None,
    timeout: float = 5,
    **settings: Any,
) -> SlackPublisher:
    """The publisher on a fresh session to ``slack``; ``clock``: pace by a fake clock."""
    chosen = slack_settings(api_base_url=slack.api_url, request_timeout_seconds=timeout, **settings)
    if clock is not None:
        pacer = ChannelPacer(chosen.channel_interval_seconds, clock=clock, sleep=clock.sleep)
    else:
        pacer = ChannelPacer(0.0)
    client = web_client(chosen, sessions.open(chosen))
    return SlackPublisher(client, SingleWorkspace(DEFAULT_TOKEN), chosen, pacer=pacer)


def address(channel: str, team: str = DEFAULT_TEAM) -> str:
    return f"{team}:{channel}"


def papers(
    count: int, start: int = 1, title: str = "Generalization in deep networks"
) -> list[Paper]:
    return [
        Paper(
            f"2606.{n:05d}",
            f"{title} {n}",
            abstract="We study out-of-distribution generalization in depth.",
            authors=("Ann Author", "Bo Writer"),
            upvotes=n,
            sources=("hf", "arxiv"),
        )
        for n in range(start, start + count)
    ]
