"""`paperbridge search` loads only what searching needs (issue 14: whole process ≤ 200 ms).

Not timed (bench/cli_startup.py measures the time): what is checked is which modules a real
`search` process ends up holding, so the web stack, the chat clients or the HTTP client
cannot creep back into its imports unnoticed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.settings_defaults import SETTING_VARIABLES

FIXTURES = Path(__file__).parent / "fixtures"
# What only serve, the outputs, polling or fetching need.
NOT_FOR_SEARCH = ("uvicorn", "starlette", "discord", "slack_bolt", "slack_sdk", "httpx", "tqdm")

# Runs the command in this process image, then lists the modules it imported.
PROBE = """
import json, sys
from bridge.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _modules_after(argv: list[str], cwd: Path) -> tuple[int, set[str]]:
    # No variable that sets a setting (bridge/settings_defaults.py): the built-in settings.
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PAPERBRIDGE_") and k not in SETTING_VARIABLES
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def _top_level(modules: set[str]) -> set[str]:
    return {name.partition(".")[0] for name in modules}


@pytest.fixture
def store_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PAPERBRIDGE_"):
            monkeypatch.delenv(name)
    assert main(["import", str(FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json")]) == 0
    return tmp_path


def test_search_imports_no_web_chat_or_http_stack(store_dir: Path) -> None:
    code, modules = _modules_after(["search", "model"], store_dir)
    assert code == 0
    assert "bridge.search" in modules  # it did search
    assert not _top_level(modules) & set(NOT_FOR_SEARCH)
    # Neither the other commands' modules nor the app that serve builds.
    assert not {"bridge.commands.serving", "bridge.app", "bridge.web", "bridge.outputs"} & modules
    # A search in a SQLite store loads no PostgreSQL dialect (about 65 ms of imports).
    assert "sqlalchemy.dialects.postgresql" not in modules
    # Nor the percolator, which matches subscriptions (about a tenth of the imports).
    assert "bridge.query.percolator" not in modules
    # An SQLite store that needs no migration is read through sqlite3 (bridge.sqlite_read):
    # no SQLAlchemy at all, most of the command's start-up.
    assert "bridge.sqlite_read" in modules
    assert "sqlalchemy" not in _top_level(modules)
    assert "bridge.store.core" not in modules
    # With no settings file and no setting from the environment, the built-in defaults:
    # neither pydantic and the settings models, nor asyncio.
    assert not _top_level(modules) & {"pydantic", "pydantic_core", "asyncio"}
    assert "bridge.config" not in modules


def test_search_of_a_store_that_needs_migrating_takes_the_usual_path(store_dir: Path) -> None:
    import sqlite3

    with sqlite3.connect(store_dir / "data" / "paperbridge.db") as db:
        db.execute("UPDATE schema_version SET version = version - 1")
    code, modules = _modules_after(["search", "model"], store_dir)
    assert code == 0
    assert "bridge.store.core" in modules  # opened (and migrated) by the store itself
    code, modules = _modules_after(["search", "model"], store_dir)
    assert code == 0
    assert "sqlalchemy" not in _top_level(modules)  # migrated: sqlite3 again


def test_the_percolator_is_still_reachable_from_bridge_query() -> None:
    import bridge.query
    from bridge.query import Percolator
    from bridge.query.percolator import Percolator as Defined

    assert Percolator is Defined is bridge.query.Percolator
    with pytest.raises(AttributeError):
        bridge.query.no_such_name  # noqa: B018


def test_importing_the_cli_alone_loads_no_command(store_dir: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, bridge.cli; print(json.dumps(sorted(sys.modules)))",
        ],
        cwd=store_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    modules = set(json.loads(done.stdout))
    assert not _top_level(modules) & {*NOT_FOR_SEARCH, "sqlalchemy"}
    assert not {name for name in modules if name.startswith("bridge.commands")}


def test_commands_are_still_reachable_as_attributes() -> None:
    # Code and tests written against the single bridge/commands.py keep working.
    from bridge import commands
    from bridge.commands import _poll_job, search

    assert commands.backfill.__module__ == "bridge.commands.backfilling"
    assert search.__module__ == "bridge.commands.searching"
    assert _poll_job.__module__ == "bridge.commands.serving"
    with pytest.raises(AttributeError):
        commands.no_such_command  # noqa: B018
