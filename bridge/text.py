"""Text cleaning applied once, where a source's text enters the bridge."""

from __future__ import annotations

import html
import re

# Characters no output can carry: C0 controls that are not whitespace (invalid in XML 1.0,
# NUL refused by PostgreSQL), DEL, and lone UTF-16 surrogates left by JSON "\ud800" escapes.
# The whitespace controls (\x0b, \x0c, \x1c-\x1f) become plain spaces below.
_UNCARRIABLE = re.compile("[\x00-\x08\x0e-\x1b\x7f\ud800-\udfff\ufffe\uffff]")


def clean_text(value: object) -> str:
    """Decode HTML entities and collapse runs of whitespace; LaTeX stays as written."""
    if not isinstance(value, str):
        return ""
    text = html.unescape(value) if "&" in value else value
    if _UNCARRIABLE.search(text):
        text = _UNCARRIABLE.sub("", text)
    # split() without arguments splits on exactly the characters \s matches, and is much
    # faster than a regex substitution on long abstracts.
    return " ".join(text.split())
