"""`paperbridge search`: search the stored papers and print a page of results."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from bridge.paper_text import format_paper, paper_json
from bridge.query.hints import empty_result_hints
from bridge.search import order_for, search_store

if TYPE_CHECKING:
    from bridge.config import Settings
    from bridge.settings_defaults import BuiltInSettings


def open_for_search(settings: Settings | BuiltInSettings) -> Any:
    """The store to search: an SQLite store that needs no migration is read through the
    stdlib sqlite3 module (bridge.sqlite_read), which spares the command SQLAlchemy's import,
    most of its start-up (issue 14); any other store is opened the usual way."""
    from bridge.sqlite_read import open_search_store

    store = open_search_store(settings.store.database_url)
    if store is not None:
        return store
    from bridge.commands.stores import open_existing

    return open_existing(settings)


def search(
    settings: Settings | BuiltInSettings,
    query: str,
    limit: int,
    page: int,
    as_json: bool,
    sort: str = "relevance",
) -> int:
    from bridge.errors import QueryError, SearchTooBroad
    from bridge.query import format_query_error, parse_query

    try:
        # A bad query is the user's to fix wherever they run it: said before the store opens.
        parse_query(query)
        store = open_for_search(settings)
        try:
            results = search_store(
                store, query, limit=limit, offset=(page - 1) * limit, order=order_for(sort)
            )
        finally:
            store.close()
    except QueryError as exc:
        print(f"paperbridge: bad query: {format_query_error(exc)}", file=sys.stderr)
        return 2
    except SearchTooBroad as exc:
        print(f"paperbridge: {exc}", file=sys.stderr)
        return 2
    if as_json:
        # An object, not a bare list: a script paging through needs the total to know when
        # to stop. A page past the end is an empty list of items here, not an error.
        page_json = {
            "total": results.total,
            "total_capped": results.total_capped,
            "page": page,
            "limit": limit,
            "items": [paper_json(r.stored, r.hits, r.why) for r in results.items],
        }
        print(json.dumps(page_json, ensure_ascii=False, indent=2))
        return 0
    if not results.items and results.total:
        pages = -(-results.total // limit)  # ceiling division
        counted = f"{results.total_text} matches, {pages}{'+' if results.total_capped else ''}"
        print(f"paperbridge: page {page} is past the last page ({counted} pages)", file=sys.stderr)
        return 1
    if not results.items:
        print(f"No stored paper matches {query!r}.", file=sys.stderr)
        for hint in empty_result_hints(query):
            print(f"  hint: {hint}", file=sys.stderr)
        return 0
    for result in results.items:
        print(format_paper(result.stored, why=result.why))
        print()
    first = (page - 1) * limit + 1
    last = first + len(results.items) - 1
    more = f"; next: --page {page + 1}" if last < results.total else ""
    print(f"showing {first}–{last} of {results.total_text} matching papers{more}", file=sys.stderr)
    return 0
