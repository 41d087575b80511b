"""The dataset layer: the only package that reads or writes the database (FiftyOne, pymongo)."""

import os as _os

# Set before FiftyOne is first imported by this package: no analytics calls, and no MongoDB-6
# deprecation notice on every command (FiftyOne's own database fallback ships MongoDB 6).
_os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
_os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
