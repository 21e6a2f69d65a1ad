"""Whole-process time of `paperbridge search QUERY`, beside baselines from the same run.

Issue 14 asks for the whole process (interpreter start, imports, settings, the search,
printing) in ≤ 200 ms. Each command is run N times in turn (interleaved, so a burst of load
from elsewhere hits all of them alike) and the median and the fastest run are printed:

    python -c pass                 the interpreter alone
    python -c "import sqlalchemy"  the floor for anything that reads the store
    paperbridge search QUERY       the command, against a store of the HF fixtures
    … --config FILE                the same with a settings file naming the same store
                                   (settings checked by bridge.config, with pydantic)

    .venv/bin/python bench/cli_startup.py [--runs 21] [--query model] [--store-dir DIR]
        [--compare-tree DIR]

--compare-tree also times the same command from another checkout of the code (e.g. the
commit before this change, from `git archive`), run by this venv's Python with that
checkout first on PYTHONPATH, on the same store in the same run.

Without --store-dir, a temporary directory gets a SQLite store imported from
/work/shared/fixtures/hf/*.json (or tests/fixtures/hf) first, with the default settings.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
FIXTURE_DIRS = [Path("/work/shared/fixtures/hf"), ROOT / "tests" / "fixtures" / "hf"]


def _paperbridge() -> list[str]:
    # The console script users run; `python -m bridge` where it is not installed.
    script = BIN / "paperbridge"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bridge"]


def _prepare_store(where: Path) -> None:
    fixtures = next((d for d in FIXTURE_DIRS if d.is_dir()), None)
    if fixtures is None:
        raise SystemExit("no HF fixtures to import; pass --store-dir with a store in it")
    files = sorted(str(p) for p in fixtures.glob("*.json"))
    subprocess.run(
        [*_paperbridge(), "import", *files],
        cwd=where,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _cpu_of_children() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _time_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall clock and CPU seconds (user + system) of one run of ``argv``."""
    cpu = _cpu_of_children()
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed, _cpu_of_children() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--query", default="model")
    parser.add_argument("--store-dir", type=Path, help="a directory holding a paperbridge store")
    parser.add_argument("--compare-tree", type=Path, help="another checkout to time too")
    args = parser.parse_args()

    # The default settings: no config file from the environment changes what is measured.
    # PYTHONDONTWRITEBYTECODE is dropped too: an installed paperbridge has its .pyc files,
    # and without them every run compiles the whole bridge package again (with it set, the
    # warm-up below wrote none, and earlier figures included that compile).
    dropped = ("PAPERBRIDGE_CONFIG", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    with tempfile.TemporaryDirectory(prefix="cli-startup-") as tmp:
        where = args.store_dir or Path(tmp)
        if args.store_dir is None:
            _prepare_store(where)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            'python -c "import sqlalchemy"': [sys.executable, "-c", "import sqlalchemy"],
            f"paperbridge search {args.query}": [*_paperbridge(), "search", args.query],
        }
        # With no settings file the built-in settings serve (bridge/settings_defaults.py); a
        # deployment has one, which is read and checked with pydantic.
        settings_file = Path(tmp) / "settings.toml"
        settings_file.write_text(
            f'[store]\ndatabase_url = "sqlite:///{where.resolve()}/data/paperbridge.db"\n'
        )
        commands[f"paperbridge search {args.query} --config FILE"] = [
            *_paperbridge(),
            "search",
            args.query,
            "--config",
            str(settings_file),
        ]
        if args.compare_tree is not None:
            commands[f"{args.compare_tree}: paperbridge search {args.query}"] = [
                "env",
                f"PYTHONPATH={args.compare_tree.resolve()}",
                sys.executable,
                "-c",
                "import sys; from bridge.cli import main; sys.exit(main())",
                "search",
                args.query,
            ]
        for argv in commands.values():  # warm the page cache and .pyc files
            _time_once(argv, where, env)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
        load_before = os.getloadavg()
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(_time_once(argv, where, env))
        load_after = os.getloadavg()

    # CPU time is printed beside the wall clock: on a loaded machine the wall clock mostly
    # measures the wait for a core, the CPU time what the process itself costs.
    print(f"{args.runs} runs each, interleaved; whole process (ms)")
    print(f"{'command':<56}{'wall p50':>10}{'fastest':>9}{'CPU p50':>9}{'least':>8}")
    for name, runs in times.items():
        wall = [w * 1000 for w, _ in runs]
        cpu = [c * 1000 for _, c in runs]
        print(
            f"{name:<56}{statistics.median(wall):>10.1f}{min(wall):>9.1f}"
            f"{statistics.median(cpu):>9.1f}{min(cpu):>8.1f}"
        )
    print("load average before: " + " ".join(f"{x:.2f}" for x in load_before))
    print("load average after:  " + " ".join(f"{x:.2f}" for x in load_after))


if __name__ == "__main__":
    main()
