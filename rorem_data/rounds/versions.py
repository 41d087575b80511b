"""Discriminator versions stored in a project: ``<project>/models/discriminators/<version>/``.

A version folder holds the fitted model (``model/``), the spec it was trained from, and
``meta.json``: the labels it was trained on, its held-out labels and calibrated scores, the
calibration, agreement with humans and the removers it has seen.
"""

from __future__ import annotations

import json
import os

from rorem_data.core.errors import ConfigError

def versions_dir(project) -> str:
    return os.path.join(project.root, "models", "discriminators")


def version_dir(project, version: str) -> str:
    return os.path.join(versions_dir(project), version)


def load_version_meta(project, version: str) -> dict:
    """The record of a trained discriminator version (``meta.json`` in its folder)."""
    path = os.path.join(version_dir(project, version), "meta.json")
    if not os.path.exists(path):
        known = sorted(os.listdir(versions_dir(project))) if os.path.isdir(versions_dir(project)) else []
        raise ConfigError(f"discriminator version {version!r} is not in this project; known: "
                          f"{', '.join(known) or 'none (run `rorem-data discriminator train`)'}")
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def write_version_meta(project, version: str, meta: dict) -> str:
    """Write (atomically) the ``meta.json`` of a discriminator version; returns its folder."""
    import re

    if not re.fullmatch(r"[A-Za-z0-9_]+", version):
        raise ConfigError(f"discriminator version {version!r} may only hold letters, digits and '_'")
    d = version_dir(project, version)
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, "meta.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({**meta, "version": version}, fh, indent=1, default=str)
    os.replace(tmp, os.path.join(d, "meta.json"))
    return d


def latest_version(project) -> str | None:
    d = versions_dir(project)
    if not os.path.isdir(d):
        return None
    metas = []
    for v in os.listdir(d):
        p = os.path.join(d, v, "meta.json")
        if os.path.exists(p):
            with open(p, encoding="utf-8") as fh:
                m = json.load(fh)
            metas.append((m.get("trained_at", ""), v))
    return max(metas)[1] if metas else None
