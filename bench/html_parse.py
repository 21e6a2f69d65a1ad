"""HTML page benchmark: CPU time of hf_parse.parse_html on real-shaped and hostile pages.

For each page it prints the CPU time of parse_html and what came of it, and, for real pages,
how much of that the work bound (bridge.sources.html_cost) took next to lexbor building the
tree. With --unguarded it also times lexbor alone on every page, as parse_html did before the
bound: on the hostile pages that takes minutes.

    .venv/bin/python bench/html_parse.py [--unguarded]
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from selectolax.lexbor import LexborHTMLParser  # noqa: E402

from bridge.sources import html_cost  # noqa: E402
from bridge.sources.hf_parse import parse_html  # noqa: E402

LISTING = (ROOT / "tests" / "fixtures" / "hf" / "papers_page_date_2024-08-01.html").read_text()
URL = "https://huggingface.co/papers?date=2024-08-01"


def cards_page(count: int) -> str:
    """The real listing page with its article cards repeated to ``count`` distinct papers."""
    cards = re.findall(r"<article.*?</article>", LISTING, re.S)
    grown = "".join(
        re.sub(r"2407\.\d{5}|2404\.\d{5}", f"2408.{10_000 + n:05d}", cards[n % len(cards)])
        for n in range(count)
    )
    first, last = LISTING.index(cards[0]), LISTING.index(cards[-1]) + len(cards[-1])
    return LISTING[:first] + grown + LISTING[last:]


def cpu(func: Callable[[], object], runs: int) -> float:
    """The least CPU time of ``runs`` calls: the least disturbed by the rest of the machine."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        func()
        best = min(best, time.process_time() - start)
    return best


def outcome(page: str) -> str:
    result = parse_html(page, URL)
    if result.papers:
        return f"{len(result.papers)} papers"
    return result.problems[0].problem if result.problems else "nothing"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unguarded", action="store_true", help="also time lexbor alone")
    args = parser.parse_args()

    real = {
        "listing page, 13 cards": LISTING,
        "listing page grown to 100 cards": cards_page(100),
    }
    print("Real pages (best of 20):")
    for label, page in real.items():
        whole = cpu(lambda page=page: parse_html(page, URL), 20)
        bound = cpu(lambda page=page: html_cost.check(page), 20)
        tree = cpu(lambda page=page: LexborHTMLParser(page), 20)
        print(
            f"  {label:<34} parse_html {whole * 1000:6.2f} ms: bound {bound * 1000:5.2f} ms,"
            f" lexbor's tree {tree * 1000:5.2f} ms -> {outcome(page)}"
        )

    hostile = {
        "100,000 nested <div>s": "<div>" * 100_000,
        "50,000 nested <ul><li>": "<ul><li>" * 50_000,
        "100,000 nested <option>s": "<select>" + "<option>" * 100_000,
        "100,000 distinct <b>s": "".join(f"<b id={n}>" for n in range(100_000)),
        "1,000 <b>s re-created 1,000 times": "<div>" * 1_000
        + "".join(f"<b id={n}>" for n in range(1_000))
        + "</div>x" * 1_000,
        "1,000,000 flat tags": "<i></i>" * 1_000_000,
    }
    print("Hostile pages (one run each):")
    for label, page in hostile.items():
        spent = cpu(lambda page=page: parse_html(page, URL), 1)
        line = f"  {label:<34} parse_html {spent:7.3f} s"
        if args.unguarded:
            line += f", lexbor alone {cpu(lambda page=page: LexborHTMLParser(page), 1):7.3f} s"
        print(f"{line} -> {outcome(page)}")


if __name__ == "__main__":
    main()
