"""The Publisher interface every pushing output implements (Slack, Discord, stdout, a file).

A publisher turns one digest message into one post and reports what happened; it does not
retry, pause or remember anything: the ledger (``bridge.ledger``) does that with the outcome.

    class Publisher(Protocol):
        kind: str                      # "slack", "discord", "stdout", "file"
        max_papers_per_message: int    # the ledger claims at most this many rows per message
        async def send_digest(destination, items, *, subscription=None, run=None) -> SendOutcome

``items`` empty means the "all quiet" note of a subscription that asks for one. ``run`` (a
``DigestRun``) is the same object for every message of one digest run: how many papers the run
holds, how many messages it sent, and a slot for the publisher's own header (a thread anchor). A publisher may
raise ``PublishError`` (retry) or ``PermanentPublishError`` (pause the destination) instead of
returning an outcome; any other exception counts as a retryable failure and is logged as a bug.

A publisher that can also post notices about the bridge itself (a source down, a destination
paused: ``bridge.notices``) implements ``NoticePublisher`` as well; every built-in one does.
Notices to a destination whose publisher cannot post them are dropped, with one warning.

    class NoticePublisher(Protocol):
        async def send_notice(destination, notice) -> SendOutcome
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
)

__all__ = ["NoticePublisher", "Publisher", "SendOutcome", "builtin_publishers"]


@runtime_checkable
class Publisher(Protocol):
    kind: str
    max_papers_per_message: int

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome: ...


@runtime_checkable
class NoticePublisher(Protocol):
    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome: ...


def builtin_publishers() -> dict[str, Publisher]:
    """The publishers that need no credentials (stdout and file, JSON lines), as the installed
    outputs offer them (``bridge.outputs``: the core names no adapter)."""
    from bridge.outputs import standing_publishers

    return standing_publishers()
