"""A capitalised word's analysis is shared with its lowercase spelling's, in either order."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.query import normalize
from bridge.query.normalize import scan

WORDS = st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,11}s?", fullmatch=True)


def _alone(text: str, stem: bool) -> list[tuple[str, int, int, int, int]]:
    """What ``text`` gives to an analyzer that has seen nothing before."""
    normalize.clear_caches()
    return scan(text, stem)


@settings(max_examples=300, deadline=None)
@given(WORDS)
def test_every_spelling_means_what_it_means_alone_whichever_was_seen_first(word: str) -> None:
    spellings = [word, word.lower(), word.upper(), word.capitalize(), word.title()]
    readings = [(spelling, stem) for spelling in spellings for stem in (True, False)]
    expected = [_alone(spelling, stem) for spelling, stem in readings]
    for order in (readings, readings[::-1]):
        normalize.clear_caches()
        got = {reading: scan(*reading) for reading in order}
        assert [got[reading] for reading in readings] == expected
    normalize.clear_caches()
