"""Core delivery types: destinations, digest subscriptions, ledger rows and send outcomes.

These are plain frozen values, like ``bridge.models``; the ledger (``bridge.ledger``) moves them
between the store and the publishers (``bridge.publisher``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from bridge.models import Hit, Match, StoredPaper, Subscription

DeliveryState = Literal["pending", "claimed", "sent", "failed"]
OutcomeStatus = Literal["sent", "retry", "permanent"]

# A digest subscription's time: "HH:MM" local, or "now" (delivered right after each poll).
IMMEDIATE = "now"


def mask_address(address: str) -> str:
    """An address safe to log: a URL keeps its scheme and host only (webhook URLs carry their
    token in the path); anything else (a channel id, a file path) is shown as is."""
    if "://" not in address:
        return address
    parts = urlsplit(address)
    if not parts.path.strip("/") and not parts.query:
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}://{parts.netloc}/…"


def destination_id_for(kind: str, address: str) -> str:
    """A stable id for a destination declared by kind and address, without the address in it."""
    digest = hashlib.sha256(f"{kind}\0{address}".encode()).hexdigest()[:16]
    return f"{kind}-{digest}"


def parse_local_time(text: str) -> tuple[int, int] | None:
    """``"08:00"`` -> (8, 0); ``"now"`` -> None. Raises ValueError on anything else."""
    value = text.strip().lower()
    if value == IMMEDIATE:
        return None
    hour, sep, minute = value.partition(":")
    if not sep or not hour.isdigit() or not minute.isdigit() or len(minute) != 2:
        raise ValueError(f"{text!r} is not a time of day (HH:MM, e.g. 08:00) or 'now'")
    h, m = int(hour), int(minute)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise ValueError(f"{text!r} is not a time of day (HH:MM, e.g. 08:00) or 'now'")
    return h, m


@dataclass(frozen=True, slots=True, repr=False)
class Destination:
    """Where digests go: a Slack or Discord channel, a webhook, stdout, a file.

    ``address`` is what the publisher needs (a channel id, a webhook URL, a path); it may be
    secret-ish, so ``repr`` and logs use ``safe_address``.
    """

    id: str
    kind: str
    address: str = ""
    name: str = ""
    origin: str = "api"
    paused: bool = False
    paused_reason: str | None = None
    paused_at: datetime | None = None
    consecutive_failures: int = 0
    retry_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_delivery_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def safe_address(self) -> str:
        return mask_address(self.address)

    @property
    def shown_as(self) -> str:
        """Kind and safe address as ``status`` shows them: ``slack:C0123``, or ``stdout``
        for a kind that needs no address."""
        return f"{self.kind}:{self.safe_address}" if self.address else self.kind

    @property
    def label(self) -> str:
        """How people and logs name it, e.g. ``slack:C0123`` or ``discord:https://discord.com/…``."""
        return self.name or self.shown_as

    def __repr__(self) -> str:
        state = f", paused={self.paused_reason!r}" if self.paused else ""
        return (
            f"Destination(id={self.id!r}, kind={self.kind!r}, address={self.safe_address!r}{state})"
        )


@dataclass(frozen=True, slots=True)
class DigestSubscription:
    """A standing query delivered to one destination each morning at ``local_time`` in
    ``time_zone`` (or at once when ``local_time`` is "now")."""

    id: str
    destination_id: str
    query: str
    local_time: str = "08:00"
    time_zone: str = "UTC"
    all_quiet: bool = False  # post "all quiet" when a digest has nothing new
    name: str = ""
    origin: str = "api"
    last_digest_at: datetime | None = None  # scheduled time (UTC) of the last finished digest
    created_at: datetime | None = None
    # "Top N of the day": the N most upvoted papers of the listing day that just completed,
    # instead of new matches (``query`` then narrows the day's papers; empty: all of them).
    top: int | None = None

    def __post_init__(self) -> None:
        parse_local_time(self.local_time)  # raises ValueError early
        if self.top is not None and self.top < 1:
            raise ValueError(f"top must be at least 1, not {self.top}")

    @property
    def immediate(self) -> bool:
        return parse_local_time(self.local_time) is None

    def as_subscription(self) -> Subscription:
        """The matcher's view of it."""
        return Subscription(id=self.id, query=self.query, name=self.name)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One ledger row: one paper for one destination, and how far it got."""

    id: int
    destination_id: str
    arxiv_id: str
    paper_seq: int
    subscription_id: str
    state: DeliveryState
    attempts: int = 0
    uncertain: bool = False
    hits: tuple[Hit, ...] = ()
    claim_token: str | None = None
    claimed_by: str | None = None
    claimed_at: datetime | None = None
    slot_at: datetime | None = None
    enqueued_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None

    @property
    def match(self) -> Match:
        return Match(self.subscription_id, self.arxiv_id, self.hits)


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One paper in a digest and why it is there."""

    stored: StoredPaper
    match: Match
    # An earlier attempt to send this paper may have been posted (a crash or a timeout).
    uncertain: bool = False

    @property
    def why(self) -> str:
        return self.match.why()


# How digests name the sources they may be missing papers from.
SOURCE_NAMES = {"hf": "Hugging Face Daily Papers", "arxiv": "arXiv"}


