"""`paperbridge import` as a process: its helpers end with it however it ends (SIGKILL too),
SIGTERM or Ctrl-C stop it cleanly, saying how far it got, and importing again continues; a
second import on SQLite refuses at once, on PostgreSQL both run; polls beside it succeed."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest

import bridge.import_pieces as import_pieces
import bridge.importer as importer
from bridge.importer import default_workers, import_paths
from bridge.processes import StopSignals, end_with_parent, process_running, starting_helpers
from bridge.store import open_store
from tests.threads import Running

ROOT = Path(__file__).resolve().parent.parent
FILES = 40
PER_FILE = 500  # one batch a file


def listing_files(directory: Path, files: int = FILES, per_file: int = PER_FILE) -> list[Path]:
    """``files`` saved HF API responses of ``per_file`` distinct, small papers each."""
    directory.mkdir()
    paths = []
    for file_no in range(files):
        items = [
            {"paper": {"id": f"2601.{n:05d}", "title": f"Paper {n}", "summary": "We study it."}}
            for n in range(file_no * per_file, (file_no + 1) * per_file)
        ]
        paths.append(directory / f"hf-{file_no:03d}.json")
        paths[-1].write_text(json.dumps(items))
    return paths


def start_import(url: str, directory: Path, **popen: object) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBRIDGE_")}
    return subprocess.Popen(
        [sys.executable, "-m", "bridge", "import", str(directory)],
        cwd=ROOT,
        env=dict(env, PAPERBRIDGE_DATABASE_URL=url, PYTHONPATH=str(ROOT)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[call-overload]
    )


def wait_for(condition: Callable[[], bool], what: str, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"waited {within} s for {what}"
        time.sleep(0.005)


def helpers_of(process: subprocess.Popen[str]) -> list[psutil.Process]:
    """The import's parsing processes and multiprocessing's resource tracker, once all run."""
    expected = 1 + default_workers()

    def started() -> bool:
        assert process.poll() is None, "the import ended before its helpers started"
        return len(psutil.Process(process.pid).children(recursive=True)) >= expected

    wait_for(started, f"{expected} helper processes")
    return psutil.Process(process.pid).children(recursive=True)


def stored(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM papers").fetchone()[0])
        except sqlite3.OperationalError:  # no table yet
            return 0


def assert_all_gone(helpers: list[psutil.Process]) -> None:
    try:
        # A helper that ended is a zombie until init reaps it: gone all the same.
        wait_for(lambda: not any(process_running(h.pid) for h in helpers), "the helpers to end")
    finally:
        for helper in helpers:  # a failed test leaves no processes behind either
            with contextlib.suppress(psutil.NoSuchProcess):
                helper.kill()


@pytest.mark.slow
def test_kill_9_of_an_import_ends_its_helper_processes(tmp_path: Path) -> None:
    listing_files(tmp_path / "in")
    child = start_import(f"sqlite:///{tmp_path / 'pb.db'}", tmp_path / "in")
    helpers = helpers_of(child)
    assert child.poll() is None, "the import finished before it could be killed"
    child.kill()
    child.wait(timeout=30)  # not its output: helpers left behind would hold the pipes open
    assert_all_gone(helpers)
    child.communicate()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["linux", "portable"])
def test_helpers_end_with_their_parent_without_the_kernel_s_help_too(mode: str) -> None:
    if mode == "linux" and not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux's")
    owner = subprocess.Popen(
        [sys.executable, "-m", "tests.pool_owner", "2", mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert owner.stdout is not None
    assert owner.stdout.readline() == "ready\n"
    helpers = psutil.Process(owner.pid).children(recursive=True)
    assert len(helpers) == 3  # two helpers and the resource tracker
    owner.kill()
    owner.wait(timeout=30)
    assert_all_gone(helpers)
    owner.communicate()


def signal_state() -> tuple[set[int], bool]:
    """In a helper: the signals it holds back, and whether it ignores Ctrl-C."""
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, [])), (
        signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    )


@pytest.fixture
def ctrl_c_interrupts() -> Iterator[None]:
    """Ctrl-C as a terminal's Python has it. A shell starting the tests in the background
    (``nohup … &``) hands them SIGINT ignored, which Python then leaves so, and spawned
    helpers inherit."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


