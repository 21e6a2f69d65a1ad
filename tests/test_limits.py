"""Parsed papers are held to limits both stores take: a broken identity costs the record, any
other bad value only its field, and each is reported naming source, URL and paper id."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.models import Paper, ParseResult
from bridge.sources.hf_parse import parse_api
from bridge.sources.limits import INT32_MAX, TEXT_MAX, _fits, within_limits
from tests.fake_upstream import fixture

HF_FIXTURE = "hf/daily_papers_api_limit30_2026-06-13.json"
URL = "https://huggingface.co/api/daily_papers?limit=100&p=0"


def hf_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(fixture(HF_FIXTURE))
    return items


def good_paper(**changes: Any) -> Paper:
    paper = Paper(
        arxiv_id="2606.00467",
        title="A title",
        abstract="An abstract.",
        authors=("Ada Lovelace",),
        version=2,
        source="hf",
        listed_on=date(2026, 6, 12),
        published_at=datetime(2026, 5, 30, tzinfo=UTC),
        upvotes=3,
        pdf_url="https://arxiv.org/pdf/2606.00467v2",
    )
    return paper.with_changes(**changes)


def test_a_version_beyond_32_bits_costs_the_record_and_names_it() -> None:
    items = hf_items()
    items[3]["paper"]["id"] = "2407.21772v99999999999999999999"
    parsed = within_limits(parse_api(json.dumps(items), URL), URL)
    assert len(parsed.papers) == 29
    assert "2407.21772" not in {p.arxiv_id for p in parsed.papers}
    (problem,) = parsed.problems
    assert (problem.source, problem.url, problem.record, problem.field) == (
        "hf",
        URL,
        "2407.21772",
        None,
    )
    assert "version 99999999999999999999" in str(problem)


def test_2_to_the_31_is_refused_and_one_below_is_kept() -> None:
    # SQLite would store v2147483648 and PostgreSQL refuse it: both must see it the same.
    kept = within_limits(ParseResult([good_paper(version=INT32_MAX)]), URL)
    refused = within_limits(ParseResult([good_paper(version=INT32_MAX + 1)]), URL)
    assert [p.version for p in kept.papers] == [INT32_MAX] and not kept.problems
    assert refused.papers == [] and refused.problems[0].record == "2606.00467"


def test_broken_ids_cost_the_record() -> None:
    # Arabic-Indic digits and a Kelvin sign look like an id to a Unicode regex; arXiv has none.
    unicode_lookalikes = (
        "\u0662\u0666\u0660\u0666.\u0660\u0660\u0664\u0666\u0667",
        "hep-th/990100\u0661",
        "\u212aep-th/9901001",
    )
    for arxiv_id in ("a" * 60 + "/1234567", "2606.00467v2", "not an id", "", *unicode_lookalikes):
        parsed = within_limits(ParseResult([good_paper(arxiv_id=arxiv_id)]), URL)
        assert parsed.papers == [], arxiv_id
        assert "is not a bare arXiv id" in parsed.problems[0].problem


def test_a_wrong_count_date_or_url_costs_only_its_field() -> None:
    paper = good_paper(
        upvotes=-1,
        github_stars=2**31,
        num_comments=True,  # a JSON true is not one comment
        listed_on=date(2101, 1, 1),
        published_at=datetime(1899, 12, 31, tzinfo=UTC),
        updated_at=datetime(2026, 1, 1),  # no time zone
        pdf_url="javascript:alert(1)",
        project_page="https://example.org/" + "a" * 3000,
        thumbnail="https://example.org/a b.png",
    )
    parsed = within_limits(ParseResult([paper]), URL)
    (kept,) = parsed.papers
    dropped = (
        "upvotes",
        "github_stars",
        "num_comments",
        "listed_on",
        "published_at",
        "updated_at",
        "pdf_url",
        "project_page",
        "thumbnail",
    )
    assert all(getattr(kept, name) is None for name in dropped)
    assert kept.with_changes(**{name: getattr(paper, name) for name in dropped}) == paper
    assert sorted(p.field for p in parsed.problems) == sorted(dropped)  # type: ignore[arg-type]
    assert all(p.record == "2606.00467" and p.url == URL for p in parsed.problems)


def test_overlong_texts_and_lists_are_cut_and_refused_characters_removed() -> None:
    paper = good_paper(
        title="T" * 5000,
        abstract="a\x00b\ud800c",
        comment="c" * 10_000,
        authors=("Ada\x00", *(f"Author {n}" for n in range(20_000))),
        ai_keywords=("k" * 100,) * 300,
        doi="10.1/" + "d" * 300,
        primary_category="x" * 65,
    )
    parsed = within_limits(ParseResult([paper]), URL)
    (kept,) = parsed.papers
    assert kept.title == "T" * TEXT_MAX["title"]
    assert kept.abstract == "abc"
    assert kept.comment == "c" * TEXT_MAX["comment"]
    assert kept.authors[0] == "Ada" and len(kept.authors) == 10_000
    assert len(kept.ai_keywords) == 100  # 10,000 characters of keywords
    assert kept.doi is None and kept.primary_category is None
    fields = {p.field for p in parsed.problems}
    expected = {"title", "abstract", "comment", "authors", "ai_keywords", "doi", "primary_category"}
    assert fields == expected
    assert _fits(kept)


def test_a_title_of_refused_characters_only_costs_the_record() -> None:
    parsed = within_limits(ParseResult([good_paper(title="\x00\x00")]), URL)
    assert parsed.papers == [] and parsed.problems[0].field is None


def test_times_near_the_ends_of_the_calendar_are_dropped_before_the_store_overflows() -> None:
    # datetime(1, 1, 1, 0, 30, +01:00).astimezone(UTC) overflows, in both stores' converter.
    early = datetime(1, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    late = datetime(9999, 12, 31, 23, 30, tzinfo=timezone(timedelta(hours=-1)))
    parsed = within_limits(ParseResult([good_paper(published_at=early, updated_at=late)]), URL)
    assert parsed.papers[0].published_at is None and parsed.papers[0].updated_at is None


def test_real_listings_pass_untouched() -> None:
    parsed = parse_api(fixture(HF_FIXTURE), URL)
    checked = within_limits(parsed, URL)
    assert checked.papers == parsed.papers and checked.problems == parsed.problems
    assert all(a is b for a, b in zip(checked.papers, parsed.papers, strict=True))


# Values of every kind a parser might hand over by mistake, for any field.
_ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec=None), max_size=20),
    st.dates(),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.lists(st.one_of(st.text(max_size=10), st.integers()), max_size=5).map(tuple),
    st.lists(st.text(max_size=10), max_size=3),
)
_FIELDS = tuple(Paper.__dataclass_fields__)


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(_FIELDS), _ANY_VALUE, max_size=4))
def test_any_values_give_a_paper_within_the_limits_or_a_problem_naming_it(
    changes: dict[str, Any],
) -> None:
    paper = good_paper(**changes)
    parsed = within_limits(ParseResult([paper]), URL)
    assert len(parsed.papers) + sum(p.field is None for p in parsed.problems) == 1
    for kept in parsed.papers:
        assert _fits(kept)
        # Checking again finds nothing more to do.
        assert within_limits(ParseResult([kept]), URL).problems == []
    assert all(p.url == URL for p in parsed.problems)
