"""Platform-neutral pieces of chat messages: which words to mark in a preview, the facts line,
the links, and the wording of every reply. Each platform supplies a ``Markup`` that escapes
text and spells bold, code and links its own way, so paper text can never inject markup or
mentions, and Slack and Discord say the same things.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Protocol

from bridge.chat.service import NowReport, SearchPage
from bridge.delivery import DigestSubscription
from bridge.models import Hit, Paper
from bridge.query.hints import empty_result_hints

PREVIEW_CHARS = 300
AUTHORS_SHOWN = 3


class Markup(Protocol):
    """How one platform writes text. Every method returns safe markup: ``text`` escapes
    anything that could format, mention or link, and the others escape their argument too."""

    def text(self, value: str) -> str: ...

    def bold(self, value: str) -> str: ...

    def code(self, value: str) -> str: ...

    def link(self, url: str, label: str) -> str: ...


# -- previews with the matched words marked ------------------------------------------------------


def preview_segments(
    text: str, hits: Sequence[Hit], field: str = "abstract", limit: int = PREVIEW_CHARS
) -> list[tuple[str, bool]]:
    """The start of ``text`` (cut at a word, about ``limit`` characters) as (piece, matched)
    pairs, the matched pieces being ``hits`` in ``field``. When the first match lies beyond the
    cut, the preview starts shortly before it instead ("… with better generalisation …"), so
    the reader sees why the paper is there."""
    spans = sorted(
        {(h.start, h.end) for h in hits if h.field == field and 0 <= h.start < h.end <= len(text)}
    )
    start = 0
    if spans and spans[0][1] > limit - 20:
        start = _word_start(text, max(0, spans[0][0] - limit // 4))
    end = _word_end(text, start + limit)
    pieces: list[tuple[str, bool]] = []
    if start > 0:
        pieces.append(("…", False))
    at = start
    for low, high in spans:
        low, high = max(low, at), min(high, end)
        if low >= high:
            continue
        if low > at:
            pieces.append((text[at:low], False))
        pieces.append((text[low:high], True))
        at = high
    if at < end:
        pieces.append((text[at:end], False))
    if end < len(text):
        if pieces and not pieces[-1][1]:
            pieces[-1] = (pieces[-1][0].rstrip(" ,;:."), False)
        pieces.append(("…", False))
    return pieces


def _word_start(text: str, index: int) -> int:
    space = text.find(" ", index)
    return space + 1 if 0 <= space < index + 30 else index


def _word_end(text: str, index: int) -> int:
    if index >= len(text):
        return len(text)
    space = text.rfind(" ", 0, index)
    return space if space > index - 60 else index


def marked_preview(
    markup: Markup,
    text: str,
    hits: Sequence[Hit],
    field: str = "abstract",
    limit: int = PREVIEW_CHARS,
) -> str:
    """``preview_segments`` written in ``markup``: matched words bold, everything escaped."""
    return "".join(
        markup.bold(piece) if matched else markup.text(piece)
        for piece, matched in preview_segments(text, hits, field, limit)
    )


# -- facts and links ------------------------------------------------------------------------------


def short_authors(authors: Sequence[str], keep: int = AUTHORS_SHOWN) -> str:
    if len(authors) <= keep:
        return ", ".join(authors)
    return f"{', '.join(authors[:keep])} +{len(authors) - keep} more"


def paper_day(paper: Paper) -> date | None:
    return paper.listed_on or (paper.published_at.date() if paper.published_at else None)


def facts(paper: Paper) -> list[str]:
    """Plain facts for a context line: authors, day, upvotes, primary category."""
    out: list[str] = []
    if paper.authors:
        out.append(short_authors(paper.authors))
    day = paper_day(paper)
    if day:
        out.append(day.isoformat())
    if paper.upvotes is not None:
        out.append(f"▲ {paper.upvotes}")
    category = paper.primary_category or (paper.categories[0] if paper.categories else None)
    if category:
        out.append(category)
    return out


def links(paper: Paper) -> list[tuple[str, str]]:
    """(label, url) for the paper's pages: arXiv, PDF, Hugging Face, code, project."""
    out = [("arXiv", paper.abs_url), ("PDF", paper.pdf_link)]
    if "hf" in paper.sources:
        out.append(("HF", paper.hf_url))
    if paper.github_repo:
        out.append(("code", paper.github_repo))
    if paper.project_page:
        out.append(("project", paper.project_page))
    return [(label, url) for label, url in out if _is_web_url(url)]


def _is_web_url(url: str) -> bool:
    # Links come from upstream data: only plain web links, never javascript: or data: ones,
    # and nothing that could close a markup link early.
    return url.startswith(("https://", "http://")) and not any(c in url for c in " <>|\n\"'`")


def links_line(markup: Markup, paper: Paper) -> str:
    return " · ".join(markup.link(url, label) for label, url in links(paper))


# -- replies ----------------------------------------------------------------------------------


def when_text(sub: DigestSubscription) -> str:
    if sub.immediate:
        return "right after each poll"
    return f"every morning at {sub.local_time} ({sub.time_zone})"


def subscribed_text(markup: Markup, sub: DigestSubscription, created: bool) -> str:
    what = "Subscribed" if created else "Updated the subscription"
    quiet = ", with a note on days with nothing new" if sub.all_quiet else ""
    return (
        f"{what}: this channel gets new papers matching {markup.code(sub.query)}"
        f" {when_text(sub)}{quiet}."
    )


