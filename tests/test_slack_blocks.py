"""Block Kit rendering: real papers, hostile text and every Slack limit."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.slack.blocks import (
    BLOCK_OVERHEAD,
    HEADER_CHARS,
    MAX_PAPERS_PER_MESSAGE,
    MESSAGE_BUDGET,
    PAPER_WEIGHT,
    digest_messages,
    header_message,
    page_value,
    paper_blocks,
    problems,
    quiet_message,
    read_page_value,
    search_message,
    text_message,
    weight,
)
from adapters.slack.mrkdwn import SlackMarkup, clip, inert, inert_within
from bridge.chat.render import help_text
from bridge.chat.service import SearchPage
from bridge.delivery import DigestItem, DigestSubscription
from bridge.models import Match, Paper, StoredPaper
from bridge.query import match_paper, parse_query
from bridge.search import SearchResult, SearchResults
from bridge.sources.hf_parse import parse_api
from tests.conftest import fixture_text

T0 = datetime(2026, 6, 13, tzinfo=UTC)
SUB = DigestSubscription("s1", "slack-x", "generalization OR model")
HOSTILE = "<!channel> <!here> <@U123> <http://evil|click> & *bold* _it_ ~strike~ `code`"


def real_papers() -> list[StoredPaper]:
    parsed = parse_api(fixture_text("hf/daily_papers_api_limit30_2026-06-13.json"), "fixture")
    return [StoredPaper(p, n, T0, True) for n, p in enumerate(parsed.papers, 1)]


def item(stored: StoredPaper, query: str = SUB.query, *, uncertain: bool = False) -> DigestItem:
    hits = match_paper(parse_query(query), stored.paper) or ()
    return DigestItem(stored, Match(SUB.id, stored.paper.arxiv_id, tuple(hits)), uncertain)


def all_texts(node: object) -> list[str]:
    if isinstance(node, dict):
        return [
            t
            for key, v in node.items()
            for t in ([v] if key == "text" and isinstance(v, str) else all_texts(v))
        ]
    if isinstance(node, list):
        return [t for v in node for t in all_texts(v)]
    return []


def test_a_real_digest_is_one_message_inside_every_limit() -> None:
    papers = real_papers()[:MAX_PAPERS_PER_MESSAGE]
    messages = digest_messages([item(p) for p in papers], SUB, header_count=25)
    assert len(messages) == 1
    message = messages[0]
    assert problems(message) == []
    text = json.dumps(message.blocks)
    for stored in papers:
        assert stored.paper.abs_url in text
    # The matched words are bold in the preview, and the fallback names the papers.
    assert "*model*" in text or "*models*" in text
    assert message.text.startswith("10 papers for generalization OR model: ")
    assert message.blocks[0]["text"]["text"] == "*25 new papers for `generalization OR model`*"


def test_each_real_paper_shows_title_link_facts_and_links() -> None:
    stored = next(p for p in real_papers() if p.paper.github_repo and p.paper.upvotes)
    blocks = paper_blocks(stored, (), "matched model in the title")
    title, notes = blocks
    paper = stored.paper
    assert title["text"]["text"].startswith(f"*<{paper.abs_url}|")
    facts, links, why = (e["text"] for e in notes["elements"])
    assert f"▲ {paper.upvotes}" in facts
    assert "<https://arxiv.org/pdf/" in links and "|PDF>" in links and "|code>" in links
    assert why == "_matched model in the title_"


def test_hostile_paper_text_never_mentions_links_or_formats() -> None:
    paper = Paper(
        "2606.00001",
        f"Title {HOSTILE}",
        abstract=f"We study generalization. {HOSTILE} " * 3,
        authors=("<@U999>", "<!everyone>", "Ann & Bob"),
        upvotes=3,
        github_repo="https://github.com/x/y|<!channel>",
        project_page="javascript:alert(1)",
    )
    stored = StoredPaper(paper, 1, T0, True)
    message = digest_messages([item(stored, "generalization")], SUB, header_count=1)[0]
    texts = all_texts(message.blocks) + [message.text]
    for text in texts:
        for bad in ("<!channel>", "<!here>", "<@U123>", "<@U999>", "<!everyone>", "<http://evil"):
            assert bad not in text
        # Every "<" we wrote opens one of our own links to an http(s) page.
        for start in (i for i, c in enumerate(text) if c == "<"):
            assert text.startswith(("<https://arxiv.org/", "<https://huggingface.co/"), start)
    joined = "\n".join(texts)
    assert "&lt;!channel&gt;" in joined and "&lt;@U123&gt;" in joined
    assert "&lt;http://evil|click&gt;" in joined and "Ann &amp; Bob" in joined
    assert "*bold*" not in joined and "~strike~" not in joined and "`code`" not in joined
    assert "javascript:" not in joined and "github.com/x/y" not in joined
    assert all(block.get("text", {}).get("verbatim", True) for block in message.blocks)


def test_markup_escapes_user_text_everywhere() -> None:
    markup = SlackMarkup()
    assert markup.code("a`b <!here>") == "`aˋb &lt;!here&gt;`"
    assert markup.bold(" word ") == " *word* "
    assert (
        markup.link("https://x.org/?a=1&b=2", "<!here>")
        == "<https://x.org/?a=1&amp;b=2|&lt;!here&gt;>"
    )
    help_blocks = text_message(help_text(markup)).blocks
    assert "`/papers generalization`" in help_blocks[0]["text"]["text"]


def test_escaping_never_cuts_an_entity_or_a_link() -> None:
    assert inert_within("&" * 100, 23) == "&amp;&amp;&amp;&amp;…"
    assert inert("a<b") == "a&lt;b"
    cut = clip("see <https://example.org/long|label> now", 20)
    assert cut == "see …"


@settings(max_examples=150, deadline=None)
@given(
    st.text(min_size=1, max_size=600),
    st.text(max_size=5000),
    st.lists(st.text(max_size=200), max_size=40),
    st.integers(0, 10**6),
    st.booleans(),
)
def test_the_worst_paper_stays_within_its_weight(
    title: str, abstract: str, authors: list[str], upvotes: int, uncertain: bool
) -> None:
    paper = Paper(
        "2606.12345",
        title,
        abstract=abstract,
        authors=tuple(authors),
        upvotes=upvotes,
        categories=("cs.LG",),
        sources=("hf", "arxiv"),
        github_repo="https://github.com/" + "a" * 300,
        project_page="https://example.org/" + "&" * 50,
    )
    stored = StoredPaper(paper, 1, T0, True)
    blocks = paper_blocks(stored, (), "matched " + abstract[:200], uncertain=uncertain)
    assert weight(blocks) <= PAPER_WEIGHT


def test_a_full_batch_of_the_heaviest_papers_still_fits_one_message() -> None:
    assert HEADER_CHARS + BLOCK_OVERHEAD + MAX_PAPERS_PER_MESSAGE * PAPER_WEIGHT <= MESSAGE_BUDGET
    heavy = Paper(
        "2606.12345",
        "&" * 400,
        abstract="<" * 5000,
        authors=tuple("&" * 100 for _ in range(30)),
        upvotes=10**6,
        categories=("cs.LG",),
        sources=("hf", "arxiv"),
        github_repo="https://github.com/" + "a" * 150,
    )
    items = [item(StoredPaper(heavy, n, T0, True), "title:x", uncertain=True) for n in range(10)]
    messages = digest_messages(items, SUB, header_count=10)
    assert len(messages) == 1
    assert problems(messages[0]) == []
    assert weight(messages[0].blocks) <= HEADER_CHARS + BLOCK_OVERHEAD + 10 * PAPER_WEIGHT


def test_many_papers_are_split_into_several_messages_never_one_too_big() -> None:
    papers = real_papers()
    items = [item(p) for p in papers]  # 30 papers in one call
    messages = digest_messages(items, SUB)
    assert len(messages) >= 2
    assert sum(len(m.blocks) for m in messages) == sum(
        len(paper_blocks(p.stored, p.match.hits)) for p in items
    )
    for message in messages:
        assert problems(message) == []


def test_headers_and_quiet_notes() -> None:
    header = header_message(SUB, 25)
    assert header.text == "25 new papers for generalization OR model"
    assert "thread" in header.blocks[1]["elements"][0]["text"]
    quiet = quiet_message(SUB)
    assert (
        quiet.blocks[0]["text"]["text"]
        == "*All quiet for `generalization OR model`: nothing new today.*"
    )
    hostile = DigestSubscription("s2", "slack-x", "<!channel> x")
    assert "<!channel>" not in json.dumps(header_message(hostile, 5).payload())


def search_page(query: str, page: int = 1, total: int = 12) -> SearchPage:
    results = [
        SearchResult(p, tuple(match_paper(parse_query("model"), p.paper) or ()), "matched model")
        for p in real_papers()[:5]
    ]
    return SearchPage(query, page, 5, SearchResults(results, total))


def test_search_page_has_paging_and_share_buttons() -> None:
    message = search_message(search_page("model", page=2))
    assert problems(message) == []
    actions = message.blocks[-1]
    labels = [e["text"]["text"] for e in actions["elements"]]
    assert labels == ["Previous", "More", "Share in channel"]
    assert [read_page_value(e["value"]) for e in actions["elements"]] == [
        ("model", 1, False),
        ("model", 3, False),
        ("model", 2, False),
    ]
    assert message.blocks[0]["text"]["text"] == "12 papers match `model` (showing 6–10)"
    last = search_message(search_page("model", page=3, total=15))
    assert [e["text"]["text"] for e in last.blocks[-1]["elements"]] == [
        "Previous",
        "Share in channel",
    ]


def test_shared_results_have_no_buttons_and_name_who_shared() -> None:
    message = search_message(search_page("model"), buttons=False, shared_by="U0ABC")
    assert all(block["type"] != "actions" for block in message.blocks)
    assert message.blocks[-1]["elements"][0]["text"] == "Shared by <@U0ABC>"
    forged = search_message(search_page("model"), buttons=False, shared_by="U1> <!channel")
    assert "<!channel" not in json.dumps(forged.blocks)


def test_button_values_refuse_what_slack_would_not_take() -> None:
    assert page_value("x" * 3000, 2) is None
    for bad in (
        "",
        "{}",
        '{"q": "", "p": 1}',
        '{"q": "x", "p": 0}',
        "not json",
        '{"q": 1, "p": 2}',
    ):
        assert read_page_value(bad) is None


def test_no_results_is_one_line_without_buttons() -> None:
    message = search_message(SearchPage("zzz <!here>", 1, 5, SearchResults([], 0)))
    assert len(message.blocks) == 1
    assert message.blocks[0]["text"]["text"] == "No stored paper matches `zzz &lt;!here&gt;`."
    assert message.text == "No stored paper matches zzz &lt;!here&gt;"
