"""Whether a process on this machine still runs (stale temporary files, markers and leases)."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists on this machine (this process counts as alive; a pid
    this user may not signal counts as alive, an impossible pid as gone)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True
