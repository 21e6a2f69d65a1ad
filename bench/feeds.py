"""Feed-serving benchmark: a cached feed (200 and 304) against a bare ASGI app, small and 1M stores.

One uvicorn worker pinned to CPU 0 serves, exactly as `paperbridge serve` builds its app;
wrk (Debian's) pinned to CPU 1 loads it. The baseline is a bare ASGI app returning the same
bytes and headers from the same uvicorn on the same core, measured in the same run; the same
bare app behind serve's HTTP limits (bridge/http_limits.py) shows what they cost. Then the
same feed is served from a store of 1M papers, and the cold (uncached) render is timed on both.

    .venv/bin/python bench/feeds.py [--papers 1000000] [--duration 3] [--rounds 9]

The 1M-paper store is built once into bench/out/ (a few minutes) and reused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from adapters.atom import FeedSite  # noqa: E402
from adapters.atom.atom import feed_updated, render_atom  # noqa: E402
from adapters.atom.catalog import Catalog, load_entries  # noqa: E402
from bridge.app import open_bridge  # noqa: E402
from bridge.config import Settings  # noqa: E402
from bridge.http_limits import LimitedHttpToolsProtocol  # noqa: E402
from bridge.models import Paper  # noqa: E402
from bridge.sources.hf_parse import parse_api  # noqa: E402
from bridge.store import open_store  # noqa: E402
from bridge.web import create_web_app  # noqa: E402

OUT = ROOT / "bench" / "out"
HF_FIXTURE = ROOT / "tests" / "fixtures" / "hf" / "daily_papers_api_limit30_2026-06-13.json"
SUBSCRIPTION = {"name": "world", "query": "world model"}
WORDS = (
    "model learning neural network training data language vision reasoning agent policy "
    "transformer attention graph diffusion robust efficient scaling benchmark evaluation "
    "retrieval generation alignment reward optimization sparse memory token context"
).split()


# -- stores ------------------------------------------------------------------------------------


def settings_for(database_url: str) -> Settings:
    return Settings.model_validate(
        {
            "store": {"database_url": database_url},
            # Never polled here: the server only serves.
            "sources": {"hf": {"base_url": "http://127.0.0.1:9"}},
            "subscriptions": [SUBSCRIPTION],
        }
    )


def synthetic(n: int) -> Paper:
    words = [WORDS[(n * 7 + k * 13) % len(WORDS)] for k in range(70)]
    return Paper(
        arxiv_id=f"{2000 + n // 90000:04d}.{n % 90000 + 10000:05d}",
        title=" ".join(words[:10]).capitalize(),
        abstract=" ".join(words[10:]).capitalize() + ".",
        authors=("Ada Lovelace", "Alan Turing", "Grace Hopper"),
        source="arxiv",
        listed_on=date(2026, 6, 12),
        categories=("cs.LG",),
    )


def build_store(path: Path, papers: int) -> str:
    """A store with the 30 real HF papers announced last, after ``papers`` synthetic ones."""
    url = f"sqlite:///{path}"
    if path.exists():
        store = open_store(url)
        count = store.count_papers()
        store.close()
        if count == papers + 30:
            return url
        path.unlink()
    store = open_store(url)
    start = time.perf_counter()
    seen = datetime(2026, 6, 1, tzinfo=UTC)
    for begin in range(0, papers, 10_000):
        batch = [synthetic(n) for n in range(begin, min(papers, begin + 10_000))]
        store.add_papers(batch, now=seen + timedelta(seconds=begin // 10_000))
        if begin and begin % 100_000 == 0:
            print(f"  {begin:,} papers stored ({time.perf_counter() - start:.0f} s)", flush=True)
    store.add_papers(parse_api(HF_FIXTURE.read_bytes(), str(HF_FIXTURE)).papers)
    store.close()
    print(f"  built {path.name}: {papers + 30:,} papers in {time.perf_counter() - start:.0f} s")
    return url


# -- the two servers ---------------------------------------------------------------------------


def uvicorn_config(app: Any, port: int, http: Any = "auto") -> uvicorn.Config:
    # bridge.commands.serve passes http=LimitedHttpToolsProtocol; "auto" is uvicorn's own
    # httptools protocol, the floor.
    return uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
        http=http,
    )


async def serve_feed(database_url: str, port: int) -> None:
    async with open_bridge(settings_for(database_url)) as bridge:
        # Exactly what bridge.commands.serve builds.
        feeds = FeedSite(bridge)
        app = create_web_app(
            bridge,
            extra_routes=feeds.routes(),
            middleware=feeds.middleware(),
            fast_paths=feeds.fast_paths(),
        )
        await uvicorn.Server(uvicorn_config(app, port, LimitedHttpToolsProtocol)).serve()


def bare_app(body: bytes, headers: dict[str, str]) -> Any:
    """The floor: an ASGI callable that answers every request with fixed bytes (or 304)."""
    raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    full = [*raw, (b"content-length", str(len(body)).encode())]
    etag = headers["etag"].encode()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        for name, value in scope["headers"]:
            if name == b"if-none-match" and value == etag:
                await send({"type": "http.response.start", "status": 304, "headers": raw})
                await send({"type": "http.response.body", "body": b""})
                return
        await send({"type": "http.response.start", "status": 200, "headers": full})
        await send({"type": "http.response.body", "body": body})

    return app


async def serve_bare(body: bytes, headers: dict[str, str], port: int, http: Any) -> None:
    await uvicorn.Server(uvicorn_config(bare_app(body, headers), port, http)).serve()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """This script in server mode, pinned to CPU 0, as a separate process."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        command = [sys.executable, __file__, *args, "--port", str(self.port)]
        if shutil.which("taskset"):
            command = ["taskset", "-c", "0", *command]
        self.proc = subprocess.Popen(command)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(self.url("/healthz"), timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("benchmark server did not start")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu_seconds(self) -> float:
        """User plus system CPU the server has used (taskset execs it: the pid is the same)."""
        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


# -- load --------------------------------------------------------------------------------------


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url: str, seconds: int, connections: int, headers: dict[str, str]) -> dict[str, float]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "1", *command]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rps is None or p99 is None or requests is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "requests": float(requests.group(1)),
        "p99_ms": _ms(*p99.groups()),
        "errors": float(errors.group(1)) if errors else 0.0,
    }


