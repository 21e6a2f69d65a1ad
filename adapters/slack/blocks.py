"""Papers, search pages and digests as Block Kit messages, always inside Slack's limits.

Pure functions: core types in, ``SlackMessage`` (fallback text + blocks) out. Every piece of
text from a paper or a person goes through ``adapters.slack.mrkdwn`` and is cut to a budget,
so no message can be rejected for its size:

- at most 50 blocks, 3,000 characters per section, 2,000 per button value;
- about 13,200 characters of block text per message, an undocumented limit Slack enforces
  with ``msg_blocks_too_long`` and that counts block containers too (bolt-js #2509, #2867).
  ``weight`` counts every text plus ``BLOCK_OVERHEAD`` per block, and a message stays under
  ``MESSAGE_BUDGET``, well below it.

A paper is two blocks (title and preview; facts, links and why), weighing at most
``PAPER_WEIGHT``, so ``MAX_PAPERS_PER_MESSAGE`` papers and a header always fit one message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

from adapters.slack.mrkdwn import SlackMarkup, clip, escape, inert, inert_within, join_within
from bridge.chat.render import (
    digest_header_text,
    facts,
    links,
    preview_segments,
    results_header,
)
from bridge.chat.service import SearchPage
from bridge.delivery import DigestItem, DigestSubscription, Notice
from bridge.models import Hit, StoredPaper

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_CONTEXT_ELEMENTS = 10
MAX_BUTTON_VALUE = 2000
MAX_FALLBACK_TEXT = 3000
# Slack rejects about 13,200 characters of blocks; containers count, hence the overhead.
BLOCK_OVERHEAD = 50
MESSAGE_BUDGET = 11_500
MAX_PAPERS_PER_MESSAGE = 10

# Budgets in characters of mrkdwn (after escaping) for each piece of a paper.
URL_CHARS = 50  # an arXiv abstract URL
TITLE_CHARS = 160
PREVIEW_CHARS = 340
FACTS_CHARS = 100
LINKS_CHARS = 260
WHY_CHARS = 60
HEADER_CHARS = 300
UNCERTAIN_NOTE = "↻ may repeat an earlier post"
# The most a paper can weigh: its two blocks and every piece at its budget.
PAPER_WEIGHT = (
    2 * BLOCK_OVERHEAD
    + len("*<|>*\n")
    + URL_CHARS
    + TITLE_CHARS
    + PREVIEW_CHARS
    + FACTS_CHARS
    + LINKS_CHARS
    + WHY_CHARS
    + len(UNCERTAIN_NOTE)
)

MORE_ACTION = "papers_more"
SHARE_ACTION = "papers_share"

MARKUP = SlackMarkup()
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,20}")


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """What chat.postMessage or a response_url gets: notification text and blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack does not auto-link URLs or channel names found in paper text.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(clip(text, MAX_SECTION_TEXT))}


def context(*texts: str) -> dict[str, Any]:
    return {
        "type": "context",
        "elements": [_mrkdwn(clip(t, MAX_SECTION_TEXT)) for t in texts if t][:MAX_CONTEXT_ELEMENTS],
    }


def weight(blocks: Sequence[dict[str, Any]]) -> int:
    """What a message costs against Slack's aggregate limit: every text, plus containers."""
    total = BLOCK_OVERHEAD * len(blocks)
    for block in blocks:
        kind = block.get("type")
        if kind == "section" and len(block) == 2:
            total += len(block["text"]["text"])
        elif kind == "context" and len(block) == 2:
            total += sum(len(element["text"]) for element in block["elements"])
        else:
            total += _text_length(block)
    return total


def _text_length(node: Any) -> int:
    if isinstance(node, dict):
        return sum(
            len(value) if key in ("text", "value", "url") and isinstance(value, str) else 0
            for key, value in node.items()
        ) + sum(_text_length(value) for value in node.values() if isinstance(value, dict | list))
    if isinstance(node, list):
        return sum(_text_length(item) for item in node)
    return 0


# -- one paper ------------------------------------------------------------------------------------


def marked_preview(text: str, hits: Sequence[Hit], budget: int = PREVIEW_CHARS) -> str:
    """The start of the abstract (or the part where it matched), matched words in bold, at
    most ``budget`` characters of mrkdwn."""
    out: list[str] = []
    used = 0
    for piece, matched in preview_segments(text, hits):
        rendered = MARKUP.bold(piece) if matched else inert(piece)
        if used + len(rendered) > budget:
            room = budget - used
            if not matched and room > 1:
                out.append(inert_within(piece, room))
            elif room >= 1:
                out.append("…")
            break
        out.append(rendered)
        used += len(rendered)
    return "".join(out)


class _Rendered(NamedTuple):
    blocks: tuple[dict[str, Any], ...]
    weight: int


