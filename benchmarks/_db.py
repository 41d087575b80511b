"""Start FiftyOne's mongod as a throw-away server for a benchmark run (same as the tests)."""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import tempfile
import time


def start_server() -> str:
    from rorem_data.doctor import fiftyone_mongod

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
        proc.wait(20)
        shutil.rmtree(dbpath, ignore_errors=True)

    atexit.register(stop)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    uri = f"mongodb://127.0.0.1:{port}"
    os.environ["FIFTYONE_DATABASE_URI"] = uri
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    return uri
