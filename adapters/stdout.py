"""The stdout and file outputs: digests posted as text (papers as ``search`` prints them,
``bridge.paper_text``) or as JSON lines."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from collections.abc import Sequence
from typing import Any, TextIO

from bridge.delivery import (
    Destination,
    DigestItem,
    DigestRun,
    DigestSubscription,
    Notice,
    SendOutcome,
    run_notice,
)
from bridge.paper_text import dumps, format_paper, paper_json, preview, short_authors

__all__ = [
    "FilePublisher",
    "StdoutPublisher",
    "dumps",
    "format_digest",
    "format_notice",
    "format_paper",
    "paper_json",
    "preview",
    "short_authors",
]

# -- publishers: digests to the terminal or to a file ------------------------------------------


def digest_header(subscription: DigestSubscription | None, count: int) -> str:
    about = f" for {subscription.name or subscription.query!r}" if subscription else ""
    if subscription is not None and subscription.top is not None:
        return f"Top {count} of the day by upvotes{about}"
    if count == 0:
        return f"All quiet{about}: nothing new."
    return f"{count} new paper{'s' if count != 1 else ''}{about}"


def format_digest(
    items: Sequence[DigestItem], subscription: DigestSubscription | None, notice: str = ""
) -> str:
    """A digest message as plain text: a header line (and a notice of sources that are down),
    then each paper as `search` prints it."""
    header = digest_header(subscription, len(items))
    parts = [f"{header}\n{notice}" if notice else header]
    parts += [format_paper(item.stored, why=item.why) for item in items]
    return "\n\n".join(parts)


# Shown with a notice sent again after a crash or a timeout: it may have been posted before.
REPEAT_NOTE = "(may repeat an earlier post)"


def format_notice(notice: Notice) -> str:
    """A notice about the bridge itself as one plain-text paragraph."""
    return f"⚠ {notice.text}" + (f" {REPEAT_NOTE}" if notice.uncertain else "")


class StdoutPublisher:
    """Prints digests; handy locally (`destination = "stdout"`) and in demos."""

    kind = "stdout"
    max_papers_per_message = 20

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome:
        return self._write(format_digest(items, subscription, run_notice(run, subscription)))

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        return self._write(format_notice(notice))

    def _write(self, text: str) -> SendOutcome:
        try:
            self.stream.write(text + "\n\n")
            self.stream.flush()
        except OSError as exc:
            return SendOutcome.retry(f"stdout: {exc.strerror or exc}")
        return SendOutcome.sent()


class FilePublisher:
    """Appends each digest message to the file named by the destination's address, as one JSON
    line, and fsyncs it before reporting success: a line in the file is a message sent.

    A line holds the papers' ids ("papers", "uncertain": what scripts and tests count) and the
    papers themselves ("items", as `search --json` renders them, with why each matched), so
    the file can be read as the digest it is. A notice about the bridge itself is a line with
    no papers, its text in "notice" and what it is about in "event".
    """

    kind = "file"

    def __init__(self, max_papers_per_message: int = 10) -> None:
        self.max_papers_per_message = max_papers_per_message

    async def send_digest(
        self,
        destination: Destination,
        items: Sequence[DigestItem],
        *,
        subscription: DigestSubscription | None = None,
        run: DigestRun | None = None,
    ) -> SendOutcome:
        record = {
            "destination": destination.id,
            "subscription": subscription.id if subscription else None,
            "papers": [item.stored.paper.arxiv_id for item in items],
            "uncertain": [item.stored.paper.arxiv_id for item in items if item.uncertain],
            "items": [paper_json(item.stored, item.match.hits, item.why) for item in items],
            "quiet": not items,
            "notice": run_notice(run, subscription),
            "pid": os.getpid(),
        }
        return await self._append(destination, record)

    async def send_notice(self, destination: Destination, notice: Notice) -> SendOutcome:
        record: dict[str, Any] = {
            "destination": destination.id,
            "subscription": None,
            "papers": [],
            "uncertain": [],
            "items": [],
            "quiet": False,
            "notice": notice.text,
            "event": {
                "kind": notice.kind,
                "source": notice.source or None,
                "about": notice.about_id or None,
                "since": notice.since.isoformat() if notice.since else None,
                "uncertain": notice.uncertain,
            },
            "pid": os.getpid(),
        }
        return await self._append(destination, record)

    async def _append(self, destination: Destination, record: dict[str, Any]) -> SendOutcome:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode()
        try:
            await asyncio.to_thread(_append_synced, destination.address, line)
        except FileNotFoundError as exc:
            return SendOutcome.permanent(f"file: no such directory for {exc.filename}")
        except PermissionError as exc:
            return SendOutcome.permanent(f"file: permission denied: {exc.filename}")
        except OSError as exc:
            return SendOutcome.retry(f"file: {exc.strerror or exc}")
        return SendOutcome.sent()


def _append_synced(path: str, data: bytes) -> None:
    # The lock keeps appenders (threads and processes) from interleaving lines, and from
    # taking a line another one is still writing for a torn one. The kernel drops it on a kill.
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if _ends_torn(fd):
            # A process killed inside write() can leave half a line (the uncertain message of
            # the crash, sent again on restart); end it so this line stays readable on its own.
            data = b"\n" + data
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _ends_torn(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"
