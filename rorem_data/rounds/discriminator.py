"""The discriminator in a project: featurize candidates, train a version, score, evaluate.

Array-level pieces live elsewhere (:mod:`rorem_data.features.featurizers`, :mod:`rorem_data.discriminators.heads`,
:mod:`rorem_data.discriminators.specs`, :mod:`rorem_data.stats.calibration`,
:mod:`rorem_data.stats.thresholds`, :mod:`rorem_data.stats.agreement`); this module reads candidates from
the dataset in bulk, hands arrays or file paths to them, and writes results back in bulk.

A trained **version** lives in ``<project>/models/discriminators/<version>/``: the fitted model
(safetensors + JSON, no pickle), and ``meta.json`` with the spec, the labels it was trained on,
its held-out labels and calibrated scores (from which auto-label thresholds are chosen), the
calibration, agreement with humans, and the removers it has seen. Scores are stored on
candidates as ``scores.<version>``: calibrated P(success), higher = better removal.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass

import numpy as np

from rorem_data.core import schema
from rorem_data.dataset import store
from rorem_data.core.errors import ConfigError


def features_root(project) -> str:
    return project.media_path("features")


def candidate_items(project, query: dict) -> tuple[list[str], list[tuple[str, str, str]], list[dict]]:
    """(sample ids, (source, result, mask) paths, docs) of the matching candidates, key order."""
    coll = project.dataset._sample_collection
    docs = list(coll.find({"kind": schema.KIND_CANDIDATE, **query},
                          {"key": 1, "filepath": 1, "target_path": 1, "mask.mask_path": 1, "status": 1,
                           "decided_by": 1, "round": 1, "generator": 1, "decisions": 1}).sort("key", 1))
    ids = [str(d["_id"]) for d in docs]
    items = [(d["filepath"], d["target_path"], d["mask"]["mask_path"]) for d in docs]
    return ids, items, docs


@dataclass
class FeaturizeResult:
    featurizer: str
    key: str
    items: int
    computed: int
    seconds: float

    def summary(self) -> str:
        return (f"features {self.key}: {self.items} candidates, computed {self.computed} "
                f"({self.items - self.computed} cached) in {self.seconds:.1f} s")


def _cache(project, featurizer):
    from rorem_data.features.cache import FeatureCache

    return FeatureCache(features_root(project), featurizer.key, featurizer.config)


def featurize(project, featurizer: str = "stats", *, config: dict | None = None, round: int | None = None,
              shard=None, batch_size: int = 32, num_workers: int = 2, progress: bool = True) -> FeaturizeResult:
    """Compute (or reuse) features of candidates, cached in the project by featurizer config.

    Parameters
    ----------
    featurizer : str
        A name from :func:`rorem_data.features.featurizers.list_featurizers`.
    config : dict, optional
        Featurizer settings (e.g. ``{"model": "ViT-B-32", "pretrained": "local-dir:..."}``).
    round : int, optional
        Only candidates of this round.
    shard : (i, n) or "i/n", optional
        Only this share of the candidates (key order); under ``accelerate launch`` each process
        takes its share. Shards write separate cache chunks; nothing needs merging.
    """
    from rorem_data.features.featurizers import featurize_paths, get_featurizer
    from rorem_data.rounds.generate import _accelerate_share, parse_shard

    t0 = time.perf_counter()
    f = get_featurizer(featurizer, **(config or {}))
    query = {} if round is None else {"round": int(round)}
    ids, items, _docs = candidate_items(project, query)
    shard = parse_shard(shard)
    pos = np.arange(len(ids))
    if shard is not None:
        pos = pos[pos % shard[1] == shard[0]]
    share = _accelerate_share()
    if share is not None:
        pos = pos[np.arange(len(pos)) % share[1] == share[0]]
    ids = [ids[i] for i in pos]
    items = [items[i] for i in pos]
    cache = _cache(project, f)
    missing = len(cache.missing(ids)) if ids else 0
    if ids:
        featurize_paths(f, items, ids=ids, cache=cache, batch_size=batch_size,
                        num_workers=num_workers, progress=progress)
    store.update_round_record(project.dataset_name, int(round or 0), set={
        f"features.{f.key}": {"featurizer": featurizer, "config": f.config, "at": schema.utcnow()}})
    return FeaturizeResult(featurizer=featurizer, key=f.key, items=len(ids), computed=missing,
                           seconds=time.perf_counter() - t0)


def load_features(project, featurizer_key: str, ids) -> np.ndarray:
    """Cached features of ``ids`` (rows in that order) for a featurizer key, as float32."""
    from rorem_data.features.cache import FeatureCache

    root = features_root(project)
    folder = os.path.join(root, featurizer_key)
    if not os.path.isdir(folder):
        from rorem_data.features.featurizers import featurizer_key as key_of, list_featurizers

        if featurizer_key in list_featurizers():  # a name: its default config
            featurizer_key = key_of(featurizer_key, {})
            folder = os.path.join(root, featurizer_key)
    if not os.path.isdir(folder):
        known = sorted(os.listdir(root)) if os.path.isdir(root) else []
        raise ConfigError(f"no cached features {featurizer_key!r}; run `rorem-data featurize` first "
                          f"(cached: {', '.join(known) or 'none'})")
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as fh:
        cfg = json.load(fh)
    cache = FeatureCache(root, featurizer_key, cfg.get("config", cfg))
    return cache.read(list(ids))


def _inputs(project, spec, ids, items, *, progress=True):
    """What the spec's head takes: features (cached by sample id when ``ids`` are given,
    computing missing ones) or file triples."""
    if spec.featurizer is None:
        return items
    from rorem_data.features.featurizers import featurize_paths

    f = spec.make_featurizer()
    if ids is None:
        return featurize_paths(f, items, progress=progress)
    cache = _cache(project, f)
    return featurize_paths(f, items, ids=ids, cache=cache, progress=progress)


def _human_labels(docs, max_round: int):
    """Latest human accept/reject of each candidate, from decisions made in rounds <= max_round."""
    out = []
    for d in docs:
        hum = [x for x in d.get("decisions") or [] if x and x.get("by") == schema.BY_HUMAN
               and x.get("status") in (schema.ACCEPTED, schema.REJECTED) and (x.get("round") or 0) <= max_round]
        out.append(None if not hum else int(hum[-1]["status"] == schema.ACCEPTED))
    return out


def _version_name(spec_name: str, round: int, ids: list[str]) -> str:
    import re

    h = hashlib.sha1(("\n".join(sorted(ids)) + spec_name).encode()).hexdigest()[:6]
    return f"{re.sub(r'[^A-Za-z0-9]+', '_', spec_name).strip('_')}_r{int(round)}_{h}"


@dataclass
class TrainResult:
    version: str
    n_train: int
    n_holdout: int
    agreement: dict
    seconds: float

    def summary(self) -> str:
        a = self.agreement
        auc = a.get("auc") or {}
        auc_s = f"AUC {auc['value']:.3f} [{auc['lo']:.3f}, {auc['hi']:.3f}]" if auc else "AUC n/a"
        hr, dr = a.get("human_rate") or {}, a.get("discriminator_rate") or {}
        return (f"trained {self.version} on {self.n_train} human labels; held-out {self.n_holdout}: {auc_s}, "
                f"success rate human {100 * hr.get('value', 0):.1f}% vs discriminator "
                f"{100 * dr.get('value', 0):.1f}% in {self.seconds:.1f} s")


def train(project, round: int, discriminator: str = "stats-logistic", *, holdout: float = 0.3,
          calibration: str = "platt", rng: int = 0, progress: bool = True) -> TrainResult:
    """Train a discriminator version on every human label of rounds <= ``round``.

    The labels are split (stratified, ``rng``) into a training part and a held-out part; the
    held-out part fits the calibration, measures agreement with humans, and later sets the
    auto-label thresholds. Its calibrated scores are kept in the version's ``meta.json``.

    Raises
    ------
    ConfigError
        Too few labels, a single class, an unknown spec.
    """
    from sklearn.model_selection import train_test_split

    from rorem_data.stats.agreement import agreement_report
    from rorem_data.rounds.versions import version_dir, write_version_meta
    from rorem_data.stats.calibration import get_calibrator
    from rorem_data.discriminators.specs import get_spec, save_discriminator

    t0 = time.perf_counter()
    spec = get_spec(discriminator)
    ids, items, docs = candidate_items(project, {"round": {"$lte": int(round)}})
    labels = _human_labels(docs, int(round))
    keep = [i for i, y in enumerate(labels) if y is not None]
    y = np.array([labels[i] for i in keep], dtype=np.int64)
    if len(keep) < 20 or len(set(y.tolist())) < 2:
        raise ConfigError(f"training needs at least 20 human labels of both kinds in rounds <= {round}; "
                          f"found {len(keep)} ({int(y.sum()) if len(y) else 0} accepted). Review more "
                          "candidates first (`rorem-data select` + `rorem-data review`)")
    ids = [ids[i] for i in keep]
    items = [items[i] for i in keep]
    docs = [docs[i] for i in keep]
    tr, ho = train_test_split(np.arange(len(ids)), test_size=holdout, stratify=y, random_state=rng)
    X = _inputs(project, spec, ids, items, progress=progress)
    sel = (lambda idx: X[idx]) if isinstance(X, np.ndarray) else (lambda idx: [X[i] for i in idx])
    disc = spec.build()
    disc.fit(sel(tr), y[tr])
    raw = disc.predict_proba(sel(ho))[:, 1]
    cal = get_calibrator(calibration).fit(raw, y[ho])
    hold_scores = cal.predict(raw)
    report = agreement_report(hold_scores, y[ho], threshold=0.5, rng=rng)
    version = _version_name(spec.name, round, ids)
    folder = version_dir(project, version)
    save_discriminator(disc, os.path.join(folder, "model"), spec=spec)
    generators = sorted({(d.get("generator") or {}).get("remover_key") for d in docs} - {None})
    meta = {
        "trained_at": schema.utcnow().isoformat(), "round": int(round), "spec": spec.name,
        "spec_source": spec.source, "featurizer_key": spec.featurizer_key,
        "calibration": cal.to_dict(), "generators": generators,
        "train_ids": [ids[i] for i in tr], "holdout": {
            "ids": [ids[i] for i in ho], "scores": hold_scores.tolist(), "labels": y[ho].tolist()},
        "agreement": report.as_dict(),
    }
    write_version_meta(project, version, meta)
    store.update_round_record(project.dataset_name, round, set={f"discriminators.{version}": {
        "spec": spec.name, "n_train": len(tr), "n_holdout": len(ho), "agreement": report.as_dict(),
        "at": schema.utcnow()}})
    return TrainResult(version=version, n_train=len(tr), n_holdout=len(ho), agreement=report.as_dict(),
                       seconds=time.perf_counter() - t0)


def _load_version(project, version):
    from rorem_data.rounds.versions import load_version_meta, version_dir
    from rorem_data.stats.calibration import calibrator_from_dict
    from rorem_data.discriminators.specs import get_spec, load_discriminator

    meta = load_version_meta(project, version)
    disc = load_discriminator(os.path.join(version_dir(project, version), "model"))
    spec = get_spec(meta["spec"]) if meta.get("spec_source") != "class" else None
    return meta, disc, spec, calibrator_from_dict(meta["calibration"])


def predict(project, version: str, ids, items, *, progress: bool = True) -> np.ndarray:
    """Calibrated P(success) of (source, result, mask) file triples under a trained version;
    ``ids`` (sample ids) enable the feature cache, None computes features without caching."""
    meta, disc, spec, cal = _load_version(project, version)
    if spec is None or spec.featurizer is None:
        X = items
    else:
        X = _inputs(project, spec, ids, items, progress=progress)
    return cal.predict(disc.predict_proba(X)[:, 1])


@dataclass
class ScoreResult:
    version: str
    round: int
    scored: int
    seconds: float

    def summary(self) -> str:
        return f"scored {self.scored} candidates of round {self.round} with {self.version} in {self.seconds:.1f} s"


def score(project, round: int, version: str | None = None, *, progress: bool = True) -> ScoreResult:
    """Store calibrated scores of a version on every candidate of ``round`` (one bulk write)."""
    from rorem_data.rounds.versions import latest_version

    t0 = time.perf_counter()
    version = version or latest_version(project)
    if version is None:
        raise ConfigError("no trained discriminator; run `rorem-data discriminator train` first")
    ids, items, _docs = candidate_items(project, {"round": int(round)})
    if not ids:
        raise ConfigError(f"round {round} has no candidates to score")
    p = predict(project, version, ids, items, progress=progress)
    store.set_field_values(project.dataset, f"scores.{version}", ids, [float(v) for v in p])
    return ScoreResult(version=version, round=int(round), scored=len(ids), seconds=time.perf_counter() - t0)


def evaluate(project, version: str | None = None, *, round: int | None = None, threshold: float = 0.5,
             exclude_training: bool = True, confidence: float = 0.95) -> dict:
    """Agreement of a version with human labels on candidates (of ``round``, or all).

    Labels the version was trained on are left out by default. Returns the agreement report as
    a dict (AUC, accuracy, precision/recall at ``threshold``, human vs discriminator success
    rate and their difference, each with an interval).
    """
    from rorem_data.stats.agreement import agreement_report
    from rorem_data.rounds.versions import latest_version, load_version_meta

    version = version or latest_version(project)
    if version is None:
        raise ConfigError("no trained discriminator; run `rorem-data discriminator train` first")
    meta = load_version_meta(project, version)
    query = {} if round is None else {"round": int(round)}
    ids, items, docs = candidate_items(project, query)
    labels = _human_labels(docs, 10**9)
    skip = set(meta.get("train_ids") or []) if exclude_training else set()
    keep = [i for i, (sid, y) in enumerate(zip(ids, labels)) if y is not None and sid not in skip]
    if len(keep) < 2:
        raise ConfigError("fewer than 2 human-labelled candidates to evaluate on (training labels "
                          "excluded); review more, or pass --include-training")
    sub_ids = [ids[i] for i in keep]
    p = predict(project, version, sub_ids, [items[i] for i in keep])
    y = np.array([labels[i] for i in keep])
    rep = agreement_report(p, y, threshold=threshold, confidence=confidence)
    return {"version": version, "n": len(keep), **rep.as_dict()}
