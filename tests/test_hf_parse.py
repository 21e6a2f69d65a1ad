"""Hugging Face Daily Papers parsers, on real captured responses and on hostile input."""

from __future__ import annotations

import copy
import html
import json
import re
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bridge.ids import split_arxiv_id
from bridge.models import Paper, ParseResult
from bridge.sources import html_cost
from bridge.sources.hf_parse import parse_api, parse_html, quick_clean, quick_clean_all
from bridge.text import clean_text

FIXTURES = Path(__file__).parent / "fixtures" / "hf"
API_BYTES = (FIXTURES / "daily_papers_api_limit30_2026-06-13.json").read_bytes()
HTML_BYTES = (FIXTURES / "papers_page_date_2024-08-01.html").read_bytes()
HTML_TEXT = HTML_BYTES.decode()
API_URL = "https://huggingface.co/api/daily_papers?limit=30"
HTML_URL = "https://huggingface.co/papers?date=2024-08-01"

# Bounded so the whole file stays well under 20 s on one slow core.
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def api_items() -> list[dict]:
    return json.loads(API_BYTES)


def embedded_props() -> dict:
    """The DailyPapers data-props, read with the standard library rather than selectolax."""
    start = HTML_TEXT.index('data-target="DailyPapers" data-props="')
    start = HTML_TEXT.index('data-props="', start) + len('data-props="')
    end = HTML_TEXT.index('"', start)
    return json.loads(html.unescape(HTML_TEXT[start:end]))


def page(props: object, body: str = "") -> str:
    escaped = html.escape(json.dumps(props))
    return (
        f'<html><body><div class="SVELTE_HYDRATER contents" data-target="DailyPapers" '
        f'data-props="{escaped}">{body}</div></body></html>'
    )


def by_id(result: ParseResult) -> dict[str, Paper]:
    return {paper.arxiv_id: paper for paper in result.papers}


def assert_well_formed(result: ParseResult, url: str) -> None:
    assert isinstance(result, ParseResult)
    for paper in result.papers:
        assert isinstance(paper, Paper)
        assert paper.source == "hf"
        assert paper.arxiv_id and split_arxiv_id(paper.arxiv_id) == (paper.arxiv_id, None)
        assert paper.title and paper.title == clean_text(paper.title)
        assert paper.abstract == clean_text(paper.abstract)
        assert all(isinstance(name, str) and name for name in paper.authors)
        assert all(isinstance(word, str) and word for word in paper.ai_keywords)
        assert paper.published_at is None or paper.published_at.utcoffset() == timedelta(0)
        for count in (paper.upvotes, paper.num_comments, paper.github_stars):
            assert count is None or (type(count) is int and count >= 0)
    for problem in result.problems:
        assert problem.source == "hf"
        assert problem.url == url
        assert problem.problem
        # parse_html's last-resort guard turns its own bugs into a problem; it may not fire.
        assert not problem.problem.startswith("parser failed")


# --- the real API response ---------------------------------------------------------------


def test_api_fixture_gives_all_thirty_papers_of_the_latest_day():
    result = parse_api(API_BYTES, API_URL)

    assert result.problems == []
    assert len(result.papers) == 30
    assert len(by_id(result)) == 30
    assert {paper.listed_on for paper in result.papers} == {date(2026, 6, 12)}
    assert_well_formed(result, API_URL)


def test_api_fixture_first_paper_fields():
    paper = parse_api(API_BYTES, API_URL).papers[0]

    assert paper.arxiv_id == "2606.00467"
    assert paper.version is None
    assert paper.title.startswith("On the Limits of LLM Adaptability: Impact of Model-Internalized")
    assert paper.authors == ("Etienne Casanova", "Rafal Kocielnik", "R. Michael Alvarez")
    assert paper.abstract.startswith("Large Language Models (LLMs) are increasingly used")
    assert paper.published_at == datetime(2026, 5, 30, tzinfo=UTC)
    assert paper.upvotes == 0
    assert paper.num_comments == 2
    assert paper.organization == "California institute of technology"
    assert paper.ai_summary.startswith("Large language models exhibit limited ability")
    assert paper.ai_keywords[:2] == ("zero-shot annotation", "LLM-as-a-judge")
    assert len(paper.ai_keywords) == 14
    assert paper.github_repo is None
    assert paper.github_stars is None
    assert paper.thumbnail == (
        "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2606.00467.png"
    )


def test_api_fixture_paper_with_code():
    paper = by_id(parse_api(API_BYTES, API_URL))["2606.13392"]

    assert paper.title == "MiniMax Sparse Attention"
    assert paper.authors[0] == "Xunhao Lai"
    assert paper.upvotes == 103
    assert paper.num_comments == 4
    assert paper.github_repo == "https://github.com/MiniMax-AI/MSA"
    assert paper.github_stars == 251
    assert paper.organization == "MiniMax"
    assert paper.published_at == datetime(2026, 6, 11, tzinfo=UTC)


def test_api_fixture_drops_the_hidden_author():
    paper = by_id(parse_api(API_BYTES, API_URL))["2606.12575"]

    # The fixture lists ten authors; Dengyang Jiang claimed the paper and hid himself.
    assert "Dengyang Jiang" not in paper.authors
    assert len(paper.authors) == 9
    assert paper.authors[:3] == ("Dongyang Liu", "Ruoyi Du", "David Liu")


def test_api_fixture_abstract_line_breaks_are_collapsed():
    paper = by_id(parse_api(API_BYTES, API_URL))["2606.09446"]

    assert "\n" not in paper.abstract
    assert "and positioning. Our contributions are twofold." in paper.abstract


def test_api_accepts_str_as_well_as_bytes():
    assert parse_api(API_BYTES.decode(), API_URL) == parse_api(API_BYTES, API_URL)