@pytest.mark.usefixtures("ctrl_c_interrupts")
def test_helpers_start_with_ctrl_c_held_back_until_they_ignore_it() -> None:
    spawn = multiprocessing.get_context("spawn")
    with starting_helpers():
        # Without end_with_parent: the state a helper starts in, before it can ignore them.
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            held, ignored = pool.submit(signal_state).result()
        assert {signal.SIGINT, signal.SIGTERM} <= held and not ignored
        with ProcessPoolExecutor(
            1, mp_context=spawn, initializer=end_with_parent, initargs=(os.getpid(),)
        ) as pool:
            held, ignored = pool.submit(signal_state).result()
        assert not held & {signal.SIGINT, signal.SIGTERM} and ignored
    assert signal.SIGINT not in signal.pthread_sigmask(signal.SIG_BLOCK, [])


SUMMARY = re.compile(
    r"stopped after (\d+) of 40 files: (\d+) new, 0 merged, 0 skipped \(already known\),"
    r" 0 unreadable records, 0 unstorable records, 0 unreadable files; run the same command again to continue\n"
)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "to_group", "code"),
    [(signal.SIGTERM, False, 143), (signal.SIGINT, True, 130)],
    ids=["kill", "ctrl-c"],
)
def test_a_signal_stops_an_import_cleanly_and_importing_again_continues(
    tmp_path: Path, signum: signal.Signals, to_group: bool, code: int
) -> None:
    files = listing_files(tmp_path / "in")
    db = tmp_path / "pb.db"
    # Ctrl-C in a terminal signals the whole process group: the helpers get it too.
    child = start_import(f"sqlite:///{db}", tmp_path / "in", start_new_session=to_group)
    helpers = helpers_of(child)
    wait_for(lambda: stored(db) > 0 or child.poll() is not None, "a first commit")
    assert child.poll() is None, "the import finished before it could be stopped"
    if to_group:
        os.killpg(child.pid, signum)
    else:
        child.send_signal(signum)
    out, err = child.communicate(timeout=60)
    assert child.returncode == code, err
    assert "Traceback" not in err
    found = SUMMARY.fullmatch(out)
    assert found, out
    whole_files, new = int(found[1]), int(found[2])
    assert 0 < whole_files < FILES
    # Every batch stored was committed, none in part (a file is one batch here).
    assert new == stored(db) == whole_files * PER_FILE
    assert_all_gone(helpers)

    again = start_import(f"sqlite:///{db}", tmp_path / "in")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert out.startswith(f"{FILES * PER_FILE - new} new, 0 merged, {new} skipped")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = [row[0] for row in conn.execute("SELECT arxiv_id FROM papers")]
    assert sorted(ids) == sorted(f"2601.{n:05d}" for n in range(len(files) * PER_FILE))


