"""Discord end to end through the command line: `deliver` posts configured digests as the bot
and through a webhook to a local stand-in for Discord; `serve` with a bot token and no
network keeps serving feeds while the bot retries."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bridge.cli import main
from tests.fake_discord import FakeDiscord
from tests.fake_upstream import unused_port
from tests.local_server import serve_command

FIXTURES = Path(__file__).parent / "fixtures"
HF_FILE = FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json"
CHANNEL = "600000000000000001"
HOOK_TOKEN = "hook-token-" + "s" * 40


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("PAPERBRIDGE_", "DISCORD_")) or name.endswith(("_TOKEN", "_SECRET")):
            monkeypatch.delenv(name)
    return tmp_path


@pytest.fixture
def discord_api() -> Iterator[FakeDiscord]:
    with FakeDiscord() as fake:
        yield fake


def test_deliver_posts_as_the_bot_and_through_a_webhook(
    workdir: Path,
    discord_api: FakeDiscord,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("DISCORD_BOT_TOKEN", "bot-token")
    monkeypatch.setenv("LAB_HOOK", discord_api.webhook_url("700000000000000001", HOOK_TOKEN))
    config = workdir / "config.toml"
    config.write_text(
        f"""
[discord]
api_base_url = "{discord_api.api_base}"
[[digests]]
name = "bot"
query = "model"
destination = "discord:{CHANNEL}"
[[digests]]
name = "hook"
query = "model"
destination = "discord-webhook:LAB_HOOK"
""",
        encoding="utf-8",
    )
    assert main(["--config", str(config), "deliver"]) == 0  # creates the digests
    assert main(["import", "--announce", str(HF_FILE)]) == 0
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    assert "2 sent" in capsys.readouterr().err

    bot_header = discord_api.messages_to(CHANNEL)[0]
    assert bot_header.body["content"].startswith("📰 **")
    hook_posts = [c for c in discord_api.delivered if c.path.startswith("/webhooks/")]
    in_thread = [c for c in discord_api.delivered if discord_api.channel_of(c) == CHANNEL]
    hook_papers = {e["url"] for c in hook_posts for e in c.body.get("embeds", [])}
    bot_papers = {e["url"] for c in in_thread for e in c.body.get("embeds", [])}
    assert hook_papers == bot_papers and len(hook_papers) > 5
    assert all(c.body["allowed_mentions"] == {"parse": []} for c in discord_api.posts())

    # Again: nothing new, nothing posted.
    posts = len(discord_api.posts())
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    assert len(discord_api.posts()) == posts

    for command in (["status"], ["check-config"]):
        assert main(["--config", str(config), *command]) == 0
        out = capsys.readouterr()
        assert HOOK_TOKEN not in out.out + out.err and "bot-token" not in out.out + out.err


def test_serve_without_network_keeps_serving_while_the_bot_retries(tmp_path: Path) -> None:
    port = unused_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[store]
database_url = "sqlite:///{tmp_path / "serve.db"}"
[sources.hf]
enabled = false
[discord]
api_base_url = "http://127.0.0.1:{unused_port()}/api/v10"
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PAPERBRIDGE_", "DISCORD_"))}
    env["DISCORD_BOT_TOKEN"] = "bot-token-never-printed"
    command = serve_command(config, port)
    proc = subprocess.Popen(
        command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 20
        answered = None
        while time.monotonic() < deadline and answered is None:
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/feeds/all.atom")
            except httpx.TransportError:
                time.sleep(0.1)
        assert answered is not None and answered.status_code == 200
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=15)
    log = output.decode()
    assert "Traceback" not in log, log
    failures = [line for line in log.splitlines() if "discord: cannot log in" in line]
    assert failures and "ClientConnectorError" in failures[0]
    assert failures[0].endswith("trying again in 5 s")
    assert "bot-token-never-printed" not in log
    assert "output discord started" in log
    assert "voice will NOT be supported" not in log
