"""Ingest benchmark: seed import, pool import and score write-back at 20K and 200K items.

    python benchmarks/ingest.py [--sections seeds,pool] [--sizes 20000,200000]
                                [--pool-sizes 20000,200000] [--workdir /tmp/rorem-bench]

In one run, against one MongoDB server (FiftyOne's mongod started for the run).

Section ``pool`` (issue: linear pool import), for each size (images, two masks each, OpenImages
names ``<image id>_<class>_<box>.png`` so every mask goes through the longest-prefix lookup):

* our whole ``import pool`` (listing, matching, validation of every file in forkserver workers,
  the database write), in a child process; peak memory is the largest sum of RSS over that
  process and its workers (psutil, sampled every 0.1 s), plus ``ru_maxrss`` as a cross-check;
* name matching alone: ours (dictionary lookups) against the old matcher (every mask against
  every image stem) at a small size, in the same run.

A share of the images (``CONVERTED_SHARE``, 5%) are phone photos - JPEGs whose EXIF orientation
turns them - which the import decodes once and stores as PNG copies (issue 18: one decoded
image); the table's note gives the share converted.

Targets: 200,000 images (400,000 items) in under 3 minutes with peak memory under 2 GB, and
growth from 20K to 200K images of at most 12x.

Section ``seeds``, for each size:

* our whole `import seeds` (validation of every file + canonical masks + the database write),
  in a child process so its peak memory is its own;
* the database write alone, four ways on equivalent documents: ours (raw documents into the
  dataset's collection, schema declared first), FiftyOne's ``add_samples``, a per-sample
  ``add_sample`` loop (2,000 samples, extrapolated) and raw pymongo ``insert_many`` into a plain
  collection of the same database (the limit);
* writing one float field on every pair: ours, FiftyOne's ``set_values`` and raw pymongo
  ``bulk_write`` (the limit).

Prints a table with pairs/s and ratios to the raw limits. Targets (issue #2): our write within 2x
of raw ``insert_many`` at 200K; the whole import under 3 minutes; the score write within 1.5x of
raw ``bulk_write``; peak memory under 2 GB.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from multiprocessing import Pool

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def _write_chunk(args):
    root, start, stop = args
    from PIL import Image

    yy, xx = np.mgrid[0:64, 0:64]
    base = ((xx * 3 + yy * 2) % 256).astype(np.uint8)
    meta = []
    for i in range(start, stop):
        img = np.stack([base, np.roll(base, i % 64, axis=1), np.full_like(base, i % 251)], axis=2)
        img[0, :8, 0] = np.frombuffer(int(i).to_bytes(8, "little"), np.uint8)  # distinct files
        gt = img.copy()
        gt[20:40, 20:44] = img[0:20, 0:24]
        mask = np.zeros((64, 64), np.uint8)
        mask[20:40, 20:44] = 255
        name = f"{i:07d}.png"
        sub = f"{i // 10000:03d}"
        for d, arr in (("source", img), ("GT", gt), ("mask", mask)):
            os.makedirs(os.path.join(root, d, sub), exist_ok=True)
            Image.fromarray(arr).save(os.path.join(root, d, sub, name), compress_level=1)
        meta.append({"source": f"source/{sub}/{name}", "mask": f"mask/{sub}/{name}",
                     "GT": f"GT/{sub}/{name}"})
    return meta


def make_files(root: str, n: int) -> str:
    meta_path = os.path.join(root, "meta.json")
    if os.path.exists(meta_path):
        return meta_path
    t = time.perf_counter()
    step = 5000
    with Pool(os.cpu_count() or 2) as pool:
        parts = pool.map(_write_chunk, [(root, s, min(n, s + step)) for s in range(0, n, step)])
    meta = [e for p in parts for e in p]
    with open(meta_path, "w") as fh:
        json.dump(meta, fh)
    print(f"  wrote {n} triplets in {time.perf_counter() - t:.0f} s", flush=True)
    return meta_path


def child_import(meta_path: str, project_dir: str) -> None:
    """Run our import in this process and print timings + peak RSS as JSON."""
    import rorem_data

    project = rorem_data.init_project(project_dir, name="bench")
    t = time.perf_counter()
    res = project.import_seeds(meta_path)
    total = time.perf_counter() - t
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": total, "inserted": res.inserted, "dataset": project.dataset_name,
                      "peak_rss_mb": self_kb / 1024, "peak_worker_rss_mb": kids_kb / 1024}))


def _docs_like_import(ds, n):
    """Documents equivalent to what the import writes (taken from the imported dataset)."""
    coll = ds._sample_collection
    docs = list(coll.find({}, limit=n))
    for d in docs:
        d.pop("_id")
        d["mask"].pop("_id")
    return docs


def _fresh(docs):
    from bson import ObjectId

    out = copy.deepcopy(docs)
    for d in out:
        d["_id"] = ObjectId()
        d["mask"]["_id"] = ObjectId()
        d["key"] = str(d["_id"])
    return out


def bench_seeds(n: int, workdir: str, rows: list) -> None:
    import fiftyone as fo

    from rorem_data.dataset import store

    data = os.path.join(workdir, f"seeds-{n}")
    meta = make_files(data, n)
    proj = os.path.join(workdir, f"proj-{n}-{os.getpid()}")
    out = subprocess.run([sys.executable, __file__, "--child-import", meta, proj],
                         capture_output=True, text=True, env=os.environ)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    child = json.loads(out.stdout.strip().splitlines()[-1])
    ds_imported = fo.load_dataset(child["dataset"])
    docs = _docs_like_import(ds_imported, n)

    # 1. database write, four ways
    ds = fo.Dataset(f"bench-ours-{n}")
    store.ensure_schema(ds)
    batch = _fresh(docs)
    t = time.perf_counter()
    store.insert_documents(ds, batch)
    ours = time.perf_counter() - t

    db = fo.core.odm.get_db_conn()
    raw = db[f"bench_raw_{n}"]
    batch = _fresh(docs)
    t = time.perf_counter()
    for i in range(0, n, 20_000):
        raw.insert_many(batch[i : i + 20_000], ordered=False)
    raw_s = time.perf_counter() - t

    def samples(k):
        out = []
        for d in docs[:k]:
            out.append(fo.Sample(
                filepath=d["filepath"], target_path=d["target_path"], key=d["key"], kind=d["kind"],
                origin=d["origin"], round=d["round"], mask_area=d["mask_area"],
                import_ref=d["import_ref"], status=d["status"], decided_by=d["decided_by"],
                decided_round=d["decided_round"],
                mask=fo.Segmentation(mask_path=d["mask"]["mask_path"]),
                metadata=fo.ImageMetadata(width=d["metadata"]["width"], height=d["metadata"]["height"]),
                decision=fo.DynamicEmbeddedDocument(**{k: v for k, v in d["decision"].items() if k != "_cls"}),
            ))
        return out

    ds_fo = fo.Dataset(f"bench-addsamples-{n}")
    s = samples(n)
    t = time.perf_counter()
    ds_fo.add_samples(s, progress=False)
    add_samples_s = time.perf_counter() - t
    del s

    k = min(2000, n)
    ds_loop = fo.Dataset(f"bench-loop-{n}")
    s = samples(k)
    t = time.perf_counter()
    for x in s:
        ds_loop.add_sample(x)
    loop_s = (time.perf_counter() - t) * n / k

    # 2. one float field on every pair
    ids = ds.values("id")
    vals = np.random.default_rng(0).random(n).tolist()
    t = time.perf_counter()
    store.set_field_values(ds, "bench_score", ids, vals)
    ours_set = time.perf_counter() - t
    t = time.perf_counter()
    ds.set_values("bench_score2", vals)
    fo_set = time.perf_counter() - t
    from bson import ObjectId
    from pymongo import UpdateOne

    def raw_update(coll, field, oids):
        t = time.perf_counter()
        for i in range(0, n, 20_000):
            coll.bulk_write([UpdateOne({"_id": _id}, {"$set": {field: v}})
                             for _id, v in zip(oids[i : i + 20_000], vals[i : i + 20_000])], ordered=False)
        return time.perf_counter() - t

    # the limit: raw bulk_write of the same field into the same collection (same indexes)
    raw_set = raw_update(ds._sample_collection, "bench_score3", [ObjectId(i) for i in ids])
    raw_plain_set = raw_update(raw, "score", [d["_id"] for d in raw.find({}, {"_id": 1})])

    rows.append((n, "import seeds (validate + masks + write), ours", child["seconds"], None,
                 f"peak RSS {child['peak_rss_mb']:.0f} MB (+ workers {child['peak_worker_rss_mb']:.0f} MB each)"))
    rows.append((n, "write: ours (raw docs into the dataset)", ours, ours / raw_s, "target <= 2x raw"))
    rows.append((n, "write: FiftyOne add_samples", add_samples_s, add_samples_s / raw_s, ""))
    rows.append((n, f"write: add_sample loop ({k}, extrapolated)", loop_s, loop_s / raw_s, ""))
    rows.append((n, "write: raw pymongo insert_many (limit)", raw_s, 1.0, ""))
    rows.append((n, "score write: ours (bulk_write by id)", ours_set, ours_set / raw_set, "target <= 1.5x raw"))
    rows.append((n, "score write: FiftyOne set_values", fo_set, fo_set / raw_set, ""))
    rows.append((n, "score write: raw bulk_write, same collection (limit)", raw_set, 1.0, ""))
    rows.append((n, "score write: raw bulk_write, plain collection", raw_plain_set, raw_plain_set / raw_set,
                 "no indexes"))
    for name in (ds.name, ds_fo.name, ds_loop.name, child["dataset"]):
        fo.delete_dataset(name)
    raw.drop()


# --- pool section -----------------------------------------------------------------------------


def _png_variants(n: int, w: int, h: int, mask: bool) -> list[bytes]:
    import io

    from PIL import Image

    out = []
    rng = np.random.default_rng(7 if mask else 3)
    for _ in range(n):
        if mask:
            a = np.zeros((h, w), np.uint8)
            y0, x0 = int(rng.integers(0, h // 2)), int(rng.integers(0, w // 2))
            a[y0 : y0 + h // 3, x0 : x0 + w // 3] = 255
            img = Image.fromarray(a, mode="L")
        else:
            img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)
        out.append(buf.getvalue())
    return out


def _pool_names(n: int) -> list[str]:
    rng = np.random.default_rng(n)
    ids = {f"{int(x):016x}" for x in rng.integers(0, 2**63, size=int(n * 1.01) + 10)}
    return sorted(ids)[:n]


def _phone_variants(n: int, w: int, h: int) -> list[bytes]:
    """JPEGs whose stored pixels are turned: EXIF orientation 6 shows them ``w x h``."""
    import io

    from PIL import Image

    out = []
    rng = np.random.default_rng(5)
    for _ in range(n):
        im = Image.fromarray(rng.integers(0, 255, (w, h, 3), dtype=np.uint8))  # stored h x w turned
        exif = im.getexif()
        exif[0x0112] = 6
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90, exif=exif.tobytes())
        out.append(buf.getvalue())
    return out


#: share of pool images written as phone photos (EXIF-rotated JPEGs) that the import decodes
#: and stores as PNG copies
CONVERTED_SHARE = 0.05


def _write_pool_chunk(args):
    root, names, seed = args
    imgs = _png_variants(16, 48, 32, mask=False)
    phones = _phone_variants(16, 48, 32)
    masks = _png_variants(16, 48, 32, mask=True)
    every = int(round(1 / CONVERTED_SHARE))
    for j, stem in enumerate(names):
        phone = (seed + j) % every == 0
        with open(os.path.join(root, "images", f"{stem}.jpg" if phone else f"{stem}.png"), "wb") as fh:
            fh.write(phones[(seed + j) % len(phones)] if phone else imgs[(seed + j) % len(imgs)])
        for box in range(2):
            name = f"{stem}_m0{(j * 7 + box) % 97:02d}k{box % 3}_{box}.png"
            with open(os.path.join(root, "masks", name), "wb") as fh:
                fh.write(masks[(seed + j + box) % len(masks)])
    return len(names)


def make_pool(root: str, n: int) -> str:
    """A pool folder of ``n`` tiny images with two masks each (written once, then reused)."""
    done = os.path.join(root, ".complete")
    if os.path.exists(done):
        return root
    t = time.perf_counter()
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    os.makedirs(os.path.join(root, "masks"), exist_ok=True)
    names = _pool_names(n)
    step = 10_000
    with Pool(os.cpu_count() or 2) as pool:
        pool.map(_write_pool_chunk, [(root, names[s : s + step], s) for s in range(0, n, step)])
    open(done, "w").close()
    print(f"  wrote a pool of {n} images + {2 * n} masks in {time.perf_counter() - t:.0f} s",
          flush=True)
    return root


def old_match(images: dict, mask_stems: list) -> list:
    """The matcher before linear import: every mask against every image stem (for comparison)."""
    out = []
    for rel in mask_stems:
        stem = None
        if rel in images:
            stem = rel
        else:
            head = os.path.dirname(rel)
            if head and head in images:
                stem = head
            else:
                cands = [s for s in images if rel.startswith(s + "_")]
                if cands:
                    stem = max(cands, key=len)
        out.append((rel, stem))
    return out


def _names(root: str, k: int | None = None):
    stems = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(root, "images")))
    if k is not None:
        stems = stems[:k]
    keep = set(stems)
    masks = sorted(os.path.splitext(f)[0] for f in os.listdir(os.path.join(root, "masks"))
                   if f.split("_", 1)[0] in keep)
    return {s: s for s in stems}, masks


def child_pool(folder: str, project_dir: str) -> None:
    """Run our pool import in this process and print timings + ru_maxrss as JSON."""
    import rorem_data

    project = rorem_data.init_project(project_dir, name="bench-pool")
    t = time.perf_counter()
    res = project.import_pool(folder)
    total = time.perf_counter() - t
    converted = sum(res.conversions.values())
    print(json.dumps({"seconds": total, "inserted": res.inserted, "read": res.read,
                      "converted": converted,
                      "problems": len(res.problems), "dataset": project.dataset_name,
                      "ru_self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _run_measured(cmd: list) -> tuple[dict, float, float]:
    """Run ``cmd``; return its JSON line, the peak RSS sum (MB) over it and its children, and
    their CPU seconds (user + system; less sensitive than wall time to other load)."""
    import threading

    import psutil

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ)
    peak = [0]
    cpu: dict = {}
    done = threading.Event()

    def sample():
        try:
            p = psutil.Process(proc.pid)
        except psutil.NoSuchProcess:
            return
        while not done.is_set():
            total = 0
            try:
                tree = [p] + p.children(recursive=True)
            except psutil.NoSuchProcess:
                break
            for q in tree:
                try:
                    with q.oneshot():
                        total += q.memory_info().rss
                        t = q.cpu_times()
                        cpu[q.pid] = t.user + t.system
                except psutil.NoSuchProcess:
                    pass
            peak[0] = max(peak[0], total)
            time.sleep(0.1)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    out, err = proc.communicate()
    done.set()
    th.join()
    if proc.returncode != 0:
        raise SystemExit(err[-4000:])
    return json.loads(out.strip().splitlines()[-1]), peak[0] / 2**20, sum(cpu.values())


def bench_pool(sizes: list, workdir: str, rows: list) -> None:
    import fiftyone as fo

    from rorem_data.dataset.pool_folder import match_masks

    folders = {n: make_pool(os.path.join(workdir, f"pool-{n}-phones{int(100 * CONVERTED_SHARE)}"), n)
               for n in sizes}
    # matching alone: the old quadratic matcher at a small size, ours at every size
    small = min(sizes)
    k = min(4000, small)
    images, masks = _names(folders[small], k)
    t = time.perf_counter()
    old = old_match(images, masks)
    old_s = time.perf_counter() - t
    t = time.perf_counter()
    new, unmatched = match_masks(images, masks)
    new_s = time.perf_counter() - t
    if unmatched or dict(new) != dict(old):
        raise SystemExit("the linear matcher disagrees with the old one")
    rows.append((k, len(masks), "match names: old (every mask x every image)", old_s,
                 f"extrapolated to 200K images: {old_s * (200_000 / k) ** 2 / 3600:.1f} h"))
    rows.append((k, len(masks), "match names: ours (dictionary lookups), same names", new_s,
                 f"{old_s / max(new_s, 1e-9):.0f}x faster"))
    for n in sizes:
        images, masks = _names(folders[n])
        t = time.perf_counter()
        match_masks(images, masks)
        rows.append((n, len(masks), "match names: ours", time.perf_counter() - t, ""))
    imports = {}
    for n in sizes:
        proj = os.path.join(workdir, f"proj-pool-{n}-{os.getpid()}")
        child, peak_mb, cpu_s = _run_measured([sys.executable, __file__, "--child-pool", folders[n], proj])
        if child["inserted"] != 2 * n or child["problems"]:
            raise SystemExit(f"pool import of {n} images inserted {child['inserted']} "
                             f"with {child['problems']} problems")
        imports[n] = (child["seconds"], cpu_s)
        share = child["converted"] / max(child["inserted"], 1)
        rows.append((n, child["inserted"], "import pool (list, match, validate, write), ours",
                     child["seconds"], f"{100 * share:.1f}% of items converted (EXIF-rotated "
                     f"phone photos, decoded + stored as PNG); peak RSS {peak_mb:.0f} MB (sum over process + its "
                     f"workers; ru_maxrss of the process alone {child['ru_self_mb']:.0f} MB); "
                     f"CPU {cpu_s:.0f} s (process + workers)"))
        fo.delete_dataset(child["dataset"])
        shutil.rmtree(proj, ignore_errors=True)  # the project folder this run made
    if len(sizes) >= 2:
        lo, hi = min(sizes), max(sizes)
        rows.append((hi, 2 * hi, f"growth {lo // 1000}K -> {hi // 1000}K images (wall)",
                     imports[hi][0] / imports[lo][0], f"x ({hi / lo:.0f}x the items; target <= 12x)"))
        rows.append((hi, 2 * hi, f"growth {lo // 1000}K -> {hi // 1000}K images (CPU)",
                     imports[hi][1] / imports[lo][1], "x (importer + workers, not mongod)"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sections", default="seeds,pool")
    ap.add_argument("--sizes", default="20000,200000", help="seed pairs per size")
    ap.add_argument("--pool-sizes", default="20000,200000", help="pool images per size")
    ap.add_argument("--workdir", default="/tmp/rorem-bench")
    ap.add_argument("--child-import", nargs=2, metavar=("META", "PROJECT"))
    ap.add_argument("--child-pool", nargs=2, metavar=("FOLDER", "PROJECT"))
    args = ap.parse_args(argv)
    if args.child_import:
        child_import(*args.child_import)
        return
    if args.child_pool:
        child_pool(*args.child_pool)
        return
    from _db import start_server

    os.environ["ROREM_PROGRESS"] = "0"
    print("database:", start_server())
    os.makedirs(args.workdir, exist_ok=True)
    sections = set(args.sections.split(","))
    if "pool" in sections:
        prow: list = []
        load0 = os.getloadavg()[0]
        bench_pool([int(x) for x in args.pool_sizes.split(",")], args.workdir, prow)
        print(f"\nmachine: {os.cpu_count()} cores, 1-min load average {load0:.1f} at the start, "
              f"{os.getloadavg()[0]:.1f} at the end (other processes share these cores)")
        print(f"{'images':>8} {'items':>8}  {'what':<52} {'seconds':>9}  note")
        for n, items, what, sec, note in prow:
            print(f"{n:>8} {items:>8}  {what:<52} {sec:>9.3f}  {note}")
        print(flush=True)
    if "seeds" not in sections:
        return
    rows: list = []
    for n in [int(x) for x in args.sizes.split(",")]:
        print(f"size {n}", flush=True)
        bench_seeds(n, args.workdir, rows)
    print()
    print(f"{'pairs':>8}  {'what':<48} {'seconds':>8} {'pairs/s':>9} {'x limit':>8}  note")
    for n, what, sec, ratio, note in rows:
        r = f"{ratio:.2f}" if ratio is not None else ""
        print(f"{n:>8}  {what:<48} {sec:>8.2f} {n / sec:>9.0f} {r:>8}  {note}")


if __name__ == "__main__":
    main()
