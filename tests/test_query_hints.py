"""Hints for a query that found nothing: operators in lower case, wildcards, comparisons."""

from __future__ import annotations

import pytest

from bridge.query.hints import empty_result_hints


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("diffusion or survey", "write OR in capitals"),
        ("gan and vae", "write AND in capitals"),
        ("diff*", "not wildcards"),
        ("votes>=10", "only upvotes and date can be compared"),
        ("stars > 100", "only upvotes and date can be compared"),
    ],
)
def test_habits_from_other_engines_get_a_hint(query: str, says: str) -> None:
    assert any(says in hint for hint in empty_result_hints(query))


@pytest.mark.parametrize(
    "query", ["generalization", '"rock and roll"', "upvotes>=10 gan", "ORacle android", "C++"]
)
def test_ordinary_queries_get_none(query: str) -> None:
    assert empty_result_hints(query) == []


def test_an_id_among_other_words_gets_a_hint() -> None:
    assert any("whole query" in hint for hint in empty_result_hints("2407.21772 agents"))
    assert empty_result_hints("qwen2.5 3.14159") == []
