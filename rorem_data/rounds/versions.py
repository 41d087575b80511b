"""Discriminator versions stored in a project: ``<project>/models/discriminators/<version>/``.

A version folder holds ``meta.json`` (when and on which labels it was trained, its held-out
labels and calibrated scores, the calibration, agreement with humans, the removers it has seen)
and ``model/``, the saved discriminator with the full spec it was trained from
(:mod:`rorem_data.discriminators.persistence`).

Version names come from the command line and from data (round records, saved selections), so
they are checked on every read and write: letters, digits and ``_`` only - no ``..``, no
separators, no absolute paths. A corrupt ``meta.json`` is one clear error naming the file;
:func:`latest_version` skips such a version (with a warning) instead of breaking every command.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets

from rorem_data.core import jsonfile
from rorem_data.core.checks import is_int, round_number
from rorem_data.core.errors import ConfigError

log = logging.getLogger(__name__)

__all__ = ["check_version_name", "latest_version", "list_versions", "load_version_meta",
           "version_dir", "versions_dir", "write_version_meta"]

_NAME = re.compile(r"[A-Za-z0-9_]+")
META_NAME = "meta.json"


def versions_dir(project) -> str:
    """``<project>/models/discriminators``."""
    return os.path.join(project.root, "models", "discriminators")


def check_version_name(version) -> str:
    """``version`` if it is a plain version name (``[A-Za-z0-9_]+``).

    Raises
    ------
    ConfigError
        Anything else (``../x``, ``/abs``, ``a/b``, empty, not a string).

    Examples
    --------
    >>> check_version_name("stats_logistic_r1_ab12cd")
    'stats_logistic_r1_ab12cd'
    """
    if not isinstance(version, str) or not _NAME.fullmatch(version):
        raise ConfigError(f"discriminator version must be a name of letters, digits and '_' "
                          f"(as rorem_data.rounds.versions.list_versions(project) lists them); got {version!r}")
    return version


def version_dir(project, version: str) -> str:
    """The folder of ``version`` (the name is checked first)."""
    return os.path.join(versions_dir(project), check_version_name(version))


def list_versions(project) -> list[str]:
    """Names of the version folders in the project (valid names only), sorted."""
    d = versions_dir(project)
    if not os.path.isdir(d):
        return []
    return sorted(v for v in os.listdir(d) if _NAME.fullmatch(v)
                  and os.path.isdir(os.path.join(d, v)))


def load_version_meta(project, version: str) -> dict:
    """The record of a trained discriminator version (``meta.json`` in its folder).

    Raises
    ------
    ConfigError
        A bad version name, a version that is not in the project (the message lists the known
        ones), or a ``meta.json`` that is corrupt, truncated or not an object (names the file).
    """
    path = os.path.join(version_dir(project, version), META_NAME)
    if not os.path.exists(path):
        known = list_versions(project)
        raise ConfigError(f"discriminator version {version!r} is not in this project; known: "
                          f"{', '.join(known) or 'none (train one with rorem_data.train_discriminator)'}")
    fix = (f"retrain it (rorem_data.train_discriminator) or delete the folder "
           f"{os.path.dirname(path)}")
    meta = jsonfile.load(path, what=f"the record of discriminator version {version!r} ({path})",
                         fix=fix)
    if not isinstance(meta, dict):
        raise ConfigError(f"the record of discriminator version {version!r} ({path}) is not a "
                          f"JSON object; {fix}")
    return meta


def write_version_meta(project, version: str, meta: dict) -> str:
    """Write (atomically) the ``meta.json`` of a discriminator version; returns its folder."""
    d = version_dir(project, version)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".{META_NAME}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({**meta, "version": version}, fh, indent=1, default=str)
        os.replace(tmp, os.path.join(d, META_NAME))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return d


def latest_version(project, *, before_round: int | None = None) -> str | None:
    """The most recently trained version (by its ``trained_at``), or None.

    Parameters
    ----------
    before_round : int, optional
        Only versions trained on the labels of rounds before this one (``meta["round"] <
        before_round``): the discriminator that was fixed before the round began.

    Versions whose ``meta.json`` is missing are ignored; corrupt ones are skipped with a
    warning naming them.
    """
    if before_round is not None:
        before_round = round_number(before_round, "before_round")
    found = []
    for v in list_versions(project):
        if not os.path.exists(os.path.join(version_dir(project, v), META_NAME)):
            continue
        try:
            meta = load_version_meta(project, v)
        except ConfigError as exc:
            log.warning(f"skipping discriminator version {v!r}: {exc}")
            continue
        trained_on = meta.get("round")
        if before_round is not None and not (is_int(trained_on) and trained_on < before_round):
            continue
        found.append((str(meta.get("trained_at", "")), v))
    return max(found)[1] if found else None
