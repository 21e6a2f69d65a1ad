"""A digest as lines of chat text in any ``bridge.chat.render.Markup``: the header (or the
"continued" line of a run's later messages), then per paper its linked title, authors and
facts, the abstract's start with the matched words in bold, why it matched, and its links.

Shared by the outputs that post one text message per batch (Mattermost, Telegram, Matrix);
each supplies the markup that escapes paper text for its platform, so the words are the
same everywhere and nothing unescaped ever reaches a message.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bridge.chat.render import (
    Markup,
    digest_header_text,
    facts,
    links,
    marked_preview,
)
from bridge.delivery import DigestItem, DigestRun, DigestSubscription, Notice, run_notice
from bridge.models import Paper

PREVIEW_CHARS = 300
# Upstream text has no length limit: a title, the facts line or the reason is cut to this many
# characters before escaping, and a link longer than LINK_CHARS is left out, so one paper
# always fits in a message (a line is never cut, which could break an escape or a tag).
LINE_CHARS = 300
LINK_CHARS = 500
NOTICE_CHARS = 600


def clip(text: str, limit: int = LINE_CHARS) -> str:
    """Plain text cut at a word to at most ``limit`` characters, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    if cut < limit // 2:
        cut = limit - 1
    return text[:cut].rstrip(" ,;:.") + "…"


def short_links(paper: Paper) -> list[tuple[str, str]]:
    """The paper's links that are not absurdly long."""
    return [(label, url) for label, url in links(paper) if len(url) <= LINK_CHARS]


def continued_line(run: DigestRun | None, count: int, per_message: int) -> str:
    """The first line of a run's later messages: which papers of how many."""
    if run is None or run.messages == 0:
        return ""
    first = run.messages * per_message + 1
    last = first + count - 1
    return f"… continued ({first}–{last} of {max(run.pending, last)})"


def header_lines(
    markup: Markup,
    count: int,
    subscription: DigestSubscription | None,
    run: DigestRun | None,
    per_message: int,
) -> list[str]:
    """The run's header (its first message) or its "continued" line, plus any outage note."""
    if count and run is not None and run.messages:
        return [continued_line(run, count, per_message)]
    total = run.pending if run is not None and run.pending and count else count
    lines = [digest_header_text(markup, subscription, total)]
    notice = run_notice(run, subscription)
    if notice:
        lines.append("⚠️ " + markup.text(notice))
    return lines


def paper_lines(markup: Markup, item: DigestItem, preview_chars: int = PREVIEW_CHARS) -> list[str]:
    """One paper as a few lines of safe markup."""
    paper = item.stored.paper
    title = clip(paper.title or paper.arxiv_id)
    lines = [markup.link(paper.abs_url, title) if paper.abs_url else markup.bold(title)]
    about = facts(paper)
    if about:
        lines.append(markup.text(clip(" · ".join(about))))
    text, field = paper.abstract, "abstract"
    if not text and paper.ai_summary:
        text, field = paper.ai_summary, "ai_summary"
    if text and preview_chars > 0:
        lines.append(marked_preview(markup, text, item.match.hits, field, preview_chars))
    again = " (may repeat an earlier post)" if item.uncertain else ""
    lines.append(markup.text(clip(f"↳ {item.why}") + again))
    found = short_links(paper)
    if found:
        lines.append(" · ".join(markup.link(url, label) for label, url in found))
    return lines


def notice_text(markup: Markup, notice: Notice) -> str:
    """A notice about the bridge itself, escaped as paper text is (it quotes others)."""
    note = " (may repeat an earlier post)" if notice.uncertain else ""
    # Cut so that even fully escaped (& is five characters in HTML) it fits any message.
    return "⚠️ " + markup.text(clip(notice.text, NOTICE_CHARS) + note)


def split_text(
    head: str, blocks: Sequence[str], limit: int, measure: Callable[[str], int] = len
) -> list[str]:
    """The header and paper blocks joined into messages of at most ``limit`` (as ``measure``
    counts), a paper never split across two (one longer than ``limit`` alone is cut at a
    line: a cut inside a line could leave half an escape or an open tag)."""
    messages: list[str] = []
    current = head
    for block in blocks:
        if measure(block) > limit:
            block = _cut_lines(block, limit, measure)
        candidate = f"{current}\n\n{block}" if current else block
        if measure(candidate) <= limit:
            current = candidate
            continue
        if current:
            messages.append(current)
        current = block
    if current or not messages:
        messages.append(current)
    return messages


def _cut_lines(block: str, limit: int, measure: Callable[[str], int]) -> str:
    kept: list[str] = []
    for line in block.split("\n"):
        if measure("\n".join([*kept, line])) > limit:
            break
        kept.append(line)
    return "\n".join(kept) or kept_first_line(block, limit, measure)


def kept_first_line(block: str, limit: int, measure: Callable[[str], int]) -> str:
    """A single line too long for a message: only happens with absurd limits; shown cut."""
    line = block.split("\n", 1)[0]
    while line and measure(line) > limit:
        line = line[: max(0, len(line) - max(1, len(line) // 10))]
    return line
