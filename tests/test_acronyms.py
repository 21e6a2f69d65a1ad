"""Acronyms and open compounds learned from the archive (issue 16), on SQLite and PostgreSQL.

The rules pinned here: Schwartz–Hearst finds "long form (SF)" definitions; a query acronym
finds its dominant long forms and a long form its acronym, in search, subscriptions and search
feeds alike; an ambiguous acronym expands only to definitions frequent enough; open and
closed compounds the archive writes both ways find each other; and every explanation says
"matched out-of-distribution (OOD) in the abstract".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text

from bench.corpus import fixture_papers
from bridge.models import Paper, Subscription
from bridge.query import Percolator, match_paper, parse_query
from bridge.query.abbreviations import (
    closed_word_set,
    compound_pairs,
    compound_words,
    definitions,
    joinable_pairs,
    long_key,
    short_key,
)
from bridge.query.expansions import (
    MIN_DEFINITIONS,
    ExpansionTable,
    expand,
)
from bridge.search import search_store
from bridge.store import Store, open_store, schema
from bridge.store.ledger import LedgerStore
from bridge.store.migrations import MIGRATIONS
from tests.fakes import Clock
from tests.test_ledger import make_ledger, subscribe

T0 = datetime(2026, 6, 12, 9, 0, tzinfo=UTC)


def paper(arxiv_id: str, title: str, abstract: str = "") -> Paper:
    # A listing day, so feeds (which list the archive by listing day) show the papers too.
    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        abstract=abstract,
        source="hf",
        sources=("hf",),
        listed_on=date(2026, 1, 5),
    )


def found(store: Store, query: str) -> set[str]:
    return {item.stored.paper.arxiv_id for item in search_store(store, query, limit=200).items}


def plain(papers: list[Paper], query: str) -> set[str]:
    """What the query finds with no expansion: the engine before this change."""
    parsed = parse_query(query)
    return {p.arxiv_id for p in papers if match_paper(parsed, p) is not None}


# --- Schwartz–Hearst --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("We study out-of-distribution (OOD) generalization.", [("OOD", "out-of-distribution")]),
        ("Reinforcement learning (RL) trains agents.", [("RL", "Reinforcement learning")]),
        # The long form starts at the word the first letter begins, not earlier.
        ("We apply deep reinforcement learning (RL) here.", [("RL", "reinforcement learning")]),
        ("Large Language Models (LLMs) are strong.", [("LLMs", "Large Language Models")]),
        ("the Vision Transformer (ViT; Dosovitskiy et al.) works", [("ViT", "Vision Transformer")]),
        ("using low-rank adaptation (LoRA, 2021)", [("LoRA", "low-rank adaptation")]),
        # Two in one sentence, each with its own long form.
        (
            "reinforcement learning (RL) and representation learning (ReL) differ",
            [("RL", "reinforcement learning"), ("ReL", "representation learning")],
        ),
        # Not definitions: figures, years, lower-case asides, letters not in the words before.
        ("as shown (see Fig. 2) and (2020) and (i) and (e.g. this)", []),
        ("a strong baseline (XYZ) beats it", []),
        ("the model (GPT) is", []),
        # The short form must not be a word of its long form.
        ("the OOD detector (OOD) is", []),
    ],
)
def test_schwartz_hearst_definitions(text: str, expected: list[tuple[str, str]]) -> None:
    assert list(definitions(text)) == expected


def test_sentence_boundary_limits_the_long_form() -> None:
    # "helps." ends a sentence: the long form cannot reach back to "Data".
    assert list(definitions("Data mining helps. Models (DMs) are used.")) == []
    assert list(definitions("We use data mining models (DMs) here.")) == [
        ("DMs", "data mining models")
    ]


def test_keys_join_spellings() -> None:
    assert long_key("Out-of-Distribution") == long_key("out of distribution")
    assert long_key("Large Language Models") == long_key("large language model")
    assert short_key("LLMs") == short_key("LLM") == "llm"


@given(st.text(max_size=200))
def test_definitions_never_fail_and_keep_the_rules(text: str) -> None:
    for short, long in definitions(text):
        assert 2 <= len(short) <= 10 and len(long) > len(short)
        assert sum(c.isupper() for c in short) >= 2
        assert short[0].lower() in long.lower()


@given(
    st.lists(
        st.one_of(
            st.sampled_from(["dataset", "Datasets,", "(timestep)", "fine-tune", "naïve", "data"]),
            st.text(alphabet="abcXYZé'().,;:-1 \n\u201c", max_size=12),
        ),
        max_size=40,
    )
)
def test_closed_word_set_is_compound_words_closed_part(tokens: list[str]) -> None:
    text = " ".join(tokens)
    assert closed_word_set(text) == compound_words(text)[1]


@given(
    st.lists(
        st.one_of(
            st.sampled_from(
                ["data", "set", "sets,", "(data", "Data.", "in", "put", "the", "dataset", "naïve"]
            ),
            st.text(alphabet="adestXYZé'().,;:-1 \n\u201c\u00a0\x1c", max_size=8),
        ),
        max_size=40,
    ),
    st.sets(st.sampled_from(["dataset", "datasets", "input", "setdata", "sets", "dataa"])),
)
def test_joinable_pairs_are_compound_words_pairs_that_join(
    tokens: list[str], joinable: set[str]
) -> None:
    text = " ".join(tokens)
    expected = {pair for pair in compound_words(text)[0] if pair[0] + pair[1] in joinable}
    assert joinable_pairs(text, joinable) == expected


def test_compound_pairs_skip_function_words_and_punctuation() -> None:
    pairs = set(compound_pairs("A new data set. It is not able to fine tune; time, step"))
    assert ("data", "set") in pairs and ("fine", "tune") in pairs
    assert ("not", "able") not in pairs and ("time", "step") not in pairs


# --- the rule for ambiguous acronyms ----------------------------------------------------------


def _acronym(long: str, papers: int) -> tuple[str, str, str, str, int]:
    return ("rl", "RL", long_key(long), long, papers)


def test_rule_keeps_only_frequent_definitions() -> None:
    table = ExpansionTable.build(
        [_acronym("reinforcement learning", 9), _acronym("representation learning", 2)]
    )
    # 2 of 11 is under a quarter: RL reads as reinforcement learning only.
    assert [d.long_text for d in table.by_short["rl"]] == ["reinforcement learning"]
    assert long_key("representation learning") not in table.by_long
    both = ExpansionTable.build(
        [_acronym("reinforcement learning", 6), _acronym("representation learning", 3)]
    )
    assert {d.long_text for d in both.by_short["rl"]} == {
        "reinforcement learning",
        "representation learning",
    }
    # One paper's definition is not enough, however alone it is.
    assert not ExpansionTable.build([_acronym("reinforcement learning", MIN_DEFINITIONS - 1)])
    # Totals from the store count the rare definitions left out of the rows.
    shared = ExpansionTable.build([_acronym("reinforcement learning", 2)], totals={"rl": 10})
    assert not shared


# --- search, both directions, both databases -----------------------------------------------

OOD_PAPERS = [
    paper("2601.00001", "Robust models", "We study out-of-distribution (OOD) generalization."),
    paper("2601.00002", "Shifts", "Out-of-distribution (OOD) detection for vision models."),
    paper("2601.00003", "Only the acronym", "OOD generalization of language models."),
    paper("2601.00004", "Only the words", "A benchmark of out of distribution generalization."),
    paper("2601.00005", "Unrelated", "Diffusion models for audio."),
]


def test_acronym_and_long_form_find_each_other(store: Store) -> None:
    store.add_papers(OOD_PAPERS, now=T0)
    everything = {"2601.00001", "2601.00002", "2601.00003", "2601.00004"}
    for query in ("OOD", '"out of distribution"', "out-of-distribution", "ood"):
        assert found(store, query) == everything, query
    assert found(store, "OOD generalization") == {"2601.00001", "2601.00003", "2601.00004"}
    # Inside a phrase too: the acronym's place reads as the long form.
    assert found(store, '"OOD generalization"') == {"2601.00001", "2601.00003", "2601.00004"}
    # Exclusion means the same thing: no paper about OOD in either form.
    assert found(store, "models -OOD") == {"2601.00005"}
    # Author names are never expanded.
    assert found(store, "author:OOD") == set()


def test_why_names_the_form_the_query_wrote(store: Store) -> None:
    store.add_papers(OOD_PAPERS, now=T0)
    by_id = {i.stored.paper.arxiv_id: i for i in search_store(store, "OOD", limit=10).items}
    assert by_id["2601.00004"].why == "matched out of distribution (OOD) in the abstract"
    reverse = {
        i.stored.paper.arxiv_id: i
        for i in search_store(store, '"out-of-distribution"', limit=10).items
    }
    assert reverse["2601.00003"].why == "matched OOD (out-of-distribution) in the abstract"
    # The hits still point at the paper's own words, for highlighting.
    hit = by_id["2601.00004"].hits[0]
    assert OOD_PAPERS[3].abstract[hit.start : hit.end] == "out of distribution"


def test_real_fixture_papers_find_the_union(store: Store) -> None:
    """RL and "reinforcement learning" on the real fixture papers (tests/fixtures)."""
    papers = fixture_papers()
    store.add_papers(papers, now=T0)
    short, long = plain(papers, "RL"), plain(papers, '"reinforcement learning"')
    assert short < short | long and long < short | long  # each alone misses some
    assert found(store, "RL") == short | long
    assert found(store, '"reinforcement learning"') == short | long
    assert found(store, "reinforcement learning") >= short | long


def test_ambiguous_acronym_expands_only_to_its_dominant_long_form(store: Store) -> None:
    papers = [
        paper(f"2602.{n:05d}", f"Agents {n}", "We use reinforcement learning (RL) for control.")
        for n in range(6)
    ] + [
        paper("2602.00100", "Features", "Representation learning (RL) of images."),
        paper("2602.00101", "Words only", "Representation learning for speech."),
        paper("2602.00102", "Policy", "Reinforcement learning for robots."),
    ]
    store.add_papers(papers, now=T0)
    got = found(store, "RL")
    assert "2602.00102" in got  # the dominant meaning
    assert "2602.00101" not in got  # one definition in seven is not a meaning of RL
    assert "2602.00100" in got  # it says RL itself


# --- open compounds -----------------------------------------------------------------------------


def test_compounds_written_both_ways_find_each_other(store: Store) -> None:
    store.add_papers(
        [
            paper("2603.00001", "A data set", "We release a new data set of images."),
            paper("2603.00002", "Datasets", "Existing datasets are small."),
            paper("2603.00003", "Steps", "Each timestep is short; a time step matters."),
            paper("2603.00004", "Sources", "The data sources are new."),
            paper("2603.00005", "Notable", "A notable result; it is not able to run."),
        ],
        now=T0,
    )
    assert found(store, "dataset") == {"2603.00001", "2603.00002"}
    assert found(store, '"data set"') == {"2603.00001", "2603.00002"}
    assert found(store, "timestep") == {"2603.00003"}
    # A function word never makes a compound: "not able" is not "notable".
    assert found(store, "notable") == {"2603.00005"}
    assert found(store, '"not able"') == {"2603.00005"}
    items = search_store(store, "dataset", limit=5).items
    why = {i.stored.paper.arxiv_id: i.why for i in items}
    assert why["2603.00001"] == (
        "matched data set (dataset) in the title; data set (dataset) in the abstract"
    )
    assert why["2603.00002"] == "matched Datasets in the title; datasets in the abstract"


def test_compounds_seen_in_different_batches_need_a_full_mining(store: Store) -> None:
    # Stored apart, neither batch shows both forms: the archive mining (an import runs it)
    # joins them.
    store.add_papers([paper("2604.00001", "Timesteps", "A timestep schedule.")], now=T0)
    store.add_papers([paper("2604.00002", "Steps", "One time step at once.")], now=T0)
    assert found(store, "timestep") == {"2604.00001"}
    assert store.mine_expansions() > 0
    assert found(store, "timestep") == {"2604.00001", "2604.00002"}
    # From then on a batch with either form is counted as it is stored.
    store.add_papers([paper("2604.00003", "More", "Another time step.")], now=T0)
    assert found(store, "timestep") == {"2604.00001", "2604.00002", "2604.00003"}


def _acronym_rows(store: Store) -> set[tuple[str, str, int]]:
    table = schema.term_expansions
    with store.engine.connect() as conn:
        query = select(table.c.short_key, table.c.long_key, table.c.papers).where(
            table.c.kind == "acronym"
        )
        return {(row[0], row[1], row[2]) for row in conn.execute(query)}


def test_acronyms_mined_as_papers_arrive_equal_a_full_mining(store: Store) -> None:
    papers = fixture_papers() + OOD_PAPERS
    for start in range(0, len(papers), 7):
        store.add_papers(papers[start : start + 7], now=T0)
    incremental = _acronym_rows(store)
    store.mine_expansions()
    assert _acronym_rows(store) == incremental
    assert ("ood", long_key("out-of-distribution"), 2) in incremental
    assert ("rl", long_key("reinforcement learning"), 2) in incremental


# --- subscriptions and search feeds ----------------------------------------------------------


def test_subscription_matches_the_other_form_and_says_why(store: Store) -> None:
    store.add_papers(OOD_PAPERS, now=T0)
    percolator = Percolator(
        [Subscription("ood", "OOD generalization"), Subscription("long", "out-of-distribution")],
        store.expansion_table(),
    )
    matches = {(m.subscription_id, m.arxiv_id): m for m in percolator.match(OOD_PAPERS)}
    assert {key[1] for key in matches if key[0] == "ood"} == {
        "2601.00001",
        "2601.00003",
        "2601.00004",
    }
    assert matches[("ood", "2601.00004")].why() == (
        "matched out of distribution (OOD), generalization in the abstract"
    )
    assert matches[("long", "2601.00003")].why() == (
        "matched OOD (out-of-distribution) in the abstract"
    )


def test_percolator_compiles_again_when_the_table_grows(store: Store) -> None:
    percolator = Percolator([Subscription("s", "OOD")], store.expansion_table())
    assert percolator.match([OOD_PAPERS[3]]) == []
    store.add_papers(OOD_PAPERS, now=T0)
    assert percolator.set_expansions(store.expansion_table())
    assert [m.arxiv_id for m in percolator.match([OOD_PAPERS[3]])] == ["2601.00004"]
    assert not percolator.set_expansions(store.expansion_table())  # nothing new


async def test_digest_intake_matches_the_other_form(store: Store) -> None:
    """A digest subscription (the ledger's intake) finds what the archive defines."""
    clock = Clock(T0)
    ledger = make_ledger(store, clock)
    subscribe(ledger, "lab", query="OOD")
    clock.advance(minutes=1)
    store.add_papers(OOD_PAPERS, now=clock())
    assert await ledger.intake() == 4
    rows = {row.arxiv_id: row for row in LedgerStore(store).rows()}
    assert set(rows) == {"2601.00001", "2601.00002", "2601.00003", "2601.00004"}
    assert rows["2601.00004"].match.why() == "matched out of distribution (OOD) in the abstract"


async def test_search_feed_finds_both_forms(tmp_path: Path) -> None:
    from adapters.atom import FeedOptions, FeedSite
    from bridge.app import open_bridge
    from bridge.config import Settings
    from bridge.web import create_web_app

    settings = Settings.model_validate(
        {
            "store": {"database_url": f"sqlite:///{tmp_path / 'feeds.db'}"},
            "sources": {"hf": {"base_url": "http://127.0.0.1:9"}},
        }
    )
    async with open_bridge(settings) as bridge:
        bridge.store.add_papers(OOD_PAPERS, now=T0)
        site = FeedSite(bridge, FeedOptions(version_ttl=0, stale_grace=None))
        app = create_web_app(
            bridge,
            extra_routes=site.routes(),
            middleware=site.middleware(),
            fast_paths=site.fast_paths(),
        )
        transport = httpx.ASGITransport(app)
        async with httpx.AsyncClient(transport=transport, base_url="http://feeds.test") as client:
            feed = (await client.get("/feeds/search.json", params={"q": "OOD"})).json()
    whys = {item["_paperbridge"]["arxiv_id"]: item["_paperbridge"]["why"] for item in feed["items"]}
    assert set(whys) == {"2601.00001", "2601.00002", "2601.00003", "2601.00004"}
    assert whys["2601.00004"] == "matched out of distribution (OOD) in the abstract"


# --- the store ------------------------------------------------------------------------------


def test_migration_8_mines_papers_already_stored(database_url: str) -> None:
    store = open_store(database_url)
    try:
        store.add_papers(OOD_PAPERS, now=T0)
        with store.engine.begin() as conn:
            conn.execute(schema.term_expansions.delete())
            conn.execute(text("DROP TABLE term_expansions"))
            before = [step.__name__ for step in MIGRATIONS].index("_term_expansions")
            conn.execute(schema.schema_version.update().values(version=before))
        store.migrate()
        store._expansions = None
        assert found(store, '"out of distribution"') >= {"2601.00003"}
    finally:
        store.close()


def test_exact_words_are_left_alone() -> None:
    """An exact word (=OOD) means the word only as written: never widened, in a phrase too."""
    table = ExpansionTable.build([("ood", "OOD", long_key("out-of-distribution"), "o-o-d", 5)])
    parsed = parse_query("OOD")
    assert expand(parsed, table).query != parsed
    for query in ("=OOD", '"=OOD generalization"'):
        exact = parse_query(query)
        assert expand(exact, table).query is exact


def test_search_keeps_its_plain_meaning_when_the_table_cannot_be_read(store: Store) -> None:
    store.add_papers(OOD_PAPERS, now=T0)
    with store.engine.begin() as conn:
        conn.execute(text("DROP TABLE term_expansions"))
    store._expansions = None
    assert found(store, "OOD") == {"2601.00001", "2601.00002", "2601.00003"}


# Stores papers writing compounds two ways (mined as they are stored), mines the whole
# archive, and prints both tables' rows: under any hash seed, the same.
_MINE_BOTH_WAYS = """
import json, sys
from datetime import UTC, datetime
from sqlalchemy import select
from bridge.models import Paper
from bridge.store import open_store, schema
from bridge.store.expansions import archive_rows

texts = [
    ("Data", "We release a data set, then many data sets."),
    ("More", "Datasets and a dataset, also data sets and a data set; a time step or timesteps."),
    ("Time", "Each time steps and time step, timestep by timestep."),
]
papers = [
    Paper(arxiv_id=f"2601.{n:05d}", title=title, abstract=abstract, sources=["arxiv"])
    for n, (title, abstract) in enumerate(texts, start=1)
]
store = open_store(f"sqlite:///{sys.argv[1]}")
now = datetime(2026, 1, 5, tzinfo=UTC)
store.add_papers(papers[:1], now=now)
store.add_papers(papers[1:], now=now)
table = schema.term_expansions
with store.engine.connect() as conn:
    stored = [list(row) for row in conn.execute(select(table).order_by(*table.primary_key))]
    archive = archive_rows(conn)
store.close()
print(json.dumps([stored, archive]))
"""


def test_the_rows_mined_do_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    # A paper writing a compound two ways gives the row its first texts: by the order of
    # its pairs, sorted, not by the order of a set (which the hash seed decides).
    outputs = set()
    for seed in ("0", "1", "2", "3", "4"):
        done = subprocess.run(
            [sys.executable, "-c", _MINE_BOTH_WAYS, str(tmp_path / f"seed{seed}.db")],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    stored, archive = json.loads(outputs.pop())
    assert any(row[0] == "compound" for row in stored)
    assert any(row["kind"] == "compound" for row in archive)
