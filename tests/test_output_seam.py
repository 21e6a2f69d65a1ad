"""The output seam: outputs are found through entry points, paperbridge's own included; the
core never imports an adapter; a destination kind no installed output owns is a config error."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.cli import main
from bridge.config import DigestSettings, Settings
from bridge.outputs import (
    InstalledOutputs,
    OutputPlugin,
    destination_kind_problems,
    installed_outputs,
)
from bridge.publisher import builtin_publishers

ROOT = Path(__file__).resolve().parent.parent


def _imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_the_core_never_imports_an_adapter() -> None:
    # Every import, at the top of a module or inside a function, anywhere under bridge/.
    found = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "bridge").rglob("*.py"))
        for name in _imported_modules(path)
        if name == "adapters" or name.startswith("adapters.")
    ]
    assert found == []


def test_every_builtin_output_is_an_entry_point() -> None:
    installed = installed_outputs()
    assert installed.broken == {}
    owners = installed.owners()
    assert {kind: owners[kind] for kind in ("stdout", "file", "slack", "discord")} == {
        "stdout": ["stdout"],
        "file": ["file"],
        "slack": ["slack"],
        "discord": ["discord"],
    }
    assert owners["discord-webhook"] == ["discord"]
    assert "feeds" in installed.plugins  # the feeds and the page are mounted the same way
    # The standing publishers the ledger starts with come through the same entry points.
    assert set(builtin_publishers()) >= {"stdout", "file"}


def test_unknown_kind_is_refused_by_check_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("PAPERBRIDGE_", "SLACK_", "DISCORD_")):
            monkeypatch.delenv(name)
    config = tmp_path / "config.toml"
    config.write_text('[[digests]]\nname = "lab"\nquery = "gan"\ndestination = "pigeon:lab-room"\n')
    assert main(["--config", str(config), "check-config"]) == 2
    err = capsys.readouterr().err
    assert (
        "paperbridge: config: digests.0.destination: no installed output posts to 'pigeon'" in err
    )
    assert "stdout (stdout)" in err and "discord (discord, discord-webhook)" in err
    # deliver runs the same check before it posts anything, and serve before it starts.
    assert main(["--config", str(config), "deliver"]) == 2
    assert "no installed output posts to 'pigeon'" in capsys.readouterr().err
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    served = subprocess.run(
        [sys.executable, "-m", "bridge", "--config", str(config), "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,  # only a guard: with the check in place serve exits at once
    )
    assert served.returncode == 2 and served.stderr == err
    assert not (tmp_path / "data").exists()  # refused before the store was created


def test_owners_conflict_and_broken_outputs_are_named() -> None:
    settings = _settings_with("teams:lab")
    both = InstalledOutputs(
        {"a": OutputPlugin(kinds=("teams",)), "b": OutputPlugin(kinds=("teams",))}, {}
    )
    [problem] = destination_kind_problems(settings, False, both)
    assert "several installed outputs post to 'teams' destinations (a, b)" in str(problem)
    broken = InstalledOutputs({}, {"teams": "ImportError: no module named requests"})
    [problem] = destination_kind_problems(settings, False, broken)
    assert "teams (failed to load: ImportError: no module named requests)" in str(problem)


def _settings_with(destination: str) -> Settings:
    return Settings(digests=[DigestSettings(name="lab", query="gan", destination=destination)])


def test_finding_the_outputs_imports_none_of_them() -> None:
    # `poll` builds the ledger, so it reads the installed outputs: that must not import
    # discord.py, Bolt or the feed site (about a second) for publishers it never uses.
    script = (
        "import sys; from bridge.publisher import builtin_publishers;"
        "print(sorted(builtin_publishers()));"
        "print([m for m in ('discord', 'slack_bolt', 'adapters.atom.routes') if m in sys.modules])"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert found.stdout.splitlines() == ["['file', 'stdout']", "[]"]
