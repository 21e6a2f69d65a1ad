"""Digests as Adaptive Cards for a Teams Workflows webhook ("Post to a channel when a webhook
request is received"), each message within Teams' size limit.

A TextBlock reads a small markdown (``**bold**``, ``_italic_``, ``[label](url)``, lists) with no
escape character Teams honours, so paper text gets look-alike characters for the marks that
could format or link (``* _ [ ] ` ~``), a list marker at its start is changed, and ``<`` becomes
``＜`` (``<at>name</at>`` is how a card mentions someone). Our own bold and links are added
around text treated that way only.

Teams refuses a message over about 28 KB; every message's JSON is kept under ``BYTES_MAX``,
splitting a digest between papers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from adapters.chat_text import clip, short_links
from bridge.chat.render import digest_header_text, facts, marked_preview
from bridge.delivery import DigestItem, DigestRun, DigestSubscription, Notice, run_notice

BYTES_MAX = 26_000  # Teams' limit is ~28 KB of JSON; room left for the envelope's headers
PREVIEW_CHARS = 300
CODE_CHARS = 200
_INERT = str.maketrans(
    {
        "*": "\u2217",  # ∗
        "_": "\u02cd",  # ˍ
        "[": "\uff3b",  # ［
        "]": "\uff3d",  # ］
        "`": "\u02cb",  # ˋ
        "~": "\u223c",  # ∼
        "<": "\uff1c",  # ＜
        "\\": "\u29f5",  # ⧵
    }
)
_SPACES = re.compile(r"\s+")
_LIST_START = re.compile(r"^(\s*)(?:([-+])|(\d+)\.)(?=\s)")


def inert(value: str) -> str:
    """Untrusted text that shows as itself in a TextBlock, on one line."""
    out = _SPACES.sub(" ", value).translate(_INERT)
    return _LIST_START.sub(_list_marker, out)


def _list_marker(m: re.Match[str]) -> str:
    space, dash, number = m.groups()
    return f"{space}\u2010" if dash else f"{space}{number}\u2024"  # ‐ hyphen, ․ one-dot leader


class TeamsMarkup:
    """``bridge.chat.render.Markup`` for Adaptive Card TextBlocks."""

    def text(self, value: str) -> str:
        return inert(value)

    def bold(self, value: str) -> str:
        core = value.strip()
        if not core:
            return inert(value)
        lead = value[: len(value) - len(value.lstrip())]
        trail = value[len(value.rstrip()) :]
        return f"{lead}**{inert(core)}**{trail}"

    def code(self, value: str) -> str:
        # Cards have no code span: the query is quoted instead.
        shown = value if len(value) <= CODE_CHARS else value[: CODE_CHARS - 1] + "…"
        return f"“{inert(shown)}”"

    def link(self, url: str, label: str) -> str:
        safe = url.replace("(", "%28").replace(")", "%29")
        return f"[{inert(label)}]({safe})"


MARKUP = TeamsMarkup()


def _block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def paper_blocks(item: DigestItem) -> list[dict[str, Any]]:
    """One paper: linked title, facts, preview with matched words bold, why, links."""
    paper = item.stored.paper
    title = clip(paper.title or paper.arxiv_id)
    blocks = [
        _block(MARKUP.link(paper.abs_url, title), weight="Bolder", separator=True, spacing="Medium")
    ]
    about = facts(paper)
    if about:
        line = inert(clip(" · ".join(about)))
        blocks.append(_block(line, isSubtle=True, size="Small", spacing="None"))
    text, field = paper.abstract, "abstract"
    if not text and paper.ai_summary:
        text, field = paper.ai_summary, "ai_summary"
    if text:
        blocks.append(_block(marked_preview(MARKUP, text, item.match.hits, field, PREVIEW_CHARS)))
    again = " (may repeat an earlier post)" if item.uncertain else ""
    blocks.append(_block(inert(clip(f"↳ {item.why}") + again), isSubtle=True, spacing="Small"))
    found = short_links(paper)
    if found:
        line = " · ".join(MARKUP.link(url, label) for label, url in found)
        blocks.append(_block(line, spacing="Small"))
    return blocks


def header_blocks(
    count: int, subscription: DigestSubscription | None, run: DigestRun | None, per_message: int
) -> list[dict[str, Any]]:
    if count and run is not None and run.messages:
        first = run.messages * per_message + 1
        last = first + count - 1
        line = f"… continued ({first}–{last} of {max(run.pending, last)})"
        return [_block(line, isSubtle=True)]
    total = run.pending if run is not None and run.pending and count else count
    blocks = [
        _block(digest_header_text(MARKUP, subscription, total), size="Medium", weight="Bolder")
    ]
    notice = run_notice(run, subscription)
    if notice:
        blocks.append(_block("⚠️ " + inert(notice), color="Warning"))
    return blocks


def message(body: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The webhook's JSON: one Adaptive Card as an attachment."""
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.4",
                    "msteams": {"width": "Full"},
                    "body": list(body),
                },
            }
        ],
    }


def size(payload: dict[str, Any]) -> int:
    """What Teams counts: the bytes of the JSON sent."""
    return len(json.dumps(payload, ensure_ascii=False).encode())


def digest_messages(
    items: Sequence[DigestItem],
    subscription: DigestSubscription | None,
    run: DigestRun | None,
    per_message: int,
    limit: int = BYTES_MAX,
) -> list[dict[str, Any]]:
    """One ledger batch as cards, split between papers to stay under ``limit`` bytes."""
    cards: list[list[dict[str, Any]]] = [header_blocks(len(items), subscription, run, per_message)]
    for item in items:
        blocks = paper_blocks(item)
        if size(message(cards[-1] + blocks)) > limit and cards[-1]:
            cards.append([])
        while size(message(cards[-1] + blocks)) > limit and len(blocks) > 1:
            blocks = blocks[:-1]  # an absurd paper: its last blocks go (links, then why)
        cards[-1] += blocks
    return [message(body) for body in cards if body]


def notice_message(notice: Notice) -> dict[str, Any]:
    note = " (may repeat an earlier post)" if notice.uncertain else ""
    return message([_block("⚠️ " + inert(clip(notice.text, 2000) + note), color="Warning")])