def test_api_accepts_a_byte_order_mark():
    text = "\ufeff" + API_BYTES.decode()
    assert len(parse_api(text, API_URL).papers) == 30
    assert len(parse_api(text.encode(), API_URL).papers) == 30


# --- the real listing page ---------------------------------------------------------------


def test_html_fixture_gives_thirteen_papers_of_the_day():
    result = parse_html(HTML_BYTES, HTML_URL)

    assert result.problems == []
    assert len(result.papers) == 13
    assert {paper.listed_on for paper in result.papers} == {date(2024, 8, 1)}
    assert [p.arxiv_id for p in result.papers][:3] == ["2407.21783", "2407.21705", "2407.21770"]
    assert_well_formed(result, HTML_URL)


def test_html_fixture_llama_paper_fields():
    paper = by_id(parse_html(HTML_BYTES, HTML_URL))["2407.21783"]

    assert paper.title == "The Llama 3 Herd of Models"
    assert paper.authors[0] == "Abhimanyu Dubey"
    assert len(paper.authors) == 533
    assert paper.upvotes == 94
    assert paper.num_comments == 5
    assert paper.published_at == datetime(2024, 7, 31, 17, 54, 27, tzinfo=UTC)
    assert paper.abstract.startswith(
        "Modern artificial intelligence (AI) systems are powered by foundation models. "
        "This paper presents a new set of foundation models, called Llama 3."
    )
    # 2024 items have no AI summary, no code links and no organisation.
    assert paper.ai_summary is None
    assert paper.ai_keywords == ()
    assert paper.github_repo is None
    assert paper.organization is None


def test_html_fixture_prefers_the_unwrapped_outer_title():
    papers = by_id(parse_html(HTML_BYTES, HTML_URL))

    assert papers["2407.21770"].title == (
        "MoMa: Efficient Early-Fusion Pre-training with Mixture of Modality-Aware Experts"
    )
    assert papers["2404.01300"].title == (
        "NeRF-MAE: Masked AutoEncoders for Self-Supervised 3D Representation Learning "
        "for Neural Radiance Fields"
    )


def test_html_fixture_drops_the_hidden_author():
    paper = by_id(parse_html(HTML_BYTES, HTML_URL))["2407.21781"]

    assert "Xuanyu Huang" not in paper.authors
    assert paper.authors == (
        "Qiayuan Liao",
        "Bike Zhang",
        "Xiaoyu Huang",
        "Zhongyu Li",
        "Koushil Sreenath",
    )


def test_html_and_api_paths_agree_on_the_same_data():
    props = embedded_props()
    via_api = parse_api(json.dumps(props["dailyPapers"]), HTML_URL)
    via_html = parse_html(HTML_BYTES, HTML_URL)

    assert via_api.problems == via_html.problems == []
    assert via_api.papers == via_html.papers
    # Without a date in the URL, the 2024 outer publishedAt (the featuring time) still dates them.
    undated = parse_api(json.dumps(props["dailyPapers"]), API_URL)
    assert {p.listed_on for p in undated.papers} == {date(2024, 8, 1)}


def test_a_paper_page_gives_its_paper():
    """/papers/<id>: the PaperContent hydrater holds the paper as a listing item does."""
    url = "https://huggingface.co/papers/2509.24002"
    result = parse_html((FIXTURES / "paper_page_2509.24002_bs4_prettified.html").read_bytes(), url)

    assert result.problems == []
    [paper] = result.papers
    assert paper.arxiv_id == "2509.24002"
    assert paper.title == (
        "MCPMark: A Benchmark for Stress-Testing Realistic and Comprehensive MCP Use"
    )
    assert paper.authors[:2] == ("Zijian Wu", "Xiangyan Liu") and len(paper.authors) == 15
    assert paper.abstract.startswith("MCP standardizes how LLMs interact with external systems,")
    assert "52.56\\% pass@1" in paper.abstract  # LaTeX kept as written
    assert paper.upvotes == 118 and paper.num_comments == 2
    assert paper.github_repo == "https://github.com/eval-sys/mcpmark"
    assert paper.project_page == "https://mcpmark.ai/"
    assert paper.listed_on == date(2025, 10, 1)
    assert paper.ai_keywords[:2] == ("MCP", "LLMs")


def test_a_paper_page_without_its_paper_gives_one_problem():
    text = '<div data-target="PaperContent" data-props="{&quot;comments&quot;:[]}"></div>'
    result = parse_html(text, "https://huggingface.co/papers/2509.24002")
    assert result.papers == []
    assert [p.problem for p in result.problems] == ["PaperContent data-props has no paper object"]


def test_html_selects_the_hydrater_by_data_target_not_position():
    decoy = '<div data-target="MainHeader" data-props="{&quot;dailyPapers&quot;:[]}"></div>'
    props = {"date": "2024-08-01T00:00:00.000Z", "dailyPapers": api_items()[:2]}
    text = decoy + f"<main><section><div><div>{page(props)}</div></div></section></main>"

    result = parse_html(text, "https://huggingface.co/papers")

    assert [p.arxiv_id for p in result.papers] == ["2606.00467", "2606.12730"]
    assert result.problems == []


def test_html_empty_day_is_not_a_problem():
    result = parse_html(page({"date": "2024-08-03T00:00:00.000Z", "dailyPapers": []}), HTML_URL)
    assert result == ParseResult([], [])


