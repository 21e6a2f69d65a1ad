"""What each CLI command does, given validated settings. Printing happens here only."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from tqdm import tqdm

from bridge import metrics
from bridge.app import Bridge, build_fetcher, open_bridge
from bridge.backfill import DayRun, check_arguments, hf_interval, summary
from bridge.chat import ChatService
from bridge.config import Settings, redacted
from bridge.crashes import CrashWatch, explain, is_disk_full
from bridge.errors import BridgeError
from bridge.health import LOAD_MEANWHILE, HealthCheck, local_time, next_poll
from bridge.http_limits import LimitedHttpToolsProtocol
from bridge.importer import expand_paths, import_paths
from bridge.jobs import DeliveryJobs, schedule_poll
from bridge.ledger import build_ledger, sync_configured
from bridge.outputs import OutputContext, output_middleware, running_outputs
from bridge.paper_text import dumps, format_paper, paper_json
from bridge.poller import PollReport
from bridge.processes import StopSignals
from bridge.query.hints import empty_result_hints
from bridge.scheduler import Scheduler
from bridge.search import order_for, search_store
from bridge.sources.arxiv import ArxivSource
from bridge.sources.hf import FIRST_LISTING_DAY, HuggingFaceSource
from bridge.store import Store, open_store, safe_url, sqlite_file
from bridge.web import create_web_app

log = logging.getLogger(__name__)


def check_config(settings: Settings) -> int:
    # Everything serve checks before it starts (bridge.startup), queries, what posting needs
    # from the environment and each output's settings included, was checked when the settings
    # were loaded; a problem never gets here.
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
            f" {src.skipped} unchanged, {src.problems} unreadable records,"
            f" {src.unstorable} unstorable records — {status}",
            file=sys.stderr,
        )


async def poll(settings: Settings, *, as_json: bool) -> int:
    async with open_bridge(settings) as bridge:
        ledger = build_ledger(bridge.store, settings)
        # Digests declared in the settings exist before the poll, so they get its papers, and
        # the matches are queued right after: a `poll`, then `deliver` later (cron) loses none.
        await asyncio.to_thread(sync_configured, ledger, settings)
        report = await bridge.poller.poll_once()
        await ledger.intake()
    _print_report(report, as_json)
    return 0 if report.ok else 1


def _open_existing(settings: Settings) -> Store:
    """The store for a command that only reads it (search, status, resume).

    Run from another directory, the default relative SQLite path names a file that does not
    exist; creating it would answer from an empty store ("no stored paper matches") as if
    that were the truth. Commands that write (serve, poll, import, backfill, deliver) create it.
    """
    path = sqlite_file(settings.store.database_url)
    if path is not None and not path.is_file():
        raise BridgeError(
            f"no database at {path} — run paperbridge where serve runs, or pass --config"
        )
    return open_store(settings.store.database_url)


# -- search ----------------------------------------------------------------------------------


def search(
    settings: Settings, query: str, limit: int, page: int, as_json: bool, sort: str = "relevance"
) -> int:
    from bridge.errors import QueryError, SearchTooBroad
    from bridge.query import format_query_error, parse_query

    try:
        # A bad query is the user's to fix wherever they run it: said before the store opens.
        parse_query(query)
        store = _open_existing(settings)
        try:
            results = search_store(
                store, query, limit=limit, offset=(page - 1) * limit, order=order_for(sort)
            )
        finally:
            store.close()
    except QueryError as exc:
        print(f"paperbridge: bad query: {format_query_error(exc)}", file=sys.stderr)
        return 2
    except SearchTooBroad as exc:
        print(f"paperbridge: {exc}", file=sys.stderr)
        return 2
    if as_json:
        # An object, not a bare list: a script paging through needs the total to know when
        # to stop. A page past the end is an empty list of items here, not an error.
        page_json = {
            "total": results.total,
            "total_capped": results.total_capped,
            "page": page,
            "limit": limit,
            "items": [paper_json(r.stored, r.hits, r.why) for r in results.items],
        }
        print(json.dumps(page_json, ensure_ascii=False, indent=2))
        return 0
    if not results.items and results.total:
        pages = -(-results.total // limit)  # ceiling division
        counted = f"{results.total_text} matches, {pages}{'+' if results.total_capped else ''}"
        print(f"paperbridge: page {page} is past the last page ({counted} pages)", file=sys.stderr)
        return 1
    if not results.items:
        print(f"No stored paper matches {query!r}.", file=sys.stderr)
        for hint in empty_result_hints(query):
            print(f"  hint: {hint}", file=sys.stderr)
        return 0
    for result in results.items:
        print(format_paper(result.stored, why=result.why))
        print()
    first = (page - 1) * limit + 1
    last = first + len(results.items) - 1
    more = f"; next: --page {page + 1}" if last < results.total else ""
    print(f"showing {first}–{last} of {results.total_text} matching papers{more}", file=sys.stderr)
    return 0


# -- import ----------------------------------------------------------------------------------


def import_files(settings: Settings, paths: list[Path], *, announce: bool) -> int:
    files = expand_paths(paths)
    if not files:
        raise BridgeError("import: nothing to import: the directories given hold no listing files")
    # SIGINT (Ctrl-C) or SIGTERM: stop after the batch being stored, keep every batch stored
    # so far, say how far the import got and end as the signal would have (130, 143).
    with StopSignals() as stop:
        store = open_store(settings.store.database_url)
        try:
            if announce:
                # The digests in the settings exist before the papers are announced, so they
                # get them however the commands are ordered (import, then deliver or serve).
                sync_configured(build_ledger(store, settings), settings, prune=False)
            with tqdm(unit=" papers", disable=None, file=sys.stderr) as bar:
                counts = import_paths(
                    store, files, announce=announce, progress=bar.update, stop=stop
                )
        finally:
            store.close()
    fixed = f"; {counts.fields_fixed} fields dropped or cut to fit" if counts.fields_fixed else ""
    announced = f"{counts.announced} announced, " if announce else ""
    summary = (
        f"{announced}{counts.new} new, {counts.merged} merged,"
        f" {counts.skipped} skipped (already known),"
        f" {counts.problems} unreadable records, {counts.unstorable} unstorable records,"
        f" {counts.unreadable_files} unreadable files{fixed}"
    )
    if counts.files < len(files):
        where = f"{counts.files} of {len(files)} files"
        if counts.stopped_in is not None:
            path, papers = counts.stopped_in
            where += f" and {papers} papers of {path}"
        print(f"stopped after {where}: {summary}; run the same command again to continue")
        return stop.exit_code
    print(summary)
    return 1 if counts.unreadable_files else 0


# -- backfill --------------------------------------------------------------------------------


async def backfill(
    settings: Settings,
    *,
    start: date | None,
    end: date,
    arxiv_categories: str | None,
    hf: bool,
    restart: bool,
    retry_failed: bool = False,
) -> int:
    """Load past listings (bridge.backfill); 1 when some day failed and was skipped."""
    # Every argument is checked before the first request.
    cats = check_arguments(start, end, arxiv_categories=arxiv_categories, hf=hf)
    hf_start = max(start or FIRST_LISTING_DAY, FIRST_LISTING_DAY)
    if hf and ((start is not None and start < FIRST_LISTING_DAY) or end < FIRST_LISTING_DAY):
        # Earlier days would be asked for and found empty without a word.
        then = "loading them from there" if end >= FIRST_LISTING_DAY else "none in this range"
        print(
            f"backfill: Hugging Face Daily Papers start on {FIRST_LISTING_DAY}; {then}",
            file=sys.stderr,
        )
    has_token = settings.hf_token is not None
    interval = hf_interval(has_token)
    allowed = (
        "1,000 requests per 5 minutes with HF_TOKEN"
        if has_token
        else ("500 requests per 5 minutes without a token; set HF_TOKEN for 1,000")
    )
    outcomes = []
    async with open_bridge(settings) as bridge:
        hf_host = urlsplit(settings.sources.hf.base_url).netloc
        hf_fetcher = build_fetcher(settings, bridge.store, extra_intervals={hf_host: interval})
        async with hf_fetcher:
            if hf and hf_start <= end:
                print(f"backfill: Hugging Face allows {allowed}", file=sys.stderr)
                source = HuggingFaceSource(settings.sources.hf, hf_fetcher)
                run = DayRun(
                    bridge.store,
                    source,
                    "backfill:hf",
                    interval=interval,
                    fetched=lambda: hf_fetcher.requests,
                )
                outcome = await run.run(hf_start, end, restart=restart, retry_failed=retry_failed)
                outcomes.append(outcome)
            if cats and start is not None:
                arxiv_settings = settings.sources.arxiv.model_copy(update={"categories": cats})
                arxiv = ArxivSource(arxiv_settings, bridge.fetcher)
                job = f"backfill:arxiv:{'+'.join(cats)}:{start.isoformat()}"
                run = DayRun(
                    bridge.store,
                    arxiv,
                    job,
                    interval=settings.sources.arxiv.min_interval_seconds,
                    fetched=lambda: bridge.fetcher.requests,
                )
                outcome = await run.run(start, end, restart=restart, retry_failed=retry_failed)
                outcomes.append(outcome)
        total = await asyncio.to_thread(bridge.store.count_papers)
    text, ok = summary(outcomes, "paperbridge backfill --retry-failed (with the same --from/--to)")
    if text:
        print(text, file=sys.stderr)
    print(f"backfill done; the store holds {total} papers")
    return 0 if ok else 1


# -- serve -----------------------------------------------------------------------------------


def _listen(host: str, port: int) -> socket.socket:
    """The HTTP socket, bound before anything else starts; BridgeError if it cannot be.

    Left to uvicorn, the bind comes after the scheduler and the outputs started, and a busy
    port ends in uvicorn's sys.exit with jobs cancelled mid-flight: tracebacks, exit 3, and
    "serving on" already logged. Bound first, a busy port is one line and nothing ran.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # As uvicorn does: a restart may bind while the last run's connections sit in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        raise BridgeError(f"cannot listen on {_host_port(host, port)}: {reason}") from None
    return sock


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def serve(settings: Settings, host: str, port: int) -> int:
    sock = _listen(host, port)
    port = sock.getsockname()[1]  # the port given, or the one chosen for --port 0
    try:
        return await _serve(settings, sock, host, port)
    except Exception as exc:
        # Opening the store, migrating it or saving the configured digests on a full disk:
        # one line naming the path, not a driver's statement dump or a traceback.
        if is_disk_full(exc):
            raise BridgeError(
                f"serve cannot run: {explain(exc, settings.store.database_url)}"
            ) from None
        raise


