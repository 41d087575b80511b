"""Seconds, CPU and peak memory of one benchmark step and of its parts, measured in-process.

A :class:`Sampler` thread records, every 0.1 s, the RSS summed over this process and all its
live descendants (process-pool workers, threads' subprocesses) with psutil - the same measure
as ``benchmarks/ingest.py``; forked workers' shared pages count once per process there - the
PSS summed over the same processes (shared pages split between them; every 2 s, as reading it
costs), and the RSS of the database server (``mongod``, not a
descendant). :class:`StepClock` cuts a step into named parts (``mark(name)`` ends the part
that started at the previous mark) and reports, per part, wall seconds, CPU seconds of this
process and its children (``getrusage`` self + reaped children + live children), the
``mongod``'s CPU seconds, and the peak RSS of both within the part.
"""

from __future__ import annotations

import os
import resource
import threading
import time

MB = 2 ** 20


def _tree_rss_cpu(proc, pss: bool = False) -> tuple[int, int, dict]:
    """RSS bytes summed over ``proc`` and its live descendants, their PSS sum (shared pages
    counted once; only with ``pss``, else 0), and ``{pid: CPU seconds}`` of the descendants."""
    import psutil

    rss, pss_sum, cpu = 0, 0, {}
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0, {}
    for p in procs:
        try:
            with p.oneshot():
                if pss:
                    m = p.memory_full_info()
                    rss += m.rss
                    pss_sum += m.pss
                else:
                    rss += p.memory_info().rss
                if p.pid != proc.pid:
                    t = p.cpu_times()
                    cpu[(p.pid, p.create_time())] = t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return rss, pss_sum, cpu


def own_cpu_seconds() -> float:
    """CPU seconds of this process (all its threads)."""
    s = resource.getrusage(resource.RUSAGE_SELF)
    return s.ru_utime + s.ru_stime


class Sampler(threading.Thread):
    """Background RSS sampling of this process tree and of the database server.

    Parameters
    ----------
    mongod_pid : int, optional
        PID of the ``mongod`` serving the benchmark (its RSS and CPU are reported apart).
    interval : float
        Seconds between samples.
    """

    def __init__(self, mongod_pid: int | None = None, interval: float = 0.1,
                 pss_interval: float = 2.0):
        import psutil

        super().__init__(daemon=True)
        self.interval = interval
        # PSS reads /proc/<pid>/smaps_rollup: ~10-50 ms for a process with torch loaded, so it
        # is sampled every ``pss_interval`` seconds only (every 0.1 s it took a quarter of a core)
        self.pss_interval = pss_interval
        self._last_pss = -1e9
        self.me = psutil.Process(os.getpid())
        self.mongod = None
        if mongod_pid:
            try:
                self.mongod = psutil.Process(mongod_pid)
            except psutil.NoSuchProcess:
                self.mongod = None
        self.samples: list[tuple] = []  # (monotonic, tree rss, tree pss or None, mongod rss)
        # CPU seconds of every descendant ever seen (forkserver workers are reaped by the
        # forkserver, not by us, so getrusage(RUSAGE_CHILDREN) would miss them)
        self.cpu_by_pid: dict = {}
        self._halt = threading.Event()

    def sample(self) -> None:
        now = time.monotonic()
        with_pss = now - self._last_pss >= self.pss_interval
        if with_pss:
            self._last_pss = now
        rss, pss, cpu = _tree_rss_cpu(self.me, pss=with_pss)
        pss = pss if with_pss else None
        for k, v in cpu.items():
            if v > self.cpu_by_pid.get(k, 0.0):
                self.cpu_by_pid[k] = v
        m = 0
        if self.mongod is not None:
            try:
                m = self.mongod.memory_info().rss
            except Exception:  # noqa: BLE001 - the server went away; report 0
                m = 0
        self.samples.append((time.monotonic(), rss, pss, m))

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()
        self.sample()

    def peaks(self, t0: float, t1: float) -> tuple[float, float, float]:
        """Peak tree RSS, tree PSS and mongod RSS (MB) between monotonic times ``t0`` and ``t1``."""
        inside = [s for s in self.samples if t0 - self.interval <= s[0] <= t1 + self.interval]
        if not inside:
            return 0.0, 0.0, 0.0
        psss = [s[2] for s in self.samples
                if s[2] is not None and t0 - self.pss_interval <= s[0] <= t1 + self.pss_interval]
        return (max(s[1] for s in inside) / MB, max(psss or [0]) / MB,
                max(s[3] for s in inside) / MB)

    def mongod_cpu(self) -> float:
        if self.mongod is None:
            return 0.0
        try:
            t = self.mongod.cpu_times()
            return t.user + t.system
        except Exception:  # noqa: BLE001
            return 0.0


class StepClock:
    """Cut the time since ``start()`` into named parts; ``mark(name)`` closes the current part."""

    def __init__(self, sampler: Sampler):
        self.sampler = sampler
        self.parts: list[dict] = []
        self._t = self._cpu = self._mcpu = None
        self.t_start = None

    def _now(self):
        self.sampler.sample()
        return (time.monotonic(), own_cpu_seconds() + sum(self.sampler.cpu_by_pid.values()),
                self.sampler.mongod_cpu())

    def start(self) -> None:
        self._t, self._cpu, self._mcpu = self._now()
        self.t_start = self._t

    def mark(self, name: str, **extra) -> dict:
        t, cpu, mcpu = self._now()
        rss, pss, mrss = self.sampler.peaks(self._t, t)
        part = {"name": name, "seconds": t - self._t, "cpu_seconds": cpu - self._cpu,
                "mongod_cpu_seconds": mcpu - self._mcpu, "peak_rss_mb": rss, "peak_pss_mb": pss,
                "mongod_rss_mb": mrss, "load_avg_1min": os.getloadavg()[0], **extra}
        self.parts.append(part)
        self._t, self._cpu, self._mcpu = t, cpu, mcpu
        return part
