"""``rorem-data export``: the training set as it stood after round N, in three layouts.

The set is cumulative: seed pairs plus every candidate accepted in rounds <= N, judged by each
sample's decision history (so a past round exports the same after later rounds are added).

Formats
-------
``rorem``
    ``source/ mask/ GT/ meta.json``, the layout the official RORem training code reads
    (``meta.json`` is a list of ``{"source", "mask", "GT"}`` with relative paths). With
    ``with_rejected`` rejected pairs are added and every entry gets ``"score"`` (1 accepted,
    0 rejected): the discriminator-training format. Masks are RGB PNGs of 0/255.
``imagefolder``
    ``train/metadata.jsonl`` + images, Hugging Face ``datasets`` ImageFolder layout:
    ``file_name`` is the source image, ``target_file_name`` and ``mask_file_name`` the others.
``parquet``
    ``pairs.parquet``, one row per pair with metadata and the images' relative paths (files
    beside it), or with ``embed_images`` the images' bytes as ``{bytes, path}`` structs.

Every export has ``manifest.json``: counts per round, origin and status, and the sha256 of
every file. The same round exports byte-identically. Output is built in a temporary sibling
folder and renamed into place, so an interrupted export leaves no partial ``out`` folder.
"""

from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image

from rorem_data.core.version import __version__
from rorem_data.core import schema
from rorem_data.core.errors import ConfigError, ExportError
from rorem_data.core.images import read_mask
from rorem_data.core.progress import progress

FORMATS = ("rorem", "imagefolder", "parquet")


@dataclass
class ExportResult:
    out: str
    round: int
    format: str
    accepted: int
    rejected: int
    files: int

    def summary(self) -> str:
        s = f"exported round {self.round} ({self.format}) to {self.out}: {self.accepted} accepted"
        if self.rejected:
            s += f", {self.rejected} rejected"
        return s + f", {self.files} files"


@dataclass
class ExportRow:
    key: str
    kind: str
    origin: str
    category: str | None
    round: int
    status: str
    decided_by: str | None
    source: str
    mask: str
    target: str
    width: int
    height: int
    mask_area: float


def rows_as_of(project, round: int, *, with_rejected: bool = False) -> list[ExportRow]:
    """The pairs in the training set as of ``round``, sorted by (round, origin, key)."""
    ds = project.dataset
    coll = ds._sample_collection
    query = {"kind": {"$in": [schema.KIND_SEED, schema.KIND_CANDIDATE]},
             "decisions.round": {"$lte": int(round)}}
    proj = {"key": 1, "kind": 1, "origin": 1, "category": 1, "round": 1, "filepath": 1,
            "mask.mask_path": 1, "target_path": 1, "decisions.round": 1, "decisions.status": 1,
            "decisions.by": 1, "metadata.width": 1, "metadata.height": 1, "mask_area": 1}
    rows = []
    keep = {schema.ACCEPTED, schema.REJECTED} if with_rejected else {schema.ACCEPTED}
    for d in coll.find(query, proj):
        hist = [x for x in d.get("decisions") or [] if x and x.get("round") is not None
                and x["round"] <= round]
        if not hist:
            continue
        last = hist[-1]
        if last.get("status") not in keep:
            continue
        if not d.get("target_path"):
            continue
        rows.append(ExportRow(
            key=d["key"], kind=d["kind"], origin=d.get("origin") or "", category=d.get("category"),
            round=int(d.get("round") or 0), status=last["status"], decided_by=last.get("by"),
            source=d["filepath"], mask=d["mask"]["mask_path"], target=d["target_path"],
            width=int(d["metadata"]["width"]), height=int(d["metadata"]["height"]),
            mask_area=float(d.get("mask_area") or 0.0),
        ))
    rows.sort(key=lambda r: (r.round, r.origin, r.key))
    return rows


def _ext(path: str) -> str:
    return os.path.splitext(path)[1].lower() or ".png"


