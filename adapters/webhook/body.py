"""The JSON a signed webhook receives (version 1) and its signature.

A digest message::

    {"version": 1, "type": "digest", "id": "…", "sent_at": "2026-06-01T06:00:00Z",
     "digest": {"id": "…", "name": "lab-morning", "query": "generalization", "top": null,
                "part": 1, "notice": null},
     "papers": [{"arxiv_id": "2606.01234", "title": "…", "authors": […], "abstract": "…",
                 "links": {"abs": …, "pdf": …, "hf": …, "code": …, "project": …},
                 "why": "matched …", "hits": […], "uncertain": false, …}]}

A notice about the bridge itself::

    {"version": 1, "type": "notice", "id": "…", "sent_at": "…",
     "notice": {"kind": "source-down", "text": "…", "source": "hf", "since": "…",
                "uncertain": false}}

Fields are only ever added within a version; a change that would break a receiver gets a new
``version``. Paper text is data here, not markup: receivers escape it as they show it.

The signature is GitHub's scheme with a timestamp bound in (as Stripe's): the hex HMAC-SHA256
of ``"<timestamp>.<body>"`` under the secret, sent as ``X-Paperbridge-Signature-256:
sha256=<hex>`` beside ``X-Paperbridge-Timestamp: <unix seconds>``; a receiver recomputes it
over the raw body and refuses a timestamp more than a few minutes old (a replay).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bridge.delivery import DigestItem, DigestRun, DigestSubscription, Notice, run_notice
from bridge.paper_text import paper_json

VERSION = 1
SIGNATURE_HEADER = "X-Paperbridge-Signature-256"
TIMESTAMP_HEADER = "X-Paperbridge-Timestamp"


def _envelope(kind: str, now: datetime | None) -> dict[str, Any]:
    at = (now or datetime.now(UTC)).astimezone(UTC)
    return {
        "version": VERSION,
        "type": kind,
        # New on every attempt; receivers de-duplicate papers by arxiv_id (see "uncertain").
        "id": str(uuid.uuid4()),
        "sent_at": at.isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def digest_body(
    items: Sequence[DigestItem],
    subscription: DigestSubscription | None,
    run: DigestRun | None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    body = _envelope("digest", now)
    body["digest"] = (
        {
            "id": subscription.id,
            "name": subscription.name or None,
            "query": subscription.query,
            "top": subscription.top,
            "part": (run.messages + 1) if run is not None else 1,
            "notice": run_notice(run, subscription) or None,
        }
        if subscription is not None
        else None
    )
    body["papers"] = [
        paper_json(item.stored, item.match.hits, item.why) | {"uncertain": item.uncertain}
        for item in items
    ]
    return body


def notice_body(notice: Notice, *, now: datetime | None = None) -> dict[str, Any]:
    body = _envelope("notice", now)
    body["notice"] = {
        "kind": notice.kind,
        "text": notice.text,
        "source": notice.source or None,
        "since": notice.since.isoformat() if notice.since else None,
        "uncertain": notice.uncertain,
    }
    return body


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, timestamp: int, raw: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``b"<timestamp>." + raw`` under ``secret``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256)
    return "sha256=" + mac.hexdigest()
