"""Drive the real review App from a script: start ``rorem-data review``, wait for it, end it.

The browser tests and ``benchmarks/paper_app.py`` both run the real command in its own session
(process group) and end every process it started by PID afterwards - the App's server forks
workers and FiftyOne may start a database service, and none of them may outlive the test.
Needs ``psutil`` (the ``dev`` extra).

>>> port = free_port()
>>> 1024 <= port < 65536
True
>>> poll(lambda: 3, timeout=1)
3
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

#: Flags for headless Debian Chromium in a container: no sandbox, GPU, QUIC or background
#: network traffic (the machine has no internet; nothing may wait on it).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> str | None:
    """The system's Chromium binary (Debian's ``chromium``), or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(fn: Callable[[], T], timeout: float, every: float = 0.1) -> T:
    """Call ``fn`` until it returns something truthy or ``timeout`` seconds pass; its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(every)
    return fn()


class AppProcess:
    """A command (``rorem-data review ...``) in its own session; remembers every descendant PID."""

    def __init__(self, argv: Sequence[str], env: dict):
        import psutil

        self.psutil = psutil
        self.proc = subprocess.Popen(list(argv), env=env, start_new_session=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.pids = {self.proc.pid}

    def track(self) -> None:
        """Remember the processes started so far (children end before they can be listed)."""
        try:
            for c in self.psutil.Process(self.proc.pid).children(recursive=True):
                self.pids.add(c.pid)
        except self.psutil.NoSuchProcess:
            pass

    def wait_http(self, url: str, timeout: float = 180, every: float = 0.05) -> None:
        """Wait until ``url`` answers 200; raise with the command's output if it exited first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.track()
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("the review command exited:\n" + self.proc.stdout.read())
            time.sleep(every)
        raise TimeoutError(f"the App did not answer at {url} within {timeout} s")

    def stop(self) -> list[int]:
        """End every tracked process (terminate, then kill); the PIDs still alive (none, normally)."""
        self.track()
        procs = []
        for pid in self.pids:
            try:
                procs.append(self.psutil.Process(pid))
            except self.psutil.NoSuchProcess:
                pass
        for p in procs:
            try:
                p.terminate()
            except self.psutil.NoSuchProcess:
                pass
        _gone, alive = self.psutil.wait_procs(procs, timeout=5)
        for p in alive:
            try:
                p.kill()
            except self.psutil.NoSuchProcess:
                pass
        self.psutil.wait_procs(alive, timeout=5)
        left = []
        for pid in self.pids:
            try:
                if self.psutil.Process(pid).status() != self.psutil.STATUS_ZOMBIE:
                    left.append(pid)
            except self.psutil.NoSuchProcess:
                pass
        return left
