"""Discord rendering: every embed and message inside Discord's limits (checked on
``embed.to_dict()``, with the longest real abstracts in tests/fixtures and with hypothesis),
matched words in bold, and no markup or mention from paper text."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from typing import Any

import discord
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.discord.render import (
    AUTHOR_MAX,
    CONTENT_MAX,
    DESCRIPTION_MAX,
    EMBEDS_PER_MESSAGE,
    EMBEDS_TOTAL_MAX,
    FIELD_NAME_MAX,
    FIELD_VALUE_MAX,
    FIELDS_MAX,
    FOOTER_MAX,
    MARKUP,
    THREAD_NAME_MAX,
    TITLE_MAX,
    DiscordMessage,
    digest_embeds,
    digest_header,
    escape,
    pack,
    paper_embed,
    per_embed_budget,
    search_message,
    thread_name,
)
from bridge.chat.service import SearchPage
from bridge.delivery import DigestItem, DigestSubscription
from bridge.models import Hit, Match, Paper, StoredPaper
from bridge.query import match_paper, parse_query
from bridge.search import SearchResult, SearchResults
from bridge.sources.arxiv_parse import parse_api as parse_arxiv_api
from bridge.sources.hf_parse import parse_api
from tests.conftest import FIXTURES

NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
MENTIONS = "@everyone @here <@123456789012345678> <@!42> <@&987654321098765432> <#555>"


def real_papers() -> list[Paper]:
    """Every paper of the recorded HF and arXiv responses, longest abstracts first."""
    hf = parse_api((FIXTURES / "hf/daily_papers_api_limit30_2026-06-13.json").read_bytes(), "u")
    arxiv = parse_arxiv_api(
        (FIXTURES / "arxiv/api_query_transformer_cs.LG_2026-06-14.xml").read_bytes(), "u"
    )
    papers = hf.papers + arxiv.papers
    return sorted(papers, key=lambda p: len(p.abstract), reverse=True)


def stored(paper: Paper, seq: int = 1) -> StoredPaper:
    return StoredPaper(paper, seq, NOW, True)


def hits(query: str, paper: Paper) -> tuple[Hit, ...]:
    return match_paper(parse_query(query), paper) or ()


def check_embed(data: dict[str, Any]) -> int:
    """Asserts every per-field limit on a serialised embed; returns its counted length."""
    assert len(data.get("title", "")) <= TITLE_MAX
    assert len(data.get("description", "")) <= DESCRIPTION_MAX
    assert len(data.get("fields", [])) <= FIELDS_MAX
    for f in data.get("fields", []):
        assert len(f["name"]) <= FIELD_NAME_MAX and len(f["value"]) <= FIELD_VALUE_MAX
    assert len(data.get("footer", {}).get("text", "")) <= FOOTER_MAX
    assert len(data.get("author", {}).get("name", "")) <= AUTHOR_MAX
    return (
        len(data.get("title", ""))
        + len(data.get("description", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in data.get("fields", []))
        + len(data.get("footer", {}).get("text", ""))
        + len(data.get("author", {}).get("name", ""))
    )


def check_message(message: DiscordMessage) -> dict[str, Any]:
    payload = message.payload()
    json.dumps(payload)  # what is sent is plain JSON
    assert payload["allowed_mentions"] == {"parse": []}
    assert len(payload.get("content", "")) <= CONTENT_MAX
    embeds = payload.get("embeds", [])
    assert len(embeds) <= EMBEDS_PER_MESSAGE
    assert sum(check_embed(e) for e in embeds) <= EMBEDS_TOTAL_MAX
    assert payload.get("content") or embeds  # Discord refuses an empty message
    return payload


def test_the_real_papers_render_with_the_matched_words_in_bold() -> None:
    paper = next(p for p in real_papers() if "model" in p.abstract.lower())
    embed = paper_embed(paper, hits("model", paper), "matched model in the abstract")
    data = embed.to_dict()
    check_embed(data)
    assert data["title"] == escape(paper.title) or data["title"].endswith("…")
    assert data["url"] == paper.abs_url
    assert re.search(r" \*\*[Mm]odel\w*\*\* ", data["description"])
    assert "_matched model in the abstract_" in data["description"]
    assert f"[arXiv]({paper.abs_url})" in data["description"]


@pytest.mark.parametrize("count", [1, 3, 5, 8, 10])
def test_a_full_message_of_the_longest_real_abstracts_fits(count: int) -> None:
    papers = real_papers()[:count]
    items = [
        DigestItem(stored(p, n), Match("s", p.arxiv_id, hits("model OR learning", p)))
        for n, p in enumerate(papers, 1)
    ]
    embeds = digest_embeds(items, per_message=count)
    messages = pack(digest_header(None, count), embeds)
    assert len(messages) == 1  # a ledger batch is always exactly one message
    check_message(messages[0])


def test_papers_at_every_limit_at_once_still_fit() -> None:
    huge = Paper(
        "2606.00001",
        "T" * 5000,
        abstract="word " * 5000,
        authors=tuple(f"Author Number {n} " * 20 for n in range(300)),
        categories=("cs.LG" * 200,),
        upvotes=10**9,
        sources=("hf", "arxiv"),
        github_repo="https://github.com/" + "x" * 3000,
        project_page="https://example.org/" + "y" * 3000,
        listed_on=date(2026, 6, 1),
    )
    for per_message in range(1, 11):
        embeds = [paper_embed(huge, budget=per_embed_budget(per_message))] * per_message
        messages = pack("h" * 5000, embeds)
        assert sum(len(m.embeds) for m in messages) == per_message
        for message in messages:
            check_message(message)
        assert len([m for m in messages if m.embeds]) == 1


def test_mentions_and_markup_in_paper_text_are_shown_not_obeyed() -> None:
    paper = Paper(
        "2606.00002",
        f"{MENTIONS} **bold** [click](https://evil.example) ||spoiler||",
        abstract=f"# Heading {MENTIONS} `code` ~~gone~~ > quote _x_",
        authors=("@everyone", "<@&987654321098765432>"),
        sources=("hf",),
        github_repo="https://github.com/a/b)[x](javascript:alert(1)",
    )
    data = paper_embed(paper).to_dict()
    text = data["title"] + data["description"]
    for raw in ("<@123", "<@&987", "<#555", "<@!", "[click]", "||", "**bold**", "~~", "`code`"):
        assert raw not in text
    for unescaped in re.finditer(r"(?<!\\)[@<]", data["title"] + data["description"]):
        pytest.fail(f"unescaped {unescaped.group()!r} in {text!r}")
    assert "](javascript" not in text
    # Plain-text fields show the names as written; they never ping (allowed_mentions) and
    # Discord renders no mentions there.
    assert data["author"]["name"].startswith("@everyone")


def test_markup_escapes_lists_headings_and_code() -> None:
    assert escape("1. first") == "1\\. first"
    assert escape("- item") == "\\- item"
    assert escape("# title") == "\\# title"
    assert MARKUP.code("a`b") == "`a\u02cbb`"
    assert MARKUP.bold("x_y") == "**x\\_y**"
    assert MARKUP.link("https://x.org/a(b)", "PDF") == "[PDF](https://x.org/a%28b%29)"
    # Web addresses stay clickable: no backslash inside them.
    assert escape("see https://github.com/a_b/c.") == "see https://github.com/a_b/c."


def test_a_search_page_is_one_message_with_a_header() -> None:
    papers = real_papers()[:5]
    results = SearchResults(
        [SearchResult(stored(p), hits("model", p), "matched model") for p in papers],
        total=200,
        total_capped=True,
    )
    page = SearchPage("model", 1, 5, results)
    payload = check_message(search_message(page))
    assert payload["content"].startswith("200+ papers match `model` (showing 1–5)")
    assert len(payload["embeds"]) == 5


def test_digest_header_and_thread_name() -> None:
    sub = DigestSubscription("s", "d", "@everyone " + "x" * 500)
    header = digest_header(sub, 12)
    assert "**12 new papers**" in header and "@everyone" in header
    assert header.count("`") == 2 and len(header) < 300  # the query in code, cut
    name = thread_name(sub, "2026-06-01")
    assert len(name) <= THREAD_NAME_MAX and name.endswith("…")
    assert digest_header(sub, 0).startswith("All quiet")


def test_long_content_is_split_at_line_ends() -> None:
    content = "\n".join(f"line {n} " + "z" * 90 for n in range(60))
    messages = pack(content, [discord.Embed(title="t")])
    assert len(messages) > 1
    assert all(len(m.content) <= CONTENT_MAX for m in messages)
    assert "\n".join(m.content for m in messages) == content
    assert messages[-1].embeds and not any(m.embeds for m in messages[:-1])


paper_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)) | st.sampled_from("*_~|`[]()<>#@\\-"),
    max_size=3000,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    title=paper_text,
    abstract=paper_text,
    authors=st.lists(st.text(max_size=300), max_size=40),
    per_message=st.integers(1, 10),
    hit_spans=st.lists(st.tuples(st.integers(0, 3000), st.integers(1, 30)), max_size=8),
)
def test_any_paper_fits_any_layout(
    title: str,
    abstract: str,
    authors: list[str],
    per_message: int,
    hit_spans: list[tuple[int, int]],
) -> None:
    paper = Paper("2606.00003", title, abstract=abstract, authors=tuple(authors))
    found = [Hit("abstract", "x", start, start + width) for start, width in hit_spans]
    embed = paper_embed(paper, found, "matched x " * 50, budget=per_embed_budget(per_message))
    messages = pack("header", [embed] * per_message)
    assert len([m for m in messages if m.embeds]) == 1
    for message in messages:
        check_message(message)
    # Whatever the text, the description never holds a raw mention opener.
    assert not re.search(r"(?<!\\)<[@#]", embed.description or "")