@pytest.mark.parametrize(
    "breakage",
    [
        pytest.param(
            lambda t: t.replace('data-target="DailyPapers"', 'data-target="X"'), id="gone"
        ),
        pytest.param(
            lambda t: t.replace('data-props="{&quot;canSubmit', 'data-props="{{&quot;canSubmit'),
            id="broken-json",
        ),
        pytest.param(
            lambda t: t.replace("&quot;dailyPapers&quot;:", "&quot;papers&quot;:", 1),
            id="no-dailyPapers",
        ),
    ],
)
def test_html_falls_back_to_article_cards(breakage):
    broken = breakage(HTML_TEXT)
    assert broken != HTML_TEXT
    full = parse_html(HTML_BYTES, HTML_URL)

    result = parse_html(broken, HTML_URL)

    assert [(p.arxiv_id, p.title, p.upvotes, p.num_comments) for p in result.papers] == [
        (p.arxiv_id, p.title, p.upvotes, p.num_comments) for p in full.papers
    ]
    assert {p.listed_on for p in result.papers} == {date(2024, 8, 1)}
    assert all(p.abstract == "" and p.authors == () for p in result.papers)
    # The caller learns once that this page was read the degraded way.
    assert len(result.problems) == 1
    assert result.problems[0].record is None
    assert "article cards" in result.problems[0].problem
    assert_well_formed(result, HTML_URL)


def test_card_fallback_skips_date_links_and_reports_bad_cards():
    cards = (
        '<article><h3><a href="/papers/date/2024-08-01">Previous day</a></h3></article>'
        '<article><h3><a href="/papers/2407.21783">The Llama 3\n  Herd</a></h3>'
        '<div class="leading-none">Submitted by akhaliq</div><div class="leading-none">1,204</div>'
        '<a href="/papers/2407.21783#community">7</a></article>'
        '<article><h3><a href="/papers/not-a-paper">Nope</a></h3></article>'
        '<article><h3><a href="/papers/2407.21705"> </a></h3></article>'
        "<article><p>an advert</p></article>"
    )
    result = parse_html(
        f"<html><body>{cards}</body></html>", "https://hf.co/papers/date/2024-08-01"
    )

    assert result.papers == [
        Paper(
            arxiv_id="2407.21783",
            title="The Llama 3 Herd",
            source="hf",
            listed_on=date(2024, 8, 1),
            upvotes=1204,
            num_comments=7,
        )
    ]
    assert [(p.record, p.problem) for p in result.problems[1:]] == [
        ("2", "card link '/papers/not-a-paper' has no arXiv id"),
        ("2407.21705", "card has no title"),
    ]


# --- records that cannot be read -----------------------------------------------------------


def _without_titles(item: dict) -> dict:
    item.pop("title")
    item["paper"].pop("title")
    return item


@pytest.mark.parametrize(
    ("corrupt", "record", "words"),
    [
        (lambda item: "garbage", "14", "item is a string"),
        (lambda item: None, "14", "item is null"),
        (lambda item: [item], "14", "item is an array"),
        (lambda item: {**item, "paper": 5}, "14", "'paper' is a number"),
        (lambda item: {"title": "orphan"}, "14", "neither 'paper' nor 'id'"),
        (lambda item: {**item, "paper": {**item["paper"], "id": 2606}}, "14", "id is a number"),
        (lambda item: {**item, "paper": {**item["paper"], "id": "n/a"}}, "14", "not an arXiv id"),
        (lambda item: {**item, "paper": {}}, "14", "id is null"),
        (_without_titles, "2606.12243", "no title"),
    ],
)
def test_one_corrupted_item_skips_only_that_record(corrupt, record, words):
    items = api_items()
    kept = [item["paper"]["id"] for n, item in enumerate(items) if n != 14]
    items[14] = corrupt(copy.deepcopy(items[14]))

    result = parse_api(json.dumps(items), API_URL)

    assert [p.arxiv_id for p in result.papers] == kept
    assert len(result.problems) == 1
    problem = result.problems[0]
    assert (problem.source, problem.url, problem.record) == ("hf", API_URL, record)
    assert words in problem.problem


def test_wrong_typed_optional_fields_are_dropped_not_fatal():
    item = api_items()[21]
    item["paper"].update(
        authors="Xunhao Lai, Weiqi Xu",
        upvotes="abc",
        githubStars=1.5,
        githubRepo=5,
        projectPage=[],
        ai_summary={"text": "x"},
        ai_keywords="sparse attention",
        organization=["MiniMax"],
        publishedAt="yesterday",
        submittedOnDailyAt=20260612,
        summary=None,
    )
    item.update(
        numComments=True,
        thumbnail={},
        organization="MiniMax",
        summary=7,
        publishedAt="2026-06-10T20:00:00.000Z",
    )

    [paper] = parse_api(json.dumps([item]), API_URL).papers

    assert paper.arxiv_id == "2606.13392"
    assert paper.title == "MiniMax Sparse Attention"
    assert paper.abstract == ""
    assert paper.authors == ()
    for name in ("upvotes", "num_comments", "github_stars", "github_repo", "project_page"):
        assert getattr(paper, name) is None, name
    assert (paper.ai_summary, paper.ai_keywords, paper.thumbnail) == (None, (), None)
    assert (paper.organization, paper.published_at) == (None, None)
    assert paper.listed_on == date(2026, 6, 10)  # the outer publishedAt, as a last resort


@pytest.mark.parametrize("value", [True, -3, 2**40, "12", 3.0, None])
def test_counts_must_be_plain_non_negative_ints(value):
    item = api_items()[0]
    item["paper"]["upvotes"] = value
    [paper] = parse_api(json.dumps([item]), API_URL).papers
    assert paper.upvotes is None


def test_odd_author_entries():
    item = api_items()[0]
    item["paper"]["authors"] = [
        {"name": "Ada  Lovelace\n", "hidden": False},
        {"name": "Hidden Person", "hidden": True},
        {"name": "Maybe Hidden", "hidden": "yes"},
        {"name": ""},
        {"hidden": False},
        "Plain String",
        7,
        None,
    ]
    [paper] = parse_api(json.dumps([item]), API_URL).papers
    assert paper.authors == ("Ada Lovelace", "Plain String")


