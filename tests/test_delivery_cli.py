"""The delivery commands end to end: `status`, `deliver`, `migrate-data` (SQLite to PostgreSQL)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bridge.cli import main
from bridge.delivery import Destination
from bridge.search import search_store
from bridge.store import open_store, schema
from bridge.store.ledger import LedgerStore

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
    assert dest["deliveries"]["sent"] == len(papers) and report["problems"] == []


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
    assert "hook resumed" in capsys.readouterr().err
    assert main(["status"]) == 0
    assert "paused" not in capsys.readouterr().out
    assert main(["resume", "nowhere"]) == 1


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
