"""A stored row of ``papers`` as a Paper: shared by the store (SQLAlchemy) and the search read
path on the stdlib sqlite3 module (``bridge.sqlite_read``), so both build the same objects.
No SQLAlchemy here (see bridge/store/__init__.py)."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

from bridge.models import Paper, StoredPaper

# Columns holding a JSON list of strings.
JSON_LIST_COLUMNS = ("authors", "sources", "categories", "ai_keywords")
# The Paper fields stored as columns of the same name.
PAPER_FIELDS = tuple(f.name for f in fields(Paper) if f.name not in ("source", "announce_type"))


def to_paper(row: Any) -> Paper:
    """The Paper of a row (attributes named as the columns)."""
    values = {name: getattr(row, name) for name in PAPER_FIELDS}
    for name in JSON_LIST_COLUMNS:
        values[name] = tuple(json.loads(values[name] or "[]"))
    sources = values["sources"]
    return Paper(source=sources[0] if sources else "arxiv", **values)


def to_stored(row: Any) -> StoredPaper:
    return StoredPaper(
        paper=to_paper(row),
        seq=row.seq,
        first_seen_at=row.first_seen_at,
        announced=bool(row.announced),
    )
