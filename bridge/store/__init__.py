"""The paper store: one interface over SQLite (default) and PostgreSQL, via SQLAlchemy Core.

The store itself is ``bridge.store.core``; its names (``Store``, ``open_store``,
``sqlite_file``…) are reachable here as before, each loading ``core`` on first use (PEP 562).
The package imports nothing itself, so that a module of it that needs no SQLAlchemy (the
search index's query planning and reads, ``bridge.store.search_index``) can be imported
without SQLAlchemy: `paperbridge search` on SQLite reads through the stdlib ``sqlite3``
module (``bridge.sqlite_read``), and importing SQLAlchemy alone costs most of that command's
200 ms budget (issue 14).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.store.core import (
        CREATED_JOB,
        BulkWriter,
        SourceState,
        Store,
        open_store,
        safe_url,
        sqlite_file,
    )
    from bridge.store.core import (
        _json_list as _json_list,
    )
    from bridge.store.core import (
        _to_paper as _to_paper,
    )
    from bridge.store.core import (
        _to_row as _to_row,
    )
    from bridge.store.core import (
        _to_stored as _to_stored,
    )
    from bridge.store.core import (
        _utcnow as _utcnow,
    )

# This package's own modules: ``from bridge.store import schema`` imports the module, not core.
_MODULES = frozenset(
    {
        "bulk",
        "core",
        "expansions",
        "ledger",
        "listing",
        "liveness",
        "locking",
        "migrations",
        "mining",
        "refusal",
        "rows",
        "schema",
        "search_index",
    }
)

__all__ = [
    "CREATED_JOB",
    "BulkWriter",
    "SourceState",
    "Store",
    "open_store",
    "safe_url",
    "sqlite_file",
]


def __getattr__(name: str) -> Any:
    if name.startswith("__") or name in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module("bridge.store.core"), name)
