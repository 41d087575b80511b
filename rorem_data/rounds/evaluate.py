"""``rorem-data evaluate --test DIR --remover SPEC``: how good is a remover on a test set?

The test set is a RORem-layout folder (``meta.json`` listing ``source`` and ``mask``, with
optional ``GT`` object-free targets and optional human ``score`` 1/0 for results judged earlier)
or a pool folder (``images/`` + ``masks/``). The remover runs on every item (results are written
to ``OUT/results``); the report gives the time per image, PSNR / SSIM inside and outside the mask
against the targets where they exist (LPIPS when its weights are installed), and the success
rate: from human labels where present, otherwise the discriminator's estimate, and the
prediction-powered estimate when both exist.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from PIL import Image

from rorem_data.core.errors import ConfigError
from rorem_data.core.progress import takes_progress


def read_test_set(path: str) -> list[dict]:
    """Items ``{name, source, mask, target?, label?}`` of a test folder (see the module doc)."""
    from rorem_data.core import jsonfile
    from rorem_data.core.paths import UnsafePath, join_inside
    from rorem_data.dataset.pool import scan_folder

    path = os.path.abspath(path)
    meta = os.path.join(path, "meta.json") if os.path.isdir(path) else path
    if os.path.isfile(meta):
        data = jsonfile.load(meta, fix="write a JSON list of {source, mask[, GT][, score]} objects")
        safe_join = (lambda root, rel: _inside(join_inside, UnsafePath, root, rel, meta))
        if not isinstance(data, list):
            raise ConfigError(f"{meta} must be a JSON list of {{source, mask[, GT][, score]}} objects")
        root = os.path.dirname(meta)
        items = []
        for i, e in enumerate(data):
            if not isinstance(e, dict) or "source" not in e or "mask" not in e:
                raise ConfigError(f"{os.path.basename(meta)} entry {i} needs 'source' and 'mask'")
            it = {"name": f"{i:06d}", "source": safe_join(root, e["source"]), "mask": safe_join(root, e["mask"])}
            if e.get("GT"):
                it["target"] = safe_join(root, e["GT"])
            if e.get("score") in (0, 1):
                it["label"] = int(e["score"])
            items.append(it)
        return items
    entries, problems = scan_folder(path)
    if problems:
        raise ConfigError(f"{path} is neither a meta.json folder nor a clean pool folder: {problems[0]}")
    return [{"name": f"{i:06d}", "source": e.image, "mask": e.mask} for i, e in enumerate(entries)]


def _inside(join_inside, UnsafePath, root, rel, meta):
    try:
        return join_inside(root, rel)
    except UnsafePath as exc:
        raise ConfigError(f"{meta}: {exc}") from None


@takes_progress
def evaluate_remover(test: str, remover, out: str, *, project=None, version: str | None = None,
                     batch_size: int = 4, confidence: float = 0.95) -> dict:
    """Run ``remover`` on the test set and report quality, success rate and speed.

    Parameters
    ----------
    test : str
        Test folder (see :func:`read_test_set`).
    remover : spec or Remover
        Anything :func:`rorem_data.removers.load_remover` accepts.
    out : str
        Folder for the results and ``evaluation.json``.
    project : Project, optional
        Needed to use a trained discriminator version.
    version : str, optional
        Discriminator version to estimate the success rate with (default: the project's
        latest, if any).
    """
    from rorem_data.stats.intervals import proportion
    from rorem_data.core.images import read_mask, write_bytes_atomic
    from rorem_data.stats.metrics import lpips_distance, removal_metrics
    from rorem_data.removers import Remover, load_remover

    items = read_test_set(test)
    if not items:
        raise ConfigError(f"test set {test} is empty")
    rem = remover if isinstance(remover, Remover) else load_remover(remover)
    res_dir = os.path.join(os.path.abspath(out), "results")
    os.makedirs(res_dir, exist_ok=True)
    seconds = 0.0
    rows = []
    for i in range(0, len(items), batch_size):
        batch = items[i:i + batch_size]
        srcs = [np.asarray(Image.open(it["source"]).convert("RGB")) for it in batch]
        masks = [read_mask(it["mask"]) for it in batch]
        t = time.perf_counter()
        outs = rem.remove(srcs, masks, [0] * len(batch), output="numpy")
        seconds += time.perf_counter() - t
        for it, src, m, r in zip(batch, srcs, masks, outs):
            import io

            buf = io.BytesIO()
            Image.fromarray(np.asarray(r)).save(buf, format="PNG")
            path = os.path.join(res_dir, f"{it['name']}.png")
            write_bytes_atomic(path, buf.getvalue())
            row = {"name": it["name"], "source": it["source"], "mask": it["mask"], "result": path}
            if "target" in it:
                tgt = np.asarray(Image.open(it["target"]).convert("RGB"))
                row.update(removal_metrics(np.asarray(r), tgt, m))
                lp = lpips_distance(np.asarray(r), tgt)
                if lp is not None:
                    row["lpips"] = lp
            if "label" in it:
                row["label"] = it["label"]
            rows.append(row)
    report: dict = {"test": os.path.abspath(test), "remover": rem.provenance(), "items": len(rows),
                    "seconds_per_image": seconds / len(rows)}
    with_t = [r for r in rows if "psnr" in r]
    if with_t:
        report["quality"] = {k: _mean_finite([r[k] for r in with_t])
                             for k in ("psnr", "psnr_in", "psnr_out", "ssim", "ssim_in", "ssim_out")}
        report["quality"]["n"] = len(with_t)
        lps = [r["lpips"] for r in with_t if "lpips" in r]
        report["quality"]["lpips"] = float(np.mean(lps)) if lps else None
        if not lps:
            report["quality"]["lpips_note"] = "unavailable: install the lpips package and its AlexNet weights"
    labels = [r["label"] for r in rows if "label" in r]
    if labels:
        report["success_human"] = proportion(int(sum(labels)), len(labels), confidence=confidence).as_dict()
    if project is not None:
        from rorem_data.rounds.versions import latest_version
        from rorem_data.rounds.discriminator import predict

        version = version or latest_version(project)
        if version:
            p = predict(project, version, None, [(r["source"], r["result"], r["mask"]) for r in rows],
                        progress=False)
            report["success_discriminator"] = {"version": version, "value": float(p.mean()),
                                               "share_above_0.5": float((p >= 0.5).mean())}
            for r, s in zip(rows, p):
                r["score"] = float(s)
            if len(labels) >= 2:
                from rorem_data.stats.ppi import ppi_mean

                lab = [r for r in rows if "label" in r]
                est = ppi_mean(np.array([r["label"] for r in lab]), np.array([r["score"] for r in lab]),
                               p, confidence=confidence)
                report["success_ppi"] = est.as_dict()
    report["per_item"] = rows
    with open(os.path.join(out, "evaluation.json"), "w", encoding="utf-8") as fh:
        json.dump(report, fh, indent=1, default=float)
    return report


def _mean_finite(values) -> float:
    """Mean over finite values; inf when every value is inf (identical images), nan if none."""
    v = np.asarray(values, dtype=np.float64)
    fin = v[np.isfinite(v)]
    if fin.size:
        return float(fin.mean())
    return float("inf") if np.isinf(v).any() else float("nan")


def summarize(report: dict) -> str:
    lines = [f"{report['items']} items, {1000 * report['seconds_per_image']:.1f} ms per image "
             f"({report['remover'].get('remover')})"]
    q = report.get("quality")
    if q:
        lines.append(f"PSNR {q['psnr']:.2f} dB (inside mask {q['psnr_in']:.2f}, outside {q['psnr_out']:.2f}); "
                     f"SSIM {q['ssim']:.3f} (inside {q['ssim_in']:.3f}, outside {q['ssim_out']:.3f}); "
                     f"LPIPS {q['lpips'] if q['lpips'] is not None else 'n/a (' + q['lpips_note'] + ')'}")
    for k, label in (("success_human", "human labels"), ("success_ppi", "prediction-powered")):
        e = report.get(k)
        if e:
            lines.append(f"success rate ({label}): {100 * e['value']:.1f}% [{100 * e['lo']:.1f}, {100 * e['hi']:.1f}]")
    d = report.get("success_discriminator")
    if d:
        lines.append(f"success rate (discriminator {d['version']}, mean calibrated score): {100 * d['value']:.1f}%")
    return "\n".join(lines)
