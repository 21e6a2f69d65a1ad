"""A synthetic paper corpus shaped like arXiv/HF listings, grown from the fixtures' own words.

Used by ``bench/search.py`` and ``bench/query_match.py``. Deterministic for a given seed and
paper number, so a corpus can be rebuilt (or any slice of it regenerated) anywhere.

The vocabulary is every word the fixture papers use, ranked by frequency, followed by a
tail of 60,000 made-up words. Each one splices the start of one fixture word onto the end of
another ("transfusion", "benchmarkable"), so the vocabulary is about 65,000 words with the
long tail real text has. A text is a walk that, at each word, either follows a word pair seen
in the fixtures (so real phrases like "large language models" recur) or draws a fresh word
from a Zipf distribution (s = 1) over the whole vocabulary. Abstracts are random sentences
from a pool of 300,000 such walks (cheaper to generate than a walk per paper). Sizes: titles of 8-16 words
(about 12), abstracts of 150-200 words, 1-12 authors. Categories come from a skewed mix of
cs/stat/math/eess archives. Upvotes are HF-like: 15% of papers are on Hugging Face, with
heavy-tailed upvotes (median about 5, a few in the hundreds), an AI summary and keywords.
"""

from __future__ import annotations

import bisect
import itertools
import random
import re
from collections import Counter
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from bridge.models import Paper
from bridge.sources import arxiv_parse, hf_parse

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"

CATEGORIES = [
    ("cs.LG", 20),
    ("cs.CV", 16),
    ("cs.CL", 14),
    ("cs.AI", 12),
    ("cs.RO", 5),
    ("stat.ML", 6),
    ("cs.CR", 3),
    ("cs.IR", 3),
    ("eess.IV", 3),
    ("eess.AS", 2),
    ("math.OC", 3),
    ("cs.NE", 2),
    ("cs.HC", 2),
    ("cs.SE", 2),
    ("q-bio.QM", 1),
    ("physics.comp-ph", 1),
    ("math.ST", 1),
    ("cs.DC", 2),
]
TAIL_WORDS = 60_000
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'\-]*[A-Za-z0-9]|[A-Za-z]")


def fixture_papers() -> list[Paper]:
    papers: list[Paper] = []
    hf = FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json"
    papers += hf_parse.parse_api(hf.read_bytes(), str(hf)).papers
    for path in sorted((FIXTURES / "arxiv").glob("api_*.xml")):
        papers += arxiv_parse.parse_api(path.read_bytes(), str(path)).papers
    for path in sorted((FIXTURES / "arxiv").glob("rss_*.xml")):
        papers += arxiv_parse.parse_listing(path.read_bytes(), str(path)).papers
    return papers


@dataclass
class Vocabulary:
    words: list[str]  # rank order: fixture words by frequency, then the made-up tail
    cumulative: list[float]  # Zipf weights, cumulative
    following: dict[str, list[str]]  # word -> words seen after it in the fixtures
    first_names: list[str]
    surnames: list[str]
    summaries: list[list[str]]  # AI summaries as word lists, for their style

    def zipf_word(self, rng: random.Random) -> str:
        return self.words[bisect.bisect(self.cumulative, rng.random() * self.cumulative[-1])]


@lru_cache(maxsize=1)
def vocabulary() -> Vocabulary:
    papers = fixture_papers()
    texts = [f"{p.title}. {p.abstract}" for p in papers]
    counts: Counter[str] = Counter()
    following: dict[str, list[str]] = {}
    for text in texts:
        for sentence in re.split(r"(?<=[.;:!?])\s+", text):
            words = _WORD.findall(sentence)
            counts.update(words)
            for left, right in itertools.pairwise(words):
                following.setdefault(left.lower(), []).append(right)
    head = [word for word, _ in counts.most_common()]
    rng = random.Random(1234)
    lowered = sorted({w.lower() for w in head if w.isalpha() and len(w) >= 5})
    seen = {w.lower() for w in head}
    tail: list[str] = []
    while len(tail) < TAIL_WORDS:
        a, b = rng.choice(lowered), rng.choice(lowered)
        word = a[: rng.randint(3, min(6, len(a)))] + b[-rng.randint(3, min(5, len(b))) :]
        if word not in seen:
            seen.add(word)
            tail.append(word)
    words = head + tail
    cumulative = list(itertools.accumulate(1.0 / (rank + 2.7) for rank in range(len(words))))
    names = [a for p in papers for a in p.authors if len(a.split()) >= 2]
    first_names = sorted({n.split()[0] for n in names})
    surnames = sorted({n.split()[-1] for n in names})
    summaries = [_WORD.findall(p.ai_summary) for p in papers if p.ai_summary]
    return Vocabulary(words, cumulative, following, first_names, surnames, summaries)


