"""A crashed scheduled job is logged once, recorded as a problem of its source (or of the job)
and shown wherever health is read; `serve` on a full disk says "disk full" with the path.

The full disk is real: SQLite's ``PRAGMA max_page_count`` caps the database file, and the pages
the bridge writes into are filled first, so the next write needs a page that cannot be had
and SQLite answers SQLITE_FULL, exactly as on a full filesystem.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from adapters.atom import FeedOptions, FeedSite
from bridge import metrics
from bridge.app import open_bridge
from bridge.cli import main
from bridge.config import Settings
from bridge.crashes import CrashWatch, explain
from bridge.delivery import Destination, DigestSubscription
from bridge.health import HealthCheck
from bridge.jobs import DeliveryJobs, schedule_poll
from bridge.ledger import Ledger, build_ledger
from bridge.scheduler import Scheduler
from bridge.status import format_status, status_report
from bridge.store import Store, open_store
from bridge.store.ledger import LedgerStore
from bridge.web import create_web_app
from tests.test_web_metrics import value


def settings_for(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "store": {"database_url": f"sqlite:///{tmp_path / 'c.db'}"},
            "sources": {"hf": {"poll_every_minutes": 60}},
        }
    )


async def get(app: Any, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


def _cap_pages(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    pages = cursor.execute("PRAGMA page_count").fetchone()[0]
    cursor.execute(f"PRAGMA max_page_count = {max(pages, 1)}")
    cursor.close()


@pytest.fixture
def full_disk() -> Iterator[None]:
    """Every SQLite database opened meanwhile cannot grow by a single page."""
    event.listen(Engine, "connect", _cap_pages)
    yield
    event.remove(Engine, "connect", _cap_pages)


def fill_up(store: Store) -> None:
    """Make ``store``'s file full: it may not grow, and the tables a poll's lease and its
    failure record go into have no room left in their pages."""
    event.listen(store.engine, "connect", _cap_pages)
    store.engine.dispose()  # reconnect: every connection gets the cap
    now = datetime.now(UTC)
    db = LedgerStore(store)
    # Rows no larger than the ones the bridge writes, so what is left fits none of those.
    for n in range(10_000):
        try:
            db.try_lease(f"fill:{n:02d}", "h", now, now + timedelta(minutes=1))
        except SQLAlchemyError:
            break
    for n in range(10_000):
        try:
            store.record_poll_failure(f"f{n}", "x", now)
        except SQLAlchemyError:
            break
    with store.engine.connect() as conn, pytest.raises(SQLAlchemyError, match="disk is full"):
        conn.execute(text("CREATE TABLE spill (x)"))


def free_up(store: Store) -> None:
    event.remove(store.engine, "connect", _cap_pages)
    store.engine.dispose()


# -- what a crash is called ------------------------------------------------------------------


def test_a_full_disk_is_called_so_with_its_path() -> None:
    nospace = OSError(errno.ENOSPC, "No space left on device", "/data/digests.jsonl")
    assert (
        explain(nospace) == "disk full: cannot write /data/digests.jsonl (No space left on device)"
    )
    sqlite_full = sqlite3.OperationalError("database or disk is full")
    sqlite_full.sqlite_errorcode = sqlite3.SQLITE_FULL  # type: ignore[attr-defined]
    wrapped = RuntimeError("cannot store papers")
    wrapped.__cause__ = sqlite_full
    assert explain(wrapped, "sqlite:////data/pb.db") == (
        "disk full: cannot write /data/pb.db (database or disk is full)"
    )
    import psycopg.errors

    server = psycopg.errors.DiskFull('could not extend file "base/1/2": No space left on device')
    assert explain(server, "postgresql://pb:secret@db/pb") == (
        "disk full on the database server of postgresql://pb:***@db/pb:"
        ' could not extend file "base/1/2": No space left on device'
    )
    assert explain(KeyError("paper")) == "KeyError: 'paper'"


# -- a full disk while serving ---------------------------------------------------------------


async def test_a_lease_written_on_a_full_disk_is_a_crash_every_health_view_shows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path)
    path = tmp_path / "c.db"
    crashes_before = metrics.JOB_CRASHES.value(job="poll:hf")
    async with open_bridge(settings) as bridge:
        store = bridge.store
        watch = CrashWatch(store, settings.store.database_url)
        health = HealthCheck(settings, store, ["hf"], watch.open_crashes)
        scheduler = Scheduler(observer=watch)
        polls: list[str] = []

        async def poll() -> None:
            polls.append("hf")

        schedule_poll(scheduler, build_ledger(store, settings), settings, "hf", poll)
        site = FeedSite(bridge, FeedOptions(version_ttl=0, stale_grace=None), health=health)
        app = create_web_app(bridge, extra_routes=site.routes(), health=health)
        fill_up(store)

        with caplog.at_level(logging.ERROR):
            await scheduler.run_now("poll:hf")

        assert polls == []  # the lease could not be taken, so nothing polled
        logged = [r for r in caplog.records if r.name == "bridge.crashes"]
        assert [r.getMessage() for r in logged] == [
            f"poll:hf crashed: disk full: cannot write {path} (database or disk is full);"
            " the store could not record it"
        ]
        assert logged[0].exc_info is None  # said plainly: no traceback for a full disk
        # /healthz
        response = await get(app, "/healthz")
        assert response.status_code == 503
        body = response.json()
        (problem,) = [p for p in body["problems"] if "crashed" in p]
        assert problem.startswith("poll:hf crashed at ")
        assert problem.endswith(
            f": disk full: cannot write {path} (database or disk is full)"
            " (the store could not record it)"
        )
        assert body["jobs"][0]["job"] == "poll:hf" and body["jobs"][0]["recorded"] is False
        # /metrics
        exposition = (await get(app, "/metrics")).text
        assert value(exposition, "paperbridge_jobs_crashed") == 1
        assert value(exposition, "paperbridge_healthy") == 0
        assert metrics.JOB_CRASHES.value(job="poll:hf") == crashes_before + 1
        # the page
        page = (await get(app, "/")).text
        assert f"disk full: cannot write {path}" in page

        # Room again: the next run takes the lease, polls, and the crash is over.
        free_up(store)
        await scheduler.run_now("poll:hf")
        assert polls == ["hf"]
        body = (await get(app, "/healthz")).json()
        assert body["jobs"] == [] and not any("crashed" in p for p in body["problems"])


def test_serve_on_a_full_disk_says_disk_full_with_the_path(
    tmp_path: Path, full_disk: None, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "data" / "pb.db"
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\ndatabase_url = "sqlite:///{database}"\n', encoding="utf-8")
    assert main(["--config", str(config), "serve", "--port", "0"]) == 1
    assert capsys.readouterr().err == (
        f"paperbridge: serve cannot run: disk full: cannot write {database}"
        " (database or disk is full)\n"
    )


# -- crashes the store can record --------------------------------------------------------------


async def test_a_crashed_poll_is_a_failed_poll_of_its_source(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = settings_for(tmp_path)
    store = open_store(settings.store.database_url)
    try:
        watch = CrashWatch(store, settings.store.database_url)
        scheduler = Scheduler(observer=watch)

        async def poll() -> None:
            raise TypeError("'NoneType' object is not subscriptable")

        schedule_poll(scheduler, build_ledger(store, settings), settings, "hf", poll)
        with caplog.at_level(logging.ERROR):
            await scheduler.run_now("poll:hf")

        state = store.source_state("hf")
        assert state.consecutive_failures == 1
        assert state.last_error == "crashed: TypeError: 'NoneType' object is not subscriptable"
        (record,) = [r for r in caplog.records if r.name == "bridge.crashes"]
        assert record.exc_info is not None  # a bug: its traceback is for the bug report
        text = format_status(status_report(store, settings))
        assert "hf (Hugging Face Daily Papers) has never been read: 1 poll in a row failed," in text
        assert "the last with: crashed: TypeError:" in text
    finally:
        store.close()


async def test_a_crashed_sweep_shows_in_status_until_any_process_sweeps_cleanly(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)
    ledger = Ledger(store, {})
    now = ledger.clock()
    ledger.db.save_destination(Destination("lab", "stdout", ""), now)
    # A row written by hand (or by an older version) naming a zone this system lacks.
    ledger.db.save_digest(DigestSubscription("bad", "lab", "drift", "08:00", "Mars/Base"), now)
    failing = Scheduler(observer=CrashWatch(store, database_url))
    DeliveryJobs(failing, ledger).install()
    await failing.run_now("deliveries:sweep")

    problems = status_report(store, settings)["problems"]
    (crash,) = [p for p in problems if "crashed" in p]
    assert crash.startswith("deliveries:sweep crashed at ")
    assert "Mars/Base" in crash
    report = HealthCheck(settings, store, []).read()
    assert report.status == "unhealthy" and report.jobs[0].recorded

    # The row is fixed; another process (its own watch, nothing in its memory) sweeps
    # cleanly, and the recorded crash is over for everyone.
    ledger.db.delete_digest("bad")
    other = Scheduler(observer=CrashWatch(store, database_url))
    DeliveryJobs(other, Ledger(store, {})).install()
    await other.run_now("deliveries:sweep")
    assert not [p for p in status_report(store, settings)["problems"] if "crashed" in p]
    assert HealthCheck(settings, store, []).read().ok


async def test_a_stop_is_not_a_crash(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        watch = CrashWatch(store, "sqlite://")
        scheduler = Scheduler(observer=watch)
        started = asyncio.Event()

        async def slow() -> None:
            started.set()
            await asyncio.Event().wait()

        scheduler.every("slow", 60, slow)
        task = asyncio.create_task(scheduler.run_now("slow"))
        await started.wait()
        await scheduler.stop()
        await task
        assert watch.open_crashes() == []
    finally:
        store.close()
