"""Process lifetimes on this host: whether a process still runs, and children that end with it."""

from __future__ import annotations

import os


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


def _exited(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read()
    except OSError:
        return False  # no /proc, or not ours to read: os.kill's answer stands
    # "pid (command) state ...": the command may hold spaces and parentheses, the state
    # follows the last ")". Z: zombie; X: being reaped.
    state = fields[fields.rfind(b")") + 2 : fields.rfind(b")") + 3]
    return state in (b"Z", b"X")
