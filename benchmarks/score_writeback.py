"""Scoring benchmark: 200,000 candidates from cached features, written back to the dataset.

    python benchmarks/score_writeback.py [--n 200000] [--dim 44]

Builds a project whose round-1 candidates already have cached `stats` features (random values
of the right shape, written through the feature cache), trains a `stats-logistic` version on a
labelled subset, then times `rorem-data score` end to end (read the candidates, read the cached
features, predict_proba, calibrate, bulk write of `scores.<version>`), against, in the same run:
FiftyOne's `set_values` of the same floats and a raw pymongo `bulk_write` (the write limits), and
`predict_proba` alone. Target (issue #3): the whole scoring under 10 s at 200,000.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE in sys.path:
    sys.path.remove(HERE)
sys.path.insert(0, os.path.dirname(HERE))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200_000)
    args = ap.parse_args(argv)
    sys.path.insert(0, HERE)
    from _db import start_server

    os.environ["ROREM_PROGRESS"] = "0"
    start_server()
    sys.path.remove(HERE)
    import rorem_data
    from rorem_data.core import schema
    from rorem_data.dataset import store
    from rorem_data.dataset import documents
    from rorem_data.rounds.discriminator import _cache, score
    from rorem_data.discriminators.specs import get_spec

    n = args.n
    root = tempfile.mkdtemp(prefix="rorem-score-bench-")
    project = rorem_data.init_project(os.path.join(root, "p"), name="bench")
    ds = project.dataset
    now = schema.utcnow()
    t = time.perf_counter()
    docs = [documents.sample_doc(key=f"c{i:07d}", kind="candidate", filepath=f"/nowhere/{i}.png", width=64,
                              height=64, mask_path="/nowhere/m.png", mask_area=0.1, origin="bench",
                              target_path=f"/nowhere/r{i}.png", round=1, now=now) for i in range(n)]
    store.insert_documents(ds, docs)
    print(f"inserted {n} candidates in {time.perf_counter() - t:.1f} s", flush=True)
    ids = [str(d["_id"]) for d in sorted(docs, key=lambda d: d["key"])]
    spec = get_spec("stats-logistic")
    f = spec.make_featurizer()
    cache = _cache(project, f)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, f.dim)).astype(np.float32)
    for i in range(0, n, 50_000):
        cache.write_chunk(ids[i:i + 50_000], X[i:i + 50_000])
    cache.compact()
    # a trained version: fit the head on 2,000 labelled rows (labels from a linear rule)
    w = rng.normal(size=f.dim)
    y = (X[:2000] @ w + rng.normal(size=2000) > 0).astype(int)
    from rorem_data.rounds.versions import write_version_meta
    from rorem_data.stats.calibration import get_calibrator
    from rorem_data.discriminators.persistence import save_discriminator

    disc = spec.build()
    disc.fit(X[:1400], y[:1400])
    cal = get_calibrator("platt").fit(disc.predict_proba(X[1400:2000])[:, 1], y[1400:])
    version = "stats_logistic_bench"
    folder = write_version_meta(project, version, {"trained_at": "now", "round": 1, "spec": spec.name,
                                                   "spec_source": spec.source, "featurizer_key": f.key,
                                                   "calibration": cal.to_dict(), "generators": []})
    save_discriminator(disc, os.path.join(folder, "model"), spec=spec)

    rows = []
    for rep in range(3):
        t = time.perf_counter()
        res = score(project, 1, version, progress=False)
        rows.append(("rorem-data score (read + features + predict + write)", time.perf_counter() - t))
        Xm = X
        t = time.perf_counter()
        p = disc.predict_proba(Xm)[:, 1]
        rows.append(("predict_proba alone", time.perf_counter() - t))
        t = time.perf_counter()
        ds.set_values(f"bench_fo_{rep}", p.tolist())
        rows.append(("FiftyOne set_values of the scores", time.perf_counter() - t))
        from bson import ObjectId
        from pymongo import UpdateOne

        oids = [ObjectId(i) for i in ids]
        t = time.perf_counter()
        coll = ds._sample_collection
        for i in range(0, n, 20_000):
            coll.bulk_write([UpdateOne({"_id": o}, {"$set": {f"bench_raw_{rep}": float(v)}})
                             for o, v in zip(oids[i:i + 20_000], p[i:i + 20_000])], ordered=False)
        rows.append(("raw pymongo bulk_write of the scores (limit)", time.perf_counter() - t))
    assert res.scored == n
    print(f"\n{'what':<58} {'median s':>9}   (n = {n}, 3 runs)")
    names = list(dict.fromkeys(r[0] for r in rows))
    for name in names:
        v = sorted(s for k, s in rows if k == name)
        print(f"{name:<58} {v[len(v) // 2]:>9.2f}")
    import fiftyone as fo

    fo.delete_dataset(ds.name)


if __name__ == "__main__":
    main()
