"""Slack's mrkdwn, written safely: every piece of paper text, author name and user query is
escaped so that it can never mention, link or format anything.

Slack reads ``<…>`` as a control sequence: ``<!channel>``, ``<!here>`` and ``<@U123>`` notify
people, ``<http://evil|click>`` is a disguised link. Escaping ``&``, ``<`` and ``>`` as entities
(the only escapes Slack defines) makes them plain text. mrkdwn also formats ``*bold*``,
``_italic_``, ``~strike~`` and `` `code` `` and has no escape for those marks; in paper text
("A* search", "~10% and ~5x", "$x_i$") they would format by accident, so untrusted text gets
look-alike characters instead. Our own formatting (bold, code, links) is added around escaped
text only.
"""

from __future__ import annotations

from collections.abc import Iterable

_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_INERT = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "*": "\u2217",  # ∗ asterisk operator
        "_": "\u02cd",  # ˍ modifier letter low macron
        "~": "\u223c",  # ∼ tilde operator
        "`": "\u02cb",  # ˋ modifier letter grave accent
    }
)
ELLIPSIS = "…"
# A code span of a user query is shortened past this: a query is a line, not an essay.
CODE_CHARS = 200


def escape(value: str) -> str:
    """Entities only: for our own prose that embeds user text (usage errors, replies)."""
    return value.translate(_ENTITIES)


def inert(value: str) -> str:
    """Untrusted text as plain mrkdwn: no control sequences, no formatting."""
    return value.translate(_INERT)


def inert_within(value: str, limit: int) -> str:
    """``inert(value)``, cut at a word with an ellipsis so that it is at most ``limit`` long.
    Escaping can make text five times longer (``&`` is ``&amp;``), so the cut is made on the
    escaped length, never inside an entity."""
    out = inert(value)
    if len(out) <= limit:
        return out
    room = max(0, limit - len(ELLIPSIS))
    cut = out[:room]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]  # never half an entity
    space = cut.rfind(" ")
    if space > room * 2 // 3:
        cut = cut[:space]
    return cut.rstrip(" ,:.") + ELLIPSIS


class SlackMarkup:
    """``bridge.chat.render.Markup`` for Slack mrkdwn."""

    def text(self, value: str) -> str:
        return inert(value)

    def bold(self, value: str) -> str:
        # Slack bolds *x* only when the stars touch the text: keep outer spaces outside.
        core = value.strip()
        if not core:
            return inert(value)
        lead = value[: len(value) - len(value.lstrip())]
        trail = value[len(value.rstrip()) :]
        return f"{lead}*{inert(core)}*{trail}"

    def code(self, value: str) -> str:
        shown = value if len(value) <= CODE_CHARS else value[: CODE_CHARS - 1] + ELLIPSIS
        # Inside a code span nothing formats; only a backtick could end it early.
        return "`" + escape(shown).replace("`", "\u02cb") + "`"

    def link(self, url: str, label: str) -> str:
        return f"<{escape(url)}|{inert(label)}>"


def join_within(parts: Iterable[str], limit: int, separator: str = " · ") -> str:
    """Already-safe parts joined while they fit in ``limit``; the rest are left out whole (a
    link cut in half would be broken markup)."""
    out = ""
    for part in parts:
        candidate = part if not out else out + separator + part
        if len(candidate) > limit:
            break
        out = candidate
    return out


def clip(text: str, limit: int) -> str:
    """Already-safe mrkdwn cut to ``limit``, backing off so no link or entity is left open."""
    if len(text) <= limit:
        return text
    cut = text[: max(0, limit - len(ELLIPSIS))]
    for opener, closer in (("<", ">"), ("&", ";")):
        start = cut.rfind(opener)
        if start != -1 and closer not in cut[start:]:
            cut = cut[:start]
    return cut + ELLIPSIS
