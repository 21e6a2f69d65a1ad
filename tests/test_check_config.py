"""check-config runs exactly the checks serve runs before it starts, and names every problem at
once: what serve would refuse, check-config refuses with the same lines, before anything opens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bridge.cli import main

SECRET = "xoxb-never-shown"
SIGNED = {"SLACK_BOT_TOKEN": SECRET, "SLACK_SIGNING_SECRET": "signing-never-shown"}
OAUTH = {
    "SLACK_CLIENT_ID": "1.2",
    "SLACK_CLIENT_SECRET": "client-never-shown",
    "SLACK_SIGNING_SECRET": "signing-never-shown",
}


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty directory and an environment without paperbridge's settings or secrets."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(("PAPERBRIDGE_", "SLACK_", "DISCORD_")):
            monkeypatch.delenv(name)
    return tmp_path


def _serve(
    workdir: Path, config: Path, environ: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """`paperbridge serve` in a process of its own: were a check missing, it would start
    serving, and the timeout would fail the test instead of hanging it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "DISCORD_"))}
    return subprocess.run(
        [sys.executable, "-m", "bridge", "--config", str(config), "serve", "--port", "0"],
        cwd=workdir,
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=300,  # only a guard: with the checks in place serve exits at once
    )


@pytest.mark.parametrize(
    ("environ", "toml", "keys"),
    [
        pytest.param({"SLACK_BOT_TOKEN": SECRET}, "", ["slack_signing_secret"], id="no-signing"),
        pytest.param({**SIGNED, "SLACK_CLIENT_ID": "1.2"}, "", ["slack_bot_token"], id="token+id"),
        pytest.param(
            {**OAUTH, "SLACK_INSTALLATION_KEY": "not-a-fernet-key"},
            "",
            ["slack_installation_key"],
            id="bad-fernet-key",
        ),
        pytest.param(
            {"SLACK_CLIENT_SECRET": "client-never-shown"},
            "",
            ["slack.client_id", "slack_installation_key", "slack_signing_secret"],
            id="half-oauth",
        ),
        pytest.param(
            SIGNED, '[slack]\nmode = "socket"\n', ["slack_app_token"], id="socket-no-app-token"
        ),
        pytest.param(
            {},
            '[store]\ndatabase_url = "sqlite:///notes.txt/paperbridge.db"\n',
            ["store.database_url"],
            id="sqlite-under-a-file",
        ),
        pytest.param(
            {}, '[server]\nhost = "localhost:8080"\n', ["server.host"], id="host-with-port"
        ),
        pytest.param(
            {},
            '[alerts]\ndestination = "slack:T0123:C0456"\n',
            ["alerts.destination"],
            id="slack-alerts-without-slack",
        ),
    ],
)
def test_check_config_refuses_what_serve_refuses_with_the_same_lines(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    environ: dict[str, str],
    toml: str,
    keys: list[str],
) -> None:
    (workdir / "notes.txt").write_text("not a directory")
    config = workdir / "config.toml"
    config.write_text(toml)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["--config", str(config), "check-config"]) == 2
    checked = capsys.readouterr()
    served = _serve(workdir, config, environ)
    assert served.returncode == 2
    assert served.stderr == checked.err
    lines = checked.err.splitlines()
    assert [line.split(": ")[2] for line in lines] == keys
    assert all(line.startswith("paperbridge: config: ") for line in lines)
    assert checked.out == ""
    for secret in (*environ.values(), "never-shown"):
        if secret not in ("1.2",):
            assert secret not in checked.err
    # Nothing was opened or created: the store is made by serve only once everything is right.
    assert not (workdir / "data").exists()


def test_every_problem_is_named_at_once(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = workdir / "config.toml"
    config.write_text(
        'time_zone = "Mars/Olympus"\n'
        "[server]\nport = 70000\n"
        "[sources.hf]\npoll_evry_minutes = 5\n"
        '[alerts]\ndestination = "discord:123456789012345678"\n'
        '[[digests]]\nname = "lab"\nquery = "title:(a OR"\n'
        '[[digests]]\nname = "hook"\nquery = "gan"\ndestination = "discord-webhook:LAB_HOOK"\n'
    )
    monkeypatch.setenv("SLACK_BOT_TOKEN", SECRET)
    monkeypatch.setenv("PAPERBRIDGE_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("PAPERBRIDGE_DATABASE_URL", "mysql://pb:Hunter2@db/pb")
    assert main(["--config", str(config), "check-config"]) == 2
    err = capsys.readouterr().err
    named = [line.split(": ")[2] for line in err.splitlines() if line.startswith("paperbridge:")]
    assert named == [
        "store.database_url",
        "server.port",
        "sources.hf.poll_evry_minutes",
        "digests.0.query",
        "log.level",
        "time_zone",
        # Checked with the wrong values above left out: the second digest keeps its number.
        "digests.1.destination",
        "alerts.destination",
        "slack_signing_secret",
    ]
    assert "(got 'LOUD') (set by PAPERBRIDGE_LOG_LEVEL)" in err
    assert "unsupported database 'mysql'" in err
    assert SECRET not in err and "Hunter2" not in err


def test_deliver_needs_what_posting_needs_but_no_signing_secret(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_CLIENT_SECRET", "client-never-shown")
    assert main(["deliver"]) == 2
    err = capsys.readouterr().err
    assert "slack.client_id" in err and "slack_installation_key" in err
    assert "slack_signing_secret" not in err


def test_a_good_oauth_setup_passes_and_is_shown_redacted(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key = Fernet.generate_key().decode()
    for name, value in {**OAUTH, "SLACK_INSTALLATION_KEY": f"{key},{key}"}.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config"]) == 0
    out, err = capsys.readouterr()
    assert err == "config ok\n"
    assert key not in out and "never-shown" not in out
    assert '"slack_installation_key": "<redacted>"' in out
