"""Opening the store for the commands that only read it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bridge.errors import BridgeError
from bridge.store import Store, open_store, sqlite_file

if TYPE_CHECKING:
    from bridge.config import Settings
    from bridge.settings_defaults import BuiltInSettings


def open_existing(settings: Settings | BuiltInSettings) -> Store:
    """The store for a command that only reads it (search, status, resume).

    Run from another directory, the default relative SQLite path names a file that does not
    exist; creating it would answer from an empty store ("no stored paper matches") as if
    that were the truth. Commands that write (serve, poll, import, backfill, deliver) create it.
    """
    path = sqlite_file(settings.store.database_url)
    if path is not None and not path.is_file():
        raise BridgeError(
            f"no database at {path} — run paperbridge where serve runs, or pass --config"
        )
    return open_store(settings.store.database_url)
