"""What ``serve`` checks of its settings before it starts anything; ``check-config`` runs
exactly the same, and ``deliver`` the part that posting needs.

Every problem is collected and reported together (``ConfigError.several``), each naming its
setting. Nothing here opens a connection: a settings check must give the same answer on a
laptop, in CI or in an image build as on the server, where the database and the chat APIs
may not be reachable, so whether they answer is for ``serve`` (and ``status``) to find out.
The SQLite file is checked on the filesystem alone, without creating anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from bridge.config import Settings, delivery_problems, read_settings
from bridge.database_urls import database_url as database_url_of
from bridge.errors import ConfigError
from bridge.outputs import output_checks
from bridge.store import sqlite_file


def load_checked(
    path: Path | None, environ: Mapping[str, str] = os.environ, *, listen: bool = True
) -> Settings:
    """The settings as ``serve`` (``listen``) or ``deliver`` uses them; ConfigError naming
    every problem found, in the settings and in what starting would need."""
    settings, problems = read_settings(path, environ)
    problems += startup_problems(settings, environ, listen=listen)
    if problems:
        raise ConfigError.several(problems)
    return settings


def startup_problems(
    settings: Settings, environ: Mapping[str, str], *, listen: bool
) -> list[ConfigError]:
    """What would stop ``serve`` (``listen``: answering chat commands too) or ``deliver``:
    destinations that cannot be posted to, a store that cannot be opened, and each output's
    own settings (through ``bridge.outputs``, so the core never names an adapter)."""
    problems = delivery_problems(settings, environ)
    problems += store_problems(settings.store.database_url)
    for check in output_checks():
        problems += check(settings, listen)
    return problems


def store_problems(database_url: str) -> list[ConfigError]:
    """A URL the store cannot read, or an SQLite file that could not be opened or created
    where the URL says.

    The store creates the file and its missing directories, and SQLite writes its WAL beside
    the file, so the file must be a writable file (or absent) in a directory that exists or can
    be made. PostgreSQL is not connected to (see the module's docstring).
    """
    key = "store.database_url"
    try:
        # The settings checked the scheme; this reads the whole URL as the store will.
        database_url_of(database_url)
    except ValueError as exc:
        return [ConfigError(key, str(exc))]
    path = sqlite_file(database_url)
    if path is None:
        return []
    if path.is_dir():
        return [ConfigError(key, f"{path} is a directory; name the database file in it")]
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return [ConfigError(key, f"{path} cannot be written by this user")]
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        return [ConfigError(key, f"cannot create {path}: {folder} is a file, not a directory")]
    if not os.access(folder, os.W_OK | os.X_OK):
        return [ConfigError(key, f"cannot create files in {folder}: permission denied")]
    return []
