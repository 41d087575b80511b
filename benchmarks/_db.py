"""Start FiftyOne's mongod as a server for a benchmark run (the same binary the tests use).

``start_server()`` runs it on a fresh folder removed at exit; ``start_server(dbpath)`` on a folder
that is kept, so a later run can reopen the projects an earlier one built
(``paper_scale.py --keep-db``). The server is stopped when the run exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time


def start_server(dbpath: str | None = None) -> str:
    """Start ``mongod`` and point ``FIFTYONE_DATABASE_URI`` at it; returns the URI.

    Without ``dbpath`` the database lives in a temporary folder deleted at exit; with it, the
    folder is created if missing and kept.
    """
    from rorem_data.doctor import fiftyone_mongod

    keep = dbpath is not None
    if keep:
        os.makedirs(dbpath, exist_ok=True)
    else:
        dbpath = tempfile.mkdtemp(prefix="rorem-bench-db-")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([fiftyone_mongod(), "--dbpath", dbpath, "--port", str(port),
                             "--bind_ip", "127.0.0.1", "--nounixsocket", "--quiet",
                             "--logpath", os.path.join(dbpath, "log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop():
        proc.terminate()
        proc.wait(60)
        if not keep:
            shutil.rmtree(dbpath, ignore_errors=True)

    atexit.register(stop)
    for _ in range(600):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"mongod on {dbpath} exited at start (code {proc.returncode}); "
                                 f"see {os.path.join(dbpath, 'log')}")
            time.sleep(0.1)
    uri = f"mongodb://127.0.0.1:{port}"
    os.environ["FIFTYONE_DATABASE_URI"] = uri
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    return uri
