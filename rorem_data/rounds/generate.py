"""``rorem-data generate``: run a remover on a round's pool items and store the candidates.

For every pool item (``kind == "pool"``) and every ``k`` in ``0..K-1`` one candidate is made
with a seed derived from (pool item key, k), its image written under
``<media>/candidates/round-<N>/<candidate key>.png`` and its record inserted as a ``pending``
candidate sample (see :mod:`rorem_data.core.schema`).

Guarantees
----------
* **Resumable, no duplicates.** A candidate's key is
  ``make_key("candidate", pool item key, remover key, k)``; keys are unique in the dataset, a
  rerun first reads which of its keys exist (one indexed query) and skips them, and a candidate
  generated in an earlier round by the same remover is not generated again.
* **Nothing half-written.** Images are written to a temporary file and renamed; a batch's
  records are inserted only after all its images are on disk. A killed run leaves at most the
  images of its last batch without records; the rerun regenerates them (same seed, same bytes)
  and removes stale temporary files of its own candidates whose writer is gone (a concurrent
  run's live temporary files are never touched).
* **Shardable.** ``shard=(i, n)`` takes the pool items whose key hashes to ``i`` modulo ``n``
  (:mod:`rorem_data.core.sharding`): membership depends on the key alone, so items imported
  between two shard runs fall into exactly one shard. Under ``accelerate launch
  --num_processes P`` (``accelerate launch -m rorem_data.cli generate ...``) each process
  further takes its share and uses its own device. The union of all shards has every
  candidate exactly once.
* **One bad item never blocks a round.** A pool item whose files are missing or unreadable,
  whose image no longer matches its mask, or that the remover refuses becomes a named
  ``failed`` entry (in the result and the round record) and the other items go on; a rerun
  retries it.
* **Bulk database access.** Pool items are read with one projected query, existing keys with one
  query, and records are written once per batch.

>>> from rorem_data.rounds.generate import generate
>>> res = generate(project, 1, {"model": "runs/rorem", "dilation": 20}, candidates=2)  # doctest: +SKIP
>>> print(res.summary())                                                              # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from rorem_data.core.display import Displayable
from rorem_data.core import checks, schema, sharding
from rorem_data.core.errors import ConfigError
from rorem_data.core.images import HOST as _HOST, ImageProblem, read_mask, read_rgb
from rorem_data.core.validate import Problem
from rorem_data.core.processes import pid_alive
from rorem_data.dataset import documents, queries, store


@dataclass(repr=False)
class GenerateResult(Displayable):
    """What one :func:`generate` call did (in this process's share).

    Attributes
    ----------
    round : int
    remover : str
        The remover's display name.
    remover_key : str
        The remover's key (part of every candidate key).
    pool_items : int
        Pool items in this share.
    candidates_per_item : int
    expected : int
        ``pool_items * candidates_per_item``.
    inserted : int
        New candidate records written by this call.
    already_present : int
        Candidates that existed before (finished by an earlier run or another round).
    failed : list of Problem
        Pool items whose files could not be read (no candidate written; a rerun retries them).
    seconds : float
    shard : tuple of (int, int) or None
        The share (index, count) after combining ``shard`` and the accelerate process.
    out_dir : str
        Folder of the candidate images.
    """

    round: int
    remover: str
    remover_key: str
    pool_items: int = 0
    candidates_per_item: int = 1
    expected: int = 0
    inserted: int = 0
    already_present: int = 0
    failed: list = field(default_factory=list)
    seconds: float = 0.0
    shard: tuple | None = None
    out_dir: str = ""

    def summary(self) -> str:
        share = ""
        if self.shard and len(self.shard) == 4:
            share = f" (shard {self.shard[0]}/{self.shard[1]}, process {self.shard[2]}/{self.shard[3]})"
        elif self.shard:
            share = f" (shard {self.shard[0]}/{self.shard[1]})"
        rate = self.inserted / self.seconds if self.seconds > 0 else 0.0
        s = (f"round {self.round}{share}: {self.inserted} new candidates from {self.pool_items} pool "
             f"items x {self.candidates_per_item} with {self.remover} [{self.remover_key}], "
             f"{self.already_present} already present, {self.seconds:.1f} s ({rate:.2f}/s)")
        if not self.pool_items:
            s += "; no pool items matched: import some with `rorem-data import pool DIR`"
        if self.failed:
            s += f"; {len(self.failed)} failed (rerun to retry):\n" + "\n".join(
                f"  - {p}" for p in self.failed[:20])
        return s


def candidate_seed(pool_key: str, k: int) -> int:
    """Deterministic seed of candidate ``k`` of a pool item, in ``[0, 2**31)``.

    >>> candidate_seed("p0123", 0) == candidate_seed("p0123", 0)
    True
    >>> candidate_seed("p0123", 0) != candidate_seed("p0123", 1)
    True
    """
    digest = hashlib.sha256(f"{pool_key}\x00{int(k)}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def candidate_key(pool_key: str, remover_key: str, k: int) -> str:
    """The unique key of candidate ``k`` of a pool item made by a remover."""
    return schema.make_key(schema.KIND_CANDIDATE, pool_key, remover_key, str(int(k)))


def read_pool_items(project, *, pool_filter=None) -> list[dict]:
    """The pool items to generate from, sorted by key (one query).

    Each dict has ``id``, ``key``, ``filepath``, ``mask.mask_path``, ``origin``, ``category``,
    ``metadata.width/height``, ``mask_area`` and ``license``.
    """
    fields = ["key", "filepath", "mask.mask_path", "origin", "category", "metadata.width",
              "metadata.height", "mask_area", "license", "license_url"]
    ds = project.dataset
    if pool_filter is None or isinstance(pool_filter, dict):
        return queries.pool_items(ds, filter=pool_filter, fields=fields)
    if hasattr(pool_filter, "values") and hasattr(pool_filter, "_dataset"):
        return queries.pool_items(ds, sample_ids=pool_filter.values("id"), fields=fields)
    raise ConfigError(f"pool_filter must be None, a field filter dict (e.g. {{'origin': 'coco'}}) "
                      f"or a FiftyOne view; got {type(pool_filter).__name__}")


def _load_units(units):
    """Read the source and mask of each unit ``(item, k, key)``; returns (ok_units, images,
    masks, problems). A file shared by several units is read once. An item whose files are
    unreadable, or whose mask and image sizes disagree, becomes a named problem: it is skipped
    and the round goes on."""
    cache_img, cache_mask = {}, {}
    ok, images, masks, problems = [], [], [], []
    for unit in units:
        item = unit[0]
        src, mpath = item["filepath"], item["mask"]["mask_path"]
        try:
            if src not in cache_img:
                cache_img[src] = read_rgb(src)
            if mpath not in cache_mask:
                cache_mask[mpath] = read_mask(mpath)
        except (OSError, ValueError, ImageProblem) as exc:
            bad = mpath if src in cache_img else src
            problems.append(Problem(f"pool item {item['key']}", bad, f"cannot be read ({exc})",
                                    "restore the file, then rerun generate"))
            continue
        img, mask = cache_img[src], cache_mask[mpath]
        if img.shape[:2] != mask.shape:
            problems.append(Problem(
                f"pool item {item['key']}", src,
                f"image is {img.shape[1]}x{img.shape[0]} but its mask {mpath} is "
                f"{mask.shape[1]}x{mask.shape[0]} (the image changed after import?)",
                "restore the original image or re-import the item; the other items go on"))
            continue
        ok.append(unit)
        images.append(img)
        masks.append(mask)
    return ok, images, masks, problems


def _remove_items(remover, ok_units, images, masks, seeds, problems):
    """Run the remover on a batch; an item it refuses (an error with ``.index``) becomes a
    named problem and the rest of the batch is run again without it."""
    while ok_units:
        try:
            return ok_units, seeds, remover.remove(images, masks, seeds, output="numpy")
        except ConfigError as exc:
            i = getattr(exc, "index", None)
            if not isinstance(i, int) or not 0 <= i < len(ok_units):
                raise
            item = ok_units[i][0]
            problems.append(Problem(f"pool item {item['key']}", item["filepath"],
                                    f"the remover refused it ({exc})", "fix or drop the item"))
            for seq in (ok_units, images, masks, seeds):
                del seq[i]
    return [], [], []


def _write_png(path: str, arr: np.ndarray) -> None:
    from rorem_data.core.images import write_bytes_atomic

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=3)
    write_bytes_atomic(path, buf.getvalue())


def _remove_stale_temp_files(out_dir: str, keys: set[str]) -> int:
    """Delete ``<key>.png.tmp-<pid>-<token>`` files left by killed runs, for this share's keys
    only, and only those whose process is gone (a concurrent run's live files stay)."""
    removed = 0
    try:
        entries = list(os.scandir(out_dir))
    except FileNotFoundError:
        return 0
    for e in entries:
        name = e.name
        if ".png.tmp-" not in name:
            continue
        key, _, tail = name.partition(".png.tmp-")
        if key not in keys:
            continue
        parts = tail.split("-")  # <pid>-<host>-<token> (older runs: <pid>-<token>)
        pid = parts[0]
        if len(parts) >= 3 and parts[1] != _HOST:
            continue  # another machine's file on a shared media folder: its process is not ours to judge
        if pid.isdigit() and pid_alive(int(pid)):
            continue
        try:
            os.remove(e.path)
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def generate(project, round: int, remover_spec, *, candidates: int = 1, batch_size: int = 4,
             shard=None, pool_filter=None, progress: bool | None = None, device: str | None = None,
             ) -> GenerateResult:
    """Generate ``candidates`` results per pool item with a remover and store them as
    ``pending`` candidates of ``round``.

    Parameters
    ----------
    project : Project
    round : int
        Round number (>= 1; round 0 holds the seed pairs).
    remover_spec : RemoverSpec, dict, str or Remover
        What :func:`rorem_data.removers.load_remover` accepts, or an already loaded remover.
    candidates : int
        K, candidates per pool item (distinct deterministic seeds).
    batch_size : int
        Candidates per pipeline call and per database write.
    shard : (int, int) or "i/n", optional
        Take only items whose position in key order ``% n == i``. Under
        ``accelerate launch`` the processes split the (sharded) items further on their own.
    pool_filter : dict or FiftyOne view, optional
        Restrict the pool: a MongoDB filter on sample fields (``{"origin": "coco"}``) or a view
        of pool samples.
    progress : bool
        Show a progress bar (candidates/s).
    device : str, optional
        Override the spec's device (default: the spec's; under accelerate, the process's).

    Returns
    -------
    GenerateResult

    Raises
    ------
    ConfigError
        Bad round / candidates / batch_size / shard / pool_filter, or a remover that does not
        load (see :func:`rorem_data.removers.load_remover`).

    Examples
    --------
    >>> generate(project, 1, "classical:telea", candidates=1)      # doctest: +SKIP
    """
    from rorem_data.removers import Remover, RemoverSpec, load_remover

    t0 = time.perf_counter()
    if not isinstance(round, int) or isinstance(round, bool) or round < 1:
        raise ConfigError(f"round must be an integer >= 1 for generation (round 0 holds the "
                          f"seed pairs); got {round!r}")
    checks.positive_int(candidates, "candidates")
    checks.positive_int(batch_size, "batch_size")
    shard = sharding.parse_shard(shard)

    share = sharding.accelerate_share()
    spec = remover_spec.spec if isinstance(remover_spec, Remover) else RemoverSpec.parse(remover_spec)
    _check_against_plan(project, round, spec, candidates)
    if isinstance(remover_spec, Remover):
        remover = remover_spec
    else:
        if device is None and share is not None and spec.device == "auto":
            device = str(share[2])
        remover = load_remover(spec, device=device)
    if shard is None and share is None:  # sharded runs share the round by design (keys keep them apart)
        from rorem_data.dataset.leases import lease_wait, round_lease

        lock = round_lease(project.dataset_name, round, step="generate", wait=lease_wait())
    else:
        lock = contextlib.nullcontext()
    with lock:
        return _generate(project, round, remover, t0=t0, candidates=candidates,
                         batch_size=batch_size, shard=shard, share=share, pool_filter=pool_filter,
                         progress=progress)


def _check_against_plan(project, round: int, spec, candidates: int) -> None:
    """Refuse to add another remover's candidates to a round that ``run_round`` generated."""
    from rorem_data.core.errors import PlanChanged
    from rorem_data.rounds.plan import describe_remover

    done = ((store.round_record(project.dataset_name, round).get("driver") or {}).get("steps") or {}).get("generate")
    used = (done or {}).get("params")
    if not isinstance(used, dict) or "remover" not in used:
        return
    now = describe_remover(spec)
    before = {k: v for k, v in used["remover"].items() if k != "given"}
    if {k: v for k, v in now.items() if k != "given"} != before or used.get("candidates") not in (None, candidates):
        raise PlanChanged(
            f"round {round} was generated by run_round with remover "
            f"{used['remover'].get('given') or used['remover'].get('name') or before} and "
            f"candidates={used.get('candidates')}; adding other candidates would mix two designs "
            f"in one round. Generate them as round {round + 1}", parameter="remover",
            before=used["remover"], after=now, step="generate")


def _generate(project, round, remover, *, t0, candidates, batch_size, shard, share, pool_filter,
              progress) -> GenerateResult:
    from rorem_data.core.progress import progress as progress_bar

    items = read_pool_items(project, pool_filter=pool_filter)
    # shards by a hash of the pool item's key: items added between shard runs fall in one shard
    items = [items[i] for i in sharding.select_keys([it["key"] for it in items], shard, share)]
    eff_shard = shard
    if share is not None:
        eff_shard = (*(shard or (0, 1)), share[0], share[1])

    out_dir = project.media_path("candidates", f"round-{round}")
    res = GenerateResult(round=round, remover=remover.spec.display_name, remover_key=remover.key,
                         pool_items=len(items), candidates_per_item=candidates,
                         expected=len(items) * candidates, shard=eff_shard, out_dir=out_dir)
    rkey = remover.key
    units = [(it, k, candidate_key(it["key"], rkey, k)) for it in items for k in range(candidates)]
    ds = project.dataset
    present = store.existing_keys(ds, [u[2] for u in units])
    res.already_present = len(present)
    units = [u for u in units if u[2] not in present]
    os.makedirs(out_dir, exist_ok=True)
    _remove_stale_temp_files(out_dir, {u[2] for u in units})

    record = f"generation.{rkey}"
    prov_base = remover.provenance()
    batches = [units[i:i + batch_size] for i in range(0, len(units), batch_size)]

    unrecorded = {"n": 0, "at": time.monotonic()}

    def record_counts(force: bool = False):
        # the round record's running count, written at most every 10 s (and at the end)
        if unrecorded["n"] and (force or time.monotonic() - unrecorded["at"] > 10):
            store.update_round_record(project.dataset_name, round,
                                      inc={f"{record}.inserted": unrecorded["n"]})
            unrecorded.update(n=0, at=time.monotonic())

    def commit(pending):
        writes, docs, n = pending
        for f in writes:
            f.result()  # raises if an image could not be written: then no record either
        inserted = store.insert_documents(ds, docs) if docs else 0
        res.inserted += inserted
        unrecorded["n"] += inserted
        record_counts()
        bar.update(n)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="rorem-generate") as pool, \
            progress_bar(total=len(units), desc=f"generating round {round}", unit="img",
                         enabled=progress) as bar:
        next_load = pool.submit(_load_units, batches[0]) if batches else None
        pending = None
        try:
            for bi, batch in enumerate(batches):
                ok_units, images, masks, problems = next_load.result()
                if bi + 1 < len(batches):
                    next_load = pool.submit(_load_units, batches[bi + 1])
                seeds = [candidate_seed(it["key"], k) for it, k, _key in ok_units]
                ok_units, seeds, results = _remove_items(remover, ok_units, images, masks, seeds,
                                                         problems)
                res.failed.extend(problems)
                now = schema.utcnow()
                writes, docs = [], []
                for (it, k, key), arr, seed in zip(ok_units, results, seeds):
                    path = os.path.join(out_dir, f"{key}.png")
                    writes.append(pool.submit(_write_png, path, arr))
                    doc = documents.sample_doc(
                        key=key, kind=schema.KIND_CANDIDATE, filepath=it["filepath"],
                        width=it["metadata"]["width"], height=it["metadata"]["height"],
                        mask_path=it["mask"]["mask_path"], mask_area=float(it.get("mask_area") or 0.0),
                        origin=it.get("origin"), category=it.get("category"), target_path=path,
                        round=round, pool_item_id=it["id"], candidate_index=k,
                        generator={**prov_base, "seed": seed}, now=now,
                        license=it.get("license"), license_url=it.get("license_url"),
                    )
                    doc["status"] = schema.PENDING
                    docs.append(doc)
                if pending is not None:
                    done, pending = pending, None
                    commit(done)
                pending = (writes, docs, len(batch))
            if pending is not None:
                done, pending = pending, None
                commit(done)
        finally:
            if pending is not None:  # interrupted: keep the finished batch (images + records)
                done, pending = pending, None
                commit(done)
            record_counts(force=True)

    res.seconds = time.perf_counter() - t0
    prov_core = {k: v for k, v in prov_base.items() if k not in ("device",)}
    store.update_round_record(
        project.dataset_name, round,
        set={f"{record}.provenance": prov_core, f"{record}.candidates_per_item": candidates,
             f"{record}.last_run": {"at": schema.utcnow(), "shard": list(eff_shard) if eff_shard else None,
                                    "pool_items": res.pool_items, "inserted": res.inserted,
                                    "already_present": res.already_present,
                                    "failed": len(res.failed), "seconds": round_(res.seconds)},
             f"{record}.failed": [{"item": p.item, "file": p.file, "problem": p.problem}
                                  for p in res.failed[:1000]]},
        inc={f"{record}.seconds": round_(res.seconds), f"{record}.runs": 1},
    )
    return res


def round_(x: float) -> float:
    return float(f"{x:.3f}")

