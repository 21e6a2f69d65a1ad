"""The paperbridge command end to end: import, search, poll, backfill, check-config, serve."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest

from bridge.cli import main
from bridge.store import open_store
from tests.fake_upstream import FakeUpstream, fixture, unused_port
from tests.local_server import serve_command

FIXTURES = Path(__file__).parent / "fixtures"
ALL_FIXTURES = [
    FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json",
    FIXTURES / "hf" / "papers_page_date_2024-08-01.html",
    *sorted((FIXTURES / "arxiv").glob("*.xml")),
]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory, as a new user would, with no config in the environment."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PAPERBRIDGE_") or name.endswith(("_TOKEN", "_SECRET")):
            monkeypatch.delenv(name)
    return tmp_path


def write_config(path: Path, upstream: FakeUpstream, extra: str = "") -> Path:
    path.write_text(
        f"""
[sources.hf]
base_url = "{upstream.base_url}"
[fetch]
max_attempts = 2
backoff_base_seconds = 0.01
timeout_seconds = 2
{extra}
""",
        encoding="utf-8",
    )
    return path


def test_import_reports_new_merged_skipped_and_uses_default_store(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", *map(str, ALL_FIXTURES)]) == 0
    out = capsys.readouterr().out
    assert "new" in out and "merged" in out
    assert (workdir / "data" / "paperbridge.db").exists()
    first_new = int(out.split(" new")[0].split()[-1])
    assert first_new > 50
    # Importing the same files again finds nothing new.
    assert main(["import", *map(str, ALL_FIXTURES)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("0 new")


def test_import_of_a_directory_takes_its_listing_files(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = workdir / "saved"
    (saved / "hf").mkdir(parents=True)
    for path in ALL_FIXTURES:
        (saved / path.name).write_bytes(path.read_bytes())
    (saved / "hf" / "notes.md").write_text("<div>not a listing</div>")
    assert main(["import", str(saved)]) == 0
    out = capsys.readouterr().out
    assert int(out.split(" new")[0]) > 50 and "0 unreadable files" in out

    (workdir / "empty").mkdir()
    assert main(["import", str(workdir / "empty")]) == 1
    assert "the directories given hold no listing files" in capsys.readouterr().err


def test_import_of_garbage_keeps_the_store(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["import", str(ALL_FIXTURES[0])])
    capsys.readouterr()
    bad = workdir / "broken.json"
    bad.write_text('[{"paper": {"id": "2401.0')
    missing = workdir / "missing.xml"
    assert main(["import", str(bad), str(missing)]) == 1
    out = capsys.readouterr().out
    assert "0 new" in out and "1 unreadable files" in out
    store = open_store("sqlite:///data/paperbridge.db")
    assert store.count_papers() == 30
    store.close()


def test_import_of_an_empty_file_says_it_is_empty(
    workdir: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    empty = workdir / "saved.json"
    empty.write_text("\n")
    assert main(["import", str(empty)]) == 1
    assert "0 unreadable records, 0 unstorable records, 1 unreadable files" in (
        capsys.readouterr().out
    )
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"import: {empty} is an empty file"
    ]


def test_search_text_and_json(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["import", *map(str, ALL_FIXTURES)])
    capsys.readouterr()
    assert main(["search", "world", "action", "--limit", "2"]) == 0
    captured = capsys.readouterr()
    assert "MaskWAM" in captured.out
    assert "https://arxiv.org/abs/2606.13515" in captured.out
    assert main(["search", "world", "action", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results["items"][0]["arxiv_id"] == "2606.13515"
    assert results["items"][0]["links"]["abs"] == "https://arxiv.org/abs/2606.13515"
    assert results["items"][0]["why"].startswith("matched ")
    total = results["total"]
    assert results["page"] == 1 and results["limit"] == 10 and results["total_capped"] is False
    assert len(results["items"]) == min(total, 10)


def test_search_into_a_closed_pipe_stops_quietly(workdir: Path) -> None:
    main(["import", *map(str, ALL_FIXTURES)])
    search = subprocess.Popen(
        [sys.executable, "-m", "bridge", "search", "model", "--limit", "50"],
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert search.stdout is not None and search.stderr is not None
    # `| head -0`: the reader is gone before the first line. (Reading one line first made the
    # test race: the fixtures' results fit in the pipe's buffer, so a fast search could write
    # them all and exit 0 before the reader closed its end.)
    search.stdout.close()
    errors = search.stderr.read().decode()
    search.stderr.close()
    assert search.wait(timeout=30) == 141
    assert "Traceback" not in errors and "BrokenPipe" not in errors


def test_search_takes_unquoted_exclusions(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["import", *map(str, ALL_FIXTURES)])
    capsys.readouterr()

    def found(*args: str) -> list[str]:
        assert main(["search", *args, "--json", "--limit", "100"]) == 0
        return [item["arxiv_id"] for item in json.loads(capsys.readouterr().out)["items"]]

    everything, kept = found("model"), found("model -language")
    assert 0 < len(kept) < len(everything)
    # `-language` is a query word wherever it stands, and the options still work around it.
    assert found("model", "-language") == kept
    assert main(["search", "--limit", "2", "model", "-language", "--json"]) == 0
    assert [p["arxiv_id"] for p in json.loads(capsys.readouterr().out)["items"]] == kept[:2]
    assert (
        main(["--config", "/dev/null", "search", "-language", "model", "--page=2", "--json"]) == 0
    )
    assert json.loads(capsys.readouterr().out)["page"] == 2

    # Exclusions alone are the query language's error, shown with a caret, not argparse's.
    assert main(["search", "-survey"]) == 2
    assert capsys.readouterr().err.endswith("  -survey\n  ^\n")
    assert main(["search", "-survey", "--limit", "3"]) == 2
    assert "bad query: a query needs something to look for" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["search", "--json"])
    assert "the following arguments are required: query" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("option", "value"), [("--limit", "0"), ("--limit", "-1"), ("--page", "0"), ("--page", "-2")]
)
def test_search_refuses_a_limit_or_page_below_one(
    workdir: Path, capsys: pytest.CaptureFixture[str], option: str, value: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["search", "model", option, value])
    assert exit_.value.code == 2
    assert f"argument {option}: must be 1 or more (got {value})" in capsys.readouterr().err


def test_search_pages_say_what_they_show(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["import", *map(str, ALL_FIXTURES)])
    capsys.readouterr()
    main(["search", "model", "--json", "--limit", "100"])
    total = json.loads(capsys.readouterr().out)["total"]
    assert 10 < total < 100
    pages = -(-total // 5)

    assert main(["search", "model", "--limit", "5", "--page", "2"]) == 0
    err = capsys.readouterr().err
    assert err == f"showing 6–10 of {total} matching papers; next: --page 3\n"
    assert main(["search", "model", "--limit", "5", "--page", str(pages)]) == 0
    last = total - (pages - 1) * 5
    assert capsys.readouterr().err == (
        f"showing {total - last + 1}–{total} of {total} matching papers\n"
    )

    # Past the end is not "no stored paper matches": the query does match, the page is empty.
    assert main(["search", "model", "--limit", "5", "--page", "99"]) == 1
    assert capsys.readouterr().err == (
        f"paperbridge: page 99 is past the last page ({total} matches, {pages} pages)\n"
    )
    assert main(["search", "model", "--limit", "5", "--page", "99", "--json"]) == 0
    page = json.loads(capsys.readouterr().out)
    assert page == {"total": total, "total_capped": False, "page": 99, "limit": 5, "items": []}


@pytest.mark.parametrize(
    "args", [["search", "model"], ["status"], ["status", "--json"], ["resume", "stdout"]]
)
def test_read_only_commands_never_create_a_database(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    # Run from the wrong directory, the default ./data/paperbridge.db does not exist: an empty
    # store made up on the spot would answer "no stored paper matches" as if that were so.
    assert main(args) == 1
    expected = workdir / "data" / "paperbridge.db"
    assert capsys.readouterr().err == (
        f"paperbridge: no database at {expected} — run paperbridge where serve runs,"
        " or pass --config\n"
    )
    assert not (workdir / "data").exists()
    # Commands that write create it, and then the same search answers from it.
    assert main(["import", str(ALL_FIXTURES[0])]) == 0
    assert main(args) in (0, 1)  # resume: no such destination, but the store is there
    assert "no database" not in capsys.readouterr().err


def test_check_config_redacts_and_rejects(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-top-secret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-top-secret")
    assert main(["check-config"]) == 0
    out = capsys.readouterr()
    assert "top-secret" not in out.out + out.err
    assert '"slack_bot_token": "<redacted>"' in out.out
    assert '"slack_signing_secret": "<redacted>"' in out.out
    bad = workdir / "bad.toml"
    bad.write_text("[sources.hf]\npoll_every_minutes = 0\n")
    monkeypatch.setenv("PAPERBRIDGE_CONFIG", str(bad))
    assert main(["check-config"]) == 2
    assert "sources.hf.poll_every_minutes" in capsys.readouterr().err


def test_poll_prints_new_papers_then_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeUpstream() as up:
        up.add(
            "/api/daily_papers",
            fixture("hf/daily_papers_api_limit30_2026-06-13.json"),
            content_type="application/json",
        )
        config = write_config(workdir / "c.toml", up)
        assert main(["--config", str(config), "poll", "--json"]) == 0
        papers = json.loads(capsys.readouterr().out)
        assert len(papers) == 30
        assert main(["poll", "--config", str(config)]) == 0
        captured = capsys.readouterr()
        assert captured.out == ""
        assert "hf: 0 new" in captured.err


def test_poll_with_upstream_down_exits_1_and_says_why(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = workdir / "c.toml"
    config.write_text(
        f'[sources.hf]\nbase_url = "http://127.0.0.1:{unused_port()}"\n[fetch]\nmax_attempts = 1\n'
    )
    assert main(["--config", str(config), "poll"]) == 1
    assert "error: fetch http://127.0.0.1" in capsys.readouterr().err


def test_backfill_is_resumable_and_skips_a_failing_day(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = json.loads(fixture("hf/daily_papers_api_limit30_2026-06-13.json"))
    start = date(2026, 6, 8)
    with FakeUpstream() as up:
        for n in range(5):
            day = start + timedelta(days=n)
            chunk = items[n * 6 : n * 6 + 6]
            for item in chunk:
                item["paper"]["submittedOnDailyAt"] = f"{day.isoformat()}T00:00:00.000Z"
            up.add(
                "/api/daily_papers",
                json.dumps(chunk),
                content_type="application/json",
                query={"limit": 100, "p": 0, "date": day.isoformat()},
            )
        # The fourth day fails for good: it is recorded and skipped, and the run goes on.
        up.add(
            "/api/daily_papers",
            "bad request",
            status=400,
            query={"limit": 100, "p": 0, "date": "2026-06-11"},
        )
        config = write_config(workdir / "c.toml", up)
        args = ["--config", str(config), "backfill", "--from", "2026-06-08", "--to", "2026-06-12"]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "2026-06-11 failed: fetch" in err and "skipped, the run goes on" in err
        assert "1 days failed and were skipped: 2026-06-11" in err
        assert "paperbridge backfill --retry-failed" in err
        store = open_store("sqlite:///data/paperbridge.db")
        assert store.count_papers() == 24
        assert store.get_progress("backfill:hf") == "2026-06-12"
        assert store.get_progress("backfill:hf:failed") == "2026-06-11"
        store.close()

        # Nothing left to do but the failed day: a plain rerun asks for nothing.
        before = len(up.requests)
        assert main(args) == 0
        assert len(up.requests) == before
        up.add(
            "/api/daily_papers",
            json.dumps(items[18:24]),
            content_type="application/json",
            query={"limit": 100, "p": 0, "date": "2026-06-11"},
        )
        assert main([*args, "--retry-failed"]) == 0
        asked = [r.query["date"] for r in up.requests[before:]]
        assert asked == ["2026-06-11"]  # only the failed day, not a restart
        store = open_store("sqlite:///data/paperbridge.db")
        assert store.count_papers() == 30
        assert store.get_progress("backfill:hf:failed") == ""
        # Backfilled papers are searchable but never announced as new.
        assert store.recent_papers(50) == []
        store.close()


def test_backfill_refuses_a_reversed_range_and_says_where_hf_starts(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeUpstream() as up:
        for day in ("2023-05-04", "2023-05-05"):
            up.add(
                "/api/daily_papers",
                "[]",
                content_type="application/json",
                query={"limit": 100, "p": 0, "date": day},
            )
        config = str(write_config(workdir / "c.toml", up))
        reversed_ = ["--config", config, "backfill", "--from", "2026-11-27", "--to", "2026-11-20"]
        assert main(reversed_) == 2
        assert capsys.readouterr().err == (
            "paperbridge: backfill: --from 2026-11-27 is after --to 2026-11-20; nothing to load\n"
        )
        assert up.requests == []

        assert (
            main(["--config", config, "backfill", "--from", "2020-01-01", "--to", "2023-05-05"])
            == 0
        )
        err = capsys.readouterr().err
        assert (
            "backfill: Hugging Face Daily Papers start on 2023-05-04; loading them from there"
            in err
        )
        assert [r.query["date"] for r in up.requests] == ["2023-05-04", "2023-05-05"]

        before = len(up.requests)
        assert main(["--config", config, "backfill", "--to", "2022-12-31"]) == 0
        assert "start on 2023-05-04; none in this range" in capsys.readouterr().err
        assert len(up.requests) == before


def start_serve(workdir: Path, config: Path, port: int) -> subprocess.Popen[str]:
    """`paperbridge serve` as a real process, its log (stdout and stderr) in one pipe."""
    return subprocess.Popen(
        serve_command(config, port),
        cwd=workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def served(workdir: Path) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """`paperbridge serve` as a real process, with no reachable upstream at all."""
    port = unused_port()
    config = workdir / "c.toml"
    config.write_text(
        f'[sources.hf]\nbase_url = "http://127.0.0.1:{unused_port()}"\n[fetch]\nmax_attempts = 1\n'
    )
    proc = start_serve(workdir, config, port)
    try:
        yield proc, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()


def test_serve_without_network_starts_logs_and_keeps_serving(
    served: tuple[subprocess.Popen[str], int],
) -> None:
    proc, port = served
    deadline = time.monotonic() + 20
    body = None
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            body = response.json()
            if body["sources"]["hf"]["last_error"]:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    assert body is not None, "serve never answered /healthz"
    assert body["store"] == "ok"
    assert "connection refused" in body["sources"]["hf"]["last_error"]
    assert proc.poll() is None  # still running
    proc.terminate()
    output, _ = proc.communicate(timeout=10)
    assert "poll hf failed" in output
    # SIGTERM is a clean stop: everything is closed, then the process exits 0.
    assert proc.returncode == 0
    assert output.rstrip().endswith("stopped")


def test_a_stop_during_a_poll_is_clean(workdir: Path) -> None:
    """SIGTERM while a poll waits on a silent upstream: the poll is interrupted, the process
    exits 0 and logs no error or traceback for it."""
    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = unused_port()
        config = workdir / "c.toml"
        config.write_text(
            f'[sources.hf]\nbase_url = "http://127.0.0.1:{silent.getsockname()[1]}"\n'
            "[fetch]\ntimeout_seconds = 60\n"
        )
        proc = start_serve(workdir, config, port)
        try:
            silent.settimeout(20)
            silent.accept()[0].close()  # the poll has asked the upstream and waits
            proc.terminate()
            output, _ = proc.communicate(timeout=20)
        finally:
            proc.kill()
    assert proc.returncode == 0, output
    assert "poll:hf: interrupted by the stop" in output
    assert "Traceback" not in output and " ERROR " not in output, output
    assert output.rstrip().endswith("stopped")


def test_serve_on_a_busy_port_says_so_in_one_line(workdir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "bridge", "serve", "--port", str(port)],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=30,
        )
    # The port is bound before the store, scheduler and outputs start: nothing ran, no trace.
    assert (done.returncode, done.stdout) == (1, "")
    assert (
        done.stderr == f"paperbridge: cannot listen on 127.0.0.1:{port}: address already in use\n"
    )
    assert not (workdir / "data").exists()


@pytest.mark.parametrize(
    ("option", "value", "problem"),
    [
        ("--port", "70000", "must be 0 to 65535 (got 70000)"),
        ("--port", "-1", "must be 0 to 65535 (got -1)"),
        ("--port", "http", "'http' is not a port number"),
        ("--host", "http://0.0.0.0", "'http://0.0.0.0' is not an IP address or host name"),
        ("--host", "localhost:8080", "'localhost:8080' is not an IP address or host name"),
        ("--host", "", "'' is not an IP address or host name"),
    ],
)
def test_serve_refuses_a_bad_port_or_host(
    workdir: Path, capsys: pytest.CaptureFixture[str], option: str, value: str, problem: str
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", option, value])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith(f"error: argument {option}: {problem}\n")