def _text(vocab: Vocabulary, rng: random.Random, size: int, follow: float = 0.55) -> str:
    drawn = rng.choices(vocab.words, cum_weights=vocab.cumulative, k=size)
    coins = [rng.random() < follow for _ in range(size)]
    following = vocab.following
    out: list[str] = []
    end = rng.randint(12, 30)
    word = drawn[0]
    for i in range(size):
        if i == 0 or out[-1].endswith("."):
            word = word[:1].upper() + word[1:]
        out.append(word)
        if len(out) >= end and i < size - 3:
            out[-1] += "."
            end = len(out) + rng.randint(12, 30)
        nexts = following.get(word.lower())
        word = rng.choice(nexts) if nexts and coins[i] else drawn[i]
    return " ".join(out) + "."


# Abstracts are drawn as sentences from a large pool of generated ones: each sentence is
# reused about 30 times over a million papers, and generating the corpus costs a tenth.
POOL_SENTENCES = 300_000


@lru_cache(maxsize=1)
def _pool() -> list[tuple[str, int]]:
    vocab = vocabulary()
    rng = random.Random(99)
    pool = []
    for _ in range(POOL_SENTENCES):
        sentence = _text(vocab, rng, rng.randint(12, 30))
        pool.append((sentence, sentence.count(" ") + 1))
    return pool


def _abstract(rng: random.Random, size: int) -> str:
    pool = _pool()
    out: list[str] = []
    words = 0
    while words < size:
        sentence, count = pool[rng.randrange(len(pool))]
        out.append(sentence)
        words += count
    return " ".join(out)


def _upvotes(rng: random.Random) -> int:
    return min(int(rng.paretovariate(1.1) * 2.5) - 1, 900)


_CATEGORY_NAMES = [name for name, _ in CATEGORIES]
_CATEGORY_WEIGHTS = list(itertools.accumulate(weight for _, weight in CATEGORIES))
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def synthetic_paper(n: int, seed: int = 0) -> Paper:
    """Paper number ``n`` of the corpus (ids and dates increase with n)."""
    vocab = vocabulary()
    rng = random.Random(seed * 1_000_003 + n)
    title = _text(vocab, rng, rng.randint(8, 16), follow=0.7).rstrip(".")
    abstract = _abstract(rng, rng.randint(150, 200))
    authors = tuple(
        f"{rng.choice(vocab.first_names)} {rng.choice(vocab.surnames)}"
        for _ in range(min(12, max(1, int(rng.expovariate(1 / 4)) + 1)))
    )
    categories = tuple(
        dict.fromkeys(
            rng.choices(_CATEGORY_NAMES, cum_weights=_CATEGORY_WEIGHTS, k=rng.randint(1, 3))
        )
    )
    on_hf = rng.random() < 0.15
    published = EPOCH + timedelta(minutes=3 * n)
    extra: dict[str, object] = {}
    if on_hf:
        style = rng.choice(vocab.summaries)
        extra = dict(
            upvotes=_upvotes(rng),
            ai_summary=_text(vocab, rng, max(12, len(style)), follow=0.7),
            ai_keywords=tuple(
                _text(vocab, rng, rng.randint(1, 3), follow=0.8).rstrip(".").lower()
                for _ in range(rng.randint(3, 7))
            ),
            sources=("hf", "arxiv"),
        )
    return Paper(
        arxiv_id=f"{2001 + n // 100_000}.{n % 100_000:05d}",
        title=title,
        abstract=abstract,
        authors=authors,
        version=1,
        source="arxiv",
        listed_on=date(2020, 1, 1) + timedelta(days=n // 1000),
        published_at=published,
        updated_at=published,
        categories=categories,
        primary_category=categories[0],
        **extra,  # type: ignore[arg-type]
    )


_PAPER_FIELDS = tuple(f.name for f in fields(Paper))


def make_batch(
    start: int, count: int, seed: int = 0
) -> tuple[list[tuple[object, ...]], list[object]]:
    """Papers ``start`` to ``start + count - 1`` and their index docs, as plain tuples.

    Runs in worker processes: the index text is worked out next to the generator, as the
    importer does it in its parsing process.
    """
    from bridge.store.search_index import index_doc

    papers = [synthetic_paper(n, seed) for n in range(start, start + count)]
    rows = [tuple(getattr(p, name) for name in _PAPER_FIELDS) for p in papers]
    return rows, [index_doc(p) for p in papers]


def papers_of(start: int, count: int, seed: int = 0) -> list[Paper]:
    """Papers ``start`` to ``start + count - 1`` (for worker processes: no index text)."""
    return [synthetic_paper(n, seed) for n in range(start, start + count)]


def paper_from_row(row: tuple[object, ...]) -> Paper:
    return Paper(*row)  # type: ignore[arg-type]
