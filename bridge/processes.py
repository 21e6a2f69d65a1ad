"""Process lifetimes: whether a process still runs, helpers that end with their parent, stop signals."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import resource_tracker
from multiprocessing.connection import wait
from typing import Any

log = logging.getLogger(__name__)


def process_running(pid: int) -> bool:
    """Whether the process ``pid`` runs on this host.

    ``os.kill(pid, 0)`` alone is not enough: it succeeds on a zombie, a process that has
    exited and waits for its parent to collect its status. A zombie holds nothing any more
    (no open files, no locks, no work in flight), so it counts as gone. Where there is no
    /proc to tell (macOS), a zombie still looks alive; what it held then expires by time.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    return not _exited(pid)


def pid_namespace() -> str:
    """Which PID namespace this process is in (Linux), "" where the system does not say.
    A PID means a process only within its namespace."""
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return ""


def _exited(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read()
    except OSError:
        return False  # no /proc, or not ours to read: os.kill's answer stands
    # "pid (command) state ...": the command may hold spaces and parentheses, the state
    # follows the last ")". Z: zombie; X: being reaped.
    after = fields.rfind(b")") + 2
    return fields[after : after + 1] in (b"Z", b"X")


# -- helper processes that end with their parent ------------------------------------------------

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def end_with_parent(parent_pid: int) -> None:
    """Make this helper process (started by ``parent_pid`` through multiprocessing) end when
    its parent ends, however it ends, SIGKILL included. Run it first thing in the helper.

    Left alone, a pool's helpers wait forever for work from a parent that was killed: each
    holds the pool's queues open itself, so it never sees them close, and the resource
    tracker, which unlinks the pool's semaphores once every process using them is gone,
    waits with them. Here, on Linux, the kernel kills the helper with its parent
    (``PR_SET_PDEATHSIG``); everywhere, a thread watches the parent's sentinel (a pipe the
    parent alone holds open) and ends the helper when it closes. Once the helpers are gone
    the tracker cleans up and ends by itself.

    The helper ignores SIGINT and SIGTERM: Ctrl-C reaches the whole process group, and the
    parent decides how to stop (it shuts the pool down, or dies and takes the helpers with it).
    """
    for sig in _PARENTS_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENTS_SIGNALS)  # see starting_helpers
    if sys.platform.startswith("linux"):
        _kill_me_with_parent()
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent ended before the helper could follow it
    parent = multiprocessing.parent_process()
    if parent is not None and parent.sentinel is not None:
        threading.Thread(
            target=_exit_when_closed, args=(parent.sentinel,), name="parent-watch", daemon=True
        ).start()


# The signals a helper leaves to its parent.
_PARENTS_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def starting_helpers() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back from the calling thread while it starts helper
    processes, which start with them held back too (a process inherits the mask of the
    thread that made it) until ``end_with_parent`` ignores them. Otherwise Ctrl-C in the
    fraction of a second a helper's Python takes to start would end it with
    KeyboardInterrupt, and the pool with it. This process still takes the signals: in
    another thread meanwhile, or in this one when the block ends. (Python starts
    multiprocessing's resource tracker the same way, and lets the signals through when it
    has: so it is started first.)"""
    resource_tracker.ensure_running()
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _PARENTS_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def _kill_me_with_parent() -> None:
    # The kernel sends the signal when the thread that started this process ends; the pool
    # is started and used by the thread that runs the import, which outlives it.
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        # Not fatal: the watching thread still ends this process with its parent.
        log.debug("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))


def _exit_when_closed(sentinel: int) -> None:
    wait([sentinel])
    os._exit(1)


# -- stopping on a signal ------------------------------------------------------------------------


class StopSignals:
    """While in use, SIGINT and SIGTERM ask the work to stop instead of ending the process.

    The work asks ``stop()`` between steps and ends cleanly once it says True. The first
    signal only asks; the handlers that were there before come back at once, so a second
    signal ends the process as it would have (Ctrl-C raises KeyboardInterrupt, SIGTERM
    kills). Outside the main thread, where Python cannot take signals, nothing changes.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._saved: dict[signal.Signals, Any] = {}

    def __call__(self) -> bool:
        return self.received is not None

    @property
    def exit_code(self) -> int:
        """What a shell shows for a process ended by the signal received: 130, 143."""
        return 128 + self.received if self.received is not None else 0

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            self._saved = {sig: signal.signal(sig, self._received) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()

    def _received(self, signum: int, _frame: object) -> None:
        self.received = signal.Signals(signum)
        self._restore()

    def _restore(self) -> None:
        saved, self._saved = self._saved, {}
        for sig, handler in saved.items():
            # None: a handler set outside Python, which cannot be put back; the default then.
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)
