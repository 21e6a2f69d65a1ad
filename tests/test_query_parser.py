"""The query syntax: every element parses to the AST it promises, and every mistake is named."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.errors import QueryError
from bridge.query import (
    DEFAULT_FIELDS,
    MAX_DEPTH,
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    And,
    Category,
    Not,
    Or,
    Phrase,
    Query,
    Source,
    Term,
    Upvotes,
    format_query_error,
    normalize_word,
    parse_query,
)


def root(text: str):  # type: ignore[no-untyped-def]
    return parse_query(text).root


def term(word: str, fields: tuple[str, ...] = DEFAULT_FIELDS) -> Term:
    return Term(word, fields)


def test_a_word_is_a_term_over_the_default_fields() -> None:
    assert root("generalization") == term("generaliz")
    assert DEFAULT_FIELDS == ("title", "abstract", "ai_summary", "ai_keywords")


def test_spelling_and_case_variants_parse_to_equal_queries() -> None:
    assert parse_query("Generalisation") == parse_query("generalizing")
    assert parse_query("LLMs  agents") == parse_query("llm AND agent")
    assert parse_query("Generalisation").text == "Generalisation"


def test_repeated_words_collapse() -> None:
    assert parse_query("LLM LLMs") == parse_query("llm")
    assert parse_query("LLM OR LLMs") == parse_query("llm")
    assert root("(a b) (b a)") == And((term("a"), term("b")))


def test_terms_are_anded() -> None:
    assert root("diffusion transformer") == And((term("diffusion"), term("transformer")))
    assert root("diffusion AND transformer") == root("diffusion transformer")


def test_quoted_phrase() -> None:
    assert root('"world model"') == Phrase(((("world",),), (("model",),)))
    # A one-word phrase is just that word; curly quotes work like straight ones.
    assert root('"generalisation"') == term("generaliz")
    assert root("\u201cworld model\u201d") == root('"world model"')


def test_hyphenated_word_is_parts_or_joined_word() -> None:
    assert root("out-of-distribution") == Phrase(
        (((("out", "of", "distribution"), ("outofdistribution",))),)
    )
    assert root('"large pre-trained models"') == Phrase(
        (
            (("larg",),),
            (("pre", "train"), ("pretrain",)),
            (("model",),),
        )
    )


def test_or_in_capitals_or_a_bar() -> None:
    expected = Or((term("rl"), Phrase(((("reinforcement",),), (("learn",),)))))
    assert root('RL OR "reinforcement learning"') == expected
    assert root('RL | "reinforcement learning"') == expected
    assert root("RL||RLHF") == Or((term("rl"), term("rlhf")))
    # Lower-case "or" is a word.
    assert root("rl or rlhf") == And((term("rl"), term("or"), term("rlhf")))


def test_or_binds_looser_than_and() -> None:
    assert root("a b OR c") == Or((And((term("a"), term("b"))), term("c")))
    assert root("(LLM OR VLM) agents") == And((Or((term("llm"), term("vlm"))), term("agent")))


def test_exclusion_with_minus_or_not() -> None:
    expected = And((term("diffusion"), Not(term("survei"))))
    assert root("diffusion -survey") == expected
    assert root("diffusion NOT survey") == expected
    assert root("diffusion -(survey OR review)") == And(
        (term("diffusion"), Not(Or((term("survei"), term("review")))))
    )


def test_field_prefixes() -> None:
    assert root("title:diffusion") == term("diffusion", ("title",))
    assert root("ti:diffusion") == root("title:diffusion")
    assert root("abstract:diffusion") == term("diffusion", ("abstract",))
    assert root("abs:diffusion") == root("abstract:diffusion")
    assert root("author:lecun") == term("lecun", ("authors",))
    assert root('author:"Yann LeCun"') == Phrase(((("yann",),), (("lecun",),)), ("authors",))
    # Names are folded, not stemmed.
    assert root("au:Williams") == term("williams", ("authors",))
    assert root("-title:survey diffusion") == And(
        (Not(term("survei", ("title",))), term("diffusion"))
    )


def test_field_prefix_on_a_group() -> None:
    assert root("title:(sampling OR solver)") == Or(
        (term("sampl", ("title",)), term("solver", ("title",)))
    )
    assert root('title:("flow matching" distillation)') == And(
        (
            Phrase(((("flow",),), (("match",),)), ("title",)),
            term(normalize_word("distillation"), ("title",)),
        )
    )


def test_categories_sources_and_upvotes() -> None:
    assert root("cat:cs.LG") == Category("cs.lg")
    assert root("cat:cs.*") == Category("cs.", prefix=True)
    # A name without a dot is an archive: the category itself or any subject class in it.
    assert root("cat:hep-th") == Or((Category("hep-th"), Category("hep-th.", prefix=True)))
    assert root("category:stat.ML") == Category("stat.ml")
    assert root("cat:(cs.LG OR stat.ML)") == Or((Category("cs.lg"), Category("stat.ml")))
    assert root("source:hf") == Source("hf")
    assert root("source:arXiv") == Source("arxiv")
    assert root("upvotes>=10") == Upvotes(">=", 10)
    for op in (">", "<=", "<", "="):
        assert root(f"upvotes{op}3") == Upvotes(op, 3)  # type: ignore[arg-type]
    assert root("Upvotes:>=5") == Upvotes(">=", 5)


def test_symbols_and_latex_in_queries() -> None:
    assert root("C++") == term("c++")
    assert root("GPT-4o") == Phrase((((("gpt", "4o"), ("gpt4o",))),))
    assert root("3D") == term("3d")
    assert root(r"$\alpha$-divergence") == Phrase(((("alpha",),), (("divergenc",),)))
    # A colon followed by a space is punctuation, not a field.
    assert root("Math: reasoning") == And((term("math"), term("reason")))


ERRORS = [
    ("", "empty query", 0),
    ("   ", "empty query", 0),
    ("(diffusion", "unbalanced parenthesis: this '(' is never closed", 0),
    ("(a (b)", "unbalanced parenthesis: this '(' is never closed", 0),
    ("a OR (", "unbalanced parenthesis: this '(' is never closed", 5),
    ("title:(", "unbalanced parenthesis: this '(' is never closed", 6),
    ("diffusion)", "unbalanced parenthesis: ')' has no matching '('", 9),
    ("()", "empty parentheses", 1),
    ('"world model', "unterminated quote", 0),
    ('title:"world', "unterminated quote", 6),
    ('""', "empty phrase", 0),
    ("foo:bar", "unknown field 'foo:'", 0),
    ("diffusion https://x.org", "unknown field 'https:'", 10),
    ("title: diffusion", "'title:' needs a term right after the colon", 0),
    ("title:", "'title:' needs a term right after the colon", 0),
    ("title:-survey", "put the '-' first", 6),
    ("upvotes>=x", "bad number in upvotes>=: expected a whole number, found 'x'", 9),
    ("upvotes>=", "bad number in upvotes>=: expected a whole number, found nothing", 9),
    ("upvotes>=1.5", "bad number in upvotes>=", 9),
    ("upvotes:10", "write upvotes>=N", 0),
    ("upvotes>=12345678901", "too large", 9),
    ("diffusion OR", "OR needs a term on both sides", 10),
    ("OR diffusion", "OR needs a term on both sides", 0),
    ("a OR OR b", "OR needs a term on both sides", 2),
    ("a | | b", "OR needs a term on both sides", 2),
    ("(OR a)", "OR needs a term on both sides", 1),
    ("a AND", "AND needs a term on both sides", 2),
    ("AND a", "AND needs a term on both sides", 0),
    ("a NOT", "NOT needs a term after it", 2),
    ("a -", "'-' needs a term right after it", 2),
    ("-survey", "a query needs something to look for", 0),
    ("-survey -review", "a query needs something to look for", 0),
    ("NOT survey", "a query needs something to look for", 0),
    ("diffusion OR -survey", "each side of OR needs something to look for", 13),
    ("(a OR (-b -c)) d", "each side of OR needs something to look for", 7),
    ("!!!", "'!!!' has no letters or digits to search for", 0),
    ("cat:cs.", "bad category 'cs.'", 4),
    ("cat:c$", "bad category", 4),
    ('cat:"cs LG"', "cat: takes a single value", 4),
    ("source:biorxiv", "unknown source 'biorxiv'", 7),
]


@pytest.mark.parametrize(("text", "message", "position"), ERRORS)
def test_errors_say_what_and_where(text: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    error = caught.value
    assert message in error.message
    assert error.position == position
    assert error.query == text
    assert str(error).endswith(f"at position {position + 1}")


def test_an_exclusion_only_query_explains_itself() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("-survey")
    assert "exclusions alone would match almost every paper" in caught.value.message
    assert "diffusion -survey" in caught.value.message


def test_limits_are_constants() -> None:
    assert (MAX_QUERY_LENGTH, MAX_TERMS, MAX_DEPTH) == (500, 50, 10)
    parse_query(" ".join(["w"] * MAX_TERMS))
    with pytest.raises(QueryError) as caught:
        parse_query(" ".join(["w"] * (MAX_TERMS + 1)))
    assert caught.value.message == f"too many terms (at most {MAX_TERMS})"
    assert caught.value.position == 2 * MAX_TERMS
    # A phrase counts its words.
    with pytest.raises(QueryError):
        parse_query('"' + " ".join(["w"] * (MAX_TERMS + 1)) + '"')
    parse_query("a" * MAX_QUERY_LENGTH)
    with pytest.raises(QueryError) as caught:
        parse_query("a" * (MAX_QUERY_LENGTH + 1))
    assert caught.value.message == "query is too long (501 characters; at most 500)"
    assert caught.value.position == MAX_QUERY_LENGTH
    parse_query("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)
    with pytest.raises(QueryError) as caught:
        parse_query("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    assert "nested too deeply" in caught.value.message
    assert caught.value.position == MAX_DEPTH


def test_format_query_error_puts_a_caret_under_the_position() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("diffusion foo:bar")
    assert format_query_error(caught.value) == (
        "unknown field 'foo:' (known fields: title, abstract, author, cat, source, date, upvotes; "
        "put text with a colon in quotes) at position 11\n"
        "  diffusion foo:bar\n"
        "            ^"
    )


def test_format_query_error_at_the_end_and_in_long_queries() -> None:
    with pytest.raises(QueryError) as caught:
        parse_query("diffusion OR")
    assert format_query_error(caught.value).splitlines()[1:] == [
        "  diffusion OR",
        "            ^",
    ]
    long_query = "word " * 20 + "(unclosed " + "word " * 20
    with pytest.raises(QueryError) as caught:
        parse_query(long_query)
    _, shown, caret = format_query_error(caught.value).splitlines()
    assert shown.startswith("  …") and shown.endswith("…")
    assert shown[caret.index("^")] == "("
    # Newlines in the query do not break the picture.
    with pytest.raises(QueryError) as caught:
        parse_query("a\n)")
    _, shown, caret = format_query_error(caught.value).splitlines()
    assert shown[caret.index("^")] == ")"


def test_format_query_error_without_a_position() -> None:
    assert format_query_error(QueryError("no position")) == "no position"


def test_parse_accepts_only_text() -> None:
    with pytest.raises(QueryError):
        parse_query(None)  # type: ignore[arg-type]


# --- property: a query or a QueryError, nothing else ---------------------------------------------

PIECES = st.sampled_from(
    [
        "a",
        "LLM",
        "out-of-distribution",
        " ",
        " ",
        "(",
        ")",
        '"',
        "\u201c",
        "-",
        "|",
        " OR ",
        " AND ",
        " NOT ",
        "title:",
        "author:",
        "cat:",
        "cs.*",
        "source:",
        "hf",
        "foo:",
        "upvotes>=",
        "10",
        "x",
        "$\\alpha$",
        ":",
        "*",
        "C++",
    ]
)


def check(text: str) -> None:
    try:
        query = parse_query(text)
    except QueryError as error:
        assert error.message
        assert error.position is None or 0 <= error.position <= len(text)
        assert isinstance(format_query_error(error), str)
    else:
        assert isinstance(query, Query)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
def test_arbitrary_text_parses_or_raises_query_error(text: str) -> None:
    check(text)


@settings(max_examples=600, deadline=None)
@given(st.lists(PIECES, max_size=14).map("".join))
def test_arbitrary_syntax_soup_parses_or_raises_query_error(text: str) -> None:
    check(text)