# Bidi overrides and isolates, marks, zero-width and soft-hyphen characters, and a joiner
# next to Latin: each would let a text display as something else or hide a word.
POISON = ("\u202e", "\u200b\u00ad\u2066", "\u200f\ufeff\u200d\u2069\u061c\u2060")


def poison(text: str) -> str:
    """``text`` with invisible characters at both ends and inside its first word."""
    return POISON[0] + text[:2] + POISON[1] + text[2:] + POISON[2]


def poison_every_text(item: dict) -> dict:
    """A copy of an API item with every text field a paper is read from poisoned."""
    item = copy.deepcopy(item)
    inner = item["paper"]
    for holder, key in [(item, "title"), (inner, "title"), (item, "summary"), (inner, "summary")]:
        holder[key] = poison(holder[key])
    for key in ("ai_summary", "githubRepo", "projectPage", "thumbnail"):
        inner[key] = poison(inner.get(key) or "https://example.org/x")
    item["thumbnail"] = poison(item.get("thumbnail") or "https://example.org/t.png")
    inner["ai_keywords"] = [poison(word) for word in inner.get("ai_keywords") or ["kw"]]
    for author in inner["authors"]:
        author["name"] = poison(author["name"])
    item["organization"] = {"name": poison("org"), "fullname": poison("Org Lab")}
    return item


def unpoisoned_twin(item: dict) -> dict:
    twin = copy.deepcopy(item)
    for key, value in list(twin.items()):
        twin[key] = _strip_poison(value)
    return twin


def _strip_poison(value: object) -> object:
    if isinstance(value, str):
        for chars in POISON:
            value = value.replace(chars, "")
        return value
    if isinstance(value, list):
        return [_strip_poison(v) for v in value]
    if isinstance(value, dict):
        return {k: _strip_poison(v) for k, v in value.items()}
    return value


def test_invisible_characters_are_removed_from_every_text_field():
    item = poison_every_text(api_items()[21])  # a paper with code, keywords and an org
    clean = unpoisoned_twin(item)
    expected = parse_api(json.dumps([clean]), API_URL).papers
    assert expected[0].github_repo and expected[0].ai_keywords and expected[0].organization

    via_api = parse_api(json.dumps([item]), API_URL)
    via_page = parse_html(page({"dailyPapers": [item]}), API_URL)

    assert via_api.papers == via_page.papers == expected
    assert via_api.problems == via_page.problems == []


def test_invisible_characters_are_removed_from_card_titles():
    card = (
        '<article><h3><a href="/papers/2407.21783">{}</a></h3>'
        '<div class="leading-none">94</div></article>'
    )
    url = "https://hf.co/papers/date/2024-08-01"
    clean = parse_html(card.format("The Llama 3 Herd"), url)
    result = parse_html(card.format(poison("The Llama 3 Herd")), url)
    assert result.papers == clean.papers
    assert result.papers[0].title == "The Llama 3 Herd"


def test_text_is_cleaned_and_latex_kept():
    item = api_items()[0]
    del item["title"]
    item["paper"]["title"] = "Q&amp;A for $\\alpha$-nets\n  via &lt;b&gt;\tand&#39;s \\'Etude "
    item["summary"] = "  We show $O(n^{2})$\n\n  bounds &amp; more.\n"
    item["paper"]["ai_keywords"] = ["  LLM\n", "", "&quot;RAG&quot;", 4]

    [paper] = parse_api(json.dumps([item]), API_URL).papers

    assert paper.title == "Q&A for $\\alpha$-nets via <b> and's \\'Etude"
    assert paper.abstract == "We show $O(n^{2})$ bounds & more."
    assert paper.ai_keywords == ("LLM", '"RAG"')


def test_organization_falls_back_from_outer_to_paper_and_fullname_to_name():
    item = api_items()[0]
    item["organization"] = {"name": "", "fullname": None}
    item["paper"]["organization"] = {"name": "caltech"}
    [paper] = parse_api(json.dumps([item]), API_URL).papers
    assert paper.organization == "caltech"


def test_bare_paper_objects_from_search_are_read():
    bare = api_items()[0]["paper"]
    undated = {k: v for k, v in bare.items() if k != "submittedOnDailyAt"}

    result = parse_api(json.dumps([bare, undated]), "https://huggingface.co/api/papers/search?q=x")

    first, second = result.papers
    assert first.arxiv_id == "2606.00467"
    assert first.title.startswith("On the Limits of LLM Adaptability")
    assert first.abstract.startswith("Large Language Models (LLMs)")
    assert first.listed_on == date(2026, 6, 12)
    assert first.num_comments is None
    # A bare paper's publishedAt is the arXiv date, never a listing day.
    assert second.listed_on is None


def test_versioned_or_url_ids_are_reduced_to_the_bare_id():
    item = api_items()[0]
    item["paper"]["id"] = "https://arxiv.org/abs/2606.00467v3"
    [paper] = parse_api(json.dumps([item]), API_URL).papers
    assert (paper.arxiv_id, paper.version) == ("2606.00467", 3)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://huggingface.co/api/daily_papers?date=2024-08-02", date(2024, 8, 2)),
        ("https://huggingface.co/papers/date/2025-03-04", date(2025, 3, 4)),
        ("https://huggingface.co/papers/date/2025-03-04?x=1", date(2025, 3, 4)),
        ("https://huggingface.co/api/daily_papers?date=2024-13-45", date(2024, 8, 1)),
        ("https://huggingface.co/api/daily_papers?date=2024-08-02x", date(2024, 8, 1)),
        ("http://[::1", date(2024, 8, 1)),
    ],
)
def test_listing_day_without_submitted_on_daily_at(url, expected):
    item = embedded_props()["dailyPapers"][0]  # 2024 shape: outer publishedAt 2024-08-01T01:21
    assert "submittedOnDailyAt" not in item["paper"]
    [paper] = parse_api(json.dumps([item]), url).papers
    assert paper.listed_on == expected


