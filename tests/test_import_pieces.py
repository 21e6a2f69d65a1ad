"""What a parsing process of `paperbridge import` loads: the parsers and the analyzer, never the
store. Every parsing process would otherwise carry SQLAlchemy and its dialects for nothing
(about 15 MiB each, counted by bench/import_memory.py)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from functools import partial
from pathlib import Path

from bridge.import_pieces import Piece, parse_piece
from bridge.processes import end_with_parent

FIXTURE = Path(__file__).parent / "fixtures" / "hf" / "daily_papers_api_limit30_2026-06-13.json"

# A fresh interpreter does what a spawned parsing process does: start with the pool's
# initializer, unpickle the task and its piece (which imports what they name), run it.
CHILD = """
import os, pickle, sys
initializer, task, piece = pickle.loads(sys.stdin.buffer.read())
initializer(os.getppid())
rows, docs, problems, error, name = task(piece)
print(len(rows), len(docs), error)
print(sorted(m for m in sys.modules if m.split(".")[0] in ("sqlalchemy", "psycopg")))
"""


def test_a_parsing_process_parses_without_loading_the_store() -> None:
    task = partial(parse_piece, tsvectors=True)  # a PostgreSQL import's task, the larger one
    sent = pickle.dumps((end_with_parent, task, Piece(FIXTURE)))
    child = subprocess.run(
        [sys.executable, "-c", CHILD], input=sent, capture_output=True, check=True
    )
    parsed, loaded = child.stdout.decode().splitlines()
    count, docs, error = parsed.split()
    assert int(count) > 0 and docs == count and error == "None"
    assert loaded == "[]", f"a parsing process loaded {loaded}"
