"""Keyword matching benchmark: 1,000 new papers against 100,000 subscriptions on one core.

Measures the CPU time (``time.process_time``) of ``Percolator.match`` for a day's worth of new
papers against every standing subscription. That is what the poller does after each fetch,
and it includes analyzing every paper. The baseline is the obvious implementation: each
subscription as compiled regular expressions (one per word or phrase, case-insensitive, on
word boundaries) searched in each paper's text. The baseline runs on a sample of
subscriptions and papers and is extrapolated to the full size, as printed. Both run in the
same process, one after the other.

Papers come from ``bench/corpus.py``, the synthetic corpus grown from the fixtures' own words.
Subscriptions are realistic standing queries. There are 1 to 3 items (60% one, 30% two, 10%
three). An item is a word (75%) or a two-word phrase seen in the corpus (25%). Words are
topic words: in 0.05% to 3% of papers. Phrases are in at least 0.05% of papers, and at least
one of their words is in at most 5%. Popularity follows a Zipf law over the topics in random
order, so many people follow the same popular topics and a long tail follows rare ones. Some queries join their items with OR
(10%), restrict a word to the title (5%) or add a category (5%). Some words are exact
(``=word``, 3% by default: ``--exact-share``) and some queries add a listing-date condition
(1%: ``--date-share``), so the figure holds with those on. A sample is also checked
against ``match_paper`` for every pair, so the figures are for correct answers.

Subscriptions are compiled with the acronyms and open compounds mined (``table_of``) from the
3,000 older synthetic papers the subscriptions are drawn from plus the real fixture papers, as
the service compiles them with its archive's table; ``--no-expansions`` compiles them without.
That table widens only a handful of the synthetic subscriptions. ``--widen F`` adds a stress
case: a share F of the subscriptions' topic words read as acronyms, each of a three-word long
form drawn from the corpus (``and`` between two topic words), so those subscriptions become
trees rather than key lookups (the costlier shape).

The matching is timed ``--repeat`` times (5 by default), each run with the analyzer's caches
emptied first, as in a new process; the best and the median are printed, since one run on a
shared machine moves by 20% with the load. ``--instructions`` also counts the instructions of
one run under valgrind's callgrind (in a child process, hash seed fixed): a figure that does
not move with the load, for comparing two versions of the code. It runs the set-up some 50
times slower, so use it with fewer subscriptions on a busy machine.

    .venv/bin/python bench/query_match.py [--papers 1000] [--subscriptions 100000]
                                          [--no-expansions] [--repeat 5] [--instructions]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from itertools import accumulate
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from corpus import fixture_papers, synthetic_paper  # noqa: E402

from bridge.models import Match, Paper, Subscription  # noqa: E402
from bridge.query import Percolator, exact, index_paper, match_paper, normalize, parse_query  # noqa: E402  # noqa: E402
from bridge.query.abbreviations import long_key  # noqa: E402
from bridge.query.evaluate import exact_terms  # noqa: E402
from bridge.query.expansions import EMPTY, ExpansionTable, expand  # noqa: E402
from bridge.query.normalize import normalize_word  # noqa: E402
from bridge.store.expansions import table_of  # noqa: E402

STOPWORDS = set(
    """a an the of and or to in on for with by from as at is are was were be been this that these
    those we our it its which while can via into than then also such not no their they has have
    had using use used based both each over under all any more most other between through
    only new two one first show shows propose proposed paper results""".split()
)


def subscriptions(
    count: int,
    sample_papers: list[Paper],
    seed: int = 3,
    exact_share: float = 0.0,
    date_share: float = 0.0,
) -> list[Subscription]:
    """Standing queries on topics: words and phrases that name a topic, not filler."""
    rng = random.Random(seed)
    df: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for paper in sample_papers:
        tokens = [w.strip(".,;:()").lower() for w in f"{paper.title} {paper.abstract}".split()]
        df.update({w for w in tokens if w.isalpha() and len(w) > 3 and w not in STOPWORDS})
        pairs.update(
            {
                (a, b)
                for a, b in zip(tokens, tokens[1:], strict=False)
                if a.isalpha()
                and b.isalpha()
                and min(len(a), len(b)) > 3
                and not {a, b} & STOPWORDS
                and a != b
            }
        )
    n = len(sample_papers)
    # Topic words are in 0.05% to 3% of papers: specific enough to follow.
    topics = sorted(w for w, c in df.items() if 0.0005 <= c / n <= 0.03)
    # Topic phrases: seen in at least 0.05% of papers, with at least one word that is itself
    # specific (in at most 5% of papers), like "graph neural" or "protein folding". The
    # generator's most common words pair up far more often than real text's.
    phrases = sorted(
        f'"{a} {b}"'
        for (a, b), c in pairs.items()
        if c / n >= 0.0005 and min(df[a], df[b]) / n <= 0.05
    )
    rng.shuffle(topics)
    rng.shuffle(phrases)
    # Popularity: a Zipf law over topics in random order (a few popular, a long tail).
    topic_weights = list(accumulate(1.0 / (rank + 5) for rank in range(len(topics))))
    phrase_weights = list(accumulate(1.0 / (rank + 5) for rank in range(len(phrases))))
    categories = ["cs.LG", "cs.CV", "cs.CL", "cs.AI", "stat.ML", "cs.RO", "cs.*"]
    out: list[Subscription] = []
    while len(out) < count:
        size = rng.choices([1, 2, 3], weights=[6, 3, 1])[0]
        items = []
        for _ in range(size):
            if rng.random() < 0.25 and phrases:
                items.append(rng.choices(phrases, cum_weights=phrase_weights)[0])
            else:
                word = rng.choices(topics, cum_weights=topic_weights)[0]
                if rng.random() < exact_share:
                    word = "=" + word  # an exact word
                items.append(f"title:{word}" if rng.random() < 0.05 else word)
        text = (" OR " if size > 1 and rng.random() < 0.1 else " ").join(items)
        if rng.random() < 0.05:
            text += f" cat:{rng.choice(categories)}"
        if rng.random() < date_share:
            text += f" date>={rng.choice(['2024-01-01', '2025-06', '2026'])}"
        out.append(Subscription(f"s{len(out)}", text))
    return out


# --- the baseline: one regular expression per word or phrase, per subscription --------------------


def widened_table(table: ExpansionTable, subs: list[Subscription], share: float) -> ExpansionTable:
    """``table`` plus a long form for a share of the subscriptions' plain words (stress)."""
    rng = random.Random(7)
    words = sorted(
        {w for s in subs for w in s.query.split() if w.isalpha() and w.islower() and w != "OR"}
    )
    chosen = rng.sample(words, int(len(words) * share))
    acronyms = [(d.short_key, d.short_text, d.long_key, d.long_text, 99) for d in table.version]
    for word in chosen:
        long = f"{rng.choice(words)} and {rng.choice(words)}"
        acronyms.append((normalize_word(word), word, long_key(long), long, 99))
    return ExpansionTable.build(acronyms)