def test_week_page_date_is_not_a_listing_day():
    item = embedded_props()["dailyPapers"][0]
    props = {"date": "2024-07-29T00:00:00.000Z", "periodType": "week", "dailyPapers": [item]}
    [paper] = parse_html(page(props), "https://huggingface.co/papers/week/2024-W31").papers
    assert paper.listed_on == date(2024, 8, 1)


def test_empty_array_is_an_empty_day_not_a_problem():
    assert parse_api(b"[]", API_URL) == ParseResult([], [])


def test_huge_records_are_read_and_huge_ids_refused():
    item = api_items()[0]
    item["summary"] = "word " * 1_000_000
    item["paper"]["authors"] = [{"name": f"Author {n}", "hidden": False} for n in range(50_000)]
    junk = copy.deepcopy(item)
    junk["paper"]["id"] = "2606.00467" * 100_000

    result = parse_api(json.dumps([item, junk]), API_URL)

    [paper] = result.papers
    assert len(paper.abstract) == len("word " * 1_000_000) - 1
    assert len(paper.authors) == 50_000
    [problem] = result.problems
    assert problem.record == "1"
    assert len(problem.problem) < 200


# --- responses that cannot be read at all -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"", "not JSON"),
        (b"<!doctype html><html>502 Bad Gateway</html>", "not JSON"),
        (b"\xff\xfe\x00garbage", "not JSON"),
        (b"\x80\x81", "not JSON"),
        ('[{"paper": {"id": "2606.00467"', "not JSON"),
        ("[" * 100_000, "nested too deeply"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        (b"null", "got null"),
        (b"42", "got a number"),
        (b'"papers"', "got a string"),
        (b'{"dailyPapers": []}', "got an object"),
        (b'{"error": "Invalid date"}', "Invalid date"),
    ],
)
def test_unreadable_api_response_gives_one_problem(text, words):
    result = parse_api(text, API_URL)

    assert result.papers == []
    [problem] = result.problems
    assert (problem.source, problem.url, problem.record) == ("hf", API_URL, None)
    assert words in problem.problem


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no DailyPapers element and no paper cards"),
        (b"\x00\xff\xfe", "no DailyPapers element and no paper cards"),
        ("<html><body><p>We are down</p></body></html>", "no DailyPapers element"),
        (API_BYTES, "no DailyPapers element"),
        ('<div data-target="DailyPapers"></div>', "has no data-props"),
        ('<div data-target="DailyPapers" data-props="{oops"></div>', "data-props is not JSON"),
        ('<div data-target="DailyPapers" data-props="[1]"></div>', "not an object"),
        ("<div>" * 1_000, "no DailyPapers element"),
        ("<div>" * 5_000, "unreadable page: elements nested too deeply"),
        ("\ud800<p>lone surrogate</p>", "no DailyPapers element"),
    ],
)
def test_unreadable_page_gives_one_problem(text, words):
    result = parse_html(text, HTML_URL)

    assert result.papers == []
    [problem] = result.problems
    assert (problem.source, problem.url, problem.record) == ("hf", HTML_URL, None)
    assert words in problem.problem


def test_truncated_hydrater_attribute_gives_one_problem():
    cut = HTML_TEXT.index("Llama 3 Herd")  # inside the data-props attribute
    result = parse_html(HTML_TEXT[:cut], HTML_URL)
    assert result.papers == []
    assert len(result.problems) == 1


def test_bytes_that_are_not_utf8_spoil_nothing():
    # selectolax 0.3 raised UnicodeDecodeError reading an attribute holding such bytes.
    in_props = HTML_BYTES.replace(b"Herd of Models", b"Herd of Models\x80\xff", 1)
    in_link = HTML_BYTES.replace(b'href="/papers/2407.21783"', b'href="/papers/2407.21783#\xff"')
    assert in_props.index(b"\x80") < HYDRATER_END and in_link != HTML_BYTES

    result = parse_html(in_props, HTML_URL)
    assert result == parse_html(in_props.decode("utf-8", "replace"), HTML_URL)
    assert len(result.papers) == 13 and result.problems == []
    cards = in_link.replace(b'data-target="DailyPapers"', b'data-target="X"')
    assert len(parse_html(cards, HTML_URL).papers) == 13


# --- hostile pages: refused before the tree builder spends unbounded work ---------------------

# Each costs an HTML5 tree builder time (or memory) that grows with the square of its size:
# 100,000 nested <div>s took 22.8 s of CPU in lexbor. What matters here is the outcome.
HOSTILE_PAGES = [
    ("<div>" * 100_000, "elements nested too deeply"),
    ("<ul><li>" * 50_000, "elements nested too deeply"),
    ("<select>" + "<option>" * 100_000, "elements nested too deeply"),
    ("<article><h3>" * 50_000, "elements nested too deeply"),
    ("<div><!--</div>-->" * 50_000, "elements nested too deeply"),
    ("<div><script></div></script>" * 50_000, "elements nested too deeply"),
    ("<svg><div/>" * 50_000, "elements nested too deeply"),
    ("<b><div></b>" * 50_000, "too many formatting elements left open"),
    ("".join(f"<b id={n}>" for n in range(100_000)), "too many formatting elements left open"),
    (
        "<div>" * 1_000 + "".join(f"<b id={n}>" for n in range(1_000)) + "</div>x" * 1_000,
        "too many formatting elements left open",
    ),
    ("<i></i>" * 1_000_000, "more than 200,000 tags"),
    # Where the tree builder reads <textarea> and <style> text as markup, which the walk
    # does not follow: no listing page has either, and a large one is refused.
    ("<frameset><textarea>" + "<div>" * 3_000, "a frameset page"),
    ("<template><col><style>" + "<div>" * 3_000, "a template with columns"),
    ("<select><style>" + "<div>" * 3_000, "a <style> inside a <select>"),
]


