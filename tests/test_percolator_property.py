"""The percolator's fast path agrees with the plain evaluator on random papers and queries.

``Percolator.match`` analyzes each paper once (its own analysis, with word pairs and the
exact words subscribed), files plans by key and walks only candidate trees; ``match_paper``
walks every query tree over ``index_paper``. Both must give the same matches, with the same
hits in the same order, whatever the text: capitals, hyphenated compounds, Greek letters,
numbers, British spellings, exact words, dates, acronyms and their long forms.
"""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.models import Match, Paper, Subscription
from bridge.query import Percolator, index_paper, match_paper, parse_query
from bridge.query.abbreviations import long_key
from bridge.query.evaluate import exact_terms
from bridge.query.expansions import ExpansionTable, expand, label_hits
from bridge.query.normalize import normalize_word

VOCABULARY = (
    "model models Model MODELLING modeling world World diffusion Diffusion generalization "
    "Generalisation generalized general-purpose general out-of-distribution OOD ood "
    "reinforcement learning RL LLM LLMs large language models pre-trained pretrained "
    "Pre-Training data set dataset time step timestep $\\alpha$-divergence alpha GPT-4o "
    "Qwen2.5 3.5 C++ cs.LG the of and a ( ) , . ; - naïve behaviour behavior analyses"
    # A compound whose joined form is its first part's term (model-s: models -> model), so
    # one word has two places at one start; and words in upper case, for the fast paths.
    " model-s Model-s MODEL DIFFUSION"
).split()

TEXT = st.lists(st.sampled_from(VOCABULARY), max_size=30).map(" ".join)

PAPERS = st.builds(
    lambda n, title, abstract, summary, keywords, categories, upvotes, day: Paper(
        arxiv_id=f"2401.{n:05d}",
        title=title,
        abstract=abstract,
        authors=("Ada Model", "Grace World"),
        source="hf",
        upvotes=upvotes,
        ai_summary=summary or None,
        ai_keywords=tuple(keywords),
        categories=tuple(categories),
        listed_on=day,
    ),
    st.integers(0, 99_999),
    TEXT,
    TEXT,
    TEXT,
    st.lists(TEXT, max_size=2),
    st.lists(st.sampled_from(["cs.LG", "cs.CL", "stat.ML"]), max_size=2),
    st.one_of(st.none(), st.integers(0, 20)),
    st.one_of(st.none(), st.dates(date(2023, 1, 1), date(2026, 12, 31))),
)

WORDS = st.sampled_from(
    "model modelling world diffusion generalization generalisation general OOD "
    "out-of-distribution RL reinforcement learning LLMs pretrained pre-trained dataset "
    "timestep alpha gpt-4o qwen2.5 behaviour analysis naive".split()
)
ATOMS = st.one_of(
    WORDS,
    WORDS.map(lambda w: "=" + w),  # an exact word
    st.builds(lambda a, b: f'"{a} {b}"', WORDS, WORDS),
    st.builds(lambda a, b, c: f'"{a} {b} {c}"', WORDS, WORDS, WORDS),
    st.builds(lambda a, b: f'"={a} {b}"', WORDS, WORDS),
    WORDS.map(lambda w: f"title:{w}"),
    WORDS.map(lambda w: f"abstract:{w}"),
    st.builds(lambda a, b: f"({a} OR ({a} {b}))", WORDS, WORDS),
    st.sampled_from(
        [
            "cat:cs.LG",
            "cat:cs.*",
            "cat:cs",
            "source:hf",
            "upvotes>=3",
            "author:model",
            "date>=2025-01-01",
            "date:2024",
            "date:2024-01..2024-06",
            '"reinforcement learning"',
            '"large language models"',
            '"data set"',
            '"time step"',
        ]
    ),
)
QUERIES = st.builds(
    lambda parts, joiner, exclude: joiner.join(parts) + (f" -{exclude}" if exclude else ""),
    st.lists(ATOMS, min_size=1, max_size=3),
    st.sampled_from([" ", " OR ", " AND "]),
    st.one_of(st.none(), WORDS),
)

# Acronyms and compounds as an archive would mine them: each query is widened with them.
TABLE = ExpansionTable.build(
    [
        (normalize_word(short), short, long_key(long), long, 5)
        for short, long in (
            ("OOD", "out-of-distribution"),
            ("RL", "reinforcement learning"),
            ("LLMs", "large language models"),
        )
    ],
    [
        (normalize_word(closed), closed, long_key(open_), open_, 3, 9)
        for closed, open_ in (("dataset", "data set"), ("timestep", "time step"))
    ],
)


def plain_matches(subscriptions: list[Subscription], papers: list[Paper]) -> list[Match]:
    """Every subscription's widened query walked over every paper by ``match_paper``."""
    widened = [(s.id, expand(parse_query(s.query), TABLE)) for s in subscriptions]
    exact = frozenset().union(*(exact_terms(e.query) for _, e in widened))
    out = []
    for paper in papers:
        analyzed = index_paper(paper, exact)
        for subscription_id, expanded in widened:
            hits = match_paper(expanded.query, analyzed)
            if hits is not None:
                out.append(
                    Match(subscription_id, paper.arxiv_id, label_hits(hits, expanded.labels))
                )
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(QUERIES, min_size=1, max_size=10), st.lists(PAPERS, min_size=1, max_size=6))
def test_fast_path_equals_the_plain_evaluator(queries: list[str], papers: list[Paper]) -> None:
    subscriptions = [Subscription(f"q{i}", q) for i, q in enumerate(queries)]
    percolator = Percolator(subscriptions, TABLE)
    valid = [s for s in subscriptions if s.id not in percolator.invalid]
    assert percolator.match(papers) == plain_matches(valid, papers)


def test_a_widened_query_keeps_its_explanation_beside_the_same_query_written_out() -> None:
    # "time step" and "timestep" widen to the same query, but each explains a hit on the
    # form it did not write by naming the form it wrote: they must not share one explanation.
    subscriptions = [
        Subscription("q1", 'timestep OR "time step"'),
        Subscription("q2", '"time step"'),
        Subscription("q3", "timestep"),
    ]
    papers = [Paper("2401.00000", "Sampling", abstract="One timestep, then a time step.")]
    matches = Percolator(subscriptions, TABLE).match(papers)
    assert matches == plain_matches(subscriptions, papers)
    texts = {m.subscription_id: {hit.text for hit in m.hits} for m in matches}
    assert texts["q2"] == {"timestep (time step)", "time step"}
    assert texts["q3"] == {"timestep", "time step (timestep)"}


def test_authors_are_analyzed_while_some_subscription_reads_them() -> None:
    # With no author: subscription the percolator leaves authors out of a paper's analysis;
    # a word found only among the authors must then match nothing, and an author: query
    # added later must find the author, removed again, nothing changes.
    paper = Paper("2401.00001", "Diffusion", abstract="Sampling.", authors=("Ada Model",))
    subscriptions = [Subscription("q1", "model -world"), Subscription("q2", "model OR sampling")]
    percolator = Percolator(subscriptions, TABLE)
    assert percolator.match([paper]) == plain_matches(subscriptions, [paper])
    by_author = Subscription("q3", "author:model")
    percolator.add(by_author)
    matches = percolator.match([paper])
    assert matches == plain_matches([*subscriptions, by_author], [paper])
    assert [m.subscription_id for m in matches] == ["q2", "q3"]
    percolator.remove("q3")
    assert percolator.match([paper]) == plain_matches(subscriptions, [paper])
