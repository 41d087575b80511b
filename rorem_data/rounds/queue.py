"""``rorem-data select``: build a round's human review queue with a query strategy.

Reads the round's candidates in bulk, hands plain arrays to :func:`rorem_data.selection.strategies.select`
(positions in, positions out), and converts positions to sample ids once. The queue is stored
on the samples (``queue_round``, ``queue_rank``, ``review_quota``), as a FiftyOne saved view named
``review-round-N`` (and ``adjudicate-round-N`` for disagreements), and in the round record
(strategy, parameters, seed, ids). Selecting again adds to the queue; it never re-queues an
item already queued or judged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rorem_data.core import schema
from rorem_data.core.errors import ConfigError
from rorem_data.dataset import queries, queues, store


@dataclass
class Selection:
    round: int
    strategy: str
    sample_ids: list
    double_reviewed: int
    queue_size: int
    seconds: float
    repeated: bool = False

    def summary(self) -> str:
        if self.repeated:
            return (f"this exact selection ({len(self.sample_ids)} candidates, '{self.strategy}') was "
                    f"already queued for round {self.round}; pass another --seed or --budget to add more")
        s = (f"queued {len(self.sample_ids)} candidates of round {self.round} with "
             f"'{self.strategy}' (queue now {self.queue_size})")
        if self.double_reviewed:
            s += f"; {self.double_reviewed} will be judged by two reviewers"
        return s + f" in {self.seconds:.1f} s"


def score_field(discriminator_key: str) -> str:
    """Field holding a discriminator version's scores on candidates."""
    return f"scores.{discriminator_key}"


def load_round_arrays(project, round: int, *, score_keys=(), extra_fields=()) -> dict:
    """Candidates of ``round`` as column arrays (one query). Keys: ``ids``, ``keys``,
    ``status``, ``queued``, ``decided_by``, ``mask_area``, ``category``, ``origin``, ``scores``
    (dict of float arrays with NaN for missing), plus ``extra_fields``."""
    fields = ["key", "status", "queue_round", "mask_area", "category", "origin", "decided_by",
              "scores", *extra_fields]
    docs = queries.candidates(project.dataset, round=round, fields=fields)
    out = {
        "ids": [d["id"] for d in docs],
        "keys": [d["key"] for d in docs],
        "status": np.array([d.get("status") or schema.PENDING for d in docs], dtype=object),
        "queued": np.array([d.get("queue_round") is not None for d in docs], dtype=bool),
        "decided_by": np.array([d.get("decided_by") for d in docs], dtype=object),
        "mask_area": np.array([d.get("mask_area") or 0.0 for d in docs], dtype=np.float64),
        "category": np.array([d.get("category") or "" for d in docs], dtype=object),
        "origin": np.array([d.get("origin") or "" for d in docs], dtype=object),
        "scores": {},
    }
    for k in score_keys:
        out["scores"][k] = np.array([(d.get("scores") or {}).get(k, np.nan) for d in docs], dtype=np.float64)
    for f in extra_fields:
        out[f] = [d.get(f) for d in docs]
    return out


