"""CPU time of PostgreSQL searches, the client's and the server's, for every kind of query of
bench/search_backends.py: on a loaded machine wall times swing by 2x between runs of the same
code, CPU times much less.

For each kind it asks every query once (not measured), then ``--rounds`` times all of them,
and prints per search the median over rounds of the client's CPU (this process's
``process_time``), the server's (the backend process's user and system time, read from
``/proc/<pid>/stat``: the server must run on this machine) and the wall time. It runs the
code of the checkout it sits in (bench/search_backends.py puts that first on the path): to
compare two versions on one store, run a copy of it from each checkout, alternately.

    .venv/bin/python bench/search_cpu.py \\
        --postgres 'postgresql://postgres@127.0.0.1:5432/pgs_1m_ps?options=-csearch_path%3Dpb_bench_1000000_d100000' \\
        --papers 1000000 [--queries 30] [--rounds 3] [--kinds "two terms,phrase"]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parent))

from search_backends import kinds  # noqa: E402
from sqlalchemy import text  # noqa: E402

from bridge.errors import SearchTooBroad  # noqa: E402
from bridge.search import search_store  # noqa: E402
from bridge.store import Store, open_store  # noqa: E402


def server_seconds(pid: int) -> float:
    """The backend's user + system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ask(store: Store, queries: list[tuple[str, int]]) -> None:
    for query, page in queries:
        try:
            search_store(store, query, limit=10, offset=(page - 1) * 10)
        except SearchTooBroad:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", required=True, help="the store's URL (with its schema)")
    parser.add_argument("--papers", type=int, required=True, help="as given to search_backends")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--kinds", default="", help="comma-separated; all when empty")
    args = parser.parse_args()
    only = {k for k in args.kinds.split(",") if k}
    store = open_store(args.postgres)
    with store.engine.connect() as conn:
        pid = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
    print(f"code: {Path(sys.modules['bridge'].__file__ or '').parent.parent}")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'query kind':<14} {'client ms':>10} {'server ms':>10} {'wall ms':>10}")
    for kind, queries in kinds(args.queries, args.papers).items():
        if only and kind not in only:
            continue
        ask(store, queries)
        client: list[float] = []
        server: list[float] = []
        wall: list[float] = []
        for _ in range(args.rounds):
            c0, s0, w0 = time.process_time(), server_seconds(pid), time.perf_counter()
            ask(store, queries)
            count = len(queries)
            client.append((time.process_time() - c0) / count * 1000)
            server.append((server_seconds(pid) - s0) / count * 1000)
            wall.append((time.perf_counter() - w0) / count * 1000)
        print(
            f"{kind:<14} {statistics.median(client):>10.2f} {statistics.median(server):>10.2f}"
            f" {statistics.median(wall):>10.2f}",
            flush=True,
        )
    with store.engine.connect() as conn:
        if int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one()) != pid:
            print("warning: the searches did not all run on one connection", file=sys.stderr)
    store.close()
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
