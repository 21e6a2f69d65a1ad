"""A process storing papers as serve's polls do, for the tests that run an import beside it.

Run as ``python -m tests.store_writer DATABASE_URL FIRST COUNT``: stores batches of 30 papers
with ids among ``2601.{FIRST}`` to ``2601.{FIRST + COUNT - 1}`` (ones an import stores too),
a batch every 50 ms or so, until its standard input closes; then prints how many batches it
stored. Exits 1 at the first batch that fails.
"""

from __future__ import annotations

import sys
import threading

from bridge.models import Paper
from bridge.store import open_store

PACE = 0.05  # seconds between batches: a busy serve, not one writing without a pause


def main(url: str, first: int, count: int) -> int:
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    store = open_store(url)
    batches = 0
    try:
        while not done.wait(PACE):
            ids = [first + (batches * 997 + k * 31) % count for k in range(30)]
            papers = [Paper(f"2601.{n:05d}", f"Paper {n}", upvotes=batches) for n in ids]
            try:
                store.add_papers(papers, announce=False)
            except Exception as exc:
                print(f"batch {batches} failed: {exc}", file=sys.stderr)
                return 1
            batches += 1
    finally:
        store.close()
    print(batches)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
