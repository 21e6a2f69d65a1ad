"""`paperbridge migrate-data`: copy every table into an empty database."""

from __future__ import annotations

import sys

from tqdm import tqdm

from bridge.store import safe_url


def migrate_data(source_url: str, target_url: str, *, batch: int) -> int:
    from bridge.datamove import copy_database

    with tqdm(unit=" rows", disable=None, file=sys.stderr) as bar:

        def progress(table: str, rows: int) -> None:
            bar.set_postfix_str(table, refresh=False)
            bar.update(rows)

        copied = copy_database(source_url, target_url, batch=batch, progress=progress)
    for table, rows in copied.items():
        print(f"{table}: {rows} rows")
    print(f"copied into {safe_url(target_url)}", file=sys.stderr)
    return 0
