"""Search requests per second of one and of two `paperbridge serve` processes on one PostgreSQL.

Several processes on one database is how paperbridge scales past one process (README,
"Several processes on one database"): each `serve` is a whole server with its own port, so
two of them are two ports. The store is the PostgreSQL schema bench/search_backends.py builds
(``pb_bench_<N>`` in ``--postgres``; build it first with ``--build-only``).

Load: Debian's wrk, one thread per server, each connection walking a list of ``/search?q=…``
URLs (every query kind of bench/search_backends.py, pages 1 and 50), so the runs see the same
mix. One server gets ``--connections``; two servers get half each, so both runs offer the same
concurrency. wrk is pinned to the last CPU (taskset) when there is more than one, the servers
and PostgreSQL are not pinned. Printed for each run: requests/s, the non-2xx answers, p99, the
CPU seconds per request of the servers, of the PostgreSQL processes serving this database, of
wrk and of the whole machine (from /proc/stat, so anything else running is in it), and the
load average; then the ratio.

    .venv/bin/python bench/serve_processes.py [--papers 100000] [--distinct D]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--seconds 15]
        [--connections 8] [--rounds 2]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from search_backends import DEFAULT_POSTGRES, kinds, postgres_url, store_name  # noqa: E402

WRK_SCRIPT = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Serve:
    """One `paperbridge serve` on its own port, with the given settings file."""

    def __init__(self, config: Path, log: Path) -> None:
        self.port = free_port()
        env = {**os.environ, "PAPERBRIDGE_CONFIG": str(config)}
        command = [sys.executable, "-m", "bridge", "serve", "--port", str(self.port)]
        self.log = log.open("ab")
        self.proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited with {self.proc.returncode}; see {log}")
            try:
                httpx.get(self.url("/healthz"), timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"serve did not start; see {log}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def cpu_seconds(self) -> float:
        times = psutil.Process(self.proc.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)
        self.log.close()


def postgres_cpu_seconds(database_url: str) -> float:
    """CPU seconds used so far by the PostgreSQL server processes serving ``database_url``'s
    database (this machine's server; other databases' work left out)."""
    import psycopg

    with psycopg.connect(database_url.split("?")[0], autocommit=True) as conn:
        pids = [
            pid
            for (pid,) in conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            )
        ]
    total = 0.0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot, from /proc/stat."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(value) for value in fields]
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK")


def wrk_command(url: str, seconds: int, connections: int, script: Path) -> list[str]:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script)]
    command.append(url)
    cpus = os.cpu_count() or 1
    if cpus > 1 and shutil.which("taskset"):
        command = ["taskset", "-c", str(cpus - 1), *command]
    return command


def parse_wrk(out: str) -> dict[str, float]:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rps is None or requests is None or p99 is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    return {
        "rps": float(rps.group(1)),
        "requests": float(requests.group(1)),
        "p99_ms": float(p99.group(1)) * scale,
        "errors": float(errors.group(1)) if errors else 0.0,
    }


def load_servers(
    servers: list[Serve], seconds: int, connections: int, script: Path, database_url: str
) -> dict[str, float]:
    """All servers loaded at once, ``connections`` shared among them; summed figures."""
    share = max(1, connections // len(servers))
    server_cpu = sum(s.cpu_seconds() for s in servers)
    postgres = postgres_cpu_seconds(database_url)
    machine = machine_cpu_seconds()
    children = sum(os.times()[2:4])  # wrk's CPU: reaped children's times (servers run on)
    procs = [
        subprocess.Popen(
            wrk_command(s.url("/"), seconds, share, script), stdout=subprocess.PIPE, text=True
        )
        for s in servers
    ]
    results = [parse_wrk(proc.communicate()[0]) for proc in procs]
    wrk_cpu = sum(os.times()[2:4]) - children
    machine = machine_cpu_seconds() - machine
    server_cpu = sum(s.cpu_seconds() for s in servers) - server_cpu
    # The pool's connections stay open between runs, so their CPU counts whole.
    postgres = postgres_cpu_seconds(database_url) - postgres
    requests = sum(r["requests"] for r in results)
    return {
        "rps": sum(r["rps"] for r in results),
        "requests": requests,
        "errors": sum(r["errors"] for r in results),
        "p99_ms": max(r["p99_ms"] for r in results),
        "server_cpu_ms": server_cpu / requests * 1000,
        "machine_cpu_ms": machine / requests * 1000,
        "machine_busy": machine / seconds,
        "wrk_cpu_ms": wrk_cpu / requests * 1000,
        "postgres_cpu_ms": postgres / requests * 1000,
    }


def write_config(directory: Path, database_url: str) -> Path:
    config = directory / "config.toml"
    config.write_text(
        "\n".join(
            [
                "[store]",
                f'database_url = "{database_url}"',
                "[sources.hf]",
                "enabled = false",
                "[log]",
                'level = "WARNING"',
                "",
            ]
        )
    )
    return config


def write_paths(directory: Path, papers: int, count: int) -> tuple[Path, int]:
    lines = []
    for queries in kinds(count, papers).values():
        for query, page in queries:
            params = {"q": query, **({"page": str(page)} if page > 1 else {})}
            lines.append("/search?" + urlencode(params))
    paths = directory / "paths.txt"
    paths.write_text("\n".join(lines) + "\n")
    script = directory / "search.lua"
    script.write_text(WRK_SCRIPT % paths)
    return script, len(lines)


def show(label: str, result: dict[str, float]) -> None:
    print(
        f"{label:<11} {result['rps']:>9.1f} {result['errors']:>8.0f} {result['p99_ms']:>9.1f}"
        f" {result['server_cpu_ms']:>14.2f} {result['postgres_cpu_ms']:>10.2f}"
        f" {result['wrk_cpu_ms']:>11.2f}"
        f" {result['machine_cpu_ms']:>15.2f}"
        f" {result['machine_busy']:>13.2f}   {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--distinct", type=int, default=None)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--queries", type=int, default=20, help="queries of each kind")
    parser.add_argument("--rounds", type=int, default=2, help="alternating 1 and 2 servers")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed: apt-get install wrk")
    distinct = min(args.distinct or args.papers, args.papers)
    database_url = postgres_url(args.postgres, f"pb_bench_{store_name(args.papers, distinct)}")
    with tempfile.TemporaryDirectory(prefix="serve-processes-") as tmp:
        directory = Path(tmp)
        config = write_config(directory, database_url)
        script, count = write_paths(directory, args.papers, args.queries)
        log = directory / "serve.log"
        print(
            f"store: {args.papers:,} papers on PostgreSQL; {count} search URLs (every kind);"
            f" cpus: {os.cpu_count()}; wrk -t1 per server, {args.connections} connections in"
            f" all, {args.seconds} s a run"
        )
        print(
            f"{'servers':<11} {'req/s':>9} {'non-2xx':>8} {'p99 ms':>9} {'server CPU ms':>14}"
            f" {'PG CPU ms':>10} {'wrk CPU ms':>11}"
            f" {'machine CPU ms':>15} {'machine busy':>13}   load"
        )
        ratios = []
        try:
            servers = [Serve(config, log), Serve(config, log)]
        except RuntimeError as exc:
            sys.exit(f"{exc}:\n{log.read_text()[-3000:] if log.exists() else ''}")
        try:
            for server in servers:  # warm: connections, expansions, first plans
                load_servers([server], 3, 2, script, database_url)
            for _ in range(args.rounds):
                one = load_servers(
                    servers[:1], args.seconds, args.connections, script, database_url
                )
                show("1 process", one)
                two = load_servers(servers, args.seconds, args.connections, script, database_url)
                show("2 processes", two)
                ratios.append(two["rps"] / one["rps"])
        finally:
            for server in servers:
                server.stop()
        print(
            "2 processes / 1: "
            + ", ".join(f"{r:.2f}x" for r in ratios)
            + f" (median {statistics.median(ratios):.2f}x)"
        )
        print(
            "server CPU ms: CPU seconds of the serve processes per request; PG CPU ms: of the"
            " PostgreSQL processes serving this database; machine CPU ms: all"
            " busy CPU of the machine per request (PostgreSQL, wrk and other work included);"
            " machine busy: cores busy on average (of the machine's cores)"
        )


if __name__ == "__main__":
    main()
