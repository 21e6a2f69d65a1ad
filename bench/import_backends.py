"""Import rate on SQLite and on PostgreSQL, side by side, through ``paperbridge import``'s path.

Writes ``--papers`` distinct papers as saved Hugging Face API responses (1,000 a file, as
bench/ingest.py does), then imports them with ``import_paths`` into a new SQLite file and into
a new schema on the PostgreSQL server, alternating backends ``--rounds`` times so both see the
same machine load, and prints each rate and PostgreSQL's rate as a share of SQLite's, and
each import's CPU seconds: the storing process, the parsing processes and (a server on this
machine) PostgreSQL's server processes for the store's connections.

    .venv/bin/python bench/import_backends.py [--papers 100000] [--rounds 2]
        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, event, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import write_import_files  # noqa: E402

from bridge.importer import import_paths  # noqa: E402
from bridge.store import open_store  # noqa: E402

DEFAULT_POSTGRES = os.environ.get(
    "PAPERBRIDGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@contextmanager
def postgres_schema(server: str) -> Iterator[str]:
    """A new schema on the server, dropped afterwards: the URL of a store inside it."""
    schema = f"pb_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{server}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def server_cpu(pid: int) -> float | None:
    """CPU seconds of a PostgreSQL server process on this machine (None: not readable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_import(url: str, files: list[Path], total: int) -> tuple[float, dict[str, float]]:
    """Papers a second, and the CPU seconds spent by the storing process, the parsing
    processes and (PostgreSQL on this machine) the server processes of the store's
    connections: on a busy machine the rate swings with the load, the CPU much less."""
    store = open_store(url)
    servers: set[int] = set()
    if store.engine.dialect.name == "postgresql":
        event.listen(
            store.engine, "connect", lambda raw, _record: servers.add(raw.info.backend_pid)
        )
        store.engine.dispose()  # connections made from here on are seen
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = time.process_time()
    start = time.perf_counter()
    counts = import_paths(store, files)
    elapsed = time.perf_counter() - start
    done = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {
        "storing": time.process_time() - own,
        "parsing": done.ru_utime + done.ru_stime - children.ru_utime - children.ru_stime,
    }
    if servers:
        seconds = [server_cpu(pid) for pid in servers]
        if None not in seconds:
            cpu["server"] = sum(s for s in seconds if s is not None)
    store.close()
    if counts.new != total:
        raise SystemExit(f"imported {counts.new:,} new papers, not {total:,}: {counts}")
    return total / elapsed, cpu


def cpu_text(cpu: dict[str, float]) -> str:
    parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in cpu.items())
    return f"{sum(cpu.values()):.2f} s CPU ({parts})"


Imported = tuple[float, dict[str, float]]  # papers a second, CPU seconds by process kind


def alternating_imports(
    tmp: Path, files: list[Path], total: int, rounds: int, postgres: str
) -> Iterator[tuple[Imported, Imported]]:
    """Each round's import of ``files`` into a new SQLite file in ``tmp`` and then into a new
    schema on ``postgres``, one after the other, so both see the same machine load."""
    for round_no in range(1, rounds + 1):
        sqlite = timed_import(f"sqlite:///{tmp / f'r{round_no}.db'}", files, total)
        with postgres_schema(postgres) as url:
            yield sqlite, timed_import(url, files, total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES)
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rates: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": []}
    cpus: dict[str, list[float]] = {"SQLite": [], "PostgreSQL": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        files = write_import_files(tmp, args.papers)
        imports = alternating_imports(tmp, files, args.papers, args.rounds, args.postgres)
        for round_no, (sqlite_import, postgres_import) in enumerate(imports, 1):
            sqlite_rate, sqlite_cpu = sqlite_import
            rates["SQLite"].append(sqlite_rate)
            cpus["SQLite"].append(sum(sqlite_cpu.values()))
            postgres_rate, postgres_cpu = postgres_import
            rates["PostgreSQL"].append(postgres_rate)
            cpus["PostgreSQL"].append(sum(postgres_cpu.values()))
            print(
                f"round {round_no}: SQLite {sqlite_rate:,.0f} papers/s,"
                f" PostgreSQL {postgres_rate:,.0f} papers/s"
                f" ({postgres_rate / sqlite_rate:.2f}x);"
                f" SQLite {cpu_text(sqlite_cpu)}, PostgreSQL {cpu_text(postgres_cpu)}",
                flush=True,
            )
    sqlite = statistics.median(rates["SQLite"])
    postgres = statistics.median(rates["PostgreSQL"])
    print(
        f"import of {args.papers:,} papers from {len(files)} HF API files, median of"
        f" {args.rounds}: SQLite {sqlite:,.0f} papers/s, PostgreSQL {postgres:,.0f} papers/s;"
        f" PostgreSQL at {postgres / sqlite:.2f}x SQLite's rate (goal >= 0.8x)"
    )
    sqlite_cpu, postgres_cpu = (statistics.median(cpus[name]) for name in ("SQLite", "PostgreSQL"))
    print(
        f"CPU of all processes, median: SQLite {sqlite_cpu:.2f} s, PostgreSQL {postgres_cpu:.2f} s;"
        f" SQLite's CPU at {sqlite_cpu / postgres_cpu:.2f}x PostgreSQL's"
    )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
