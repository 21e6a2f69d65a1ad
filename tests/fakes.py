"""Shared fakes: a publisher that records what it sent and fails on request; a settable clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bridge.delivery import Destination, DigestItem, DigestRun, DigestSubscription, SendOutcome


class Clock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass(frozen=True, slots=True)
class SentMessage:
    destination_id: str
    subscription_id: str | None
    arxiv_ids: tuple[str, ...]  # empty: an "all quiet" note
    uncertain: tuple[str, ...] = ()
    # The digest run it belongs to: papers waiting at its start, and this message's place in it.
    run_pending: int = 0
    run_message: int = 0


@dataclass
class RecordingPublisher:
    """Records every message as ``SentMessage``; ``fail_next`` makes the next sends (to one
    destination, or any) return an outcome or raise an exception instead."""

    kind: str = "fake"
    max_papers_per_message: int = 10
    sent: list[SentMessage] = field(default_factory=list)
    attempts: int = 0
    _failures: list[tuple[str | None, SendOutcome | BaseException]] = field(default_factory=list)

    def fail_next(
        self,
        outcome: SendOutcome | BaseException,
        *,
        destination_id: str | None = None,
        times: int = 1,
    ) -> None:
        self._failures.extend([(destination_id, outcome)] * times)

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome:
        self.attempts += 1
        for index, (only, outcome) in enumerate(self._failures):
            if only is None or only == destination.id:
                del self._failures[index]
                if isinstance(outcome, BaseException):
                    raise outcome
                return outcome
        self.sent.append(
            SentMessage(
                destination.id,
                subscription.id if subscription else None,
                tuple(item.stored.paper.arxiv_id for item in items),
                tuple(item.stored.paper.arxiv_id for item in items if item.uncertain),
                run.pending if run else 0,
                run.messages if run else 0,
            )
        )
        return SendOutcome.sent()

    def delivered(self) -> list[tuple[str, str]]:
        """Every (destination, paper) sent, in order, duplicates included."""
        return [(m.destination_id, a) for m in self.sent for a in m.arxiv_ids]