@dataclass(frozen=True, slots=True)
class Outage:
    """A source that missed its last few scheduled polls (``bridge.health``)."""

    source: str
    # Its last successful poll; None when it never had one.
    since: datetime | None


def outage_notice(outages: tuple[Outage, ...], time_zone: str) -> str:
    """One plain-text sentence a digest carries while sources are down, so a channel knows
    papers may come late rather than never: they follow once the source answers again."""
    if not outages:
        return ""
    zone = ZoneInfo(time_zone)
    parts = []
    for outage in outages:
        name = SOURCE_NAMES.get(outage.source, outage.source)
        if outage.since is None:
            parts.append(f"{name} has not answered yet")
        else:
            when = outage.since.astimezone(zone).strftime("%a %d %b %H:%M")
            parts.append(f"{name} has not answered since {when} ({time_zone})")
    back = "it is" if len(parts) == 1 else "they are"
    return "; ".join(parts) + f". Papers listed meanwhile will follow once {back} back."


NoticeKind = Literal["source-down", "source-back", "destination-paused"]


@dataclass(frozen=True, slots=True)
class Notice:
    """A message about the bridge itself rather than papers (``bridge.notices`` decides which
    are due): a source that has not answered for a while, the same source back, or (to the
    operator) a destination paused. Outputs render ``text`` as plain text, escaped as they
    escape paper text."""

    id: int
    destination_id: str
    kind: NoticeKind
    source: str = ""
    # source-down: the source's last success (None: it never answered); source-back: when it
    # answered again; destination-paused: when the destination was paused.
    since: datetime | None = None
    # destination-paused: the paused destination's id, how `status` shows it, and why.
    about_id: str = ""
    about: str = ""
    detail: str = ""
    time_zone: str = "UTC"  # the times in ``text`` are shown in this zone
    # An earlier attempt to send it may have been posted (a crash or a timeout).
    uncertain: bool = False

    @property
    def text(self) -> str:
        return notice_text(self)


def _when(moment: datetime, time_zone: str) -> str:
    return f"{moment.astimezone(ZoneInfo(time_zone)).strftime('%a %d %b %H:%M')} ({time_zone})"


def notice_text(notice: Notice) -> str:
    """The notice as one or two plain sentences."""
    name = SOURCE_NAMES.get(notice.source, notice.source)
    if notice.kind == "source-down":
        since = (
            f"has not answered since {_when(notice.since, notice.time_zone)}"
            if notice.since is not None
            else "has not answered yet"
        )
        return (
            f"{name} {since}. Papers it lists meanwhile will come late, not be lost: they"
            " follow once it is back."
        )
    if notice.kind == "source-back":
        at = f" (it answered at {_when(notice.since, notice.time_zone)})" if notice.since else ""
        return f"{name} is back{at}. The papers it listed meanwhile follow with the next digest."
    since = f" since {_when(notice.since, notice.time_zone)}" if notice.since else ""
    return (
        f"Posting to {notice.about or notice.about_id} is paused{since}:"
        f" {notice.detail.rstrip('. ') or 'no reason given'}."
        f" Once that is fixed: paperbridge resume {notice.about_id}"
    )


@dataclass(slots=True)
class DigestRun:
    """One digest run, shared by the messages it sends, so a publisher can tie them together
    (e.g. post a header message once and put every paper in its thread).

    ``anchor`` belongs to the publisher: it sets it when it posts the run's header (a Slack
    message ts, a Discord thread id) and finds it again on the run's later messages. A run that
    stops halfway (a failure to retry later, a crash) starts afresh with a new header.
    """

    destination_id: str
    subscription_id: str
    # The scheduled time (UTC) this digest is for; None for "now" subscriptions and forced runs.
    slot: datetime | None
    # Papers waiting when the run started (all of them go out in this run unless it fails).
    pending: int = 0
    # Messages this run has sent so far; 0 while sending its first.
    messages: int = 0
    anchor: str | None = None
    # Sources down when the run started: its header says papers may come late.
    outages: tuple[Outage, ...] = ()


def run_notice(run: DigestRun | None, subscription: DigestSubscription | None) -> str:
    """The outage notice for the run's first message (its header), in the subscription's zone;
    later messages of the run carry none."""
    if run is None or run.messages or not run.outages:
        return ""
    return outage_notice(run.outages, subscription.time_zone if subscription else "UTC")


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What a publisher reports for one message.

    - ``sent``: delivered.
    - ``retry``: not delivered this time (rate limit, timeout, 5xx); try again after
      ``retry_after`` seconds, or the ledger's backoff when None.
    - ``permanent``: will not be delivered without a human (channel gone, app removed,
      forbidden); the destination is paused with ``reason``.
    """

    status: OutcomeStatus
    reason: str = ""
    retry_after: float | None = None
    # For "retry": the message may have been posted anyway (a timeout after sending).
    maybe_sent: bool = field(default=False)

    @classmethod
    def sent(cls) -> SendOutcome:
        return cls("sent")

    @classmethod
    def retry(
        cls, reason: str, retry_after: float | None = None, *, maybe_sent: bool = False
    ) -> SendOutcome:
        return cls("retry", reason, retry_after, maybe_sent)

    @classmethod
    def permanent(cls, reason: str) -> SendOutcome:
        return cls("permanent", reason)
