"""What each CLI command does, given validated settings. Printing happens here only."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from tqdm import tqdm

from adapters.stdout import dumps, format_paper, paper_json
from bridge.app import Bridge, build_fetcher, open_bridge
from bridge.config import Settings, redacted
from bridge.errors import BridgeError
from bridge.importer import ImportCounts, import_file
from bridge.poller import PollReport, store_listings
from bridge.scheduler import Scheduler
from bridge.search import search_store
from bridge.sources.arxiv import ArxivSource
from bridge.sources.base import Source
from bridge.sources.hf import FIRST_LISTING_DAY, HuggingFaceSource
from bridge.store import open_store
from bridge.web import create_web_app

log = logging.getLogger(__name__)


def check_config(settings: Settings) -> int:
    from bridge.search import validate_query

    for sub in settings.subscriptions:
        validate_query(sub.query, where=f"subscriptions.{sub.name}.query")
    print(json.dumps(redacted(settings), indent=2))
    print("config ok", file=sys.stderr)
    return 0


# -- poll ------------------------------------------------------------------------------------


def _print_report(report: PollReport, as_json: bool) -> None:
    if as_json:
        print(dumps([paper_json(p) for p in report.new]))
    else:
        for stored in report.new:
            print(format_paper(stored))
            print()
    for src in report.sources:
        status = f"error: {src.error}" if src.error else "ok"
        print(
            f"{src.source}: {len(src.new)} new, {len(src.revised)} revised, {src.merged} merged,"
            f" {src.skipped} unchanged, {src.problems} skipped records — {status}",
            file=sys.stderr,
        )


async def poll(settings: Settings, *, as_json: bool) -> int:
    async with open_bridge(settings) as bridge:
        report = await bridge.poller.poll_once()
    _print_report(report, as_json)
    return 0 if report.ok else 1


# -- search ----------------------------------------------------------------------------------


def search(settings: Settings, query: str, limit: int, page: int, as_json: bool) -> int:
    store = open_store(settings.store.database_url)
    try:
        results = search_store(store, query, limit=limit, offset=(max(page, 1) - 1) * limit)
    finally:
        store.close()
    if as_json:
        print(dumps([paper_json(r.stored, r.hits, r.why) for r in results.items]))
        return 0
    if not results.items:
        print(f"No stored paper matches {query!r}.", file=sys.stderr)
        return 0
    for result in results.items:
        print(format_paper(result.stored, why=result.why))
        print()
    print(f"{results.total} matching papers; showing {len(results.items)}.", file=sys.stderr)
    return 0


# -- import ----------------------------------------------------------------------------------


def import_files(settings: Settings, files: list[Path], *, announce: bool) -> int:
    store = open_store(settings.store.database_url)
    counts = ImportCounts()
    failed = 0
    try:
        with tqdm(unit=" papers", disable=None, file=sys.stderr) as bar:
            for path in files:
                bar.set_postfix_str(path.name, refresh=False)
                try:
                    import_file(store, path, counts, announce=announce, progress=bar.update)
                except OSError as exc:
                    failed += 1
                    log.error("import: cannot read %s: %s", path, exc.strerror or exc)
    finally:
        store.close()
    print(
        f"{counts.new} new, {counts.merged} merged, {counts.skipped} skipped (already known),"
        f" {counts.problems} unreadable records, {failed} unreadable files"
    )
    return 1 if failed else 0


# -- backfill --------------------------------------------------------------------------------


async def _backfill_source(
    bridge: Bridge, source: Source, job: str, start: date, end: date, restart: bool
) -> None:
    saved = None if restart else bridge.store.get_progress(job)
    resume_from = date.fromisoformat(saved) if saved else None
    total_days = (end - start).days + 1
    done_days = (resume_from - start).days + 1 if resume_from and resume_from >= start else 0
    with tqdm(
        total=total_days,
        initial=max(0, done_days),
        unit=" days",
        desc=job,
        disable=None,
        file=sys.stderr,
    ) as bar:
        async for listing in source.backfill(start=start, end=end, resume_from=resume_from):
            new, merged, _skipped = await store_listings(bridge.store, [listing], announce=False)
            if listing.day is not None and listing.complete:
                # Progress moves only after the day is stored: an interruption resumes here.
                await asyncio.to_thread(bridge.store.set_progress, job, listing.day.isoformat())
            bar.set_postfix(new=new, merged=merged, refresh=False)
            bar.update(1)


async def backfill(
    settings: Settings,
    *,
    start: date | None,
    end: date,
    arxiv_categories: str | None,
    hf: bool,
    restart: bool,
) -> int:
    async with open_bridge(settings) as bridge:
        # Backfill is many requests: stay well inside HF's 500 requests per 5 minutes.
        hf_host = urlsplit(settings.sources.hf.base_url).netloc
        hf_fetcher = build_fetcher(settings, bridge.store, extra_intervals={hf_host: 1.0})
        async with hf_fetcher:
            if hf:
                source = HuggingFaceSource(settings.sources.hf, hf_fetcher)
                await _backfill_source(
                    bridge, source, "backfill:hf", start or FIRST_LISTING_DAY, end, restart
                )
            if arxiv_categories:
                if start is None:
                    raise BridgeError("backfill --arxiv needs --from DATE (arXiv is large)")
                cats = [c for c in arxiv_categories.replace(",", "+").split("+") if c]
                arxiv_settings = settings.sources.arxiv.model_copy(update={"categories": cats})
                arxiv = ArxivSource(arxiv_settings, bridge.fetcher)
                job = f"backfill:arxiv:{'+'.join(cats)}:{start.isoformat()}"
                await _backfill_source(bridge, arxiv, job, start, end, restart)
    print(f"backfill done; the store holds {bridge.store.count_papers()} papers")
    return 0


# -- serve -----------------------------------------------------------------------------------


async def serve(settings: Settings, host: str, port: int) -> int:
    async with open_bridge(settings) as bridge:
        scheduler = Scheduler()
        for source in bridge.sources:
            minutes = {
                "hf": settings.sources.hf.poll_every_minutes,
                "arxiv": settings.sources.arxiv.poll_every_minutes,
            }[source.name]
            scheduler.every(f"poll:{source.name}", minutes, _poll_job(bridge, source.name))
        app = create_web_app(bridge)
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
        )
        server = uvicorn.Server(config)
        scheduler.start()
        log.info("serving on http://%s:%d (store %s)", host, port, _safe_url(settings))
        try:
            await server.serve()
        finally:
            scheduler.shutdown()
    return 0


def _poll_job(bridge: Bridge, source: str):  # type: ignore[no-untyped-def]
    async def job() -> None:
        try:
            report = await bridge.poller.poll_once(only=source)
        except BridgeError as exc:
            log.error("poll %s failed: %s", source, exc)
            return
        except Exception:
            # The service keeps running whatever one poll does; the traceback is for a bug report.
            log.exception("poll %s crashed", source)
            return
        for src in report.sources:
            log.info(
                "poll %s: %d new, %d revised, %d merged%s",
                src.source,
                len(src.new),
                len(src.revised),
                src.merged,
                f" (error: {src.error})" if src.error else "",
            )

    return job


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.store.database_url).render_as_string(hide_password=True)
