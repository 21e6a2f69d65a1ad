"""clean_text: invisible and direction-changing characters never reach a stored text."""

from __future__ import annotations

import html
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge import text
from bridge.models import Paper
from bridge.query import match_paper, parse_query
from bridge.text import clean_text

# The characters that let a title display as something else or hide a word.
BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
MARKS = "\u200e\u200f\u061c"
ZERO_WIDTH = "\u200b\u2060\ufeff"
OTHER_INVISIBLE = "\u00ad\u180e\u2061\u2062\u2063\u2064\u206a\ufff9\U000e0001\U000e0041"
HOSTILE = BIDI_CONTROLS + MARKS + ZERO_WIDTH + OTHER_INVISIBLE

# Format characters that are kept: visible signs, and the joiners where a script needs them.
VISIBLE_SIGNS = "\u0600\u0601\u0602\u0603\u0604\u0605\u06dd\u070f\u0890\u0891\u08e2"
VISIBLE_SIGNS += "\U000110bd\U000110cd"
JOINERS = "\u200c\u200d"
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"


@pytest.mark.parametrize("char", HOSTILE, ids=lambda c: f"U+{ord(c):04X}")
def test_invisible_characters_are_removed(char):
    assert clean_text(f"{char}Safe{char} title{char}") == "Safe title"
    assert clean_text(f"gener{char}alization") == "generalization"
    # An entity decodes to the same character, and is removed the same way.
    assert clean_text(f"gener&#x{ord(char):x};alization") == "generalization"


def test_a_right_to_left_override_cannot_reverse_a_title():
    # Displayed, "\u202e" would turn "gnp.exe" around into "exe.png".
    assert clean_text("Report\u202egnp.exe") == "Reportgnp.exe"
    assert clean_text("&rlm;&lrm;Title&#8238;") == "Title"


@pytest.mark.parametrize(
    ("written", "kept"),
    [
        ("\U0001f469\u200d\U0001f52c", "\U0001f469\u200d\U0001f52c"),  # woman scientist
        ("\u2764\ufe0f\u200d\U0001f525", "\u2764\ufe0f\u200d\U0001f525"),  # heart on fire
        (PERSIAN, PERSIAN),  # "I want", with the ZWNJ Persian spelling needs
        ("\u0915\u094d\u200d\u0937", "\u0915\u094d\u200d\u0937"),  # Devanagari half form
        ("gener\u200dalization", "generalization"),
        ("gener\u200calization", "generalization"),
        ("\u0645\u200d \u0645", "\u0645 \u0645"),  # next to a space
        ("\u200d\u0645\u0645\u200c", "\u0645\u0645"),  # at the edges
        ("\u0645\u200c\u200c\u0645", "\u0645\u0645"),  # doubled
        ("\u0645\u200b\u200c\u0645", "\u0645\u200c\u0645"),  # decided after the rest goes
    ],
)
def test_joiners_are_kept_only_between_characters_of_scripts_that_need_them(written, kept):
    assert clean_text(written) == kept


def test_visible_format_signs_are_kept():
    assert clean_text(f"{VISIBLE_SIGNS}\u0661\u0662") == f"{VISIBLE_SIGNS}\u0661\u0662"


def test_every_character_clean_text_changes_is_unprintable():
    # hf_parse.quick_clean returns printable text untouched; that is exact only while
    # clean_text never changes a printable character (the space aside).
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    touched = set("".join(text._DROPPED.findall(everything))) | set(JOINERS)
    assert touched and not any(char.isprintable() for char in touched)


def test_every_format_character_is_decided():
    # A Unicode upgrade that adds a format character must fail here, not pass it through.
    decided = set(HOSTILE + VISIBLE_SIGNS + JOINERS)
    dropped = set("".join(text._DROPPED.findall("".join(map(chr, range(sys.maxunicode + 1))))))
    undecided = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if unicodedata.category(chr(code)) == "Cf"
        and chr(code) not in decided
        and chr(code) not in dropped
    ]
    assert undecided == []


def test_a_hidden_word_is_found_by_search():
    title = clean_text("Domain gener\u200balization for Vision\u00adTransformers")
    paper = Paper(arxiv_id="2501.00001", title=title)
    assert title == "Domain generalization for VisionTransformers"
    assert match_paper(parse_query("generalization"), paper) is not None


def dropped_then_collapsed(value: str) -> str:
    """clean_text written the plain way: drop, decide the joiners, collapse whitespace."""
    value = html.unescape(value) if "&" in value else value
    value = text._STRAY_JOINER.sub("", text._DROPPED.sub("", value))
    return " ".join(value.split())


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(
            HOSTILE + JOINERS + PERSIAN + " \t\n\x00\x1c\u00a0\u3000\ud800ab&#;x2" + "\U0001f469"
        )
        | st.characters(),
        max_size=30,
    )
)
def test_clean_text_is_the_plain_way_of_writing_it(value):
    # It collapses whitespace before it looks for anything to drop, so that printable text
    # costs one isprintable(); the outcome must not depend on that order.
    assert clean_text(value) == dropped_then_collapsed(value)
