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

Every export has ``manifest.json``: counts per round, origin, status and license, what a
license filter left out, and the sha256 of every file. The same round exports byte-identically.

Licenses travel with the pairs: each pair's ``license`` (``"unknown"`` when unset) is counted in
the manifest, written per row in ``imagefolder`` and ``parquet``, and ``license_allow`` /
``license_deny`` filter on it; ``"unknown"`` passes an allow-list only when listed.

Output folders go through :mod:`rorem_data.core.outputs`: built in a marked per-run sibling,
swapped in atomically (an overwrite leaves the old or the new export after a kill at any point,
and the next run cleans up), replaced only when they hold an export marker, never the project or
its media folder. The marker in a finished export has fixed content (kind, round, format), so
exports stay byte-identical; it is not listed in the manifest. Before any byte is copied, every
stored file is checked (:mod:`rorem_data.dataset.export_sources`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from rorem_data.core.display import Displayable
from rorem_data.core import schema
from rorem_data.core.errors import ConfigError, ExportError
from rorem_data.core.images import ImageProblem, read_mask
from rorem_data.core.progress import progress
from rorem_data.core.progress import takes_progress
from rorem_data.core.registry import Registry
from rorem_data.core.version import __version__
from rorem_data.dataset import export_outputs
from rorem_data.dataset.export_sources import locate_pairs
from rorem_data.dataset.ingest_license import license_list

# Export formats: name -> writer ``fn(stage, rows, names, hashes, *, with_rejected, embed_images)``
# that writes its index files into ``stage`` (the images are already there) and records their
# sha256 in ``hashes``. Register more with :func:`register_export_format`.
EXPORT_FORMATS = Registry("export format", {
    "rorem": "rorem_data.dataset.export:write_rorem",
    "imagefolder": "rorem_data.dataset.export:write_imagefolder",
    "parquet": "rorem_data.dataset.export:write_parquet",
})
FORMATS = tuple(EXPORT_FORMATS.names())


def list_export_formats() -> list[str]:
    """Names of the export formats (``rorem``, ``imagefolder``, ``parquet``, registered ones)."""
    return EXPORT_FORMATS.names()


def register_export_format(name: str, target, *, overwrite: bool = False) -> None:
    """Register an export format: ``"module:function"`` or a function with the writer
    signature above (set ``fn.embeds_images = True`` if it can embed image bytes)."""
    EXPORT_FORMATS.register(name, target, overwrite=overwrite)
#: the output kind in the marker of every export folder (:mod:`rorem_data.core.outputs`)
KIND = export_outputs.KIND
DENIED = "denied by --license-deny"
NOT_ALLOWED = "not in --license-allow"
MODEL = " (license of the remover weights)"
NOT_RECORDED = "not recorded"


@dataclass(repr=False)
class ExportResult(Displayable):
    """Summary of one export.

    Attributes
    ----------
    out : str
    round : int
    format : str
    accepted, rejected : int
        Pairs written, by status.
    files : int
        Files written (manifest included).
    by_license : dict
        ``{license: pairs written}``.
    left_out : dict
        ``{license: {"pairs": n, "reason": why}}`` for pairs a license filter left out.
    """

    out: str
    round: int
    format: str
    accepted: int
    rejected: int
    files: int
    by_license: dict = field(default_factory=dict)
    left_out: dict = field(default_factory=dict)

    def summary(self) -> str:
        s = f"exported round {self.round} ({self.format}) to {self.out}: {self.accepted} accepted"
        if self.rejected:
            s += f", {self.rejected} rejected"
        s += f", {self.files} files"
        unknown = self.by_license.get(schema.UNKNOWN_LICENSE, 0)
        if unknown:
            s += f"; {unknown} pair(s) have an unknown license"
        if self.left_out:
            n = sum(v["pairs"] for v in self.left_out.values())
            parts = ", ".join(f"{v['pairs']} {lic} ({v['reason']})"
                              for lic, v in sorted(self.left_out.items()))
            s += f"; left out {n} pair(s) by license: {parts}"
        return s


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
    license: str = schema.UNKNOWN_LICENSE
    license_url: str | None = None
    model_license: str | None = None


def rows_as_of(project, round: int, *, with_rejected: bool = False) -> list[ExportRow]:
    """The pairs in the training set as of ``round``, sorted by (round, origin, key)."""
    ds = project.dataset
    coll = ds._sample_collection
    query = {"kind": {"$in": [schema.KIND_SEED, schema.KIND_CANDIDATE]},
             "decisions.round": {"$lte": int(round)}}
    proj = {"key": 1, "kind": 1, "origin": 1, "category": 1, "round": 1, "filepath": 1,
            "mask.mask_path": 1, "target_path": 1, "decisions.round": 1, "decisions.status": 1,
            "decisions.by": 1, "metadata.width": 1, "metadata.height": 1, "mask_area": 1,
            "license": 1, "license_url": 1, "generator.license": 1}
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
            license=str(d.get("license") or schema.UNKNOWN_LICENSE),
            license_url=d.get("license_url") or None,
            model_license=_model_license(d),
        ))
    rows.sort(key=lambda r: (r.round, r.origin, r.key))
    return rows


