"""British/American spelling benchmark: how often searching one spelling finds the other.

For every pair of a public list, a query of one spelling is parsed and matched (``parse_query``,
``match_paper``: what subscriptions and search do) against a paper whose title is the other
spelling, in both directions. Prints the share found each way and every miss.

Lists measured:

``breame``
    The ~1,700 British -> American pairs that the ``breame`` package (PyPI, 0.1.2) ships in
    ``breame/data/spelling_constants.py``. The analyzer's generated table does *not* come from
    it (scripts/spelling-variants reads SCOWL), so this list is independent of the generator.
    It includes pairs the analyzer keeps apart on purpose (false friends: draught/draft,
    tyre/tire, tonne/ton, disc/disk, programme/program, philtre/filter, gauge/gage, ...); those
    are counted as misses and also listed on their own.
``scowl``
    The pairs scripts/spelling-variants derives from Debian's ``scowl`` word lists, i.e. the
    generator's own source: a self-check, not an independent measure.

breame is not a dependency of paperbridge; install it anywhere and name the folder:

    pip install --target /tmp/breame breame==0.1.2
    .venv/bin/python bench/spelling.py --breame /tmp/breame [--scowl /usr/share/dict/scowl]
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from bridge.models import Paper  # noqa: E402
from bridge.query import match_paper, normalize_word, parse_query  # noqa: E402
from bridge.query.spelling_data import FALSE_FRIENDS  # noqa: E402


def _finds(query_word: str, written: str) -> bool:
    paper = Paper(arxiv_id="0000.00000", title=written)
    return match_paper(parse_query(query_word), paper) is not None


def _false_friend(british: str, american: str) -> bool:
    """A pair kept apart on purpose: a listed false friend or one of its inflections."""
    return any(
        normalize_word(british) == normalize_word(b)
        and normalize_word(american) == normalize_word(a)
        for b, a, _ in FALSE_FRIENDS
    )


def measure(name: str, pairs: Iterable[tuple[str, str]], show: int) -> None:
    pairs = sorted(set(pairs))
    missed_b2a = [(b, a) for b, a in pairs if not _finds(b, a)]
    missed_a2b = [(b, a) for b, a in pairs if not _finds(a, b)]
    n = len(pairs)
    print(f"{name}: {n} pairs")
    print(
        f"  British query finds American text: {1 - len(missed_b2a) / n:.4f} ({n - len(missed_b2a)}/{n})"
    )
    print(
        f"  American query finds British text: {1 - len(missed_a2b) / n:.4f} ({n - len(missed_a2b)}/{n})"
    )
    kept_apart = [p for p in missed_b2a if _false_friend(*p)]
    other = [p for p in sorted(set(missed_b2a) | set(missed_a2b)) if not _false_friend(*p)]
    if kept_apart:
        print(f"  of the misses, false friends kept apart on purpose ({len(kept_apart)}):")
        print("    " + ", ".join(f"{b}/{a}" for b, a in kept_apart))
    shown = other if show < 0 else other[:show]
    print(f"  other misses ({len(other)}):")
    if shown:
        print("    " + ", ".join(f"{b}/{a}" for b, a in shown))


def breame_pairs(folder: str | None) -> list[tuple[str, str]]:
    if folder:
        sys.path.insert(0, folder)
    try:
        module = importlib.import_module("breame.data.spelling_constants")
    except ImportError:
        sys.exit(
            "bench/spelling.py: breame is not importable; "
            "pip install --target /tmp/breame breame==0.1.2 and pass --breame /tmp/breame"
        )
    return list(module.BRITISH_ENGLISH_SPELLINGS.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--breame", help="folder that holds the breame package")
    parser.add_argument("--scowl", help="SCOWL's word lists (default: skip the self-check)")
    parser.add_argument("--show", type=int, default=-1, help="misses to print (-1: all)")
    args = parser.parse_args()
    measure("breame 0.1.2 (independent of the generator)", breame_pairs(args.breame), args.show)
    if args.scowl:
        generator = importlib.import_module("spelling_variants")
        pairs = generator.derive_pairs(Path(args.scowl), generator.DEFAULT_SIZE)
        measure("SCOWL-derived pairs (the generator's own source)", pairs, args.show)


if __name__ == "__main__":
    main()
