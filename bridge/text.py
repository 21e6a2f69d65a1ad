"""Text cleaning applied once, where a source's text enters the bridge."""

from __future__ import annotations

import html
import re

# Characters no output can carry: C0 controls that are not whitespace (invalid in XML 1.0,
# NUL refused by PostgreSQL), DEL, and lone UTF-16 surrogates left by JSON "\ud800" escapes.
# The whitespace controls (\x0b, \x0c, \x1c-\x1f) become plain spaces below.
_UNCARRIABLE = "\x00-\x08\x0e-\x1b\x7f\ud800-\udfff\ufffe\uffff"

# Invisible format characters (Unicode category Cf), which let a title display as something
# else or hide a word from search ("gener\u200balization"): the soft hyphen, the Arabic
# letter mark, the Mongolian vowel separator, zero-width space, LRM and RLM, the bidi
# embeddings and overrides (U+202A-U+202E), word joiner and invisible operators, the bidi
# isolates (U+2066-U+2069) and the deprecated format controls after them, the zero-width
# no-break space (BOM), interlinear annotation, Egyptian hieroglyph, shorthand and musical
# format controls, and the tag characters. Tags also spell the flags of England, Scotland and
# Wales after a black flag; those show as the black flag alone, a small price for closing
# a channel that can carry hidden text.
# Left alone: the Cf signs that are visible (Arabic number signs U+0600-U+0605, end of ayah,
# Syriac abbreviation mark, Arabic pound and piastre marks, Kaithi number signs), and ZWNJ
# and ZWJ, below.
_INVISIBLE_BMP = "\u00ad\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
_INVISIBLE_ASTRAL = (
    "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0001\U000e0020-\U000e007f"
)

# ZWNJ and ZWJ (U+200C, U+200D) stay where a script needs them: inside emoji sequences
# (👩‍🔬) and in Persian, Indic and other scripts, between two of their characters. Next to
# anything below U+0370 (ASCII, Latin-1, Latin Extended, IPA, combining accents), a space,
# the text's edge or another joiner they join nothing and could only hide a word, so there
# they go.
_JOINABLE = "[^\x00-\u036f\\s\u200c\u200d]"
_STRAY_JOINER = re.compile(f"(?<!{_JOINABLE})[\u200c\u200d]|[\u200c\u200d](?!{_JOINABLE})")

_DROPPED = re.compile(f"[{_UNCARRIABLE}{_INVISIBLE_BMP}{_INVISIBLE_ASTRAL}]+")


def clean_text(value: object) -> str:
    """Decode HTML entities, drop what no output can carry or should show (see
    _INVISIBLE_BMP), and collapse runs of whitespace; LaTeX stays as written.

    Everything it drops or changes is unprintable (str.isprintable), which
    bridge.sources.hf_parse.quick_clean's shortcuts rely on; tests/test_text.py holds that.
    """
    if not isinstance(value, str):
        return ""
    text = html.unescape(value) if "&" in value else value
    # split() without arguments splits on exactly the characters \s matches, and is much
    # faster than a regex substitution on long abstracts.
    text = " ".join(text.split())
    # isprintable() is one pass in C, several times faster than any search for the
    # characters to drop; nearly every text is printable once its whitespace is collapsed.
    if text.isprintable():
        return text
    text = _DROPPED.sub("", text)
    if "\u200c" in text or "\u200d" in text:
        text = _STRAY_JOINER.sub("", text)
    # What was dropped may have stood between two spaces, or at an edge.
    return " ".join(text.split())