def _copy(src: str, dst: str) -> str:
    """Copy bytes and return their sha256."""
    try:
        with open(src, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ExportError(f"{src} is missing; it was imported but has since been moved or deleted. "
                          "Restore it, or mark the pair rejected, then export again") from None
    with open(dst, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def _mask_rgb_png(src: str) -> bytes:
    m = read_mask(src)
    arr = np.repeat(np.where(m, 255, 0).astype(np.uint8)[..., None], 3, axis=2)
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _write_mask(src: str, dst: str) -> str:
    try:
        data = _mask_rgb_png(src)
    except Exception as exc:  # noqa: BLE001 - re-raised with the file named
        raise ExportError(f"cannot read mask {src} ({exc}); restore it and export again") from None
    with open(dst, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def _write_files(tmp: str, rows: list[ExportRow], names: list[str], *, workers: int = 8) -> dict:
    """Copy sources/targets and write RGB masks into ``tmp``; returns {relpath: sha256}."""
    for d in ("source", "mask", "GT"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    jobs = []
    for r, n in zip(rows, names):
        jobs.append((_copy, r.source, f"source/{n}{_ext(r.source)}"))
        jobs.append((_write_mask, r.mask, f"mask/{n}.png"))
        jobs.append((_copy, r.target, f"GT/{n}{_ext(r.target)}"))
    hashes = {}
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            progress(total=len(jobs), desc="exporting files", unit="file") as bar:
        futs = [(rel, pool.submit(fn, src, os.path.join(tmp, rel))) for fn, src, rel in jobs]
        for rel, f in futs:
            hashes[rel] = f.result()
            bar.update(1)
    return hashes


def _rel_paths(r: ExportRow, n: str) -> tuple[str, str, str]:
    return f"source/{n}{_ext(r.source)}", f"mask/{n}.png", f"GT/{n}{_ext(r.target)}"


def _dump_json(obj, path: str, *, indent=1) -> str:
    data = (json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False) + "\n").encode()
    with open(path, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def _write_rorem(tmp, rows, names, with_rejected, hashes):
    meta = []
    for r, n in zip(rows, names):
        s, m, g = _rel_paths(r, n)
        e = {"source": s, "mask": m, "GT": g}
        if with_rejected:
            e["score"] = 1 if r.status == schema.ACCEPTED else 0
        meta.append(e)
    hashes["meta.json"] = _dump_json(meta, os.path.join(tmp, "meta.json"))


def _row_meta(r: ExportRow, with_rejected: bool) -> dict:
    d = {"key": r.key, "kind": r.kind, "origin": r.origin, "category": r.category,
         "round": r.round, "decided_by": r.decided_by, "width": r.width, "height": r.height,
         "mask_area": round(r.mask_area, 6)}
    if with_rejected:
        d["score"] = 1 if r.status == schema.ACCEPTED else 0
    return d


def _write_imagefolder(tmp, rows, names, with_rejected, hashes):
    lines = []
    for r, n in zip(rows, names):
        s, m, g = _rel_paths(r, n)
        row = {"file_name": s, "mask_file_name": m, "target_file_name": g, **_row_meta(r, with_rejected)}
        lines.append(json.dumps(row, sort_keys=True, ensure_ascii=False))
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    with open(os.path.join(tmp, "metadata.jsonl"), "wb") as fh:
        fh.write(data)
    hashes["metadata.jsonl"] = hashlib.sha256(data).hexdigest()


def _write_parquet(tmp, rows, names, with_rejected, hashes, embed_images):
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols: dict[str, list] = {k: [] for k in _row_meta(rows[0], with_rejected)} if rows else {}
    img_cols = {"source": [], "mask": [], "target": []}
    for r, n in zip(rows, names):
        for k, v in _row_meta(r, with_rejected).items():
            cols[k].append(v)
        for col, rel in zip(img_cols, _rel_paths(r, n)):
            if embed_images:
                with open(os.path.join(tmp, rel), "rb") as fh:
                    img_cols[col].append({"bytes": fh.read(), "path": rel})
            else:
                img_cols[col].append(rel)
    table = pa.table({**cols, **img_cols}) if rows else pa.table({"key": pa.array([], pa.string())})
    path = os.path.join(tmp, "pairs.parquet")
    pq.write_table(table, path, compression="zstd")
    if embed_images:
        for d in ("source", "mask", "GT"):
            shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
        for k in [k for k in hashes if k.split("/")[0] in ("source", "mask", "GT")]:
            del hashes[k]
    with open(path, "rb") as fh:
        hashes["pairs.parquet"] = hashlib.sha256(fh.read()).hexdigest()


def export_round(
    project,
    round: int,
    out: str,
    *,
    format: str = "rorem",
    with_rejected: bool = False,
    embed_images: bool = False,
    overwrite: bool = False,
    workers: int = 8,
) -> ExportResult:
    """Write the training set as it stood after ``round``.

    Parameters
    ----------
    project : Project
    round : int
        0 = seeds only; N = seeds plus everything accepted in rounds <= N.
    out : str
        Output folder; must not exist unless ``overwrite``.
    format : {"rorem", "imagefolder", "parquet"}
    with_rejected : bool
        Also export rejected pairs, each entry scored 1 (accepted) or 0 (rejected).
    embed_images : bool
        Parquet only: store image bytes in the table instead of files beside it.
    overwrite : bool
        Replace an existing ``out`` folder (swapped in only once the new export is complete).

    Returns
    -------
    ExportResult

    Raises
    ------
    ConfigError
        Unknown format, negative round, or a round the project has not reached.
    ExportError
        ``out`` exists (without ``overwrite``), or an imported file has gone missing.
    """
    if format not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}; got {format!r}")
    if embed_images and format != "parquet":
        raise ConfigError("--embed-images only applies to --format parquet")
    if not isinstance(round, int) or round < 0:
        raise ConfigError(f"--round must be an integer >= 0; got {round!r}")
    latest = latest_round(project)
    if round > latest:
        raise ConfigError(f"round {round} has not happened yet; the latest round of this project "
                          f"is {latest}")
    out = os.path.abspath(out)
    if os.path.exists(out) and not overwrite:
        raise ExportError(f"{out} already exists; choose another --out or pass --overwrite")
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    for stale in glob.glob(glob.escape(out) + ".partial-*"):
        shutil.rmtree(stale, ignore_errors=True)

    rows = rows_as_of(project, round, with_rejected=with_rejected)
    names = [r.key for r in rows]
    tmp = f"{out}.partial-{os.getpid()}"
    os.makedirs(tmp)
    try:
        hashes = _write_files(tmp, rows, names, workers=workers)
        if format == "rorem":
            _write_rorem(tmp, rows, names, with_rejected, hashes)
        elif format == "imagefolder":
            _write_imagefolder(tmp, rows, names, with_rejected, hashes)
        else:
            _write_parquet(tmp, rows, names, with_rejected, hashes, embed_images)
        counts = Counter(r.status for r in rows)
        manifest = {
            "tool": "rorem-data",
            "tool_version": __version__,
            "project": project.name,
            "round": round,
            "format": format,
            "with_rejected": with_rejected,
            "embed_images": embed_images,
            "counts": {
                "pairs": len(rows),
                "accepted": counts.get(schema.ACCEPTED, 0),
                "rejected": counts.get(schema.REJECTED, 0),
                "by_round": _count(rows, lambda r: str(r.round)),
                "by_origin": _count(rows, lambda r: r.origin),
                "by_kind": _count(rows, lambda r: r.kind),
                "by_decided_by": _count(rows, lambda r: r.decided_by or ""),
            },
            "files": dict(sorted(hashes.items())),
        }
        _dump_json(manifest, os.path.join(tmp, "manifest.json"))
        if os.path.exists(out):
            trash = f"{out}.old-{os.getpid()}"
            os.rename(out, trash)
            os.rename(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out=out, round=round, format=format,
                        accepted=counts.get(schema.ACCEPTED, 0),
                        rejected=counts.get(schema.REJECTED, 0), files=len(hashes) + 1)


def _count(rows, fn) -> dict:
    c = Counter(fn(r) for r in rows)
    return {k: c[k] for k in sorted(c)}


def latest_round(project) -> int:
    """Highest round number with any sample or decision (0 for a seed-only project)."""
    coll = project.dataset._sample_collection
    best = 0
    for field in ("round", "decisions.round"):
        d = coll.find_one({field: {"$ne": None}}, {field: 1}, sort=[(field, -1)])
        if d is not None:
            v = d
            for part in field.split("."):
                v = v.get(part) if isinstance(v, dict) else v
            if isinstance(v, list):
                v = max((x.get("round") or 0) for x in v if x) if v else 0
            if isinstance(v, int):
                best = max(best, v)
    from rorem_data.dataset import store

    for rec in store.get_round_records(project.dataset_name):
        best = max(best, int(rec.get("round", 0)))
    return best
