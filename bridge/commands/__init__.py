"""What each CLI command does, given validated settings. Printing happens here only.

One module per command, so a command imports only what it uses: `search` must not pay for
uvicorn, the web app and every output (issue 14: the whole `paperbridge search` process
≤ 200 ms). bridge.cli imports the chosen command's module itself; the names below are also
reachable as ``bridge.commands.NAME``, each importing its own module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

# Each command's function, and the module (under bridge.commands) that defines it.
_HOMES = {
    "check_config": "checking",
    "poll": "polling",
    "search": "searching",
    "import_files": "importing",
    "backfill": "backfilling",
    "serve": "serving",
    "_poll_job": "serving",
    "status": "reporting",
    "deliver": "delivering",
    "resume": "resuming",
    "migrate_data": "migrating",
}

__all__ = [name for name in _HOMES if not name.startswith("_")]


def __getattr__(name: str) -> Any:
    # PEP 562: `commands.search` or `from bridge.commands import search` imports only the
    # module of that command.
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
