"""Health tells the truth: a source is ok only after a real success, and every failure class is
said where health is read (/healthz and `paperbridge healthcheck`, `status`, the page, the log).

Crashed scheduled jobs, the full disk included, are in tests/test_crashes.py; the gauges of
/metrics in tests/test_web_metrics.py.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from bridge.app import open_bridge
from bridge.config import Settings
from bridge.probe import healthcheck
from bridge.status import format_status, status_report
from bridge.store import Store, open_store
from bridge.web import create_web_app
from tests.fake_upstream import FakeUpstream, unused_port
from tests.test_web_server import LiveServer, hf_items, serve_hf

NOON = datetime(2026, 6, 10, 12, tzinfo=UTC)  # a Wednesday


def settings_for(tmp_path: Path, **extra: Any) -> Settings:
    raw: dict[str, Any] = {
        "store": {"database_url": f"sqlite:///{tmp_path / 'h.db'}"},
        "sources": {"hf": {"poll_every_minutes": 60}},
    }
    raw.update(extra)
    return Settings.model_validate(raw)


async def get(app: Starlette, path: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.get(path)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Store]:
    store = open_store(f"sqlite:///{tmp_path / 'h.db'}")
    yield store
    store.close()


# -- /healthz --------------------------------------------------------------------------------


async def test_a_brand_new_bridge_says_starting_and_is_not_ok(tmp_path: Path) -> None:
    """Before its first poll finishes, a bridge has no success behind it: 503, "starting"."""
    async with open_bridge(settings_for(tmp_path)) as bridge:
        response = await get(create_web_app(bridge), "/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "starting"
    assert body["problems"] == [
        "starting: the first poll of hf (Hugging Face Daily Papers) is under way"
    ]
    assert body["sources"]["hf"]["state"] == "starting"
    assert body["sources"]["hf"]["last_success"] is None


def test_a_source_whose_every_poll_fails_is_503_from_the_first_and_the_probe_says_why(
    tmp_path: Path,
) -> None:
    """Today's outage: the page said "the first poll is still on its way" and /healthz said ok
    while every poll failed; the Docker HEALTHCHECK printed nothing useful."""
    dead = f"http://127.0.0.1:{unused_port()}"
    settings = settings_for(
        tmp_path,
        sources={"hf": {"base_url": dead, "poll_every_minutes": 60}},
        fetch={"max_attempts": 1, "timeout_seconds": 5},
        time_zone="Europe/Berlin",
    )
    with LiveServer(settings) as live:
        report = live.poll()
        assert not report.ok

        response = httpx.get(live.url("/healthz"))
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "unhealthy"
        (problem,) = body["problems"]
        assert problem.startswith(
            "hf (Hugging Face Daily Papers) has never been read: 1 poll in a row failed,"
            " the last with: fetch "
        )
        assert "connection refused" in problem
        # When the next poll is, in the configured zone: an hour after this one.
        assert "; next poll at " in problem and problem.endswith(("CEST", "CET"))
        hf = body["sources"]["hf"]
        assert hf["state"] == "failing" and hf["consecutive_failures"] == 1
        assert datetime.fromisoformat(hf["next_poll"]) > datetime.now(UTC) + timedelta(minutes=55)

        # `paperbridge healthcheck` (the Docker HEALTHCHECK) prints the same sentence.
        probe = settings.model_copy(
            update={"server": settings.server.model_copy(update={"port": live.port})}
        )
        captured: list[str] = []
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stderr", _Lines(captured))
            assert healthcheck(probe) == 1
        assert "answered 503: hf (Hugging Face Daily Papers) has never been read" in "".join(
            captured
        )


class _Lines:
    def __init__(self, into: list[str]) -> None:
        self.into = into

    def write(self, text: str) -> int:
        self.into.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_source_that_failed_after_a_recent_success_is_a_warning_not_an_outage(
    tmp_path: Path, db: Store
) -> None:
    db.record_poll_success("hf", date(2026, 6, 10), now=NOON - timedelta(minutes=70))
    db.record_poll_failure("hf", "fetch https://huggingface.co/api: HTTP 503", NOON)
    from bridge.health import HealthCheck

    report = HealthCheck(settings_for(tmp_path), db).read(NOON)
    assert report.ok and report.status == "ok"
    (warning,) = report.warnings
    assert warning.startswith("hf (Hugging Face Daily Papers): 1 poll in a row failed, the last")
    assert "last read 2026-06-10 10:50 UTC; next poll at 2026-06-10 13:00 UTC" in warning


def test_a_poll_that_skipped_records_is_a_warning_every_view_shows(
    tmp_path: Path, db: Store
) -> None:
    problem = "hf: https://huggingface.co/api/daily_papers record 2407.21772v99999999999999999999: version beyond 2^31"
    db.record_poll_success("hf", date(2026, 6, 10), NOON, skipped=2, skip_problem=problem)
    from bridge.health import HealthCheck

    report = HealthCheck(settings_for(tmp_path), db).read(NOON)
    assert report.ok and report.status == "ok"
    assert report.warnings == [
        "hf (Hugging Face Daily Papers): its last poll skipped 2 records it could not use,"
        f" the first: {problem}"
    ]
    assert "its last poll skipped 2 records" in format_status(
        status_report(db, settings_for(tmp_path), now=NOON)
    )
    # A clean poll afterwards clears it.
    db.record_poll_success("hf", date(2026, 6, 10), NOON + timedelta(hours=1))
    assert HealthCheck(settings_for(tmp_path), db).read(NOON).warnings == []


def test_a_source_nobody_polled_for_days_is_stale_and_says_so(tmp_path: Path, db: Store) -> None:
    db.record_poll_success("hf", date(2026, 6, 5), now=NOON - timedelta(days=5))
    from bridge.health import HealthCheck

    report = HealthCheck(settings_for(tmp_path), db).read(NOON)
    assert report.status == "unhealthy"
    assert report.problems == [
        "hf (Hugging Face Daily Papers) has not been read since 2026-06-05 12:00 UTC:"
        " no poll has run since; next poll due now (it runs while `paperbridge serve` runs)"
    ]


# -- the web page ----------------------------------------------------------------------------


def test_the_page_says_when_sources_cannot_be_reached_and_what_to_do_meanwhile(
    tmp_path: Path,
) -> None:
    with FakeUpstream() as upstream:
        upstream.fail("/api/daily_papers", times=1, status=503)
        upstream.fail("/papers", times=1, status=503)
        settings = settings_for(
            tmp_path,
            sources={"hf": {"base_url": upstream.base_url, "poll_every_minutes": 60}},
            fetch={"max_attempts": 1, "timeout_seconds": 5},
            first_run={"announce": "all"},
        )
        with LiveServer(settings) as live:
            starting = httpx.get(live.url("/")).text
            assert "Starting up:" in starting
            assert "the first poll of hf (Hugging Face Daily Papers) is under way" in starting
            assert "No papers yet: the first poll is still on its way." in starting

            assert not live.poll().ok
            page = httpx.get(live.url("/")).text
            assert "Papers may be late:" in page
            assert "has never been read: 1 poll in a row failed" in page
            assert "next poll at " in page
            assert "<code>paperbridge import FILE</code>" in page
            assert "<code>paperbridge backfill --from DATE</code>" in page
            assert "No papers yet: the sources could not be read (see above)." in page
            assert "the first poll is still on its way" not in page

            serve_hf(upstream, hf_items())
            assert live.poll().ok
            page = httpx.get(live.url("/")).text
            assert "Papers may be late" not in page and 'class="health"' not in page
            assert '<article class="paper' in page


# -- `paperbridge status` ------------------------------------------------------------------


def test_status_shows_times_in_the_configured_zone_without_microseconds(
    tmp_path: Path, db: Store
) -> None:
    settings = settings_for(
        tmp_path,
        time_zone="Europe/Berlin",
        sources={"hf": {"poll_every_minutes": 60}, "arxiv": {"enabled": True}},
    )
    polled = datetime(2026, 6, 10, 10, 2, 11, 123456, tzinfo=UTC)
    db.record_poll_success("hf", date(2026, 6, 10), now=polled)
    db.record_poll_failure("arxiv", "fetch https://rss.arxiv.org/rss/cs.LG: HTTP 503", polled)

    report = status_report(db, settings, polled + timedelta(minutes=5))
    text = format_status(report)

    assert text.startswith("Times in Europe/Berlin\nSources\n")
    assert (
        "  hf     enabled  last success 2026-06-10 12:02:11, caught up to 2026-06-10,"
        " next poll 2026-06-10 13:02:11  ok"
    ) in text
    assert "  arxiv  enabled  last success never, caught up to -, next poll" in text
    (arxiv,) = [line for line in text.splitlines() if line.startswith("  arxiv")]
    # arXiv keeps its crontab: 00:15 in New York is 06:15 in Berlin.
    assert arxiv.endswith("next poll 2026-06-11 06:15:00  failing")
    assert ".123456" not in text and "+00:00" not in text
    assert report["sources"][1]["last_success_at"] == "2026-06-10T12:02:11+02:00"  # hf
    problems = report["problems"]
    assert problems[0].startswith("arxiv (arXiv) has never been read: 1 poll in a row failed")
    assert problems[1].startswith("Papers can be loaded meanwhile with `paperbridge import FILE`")


# -- the log -----------------------------------------------------------------------------------


async def test_a_failed_poll_logs_when_the_next_one_is_and_what_to_do_meanwhile(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from bridge.commands import _poll_job

    dead = f"http://127.0.0.1:{unused_port()}"
    settings = settings_for(
        tmp_path,
        sources={"hf": {"base_url": dead, "poll_every_minutes": 60}},
        fetch={"max_attempts": 1},
    )
    async with open_bridge(settings) as bridge:
        with caplog.at_level(logging.INFO):
            await _poll_job(bridge, "hf")()
    lines = [r.getMessage() for r in caplog.records if r.name == "bridge.commands"]
    (line,) = lines
    assert line.startswith("poll hf: next poll at ")
    assert line.endswith(
        "papers can be loaded meanwhile with `paperbridge import FILE` (a listing saved by hand)"
        " or `paperbridge backfill --from DATE`"
    )
