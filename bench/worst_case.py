"""Worst-case search benchmark: a real `paperbridge serve` over 1M papers, 8 clients asking the
queries the index cannot narrow and the deepest pages, and ``/healthz`` probed meanwhile.

The store is the one ``bench/search.py`` builds and caches (``bench/out/search-<N>.db``; built
here if missing). One run:

1. Baselines, server idle: ``/healthz`` latency, and an ordinary search (``/search?q=...``).
2. Load: ``--clients`` processes-worth of concurrent clients (asyncio tasks in a process of
   their own) each loop for ``--duration`` seconds over the worst-case queries of
   ``WORST``, on the web page (20 results, newest first, pages up to 250), while this process
   asks ``/healthz`` every ``--probe-every`` seconds.

Printed: per query, the answers (200 / 422 too broad / 503 busy), the search's own time in its
worker (the page's ``Server-Timing``, queueing left out) and the latency a client saw; the
slowest search's server time (goal: at most 250 ms) and ``/healthz`` p50/p99 under load against
the idle baseline (goal: p99 at most 50 ms).

    .venv/bin/python bench/worst_case.py [--papers 1000000] [--duration 30] [--clients 8]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from search import OUT, build  # noqa: E402

from tests.fake_upstream import unused_port  # noqa: E402

# (query, page): what the index cannot narrow, what it narrows to nearly everything, and the
# deepest page the web offers.
WORST = [
    ("upvotes>=0 -the", 250),  # the index cannot narrow: every paper read and checked
    ("upvotes>=0 -the", 1),
    ("upvotes>=10 OR diffusion", 250),  # OR with upvotes: cannot narrow either
    ("upvotes>=1000000", 1),  # exact, but a scan of every paper for upvotes none has
    ("the", 250),  # the commonest word, deepest page
    ("model -the", 250),  # two common words' doclists walked against each other
    ('"in the"', 250),  # a phrase of two common words
    ("cat:cs.*", 250),  # nearly every paper, deepest page
]
ORDINARY = ("diffusion model", 1)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def start_serve(database: Path, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    config = workdir / "worst_case.toml"
    config.write_text(
        f'[store]\ndatabase_url = "sqlite:///{database}"\n'
        "[sources.hf]\nenabled = false\n[sources.arxiv]\nenabled = false\n"
        '[log]\nlevel = "WARNING"\n'
    )
    command = [sys.executable, "-m", "bridge", "--config", str(config), "serve"]
    proc = subprocess.Popen([*command, "--port", str(port)], cwd=workdir)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code < 600:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    sys.exit("serve did not answer /healthz within 120 s")


class Probe:
    """``/healthz`` on a new connection each time, as a monitoring system asks it."""

    def __init__(self, port: int) -> None:
        self.port = port

    def once(self) -> float:
        started = time.perf_counter()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request("GET", "/healthz")
            connection.getresponse().read()
        finally:
            connection.close()
        return time.perf_counter() - started

    def for_seconds(self, seconds: float, every: float) -> list[float]:
        times: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            times.append(self.once())
            time.sleep(max(0.0, every - times[-1]))
        return times


def search_url(port: int, query: str, page: int) -> str:
    return str(httpx.URL(f"http://127.0.0.1:{port}/search", params={"q": query, "page": page}))


async def _client(
    port: int, number: int, until: float, results: list[tuple[str, int, int, float, float]]
) -> None:
    async with httpx.AsyncClient(timeout=120) as client:
        turn = number
        while time.monotonic() < until:
            query, page = WORST[turn % len(WORST)]
            turn += 1
            started = time.perf_counter()
            response = await client.get(search_url(port, query, page))
            latency = time.perf_counter() - started
            timing = response.headers.get("server-timing", "")
            server = float(timing.split("dur=")[1]) / 1000 if "dur=" in timing else float("nan")
            results.append((query, page, response.status_code, server, latency))


def load(port: int, clients: int, seconds: float, queue: Any) -> None:
    """The clients, in a process of their own so their work does not delay the probe."""
    results: list[tuple[str, int, int, float, float]] = []
    until = time.monotonic() + seconds

    async def run() -> None:
        await asyncio.gather(*(_client(port, n, until, results) for n in range(clients)))

    asyncio.run(run())
    queue.put(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1_000_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--probe-every", type=float, default=0.05)
    args = parser.parse_args()

    OUT.mkdir(parents=True, exist_ok=True)
    database = OUT / f"search-{args.papers}.db"
    if not database.exists():
        print(f"building {database.name} (once) ...", flush=True)
        build(database, args.papers, workers=2)
    print(f"cpus: {os.cpu_count()}; load average at start: {os.getloadavg()}", flush=True)
    port = unused_port()
    with tempfile.TemporaryDirectory() as workdir:
        proc = start_serve(database, port, Path(workdir))
        try:
            report(args, port)
        finally:
            stopping = time.perf_counter()
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            print(f"serve stopped in {time.perf_counter() - stopping:.1f} s")
    print(f"load average at the end: {os.getloadavg()}")


def report(args: argparse.Namespace, port: int) -> None:
    probe = Probe(port)
    for query, page in [*WORST, ORDINARY]:  # warm the page cache and the process's caches
        httpx.get(search_url(port, query, page), timeout=120)
    idle = probe.for_seconds(5, args.probe_every)
    ordinary: list[float] = []
    ordinary_server: list[float] = []
    with httpx.Client(timeout=60) as client:
        for _ in range(20):
            started = time.perf_counter()
            response = client.get(search_url(port, *ORDINARY))
            ordinary.append(time.perf_counter() - started)
            timing = response.headers["server-timing"]
            ordinary_server.append(float(timing.split("dur=")[1]) / 1000)

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    clients = context.Process(target=load, args=(port, args.clients, args.duration, queue))
    clients.start()
    busy = probe.for_seconds(args.duration, args.probe_every)
    results: list[tuple[str, int, int, float, float]] = queue.get()
    clients.join()

    ms = 1000.0
    print(
        f"\n{args.clients} clients for {args.duration:.0f} s over {args.papers:,} papers:"
        f" {len(results)} searches"
    )
    by_query: dict[tuple[str, int], list[tuple[int, float, float]]] = defaultdict(list)
    for query, page, status, server, latency in results:
        by_query[(query, page)].append((status, server, latency))
    print(f"{'query':34} {'answers':>22} {'server max':>11} {'client p50':>11} {'client max':>11}")
    for (query, page), rows in by_query.items():
        statuses = defaultdict(int)
        for status, _, _ in rows:
            statuses[status] += 1
        answers = " ".join(f"{n}x{status}" for status, n in sorted(statuses.items()))
        servers = [s for _, s, _ in rows if s == s]
        latencies = [latency for _, _, latency in rows]
        print(
            f"{query + ' p' + str(page):34} {answers:>22}"
            f" {max(servers, default=float('nan')) * ms:9.1f} ms"
            f" {statistics.median(latencies) * ms:8.1f} ms {max(latencies) * ms:8.1f} ms"
        )
    servers = [server for *_, server, _ in results if server == server]
    latencies = [latency for *_, latency in results]
    print(
        f"\nslowest search, server time: {max(servers) * ms:.1f} ms (goal <= 250 ms);"
        f" p50 {statistics.median(servers) * ms:.1f} ms. Baseline, server idle,"
        f" {ORDINARY[0]!r}: server time p50 {statistics.median(ordinary_server) * ms:.1f} ms,"
        f" max {max(ordinary_server) * ms:.1f} ms; client p50"
        f" {statistics.median(ordinary) * ms:.1f} ms, max {max(ordinary) * ms:.1f} ms"
    )
    print(
        f"client latency under load: p50 {statistics.median(latencies) * ms:.1f} ms,"
        f" p99 {percentile(latencies, 0.99) * ms:.1f} ms, max {max(latencies) * ms:.1f} ms"
    )
    print(
        f"/healthz p50 / p99 / max: idle {statistics.median(idle) * ms:.1f} /"
        f" {percentile(idle, 0.99) * ms:.1f} / {max(idle) * ms:.1f} ms ({len(idle)} probes);"
        f" under load {statistics.median(busy) * ms:.1f} / {percentile(busy, 0.99) * ms:.1f} /"
        f" {max(busy) * ms:.1f} ms ({len(busy)} probes) (goal p99 <= 50 ms)"
    )


if __name__ == "__main__":
    main()
