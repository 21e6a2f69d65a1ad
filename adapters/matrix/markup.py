"""A digest as a Matrix message: ``formatted_body`` in the HTML subset Matrix clients render
(``org.matrix.custom.html``) and a plain ``body`` saying the same, for clients without HTML
and for notifications.

Paper text is entity-escaped in the HTML, so ``<b>`` or a link in a title shows as text. A
mention in Matrix is a link to ``https://matrix.to/#/@user:server`` (a "pill") or, for older
clients' push rules, the text ``@room`` or a user's name in the body: a word joiner (U+2060,
invisible) goes after every ``@`` of paper text, links to matrix.to are never made, and every
event says ``"m.mentions": {}`` (it mentions nobody).
"""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

ELLIPSIS = "…"
CODE_CHARS = 200
WORD_JOINER = "\u2060"
_SPACES = re.compile(r"\s+")


def _flat(value: str) -> str:
    return _SPACES.sub(" ", value).replace("@", "@" + WORD_JOINER)


def _linkable(url: str) -> bool:
    return (urlsplit(url).hostname or "").lower() not in ("matrix.to", "www.matrix.to")


class MatrixHtml:
    """``bridge.chat.render.Markup`` for ``formatted_body``."""

    def text(self, value: str) -> str:
        return html.escape(_flat(value), quote=False)

    def bold(self, value: str) -> str:
        inner = self.text(value)
        return f"<b>{inner}</b>" if inner.strip() else inner

    def code(self, value: str) -> str:
        shown = value if len(value) <= CODE_CHARS else value[: CODE_CHARS - 1] + ELLIPSIS
        return f"<code>{self.text(shown)}</code>"

    def link(self, url: str, label: str) -> str:
        if not _linkable(url):
            return self.text(label)
        return f'<a href="{html.escape(url, quote=True)}">{self.text(label)}</a>'


class MatrixPlain:
    """``bridge.chat.render.Markup`` for the plain ``body``."""

    def text(self, value: str) -> str:
        return _flat(value)

    def bold(self, value: str) -> str:
        return _flat(value)

    def code(self, value: str) -> str:
        shown = value if len(value) <= CODE_CHARS else value[: CODE_CHARS - 1] + ELLIPSIS
        return f"“{_flat(shown)}”"

    def link(self, url: str, label: str) -> str:
        return f"{_flat(label)} <{url}>" if _linkable(url) else _flat(label)


HTML = MatrixHtml()
PLAIN = MatrixPlain()
