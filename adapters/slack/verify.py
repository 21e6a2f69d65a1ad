"""Decide whether an HTTP request really comes from Slack, before Bolt reads a byte of it.

Bolt's own check turns a timestamp header that is not a whole number (``abc``, ``1e3``, empty)
into a 500 with a traceback, decodes the body as UTF-8 and parses its JSON before anything is
verified, and logs every refused body at INFO. Here each request is checked in order: a
timestamp of whole seconds within five minutes of now, the signature over the exact bytes,
then a body Bolt can read (UTF-8, and JSON where JSON is due). A refusal is a 4xx whose text
says what was wrong; the caller logs it in one line, never with the body.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from slack_bolt.request.internals import parse_body

TIMESTAMP_HEADER = "x-slack-request-timestamp"
SIGNATURE_HEADER = "x-slack-signature"
# Slack's own rule: a request signed more than five minutes ago may be a replay.
MAX_AGE_SECONDS = 5 * 60
_SECONDS = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True, slots=True)
class Refusal:
    status: int
    reason: str


class SlackRequestCheck:
    """``check(headers, body)``: None for a request Slack signed with ``signing_secret``."""

    def __init__(self, signing_secret: str, clock: Callable[[], float] = time.time) -> None:
        self._secret = signing_secret.encode()
        self._clock = clock

    def check(self, headers: Mapping[str, str], body: bytes) -> Refusal | None:
        timestamp = headers.get(TIMESTAMP_HEADER)
        if timestamp is None:
            return Refusal(401, "no X-Slack-Request-Timestamp header")
        if not _SECONDS.fullmatch(timestamp):
            return Refusal(400, "X-Slack-Request-Timestamp is not whole seconds since 1970")
        if abs(self._clock() - int(timestamp)) > MAX_AGE_SECONDS:
            return Refusal(401, "X-Slack-Request-Timestamp is more than five minutes off")
        signature = headers.get(SIGNATURE_HEADER)
        if not signature:
            return Refusal(401, "no X-Slack-Signature header")
        expected = (
            "v0="
            + hmac.new(
                self._secret, b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256
            ).hexdigest()
        )
        # As bytes: compare_digest refuses str holding anything but ASCII.
        if not hmac.compare_digest(expected.encode(), signature.encode("latin-1")):
            return Refusal(401, "the signature does not match the body")
        return readable(headers.get("content-type"), body)


def readable(content_type: str | None, body: bytes) -> Refusal | None:
    """Whether Bolt can read ``body``: UTF-8 text that parses, as Bolt parses it, to an object."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Refusal(400, f"the body is not UTF-8 (byte {exc.start})")
    try:
        # The content type as Bolt reads it (adapters' extract_content_type): what decides JSON.
        parsed = parse_body(text, content_type.split(";")[0] if content_type else None)
    except ValueError as exc:  # json.JSONDecodeError is one
        return Refusal(400, f"the body is not valid JSON: {exc}")
    except RecursionError:
        return Refusal(400, "the body is JSON nested too deep")
    if not isinstance(parsed, dict):
        return Refusal(400, f"the body is JSON but not an object ({type(parsed).__name__})")
    return None


__all__ = ["MAX_AGE_SECONDS", "Refusal", "SlackRequestCheck", "readable"]
