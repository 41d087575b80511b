"""Problems found in input data, and the parallel file checker (paths: :mod:`rorem_data.core.paths`).

Importers first collect every problem (never stopping at the first), then either refuse the
whole import or, with ``skip_invalid``, import the good items and write the report to a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Sequence, TypeVar

from rorem_data.core.errors import ValidationError
from rorem_data.core.progress import progress

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Problem:
    """One bad input item.

    Attributes
    ----------
    item : str
        Which item, e.g. ``"meta.json entry 17"``.
    file : str
        The file at fault (may be empty when the item itself is malformed).
    problem : str
        What is wrong.
    fix : str
        What to do about it.
    """

    item: str
    file: str
    problem: str
    fix: str

    def __str__(self) -> str:
        where = f" [{self.file}]" if self.file else ""
        return f"{self.item}{where}: {self.problem}. Fix: {self.fix}"


def write_report(problems: Sequence[Problem], path: str) -> None:
    """Write problems as a JSON list of ``{item, file, problem, fix}`` objects."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        json.dump([asdict(p) for p in problems], fh, indent=1)
        fh.write("\n")


def _run_chunk(args):
    fn, chunk = args
    return [fn(t) for t in chunk]


def map_checks(
    fn: Callable[[T], R],
    tasks: Sequence[T],
    *,
    desc: str,
    workers: int | None = None,
    chunk_size: int = 256,
) -> list[R]:
    """Apply a picklable, module-level ``fn`` to every task, in parallel, with a progress bar.

    Small inputs run in this process. Results keep the order of ``tasks``. Workers are started
    with ``forkserver`` so an open database client is never forked; at most a few chunks per
    worker are in flight at once, so memory stays flat however many tasks there are.

    Raises
    ------
    ValidationError
        A worker process died (e.g. a decoder crashed on a file); the message names the
        chunk's first item so it can be found and fixed.
    """
    n = len(tasks)
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    if n < 4 * chunk_size or workers <= 1:
        out = []
        with progress(total=n, desc=desc, unit="item") as bar:
            for t in tasks:
                out.append(fn(t))
                bar.update(1)
        return out
    import multiprocessing as mp
    from concurrent.futures.process import BrokenProcessPool

    starts = range(0, n, chunk_size)
    out: list[R] = []
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["rorem_data.core.validate"])  # not the caller's script
    in_flight = max(2, 3 * workers)
    pending: deque = deque()
    with _main_not_rerun(), ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool, \
            progress(total=n, desc=desc, unit="item") as bar:
        it = iter(starts)
        try:
            for start in it:
                pending.append((start, pool.submit(_run_chunk, (fn, tasks[start : start + chunk_size]))))
                if len(pending) >= in_flight:
                    break
            while pending:
                start, fut = pending[0]
                res = fut.result()
                pending.popleft()
                out.extend(res)
                bar.update(len(res))
                nxt = next(it, None)
                if nxt is not None:
                    pending.append((nxt, pool.submit(_run_chunk, (fn, tasks[nxt : nxt + chunk_size]))))
        except BrokenProcessPool:
            # the pool can break while a chunk is being submitted as well as while one is awaited;
            # either way the oldest unfinished chunk is the first suspect
            start = pending[0][0] if pending else len(out)
            raise ValidationError(
                f"{desc}: a worker process died while checking items {start}-"
                f"{min(n, start + chunk_size) - 1} (first: {_shown(tasks[start])}): it ran "
                "out of memory, was killed, or a decoder crashed on a file there. Nothing was "
                "written; run again, with workers=1 (--workers 1) to find the file, or drop those "
                "items") from None
    return out


@contextlib.contextmanager
def _main_not_rerun():
    """Keep worker processes from running the caller's script again.

    ``spawn`` / ``forkserver`` children re-execute the main script (as ``__mp_main__``) unless it
    is guarded by ``if __name__ == "__main__":`` - a notebook-style script that calls rorem_data
    would run whole again in every worker. The workers only need rorem_data's own modules, so
    the main module's file is hidden from them while the pool lives.
    """
    main = sys.modules.get("__main__")
    saved = {}
    if main is not None:
        for attr in ("__file__", "__spec__"):
            if hasattr(main, attr):
                saved[attr] = getattr(main, attr)
        if "__file__" in saved:
            del main.__file__
        if "__spec__" in saved:
            main.__spec__ = None
    try:
        yield
    finally:
        for attr, value in saved.items():
            setattr(main, attr, value)


def _shown(task) -> str:
    text = repr(task)
    return text if len(text) <= 160 else text[:157] + "..."


def first_duplicates(keys: Iterable[object]) -> dict[int, int]:
    """Map position -> position of its first occurrence, for every repeated key."""
    seen: dict[object, int] = {}
    dup: dict[int, int] = {}
    for i, k in enumerate(keys):
        if k in seen:
            dup[i] = seen[k]
        else:
            seen[k] = i
    return dup