@pytest.mark.parametrize(
    ("page", "words"),
    HOSTILE_PAGES,
    ids=[
        "nested-divs",
        "nested-lists",
        "nested-options",
        "nested-cards",
        "divs-behind-comments",
        "divs-behind-scripts",
        "divs-breaking-out-of-svg",
        "blocks-splitting-formatting",
        "distinct-formatting",
        "formatting-re-created-after-each-block",
        "a-million-tags",
        "frameset",
        "template-with-columns",
        "style-in-select",
    ],
)
def test_a_hostile_page_is_refused_with_one_problem(page, words):
    for text in (page, HTML_TEXT.replace("<main", page + "<main", 1)):
        result = parse_html(text, HTML_URL)
        assert result.papers == []
        assert [(p.record, p.problem) for p in result.problems] == [
            (None, f"unreadable page: {words}")
        ]


def cards_page(count: int) -> str:
    """The fixture page with its article cards repeated to ``count`` distinct papers."""
    cards = re.findall(r"<article.*?</article>", HTML_TEXT, re.S)
    grown = "".join(
        re.sub(r"2407\.\d{5}|2404\.\d{5}", f"2408.{10_000 + n:05d}", cards[n % len(cards)])
        for n in range(count)
    )
    first, last = HTML_TEXT.index(cards[0]), HTML_TEXT.index(cards[-1]) + len(cards[-1])
    return HTML_TEXT[:first] + grown + HTML_TEXT[last:]


@pytest.mark.parametrize(
    "extra",
    [
        "<div>" * 1_000 + "</div>" * 1_000,
        "<div></div>" * 20_000,
        ("<svg>" + "<path d='M0 0'/>" * 10 + "</svg>") * 500,
        "<p>unclosed" * 1_000,
    ],
    ids=["1000-deep", "20000-flat", "500-icons", "1000-unclosed-paragraphs"],
)
def test_a_good_page_is_still_read(extra):
    full = parse_html(HTML_BYTES, HTML_URL)
    result = parse_html(HTML_TEXT.replace("<main", extra + "<main", 1), HTML_URL)
    assert result == full


def test_a_hundred_card_page_is_read_by_its_cards():
    page = cards_page(100).replace('data-target="DailyPapers"', 'data-target="X"')
    result = parse_html(page, HTML_URL)
    assert len(result.papers) == 100
    assert [p.record for p in result.problems] == [None]  # read by the cards, and says so


def lexbor_tree(page: str) -> tuple[int, int]:
    """How many elements lexbor builds for ``page``, and how deep the deepest lies."""
    from selectolax.lexbor import LexborHTMLParser

    elements = deepest = 0
    pending = [(LexborHTMLParser(page).root, 1)]
    while pending:
        node, depth = pending.pop()
        while node is not None:
            if node.tag and not node.tag.startswith(("-", "_")):  # not text or a comment
                elements += 1
                deepest = max(deepest, depth)
                if node.child is not None:
                    pending.append((node.child, depth + 1))
            node = node.next
    return elements, deepest


SOUP = st.sampled_from(
    ["<div>", "</div>", "<p>", "</p>", "<span>", "</span>", "<ul>", "<li>", "</ul>", "<h3>"]
    + ["<b>", "</b>", "<b id={n}>", "<i>", "</i>", "<a>", "</a>", "<font id={n}>", "<nobr>"]
    + ["<table>", "<td>", "<tr>", "</table>", "<select>", "<option>", "<optgroup>"]
    + ["<svg>", "</svg>", "<g>", "</g>", "<g/>", "<path/>", "<math>", "<mi>", "<div/>", "<br/>"]
    + ["<foreignObject>", "<desc>", "<script>", "</script>", "<style>", "</style>", "<title>"]
    + ["</title>", "<textarea>", "</textarea>", "<template>", "</template>", "<button>"]
    + ["<!--", "-->", "--!>", "<![CDATA[", "]]>", ">", "x", " ", '"', "<x y='", "</br>", "<form>"]
    + ["<h1>", "</h1>", "<h2>", "<dd>", "<dt>", "<ruby>", "<rb>", "<rt>", "<caption>", "<col>"]
    + ["<tbody>", "<th>", "</td>", "</tr>", "<head>", "</head>", "<body>", "</body>", "</html>"]
    + ["<input>", "<q>", "</q>", "</nobr>", "<image>", "<object>", "</p>", "</li>", "</select>"]
    + ["</option>", "</form>", "<button>", "</button>", "<frameset>", "<marquee>", "<mtext>"]
    + ["<col>", "<colgroup>", "<noframes>", "<iframe>", "<xmp>", "<noscript>", "<plaintext>"]
)