def _model_license(doc: dict) -> str | None:
    """The license of the remover weights that made a candidate (its spec's ``license``), or
    None: a seed, a remover without weights, or one whose license was not given."""
    gen = doc.get("generator")
    lic = gen.get("license") if isinstance(gen, dict) else None
    return str(lic) if lic else None


def _ext(path: str) -> str:
    return os.path.splitext(path)[1].lower() or ".png"


def _copy(src: str, dst: str, pair: str) -> str:
    """Copy bytes and return their sha256."""
    try:
        with open(src, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise ExportError(f"{pair}: {src} is missing; it was imported but has since been moved or "
                          "deleted. Restore it, or mark the pair rejected, then export again") from None
    except OSError as exc:
        raise ExportError(f"{pair}: {src} cannot be read ({exc.strerror}); restore it and export "
                          "again") from None
    with open(dst, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def _mask_rgb_png(src: str) -> bytes:
    m = read_mask(src)
    arr = np.repeat(np.where(m, 255, 0).astype(np.uint8)[..., None], 3, axis=2)
    buf = io.BytesIO()
    Image.fromarray(arr, mode="RGB").save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def _write_mask(src: str, dst: str, pair: str) -> str:
    try:
        data = _mask_rgb_png(src)
    except (ImageProblem, OSError, ValueError) as exc:
        raise ExportError(f"{pair}: cannot read mask {src} ({exc}); restore it and export "
                          "again") from None
    with open(dst, "wb") as fh:
        fh.write(data)
    return hashlib.sha256(data).hexdigest()


def _write_files(tmp: str, rows: list[ExportRow], names: list[str], located, *,
                 workers: int = 8) -> dict:
    """Copy sources/targets and write RGB masks into ``tmp`` from the ``located`` real paths;
    returns {relpath: sha256}."""
    for d in ("source", "mask", "GT"):
        os.makedirs(os.path.join(tmp, d), exist_ok=True)
    jobs = []
    for r, n, (src, msk, tgt) in zip(rows, names, located):
        pair = f"pair {r.key}"
        jobs.append((_copy, src, f"source/{n}{_ext(r.source)}", pair))
        jobs.append((_write_mask, msk, f"mask/{n}.png", pair))
        jobs.append((_copy, tgt, f"GT/{n}{_ext(r.target)}", pair))
    hashes = {}
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            progress(total=len(jobs), desc="exporting files", unit="file") as bar:
        futs = [(rel, pool.submit(fn, src, os.path.join(tmp, rel), pair))
                for fn, src, rel, pair in jobs]
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


def write_rorem(tmp, rows, names, hashes, *, with_rejected=False, embed_images=False):
    """``meta.json`` for the official RORem training code (relative paths; ``score`` 1/0 with
    rejected pairs)."""
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
         "mask_area": round(r.mask_area, 6), "license": r.license, "license_url": r.license_url,
         "model_license": r.model_license}
    if with_rejected:
        d["score"] = 1 if r.status == schema.ACCEPTED else 0
    return d


def write_imagefolder(tmp, rows, names, hashes, *, with_rejected=False, embed_images=False):
    """``metadata.jsonl`` for Hugging Face ``datasets``' ImageFolder loader."""
    lines = []
    for r, n in zip(rows, names):
        s, m, g = _rel_paths(r, n)
        row = {"file_name": s, "mask_file_name": m, "target_file_name": g, **_row_meta(r, with_rejected)}
        lines.append(json.dumps(row, sort_keys=True, ensure_ascii=False))
    data = ("\n".join(lines) + "\n").encode() if lines else b""
    with open(os.path.join(tmp, "metadata.jsonl"), "wb") as fh:
        fh.write(data)
    hashes["metadata.jsonl"] = hashlib.sha256(data).hexdigest()


def write_parquet(tmp, rows, names, hashes, *, with_rejected=False, embed_images=False):
    """``pairs.parquet``: one row per pair, paths or (``embed_images``) the images' bytes."""
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


write_parquet.embeds_images = True


def license_filter(rows: list[ExportRow], allow: list[str] | None, deny: list[str] | None):
    """Split rows by license: ``(kept, left_out)`` with ``left_out = {license: {pairs, reason}}``.

    Each pair is checked with the license of its pool item and, for a candidate, the license
    of the remover weights that made it (the remover spec's ``license``, when given). A
    license in ``deny`` is left out; with ``allow``, so is every license not in it -
    ``"unknown"`` included unless it is listed. A remover whose license was not recorded
    does not count against the filters (``counts.by_model_license`` shows them).
    """
    kept, left = [], {}
    for r in rows:
        reason = lic = None
        for lic, what in ((r.license, ""), (r.model_license, MODEL)):
            if lic is None:
                continue
            if deny and lic in deny:
                reason = DENIED + what
            elif allow is not None and lic not in allow:
                reason = NOT_ALLOWED + what
            if reason:
                break
        if reason is None:
            kept.append(r)
            continue
        entry = left.setdefault(lic, {"pairs": 0, "reason": reason})
        entry["pairs"] += 1
    return kept, dict(sorted(left.items()))


def _license_urls(rows) -> dict:
    urls: dict[str, set] = {}
    for r in rows:
        if r.license_url:
            urls.setdefault(r.license, set()).add(r.license_url)
    return {k: sorted(v) for k, v in sorted(urls.items())}


@takes_progress
def export_round(
    project,
    round: int,
    out: str,
    *,
    format: str = "rorem",
    with_rejected: bool = False,
    embed_images: bool = False,
    overwrite: bool = False,
    license_allow=None,
    license_deny=None,
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
        Replace an existing ``out`` folder - only one that an export wrote (it holds the export
        marker) and never the project or its media folder; the new export is swapped in
        atomically once complete.
    license_allow : list of str or str, optional
        Export only pairs with these licenses (a list, or one comma-separated string);
        ``"unknown"`` passes only when listed.
    license_deny : list of str or str, optional
        Leave out pairs with these licenses.
    workers : int
        Threads copying files.
    progress : bool, optional
        Progress bars: True shows them (terminal and Jupyter), False hides them, None
        decides by itself.

    Returns
    -------
    ExportResult
        With ``by_license`` and, after a filter, ``left_out`` per license (also in the
        manifest).

    Raises
    ------
    ConfigError
        Unknown format, negative round, a round the project has not reached, or a license list
        that is empty or names a license both allowed and denied.
    ExportError
        ``out`` exists (without ``overwrite``) or may not be replaced; a stored file has gone
        missing or been replaced by a symlink since import (every such pair is named).

    Examples
    --------
    >>> export_round(project, 2, "exports/r2", license_deny="CC-BY-NC-4.0")  # doctest: +SKIP
    """
    writer = EXPORT_FORMATS.get(format)
    if embed_images and not getattr(writer, "embeds_images", False):
        raise ConfigError(f"embed_images applies to formats that embed images "
                          f"({', '.join(n for n in list_export_formats() if getattr(EXPORT_FORMATS.get(n), 'embeds_images', False))}), "
                          f"not {format!r}")
    if not isinstance(round, int) or isinstance(round, bool) or round < 0:
        raise ConfigError(f"round must be an integer >= 0; got {round!r}")
    allow = license_list(license_allow, "license_allow")
    deny = license_list(license_deny, "license_deny")
    both = sorted(set(allow or ()) & set(deny or ()))
    if both:
        raise ConfigError(f"license_allow and license_deny both name {', '.join(both)}; "
                          "list each license in one of them")
    latest = latest_round(project)
    if round > latest:
        raise ConfigError(f"round {round} has not happened yet; the latest round of this project "
                          f"is {latest}")
    out = os.path.abspath(out)
    protected = (project.root, project.media_dir)
    export_outputs.prepare(out, overwrite=overwrite, protected=protected)

    rows, left_out = license_filter(rows_as_of(project, round, with_rejected=with_rejected),
                                    allow, deny)
    located = locate_pairs(rows, project.media_dir, round=round)
    names = [r.key for r in rows]
    stage = export_outputs.staging(out, round=round, format=format, project=project.name)
    try:
        hashes = _write_files(stage, rows, names, located, workers=workers)
        writer(stage, rows, names, hashes, with_rejected=with_rejected, embed_images=embed_images)
        counts = Counter(r.status for r in rows)
        by_license = _count(rows, lambda r: r.license)
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
                "by_license": by_license,
                "by_model_license": _count(rows, lambda r: r.model_license or NOT_RECORDED),
            },
            "license_urls": _license_urls(rows),
            "license_filter": {"allow": allow, "deny": deny},
            "left_out": {"pairs": sum(v["pairs"] for v in left_out.values()),
                         "by_license": left_out},
            "files": dict(sorted(hashes.items())),
        }
        _dump_json(manifest, os.path.join(stage, "manifest.json"))
        export_outputs.publish(stage, out, overwrite=overwrite, protected=protected)
    finally:
        export_outputs.discard(stage)
    return ExportResult(out=out, round=round, format=format,
                        accepted=counts.get(schema.ACCEPTED, 0),
                        rejected=counts.get(schema.REJECTED, 0), files=len(hashes) + 1,
                        by_license=by_license, left_out=left_out)


def _count(rows, fn) -> dict:
    c = Counter(fn(r) for r in rows)
    return {k: c[k] for k in sorted(c)}


def latest_round(project) -> int:
    """Highest round number with any sample or decision (0 for a seed-only project)."""
    coll = project.dataset._sample_collection
    best = 0
    for path in ("round", "decisions.round"):
        d = coll.find_one({path: {"$ne": None}}, {path: 1}, sort=[(path, -1)])
        if d is not None:
            v = d
            for part in path.split("."):
                v = v.get(part) if isinstance(v, dict) else v
            if isinstance(v, list):
                v = max((x.get("round") or 0) for x in v if x) if v else 0
            if isinstance(v, int):
                best = max(best, v)
    from rorem_data.dataset import store

    for rec in store.get_round_records(project.dataset_name):
        best = max(best, int(rec.get("round", 0)))
    return best
