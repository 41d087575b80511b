#!/usr/bin/env python
"""Generation overhead: rorem-data's remover and ``generate()`` vs a bare pipeline-call loop.

All three run the same tiny SD inpainting pipeline (built from a config, on the CPU) on the same
pool items with the same batch size and seeds, in the same process, interleaved and repeated:

* ``bare``     - ``pipe(prompt, image, mask_image, generator=[...])`` over batches, nothing else;
* ``remover``  - ``Remover.remove`` (input checks, mask handling, resizing back to source size);
* ``generate`` - the whole ``generate()``: pool query, key check, image reads, PNG writes,
  bulk inserts, round record.

Overhead = median time / median bare time - 1 (target <= 10 % at batch 4). Not part of the
test run. Starts a throw-away mongod (benchmarks/_db.py) unless ``FIFTYONE_DATABASE_URI`` is set.

    python benchmarks/generate.py [--items 24] [--batch-size 4] [--resolution 128] [--steps 8]
"""

from __future__ import annotations

import os
import sys

# This folder holds select.py, which would shadow the standard library's `select` (pymongo
# needs it): take the script's folder off sys.path before anything imports it.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402


def _start_db_server() -> None:
    spec = importlib.util.spec_from_file_location("_bench_db", os.path.join(HERE, "_db.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.start_server()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=16, help="pool images (1-2 objects each)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--resolution", type=int, default=128)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="rorem-bench-gen-")
    os.environ.setdefault("FIFTYONE_DO_NOT_TRACK", "true")
    os.environ.setdefault("FIFTYONE_DATABASE_VALIDATION", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("ROREM_PROGRESS", "0")
    os.environ["ROREM_DATA_CACHE"] = os.path.join(tmp, "cache")
    if not os.environ.get("FIFTYONE_DATABASE_URI"):
        _start_db_server()

    import numpy as np
    import torch
    from diffusers import AutoPipelineForInpainting
    from diffusers.utils import logging as dlog
    from PIL import Image

    import rorem_data
    from rorem_data.testing import synthetic
    from rorem_data.testing import tiny
    from rorem_data.rounds.generate import candidate_seed, generate, read_pool_items
    from rorem_data.core.images import read_mask
    from rorem_data.removers import load_remover

    torch.set_num_threads(args.threads)
    dlog.disable_progress_bar()
    project = None
    try:
        model = tiny.build_tiny_sd_inpaint(os.path.join(tmp, "sd"))
        synthetic.write_pool_folder(os.path.join(tmp, "pool"), args.images, size=args.resolution, seed=1)
        project = rorem_data.init_project(os.path.join(tmp, "proj"), name="bench")
        project.import_pool(os.path.join(tmp, "pool"), workers=1)
        items = read_pool_items(project)
        srcs = [np.asarray(Image.open(it["filepath"]).convert("RGB")) for it in items]
        masks = [read_mask(it["mask"]["mask_path"]) for it in items]
        seeds = [candidate_seed(it["key"], 0) for it in items]
        spec = {"model": model, "steps": args.steps, "resolution": args.resolution}
        remover = load_remover(spec)
        pipe = AutoPipelineForInpainting.from_pretrained(model)
        pipe.set_progress_bar_config(disable=True)
        res, b = args.resolution, args.batch_size

        def bare():
            for i in range(0, len(items), b):
                ims = [Image.fromarray(a) for a in srcs[i:i + b]]
                ms = [Image.fromarray(m.astype(np.uint8) * 255) for m in masks[i:i + b]]
                gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[i:i + b]]
                with torch.inference_mode():
                    pipe(prompt=[""] * len(ims), image=ims, mask_image=ms, height=res, width=res,
                         strength=0.99, num_inference_steps=args.steps, guidance_scale=1.0,
                         generator=gens, output_type="np")

        def wrapper():
            for i in range(0, len(items), b):
                remover.remove(srcs[i:i + b], masks[i:i + b], seeds[i:i + b], output="numpy")

        def full():
            coll = project.dataset._sample_collection
            coll.delete_many({"kind": "candidate"})
            shutil.rmtree(project.media_path("candidates"), ignore_errors=True)
            t = time.perf_counter()
            r = generate(project, 1, remover, candidates=1, batch_size=b, progress=False)
            elapsed = time.perf_counter() - t
            if r.inserted != len(items):
                raise RuntimeError(f"generate inserted {r.inserted} of {len(items)}")
            return elapsed

        def timed(fn):
            t = time.perf_counter()
            fn()
            return time.perf_counter() - t

        bare()  # warm-up
        wrapper()
        times = {"bare": [], "remover": [], "generate": []}
        for _ in range(args.repeats):
            times["bare"].append(timed(bare))
            times["remover"].append(timed(wrapper))
            times["generate"].append(full())
        base = statistics.median(times["bare"])
        print(f"\nGeneration overhead: {len(items)} pool items, batch {b}, {res}x{res}, "
              f"{args.steps} steps, tiny SD on the CPU, torch threads {args.threads}, "
              f"median of {args.repeats}")
        print(f"{'path':<10} {'seconds':>9} {'items/s':>9} {'overhead':>9}")
        for name, ts in times.items():
            m = statistics.median(ts)
            print(f"{name:<10} {m:>9.3f} {len(items) / m:>9.2f} {100 * (m / base - 1):>8.1f}%")
    finally:
        if project is not None:
            import fiftyone as fo

            from rorem_data.dataset import store

            if fo.dataset_exists(project.dataset_name):
                fo.delete_dataset(project.dataset_name)
            store.delete_round_records(project.dataset_name)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
