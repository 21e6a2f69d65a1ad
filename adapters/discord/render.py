"""Papers and replies as Discord messages: embeds inside every Discord limit, paper text
escaped so it can neither format nor mention, and ``allowed_mentions`` empty on every message.

Pure functions: core types in, ``DiscordMessage`` values out; the publishers and the Cog send
them. Discord rejects a whole message (400) when one limit is passed, so each embed is built
to a character budget (``paper_embed``) and ``pack`` splits anything else into several
messages: nothing is ever cut off by Discord or rejected.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import discord

from bridge.chat.render import (
    facts,
    links,
    marked_preview,
    results_header,
    short_authors,
    top_digest_header_text,
)
from bridge.chat.service import SearchPage
from bridge.delivery import DigestItem, DigestRun, DigestSubscription, Notice, run_notice
from bridge.models import Hit, Paper

# Discord's limits (discord-api-docs, resources/message.mdx).
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
AUTHOR_MAX = 256
EMBEDS_TOTAL_MAX = 6000  # across every embed of one message
EMBEDS_PER_MESSAGE = 10
CONTENT_MAX = 2000
THREAD_NAME_MAX = 100

# Hugging Face's yellow, so the posts are recognisable in a busy channel.
COLOUR = 0xFFD21E
# Queries are shown in headers; a very long one is shown cut.
QUERY_SHOWN = 200

# Nothing in any message we send may ping anyone.
NO_MENTIONS: dict[str, Any] = {"parse": []}


def no_mentions() -> discord.AllowedMentions:
    return discord.AllowedMentions.none()


# -- markup ---------------------------------------------------------------------------------------

# Every character Discord's markdown gives a meaning to, anywhere in a line: emphasis, code,
# spoilers, masked links (the brackets suffice), headings, quotes, and the "<" and "@" that start mentions
# (<@id>, <@&role>, <#channel>, @everyone, @here). A backslash before ASCII punctuation shows
# the character itself, so escaping them all is safe.
_SPECIAL = re.compile(r"([\\*_~|`\[\]<>#@])")
# Inside a web address Discord's autolink wins over emphasis, and a backslash would break the
# link; only what could end the address or open code or a spoiler is escaped there.
_URL = re.compile(r"https?://[^\s<>]+")
_URL_SPECIAL = re.compile(r"([\\*~|`])")
_SPACES = re.compile(r"\s+")
# List markers only mean something at the start of a line.
_LINE_START = re.compile(r"^(\s*)([-+]|\d+)(\.?)(?=\s)")


def escape(text: str) -> str:
    """Paper or user text as Discord markdown that shows exactly that text on one line."""
    flat = _SPACES.sub(" ", text)
    out: list[str] = []
    at = 0
    for url in _URL.finditer(flat):
        out.append(_SPECIAL.sub(r"\\\1", flat[at : url.start()]))
        out.append(_URL_SPECIAL.sub(r"\\\1", url.group()))
        at = url.end()
    out.append(_SPECIAL.sub(r"\\\1", flat[at:]))
    return _LINE_START.sub(_escape_list_marker, "".join(out))


def _escape_list_marker(m: re.Match[str]) -> str:
    space, marker, dot = m.groups()
    if dot:  # "1." starts a numbered list; the backslash goes before the dot
        return f"{space}{marker}\\."
    if marker.isdigit():
        return m.group(0)
    return f"{space}\\{marker}"


class DiscordMarkup:
    """``bridge.chat.render.Markup`` for Discord."""

    def text(self, value: str) -> str:
        return escape(value)

    def bold(self, value: str) -> str:
        inner = escape(value)
        return f"**{inner}**" if inner else ""

    def code(self, value: str) -> str:
        # Nothing inside inline code is markup or a mention; a backtick would end it, so it
        # is shown as the look-alike modifier letter.
        inner = " ".join(value.split()).replace("`", "\u02cb")
        return f"`{inner}`" if inner else ""

    def link(self, url: str, label: str) -> str:
        # Parentheses would end the link early; everything else unsafe was refused by links().
        safe = url.replace("(", "%28").replace(")", "%29")
        return f"[{escape(label)}]({safe})"


MARKUP = DiscordMarkup()


def clip(text: str, limit: int) -> str:
    """Plain text (author, footer, thread names: not markdown) cut at a word to ``limit``."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    if limit <= 1:
        return flat[:limit]
    cut = flat.rfind(" ", 0, limit - 1)
    if cut < limit // 2:
        cut = limit - 1
    return flat[:cut].rstrip(" ,;:.") + "…"


