"""The percolator gives exactly what evaluating every subscription on every paper gives."""

from __future__ import annotations

import json
import random
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

import bridge.query.evaluate as evaluate
import bridge.query.percolator as percolator
from bridge.errors import QueryError
from bridge.models import Match, Paper, Subscription
from bridge.query import Percolator, index_paper, match_paper, parse_query
from bridge.query.parser import Phrase
from bridge.text import clean_text

FIXTURES = Path(__file__).parent / "fixtures"
ATOM = "{http://www.w3.org/2005/Atom}"


def load_papers() -> list[Paper]:
    papers = []
    items = json.loads((FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json").read_text())
    for item in items:
        p = item["paper"]
        papers.append(
            Paper(
                arxiv_id=p["id"],
                title=clean_text(p["title"]),
                abstract=clean_text(p["summary"]),
                authors=tuple(a["name"] for a in p["authors"] if not a.get("hidden")),
                source="hf",
                upvotes=p.get("upvotes"),
                ai_summary=clean_text(p.get("ai_summary")) or None,
                ai_keywords=tuple(p.get("ai_keywords") or ()),
            )
        )
    for path in sorted((FIXTURES / "arxiv").glob("api_*.xml")):
        for entry in etree.parse(str(path)).getroot().iter(f"{ATOM}entry"):
            papers.append(
                Paper(
                    arxiv_id=re.sub(r"v\d+$", "", entry.findtext(f"{ATOM}id").split("/abs/")[-1]),
                    title=clean_text(entry.findtext(f"{ATOM}title")),
                    abstract=clean_text(entry.findtext(f"{ATOM}summary")),
                    authors=tuple(
                        clean_text(a.findtext(f"{ATOM}name")) for a in entry.iter(f"{ATOM}author")
                    ),
                    categories=tuple(c.get("term") for c in entry.iter(f"{ATOM}category")),
                )
            )
    for path in sorted((FIXTURES / "arxiv").glob("rss_*.xml")):
        for item in etree.parse(str(path)).getroot().iter("item"):
            papers.append(
                Paper(
                    arxiv_id=item.findtext("link").rsplit("/", 1)[-1],
                    title=clean_text(item.findtext("title")),
                    abstract=clean_text(item.findtext("description")).split("Abstract: ", 1)[-1],
                    authors=tuple(
                        clean_text(
                            item.findtext("{http://purl.org/dc/elements/1.1/}creator")
                        ).split(", ")
                    ),
                    categories=tuple(c.text for c in item.iter("category")),
                )
            )
    return papers


PAPERS = load_papers()


def brute_force(subscriptions: list[Subscription], papers: list[Paper]) -> list[Match]:
    parsed = [(s.id, parse_query(s.query)) for s in subscriptions]
    out = []
    for paper in papers:
        analyzed = index_paper(paper)  # match_paper takes a Paper or its analysis
        for subscription_id, query in parsed:
            found = match_paper(query, analyzed)
            if found is not None:
                out.append(Match(subscription_id, paper.arxiv_id, found))
    return out


# --- generated subscriptions ---------------------------------------------------------------------


class QueryMaker:
    """Random queries in every syntax, built from the words the fixture papers really use."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        texts = [f"{p.title}. {p.abstract}" for p in PAPERS]
        words = sorted({w for t in texts for w in re.findall(r"[A-Za-z][\w\-+]*[A-Za-z0-9+]", t)})
        self.words = words + [
            "generalisation",
            "generalizes",
            "LLMs",
            "optimise",
            "behaviour",
            "modelling",
            "pretraining",
            "zebra",
            "quokka",
        ]
        self.sentences = [re.findall(r"[\w\-]+", t) for t in texts]
        self.surnames = sorted({a.split()[-1] for p in PAPERS for a in p.authors if a.split()})
        self.names = sorted({a for p in PAPERS for a in p.authors})
        self.categories = sorted({c for p in PAPERS for c in p.categories})

    def word(self) -> str:
        if self.rng.random() < 0.05:  # a name unprefixed: it must not match the authors
            return self.rng.choice(self.surnames)
        return self.rng.choice(self.words)

    def phrase(self) -> str:
        words = self.rng.choice([s for s in self.sentences if len(s) > 4])
        start = self.rng.randrange(len(words) - 3)
        return '"' + " ".join(words[start : start + self.rng.randint(2, 3)]) + '"'

    def atom(self) -> str:
        r = self.rng.random()
        if r < 0.45:
            return self.word()
        if r < 0.6:
            return self.phrase()
        if r < 0.66:
            return f"title:{self.word()}"
        if r < 0.7:
            return f"abstract:{self.word()}"
        if r < 0.74:
            return f"author:{self.rng.choice(self.surnames)}"
        if r < 0.77:
            return f'author:"{self.rng.choice(self.names)}"'
        if r < 0.82:
            return f"cat:{self.rng.choice(self.categories)}"
        if r < 0.85:
            return self.rng.choice(["cat:cs.*", "cat:stat.*", "cat:math*", "cat:cs.L*"])
        if r < 0.89:
            return self.rng.choice(["source:hf", "source:arxiv"])
        if r < 0.94:
            return f"upvotes{self.rng.choice(['>=', '>', '<', '<=', '='])}{self.rng.randint(0, 40)}"
        return f"({self.word()} OR {self.atom()})"

    def query(self) -> str:
        parts = [self.atom() for _ in range(self.rng.randint(1, 3))]
        if self.rng.random() < 0.25:
            parts = [" OR ".join(parts[:2])] + parts[2:]
        if self.rng.random() < 0.2:
            parts.append("-" + self.rng.choice([self.word(), self.phrase(), "title:survey"]))
        if self.rng.random() < 0.1:
            parts = [f"title:({' OR '.join(self.word() for _ in range(2))})"] + parts[1:]
        return " ".join(parts)


def generated_subscriptions(seed: int, count: int) -> list[Subscription]:
    rng = random.Random(seed)
    maker = QueryMaker(rng)
    subscriptions: list[Subscription] = []
    while len(subscriptions) < count:
        text = maker.query()
        try:
            parse_query(text)
        except QueryError:
            continue
        subscriptions.append(Subscription(f"s{len(subscriptions)}", text))
        if rng.random() < 0.05:  # the same query again, spelled differently
            subscriptions.append(Subscription(f"s{len(subscriptions)}", text.upper()))
    return subscriptions


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percolator_equals_brute_force_on_generated_subscriptions(seed: int) -> None:
    subscriptions = generated_subscriptions(seed, 400)
    percolator = Percolator(subscriptions)
    assert not percolator.invalid
    expected = brute_force(subscriptions, PAPERS)
    assert len(expected) > 100  # the generator makes queries that do match
    assert percolator.match(PAPERS) == expected


WORDS = st.sampled_from(
    "LLM LLMs agent agents generalization generalisation memory benchmark model modelling "
    "out-of-distribution pre-trained pretrained reinforcement learning RL diffusion zebra".split()
)
ATOMS = st.one_of(
    WORDS,
    st.builds(lambda a, b: f'"{a} {b}"', WORDS, WORDS),
    WORDS.map(lambda w: f"title:{w}"),
    WORDS.map(lambda w: f"abstract:{w}"),
    # An OR whose branches overlap: both are reported when both match.
    st.builds(lambda a, b: f"({a} OR ({a} {b}))", WORDS, WORDS),
    st.sampled_from(
        ["cat:cs.LG", "cat:cs.*", "cat:cs*", "source:hf", "upvotes>=3", "author:cooper"]
    ),
)
QUERIES = st.builds(
    lambda parts, joiner, exclude: joiner.join(parts) + (f" -{exclude}" if exclude else ""),
    st.lists(ATOMS, min_size=1, max_size=3),
    st.sampled_from([" ", " OR ", " AND "]),
    st.one_of(st.none(), WORDS),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(QUERIES, min_size=1, max_size=12))
def test_percolator_equals_brute_force_property(queries: list[str]) -> None:
    subscriptions = [Subscription(f"q{i}", q) for i, q in enumerate(queries)]
    valid = []
    for subscription in subscriptions:
        try:
            parse_query(subscription.query)
        except QueryError:
            continue
        valid.append(subscription)
    percolator = Percolator(subscriptions)
    assert set(percolator.invalid) == {s.id for s in subscriptions} - {s.id for s in valid}
    assert percolator.match(PAPERS[:20]) == brute_force(valid, PAPERS[:20])


PAIR_TEXT = st.lists(
    st.sampled_from(
        "world model models pre-trained pretrained pre trained self-supervised state-of-the-art "
        "LLM LLMs agent agents , . ; ( ) - -- $\\alpha$-divergence GPT-4o the of".split()
    ),
    max_size=40,
).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(PAIR_TEXT, PAIR_TEXT, st.lists(PAIR_TEXT, max_size=3))
def test_word_pairs_are_exactly_the_two_word_phrases_a_paper_has(
    title: str, abstract: str, keywords: list[str]
) -> None:
    paper = Paper("2601.00001", title=title, abstract=abstract, ai_keywords=tuple(keywords))
    pairs = {" ".join(pair) for pair in percolator._pairs(percolator._Analysis(paper))}
    # The same pairs from the postings alone, the slow way.
    analyzed = index_paper(paper)
    assert pairs == {" ".join(pair) for pair in percolator._pairs(analyzed)}
    terms = sorted(analyzed.default_terms)
    for first in terms:
        for second in terms:
            phrase = parse_query(f'"{first} {second}"').root
            key = percolator._leaf_key(phrase) if isinstance(phrase, Phrase) else None
            if key is not None:
                assert (key in pairs) == evaluate.matches(phrase, analyzed), key


def test_hits_of_overlapping_or_branches_are_the_tree_walks() -> None:
    paper = Paper(
        "2601.00001",
        title="Diffusion models",
        abstract="Pre-trained diffusion and pretrained transformers.",
    )
    queries = [
        "diffusion OR (diffusion model)",
        "pretrained OR (pretrained AND diffusion)",
        "(pretrained OR zebra) AND (pretrained OR diffusion)",
        '"diffusion model" OR (diffusion title:model)',
    ]
    subscriptions = [Subscription(q, q) for q in queries]
    matches = Percolator(subscriptions).match([paper])
    assert matches == brute_force(subscriptions, [paper])
    assert matches[0].why() == "matched Diffusion, models in the title; diffusion in the abstract"


# --- behaviour -----------------------------------------------------------------------------------


def test_match_explains_a_hit_in_the_abstract() -> None:
    einstein = next(p for p in PAPERS if "generalisation of the Einstein" in p.abstract)
    percolator = Percolator([Subscription("ood", "generalization", name="OOD")])
    matches = percolator.match([einstein])
    assert [(m.subscription_id, m.arxiv_id) for m in matches] == [("ood", einstein.arxiv_id)]
    assert matches[0].why() == "matched generalisation in the abstract"


def test_add_remove_replace_and_order() -> None:
    paper = Paper("2601.00001", title="Diffusion models generalise", abstract="A survey of LLMs.")
    percolator = Percolator()
    percolator.add(Subscription("b", "diffusion"))
    percolator.add(Subscription("a", "LLM"))
    percolator.add(Subscription("c", "Diffusion"))  # same query as "b": one shared plan
    assert len(percolator) == 3 and "a" in percolator
    assert [m.subscription_id for m in percolator.match([paper])] == ["b", "a", "c"]
    assert percolator.remove("b") is True
    assert percolator.remove("b") is False
    assert [m.subscription_id for m in percolator.match([paper])] == ["a", "c"]
    percolator.add(Subscription("a", "zebra"))  # replacing keeps one entry per id
    assert [m.subscription_id for m in percolator.match([paper])] == ["c"]
    percolator.remove("c")
    assert percolator.match([paper]) == []
    percolator.add(Subscription("d", "diffusion -survey"))
    assert percolator.match([paper]) == []
    percolator.add(Subscription("e", "generalization"))
    matches = percolator.match([paper])
    assert [(m.subscription_id, m.why()) for m in matches] == [
        ("e", "matched generalise in the title")
    ]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.one_of(st.none(), QUERIES)), max_size=30))
def test_adding_replacing_and_removing_in_any_order(steps: list[tuple[int, str | None]]) -> None:
    # (subscription number, query): add or replace it, or remove it when the query is None.
    percolator = Percolator()
    standing: dict[str, Subscription] = {}
    for number, query in steps:
        sid = f"s{number}"
        if query is None:
            assert percolator.remove(sid) == (sid in standing)
            standing.pop(sid, None)
            continue
        try:
            parse_query(query)
        except QueryError:
            continue
        percolator.add(Subscription(sid, query))
        standing.pop(sid, None)  # a replaced subscription goes last, like a new one
        standing[sid] = Subscription(sid, query)
    assert percolator.match(PAPERS[:20]) == brute_force(list(standing.values()), PAPERS[:20])
    for sid in list(standing):
        percolator.remove(sid)
    assert len(percolator) == 0
    assert not any(vars_of(percolator).values())  # every index is empty again


def vars_of(percolator: Percolator) -> dict[str, object]:
    return {
        name: value
        for name, value in vars(percolator).items()
        if isinstance(value, dict) and name not in ("invalid",)
    }


def test_bad_subscriptions_are_skipped_by_the_constructor_and_raised_by_add() -> None:
    percolator = Percolator([Subscription("ok", "diffusion"), Subscription("bad", "-survey")])
    assert list(percolator.invalid) == ["bad"]
    assert "something to look for" in percolator.invalid["bad"].message
    assert len(percolator) == 1
    with pytest.raises(QueryError):
        percolator.add(Subscription("bad2", "title:"))
    assert "bad2" not in percolator
    percolator.add(Subscription("bad", "survey"))  # fixing it clears the record
    assert not percolator.invalid


def test_unprefixed_words_never_match_through_the_authors() -> None:
    paper = next(p for p in PAPERS if "Rafal Kocielnik" in p.authors)
    queries = ["kocielnik", "kocielnik OR zebra", "kocielnik zebra", "(kocielnik OR a) b"]
    percolator = Percolator(Subscription(q, q) for q in queries)
    assert percolator.match([paper]) == brute_force(percolator_subscriptions(queries), [paper])
    assert all(m.subscription_id not in queries[:3] for m in percolator.match([paper]))
    assert [
        m.subscription_id
        for m in Percolator([Subscription("a", "author:kocielnik")]).match([paper])
    ] == ["a"]


def percolator_subscriptions(queries: list[str]) -> list[Subscription]:
    return [Subscription(q, q) for q in queries]


def test_queries_without_words_are_checked_on_every_paper() -> None:
    percolator = Percolator(
        [
            Subscription("popular", "upvotes>=10"),
            Subscription("cs", "cat:cs*"),
            Subscription("hf", "source:hf"),
        ]
    )
    matches = percolator.match(PAPERS)
    popular = {p.arxiv_id for p in PAPERS if p.upvotes is not None and p.upvotes >= 10}
    assert {m.arxiv_id for m in matches if m.subscription_id == "popular"} == popular
    assert {m.arxiv_id for m in matches if m.subscription_id == "hf"} == {
        p.arxiv_id for p in PAPERS if p.source == "hf"
    }
    cs = {m.arxiv_id for m in matches if m.subscription_id == "cs"}
    assert cs == {p.arxiv_id for p in PAPERS if any(c.startswith("cs") for c in p.categories)}


def test_each_paper_is_analyzed_once_whatever_the_number_of_subscriptions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real = evaluate.postings_of

    def counting(text: str, stem: bool = True, *lists):  # type: ignore[no-untyped-def]
        calls.append(text)
        return real(text, stem, *lists)

    monkeypatch.setattr(evaluate, "postings_of", counting)
    monkeypatch.setattr(percolator, "postings_of", counting)
    subscriptions = generated_subscriptions(7, 300)
    Percolator(subscriptions).match(PAPERS[:10])
    with_many = len(calls)
    calls.clear()
    Percolator(subscriptions[:1]).match(PAPERS[:10])
    assert with_many == len(calls) <= 3 * 10  # title, abstract, ai_summary per paper


def test_many_subscriptions_share_plans_and_hits() -> None:
    subscriptions = [Subscription(f"u{i}", "LLM agents") for i in range(50)]
    subscriptions += [Subscription(f"v{i}", "llms AGENT") for i in range(50)]
    matches = Percolator(subscriptions).match(PAPERS)
    by_paper: dict[str, list[Match]] = {}
    for match in matches:
        by_paper.setdefault(match.arxiv_id, []).append(match)
    assert by_paper
    for group in by_paper.values():
        assert len(group) == 100
        assert all(m.hits is group[0].hits for m in group)  # built once, shared


def test_a_subscription_added_later_finds_words_no_earlier_plan_read() -> None:
    # A paper's text keeps postings only for the terms some plan reads: a subscription added
    # after a match (a word, a pair, a tree whose exclusion names a new word, a longer phrase,
    # an exact word) must still find its words, and removing one leaves the others as they were.
    paper = Paper(
        "2601.00002",
        title="Sparse attention for world models",
        abstract="We train a world model with sparse attention; no diffusion is used.",
    )
    standing = [Subscription("a", "diffusion")]
    percolator = Percolator(standing)

    def expected() -> list[Match]:
        return [
            Match(s.id, paper.arxiv_id, hits)
            for s in standing
            if (hits := match_paper(parse_query(s.query), paper)) is not None
        ]

    assert [m.subscription_id for m in percolator.match([paper])] == ["a"]
    for sid, query in [
        ("b", "sparse"),
        ("c", '"world model"'),
        ("d", "diffusion -attention"),
        ("e", '"sparse attention for world"'),
        ("f", "=models"),
        ("g", "train -=model"),
    ]:
        percolator.add(Subscription(sid, query))
        standing.append(Subscription(sid, query))
        assert percolator.match([paper]) == expected(), query
    assert [m.subscription_id for m in expected()] == ["a", "b", "c", "e", "f"]  # g: "model"
    for sid in "bcf":
        percolator.remove(sid)
        standing = [s for s in standing if s.id != sid]
        assert percolator.match([paper]) == expected()


DAY_SPECS = st.sampled_from(
    ["date>=2024", "date<2025-06", "date:2024-03..2024-09", "date:2024", "date>2024-12-31"]
)

# The first and last days of those ranges, and the days beside them.
EDGE_DAYS = [
    edge + timedelta(days=shift)
    for edge in (date(2024, 1, 1), date(2024, 3, 1), date(2024, 10, 1), date(2025, 1, 1))
    + (date(2025, 6, 1), date(2024, 12, 31))
    for shift in (-1, 0, 1)
]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(DAY_SPECS, min_size=1, max_size=3),
    st.one_of(st.none(), st.sampled_from(EDGE_DAYS), st.dates(date(2023, 6, 1), date(2026, 1, 1))),
)
def test_a_dated_tree_turns_away_exactly_the_days_its_ranges_exclude(
    specs: list[str], day: date | None
) -> None:
    # A dated tree's ranges are checked as one window (latest start, earliest end) before the
    # tree is walked: on any day, and on none, that must say what the ranges themselves say.
    query = '"diffusion model" ' + " ".join(specs)
    paper = Paper(
        arxiv_id="2401.00001",
        title="A diffusion model",
        abstract="",
        authors=(),
        source="arxiv",
        listed_on=day,
    )
    got = Percolator([Subscription("s", query)]).match([paper])
    expected = match_paper(parse_query(query), paper)
    assert [m.hits for m in got] == ([] if expected is None else [expected])