def paper_blocks(
    stored: StoredPaper,
    hits: Sequence[Hit] = (),
    why: str | None = None,
    *,
    uncertain: bool = False,
) -> list[dict[str, Any]]:
    """Title linked to the paper, a preview with the matched words marked; then authors, day,
    upvotes, category, the paper's links and why it matched."""
    return list(_render(stored, tuple(hits), why, uncertain).blocks)


# A morning sends the same paper, matched the same way, to many channels: it is rendered once.
# Rendered blocks are shared between messages and never changed after they are built.
@lru_cache(maxsize=2048)
def _render(
    stored: StoredPaper, hits: tuple[Hit, ...], why: str | None, uncertain: bool
) -> _Rendered:
    paper = stored.paper
    title = inert_within(" ".join(paper.title.split()) or paper.arxiv_id, TITLE_CHARS)
    head = f"*<{escape(paper.abs_url)}|{title}>*"
    body = paper.abstract or paper.ai_summary or ""
    preview = marked_preview(body, hits if paper.abstract else ())
    blocks = [section(f"{head}\n{preview}" if preview else head)]
    notes = [
        join_within((inert(fact) for fact in facts(paper)), FACTS_CHARS),
        join_within((MARKUP.link(url, label) for label, url in links(paper)), LINKS_CHARS),
    ]
    if why:
        notes.append(f"_{inert_within(why, WHY_CHARS - 2)}_")
    if uncertain:
        notes.append(UNCERTAIN_NOTE)
    if any(notes):
        blocks.append(context(*notes))
    return _Rendered(tuple(blocks), weight(blocks))


def fallback(prefix: str, titles: Sequence[str]) -> str:
    """Notification text (shown where blocks are not, e.g. push notifications)."""
    listed = "; ".join(" ".join(t.split()) for t in titles)
    text = f"{prefix}: {listed}" if listed else prefix
    return inert_within(text, MAX_FALLBACK_TEXT)


# -- digests --------------------------------------------------------------------------------------


def digest_header(
    subscription: DigestSubscription | None, count: int, *, threaded: bool, notice: str = ""
) -> list[dict[str, Any]]:
    """The digest's header blocks; ``notice`` (plain text) says which sources are down."""
    text = clip(f"*{digest_header_text(MARKUP, subscription, count)}*", HEADER_CHARS)
    blocks = [section(text)]
    if notice:
        blocks.append(context(f":warning: {inert(notice)}"))
    if threaded:
        blocks.append(context("The papers are in the thread."))
    return blocks


def header_message(
    subscription: DigestSubscription | None, count: int, notice: str = ""
) -> SlackMessage:
    """The short message a threaded digest hangs its papers under."""
    what = f"{count} new paper{'s' if count != 1 else ''}"
    about = f" for {subscription.query or subscription.name}" if subscription else ""
    return SlackMessage(
        inert_within(what + about, MAX_FALLBACK_TEXT),
        digest_header(subscription, count, threaded=True, notice=notice),
    )


def notice_message(notice: Notice) -> SlackMessage:
    """A notice about the bridge itself (a source down or back, a destination paused): its
    plain text, inert as paper text is, since it quotes what others said (a pause reason)."""
    blocks = [section(f":warning: {inert(notice.text)}")]
    if notice.uncertain:
        blocks.append(context(UNCERTAIN_NOTE))
    return SlackMessage(inert_within(notice.text, MAX_FALLBACK_TEXT), blocks)


def quiet_message(subscription: DigestSubscription | None, notice: str = "") -> SlackMessage:
    about = f" for {subscription.query or subscription.name}" if subscription else ""
    return SlackMessage(
        inert_within(f"All quiet{about}: nothing new today.", MAX_FALLBACK_TEXT),
        digest_header(subscription, 0, threaded=False, notice=notice),
    )


def digest_messages(
    items: Sequence[DigestItem],
    subscription: DigestSubscription | None,
    *,
    header_count: int | None = None,
    notice: str = "",
) -> list[SlackMessage]:
    """Papers as messages. ``header_count``: start the first message with the digest's header
    (the papers of the whole run, and ``notice``). Papers are packed while they fit; with at most
    ``MAX_PAPERS_PER_MESSAGE`` papers that is always one message."""
    messages: list[SlackMessage] = []
    blocks: list[dict[str, Any]] = []
    titles: list[str] = []
    if header_count is not None:
        blocks = digest_header(subscription, header_count, threaded=False, notice=notice)
    used = weight(blocks)
    for item in items:
        hits = item.match.hits
        more = _render(item.stored, hits, item.why if hits else None, item.uncertain)
        if titles and (
            len(blocks) + len(more.blocks) > MAX_BLOCKS or used + more.weight > MESSAGE_BUDGET
        ):
            messages.append(_papers_message(blocks, titles, subscription))
            blocks, titles, used = [], [], 0
        blocks += more.blocks
        used += more.weight
        titles.append(item.stored.paper.title)
    if titles or blocks:
        messages.append(_papers_message(blocks, titles, subscription))
    return messages


