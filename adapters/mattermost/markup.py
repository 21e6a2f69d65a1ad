"""Markdown for Mattermost and Rocket.Chat incoming webhooks, written so that paper text can
never mention, link or format anything.

Both read CommonMark-like markdown, where a backslash before ASCII punctuation shows the
character itself; every mark that could format or link (``* _ ~ ` [ ] ( ) # | > ! & \\``, a list marker at the start) is
escaped that way. Mentions (``@channel``, ``@all``, ``@here``, ``@someone``) are found by the
server in the raw text, where a backslash does not stop them, so an ``@`` in paper text
becomes the full-width ``＠``. Both servers also translate Slack's ``<!channel>`` and
``<url|label>`` in webhook text, so ``<`` becomes the full-width ``＜`` (a backslash would
leave the sequence in the raw text for that translation to find).
"""

from __future__ import annotations

import re

_SPECIAL = re.compile(r"([\\`*_~\[\]()#|>!&])")
# List markers mean something only at the start of a line.
_LIST_START = re.compile(r"^(\s*)([-+]|\d+\.)(?=\s)")
_SPACES = re.compile(r"\s+")
ELLIPSIS = "…"
CODE_CHARS = 200


def escape(value: str) -> str:
    """Untrusted text as markdown that shows exactly that text on one line."""
    flat = _SPACES.sub(" ", value)
    out = _SPECIAL.sub(r"\\\1", flat).replace("@", "＠").replace("<", "＜")
    return _LIST_START.sub(_escape_list_marker, out)


def _escape_list_marker(m: re.Match[str]) -> str:
    space, marker = m.groups()
    if marker.endswith("."):  # "1." starts a numbered list; the backslash goes before the dot
        return f"{space}{marker[:-1]}\\."
    return f"{space}\\{marker}"


class MattermostMarkup:
    """``bridge.chat.render.Markup`` for Mattermost and Rocket.Chat."""

    def text(self, value: str) -> str:
        return escape(value)

    def bold(self, value: str) -> str:
        # Markdown bolds **x** only when the stars touch the text: spaces stay outside.
        core = value.strip()
        if not core:
            return escape(value)
        lead = value[: len(value) - len(value.lstrip())]
        trail = value[len(value.rstrip()) :]
        return f"{lead}**{escape(core)}**{trail}"

    def code(self, value: str) -> str:
        shown = " ".join(value.split())
        if len(shown) > CODE_CHARS:
            shown = shown[: CODE_CHARS - 1] + ELLIPSIS
        # Nothing formats inside a code span, but mentions and Slack sequences are read from
        # the raw text; a backtick would end the span early.
        inner = shown.replace("`", "\u02cb").replace("@", "＠").replace("<", "＜")
        return f"`{inner}`" if inner else ""

    def link(self, url: str, label: str) -> str:
        # links() refused any URL with spaces, quotes or angle brackets; parentheses would end
        # the link early.
        safe = url.replace("(", "%28").replace(")", "%29")
        return f"[{escape(label)}]({safe})"


MARKUP = MattermostMarkup()
