"""Ingest benchmark: seed import and score write-back at 20K and 200K pairs.

    python benchmarks/ingest.py [--sizes 20000,200000] [--workdir /tmp/rorem-bench]

In one run, against one MongoDB server (FiftyOne's mongod started for the run), for each size:

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


def bench_size(n: int, workdir: str, rows: list) -> None:
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


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="20000,200000")
    ap.add_argument("--workdir", default="/tmp/rorem-bench")
    ap.add_argument("--child-import", nargs=2, metavar=("META", "PROJECT"))
    args = ap.parse_args(argv)
    if args.child_import:
        child_import(*args.child_import)
        return
    from _db import start_server

    os.environ["ROREM_PROGRESS"] = "0"
    print("database:", start_server())
    os.makedirs(args.workdir, exist_ok=True)
    rows: list = []
    for n in [int(x) for x in args.sizes.split(",")]:
        print(f"size {n}", flush=True)
        bench_size(n, args.workdir, rows)
    print()
    print(f"{'pairs':>8}  {'what':<48} {'seconds':>8} {'pairs/s':>9} {'x limit':>8}  note")
    for n, what, sec, ratio, note in rows:
        r = f"{ratio:.2f}" if ratio is not None else ""
        print(f"{n:>8}  {what:<48} {sec:>8.2f} {n / sec:>9.0f} {r:>8}  {note}")


if __name__ == "__main__":
    main()
