"""Text cleaning applied once, where a source's text enters the bridge."""

from __future__ import annotations

import html
import re

_WHITESPACE = re.compile(r"\s+")


def clean_text(value: object) -> str:
    """Decode HTML entities and collapse runs of whitespace; LaTeX stays as written."""
    if not isinstance(value, str):
        return ""
    return _WHITESPACE.sub(" ", html.unescape(value)).strip()
