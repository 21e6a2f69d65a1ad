"""Telegram's HTML parse mode, written so that paper text can never format, link or mention.

Telegram accepts only a few tags (``b i u s a code pre blockquote tg-spoiler``) and reads
``&lt; &gt; &amp; &quot;``; paper text is entity-escaped, so ``<b>`` in a title shows as text.
Telegram also turns ``@username`` in any text into a mention (the user is notified when in
the chat), so a word joiner (U+2060, invisible) goes after every ``@`` of paper text.
"""

from __future__ import annotations

import html
import re

_SPACES = re.compile(r"\s+")

ELLIPSIS = "…"
CODE_CHARS = 200
WORD_JOINER = "\u2060"


def escape(value: str) -> str:
    """Untrusted text as Telegram HTML showing exactly that text on one line."""
    flat = _SPACES.sub(" ", value)
    return html.escape(flat, quote=False).replace("@", "@" + WORD_JOINER)


class TelegramMarkup:
    """``bridge.chat.render.Markup`` for Telegram's HTML."""

    def text(self, value: str) -> str:
        return escape(value)

    def bold(self, value: str) -> str:
        inner = escape(value)
        return f"<b>{inner}</b>" if inner.strip() else inner

    def code(self, value: str) -> str:
        shown = value if len(value) <= CODE_CHARS else value[: CODE_CHARS - 1] + ELLIPSIS
        return f"<code>{escape(shown)}</code>"

    def link(self, url: str, label: str) -> str:
        # links() refused URLs with quotes, spaces or angle brackets; & is escaped for HTML.
        return f'<a href="{html.escape(url, quote=True)}">{escape(label)}</a>'


MARKUP = TelegramMarkup()


def utf16_length(text: str) -> int:
    """Telegram counts a message's length in UTF-16 code units (an emoji is two)."""
    return len(text.encode("utf-16-le")) // 2
