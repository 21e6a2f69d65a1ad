"""Backfill against the fake upstream: HF_TOKEN, a day that keeps failing, interruption and
resume, progress and time left, arguments checked before any request."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

import pytest

from bridge import commands
from bridge.backfill import DayRun, duration, hf_interval, read_failed
from bridge.cli import main
from bridge.config import Settings
from bridge.fetch import Fetcher
from bridge.sources.base import Listing, Source
from bridge.store import Store, open_store
from tests.fake_upstream import FakeUpstream, fixture

TOKEN = "hf_SecretTokenValue1234567890"
FIRST = date(2026, 6, 8)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("PAPERBRIDGE_") or name.endswith(("_TOKEN", "_SECRET")):
            monkeypatch.delenv(name)
    return tmp_path


def serve_days(up: FakeUpstream, days: int, *, delay_on: date | None = None) -> list[str]:
    """HF API answers for ``days`` days from FIRST, 6 papers each; returns their ids."""
    items = json.loads(fixture("hf/daily_papers_api_limit30_2026-06-13.json"))
    ids = []
    for n in range(days):
        day = FIRST + timedelta(days=n)
        chunk = items[n * 6 : n * 6 + 6]
        for item in chunk:
            item["paper"]["submittedOnDailyAt"] = f"{day.isoformat()}T00:00:00.000Z"
            ids.append(item["paper"]["id"])
        up.add(
            "/api/daily_papers",
            json.dumps(chunk),
            content_type="application/json",
            query={"limit": 100, "p": 0, "date": day.isoformat()},
            delay=5.0 if day == delay_on else 0.0,
        )
    return ids


def config_for(path: Path, up: FakeUpstream) -> str:
    path.write_text(
        f'[sources.hf]\nbase_url = "{up.base_url}"\n'
        "[fetch]\nmax_attempts = 2\nbackoff_base_seconds = 0.01\ntimeout_seconds = 2\n",
        encoding="utf-8",
    )
    return str(path)


def days_asked(up: FakeUpstream, since: int = 0) -> list[str]:
    return [r.query["date"] for r in up.requests[since:] if r.path == "/api/daily_papers"]


# -- HF_TOKEN ----------------------------------------------------------------------------------


def test_hf_token_is_sent_as_bearer_and_never_shown(
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with FakeUpstream() as up:
        serve_days(up, 2)
        up.fail("/api/daily_papers", times=1, status=503)  # a retry, logged with its URL
        config = config_for(workdir / "c.toml", up)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        args = ["--config", config, "-v", "backfill", "--from", "2026-06-08", "--to", "2026-06-09"]
        assert main(args) == 0
        assert main(["--config", config, "check-config"]) == 0
        with_token = list(up.requests)
        monkeypatch.delenv("HF_TOKEN")
        assert main([*args, "--restart"]) == 0
        without = up.requests[len(with_token) :]
    out, err = capsys.readouterr()
    assert with_token and all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in with_token)
    assert without and all("authorization" not in r.headers for r in without)
    assert "1,000 requests per 5 minutes with HF_TOKEN" in err
    assert "500 requests per 5 minutes without a token; set HF_TOKEN" in err
    assert "retrying" in caplog.text  # the logs did talk about these requests
    for shown in (out, err, caplog.text):
        assert TOKEN not in shown and TOKEN[3:12] not in shown


async def test_a_host_header_goes_to_its_host_only() -> None:
    with FakeUpstream() as up:
        up.add("/x", "ok")
        headers = {"localhost": {"Authorization": f"Bearer {TOKEN}"}}
        async with Fetcher(user_agent="test", host_headers=headers) as fetcher:
            await fetcher.get(f"http://localhost:{up.port}/x")
            await fetcher.get(f"http://127.0.0.1:{up.port}/x")
        assert fetcher.requests == 2
    assert up.requests[0].headers.get("authorization") == f"Bearer {TOKEN}"
    assert "authorization" not in up.requests[1].headers


def test_pace_follows_the_allowance() -> None:
    # 1,000 requests per 300 s with a token, 500 without; a tenth is left for polls.
    assert 300 / hf_interval(True) == pytest.approx(900)
    assert 300 / hf_interval(False) == pytest.approx(450)


# -- failing days, interruption, progress ---------------------------------------------------------


def test_a_day_that_keeps_failing_is_recorded_skipped_and_retried_on_request(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeUpstream() as up:
        serve_days(up, 4)
        bad = (FIRST + timedelta(days=1)).isoformat()
        # The API keeps answering 503 for that day, and the HTML listing has no page for it.
        query = {"limit": 100, "p": 0, "date": bad}
        up.add("/api/daily_papers", "down", status=503, query=query)
        config = config_for(workdir / "c.toml", up)
        args = ["--config", config, "backfill", "--from", "2026-06-08", "--to", "2026-06-11"]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert days_asked(up).count(bad) == 2  # the fetcher's retries, then the day is skipped
        assert f"/papers/date/{bad}" in [r.path for r in up.requests]  # the HTML fallback too
        assert days_asked(up)[-2:] == ["2026-06-10", "2026-06-11"]  # the run went on
        assert f"{bad} failed: " in err and f"1 days failed and were skipped: {bad}" in err
        assert "--retry-failed" in err
        store = open_store("sqlite:///data/paperbridge.db")
        assert store.count_papers() == 18
        assert read_failed(store, "backfill:hf") == [FIRST + timedelta(days=1)]
        store.close()

        serve_days(up, 4)  # the day is back
        before = len(up.requests)
        assert main([*args, "--retry-failed"]) == 0
        assert days_asked(up, before) == [bad]
        store = open_store("sqlite:///data/paperbridge.db")
        assert store.count_papers() == 24
        assert read_failed(store, "backfill:hf") == []
        store.close()


async def test_an_interrupted_backfill_resumes_after_the_last_day_done(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeUpstream() as up:
        ids = serve_days(up, 4, delay_on=FIRST + timedelta(days=2))
        settings = Settings.model_validate(
            {
                "store": {"database_url": "sqlite:///data/paperbridge.db"},
                "sources": {"hf": {"base_url": up.base_url}},
                "fetch": {"timeout_seconds": 10},
            }
        )
        run = asyncio.create_task(
            commands.backfill(
                settings,
                start=FIRST,
                end=FIRST + timedelta(days=3),
                arxiv_categories=None,
                hf=True,
                restart=False,
            )
        )
        # Interrupted while the third day is on its way (its answer is held back).
        # The fake upstream runs in its own thread and offers no event to wait on.
        while "2026-06-10" not in days_asked(up):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        store = open_store("sqlite:///data/paperbridge.db")
        assert store.get_progress("backfill:hf") == "2026-06-09"
        assert store.count_papers() == 12
        store.close()

        serve_days(up, 4)
        before = len(up.requests)
        code = await commands.backfill(
            settings,
            start=FIRST,
            end=FIRST + timedelta(days=3),
            arxiv_categories=None,
            hf=True,
            restart=False,
        )
        assert code == 0
        assert days_asked(up, before) == ["2026-06-10", "2026-06-11"]
    err = capsys.readouterr().err
    assert "resuming after 2026-06-09: 2 days were done before" in err
    assert "4/4 days, 12 new papers" in err
    store = open_store("sqlite:///data/paperbridge.db")
    assert {s.paper.arxiv_id for s in store.listings.newest(100)} == set(ids)
    store.close()


class Quiet(Source):
    """A source with one paper-less listing a day, and no network: progress lines alone."""

    name = "quiet"
    requests = 0  # two a day, as a fetcher would count them

    async def poll(self, *, caught_up_to: date | None, today: date) -> AsyncIterator[Listing]:
        raise NotImplementedError
        yield  # pragma: no cover

    async def backfill(
        self, *, start: date, end: date, resume_from: date | None
    ) -> AsyncIterator[Listing]:
        day = start
        while day <= end:
            self.requests += 2
            yield Listing(day=day)
            day += timedelta(days=1)


async def test_a_full_history_reports_days_papers_and_the_time_left(store: Store) -> None:
    out = io.StringIO()
    source = Quiet()
    run = DayRun(
        store,
        source,
        "backfill:hf",
        interval=hf_interval(True),
        fetched=lambda: source.requests,
        out=out,
        report_every=100,
    )
    outcome = await run.run(date(2023, 5, 4), date(2026, 6, 12), restart=False, retry_failed=False)
    lines = out.getvalue().splitlines()
    assert outcome.days_total == outcome.days_done == 1136
    assert lines[0].startswith("backfill:hf: 1136 days to read (2023-05-04 to 2026-06-12)")
    assert lines[0].endswith("that takes at least 6 min")  # a request a day at 0.33 s
    assert lines[1].startswith("backfill:hf: 100/1136 days, 0 new papers, 0 merged")
    # Measured: two requests a day, so the rest (1,036 days) takes 2 * 1036 * 0.333 s.
    assert lines[1].endswith(f"about {duration(2 * 1036 * hf_interval(True))} to go")
    assert lines[-1].startswith("backfill:hf: 1136/1136 days") and "to go" not in lines[-1]
    assert store.get_progress("backfill:hf") == "2026-06-12"


# -- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "why"),
    [
        (["--arxiv", "cs.LG"], "backfill --arxiv needs --from DATE"),
        (["--arxiv", ",+", "--from", "2026-06-01"], "--arxiv needs categories"),
        (["--no-hf"], "--no-hf and no --arxiv: nothing to load"),
        (["--from", "2026-06-10", "--to", "2026-06-01"], "is after --to 2026-06-01"),
    ],
)
def test_arguments_are_checked_before_any_request(
    workdir: Path, capsys: pytest.CaptureFixture[str], args: list[str], why: str
) -> None:
    with FakeUpstream() as up:
        serve_days(up, 1)
        assert main(["--config", config_for(workdir / "c.toml", up), "backfill", *args]) == 2
        assert up.requests == []
    assert why in capsys.readouterr().err