@pytest.mark.slow
def test_ctrl_c_while_the_parsing_processes_start_stops_the_import_cleanly(
    tmp_path: Path,
) -> None:
    listing_files(tmp_path / "in")
    child = start_import(f"sqlite:///{tmp_path / 'pb.db'}", tmp_path / "in", start_new_session=True)
    # The resource tracker and a first parsing process exist: its Python is starting.
    wait_for(
        lambda: len(psutil.Process(child.pid).children()) >= 2 or child.poll() is not None,
        "a parsing process",
    )
    os.killpg(child.pid, signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert out.startswith("stopped after "), out


def test_a_stopped_import_commits_the_batches_stored_and_says_where_it_stopped(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(import_pieces, "BATCH", 7)
    monkeypatch.setattr(importer, "TRANSACTION", 20)
    files = listing_files(tmp_path / "in", files=3, per_file=30)
    batches = 0

    def progress(_papers: int) -> None:
        nonlocal batches
        batches += 1

    store = open_store(database_url)
    try:
        # Asked to stop after the seventh batch: 30 papers of the first file (5 batches),
        # 14 of the second. No transaction of 20 was due; stopping commits them all.
        counts = import_paths(
            store, files, progress=progress, stop=lambda: batches >= 7, parallel=False
        )
        assert (counts.files, counts.stopped_in, counts.new) == (1, (files[1], 14), 44)
        assert store.count_papers() == 44
        again = import_paths(store, files, parallel=False)
        assert (again.files, again.stopped_in) == (3, None)
        assert (again.new, again.skipped) == (46, 44)
        assert store.count_papers() == 90
    finally:
        store.close()


def test_a_stop_while_waiting_for_parsing_processes_ends_the_import(
    sqlite_url: str, tmp_path: Path
) -> None:
    files = listing_files(tmp_path / "in", files=4, per_file=10)
    store = open_store(sqlite_url)
    try:
        counts = import_paths(store, files, parallel=True, workers=2, stop=lambda: True)
        assert (counts.files, counts.new, store.count_papers()) == (0, 0, 0)
    finally:
        store.close()


@pytest.mark.usefixtures("ctrl_c_interrupts")
def test_the_first_signal_asks_and_the_second_ends_as_before() -> None:
    before = signal.getsignal(signal.SIGINT)
    with StopSignals() as stop:
        assert not stop()
        os.kill(os.getpid(), signal.SIGINT)
        assert stop() and stop.exit_code == 130
        assert signal.getsignal(signal.SIGINT) is before  # a second Ctrl-C interrupts at once
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


# -- two imports, an import beside serve ---------------------------------------------------------


def held_mid_import(url: str, files: list[Path], release: threading.Event) -> Running:
    """An import in this process, stopped after its first batch (stored, not committed: its
    transaction and lock held) until ``release`` is set; then it goes on to the end."""
    store = open_store(url)
    first_batch = threading.Event()

    def progress(_papers: int) -> None:
        first_batch.set()
        assert release.wait(60), "never released"

    def run() -> importer.ImportCounts:
        try:
            return import_paths(store, files, progress=progress, parallel=False)
        finally:
            store.close()

    running = Running(run)
    running.start()
    assert first_batch.wait(60)
    return running


def test_a_second_import_on_sqlite_refuses_at_once_and_stores_nothing(tmp_path: Path) -> None:
    db = tmp_path / "pb.db"
    first_files = listing_files(tmp_path / "first", files=3, per_file=50)
    (tmp_path / "second").mkdir()
    later = tmp_path / "second" / "later.json"
    later.write_text(json.dumps([{"paper": {"id": "2699.00001", "title": "Later"}}]))
    release = threading.Event()
    first = held_mid_import(f"sqlite:///{db}", first_files, release)
    try:
        second = start_import(f"sqlite:///{db}", tmp_path / "second")
        out, err = second.communicate(timeout=60)
    finally:
        release.set()
    assert second.returncode == 1 and out == ""
    assert (
        f"paperbridge: another import (process {os.getpid()}) is writing to {db};"
        " SQLite stores one import at a time: run this one again when it has finished\n"
    ) in err
    assert first.outcome().new == 150  # the first went on undisturbed
    assert stored(db) == 150  # nothing of the second
    again = start_import(f"sqlite:///{db}", tmp_path / "second")
    assert again.communicate(timeout=60)[0].startswith("1 new")


@pytest.mark.postgres
def test_two_imports_on_postgresql_both_store_everything(postgres_url: str, tmp_path: Path) -> None:
    files = listing_files(tmp_path / "in", files=6, per_file=50)
    open_store(postgres_url).close()
    watcher = psycopg.connect(postgres_url, autocommit=True)
    release = threading.Event()
    first = held_mid_import(postgres_url, files, release)
    try:
        second = start_import(postgres_url, tmp_path / "in")
        # The second queues behind the first's transaction (its lock on papers) ...
        wait_for(lambda: waiting_for_papers(watcher) or second.poll() is not None, "a wait")
        assert second.poll() is None, second.communicate()
    finally:
        release.set()  # ... and goes on once the first commits.
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    firsts = first.outcome()
    seconds = re.match(r"(\d+) new, 0 merged, (\d+) skipped", out)
    assert seconds, out
    # Every paper stored once: by one import as new, by the other as already known.
    assert firsts.new + int(seconds[1]) == 300 and firsts.skipped + int(seconds[2]) == 300
    store = open_store(postgres_url)
    try:
        assert store.count_papers() == 300
    finally:
        store.close()
        watcher.close()


def waiting_for_papers(conn: psycopg.Connection[Any]) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'papers'::regclass"
    ).fetchone()
    return bool(row and row[0])


@pytest.mark.slow
def test_an_import_beside_polls_storing_the_same_papers_both_succeed(
    database_url: str, tmp_path: Path
) -> None:
    files = listing_files(tmp_path / "in", files=20)
    open_store(database_url).close()
    polls = subprocess.Popen(
        [sys.executable, "-m", "tests.store_writer", database_url, "0", str(20 * PER_FILE)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        imported = start_import(database_url, tmp_path / "in")
        out, err = imported.communicate(timeout=300)
    finally:
        stored_by_polls, poll_errors = polls.communicate("", timeout=60)
    assert imported.returncode == 0, err
    assert polls.returncode == 0, poll_errors
    assert int(stored_by_polls) > 0
    assert re.match(r"\d+ new, \d+ merged, \d+ skipped", out), out
    store = open_store(database_url)
    try:
        assert store.count_papers() == len(files) * PER_FILE
    finally:
        store.close()