async def _serve(settings: Settings, sock: socket.socket, host: str, port: int) -> int:
    async with contextlib.AsyncExitStack() as stack:
        stack.enter_context(contextlib.closing(sock))
        bridge = await stack.enter_async_context(open_bridge(settings))
        # Crashed jobs are logged, recorded and shown by every health view (bridge.crashes).
        watch = CrashWatch(bridge.store, settings.store.database_url)
        health = HealthCheck(
            settings, bridge.store, [s.name for s in bridge.sources], watch.open_crashes
        )
        scheduler = Scheduler(observer=watch)
        # Deliveries (bridge/ledger.py): digests and each poll run once across processes.
        ledger = build_ledger(bridge.store, settings)
        await asyncio.to_thread(sync_configured, ledger, settings)
        context = OutputContext(
            settings,
            bridge.store,
            ledger,
            ChatService(bridge.store, ledger, settings),
            bridge=bridge,
            health=health,
        )
        # Every output, the feeds and the page included, is an installed plug-in.
        outputs = await stack.enter_async_context(running_outputs(context, listen=True))
        for source in bridge.sources:
            schedule_poll(scheduler, ledger, settings, source.name, _poll_job(bridge, source.name))
        DeliveryJobs(scheduler, ledger).install()
        routes = [route for output in outputs for route in output.routes()]
        app = create_web_app(
            bridge, extra_routes=routes, middleware=output_middleware(outputs), health=health
        )
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            lifespan="off",
            # Bounded headers, requests that must arrive in time, a bounded number of sockets.
            http=LimitedHttpToolsProtocol,
        )
        # A search thread holds the GIL while it checks papers; switching every 1 ms (not 5)
        # lets the event loop answer /healthz and feeds in between: /healthz p99 beside 8
        # worst-case searches went from 83 to 39-52 ms (bench/worst_case.py, RESULTS.md).
        sys.setswitchinterval(0.001)
        server = _GracefulServer(config)
        scheduler.start()
        log.info(
            "serving on http://%s (store %s)",
            _host_port(host, port),
            safe_url(settings.store.database_url),
        )
        try:
            await server.serve(sockets=[sock])
        finally:
            await scheduler.stop()
    log.info("stopped")
    return 0


