"""A process that owns a pool of helper processes, for the tests that kill it.

Run as ``python -m tests.pool_owner HELPERS MODE``: starts HELPERS spawned helpers made to end
with it (MODE ``linux``: as the importer does; ``portable``: without ``PR_SET_PDEATHSIG``, as
on systems that lack it), prints "ready" once they all run, then waits to be killed.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from bridge import processes


def end_with_parent_portably(parent_pid: int) -> None:
    """``end_with_parent`` as where there is no ``PR_SET_PDEATHSIG``: the watching thread only."""
    processes._kill_me_with_parent = lambda: None
    processes.end_with_parent(parent_pid)


def _pid(_n: int) -> int:
    time.sleep(0.01)  # long enough for the tasks to spread over the helpers
    return os.getpid()


def main(helpers: int, mode: str) -> None:
    init = processes.end_with_parent if mode == "linux" else end_with_parent_portably
    pool = ProcessPoolExecutor(
        max_workers=helpers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=init,
        initargs=(os.getpid(),),
    )
    # A task runs only once its helper is set up: wait until every helper has run one.
    seen: set[int] = set()
    while len(seen) < helpers:
        seen.update(pool.map(_pid, range(helpers * 2)))
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2])