@SLOW
@given(st.lists(SOUP, min_size=1, max_size=8).map("".join), st.integers(50, 300))
@example("<svg><div/>", 300)
@example("<div><!--</div>-->", 300)
@example("<b><div></b>", 300)
@example("<select><option>", 300)
@example("<svg><style><div>", 300)
@example("<div><b id={n}></div>x", 300)
@example("<optgroup><div/><br/></a><g/></div></style><mi></p><p><svg>", 100)
@example("<p><span><div></div><q><q><q></span>", 100)
@example("</td><td><mtext>", 100)
@example("</p></ul></body><body><math></body></span>", 300)
@example("</form></template></i><ruby><g><template><col><style></option><optgroup>", 300)
@example("</li><select><plaintext><input></nobr><object></textarea><q><math>", 300)
def test_refusal_never_underestimates_the_tree_builder(snippet, repeats):
    """The walk bounds what lexbor really builds, whatever the tag soup: the builder's work
    per tag grows with its depth, and its elements beyond three per tag (a <td> in a table
    implies <tbody> and <tr>) are formatting elements it re-created."""
    # "{n}" numbers each repetition, so that formatting elements differ and are all kept.
    page = "".join(snippet.format(n=n) for n in range(repeats))
    unbounded = html_cost.Limits(tags=10**12, depth_work=10**12, formatting_work=10**12)

    walk = html_cost._walk(page, unbounded)
    if walk.refusal:  # a page that is refused for what it is, not for its size
        assert walk.refusal in ("a frameset page", "a template with columns") or (
            walk.refusal.endswith("> inside a <select>")
        )
        return

    # What the walk counts, check's first test bounds from counts alone.
    tags, starts = page.count("<"), page.count("<") - page.count("</")
    assert walk.tags <= tags
    assert walk.depth_work <= tags * starts
    assert walk.formatting_work <= tags * len(html_cost._FORMATTING_START.findall(page))
    # What lexbor builds from the page as the walk rewrote it: html, head and body above
    # everything, each element at most three deep per level the walk counts, and at most
    # three elements per tag besides the re-created formatting ones.
    elements, deepest = lexbor_tree(walk.page)
    assert deepest <= 3 * walk.deepest + 3
    assert elements <= 3 * walk.tags + walk.formatting_work + 3


# --- properties: never raise, only well-formed papers ------------------------------------------

KEYS = [
    "paper",
    "id",
    "title",
    "summary",
    "authors",
    "name",
    "hidden",
    "publishedAt",
    "submittedOnDailyAt",
    "upvotes",
    "numComments",
    "githubRepo",
    "githubStars",
    "projectPage",
    "ai_summary",
    "ai_keywords",
    "thumbnail",
    "organization",
    "fullname",
    "error",
    "dailyPapers",
    "date",
    "periodType",
]
PLAUSIBLE = [
    "2407.21783",
    "hep-th/9901001v2",
    "https://arxiv.org/abs/2606.00467v3",
    "2024-08-01",
    "2024-08-01T01:21:47.935Z",
    "0001-01-01T00:00:00+05:00",
    "9999-12-31T23:59:59-05:00",
    "day",
    "week",
    "&amp; $\\alpha$\n  x",
    "\u00a0\u2028",
]
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(PLAUSIBLE)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4), children, max_size=6)
    ),
    max_leaves=40,
)
# Real items with one field replaced anywhere in them reach deeper than random JSON does.
REAL_ITEMS = api_items()[:3] + embedded_props()["dailyPapers"][:1]


def _replace_somewhere(value: object, path: list[int], new: object) -> object:
    if not path or not isinstance(value, dict | list) or not value:
        return new
    step, rest = path[0], path[1:]
    if isinstance(value, dict):
        key = sorted(value)[step % len(value)]
        return {**value, key: _replace_somewhere(value[key], rest, new)}
    index = step % len(value)
    return [*value[:index], _replace_somewhere(value[index], rest, new), *value[index + 1 :]]


mutated_items = st.builds(
    _replace_somewhere,
    st.sampled_from(REAL_ITEMS),
    st.lists(st.integers(0, 50), min_size=1, max_size=4),
    json_values,
)


@FAST
@given(st.text() | st.binary())
def test_parse_api_never_raises_on_arbitrary_text(text):
    result = parse_api(text, API_URL)
    assert_well_formed(result, API_URL)
    assert result.papers or result.problems or text.strip() in ("[]", b"[]")


@FAST
@given(st.text() | st.binary())
def test_parse_html_never_raises_on_arbitrary_text(text):
    assert_well_formed(parse_html(text, HTML_URL), HTML_URL)


@FAST
@given(json_values | st.lists(json_values | mutated_items, max_size=5))
def test_parse_api_never_raises_on_arbitrary_json(value):
    result = parse_api(json.dumps(value), API_URL)
    assert_well_formed(result, API_URL)
    if isinstance(value, list):
        # Every item is either a paper or a problem; nothing is silently lost.
        assert len(result.papers) + len(result.problems) == len(value)


@FAST
@given(json_values, st.lists(json_values | mutated_items, max_size=5))
def test_parse_html_never_raises_on_arbitrary_props(props, items):
    assert_well_formed(parse_html(page(props), HTML_URL), HTML_URL)
    result = parse_html(page({"date": props, "dailyPapers": items}), HTML_URL)
    assert_well_formed(result, HTML_URL)
    assert len(result.papers) + len(result.problems) == len(items)


@SLOW
@given(st.integers(0, len(API_BYTES)))
@example(0)
@example(len(API_BYTES) - 1)
@example(len(API_BYTES))
def test_truncated_api_fixture(cut):
    result = parse_api(API_BYTES[:cut], API_URL)
    assert_well_formed(result, API_URL)
    assert len(result.papers) in (0, 30)
    assert len(result.papers) == 30 or len(result.problems) == 1


HYDRATER_END = HTML_BYTES.index(b'"><section', HTML_BYTES.index(b'data-target="DailyPapers"')) + 2
FULL_IDS = {paper.arxiv_id for paper in parse_html(HTML_BYTES, HTML_URL).papers}