class _GracefulServer(uvicorn.Server):
    """uvicorn, but a SIGTERM or SIGINT only ends ``serve()``.

    Plain uvicorn raises the signal again once its own shutdown is done, and the default
    handler then ends the process before the rest of ``serve`` cleans up: chat connections
    closed, the scheduler stopped, the store closed. Here the signal just makes ``serve()``
    return, and the command exits 0 after everything has been closed.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _poll_job(bridge: Bridge, source: str):  # type: ignore[no-untyped-def]
    async def job() -> None:
        try:
            report = await bridge.poller.poll_once(only=source)
        except Exception:
            # A crash, not a failed fetch (the poller records those): the scheduler's observer
            # logs it and records it as a failed poll of the source (bridge.crashes).
            metrics.POLLS.inc(source=source, outcome="error")
            metrics.ERRORS.inc(where=f"poll:{source}")
            raise
        for src in report.sources:
            metrics.POLLS.inc(source=src.source, outcome="error" if src.error else "ok")
            metrics.PAPERS.inc(len(src.new), source=src.source)
            if src.error:
                metrics.ERRORS.inc(where=f"poll:{src.source}")
                # The failure itself was logged by the poller; say what happens next.
                now = datetime.now(UTC)
                upcoming = next_poll(bridge.settings, src.source, now, now)
                log.warning(
                    "poll %s: next poll at %s; %s",
                    src.source,
                    local_time(upcoming, bridge.settings.time_zone),
                    LOAD_MEANWHILE,
                )
                continue
            log.info(
                "poll %s: %d new, %d revised, %d merged",
                src.source,
                len(src.new),
                len(src.revised),
                src.merged,
            )

    return job


# -- status, deliver, migrate-data -------------------------------------------------------------


def status(settings: Settings, *, as_json: bool) -> int:
    from bridge.status import format_status, status_report

    store = _open_existing(settings)
    try:
        report = status_report(store, settings)
    finally:
        store.close()
    print(json.dumps(report, ensure_ascii=False, indent=2) if as_json else format_status(report))
    return 0


async def deliver(settings: Settings, *, now: bool) -> int:
    """One sweep of the ledger: new matches in, due digests out (``now``: everything pending)."""
    store = open_store(settings.store.database_url)
    try:
        ledger = build_ledger(store, settings)
        await asyncio.to_thread(sync_configured, ledger, settings)
        context = OutputContext(settings, store, ledger, ChatService(store, ledger, settings))
        async with running_outputs(context, listen=False):
            report = await ledger.sweep(force=now)
    finally:
        store.close()
    outcomes: dict[str, int] = {}
    for result in report.digests.values():
        outcomes[result] = outcomes.get(result, 0) + 1
    summary = ", ".join(f"{n} {result}" for result, n in sorted(outcomes.items())) or "none due"
    print(
        f"{report.enqueued} queued, {report.recovered} recovered; digests: {summary}",
        file=sys.stderr,
    )
    return 1 if outcomes.get("retry") or outcomes.get("permanent") else 0


def resume(settings: Settings, given: str) -> int:
    """Unpause the destination ``given`` names: its id, or its name as ``status`` shows it."""
    from datetime import UTC, datetime

    from bridge.store.ledger import LedgerStore

    store = _open_existing(settings)
    try:
        db = LedgerStore(store)
        dest = db.get_destination(given)
        if dest is None:
            known = db.list_destinations()
            # `status` shows destinations by name or kind:address (discord-webhook:LAB_HOOK,
            # stdout); people copy that, not the hashed id beside it.
            named = [d for d in known if given and given in (d.name, d.shown_as)]
            if len(named) != 1:
                problem = "names several destinations" if named else "is no destination"
                listed = "; ".join(f"{d.label} ({d.id})" for d in named or known) or "none"
                print(f"paperbridge: {given!r} {problem}; known: {listed}", file=sys.stderr)
                return 1
            dest = named[0]
        requeued = db.resume_destination(dest.id, datetime.now(UTC))
    finally:
        store.close()
    print(f"{dest.label} resumed ({dest.id}); {requeued} papers queued again", file=sys.stderr)
    return 0


def migrate_data(source_url: str, target_url: str, *, batch: int) -> int:
    from bridge.datamove import copy_database

    with tqdm(unit=" rows", disable=None, file=sys.stderr) as bar:

        def progress(table: str, rows: int) -> None:
            bar.set_postfix_str(table, refresh=False)
            bar.update(rows)

        copied = copy_database(source_url, target_url, batch=batch, progress=progress)
    for table, rows in copied.items():
        print(f"{table}: {rows} rows")
    print(f"copied into {safe_url(target_url)}", file=sys.stderr)
    return 0