def build_queue(
    project,
    round: int,
    budget: int,
    *,
    strategy: str = "uncertainty",
    discriminator: str | None = None,
    committee: list[str] | None = None,
    threshold: float = 0.5,
    featurizer: str | None = None,
    strata: list[str] | None = None,
    double_share: float = 0.0,
    rng: int = 0,
    previews: bool = True,
    **params,
) -> Selection:
    """Select ``budget`` unreviewed candidates of ``round`` for human review.

    Parameters
    ----------
    project : Project
    round : int
    budget : int
        How many candidates to add to the queue.
    strategy : str
        A name from :func:`rorem_data.selection.strategies.list_strategies`.
    discriminator : str, optional
        Discriminator version whose scores (``scores.<key>``) drive score-based strategies.
    committee : list of str, optional
        Several discriminator versions, for ``disagreement``.
    threshold : float
        The accept threshold the uncertainty is measured around.
    featurizer : str, optional
        Feature cache key for ``kcenter`` / ``hybrid``.
    strata : list of {"area", "category", "origin"}, optional
        Metadata to stratify over (``stratified``).
    double_share : float in [0, 1]
        Share of the queued items that two reviewers judge independently.
    rng : int
        Seed: the same seed gives the same queue.

    Returns
    -------
    Selection

    Raises
    ------
    ConfigError
        From the strategy (missing inputs, budget too large, ...), or no candidates in the round.
    """
    from rorem_data.selection import strategies

    t0 = time.perf_counter()
    if not 0.0 <= double_share <= 1.0:
        raise ConfigError(f"--double-share must be in [0, 1]; got {double_share}")
    plain = {k: v for k, v in params.items() if isinstance(v, (int, float, str, bool))}
    sel_id = _selection_id(round=int(round), budget=budget, strategy=strategy, discriminator=discriminator,
                           committee=committee, threshold=threshold, featurizer=featurizer, strata=strata,
                           double_share=double_share, rng=rng, params=plain)
    done = store.find_selection(project.dataset_name, round, sel_id)
    if done is not None:
        # the same selection was made before: finish it if it was interrupted, never repeat it
        ids = done["sample_ids"]
        double = set(done.get("double_positions") or [])
        size = enqueue(project, round, ids, purpose=schema.QUEUE_ACTIVE, double=double, previews=previews)
        store.mark_selection_done(project.dataset_name, round, sel_id)
        return Selection(round=int(round), strategy=strategy, sample_ids=ids, double_reviewed=len(double),
                         queue_size=size, seconds=time.perf_counter() - t0, repeated=done.get("status") == "done")
    score_keys = list(committee or []) + ([discriminator] if discriminator else [])
    arr = load_round_arrays(project, round, score_keys=score_keys,
                            extra_fields=("filepath", "target_path"))
    n = len(arr["ids"])
    if n == 0:
        raise ConfigError(f"round {round} has no candidates; run `rorem-data generate --round {round}` first")
    reviewed = arr["queued"] | np.isin(arr["status"], [schema.ACCEPTED, schema.REJECTED])
    kwargs = dict(rng=rng, reviewed=reviewed, threshold=threshold, n=n, **params)
    if discriminator:
        p = arr["scores"][discriminator]
        missing = np.isnan(p) & ~reviewed
        if missing.any():
            raise ConfigError(f"{int(missing.sum())} unreviewed candidates of round {round} have no "
                              f"score from discriminator {discriminator!r}; run `rorem-data score "
                              f"--round {round} --discriminator {discriminator}` first")
        kwargs["proba"] = np.where(np.isnan(p), 0.5, p)
    if committee:
        kwargs["committee"] = np.stack([np.nan_to_num(arr["scores"][k], nan=0.5) for k in committee])
    if strata:
        table = {}
        for s in strata:
            if s == "area":
                table["area"] = strategies.quantile_bins(arr["mask_area"], 4)
            elif s in ("category", "origin"):
                table[s] = arr[s]
            else:
                raise ConfigError(f"--strata entries must be area, category or origin; got {s!r}")
        kwargs["strata"] = table
    if featurizer:
        from rorem_data.rounds.discriminator import load_features

        kwargs["features"] = load_features(project, featurizer, arr["ids"])
    picked = strategies.select(strategy, budget, **kwargs)
    ids = [arr["ids"][i] for i in picked]
    gen = np.random.default_rng(rng)
    n_double = round_half_up(double_share * len(ids))
    double = set(gen.choice(len(ids), size=n_double, replace=False).tolist()) if n_double else set()
    # record first (status "started"), then queue, then mark done: an interrupted select is
    # finished by the same command, and never queues a second, different batch
    store.update_round_record(project.dataset_name, round, push={"selections": {
        "id": sel_id, "status": "started", "at": schema.utcnow(), "purpose": schema.QUEUE_ACTIVE,
        "strategy": strategy, "budget": int(budget), "seed": int(rng), "threshold": float(threshold),
        "discriminator": discriminator, "committee": committee, "featurizer": featurizer,
        "strata": strata, "double_share": float(double_share), "params": plain,
        "sample_ids": ids, "double_positions": sorted(double),
    }})
    size = enqueue(project, round, ids, purpose=schema.QUEUE_ACTIVE, double=double, previews=previews)
    store.mark_selection_done(project.dataset_name, round, sel_id)
    return Selection(round=int(round), strategy=strategy, sample_ids=ids, double_reviewed=len(double),
                     queue_size=size, seconds=time.perf_counter() - t0)


def enqueue(project, round: int, sample_ids: list, *, purpose: str, double=(), previews: bool = True,
            extra: dict | None = None) -> int:
    """Append candidates to the round's review queue (skipping any already queued).

    Writes previews, then one bulk update; refreshes the saved views. Returns the queue size.
    """
    ds = project.dataset
    paths = {}
    if previews and sample_ids:
        from rorem_data.dataset.previews import ensure_previews

        docs = queries.by_ids(ds, sample_ids, ["filepath", "target_path", "mask.mask_path"],
                              unqueued_only=True)
        rows = [(sid, docs[sid]["filepath"], docs[sid]["mask"]["mask_path"], docs[sid]["target_path"])
                for sid in sample_ids if sid in docs]
        paths = dict(zip([r[0] for r in rows], ensure_previews(project, rows)))
    return queues.enqueue(ds, round, sample_ids, purpose=purpose, double=double,
                          preview_paths=paths, extra=extra)


def build_estimate_sample(project, round: int, size: int, *, rng: int = 0, previews: bool = True) -> Selection:
    """Draw a uniform random sample of the round's candidates for unbiased success-rate estimates.

    The sample is uniform over ALL candidates of the round not yet in it: members a human already
    judged keep their judgment; the others are queued. Marks members with ``estimate_sample``.
    Running the same call again after an interruption finishes it instead of drawing again.
    """
    t0 = time.perf_counter()
    ds = project.dataset
    sel_id = _selection_id(round=int(round), purpose=schema.QUEUE_ESTIMATE, size=int(size), rng=int(rng))
    done = store.find_selection(project.dataset_name, round, sel_id)
    if done is not None:
        chosen = done["sample_ids"]
    else:
        pool = queries.candidate_ids(ds, round=round, estimate_sample=False)
        if size <= 0 or size > len(pool):
            raise ConfigError(f"estimation sample size must be in 1..{len(pool)} (candidates of round "
                              f"{round} not yet in the sample); got {size}")
        gen = np.random.default_rng(rng)
        chosen = [pool[i] for i in sorted(gen.choice(len(pool), size=size, replace=False).tolist())]
        store.update_round_record(project.dataset_name, round, push={"selections": {
            "id": sel_id, "status": "started", "at": schema.utcnow(), "purpose": schema.QUEUE_ESTIMATE,
            "strategy": "uniform", "budget": int(size), "seed": int(rng), "sample_ids": chosen}})
    queues.mark_estimate_sample(ds, chosen)
    size_q = enqueue(project, round, chosen, purpose=schema.QUEUE_ESTIMATE, previews=previews)
    store.mark_selection_done(project.dataset_name, round, sel_id)
    return Selection(round=int(round), strategy="uniform (estimate)", sample_ids=chosen,
                     double_reviewed=0, queue_size=size_q, seconds=time.perf_counter() - t0,
                     repeated=bool(done and done.get("status") == "done"))


def _selection_id(**what) -> str:
    import hashlib
    import json

    return hashlib.sha1(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:16]


def round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))
