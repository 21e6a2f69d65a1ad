"""A lab's own output, written as a package outside this repository: built and installed with
pip into a directory of its own, it is found through its entry point alone. check-config
accepts its destination kind and reads its [outputs.NAME] section; deliver posts through it.

It is installed with ``pip install --target`` into the test's directory and put on PYTHONPATH
of the paperbridge processes run here: a throwaway install the test venv never sees, so nothing
needs uninstalling (entry points are read from every dist-info on sys.path, as in a venv).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
HF_FILE = FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json"

PYPROJECT = """
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "paperbridge-labnotes"
version = "0.1.0"

[project.entry-points."paperbridge.outputs"]
labnotes = "paperbridge_labnotes:plugin"

[tool.setuptools]
py-modules = ["paperbridge_labnotes"]
"""

# The whole output: what "Writing an output" in the README describes.
MODULE = '''
"""Posts digests to a lab notebook: one JSON line per message in the file a destination names."""

import json
from collections.abc import Mapping

from bridge.delivery import SendOutcome
from bridge.errors import ConfigError
from bridge.outputs import OutputPlugin

KIND = "labnotes"


class NotebookPublisher:
    kind = KIND
    max_papers_per_message = 3

    def __init__(self, signature: str) -> None:
        self.signature = signature

    async def send_digest(self, destination, items, *, subscription=None, run=None):
        line = {
            "notebook": destination.address,
            "signed": self.signature,
            "digest": subscription.name if subscription else None,
            "papers": [item.stored.paper.arxiv_id for item in items],
            "titles": [item.stored.paper.title for item in items],
        }
        try:
            with open(destination.address, "a", encoding="utf-8") as notebook:
                notebook.write(json.dumps(line) + "\\n")
        except FileNotFoundError:
            return SendOutcome.permanent(f"labnotes: no such notebook {destination.address}")
        return SendOutcome.sent()


class NotebookOutput:
    name = "labnotes"

    def __init__(self, signature: str) -> None:
        self.publisher = NotebookPublisher(signature)

    def publishers(self) -> Mapping[str, object]:
        return {KIND: self.publisher}

    def routes(self):
        return []

    async def start(self, *, listen: bool) -> None:
        pass

    async def stop(self) -> None:
        pass


def create(context):
    section = context.settings.outputs.get("labnotes", {})
    return NotebookOutput(section.get("signature", "paperbridge"))


def check(settings, listen):
    signature = settings.outputs.get("labnotes", {}).get("signature", "paperbridge")
    if not isinstance(signature, str) or not signature:
        return [ConfigError("outputs.labnotes.signature", "must be a name (text)")]
    return []


plugin = OutputPlugin(kinds=(KIND,), create=create, check=check)
'''


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("labnotes-src")
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "paperbridge_labnotes.py").write_text(MODULE)
    target = tmp_path_factory.mktemp("labnotes-installed")
    # Offline: no index, and the build backend is the test venv's locked setuptools.
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        timeout=300,
    )
    assert list(target.glob("paperbridge_labnotes-0.1.0.dist-info/entry_points.txt"))
    return target


def _paperbridge(
    workdir: Path, plugins: Path | None, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PAPERBRIDGE_", "SLACK_", "DISCORD_"))
    }
    if plugins is not None:
        # The package beside the code under test (a worktree's, when PYTHONPATH names one),
        # not instead of it.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(plugins), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_an_installed_package_adds_a_destination_kind(plugin_dir: Path, tmp_path: Path) -> None:
    notebook = tmp_path / "notebook.jsonl"
    config = tmp_path / "config.toml"
    config.write_text(
        textwrap.dedent(f"""
        [outputs.labnotes]
        signature = "vision-lab"

        [[digests]]
        name = "models"
        query = "model"
        destination = "labnotes:{notebook}"
        time = "08:00"
        """)
    )
    # Without the package, the kind is nobody's: refused, naming it and the installed outputs.
    refused = _paperbridge(tmp_path, None, "--config", str(config), "check-config")
    assert refused.returncode == 2
    assert "no installed output posts to 'labnotes' destinations" in refused.stderr
    assert "labnotes (" not in refused.stderr  # it is not listed among the installed ones

    checked = _paperbridge(tmp_path, plugin_dir, "--config", str(config), "check-config")
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr == "config ok\n"
    assert json.loads(checked.stdout)["outputs"] == {"labnotes": {"signature": "vision-lab"}}

    # The digest exists before the papers arrive (as in a `deliver` cron job), so it gets them.
    first = _paperbridge(tmp_path, plugin_dir, "--config", str(config), "deliver")
    assert first.returncode == 0, first.stderr
    assert _paperbridge(tmp_path, None, "import", "--announce", str(HF_FILE)).returncode == 0
    delivered = _paperbridge(tmp_path, plugin_dir, "--config", str(config), "deliver", "--now")
    assert delivered.returncode == 0, delivered.stderr
    lines = [json.loads(line) for line in notebook.read_text().splitlines()]
    assert lines and all(line["signed"] == "vision-lab" for line in lines)
    assert all(line["digest"] == "models" and 0 < len(line["papers"]) <= 3 for line in lines)
    papers = [paper for line in lines for paper in line["papers"]]
    assert len(papers) == len(set(papers))
    assert all(title for line in lines for title in line["titles"])

    # Through the ledger: nothing is posted twice.
    again = _paperbridge(tmp_path, plugin_dir, "--config", str(config), "deliver", "--now")
    assert again.returncode == 0, again.stderr
    assert len(notebook.read_text().splitlines()) == len(lines)


@pytest.mark.slow
def test_the_package_checks_its_own_section(plugin_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[outputs.labnotes]\nsignature = 42\n")
    refused = _paperbridge(tmp_path, plugin_dir, "--config", str(config), "check-config")
    assert refused.returncode == 2
    assert (
        "paperbridge: config: outputs.labnotes.signature: must be a name (text)" in refused.stderr
    )
