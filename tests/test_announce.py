"""Announcing the archive: papers stored quietly (backfill, a plain import) can be announced
later with `import --announce`, and every digest gets what was announced since it was
configured, whatever the order of import, poll and deliver; still once per place."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bridge.cli import main
from bridge.importer import import_paths
from bridge.store import Store, open_store, schema
from bridge.store.ledger import INTAKE_JOB, LedgerStore
from bridge.store.migrations import MIGRATIONS, migrate
from tests.fakes import Clock, RecordingPublisher
from tests.test_ledger import T0, make_ledger, paper, subscribe

FIXTURES = Path(__file__).parent / "fixtures"
HF_FILE = FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json"


def announced_flags(store: Store) -> dict[str, bool]:
    with store.engine.connect() as conn:
        rows = conn.execute(select(schema.papers.c.arxiv_id, schema.papers.c.announced))
        return {arxiv_id: bool(flag) for arxiv_id, flag in rows}


# -- the store -----------------------------------------------------------------------------------


def test_announce_known_announces_quiet_papers_once(store: Store) -> None:
    store.add_papers([paper(1), paper(2)], announce=False, now=T0)
    store.add_papers([paper(3)], now=T0)  # announced when stored
    # A poll re-reading a day leaves the quiet papers quiet (a backfill never floods).
    again = store.add_papers([paper(1), paper(2), paper(3)], now=T0)
    assert again.announced == 0 and again.skipped == 3
    assert announced_flags(store) == {"2606.00001": False, "2606.00002": False, "2606.00003": True}

    result = store.add_papers([paper(1), paper(2), paper(3), paper(4)], now=T0, announce_known=True)
    assert result.announced == 2  # 1 and 2; 3 was announced already, 4 is new
    assert [p.paper.arxiv_id for p in result.new] == ["2606.00004"]
    assert set(announced_flags(store).values()) == {True}
    # Announced once: the log has one entry per paper, in the order they were announced.
    with store.engine.connect() as conn:
        log = conn.execute(
            select(schema.announcements.c.paper_seq).order_by(schema.announcements.c.id)
        ).scalars()
        logged = list(log)
    assert len(logged) == len(set(logged)) == 4
    assert store.add_papers([paper(1)], now=T0, announce_known=True).announced == 0


def test_a_revision_listing_is_not_announced_late(store: Store) -> None:
    store.add_papers([paper(1)], announce=False, now=T0)
    revision = paper(1, version=2, announce_type="replace")
    result = store.add_papers([revision], now=T0, announce_known=True)
    assert result.announced == 0
    assert announced_flags(store) == {"2606.00001": False}


# -- the ledger ----------------------------------------------------------------------------------


async def test_papers_announced_late_reach_a_digest_created_before(store: Store) -> None:
    clock = Clock(T0)
    store.add_papers([paper(1), paper(2, "Unrelated")], announce=False, now=clock())
    publisher = RecordingPublisher()
    ledger = make_ledger(store, clock, publisher)
    clock.advance(days=30)  # a month later the lab subscribes, then announces the archive
    subscribe(ledger, "lab")
    assert await ledger.intake() == 0
    clock.advance(minutes=1)
    store.add_papers([paper(1), paper(2, "Unrelated")], now=clock(), announce_known=True)
    assert await ledger.intake() == 1
    report = await ledger.sweep(force=True)
    assert report.digests == {"sub-lab": "sent"}
    assert [m.arxiv_ids for m in publisher.sent] == [("2606.00001",)]
    # Nothing twice: announcing again, or the paper showing up in another listing.
    store.add_papers([paper(1, upvotes=5)], now=clock.advance(minutes=1), announce_known=True)
    assert await ledger.intake() == 0
    await ledger.sweep(force=True)
    assert len(publisher.sent) == 1


async def test_a_digest_does_not_get_what_was_announced_before_it_existed(store: Store) -> None:
    clock = Clock(T0)
    ledger = make_ledger(store, clock)
    store.add_papers([paper(1)], announce=False, now=clock())
    store.add_papers([paper(1)], now=clock.advance(minutes=1), announce_known=True)
    clock.advance(minutes=1)
    subscribe(ledger, "lab")
    store.add_papers([paper(2)], now=clock.advance(minutes=1))
    await ledger.intake()
    assert [r.arxiv_id for r in LedgerStore(store).rows()] == ["2606.00002"]


async def test_a_paper_already_posted_to_a_place_is_not_posted_again(store: Store) -> None:
    clock = Clock(T0)
    publisher = RecordingPublisher()
    ledger = make_ledger(store, clock, publisher)
    subscribe(ledger, "lab", sub_id="a-gen")
    subscribe(ledger, "lab", sub_id="b-deep", query="deep")
    store.add_papers([paper(1)], now=clock.advance(minutes=1))
    await ledger.sweep(force=True)
    store.add_papers([paper(1)], now=clock.advance(minutes=1), announce_known=True)
    await ledger.sweep(force=True)
    assert [m.arxiv_ids for m in publisher.sent] == [("2606.00001",)]


def test_upgrading_takes_in_papers_announced_but_not_yet_taken_in(sqlite_url: str) -> None:
    """A store at version 8 whose last poll announced papers the ledger had not taken in
    yet: after the upgrade to the announcement log the next intake still takes them."""
    store = open_store(sqlite_url, migrate_schema=False)
    try:
        with store.engine.begin() as conn:
            schema.schema_version.create(conn)
            for step in MIGRATIONS[:7]:
                step(conn)
            conn.execute(schema.schema_version.insert().values(version=7))
            for n in (1, 2, 3):
                conn.execute(
                    schema.papers.insert().values(
                        arxiv_id=f"2606.0000{n}",
                        title="Generalization",
                        first_seen_at=T0 + timedelta(minutes=n),
                        changed_at=T0,
                        announced=True,
                    )
                )
            # The ledger had taken in paper 1 (seq 1) before the upgrade.
            conn.execute(
                schema.progress.update()
                .where(schema.progress.c.job == INTAKE_JOB)
                .values(cursor="1")
            )
        with store.engine.begin() as conn:
            assert migrate(conn) == len(MIGRATIONS)
        with store.engine.connect() as conn:
            logged = list(conn.execute(select(schema.announcements.c.paper_seq)).scalars())
        assert logged == [2, 3]
        clock = Clock(T0)
        ledger = make_ledger(store, clock)
        subscribe(ledger, "lab")
        assert asyncio.run(ledger.intake()) == 2
        assert sorted(r.arxiv_id for r in LedgerStore(store).rows()) == [
            "2606.00002",
            "2606.00003",
        ]
    finally:
        store.close()


def test_import_counts_what_it_announced(store: Store) -> None:
    quiet = import_paths(store, [HF_FILE])
    assert quiet.new == 30 and quiet.announced == 0
    loud = import_paths(store, [HF_FILE], announce=True)
    assert loud.new == 0 and loud.skipped + loud.merged == 30 and loud.announced == 30
    assert import_paths(store, [HF_FILE], announce=True).announced == 0


# -- the commands --------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PAPERBRIDGE_") or name.endswith(("_TOKEN", "_SECRET")):
            monkeypatch.delenv(name)
    return tmp_path


def _config(workdir: Path) -> tuple[Path, Path]:
    out = workdir / "digests.jsonl"
    config = workdir / "config.toml"
    config.write_text(
        f"""