# -- cold render ------------------------------------------------------------------------------


def cold_render_ms(database_url: str, runs: int = 5) -> dict[str, float]:
    """Store query plus Atom render, uncached, for the all-papers and a subscription feed."""
    settings = settings_for(database_url)
    catalog = Catalog(settings)
    store = open_store(database_url)
    out: dict[str, float] = {}
    created = store.created_at()
    try:
        for name, spec in (("all", catalog.all), ("subscription", catalog.subscription("world"))):
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                entries = load_entries(store, spec)
                render_atom(spec, entries, "http://bench", feed_updated(entries, created))
                times.append(time.perf_counter() - start)
            out[name] = min(times) * 1000
        times = []
        for _ in range(runs * 4):
            start = time.perf_counter()
            store.data_version()
            times.append(time.perf_counter() - start)
        out["data_version"] = min(times) * 1000
    finally:
        store.close()
    return out


# -- the run -----------------------------------------------------------------------------------


class Case:
    """One URL on one server, with or without the If-None-Match that makes it a 304."""

    def __init__(self, label: str, server: Server, path: str, conditional: bool) -> None:
        self.label = label
        self.server = server
        self.url = server.url(path)
        first = httpx.get(self.url)
        first.raise_for_status()
        self.bytes = len(first.content)
        self.headers = {"If-None-Match": first.headers["etag"]} if conditional else {}
        self.runs: list[dict[str, float]] = []

    def run(self, args: argparse.Namespace, seconds: int | None = None) -> None:
        cpu = self.server.cpu_seconds()
        result = wrk(self.url, seconds or args.duration, args.connections, self.headers)
        # Server CPU per request: unlike req/s, it does not depend on how much of the core
        # the machine's other processes left us, so it is the fair figure on a shared host.
        cpu_us = (self.server.cpu_seconds() - cpu) / result["requests"] * 1e6
        result["cpu_us"] = cpu_us
        result["core_rps"] = 1e6 / cpu_us
        self.runs.append(result)

    def median(self, key: str) -> float:
        return statistics.median(run[key] for run in self.runs)


