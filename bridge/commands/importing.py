"""`paperbridge import`: store saved listing files, with a progress bar."""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm import tqdm

from bridge.config import Settings
from bridge.errors import BridgeError
from bridge.importer import expand_paths, import_paths
from bridge.ledger import build_ledger, sync_configured
from bridge.processes import StopSignals
from bridge.store import open_store


def import_files(settings: Settings, paths: list[Path], *, announce: bool) -> int:
    files = expand_paths(paths)
    if not files:
        raise BridgeError("import: nothing to import: the directories given hold no listing files")
    # SIGINT (Ctrl-C) or SIGTERM: stop after the batch being stored, keep every batch stored
    # so far, say how far the import got and end as the signal would have (130, 143).
    with StopSignals() as stop:
        store = open_store(settings.store.database_url)
        try:
            if announce:
                # The digests in the settings exist before the papers are announced, so they
                # get them however the commands are ordered (import, then deliver or serve).
                sync_configured(build_ledger(store, settings), settings, prune=False)
            with tqdm(unit=" papers", disable=None, file=sys.stderr) as bar:
                counts = import_paths(
                    store, files, announce=announce, progress=bar.update, stop=stop
                )
        finally:
            store.close()
    fixed = f"; {counts.fields_fixed} fields dropped or cut to fit" if counts.fields_fixed else ""
    announced = f"{counts.announced} announced, " if announce else ""
    summary = (
        f"{announced}{counts.new} new, {counts.merged} merged,"
        f" {counts.skipped} skipped (already known),"
        f" {counts.problems} unreadable records, {counts.unstorable} unstorable records,"
        f" {counts.unreadable_files} unreadable files{fixed}"
    )
    if counts.files < len(files):
        where = f"{counts.files} of {len(files)} files"
        if counts.stopped_in is not None:
            path, papers = counts.stopped_in
            where += f" and {papers} papers of {path}"
        print(f"stopped after {where}: {summary}; run the same command again to continue")
        return stop.exit_code
    print(summary)
    return 1 if counts.unreadable_files else 0
