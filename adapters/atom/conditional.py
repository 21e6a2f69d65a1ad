"""HTTP validators for rendered bytes: strong ETag, Last-Modified, and when to answer 304."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime


def strong_etag(body: bytes) -> str:
    # A hash of the exact bytes: equal bytes, equal tag, in every process and after restarts.
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def http_date(moment: datetime) -> str:
    return format_datetime(moment.replace(microsecond=0), usegmt=True)


@dataclass(frozen=True, slots=True)
class Rendered:
    """Bytes ready to send, with their validators; built once per data version."""

    body: bytes
    media_type: str
    last_modified: datetime
    cache_control: str
    vary: str = "Accept"
    etag: str = field(init=False)
    last_modified_http: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "etag", strong_etag(self.body))
        object.__setattr__(self, "last_modified_http", http_date(self.last_modified))

    def validator_headers(self) -> dict[str, str]:
        """Headers a 200 and a 304 share (RFC 9110 §15.4.5 wants them on the 304 too)."""
        return {
            "ETag": self.etag,
            "Last-Modified": self.last_modified_http,
            "Cache-Control": self.cache_control,
            "Vary": self.vary,
        }


def _opaque(tag: str) -> str:
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def not_modified(
    rendered: Rendered, if_none_match: str | None, if_modified_since: str | None
) -> bool:
    """Whether a GET carrying these headers may be answered 304 (RFC 9110 §13.1-13.2).

    If-None-Match wins; If-Modified-Since counts only without it. If-None-Match compares
    weakly, as the RFC says for GET: a proxy may have weakened our strong tag.
    """
    if if_none_match is not None:
        if if_none_match == rendered.etag:
            # What a reader polling a feed sends back: our tag as we sent it. Saves the
            # parse below (2 µs, a tenth of what a cached 304 costs the app).
            return True
        if if_none_match.strip() == "*":
            return True
        wanted = _opaque(rendered.etag)
        # Bounded: a header of a million commas must not cost a million-item list.
        return any(_opaque(tag) == wanted for tag in if_none_match.split(",", 64)[:64])
    if if_modified_since is not None and len(if_modified_since) < 64:
        try:
            since = parsedate_to_datetime(if_modified_since)
        except (TypeError, ValueError, IndexError):
            return False
        if since.tzinfo is None:
            return False
        return rendered.last_modified.replace(microsecond=0) <= since
    return False