def run(args: argparse.Namespace) -> None:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress, when piped
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    OUT.mkdir(parents=True, exist_ok=True)
    print(
        f"cpus: {os.cpu_count()}; every server on CPU 0, wrk -t1 -c{args.connections} on CPU 1;"
        f" {args.rounds} interleaved rounds of {args.duration} s per case, medians shown"
    )
    small_url = build_store(OUT / "feeds-small.db", 200)
    large_url = build_store(OUT / f"feeds-{args.papers}.db", args.papers)
    path = "/feeds/all.atom"
    servers: list[Server] = []
    try:
        small = Server("--serve", "feed", "--db", small_url)
        servers.append(small)
        sample = OUT / "feed-sample.atom"
        response = httpx.get(small.url(path))
        sample.write_bytes(response.content)
        keep = ("content-type", "etag", "last-modified", "cache-control", "vary")
        sample.with_suffix(".json").write_text(json.dumps({k: response.headers[k] for k in keep}))
        bare = Server("--serve", "bare", "--sample", str(sample))
        limited = Server("--serve", "bare-limited", "--sample", str(sample))
        large = Server("--serve", "feed", "--db", large_url)
        servers += [bare, limited, large]
        big = f"{args.papers + 30:,}"
        cases = {
            "bare 200": Case("bare ASGI app, same bytes, 200", bare, path, False),
            "limited 200": Case("bare app, serve's HTTP limits, 200", limited, path, False),
            "feed 200": Case("cached feed, 230 papers, 200", small, path, False),
            "large 200": Case(f"cached feed, {big} papers, 200", large, path, False),
            "bare 304": Case("bare ASGI app, 304", bare, path, True),
            "limited 304": Case("bare app, serve's HTTP limits, 304", limited, path, True),
            "feed 304": Case("cached feed, 230 papers, 304", small, path, True),
            "large 304": Case(f"cached feed, {big} papers, 304", large, path, True),
        }
        for case in cases.values():
            case.run(args, seconds=2)  # warm-up: caches filled, connections settled
            case.runs.clear()
        # Interleaved rounds in a shuffled order: a neighbour's burst on a shared machine
        # falls on every case alike instead of on whichever ran at that moment.
        order = list(cases.values())
        shuffler = random.Random(4)
        for _ in range(args.rounds):
            shuffler.shuffle(order)
            for case in order:
                case.run(args)
    finally:
        for server in servers:
            server.stop()

    print()
    print(
        "load average (1, 5, 15 min) after the runs: "
        + " ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    print(f"{'case':<40} {'req/s':>8} {'p99 ms':>8} {'server CPU/req':>15} {'req/s per core':>15}")
    for case in cases.values():
        print(
            f"{case.label:<40} {case.median('rps'):>8,.0f} {case.median('p99_ms'):>8.2f}"
            f" {case.median('cpu_us'):>12.0f} us {case.median('core_rps'):>15,.0f}"
        )
    print(f"(body: {cases['feed 200'].bytes:,} bytes of Atom, 50 entries)")

    def ratio(a: str, b: str) -> str:
        wall = cases[a].median("rps") / cases[b].median("rps")
        core = cases[a].median("core_rps") / cases[b].median("core_rps")
        return f"{wall:>5.0%} of wall req/s, {core:>5.0%} of req/s per core"

    print()
    print(f"cached feed 200 vs bare 200:  {ratio('feed 200', 'bare 200')}")
    print(f"cached feed 304 vs bare 304:  {ratio('feed 304', 'bare 304')}")
    print(f"cached feed 304 vs bare 200:  {ratio('feed 304', 'bare 200')}")
    print(f"serve's HTTP limits, 200:     {ratio('limited 200', 'bare 200')}")
    print(f"serve's HTTP limits, 304:     {ratio('limited 304', 'bare 304')}")
    print(f"1M store vs small store, 200: {ratio('large 200', 'feed 200')}")
    print(f"1M store vs small store, 304: {ratio('large 304', 'feed 304')}")
    cold_small, cold_large = cold_render_ms(small_url), cold_render_ms(large_url)
    print()
    print(f"{'uncached (cold) render, best of 5':<40} {'230 papers':>12} {big + ' papers':>18}")
    for name in ("all", "subscription", "data_version"):
        print(f"{name:<40} {cold_small[name]:>9.2f} ms {cold_large[name]:>15.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1_000_000)
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds per case")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--serve", choices=("feed", "bare", "bare-limited"), help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve == "feed":
        asyncio.run(serve_feed(args.db, args.port))
    elif args.serve in ("bare", "bare-limited"):
        headers = json.loads(args.sample.with_suffix(".json").read_text())
        http = LimitedHttpToolsProtocol if args.serve == "bare-limited" else "auto"
        asyncio.run(serve_bare(args.sample.read_bytes(), headers, args.port, http))
    else:
        run(args)


if __name__ == "__main__":
    main()
