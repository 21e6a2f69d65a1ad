"""Peak memory of `paperbridge import` on big files: the storing process and all processes.

Writes ``--papers`` distinct papers a file as saved Hugging Face API responses (one JSON
array each, the items of the saved fixture repeated under fresh ids, as bench/ingest.py
does) or as saved arXiv API responses (``--format arxiv``), then for each count of files in
``--files`` imports them with ``import_paths`` (parsing processes as `paperbridge import`
starts them) into a new SQLite store, in a fresh process, and prints:

- the peak resident memory of the importing process (its own ``ru_maxrss``);
- the peak of the sum over it and its parsing processes, sampled every 20 ms (and of the
  same sum without pages of files: the store read through its memory map after the import,
  by the FTS5 merge and the acronym mining, counts in resident memory);
- the sum of each process's own peak (the importing process's ``ru_maxrss`` plus, for each
  parsing process, its peak read from /proc just before it ends: an upper bound, the
  processes need not peak at the same moment);
- the import's rate and time.

``--code DIR`` runs the import from another checkout (the code before a change) for a
baseline in the same run.

    .venv/bin/python bench/import_memory.py [--papers 100000] [--files 1 10]
        [--format hf|arxiv] [--code /path/to/checkout]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

OUT = ROOT / "bench" / "out" / "import_memory"

# Run in the importing process: import, then report its own peak and its parsing processes'
# (each read from /proc/PID/status as VmHWM while they still run: they end with the import).
_CHILD = r"""
import json, os, resource, sys, threading, time
from pathlib import Path
from typing import Any
sys.path.insert(0, sys.argv[1])
import psutil
from bridge.importer import import_paths
from bridge.store import open_store

peaks = {}
done = threading.Event()

def watch():
    me = psutil.Process()
    while not done.is_set():
        for child in me.children(recursive=True):
            try:
                with open(f"/proc/{child.pid}/status") as status:
                    for line in status:
                        if line.startswith("VmHWM:"):
                            peaks[child.pid] = max(peaks.get(child.pid, 0), int(line.split()[1]))
            except OSError:
                pass
        time.sleep(0.02)

threading.Thread(target=watch, daemon=True).start()
store = open_store(sys.argv[2])
files = [Path(p) for p in sys.argv[3:]]
start = time.perf_counter()
counts = import_paths(store, files)
elapsed = time.perf_counter() - start
store.close()
done.set()
print(json.dumps({
    "new": counts.new, "problems": counts.problems, "seconds": elapsed,
    "main_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "children_kib": sorted(peaks.values(), reverse=True),
}))
"""


def write_hf_file(path: Path, papers: int, first: int) -> None:
    """``papers`` distinct HF API items as one JSON array, written an item at a time."""
    from ingest import FIXTURES

    items = json.loads((FIXTURES / "hf" / "daily_papers_api_limit30_2026-06-13.json").read_text())
    texts = [json.dumps(item) for item in items]
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for k in range(papers):
            n = first + k
            text = texts[n % len(texts)]
            old = json.dumps(items[n % len(items)]["paper"]["id"])
            new = json.dumps(f"{2301 + n // 90000}.{n % 90000 + 10000:05d}")
            out.write((", " if k else "") + text.replace(old, new, 1))
        out.write("]")


def write_arxiv_file(path: Path, papers: int, first: int) -> None:
    """``papers`` distinct arXiv API entries as one Atom feed, written an entry at a time."""
    import re

    from ingest import FIXTURES

    text = (FIXTURES / "arxiv" / "api_query_transformer_cs.LG_2026-06-14.xml").read_text()
    head, rest = text.split("<entry>", 1)
    entries = ["<entry>" + part for part in rest.split("<entry>")]
    entries[-1] = entries[-1].split("</feed>", 1)[0]
    with path.open("w", encoding="utf-8") as out:
        out.write(head)
        for k in range(papers):
            n = first + k
            new_id = f"{2301 + n // 90000}.{n % 90000 + 10000:05d}"
            out.write(re.sub(r"2606\.\d{5}", new_id, entries[n % len(entries)]))
        out.write("</feed>\n")


def import_once(code: Path, files: list[Path], store: Path) -> dict[str, Any]:
    """Run the import in a fresh process; its figures, with the sampled peak of all."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(code), f"sqlite:///{store}", *map(str, files)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=code,
    )
    peak_all = peak_anonymous = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_all, peak_anonymous
        try:
            process = psutil.Process(child.pid)
        except psutil.NoSuchProcess:
            return
        while not stop.is_set():
            total = anonymous = 0
            try:
                for proc in [process, *process.children(recursive=True)]:
                    rss, anon = _resident(proc.pid)
                    total += rss
                    anonymous += anon
            except psutil.NoSuchProcess:
                break
            peak_all = max(peak_all, total)
            peak_anonymous = max(peak_anonymous, anonymous)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = child.communicate()
    stop.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"the import failed (exit {child.returncode})")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["peak_all_kib"] = peak_all / 1024
    result["peak_anonymous_kib"] = peak_anonymous / 1024
    return result


def _resident(pid: int) -> tuple[int, int]:
    """Resident bytes of a process, all and anonymous: the rest are pages of files (the
    store read through its memory map, libraries), which the system can drop at once."""
    found = {"VmRSS:": 0, "RssAnon:": 0}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                key = line.split(maxsplit=1)[0] if line.strip() else ""
                if key in found:
                    found[key] = int(line.split()[1]) * 1024
    except OSError:
        pass
    return found["VmRSS:"], found["RssAnon:"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=100_000, help="papers a file")
    parser.add_argument("--files", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--format", choices=["hf", "arxiv"], default="hf")
    parser.add_argument("--code", type=Path, default=ROOT)
    args = parser.parse_args()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"code: {args.code}; {args.format} files of {args.papers:,} papers; SQLite")
    OUT.mkdir(parents=True, exist_ok=True)
    write = write_hf_file if args.format == "hf" else write_arxiv_file
    suffix = ".json" if args.format == "hf" else ".xml"
    try:
        files: list[Path] = []
        for count in sorted(args.files):
            while len(files) < count:
                path = OUT / f"{args.format}-{len(files):02d}{suffix}"
                write(path, args.papers, len(files) * args.papers)
                files.append(path)
            store = OUT / f"import-{count}.db"
            result = import_once(args.code, files[:count], store)
            for leftover in OUT.glob(f"import-{count}.db*"):
                leftover.unlink()
            total = count * args.papers
            assert result["new"] == total, result
            size = sum(f.stat().st_size for f in files[:count]) / 2**20
            children = result["children_kib"]
            own_peaks = result["main_kib"] + sum(children)
            print(
                f"{count} file{'s' if count > 1 else ''} x {args.papers:,} papers"
                f" ({size:,.0f} MiB): {total / result['seconds']:,.0f} papers/s"
                f" ({result['seconds']:.1f} s); peak resident memory:"
                f" importing process {result['main_kib'] / 1024:,.0f} MiB,"
                f" all processes {result['peak_all_kib'] / 1024:,.0f} MiB sampled"
                f" ({result['peak_anonymous_kib'] / 1024:,.0f} MiB not file pages)"
                f" (sum of each one's peak {own_peaks / 1024:,.0f} MiB;"
                f" {len(children)} parsing processes,"
                f" {', '.join(f'{kib / 1024:,.0f}' for kib in children)} MiB)",
                flush=True,
            )
    finally:
        shutil.rmtree(OUT, ignore_errors=True)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