def compile_baseline(subscription: Subscription) -> tuple[bool, list[re.Pattern[str]]]:
    """(any_of, patterns): the words and phrases of a query as word-boundary regexes."""
    query = subscription.query
    any_of = " OR " in query
    query = re.sub(r"\bcat:\S+|\bdate>=\S+", "", query).replace("=", "")
    items = re.findall(r'"[^"]+"|\S+', query.replace(" OR ", " "))
    patterns = []
    for item in items:
        words = item.strip('"').removeprefix("title:").split()
        body = r"\s+".join(re.escape(w) for w in words)
        patterns.append(re.compile(rf"\b{body}\b", re.IGNORECASE))
    return any_of, patterns


def baseline_match(compiled: list[tuple[bool, list[re.Pattern[str]]]], text: str) -> int:
    found = 0
    for any_of, patterns in compiled:
        if any_of:
            hit = any(p.search(text) for p in patterns)
        else:
            hit = all(p.search(text) for p in patterns)
        found += hit
    return found


def paper_text(paper: Paper) -> str:
    return " ".join(
        [paper.title, paper.abstract, paper.ai_summary or "", ", ".join(paper.ai_keywords)]
    )


def cold_start() -> None:
    """Empty the analyzer's caches, as in a new process."""
    normalize.clear_caches()
    exact.clear_caches()