def unsubscribed_text(markup: Markup, removed: Sequence[DigestSubscription]) -> str:
    if len(removed) == 1:
        return f"Unsubscribed from {markup.code(removed[0].query)}."
    return f"Unsubscribed from all {len(removed)} subscriptions of this channel."


def list_text(markup: Markup, subs: Sequence[DigestSubscription]) -> str:
    if not subs:
        return "This channel has no subscriptions. Try " + markup.code(
            "subscribe generalization at 08:00"
        )
    lines = [f"This channel's subscriptions ({len(subs)}):"]
    for number, sub in enumerate(subs, 1):
        quiet = ", all-quiet notes" if sub.all_quiet else ""
        lines.append(f"{number}. {markup.code(sub.query)} {when_text(sub)}{quiet}")
    return "\n".join(lines)


def now_text(report: NowReport) -> str:
    posted = [sub for sub in report.subscriptions if report.outcomes.get(sub.id) == "sent"]
    problems = {
        report.outcomes[sub.id]
        for sub in report.subscriptions
        if report.outcomes.get(sub.id) not in ("sent", "empty", "quiet")
    }
    if posted:
        text = f"Posted new papers for {len(posted)} of {len(report.subscriptions)} subscriptions."
    else:
        text = "Nothing new since the last post."
    if "paused" in problems:
        text += " Posting here is paused after an error; subscribe again once the app can post."
    elif problems - {"busy"}:
        text += " Some posts failed and will be retried."
    elif "busy" in problems:
        text += " A post for this channel is already under way."
    return text


def results_header(markup: Markup, page: SearchPage) -> str:
    results = page.results
    if page.period is not None:
        return top_header(markup, page)
    if not results.items:
        hints = "".join(f"\n{markup.text(hint)}" for hint in empty_result_hints(page.query))
        return f"No stored paper matches {markup.code(page.query)}.{hints}"
    last = page.first_number + len(results.items) - 1
    return (
        f"{results.total_text} papers match {markup.code(page.query)}"
        f" (showing {page.first_number}–{last})"
    )


def top_header(markup: Markup, page: SearchPage) -> str:
    """The line above a page of ``/papers top``."""
    assert page.period is not None
    period, results = page.period, page.results
    if period.first is None:
        return "No papers are listed yet: the first poll or import is still to come."
    label = markup.text(period.label)
    if not results.items and not results.total:
        hint = ""
        if period.spec not in ("today", "week", "month"):
            hint = " (listings come on weekdays; try " + markup.code("top week") + ")"
        return f"No papers were listed for {label}{hint}."
    if not results.items:
        return f"There are {results.total:,} papers for {label}; this page is past the last one."
    last = page.first_number + len(results.items) - 1
    return (
        f"Most upvoted papers of {label}: {results.total:,} listed"
        f" (showing {page.first_number}–{last})"
    )


def digest_header_text(markup: Markup, sub: DigestSubscription | None, count: int) -> str:
    if sub is not None and sub.top is not None:
        return top_digest_header_text(markup, sub, count)
    about = f" for {markup.code(sub.query)}" if sub else ""
    if count == 0:
        return f"All quiet{about}: nothing new today."
    return f"{count} new paper{'s' if count != 1 else ''}{about}"


def top_digest_header_text(markup: Markup, sub: DigestSubscription, count: int) -> str:
    """A "top N of the day" digest's first line."""
    about = f" matching {markup.code(sub.query)}" if sub.query.strip() else ""
    if count == 0:
        return f"Nothing new among the most upvoted papers of the day{about}."
    return f"Top {count} of the day by upvotes{about}"


def help_text(markup: Markup, command: str = "/papers") -> str:
    c = markup.code
    return "\n".join(
        [
            f"{markup.bold('Search')} every paper the bridge has seen:",
            f"• {c(f'{command} generalization')}  finds generalisation, generalize, generalizable",
            f"• {c(command + ' ' + chr(34) + 'world model' + chr(34) + ' -survey')}"
            "  a phrase, without surveys",
            f"• {c(f'{command} title:diffusion upvotes>=10 cat:cs.LG')}"
            "  fields, HF upvotes, arXiv categories",
            f"• {c(f'{command} (LLM OR VLM) agents author:lecun')}  OR, groups, authors",
            f"{markup.bold('Morning posts')} in this channel:",
            f"• {c(f'{command} subscribe generalization at 08:00 Europe/Berlin')}"
            "  new matches each morning",
            f"• {c(f'{command} subscribe RLHF at now')}  right after each poll;"
            f" add {c('+quiet')} for a note on empty days",
            f"{markup.bold('Top papers')} like huggingface.co/papers:",
            f"• {c(f'{command} top')}  the most upvoted papers of the latest listing day;"
            f" {c(f'{command} top week')}, {c(f'{command} top month')},"
            f" {c(f'{command} top 2024-08-01')}",
            f"{markup.bold('Manage')} this channel's posts:",
            f"• {c(f'{command} list')}, {c(f'{command} unsubscribe 1')},"
            f" {c(f'{command} unsubscribe all')}, {c(f'{command} now')}",
        ]
    )
