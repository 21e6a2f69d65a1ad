"""A digest as one email: a plain-text part (papers as ``search`` prints them) and an HTML
part (the chat outputs' rendering: matched words bold, why each paper matched, its links),
with the headers mail clients and list filters use.

Paper text is upstream data: in the HTML every piece of it goes through ``html.escape`` (the
``HtmlMarkup`` below, the same seam Slack's and Discord's escaping plugs into), and nothing
from it reaches a header unflattened: the subject's title is cut to one line of printable
characters, so no CR/LF can start a header of its own.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import quote

from adapters.email.settings import EmailSettings
from bridge.chat.render import digest_header_text, facts, links, marked_preview
from bridge.delivery import DigestItem, DigestRun, DigestSubscription, Notice, run_notice
from bridge.paper_text import format_paper

SUBJECT_TITLE_CHARS = 80
# After a crash or a timeout past DATA, the mail may have been delivered before.
REPEAT_NOTE = "(may repeat an earlier mail)"
# Anything that is not a printable character on one line (CR, LF, tabs, other controls,
# Unicode line and paragraph separators) becomes one space in a header.
_NOT_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\s]+")


class HtmlMarkup:
    """``bridge.chat.render.Markup`` for HTML: everything escaped, attributes quoted."""

    def text(self, value: str) -> str:
        return html.escape(value)

    def bold(self, value: str) -> str:
        return f"<strong>{html.escape(value)}</strong>"

    def code(self, value: str) -> str:
        return f"<code>{html.escape(value)}</code>"

    def link(self, url: str, label: str) -> str:
        return f'<a href="{html.escape(url, quote=True)}">{html.escape(label)}</a>'


class PlainMarkup:
    """The same wording as plain text (the subject line, the text part's header)."""

    def text(self, value: str) -> str:
        return value

    def bold(self, value: str) -> str:
        return value

    def code(self, value: str) -> str:
        return f"“{value}”"

    def link(self, url: str, label: str) -> str:
        return f"{label} <{url}>"


HTML = HtmlMarkup()
PLAIN = PlainMarkup()


def one_line(value: str, limit: int | None = None) -> str:
    """``value`` safe inside a header: one line, no control characters, at most ``limit``."""
    flat = _NOT_ONE_LINE.sub(" ", value).strip()
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return flat


def digest_name(subscription: DigestSubscription | None) -> str:
    if subscription is None:
        return "papers"
    return subscription.name or subscription.query or "top papers"


def list_id(settings: EmailSettings, subscription: DigestSubscription | None) -> str:
    """``"name" <slug.paperbridge.domain>`` (RFC 2919): one list per digest, so a mail filter
    can sort each digest on its own."""
    name = digest_name(subscription)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-") or "digest"
    label = one_line(name, 60).replace("\\", "").replace('"', "")
    return f'"{label}" <{slug}.paperbridge.{settings.sender_domain}>'


def list_unsubscribe(settings: EmailSettings, subscription: DigestSubscription | None) -> str:
    """A configured address or page; by default a mail to the from address (whoever runs the
    bridge reads it and edits the settings: digests are declared there, not self-served)."""
    if settings.unsubscribe:
        return f"<{settings.unsubscribe}>"
    subject = quote(f"unsubscribe {one_line(digest_name(subscription), 80)}", safe="")
    return f"<mailto:{settings.sender}?subject={subject}>"


def subject_line(
    items: Sequence[DigestItem], subscription: DigestSubscription | None, run: DigestRun | None
) -> str:
    header = one_line(digest_header_text(PLAIN, subscription, len(items)))
    if run is not None and run.messages:
        header += " (continued)"
    if items:
        first = one_line(items[0].stored.paper.title, SUBJECT_TITLE_CHARS)
        if first:
            header += f": {first}"
            if len(items) > 1:
                header += " …"
    return header


def digest_message(
    settings: EmailSettings,
    to: str,
    items: Sequence[DigestItem],
    subscription: DigestSubscription | None,
    run: DigestRun | None,
    *,
    now: datetime | None = None,
) -> EmailMessage:
    notice = run_notice(run, subscription)
    header = digest_header_text(PLAIN, subscription, len(items))
    text = "\n\n".join(
        [header + (f"\n{notice}" if notice else "")]
        + [
            format_paper(item.stored, why=item.why)
            + (f"\n  {REPEAT_NOTE}" if item.uncertain else "")
            for item in items
        ]
    )
    message = _envelope(settings, to, subject_line(items, subscription, run), subscription, now)
    # Quoted-printable keeps the message 7-bit: any server takes it, 8BITMIME or not.
    message.set_content(text + _text_footer(subscription) + "\n", cte="quoted-printable")
    message.add_alternative(
        _html_digest(items, subscription, notice), subtype="html", cte="quoted-printable"
    )
    return message


def notice_message(
    settings: EmailSettings, to: str, notice: Notice, *, now: datetime | None = None
) -> EmailMessage:
    """A notice about the bridge itself (a source down or back, a destination paused)."""
    text = notice.text + (f" {REPEAT_NOTE}" if notice.uncertain else "")
    message = _envelope(settings, to, "paperbridge: " + one_line(text, 90), None, now)
    message.set_content(text + "\n", cte="quoted-printable")
    message.add_alternative(
        _page("paperbridge", f"<p>{html.escape(text)}</p>"),
        subtype="html",
        cte="quoted-printable",
    )
    return message


def _envelope(
    settings: EmailSettings,
    to: str,
    subject: str,
    subscription: DigestSubscription | None,
    now: datetime | None,
) -> EmailMessage:
    message = EmailMessage()
    message["From"] = Address(one_line(settings.sender_name), addr_spec=settings.sender)
    message["To"] = Address(addr_spec=to)
    message["Subject"] = one_line(subject, 200)
    message["Date"] = format_datetime(now or datetime.now(UTC))
    message["Message-ID"] = make_msgid("paperbridge", domain=settings.sender_domain)
    message["List-Id"] = list_id(settings, subscription)
    message["List-Unsubscribe"] = list_unsubscribe(settings, subscription)
    # Not an out-of-office trigger, not a bounce target for autoresponders (RFC 3834).
    message["Auto-Submitted"] = "auto-generated"
    message["Precedence"] = "list"
    return message


def _text_footer(subscription: DigestSubscription | None) -> str:
    if subscription is None:
        return ""
    return f"\n\n-- \nSent by paperbridge for the digest “{one_line(digest_name(subscription))}”."


def _html_digest(
    items: Sequence[DigestItem], subscription: DigestSubscription | None, notice: str
) -> str:
    header = digest_header_text(HTML, subscription, len(items))
    body = [f"<h1>{header}</h1>"]
    if notice:
        body.append(f'<p class="notice">{html.escape(notice)}</p>')
    for item in items:
        body.append(_html_paper(item))
    if subscription is not None:
        body.append(
            '<p class="footer">Sent by paperbridge for the digest'
            f" {html.escape(digest_name(subscription))}.</p>"
        )
    return _page(one_line(digest_header_text(PLAIN, subscription, len(items))), "\n".join(body))


def _html_paper(item: DigestItem) -> str:
    paper = item.stored.paper
    paper_links = links(paper)
    title = html.escape(paper.title or paper.arxiv_id)
    if paper_links:
        title = f'<a href="{html.escape(paper_links[0][1], quote=True)}">{title}</a>'
    parts = [f'<div class="paper">\n<h2>{title}</h2>']
    if line := " · ".join(facts(paper)):
        parts.append(f'<p class="facts">{html.escape(line)}</p>')
    if item.why:
        parts.append(f'<p class="why">{html.escape(item.why)}</p>')
    if paper.abstract:
        parts.append(f"<p>{marked_preview(HTML, paper.abstract, item.match.hits)}</p>")
    if paper_links:
        parts.append(
            '<p class="links">'
            + " · ".join(HTML.link(url, label) for label, url in paper_links)
            + "</p>"
        )
    if item.uncertain:
        parts.append(f'<p class="facts">{REPEAT_NOTE}</p>')
    parts.append("</div>")
    return "\n".join(parts)


# A small stylesheet in the head (no linked one: mail clients do not fetch them); a client
# that drops it still shows a plain, readable page.
_STYLE = (
    "body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:720px;"
    "margin:0 auto;padding:16px;color:#1f2328}h1{font-size:20px}h2{font-size:16px;margin:18px 0 4px}"
    "a{color:#0969da}.facts,.why,.footer,.notice{color:#59636e;font-size:13px;margin:2px 0}"
)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