def count_instructions(args: argparse.Namespace) -> int:
    """Instructions of one matching run (cold caches), counted by callgrind in a child process.

    Repeatable whatever the machine's load: callgrind counts only what runs inside
    ``sys.call_tracing`` (the call of ``match``), and the hash seed is fixed.
    """
    argv = [a for a in sys.argv[1:] if a != "--instructions"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--collect-atstart=no",
                "--toggle-collect=sys_call_tracing",
                f"--callgrind-out-file={out}",
                sys.executable,
                __file__,
                *argv,
                "--count-only",
            ],
            env={**os.environ, "PYTHONHASHSEED": "0"},
            check=True,
            capture_output=True,
        )
        summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
    assert summary, "callgrind wrote no summary"
    return int(summary.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1000)
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--baseline-subscriptions", type=int, default=1000)
    parser.add_argument("--baseline-papers", type=int, default=200)
    parser.add_argument(
        "--exact-share", type=float, default=0.03, help="share of words written =word (exact)"
    )
    parser.add_argument(
        "--date-share", type=float, default=0.01, help="share of queries with a date condition"
    )
    parser.add_argument("--no-expansions", action="store_true")
    parser.add_argument("--widen", type=float, default=0.0)
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed runs of matching, each with cold caches"
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count the instructions of one matching run under valgrind's callgrind",
    )
    parser.add_argument("--count-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    # Subscriptions are drawn from older papers; the new papers are later in the corpus.
    sample = [synthetic_paper(n, seed=5) for n in range(3000)]
    subs = subscriptions(
        args.subscriptions, sample, exact_share=args.exact_share, date_share=args.date_share
    )
    papers = [synthetic_paper(n, seed=6) for n in range(args.papers)]
    lengths = Counter(
        len(re.findall(r'"[^"]+"|\S+', re.sub(r"cat:\S+|OR", "", s.query))) for s in subs
    )
    print(
        f"{len(subs):,} subscriptions ({', '.join(f'{lengths[k]:,} with {k} items' for k in sorted(lengths))}),"
        f" e.g. {', '.join(repr(s.query) for s in subs[:5])}"
    )
    print(f"{len(papers):,} new papers, e.g. {papers[0].title!r}")
    exact = sum(bool(re.search(r'(?:^|[\s"(:])=\w', s.query)) for s in subs)
    dated = sum("date>=" in s.query for s in subs)
    print(f"  of which {exact:,} use an exact word (=word) and {dated:,} a date condition")
    table = EMPTY if args.no_expansions else table_of(sample + fixture_papers())
    if args.widen:
        table = widened_table(table, subs, args.widen)
    widened = sum(expand(parse_query(s.query), table).labels != {} for s in subs)
    print(
        f"expansions: {len(table.version)} acronyms and compounds, e.g."
        f" {', '.join(sorted(f'{d.short_text}={d.long_text}' for d in table.version)[:6])};"
        f" {widened:,} of the subscriptions are widened"
    )

    gc.collect()
    start = time.process_time()
    percolator = Percolator(subs, table)
    build = time.process_time() - start
    assert not percolator.invalid, list(percolator.invalid.items())[:3]
    print(f"percolator: indexing {len(subs):,} subscriptions {build:.2f} s CPU (once, at start)")
    if args.count_only:
        # Under callgrind (``--instructions``): only what runs inside sys.call_tracing counts.
        cold_start()
        gc.collect()
        sys.call_tracing(percolator.match, (papers,))
        return
    if args.instructions:
        print(
            f"percolator: matching {len(papers):,} papers {count_instructions(args):,} instructions"
        )
    times: list[float] = []
    matches: list[Match] = []
    for _ in range(args.repeat):
        # Each repetition meets the analyzer as a new process does: its word caches empty.
        cold_start()
        matches = []  # the previous run's matches are freed outside the timed part
        gc.collect()
        start = time.process_time()
        matches = percolator.match(papers)
        times.append(time.process_time() - start)
    ours = statistics.median(times)
    per_paper = Counter(m.arxiv_id for m in matches)
    print(
        f"percolator: matching {len(papers):,} papers, {len(times)} runs (s CPU):"
        f" {', '.join(f'{t:.3f}' for t in times)}"
    )
    print(
        f"percolator: matching {len(papers):,} papers best {min(times):.3f} s,"
        f" median {ours:.3f} s CPU ({ours / len(papers) * 1000:.2f} ms per paper),"
        f" {len(matches):,} matches ({len(matches) / len(papers):.0f} per paper,"
        f" at most {max(per_paper.values(), default=0):,})"
    )

    # Correctness on a sample: every (subscription, paper) pair through match_paper.
    check_subs = subs[:300]
    parsed = [(s.id, expand(parse_query(s.query), table).query) for s in check_subs]
    exact_words = frozenset().union(*(exact_terms(q) for _, q in parsed))
    analyzed = [index_paper(p, exact_words) for p in papers]
    wanted = {
        (sid, px.paper.arxiv_id)
        for px in analyzed
        for sid, q in parsed
        if match_paper(q, px) is not None
    }
    check_ids = {s.id for s in check_subs}
    got = {(m.subscription_id, m.arxiv_id) for m in matches if m.subscription_id in check_ids}
    assert got == wanted, (len(got), len(wanted))
    print(
        f"checked: the first {len(check_subs)} subscriptions x {len(papers):,} papers equal match_paper"
    )

    # Baseline on a sample, extrapolated.
    base_subs = subs[: args.baseline_subscriptions]
    base_papers = papers[: args.baseline_papers]
    gc.collect()
    start = time.process_time()
    compiled = [compile_baseline(s) for s in base_subs]
    compile_time = time.process_time() - start
    texts = [paper_text(p) for p in base_papers]
    start = time.process_time()
    base_found = sum(baseline_match(compiled, text) for text in texts)
    sample_time = time.process_time() - start
    scale = (len(subs) / len(base_subs)) * (len(papers) / len(base_papers))
    theirs = sample_time * scale
    print(
        f"baseline (regex per subscription): {len(base_subs):,} subscriptions x"
        f" {len(base_papers):,} papers took {sample_time:.2f} s CPU ({base_found:,} matches);"
        f" extrapolated x{scale:,.0f} to {len(subs):,} x {len(papers):,}: {theirs:,.0f} s CPU"
        f" (+ compiling the regexes: {compile_time * len(subs) / len(base_subs):.1f} s)"
    )
    print(f"percolator is {theirs / ours:,.0f}x faster than the baseline on the same data")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
