"""Platform-neutral rendering: marked previews, facts, links and the wording of replies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.chat.render import links, marked_preview, preview_segments, short_authors
from bridge.models import Hit, Paper
from bridge.query import match_paper, parse_query


class Brackets:
    """A markup whose escaping is visible: text in <>, bold in [], code in {}."""

    def text(self, value: str) -> str:
        return f"<{value}>"

    def bold(self, value: str) -> str:
        return f"[{value}]"

    def code(self, value: str) -> str:
        return f"{{{value}}}"

    def link(self, url: str, label: str) -> str:
        return f"({label} {url})"


ABSTRACT = (
    "Large models often fail to transfer. We study out-of-distribution generalisation and show"
    " that generalizing across domains needs diverse data."
)


def hits_for(query: str, paper: Paper) -> tuple[Hit, ...]:
    found = match_paper(parse_query(query), paper)
    assert found is not None
    return found


def test_matched_words_are_marked_where_they_are() -> None:
    paper = Paper("2606.00001", "A study", abstract=ABSTRACT)
    pieces = preview_segments(ABSTRACT, hits_for("generalization", paper))
    assert [text for text, marked in pieces if marked] == ["generalisation", "generalizing"]
    assert "".join(text for text, _ in pieces) == ABSTRACT
    assert marked_preview(Brackets(), ABSTRACT, hits_for("generalization", paper)).count("[") == 2


def test_a_match_past_the_cut_moves_the_preview_to_it() -> None:
    abstract = "Filler words here. " * 40 + "Finally we reach generalisation at the very end."
    paper = Paper("2606.00001", "A study", abstract=abstract)
    pieces = preview_segments(abstract, hits_for("generalization", paper), limit=200)
    assert pieces[0] == ("…", False)
    assert ("generalisation", True) in pieces
    assert len("".join(text for text, _ in pieces)) <= 200 + 40


def test_a_long_abstract_is_cut_at_a_word_with_an_ellipsis() -> None:
    abstract = "word " * 200
    pieces = preview_segments(abstract.strip(), (), limit=100)
    text = "".join(t for t, _ in pieces)
    assert text.endswith("word…") and len(text) <= 101


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=400),
    st.lists(st.tuples(st.integers(-5, 420), st.integers(0, 40)), max_size=6),
    st.integers(20, 400),
)
def test_previews_never_break_on_odd_hits(
    text: str, spans: list[tuple[int, int]], limit: int
) -> None:
    hits = [Hit("abstract", "x", start, start + width) for start, width in spans]
    pieces = preview_segments(text, hits, limit=limit)
    joined = "".join(t for t, _ in pieces)
    assert joined.replace("…", "") in text.replace("…", "") or joined.startswith("…")
    assert all(t for t, _ in pieces)


def test_authors_and_links() -> None:
    assert short_authors(["A", "B", "C", "D", "E"]) == "A, B, C +2 more"
    paper = Paper(
        "2606.00001",
        "T",
        sources=("hf", "arxiv"),
        github_repo="javascript:alert(1)",
        project_page="https://example.org/x",
    )
    labels = [label for label, _ in links(paper)]
    assert labels == ["arXiv", "PDF", "HF", "project"]  # never a javascript: link


def test_an_empty_result_explains_habits_from_other_search_engines() -> None:
    from bridge.chat.render import results_header
    from bridge.chat.service import SearchPage
    from bridge.search import SearchResults

    page = SearchPage("diffusion or survey", 1, 5, SearchResults())
    text = results_header(Brackets(), page)
    assert text.startswith("No stored paper matches {diffusion or survey}.")
    assert "write OR in capitals" in text
    assert results_header(Brackets(), SearchPage("gan", 1, 5, SearchResults())) == (
        "No stored paper matches {gan}."
    )
