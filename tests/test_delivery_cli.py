"""The delivery commands end to end: `status`, `deliver`, `migrate-data` (SQLite to PostgreSQL)."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bridge.cli import main
from bridge.delivery import Destination
from bridge.search import search_store
from bridge.store import open_store, schema
from bridge.store.ledger import LedgerStore
from tests.fake_upstream import unused_port

FIXTURES = Path(__file__).parent / "fixtures"
HF_FILE = FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PAPERBRIDGE_") or name.endswith(("_TOKEN", "_SECRET")):
            monkeypatch.delenv(name)
    return tmp_path


def test_deliver_now_then_status(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = workdir / "digests.jsonl"
    config = workdir / "config.toml"
    config.write_text(
        f"""
[[digests]]
name = "models"
query = "model"
destination = "file:{out}"
time = "08:00"
time_zone = "Europe/Berlin"
""",
        encoding="utf-8",
    )
    assert main(["--config", str(config), "deliver"]) == 0  # creates the digest; nothing yet
    capsys.readouterr()
    assert main(["import", "--announce", str(HF_FILE)]) == 0
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    err = capsys.readouterr().err
    assert "queued" in err and "1 sent" in err
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    assert messages and all(m["subscription"] == "config-models" for m in messages)
    papers = [p for m in messages for p in m["papers"]]
    assert len(papers) == len(set(papers)) > 0
    # Each line carries the papers too, as `search --json` shows them, so it reads as a digest.
    for message in messages:
        assert [item["arxiv_id"] for item in message["items"]] == message["papers"]
        for item in message["items"]:
            assert item["title"] and item["links"]["abs"].startswith("https://arxiv.org/abs/")
            assert item["why"].lower().startswith("matched model") and item["hits"]
    # Nothing is sent twice.
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    assert len(out.read_text().splitlines()) == len(messages)

    assert main(["--config", str(config), "status"]) == 0
    text = capsys.readouterr().out
    for heading in ("Sources", "Subscriptions", "Destinations", "Last deliveries", "Problems"):
        assert heading in text
    assert "digest models: 'model'" in text and f"file:{out}" in text
    assert "last sent never" not in text  # `deliver --now` sent, without a scheduled morning
    assert main(["--config", str(config), "status", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (digest,) = report["digests"]
    assert digest["last_sent_at"] is not None and digest["last_digest_at"] is None
    (dest,) = report["destinations"]
    assert dest["deliveries"]["sent"] == len(papers)
    # Papers came by import; HF itself was never read, and status does not call that ok.
    (problem,) = report["problems"]
    assert problem.startswith("hf (Hugging Face Daily Papers) has never been polled")


def test_status_shows_a_paused_destination_without_its_secret(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store("sqlite:///data/paperbridge.db")
    try:
        db = LedgerStore(store)
        now = datetime.now(UTC)
        db.save_destination(
            Destination("hook", "discord", "https://discord.com/api/webhooks/1/t0ken"), now
        )
        db.pause_destination("hook", "discord: 404 Unknown Webhook", now)
    finally:
        store.close()
    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "paused: discord: 404 Unknown Webhook" in text
    assert "t0ken" not in text
    assert main(["resume", "hook"]) == 0
    assert "resumed (hook)" in capsys.readouterr().err
    assert main(["status"]) == 0
    assert "paused" not in capsys.readouterr().out
    assert main(["resume", "nowhere"]) == 1


def test_resume_takes_the_name_status_shows(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = open_store("sqlite:///data/paperbridge.db")
    try:
        db = LedgerStore(store)
        now = datetime.now(UTC)
        # As sync_configured declares `destination = "discord-webhook:GONE_HOOK"` and "stdout".
        hook = Destination(
            "discord-webhook-0a1b", "discord-webhook", "GONE_HOOK", "discord-webhook:GONE_HOOK"
        )
        db.save_destination(hook, now)
        db.save_destination(Destination("stdout-2c3d", "stdout", "", "stdout"), now)
        db.pause_destination(hook.id, "discord: 404 Unknown Webhook", now)
    finally:
        store.close()
    assert main(["status"]) == 0
    text = capsys.readouterr().out
    assert "  discord-webhook:GONE_HOOK (discord-webhook-0a1b) paused" in text
    # A destination without an address is shown by its kind alone, not "stdout:".
    assert "  stdout (stdout-2c3d) ok" in text and "stdout:" not in text

    assert main(["resume", "discord-webhook:GONE_HOOK"]) == 0
    assert "resumed (discord-webhook-0a1b)" in capsys.readouterr().err
    assert main(["status"]) == 0
    assert "paused" not in capsys.readouterr().out

    # Neither an id nor a name: the known ones are listed to pick from.
    assert main(["resume", "discord-webhook:OTHER"]) == 1
    err = capsys.readouterr().err
    assert "'discord-webhook:OTHER' is no destination" in err
    assert "discord-webhook:GONE_HOOK (discord-webhook-0a1b)" in err
    assert "stdout (stdout-2c3d)" in err


@pytest.mark.postgres
def test_migrate_data_moves_everything_from_sqlite_to_postgres(
    workdir: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_url = f"sqlite:///{workdir / 'data' / 'paperbridge.db'}"
    assert main(["import", "--announce", str(HF_FILE)]) == 0
    source = open_store(sqlite_url)
    try:
        now = datetime.now(UTC)
        db = LedgerStore(source)
        db.save_destination(Destination("lab", "stdout", ""), now)
        with source.engine.connect() as conn:
            counts = {
                table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                for table in schema.metadata.sorted_tables
            }
        hits = search_store(source, "language model").total
    finally:
        source.close()
    capsys.readouterr()

    assert main(["migrate-data", "--from", sqlite_url, "--to", postgres_url]) == 0
    printed = capsys.readouterr().out
    assert f"papers: {counts['papers']} rows" in printed

    target = open_store(postgres_url)
    try:
        with target.engine.connect() as conn:
            for name in ("papers", "destinations", "progress", "source_state"):
                table = schema.metadata.tables[name]
                moved = conn.execute(select(func.count()).select_from(table)).scalar_one()
                assert moved == counts[name], name
        # The search index was rebuilt in PostgreSQL's form and finds the same papers.
        assert search_store(target, "language model").total == hits > 0
        # New rows continue the numbering.
        from bridge.models import Paper

        added = target.add_papers([Paper("2699.00001", "After the move")])
        assert added.new[0].seq > counts["papers"]
    finally:
        target.close()
    # A second copy into the now full database is refused.
    assert main(["migrate-data", "--from", sqlite_url, "--to", postgres_url]) == 1
    assert "already holds data" in capsys.readouterr().err


def test_migrate_data_refuses_a_source_that_is_not_a_paperbridge_database(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = workdir / "nonexist.db"
    target = f"sqlite:///{workdir / 'copy.db'}"
    assert main(["migrate-data", "--from", f"sqlite:///{missing}", "--to", target]) == 1
    assert f"paperbridge: source: no database at {missing}" in capsys.readouterr().err
    assert not missing.exists()  # a mistyped path is never created

    empty = workdir / "empty.db"
    empty.touch()
    assert main(["migrate-data", "--from", f"sqlite:///{empty}", "--to", target]) == 1
    assert "source: sqlite:///" in capsys.readouterr().err
    with sqlite3.connect(empty) as conn:  # not migrated either
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_an_unreachable_database_says_where_and_why_with_the_password_hidden(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    port = unused_port()
    refused = f"postgresql://lab:s3cret@127.0.0.1:{port}/papers"
    shown = f"postgresql://lab:***@127.0.0.1:{port}/papers"
    local = f"sqlite:///{workdir / 'copy.db'}"
    assert main(["migrate-data", "--from", refused, "--to", local]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"paperbridge: source: cannot connect to the database at {shown}: ")
    assert "Connection refused" in err and "s3cret" not in err
    assert "migrate" not in err and "OperationalError" not in err and "\n" == err[-1:]

    assert main(["import", str(HF_FILE)]) == 0
    capsys.readouterr()
    here = f"sqlite:///{workdir / 'data' / 'paperbridge.db'}"
    assert main(["migrate-data", "--from", here, "--to", refused]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"paperbridge: target: cannot connect to the database at {shown}: ")

    # Every command opens the store the same way.
    monkeypatch.setenv("PAPERBRIDGE_DATABASE_URL", refused)
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"paperbridge: cannot connect to the database at {shown}: ")
    assert err.count("\n") == 1


def test_a_poll_feeds_the_configured_digests_even_before_the_first_deliver(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.fake_upstream import FakeUpstream

    out = workdir / "digests.jsonl"
    with FakeUpstream() as upstream:
        # Every HF request, whatever its date, answers with the same listing.
        upstream.add("/api/daily_papers", HF_FILE.read_bytes(), content_type="application/json")
        config = workdir / "config.toml"
        config.write_text(
            f"""
[sources.hf]
base_url = "{upstream.base_url}"
[first_run]
announce = "all"
[[digests]]
name = "models"
query = "model"
destination = "file:{out}"
""",
            encoding="utf-8",
        )
        assert main(["--config", str(config), "poll"]) == 0
    capsys.readouterr()
    # The digest existed before the poll, so the poll's papers were queued for it.
    assert main(["--config", str(config), "status", "--json"]) == 0
    (digest,) = json.loads(capsys.readouterr().out)["digests"]
    assert digest["pending"] > 0
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    sent = [p for line in out.read_text().splitlines() for p in json.loads(line)["papers"]]
    assert len(sent) == digest["pending"]
