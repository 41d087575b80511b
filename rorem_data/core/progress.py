"""Progress bars (tqdm) that show where a person is watching: a terminal or a notebook.

Every long function takes ``progress``: ``True`` shows a bar (a widget in Jupyter when
``ipywidgets`` is installed, text otherwise), ``False`` hides it, ``None`` (the default)
decides: the ``ROREM_PROGRESS`` environment variable when set (``1`` / ``0``), else shown on a
terminal and in a notebook, hidden elsewhere (logs, CI, pipes).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys

_SCOPE: contextvars.ContextVar = contextvars.ContextVar("rorem_progress", default=None)


@contextlib.contextmanager
def scope(enabled: bool | None):
    """Within the block, bars asked for with ``enabled=None`` follow ``enabled`` (a public
    function's ``progress=`` reaches the helpers it calls without threading it through)."""
    token = _SCOPE.set(enabled) if enabled is not None else None
    try:
        yield
    finally:
        if token is not None:
            _SCOPE.reset(token)


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ZMQ shell, or a subclass such as
    Colab's)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001 - an IPython too old or half-imported: not a kernel
        return False
    # Jupyter, VS Code and Colab kernels: a ZMQInteractiveShell or a subclass of it
    return shell is not None and any(c.__name__ == "ZMQInteractiveShell" for c in type(shell).__mro__)


def takes_progress(fn):
    """Give ``fn`` a keyword ``progress`` (shown in its signature): the bars of everything it
    calls follow it (see :func:`scope`). For functions whose work is spread over helpers."""
    import functools
    import inspect

    sig = inspect.signature(fn)
    if "progress" in sig.parameters:
        return fn
    params = list(sig.parameters.values())
    extra = inspect.Parameter("progress", inspect.Parameter.KEYWORD_ONLY, default=None)
    at = next((i for i, p in enumerate(params) if p.kind == p.VAR_KEYWORD), len(params))
    params.insert(at, extra)

    @functools.wraps(fn)
    def wrapper(*args, progress: bool | None = None, **kwargs):
        with scope(progress):
            return fn(*args, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)
    return wrapper


def _has_widgets() -> bool:
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def show(enabled: bool | None = None) -> bool:
    """Whether a bar is shown for ``progress=enabled`` (see the module docstring)."""
    if enabled is None:
        enabled = _SCOPE.get()
    if enabled is not None:
        return bool(enabled)
    env = os.environ.get("ROREM_PROGRESS")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    if in_notebook():
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress(*, total: int | None, desc: str, unit: str = "it", disable: bool | None = None,
             enabled: bool | None = None):
    """A tqdm progress bar (a context manager with ``update(n)``).

    Parameters
    ----------
    total : int or None
    desc, unit : str
    enabled : bool, optional
        ``progress=`` as the caller's user passed it (see the module docstring).
    disable : bool, optional
        The opposite of ``enabled`` (older spelling); ``enabled`` wins when both are given.
    """
    if enabled is None and disable is not None:
        enabled = not disable
    on = show(enabled)
    if on and in_notebook() and _has_widgets():
        from tqdm.notebook import tqdm
    else:
        from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, disable=not on, dynamic_ncols=True,
                smoothing=0.1, mininterval=0.5, file=sys.stderr)