@SLOW
@given(st.integers(0, len(HTML_BYTES)))
@example(HYDRATER_END - 1)
@example(HYDRATER_END)
@example(HTML_BYTES.index(b"<article") + 500)
def test_truncated_html_fixture(cut):
    result = parse_html(HTML_BYTES[:cut], HTML_URL)
    assert_well_formed(result, HTML_URL)
    assert {paper.arxiv_id for paper in result.papers} <= FULL_IDS
    if cut >= HYDRATER_END:
        # The cards sit inside the hydrater, so a cut anywhere after its tag loses nothing.
        assert len(result.papers) == 13
        assert result.problems == []


@SLOW
@given(st.integers(0, len(HTML_BYTES)), st.binary(min_size=1, max_size=20))
def test_html_fixture_with_spliced_garbage(at, garbage):
    text = HTML_BYTES[:at] + garbage + HTML_BYTES[at:]
    assert_well_formed(parse_html(text, HTML_URL), HTML_URL)


# --- the clean_text fast path -----------------------------------------------------------------


def test_every_whitespace_but_space_is_unprintable():
    # quick_clean's shortcut rests on this; a Unicode upgrade that breaks it must fail loudly.
    everything = "".join(map(chr, range(sys.maxunicode + 1)))
    spaces = set(re.findall(r"\s", everything)) - {" "}
    assert spaces and not any(char.isprintable() for char in spaces)


# Every character the shortcuts treat specially, plus the rest of Unicode now and then.
MESSY = (
    st.sampled_from(
        " \t\n\r\x0b\x0c\x1c\x1f\x00\x08\x0e\x1b\x7f\u00a0\u2009\u2028\x85\ud800\ufffe|&;#amplt"
        # Invisible and bidi characters, the joiners and what they may join.
        "\u200b\u200c\u200d\u200e\u202e\u2066\u2069\u00ad\ufeff\u0645\U0001f469\u0600"
    )
    | st.characters()
)
# Mostly plain words, so that long texts are usually ASCII and reach the bytes shortcut.
WORDY = st.lists(st.sampled_from(["word", "x", " ", "  ", "\n  ", ".", "$\\alpha$"]) | MESSY)


@FAST
@given(
    st.text(alphabet=MESSY, max_size=40)
    | WORDY.map("".join)
    | st.tuples(WORDY, st.integers(0, 200)).map(lambda pair: "".join(pair[0]) * pair[1])
    | st.text(alphabet=st.characters(max_codepoint=127), min_size=120, max_size=300)
    | st.sampled_from(["&amp;", "a  b", " a", "a ", "&#x41;", "\u3000x", " " * 200, "é" * 200])
    | st.none()
    | st.integers()
)
def test_clean_matches_clean_text(value):
    assert quick_clean(value) == clean_text(value)


def test_clean_takes_every_path():
    wrapped = "  We show $O(n^{2})$\n  bounds\x01 for  all\tn.\x1c " * 10
    assert quick_clean(wrapped) == clean_text(wrapped)
    single = "We show bounds. " * 20
    assert quick_clean(single) == clean_text(single) == single.strip()
    unicode = "Über  die\n" * 20
    assert quick_clean(unicode) == clean_text(unicode)
    assert quick_clean("Ada Lovelace") == "Ada Lovelace"
    for code in range(128):
        # Every ASCII character, in short and in long text.
        for text in (f"a{chr(code)}b", f" a {chr(code)} b{chr(code)}" * 40):
            assert quick_clean(text) == clean_text(text), (code, text)


class Name(str):
    pass


@FAST
@given(
    st.lists(
        st.text(alphabet=MESSY, max_size=8)
        | st.sampled_from(["Ada Lovelace", "a|b", "", " ", "|"])
        | st.none()
        | st.integers()
        | st.builds(Name, st.text(max_size=4)),
        max_size=8,
    )
)
def test_clean_all_matches_clean_text(values):
    assert quick_clean_all(values) == tuple(text for text in map(clean_text, values) if text)


# --- the JSON decoder -------------------------------------------------------------------------

# Documents orjson refuses or reads differently, each with what the parser must make of it.
JSON_EDGES = [
    '[{"paper": {"id": "2606.00467", "title": "a\\ud800b", "upvotes": 18446744073709551616}}]',
    '[{"paper": {"id": "2606.00467", "title": "x", "upvotes": NaN, "githubStars": 1e400}}]',
    '[{"paper": {"id": "2606.00467", "title": "x", "upvotes": -9223372036854775809}}]',
    '[{"paper": {"id": "2606.00467", "title": "x", "summary": "\ud800 lone"}}]',
    "[" + "1" * 5000 + "]",
    "[" * 5000 + "]" * 5000,
    "\ufeff[]",
    "[1] x",
    "[1]\x00",
]


@pytest.mark.parametrize(
    "document",
    [
        *JSON_EDGES,
        *[edge.encode("utf-8", "surrogatepass") for edge in JSON_EDGES],
        b"\xef\xbb\xbf[]",
        "[]".encode("utf-16"),
        b"[\x00]\x00",
        b'["\xff"]',
    ],
)
def test_json_edge_cases_read_as_the_standard_library_reads_them(document, monkeypatch):
    fast = parse_api(document, API_URL)
    monkeypatch.setattr("bridge.sources.hf_parse._fast_loads", None)
    assert fast == parse_api(document, API_URL)


@FAST
@given(json_values | st.lists(json_values | mutated_items, max_size=5))
def test_both_json_decoders_give_the_same_result(value):
    text = json.dumps(value)
    fast = parse_api(text, API_URL)
    from bridge.sources import hf_parse

    decoder, hf_parse._fast_loads = hf_parse._fast_loads, None
    try:
        assert fast == parse_api(text, API_URL)
    finally:
        hf_parse._fast_loads = decoder