def _papers_message(
    blocks: list[dict[str, Any]], titles: list[str], subscription: DigestSubscription | None
) -> SlackMessage:
    count = len(titles)
    prefix = f"{count} paper{'s' if count != 1 else ''}"
    if subscription:
        prefix += f" for {subscription.query or subscription.name}"
    return SlackMessage(fallback(prefix, titles), blocks)


# -- search results -------------------------------------------------------------------------------


def page_value(query: str, page: int, *, top: bool = False) -> str | None:
    """A button's value: the query (or, ``top``, the period of ``/papers top``) and the page
    it leads to; None when too long for Slack."""
    data: dict[str, Any] = {"q": query, "p": page}
    if top:
        data["t"] = 1
    value = json.dumps(data, ensure_ascii=False)
    return value if len(value) <= MAX_BUTTON_VALUE else None


def read_page_value(value: str) -> tuple[str, int, bool] | None:
    """(query or period, page, whether it is a ``/papers top`` page) from a button's value."""
    try:
        data = json.loads(value)
        query, page, top = data["q"], int(data["p"]), bool(data.get("t"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not isinstance(query, str) or not query.strip() or page < 1:
        return None
    return query, page, top


def _button(label: str, action: str, value: str, *, primary: bool = False) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": label},
        "action_id": action,
        "value": value,
    }
    if primary:
        button["style"] = "primary"
    return button


def search_message(
    page: SearchPage, *, buttons: bool = True, shared_by: str | None = None
) -> SlackMessage:
    """One page of results. ``buttons``: "Previous", "More" and "Share in channel" (the
    ephemeral view); ``shared_by``: the user who shared it in the channel."""
    header = results_header(MARKUP, page)
    blocks = [section(header)]
    titles = []
    for result in page.results.items:
        blocks += paper_blocks(result.stored, result.hits, result.why)
        titles.append(result.stored.paper.title)
    if shared_by and _USER_ID.fullmatch(shared_by):
        blocks.append(context(f"Shared by <@{shared_by}>"))
    if buttons and page.results.items:
        actions = []
        top = page.period is not None
        if page.page > 1 and (back := page_value(page.query, page.page - 1, top=top)):
            actions.append(_button("Previous", MORE_ACTION, back))
        if page.has_more and (forward := page_value(page.query, page.page + 1, top=top)):
            actions.append(_button("More", MORE_ACTION, forward))
        if share := page_value(page.query, page.page, top=top):
            actions.append(_button("Share in channel", SHARE_ACTION, share, primary=True))
        if actions:
            blocks.append({"type": "actions", "elements": actions})
    if page.period is not None:
        prefix = f"Most upvoted papers of {page.period.label}"
    elif page.results.items:
        prefix = f"{page.results.total_text} papers match {page.query}"
    else:
        prefix = f"No stored paper matches {page.query}"
    return SlackMessage(fallback(prefix, titles), blocks)


def text_message(text: str) -> SlackMessage:
    """A reply of our own mrkdwn (already escaped): one section per paragraph that fits."""
    blocks = []
    chunk = ""
    for line in text.split("\n"):
        if chunk and len(chunk) + 1 + len(line) > MAX_SECTION_TEXT:
            blocks.append(section(chunk))
            chunk = ""
        chunk = f"{chunk}\n{line}" if chunk else line
    if chunk:
        blocks.append(section(chunk))
    return SlackMessage(clip(text, MAX_FALLBACK_TEXT), blocks[:MAX_BLOCKS])


# -- limits ---------------------------------------------------------------------------------------


def problems(message: SlackMessage) -> list[str]:
    """Every Block Kit limit the message breaks (empty: Slack accepts it)."""
    found = []
    if len(message.blocks) > MAX_BLOCKS:
        found.append(f"{len(message.blocks)} blocks (max {MAX_BLOCKS})")
    if weight(message.blocks) > MESSAGE_BUDGET:
        found.append(f"weighs {weight(message.blocks)} (budget {MESSAGE_BUDGET})")
    if len(message.text) > MAX_FALLBACK_TEXT:
        found.append(f"fallback text of {len(message.text)} characters")
    for number, block in enumerate(message.blocks):
        if block["type"] == "section" and len(block["text"]["text"]) > MAX_SECTION_TEXT:
            found.append(f"block {number}: section of {len(block['text']['text'])} characters")
        if block["type"] == "context":
            elements = block["elements"]
            if not 1 <= len(elements) <= MAX_CONTEXT_ELEMENTS:
                found.append(f"block {number}: context with {len(elements)} elements")
        if block["type"] == "actions":
            for element in block["elements"]:
                if len(element["value"]) > MAX_BUTTON_VALUE:
                    found.append(f"block {number}: button value too long")
    return found