def fitted(raw: str, limit: int, render: Callable[[str], str] = escape) -> str:
    """``render(raw)``, or of the longest cut of ``raw`` whose rendering fits ``limit``. Cutting
    before rendering never leaves half an escape or an unclosed emphasis behind."""
    whole = render(raw)
    if len(whole) <= limit:
        return whole
    low, high = 0, len(raw)
    best = ""
    while low <= high:
        middle = (low + high) // 2
        candidate = render(clip(raw, middle)) if middle else ""
        if len(candidate) <= limit:
            best, low = candidate, middle + 1
        else:
            high = middle - 1
    return best


# -- messages -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DiscordMessage:
    """One message to send: text and embeds, already inside Discord's limits."""

    content: str = ""
    embeds: tuple[discord.Embed, ...] = field(default=())

    def payload(self) -> dict[str, Any]:
        """The JSON body for Discord's create-message and execute-webhook endpoints."""
        body: dict[str, Any] = {"allowed_mentions": dict(NO_MENTIONS)}
        if self.content:
            body["content"] = self.content
        if self.embeds:
            body["embeds"] = [embed.to_dict() for embed in self.embeds]
        return body


def embed_length(embed: discord.Embed) -> int:
    """Characters that count toward the 6,000 of a message (title, description, fields,
    footer and author name), as Discord counts them."""
    return len(embed)


def pack(content: str, embeds: Sequence[discord.Embed]) -> list[DiscordMessage]:
    """``content`` and ``embeds`` as few messages as Discord accepts: content split at line
    ends into pieces of at most 2,000 characters; at most 10 embeds and 6,000 embed characters
    per message (an embed over 6,000 alone is shortened)."""
    pieces = _split_content(content)
    groups: list[list[discord.Embed]] = []
    used = 0
    for embed in embeds:
        if embed_length(embed) > EMBEDS_TOTAL_MAX:
            embed = _shortened(embed)
        size = embed_length(embed)
        if not groups or len(groups[-1]) >= EMBEDS_PER_MESSAGE or used + size > EMBEDS_TOTAL_MAX:
            groups.append([])
            used = 0
        groups[-1].append(embed)
        used += size
    messages = [DiscordMessage(piece) for piece in pieces[:-1]]
    last = pieces[-1] if pieces else ""
    if groups:
        messages.append(DiscordMessage(last, tuple(groups[0])))
        messages += [DiscordMessage("", tuple(group)) for group in groups[1:]]
    elif last:
        messages.append(DiscordMessage(last))
    return messages


def _split_content(content: str) -> list[str]:
    pieces: list[str] = []
    current = ""
    for line in content.splitlines():
        while len(line) > CONTENT_MAX:
            head = clip(line, CONTENT_MAX)
            # A long line is cut at a word and carried on in the next piece.
            rest_at = len(head.rstrip("…"))
            pieces.append(line[:rest_at])
            line = line[rest_at:].lstrip()
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > CONTENT_MAX:
            pieces.append(current)
            current = line
        else:
            current = candidate
    if current:
        pieces.append(current)
    return pieces


def _shortened(embed: discord.Embed) -> discord.Embed:
    over = embed_length(embed) - EMBEDS_TOTAL_MAX
    copy = embed.copy()
    description = copy.description or ""
    copy.description = description[: max(0, len(description) - over - 1)] + "…"
    return copy