[[digests]]
name = "models"
query = "model"
destination = "file:{out}"
time = "08:00"
""",
        encoding="utf-8",
    )
    return config, out


def _sent(out: Path) -> list[str]:
    if not out.exists():
        return []
    return [p for line in out.read_text().splitlines() for p in json.loads(line)["papers"]]


def test_import_announce_into_a_fresh_store_then_deliver(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, out = _config(workdir)
    assert main(["--config", str(config), "import", "--announce", str(HF_FILE)]) == 0
    assert capsys.readouterr().out.startswith("30 announced, 30 new,")
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    assert "1 sent" in capsys.readouterr().err
    sent = _sent(out)
    assert sent and len(sent) == len(set(sent))
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    assert _sent(out) == sent


def test_backfilled_papers_are_announced_by_import_announce(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config, out = _config(workdir)
    # Stored quietly, as a backfill or a plain import stores them; a deliver changes nothing.
    assert main(["--config", str(config), "import", str(HF_FILE)]) == 0
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    assert _sent(out) == []
    capsys.readouterr()
    assert main(["--config", str(config), "import", "--announce", str(HF_FILE)]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("30 announced, 0 new,") and "30 skipped (already known)" in summary
    assert main(["--config", str(config), "deliver", "--now"]) == 0
    assert _sent(out)
    # An import without the service's --config announces, and deletes none of its digests.
    assert main(["import", "--announce", str(HF_FILE)]) == 0
    store = open_store("sqlite:///data/paperbridge.db")
    try:
        assert [d.id for d in LedgerStore(store).list_digests()] == ["config-models"]
    finally:
        store.close()
