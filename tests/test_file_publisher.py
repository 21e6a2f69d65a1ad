"""The file: destination: one JSON line per message, readable after a crash tore a line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from adapters.stdout import FilePublisher
from bridge.delivery import Destination


def _send(path: Path) -> str:
    destination = Destination(id="d1", kind="file", address=str(path))
    outcome = asyncio.run(FilePublisher().send_digest(destination, []))
    return outcome.status


def test_each_message_is_one_json_line(tmp_path: Path) -> None:
    out = tmp_path / "sent.jsonl"
    assert _send(out) == "sent"
    assert _send(out) == "sent"
    lines = out.read_text().splitlines()
    assert [json.loads(line)["destination"] for line in lines] == ["d1", "d1"]
    assert all(json.loads(line)["quiet"] for line in lines)


def test_a_line_torn_by_a_crash_does_not_swallow_the_next(tmp_path: Path) -> None:
    out = tmp_path / "sent.jsonl"
    out.write_text('{"destination": "d0", "papers": ["2607.0')  # killed mid-write
    assert _send(out) == "sent"
    torn, whole = out.read_text().splitlines()
    assert torn.startswith('{"destination": "d0"')
    assert json.loads(whole)["destination"] == "d1"


def test_a_missing_directory_is_permanent(tmp_path: Path) -> None:
    assert _send(tmp_path / "gone" / "sent.jsonl") == "permanent"