# -- papers ---------------------------------------------------------------------------------------


def per_embed_budget(papers: int) -> int:
    """Characters each of ``papers`` embeds may use so that all fit one message."""
    return EMBEDS_TOTAL_MAX // max(1, min(papers, EMBEDS_PER_MESSAGE))


def paper_embed(
    paper: Paper,
    hits: Sequence[Hit] = (),
    why: str | None = None,
    *,
    budget: int = EMBEDS_TOTAL_MAX // 5,
    note: str = "",
) -> discord.Embed:
    """One paper: the title linked to arXiv, the authors, the abstract's start with the
    matched words in bold, why it matched, its links; date, upvotes and category below.
    At most ``budget`` characters (and every per-field limit)."""
    budget = max(120, min(budget, EMBEDS_TOTAL_MAX))
    footer_parts = facts(paper)[1:] if paper.authors else facts(paper)
    if note:
        footer_parts.append(note)
    footer = clip(" · ".join(footer_parts), min(FOOTER_MAX, budget // 6))
    author = clip(short_authors(paper.authors), min(AUTHOR_MAX, budget // 6))
    title = fitted(paper.title or paper.arxiv_id, min(TITLE_MAX, budget // 4))
    room = min(DESCRIPTION_MAX, budget - len(footer) - len(author) - len(title))
    embed = discord.Embed(
        title=title,
        url=paper.abs_url,
        description=describe(paper, hits, why, limit=room),
        colour=COLOUR,
    )
    if author:
        embed.set_author(name=author)
    if footer:
        embed.set_footer(text=footer)
    return embed


def describe(paper: Paper, hits: Sequence[Hit], why: str | None, *, limit: int) -> str:
    """The embed description within ``limit``: preview, why, links; the preview shrinks
    first, then the links go from the end, then the reason."""
    text, field_name = paper.abstract, "abstract"
    if not text and paper.ai_summary:
        text, field_name = paper.ai_summary, "ai_summary"
    available = list(links(paper))
    reason = f"_{escape(why)}_" if why else ""
    every = len(available)
    tries = [(chars, every, True) for chars in (300, 220, 150, 90, 40)]
    tries += [(40, keep, True) for keep in range(every - 1, -1, -1)]
    tries += [(40, 0, False), (0, 0, False)]
    for preview_chars, keep, with_reason in tries:
        preview = (
            marked_preview(MARKUP, text, hits, field_name, preview_chars)
            if text and preview_chars
            else ""
        )
        line = " · ".join(MARKUP.link(url, label) for label, url in available[:keep])
        parts = (preview, reason if with_reason else "", line)
        description = "\n".join(part for part in parts if part)
        if len(description) <= limit:
            return description
    return ""


def result_embeds(page: SearchPage) -> list[discord.Embed]:
    budget = per_embed_budget(len(page.results.items))
    return [
        paper_embed(result.stored.paper, result.hits, result.why, budget=budget)
        for result in page.results.items
    ]


def search_message(page: SearchPage) -> DiscordMessage:
    """One page of results as one message: a header line and an embed per paper."""
    header = results_header(MARKUP, page)
    if page.results.total_capped or page.has_more:
        header += " · use the buttons to page"
    messages = pack(header, result_embeds(page))
    return messages[0]


# -- digests --------------------------------------------------------------------------------------


def query_code(query: str) -> str:
    shown = query if len(query) <= QUERY_SHOWN else clip(query, QUERY_SHOWN)
    return MARKUP.code(shown)


def digest_header(subscription: DigestSubscription | None, count: int, notice: str = "") -> str:
    """The first line of a digest: how many papers, for which query; then ``notice`` (plain
    text: which sources are down) as small print."""
    about = f" for {query_code(subscription.query)}" if subscription else ""
    if subscription is not None and subscription.top is not None:
        line = top_digest_header_text(MARKUP, subscription, count)
        line = f"🏆 **{line}**" if count else line
    elif count == 0:
        line = f"All quiet{about}: nothing new today."
    else:
        line = f"📰 **{count} new paper{'s' if count != 1 else ''}**{about}"
    return f"{line}\n-# ⚠️ {escape(notice)}" if notice else line


def thread_name(subscription: DigestSubscription | None, day: str) -> str:
    """A digest thread's name (plain text, at most 100 characters)."""
    about = subscription.name or subscription.query if subscription else "papers"
    return clip(f"{about} · {day}", THREAD_NAME_MAX)


def digest_embeds(items: Sequence[DigestItem], per_message: int) -> list[discord.Embed]:
    budget = per_embed_budget(per_message)
    return [
        paper_embed(
            item.stored.paper,
            item.match.hits,
            item.why,
            budget=budget,
            note="may repeat an earlier post" if item.uncertain else "",
        )
        for item in items
    ]


def continued_line(run: DigestRun | None, count: int, per_message: int) -> str:
    """The line on a digest's later messages: which papers of how many."""
    if run is None or run.messages == 0:
        return ""
    first = run.messages * per_message + 1
    last = first + count - 1
    total = max(run.pending, last)
    return f"… continued ({first}–{last} of {total})"


def digest_messages(
    items: Sequence[DigestItem],
    subscription: DigestSubscription | None,
    run: DigestRun | None,
    per_message: int,
    *,
    header: bool = True,
) -> list[DiscordMessage]:
    """One ledger batch as messages (one, since a batch is at most ``per_message`` papers).
    With ``header`` the run's first message opens with the digest's header line and later
    ones say which papers they continue with; without it (papers in a thread under a
    header) they carry embeds only. No items: the all-quiet note."""
    notice = run_notice(run, subscription)
    if not items:
        return pack(digest_header(subscription, 0, notice), [])
    content = ""
    if header:
        first = run is None or run.messages == 0
        total = run.pending if run is not None and run.pending else len(items)
        content = (
            digest_header(subscription, total, notice)
            if first
            else continued_line(run, len(items), per_message)
        )
    return pack(content, digest_embeds(items, per_message))


def notice_message(notice: Notice) -> DiscordMessage:
    """A notice about the bridge itself (a source down or back, a destination paused): its
    plain text escaped as paper text is, since it quotes what others said (a pause reason)."""
    note = "\n-# may repeat an earlier post" if notice.uncertain else ""
    return DiscordMessage(f"⚠️ {fitted(notice.text, CONTENT_MAX - 40)}{note}")


PHRASE_EXAMPLE = '/papers search query:"world model" -survey'


def help_text() -> str:
    """How to use ``/papers`` on Discord (the same examples as every platform's help, in
    Discord's option syntax)."""
    c = MARKUP.code
    return "\n".join(
        [
            "**Search** every paper the bridge has seen (only you see the results; share"
            " them with the button):",
            f"• {c('/papers search query:generalization')}  finds generalisation, generalize,"
            " generalizable",
            f"• {c(PHRASE_EXAMPLE)}  a phrase, without surveys",
            f"• {c('/papers search query:title:diffusion upvotes>=10 cat:cs.LG')}  fields,"
            " HF upvotes, arXiv categories",
            f"• {c('/papers search query:(LLM OR VLM) agents author:lecun')}  OR, groups, authors",
            "**Morning posts** in this channel (members who can manage the channel):",
            f"• {c('/papers subscribe query:generalization time:08:00 time_zone:Europe/Berlin')}"
            "  new matches each morning",
            f"• {c('/papers subscribe query:RLHF time:now')}  right after each poll;"
            f" {c('all_quiet:True')} adds a note on days with nothing new",
            f"• {c('/papers list')}, {c('/papers unsubscribe which:1')},"
            f" {c('/papers unsubscribe which:all')}, {c('/papers now')}",
        ]
    )
