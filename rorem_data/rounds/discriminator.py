"""The discriminator in a project: featurize candidates, train a version, score, evaluate.

The one project-level discriminator API: :func:`featurize`, :func:`train`, :func:`predict`,
:func:`score`, :func:`evaluate`. Array-level pieces live elsewhere (:mod:`rorem_data.features`,
:mod:`rorem_data.discriminators`, :mod:`rorem_data.stats.calibration`,
:mod:`rorem_data.stats.agreement`); this module reads candidates from the dataset in bulk, hands
arrays or file paths to them, and writes results back in bulk.

A trained **version** lives in ``<project>/models/discriminators/<version>/``: ``model/`` (the
fitted discriminator - safetensors + JSON, no pickle - and ``spec.json``, the full spec it was
trained from) and ``meta.json`` (the labels it was trained on, its held-out labels and
calibrated scores, from which auto-label thresholds are chosen, the calibration, agreement with
humans, and the removers it has seen). A version is always scored from its own ``spec.json``,
never by looking its spec name up again: editing or deleting the spec file later changes
nothing. Scores are stored on candidates as ``scores.<version>``: calibrated P(success), higher
= better removal.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass

import numpy as np

from rorem_data.core.display import Displayable
from rorem_data.core import jsonfile, schema
from rorem_data.dataset import queries, store
from rorem_data.core.errors import ConfigError


def features_root(project) -> str:
    return project.media_path("features")


def candidate_items(project, *, round: int | None = None, rounds_upto: int | None = None,
                    ) -> tuple[list[str], list[tuple[str, str, str]], list[dict]]:
    """(sample ids, (source, result, mask) paths, docs) of the candidates of ``round`` (or of
    rounds ``<= rounds_upto``, or all), key order."""
    docs = queries.candidates(project.dataset, round=round, rounds_upto=rounds_upto,
                              fields=["key", "filepath", "target_path", "mask.mask_path", "status",
                                      "decided_by", "round", "generator", "decisions"])
    ids = [d["id"] for d in docs]
    items = [(d["filepath"], d["target_path"], d["mask"]["mask_path"]) for d in docs]
    return ids, items, docs


@dataclass(repr=False)
class FeaturizeResult(Displayable):
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

    return FeatureCache(features_root(project), featurizer.key, featurizer.key_config)


def featurize(project, featurizer: str = "stats", *, config: dict | None = None, round: int | None = None,
              shard=None, batch_size: int = 32, num_workers: int = 2, progress: bool | None = None) -> FeaturizeResult:
    """Compute (or reuse) features of candidates, cached in the project by featurizer config.

    Parameters
    ----------
    featurizer : str
        A name from :func:`rorem_data.features.base.list_featurizers`.
    config : dict, optional
        Featurizer settings (e.g. ``{"model": "ViT-B-32", "pretrained": "local-dir:..."}``).
    round : int, optional
        Only candidates of this round.
    shard : (i, n) or "i/n", optional
        Only this share of the candidates (key order); under ``accelerate launch`` each process
        takes its share. Shards write separate cache chunks; nothing needs merging.
    """
    from rorem_data.features.base import get_featurizer
    from rorem_data.features.batching import featurize_paths
    from rorem_data.core import sharding

    t0 = time.perf_counter()
    f = get_featurizer(featurizer, **(config or {}))
    ids, items, docs = candidate_items(project, round=round)
    # shards by a hash of the candidate key: candidates added between runs fall in one shard
    pos = sharding.select_keys([d["key"] for d in docs], shard, sharding.accelerate_share())
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
    """Cached features of ``ids`` (rows in that order) for a featurizer key (or a featurizer
    name: its default config), as a float32 ndarray (n, d).

    Raises
    ------
    ConfigError
        No cached features of that key (the message lists the cached keys).
    ValidationError
        Some ids are not cached.
    """
    from rorem_data.features.base import featurizer_key as key_of, list_featurizers
    from rorem_data.features.cache import FeatureCache

    root = features_root(project)
    if not isinstance(featurizer_key, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", featurizer_key) \
            or featurizer_key.startswith("."):
        raise ConfigError(f"featurizer key must look like 'stats-0123456789' or be a featurizer "
                          f"name; got {featurizer_key!r}")
    folder = os.path.join(root, featurizer_key)
    if not os.path.isdir(folder) and featurizer_key in list_featurizers():
        featurizer_key = key_of(featurizer_key, {})  # a name: its default config
        folder = os.path.join(root, featurizer_key)
    if not os.path.isdir(folder):
        known = sorted(os.listdir(root)) if os.path.isdir(root) else []
        raise ConfigError(f"no cached features {featurizer_key!r}; compute them first with "
                          f"rorem_data.featurize (cached: {', '.join(known) or 'none'})")
    cfg = jsonfile.load(os.path.join(folder, "config.json"),
                        fix=f"delete the folder {folder} and run rorem_data.featurize again")
    config = cfg.get("config", cfg) if isinstance(cfg, dict) else cfg
    cache = FeatureCache(root, featurizer_key, config)
    return cache.read(list(ids))


def _inputs(project, spec, ids, items, *, progress=None):
    """What the spec's head takes: features (cached by sample id when ``ids`` are given,
    computing missing ones) or file triples."""
    if spec.featurizer is None:
        return items
    from rorem_data.features.batching import featurize_paths

    f = spec.make_featurizer()
    if ids is None:
        return featurize_paths(f, items, progress=progress)
    return featurize_paths(f, items, ids=ids, cache=_cache(project, f), progress=progress)


def _generator_of(doc) -> str | None:
    """The remover a candidate came from, as automation reads it (``remover_key``, else the
    remover's name)."""
    g = doc.get("generator") or {}
    return g.get("remover_key") or g.get("remover")


def _human_labels(docs, max_round: int | None):
    """The standing human label (1/0/None) of each candidate as of ``max_round``."""
    return [queries.latest_human_label(d.get("decisions"), max_round) for d in docs]


def _version_name(spec_name: str, round: int, ids: list[str]) -> str:
    h = hashlib.sha1(("\n".join(sorted(ids)) + spec_name).encode()).hexdigest()[:6]
    return f"{re.sub(r'[^A-Za-z0-9]+', '_', spec_name).strip('_')}_r{int(round)}_{h}"


@dataclass(repr=False)
class TrainResult(Displayable):
    version: str
    n_train: int
    n_holdout: int
    agreement: dict
    seconds: float
    examples: str = "human labels"

    def summary(self) -> str:
        a = self.agreement
        auc = a.get("auc") or {}
        auc_s = f"AUC {auc['value']:.3f} [{auc['lo']:.3f}, {auc['hi']:.3f}]" if auc else "AUC n/a"
        hr, dr = a.get("human_rate") or {}, a.get("discriminator_rate") or {}
        return (f"trained {self.version} on {self.n_train} {self.examples}; held-out {self.n_holdout}: {auc_s}, "
                f"success rate human {100 * hr.get('value', 0):.1f}% vs discriminator "
                f"{100 * dr.get('value', 0):.1f}% in {self.seconds:.1f} s")


def train(project, round: int, spec="stats-logistic", *, holdout: float = 0.3,
          calibration: str = "platt", rng: int = 0, seed_pairs: int = 0, trust_code: bool = False,
          progress: bool | None = None) -> TrainResult:
    """Train a discriminator version on every human label of rounds <= ``round``.

    The labels are split (stratified, ``rng``) into a training part and a held-out part; the
    held-out part fits the calibration, measures agreement with humans, and later sets the
    auto-label thresholds. Its calibrated scores are kept in the version's ``meta.json``; the
    full spec is saved in the version's ``model/spec.json``, and the removers whose candidates
    it was trained on in ``meta.json["generators"]``.

    Parameters
    ----------
    spec : str or DiscriminatorSpec
        A spec name (``rorem-data discriminator list``), a spec file, or a spec.
    holdout : float
        Share of the labels held out for calibration and thresholds, in (0, 1).
    calibration : str
        A calibrator name (:func:`rorem_data.stats.calibration.list_calibrators`).
    rng : int
        Seed of the split (and of the seed pairs drawn).
    seed_pairs : int
        Examples made from the project's seed pairs (:mod:`rorem_data.rounds.seed_pairs`: the
        seed's target a success, the object pasted back, a blurred fill, a foreign patch or
        object a failure) added to the training part, minus one per human training label, so
        that human labels take over as they arrive. Never in the held-out part. Feature heads
        only.
    trust_code : bool
        Allow a spec whose head is an unregistered ``"package.module:Class"``.

    Raises
    ------
    ConfigError
        Too few labels, a single class, an unknown spec or calibrator, a feature head whose
        spec names no featurizer.
    """
    from rorem_data.core.checks import fraction
    from rorem_data.discriminators.persistence import save_discriminator
    from rorem_data.discriminators.specs import get_spec
    from rorem_data.rounds.versions import version_dir, write_version_meta
    from rorem_data.stats.agreement import agreement_report
    from rorem_data.stats.calibration import get_calibrator

    t0 = time.perf_counter()
    holdout = fraction(holdout, "holdout", open_low=True, open_high=True)
    spec = get_spec(spec).resolved()
    disc = spec.build(trust_code=trust_code)
    cal = get_calibrator(calibration)
    if spec.featurizer is None and getattr(disc, "input_kind", "features") == "features":
        raise ConfigError(f"discriminator spec {spec.name!r} ({spec.source}): its head takes "
                          "features but the spec names no featurizer; add a [featurizer] table")
    ids, items, docs = candidate_items(project, rounds_upto=int(round))
    labels = _human_labels(docs, int(round))
    keep = [i for i, y in enumerate(labels) if y is not None]
    y = np.array([labels[i] for i in keep], dtype=np.int64)
    n_acc = int(y.sum()) if len(y) else 0
    if len(keep) < 20 or min(n_acc, len(y) - n_acc) < 2:
        from rorem_data.core.errors import NotEnoughLabels

        raise NotEnoughLabels(
            f"training needs at least 20 human labels in rounds <= {round}, with at least 2 "
            f"successes and 2 failures; found {len(keep)} ({n_acc} accepted). Review more "
            "candidates first (rorem_data.select + rorem_data.review)")
    ids = [ids[i] for i in keep]
    items = [items[i] for i in keep]
    docs = [docs[i] for i in keep]
    tr, ho, split = _split([d.get("key") or sid for sid, d in zip(ids, docs)], y, holdout, rng)
    X = _inputs(project, spec, ids, items, progress=progress)
    sel = (lambda idx: X[idx]) if isinstance(X, np.ndarray) else (lambda idx: [X[i] for i in idx])
    n_aug = 0
    if seed_pairs and spec.featurizer is not None and isinstance(X, np.ndarray):
        from rorem_data.rounds.seed_pairs import seed_pair_examples

        Xa, ya = seed_pair_examples(project, spec.make_featurizer(), max(0, int(seed_pairs) - len(tr)),
                                    rng=rng)
        n_aug = len(ya)
    if n_aug:
        disc.fit(np.concatenate([X[tr], Xa.astype(X.dtype)]), np.concatenate([y[tr], ya]))
    else:
        disc.fit(sel(tr), y[tr])
    raw = disc.predict_proba(sel(ho))[:, 1]
    cal.fit(raw, y[ho])
    hold_scores = cal.predict(raw)
    report = agreement_report(hold_scores, y[ho], threshold=0.5, rng=rng)
    version = _version_name(spec.name, round, ids + ([f"+{n_aug} seed pairs"] if n_aug else []))
    folder = version_dir(project, version)
    save_discriminator(disc, os.path.join(folder, "model"), spec=spec)
    generators = sorted({_generator_of(d) for d in docs} - {None})
    meta = {
        "trained_at": schema.utcnow().isoformat(), "round": int(round), "spec": spec.name,
        "spec_source": spec.source, "featurizer_key": spec.featurizer_key,
        "calibration": cal.to_dict(), "generators": generators,
        "train_ids": [ids[i] for i in tr], "seed_pairs": n_aug, "split": split, "holdout_share": holdout, "holdout": {
            "ids": [ids[i] for i in ho], "scores": hold_scores.tolist(), "labels": y[ho].tolist()},
        "agreement": report.as_dict(),
    }
    if getattr(disc, "chosen_", None) is not None:  # a cross-validated head: which one won
        meta["head_choice"] = {"chosen": disc.chosen_, "cv_auc": dict(disc.cv_auc_)}
    write_version_meta(project, version, meta)
    store.update_round_record(project.dataset_name, round, set={f"discriminators.{version}": {
        "spec": spec.name, "n_train": len(tr), "n_holdout": len(ho), "agreement": report.as_dict(),
        "at": schema.utcnow()}})
    return TrainResult(version=version, n_train=len(tr), n_holdout=len(ho), agreement=report.as_dict(),
                       seconds=time.perf_counter() - t0)


def train_from_seeds(project, spec="stats-logistic", *, n: int = 300, holdout: float = 0.3,
                     calibration: str = "platt", rng: int = 0) -> TrainResult | None:
    """A version trained on seed-pair examples only (round 0), before any human label.

    Each seed gives a success (its target) and a failure (the object pasted back, a blurred
    fill, a foreign patch or object: :mod:`rorem_data.rounds.seed_pairs`); a share ``holdout``
    of them, by seed-pair coin, fits the calibration and the agreement report. No candidate and
    no human label is used, so the version is independent of round 1's sample: drawn with it,
    round 1's labels can certify its thresholds (``auto_label``'s active method) - all of them,
    not only a held-out part. Returns None when the project has too few usable seeds (fewer
    than 10 examples of each class) or the spec's head takes images, not features (seed pairs
    are made as features).
    """
    from rorem_data.core.checks import fraction
    from rorem_data.discriminators.persistence import save_discriminator
    from rorem_data.discriminators.specs import get_spec
    from rorem_data.rounds.seed_pairs import seed_pair_examples
    from rorem_data.rounds.versions import version_dir, write_version_meta
    from rorem_data.stats.agreement import agreement_report
    from rorem_data.stats.calibration import get_calibrator

    t0 = time.perf_counter()
    holdout = fraction(holdout, "holdout", open_low=True, open_high=True)
    spec = get_spec(spec).resolved()
    if spec.featurizer is None:  # an image head (e.g. rorem-unet): seed pairs are for feature heads
        return None
    X, y = seed_pair_examples(project, spec.make_featurizer(), int(n), rng=rng)
    if min(int((y == 1).sum()), int((y == 0).sum())) < 10:
        return None
    tr, ho, _how = _split([f"seed-pair:{i}" for i in range(len(y))], y, holdout, rng)
    disc = spec.build()
    disc.fit(X[tr], y[tr])
    cal = get_calibrator(calibration)
    raw = disc.predict_proba(X[ho])[:, 1]
    cal.fit(raw, y[ho])
    report = agreement_report(cal.predict(raw), y[ho], threshold=0.5, rng=rng)
    version = _version_name(spec.name, 0, [f"+{len(y)} seed pairs only", str(int(rng))])
    save_discriminator(disc, os.path.join(version_dir(project, version), "model"), spec=spec)
    meta = {
        "trained_at": schema.utcnow().isoformat(), "round": 0, "spec": spec.name,
        "spec_source": spec.source, "featurizer_key": spec.featurizer_key,
        "calibration": cal.to_dict(), "generators": [], "train_ids": [], "seed_pairs": int(len(y)),
        "seed_pairs_only": True, "split": "seed-pairs", "holdout_share": holdout,
        "holdout": {"ids": [], "scores": [], "labels": []},
        "agreement": report.as_dict(),
    }
    write_version_meta(project, version, meta)
    return TrainResult(version=version, n_train=len(tr), n_holdout=len(ho),
                       agreement=report.as_dict(), seconds=time.perf_counter() - t0,
                       examples="seed-pair examples (no human label)")


def _split(ids, y, holdout: float, rng: int):
    """(train, held-out, how): each label held out by its own coin (a hash of its candidate key -
    location-independent, so the same data splits the same in any project - and ``rng``) with probability ``holdout``, so that the held-out part of a round's active sample
    stays a Poisson sample given the training part and can certify the version on that round
    (:mod:`rorem_data.rounds.automation`). When the coins leave a part with fewer than two of a
    class (few labels), a split stratified by label is used instead (``"stratified"``: the
    version then certifies nothing on its own round)."""
    from rorem_data.stats.certify import hash_uniforms

    held = hash_uniforms(ids, f"holdout:{int(rng)}") < holdout
    ok = all(min(int(((y == k) & part).sum()) for k in (0, 1)) >= 2 for part in (held, ~held))
    if ok:
        return np.flatnonzero(~held), np.flatnonzero(held), "coin"
    from sklearn.model_selection import train_test_split

    tr, ho = train_test_split(np.arange(len(ids)), test_size=holdout, stratify=y, random_state=rng)
    return tr, ho, "stratified"


#: Folds of :func:`crossfit_scores`.
CROSSFIT_FOLDS = 5


def crossfit_scores(project, round: int, version: str, population_ids, population_keys, *,
                    folds: int = CROSSFIT_FOLDS, rng: int = 0) -> tuple[np.ndarray | None, str]:
    """Cross-fitted scores of a round's population: each candidate scored by a model of
    ``version``'s spec trained on the version's labels outside the candidate's fold.

    ``version`` is the round's own version (trained on round ``round``'s labels). The population
    (the round's active-sample population, not judged before the draw) is cut into ``folds``
    parts by hashed coins of the candidate keys (independent of the draw and the labels); the
    model for fold ``k`` is fitted on every label the version was trained or calibrated on
    except those of fold ``k``'s candidates - earlier rounds' labels and the version's seed-pair
    examples are in every fold's training set (:mod:`rorem_data.stats.crossfit`). Raw head
    probabilities, not calibrated: the certification only compares them with thresholds.

    Returns
    -------
    (scores, how)
        ``scores``: float array aligned with ``population_ids``, or None with the reason when
        cross-fitting does not apply (an image head, or a fold whose training set lacks two
        labels of a class); ``how`` says what was fitted.
    """
    from rorem_data.discriminators.persistence import saved_spec
    from rorem_data.rounds.estimates import _label_ids
    from rorem_data.rounds.versions import load_version_meta, version_dir
    from rorem_data.stats.crossfit import crossfit_predict, fold_of

    meta = load_version_meta(project, version)
    folder = os.path.join(version_dir(project, version), "model")
    try:
        spec = saved_spec(folder) if os.path.isdir(folder) else None
    except ConfigError as exc:  # a damaged spec.json: the caller falls back or says why
        return None, str(exc)
    if spec is None:
        return None, f"{version} has no saved model and spec ({folder}) to refit"
    if spec.featurizer is None:
        return None, f"{version}'s head takes images, not features (cross-fitting refits it {folds} times)"
    ids, items, docs = candidate_items(project, rounds_upto=int(round))
    labels = _human_labels(docs, int(round))
    row = {sid: i for i, sid in enumerate(ids)}
    labelled = _label_ids(meta) or set()
    y = np.array([int(labels[i]) if ids[i] in labelled and labels[i] is not None else -1
                  for i in range(len(ids))], dtype=np.int64)
    pop = np.array([row[s] for s in population_ids], dtype=np.int64)
    fold = np.full(len(ids), -1, dtype=np.int64)  # -1: in every fold's training set
    fold[pop] = fold_of(population_keys, folds, f"{int(round)}:{int(rng)}")
    need = np.flatnonzero(y >= 0)
    need = np.union1d(need, pop)
    X = _inputs(project, spec, [ids[i] for i in need], [items[i] for i in need])
    extra = None
    if int(meta.get("seed_pairs") or 0):
        from rorem_data.rounds.seed_pairs import seed_pair_examples

        extra = seed_pair_examples(project, spec.make_featurizer(), int(meta["seed_pairs"]), rng=rng)
    score_rows = np.isin(need, pop)
    try:
        p = crossfit_predict(spec.build, X, y[need], fold[need], folds=folds, score_rows=score_rows,
                             extra=extra)
    except (ValueError, ConfigError) as exc:  # a fold short of a class; a head needing trust_code
        return None, str(exc)
    out = p[np.searchsorted(need, pop)]  # need is sorted and holds every population row
    return out, (f"{folds}-fold cross-fitted {spec.name}: each candidate scored by a model trained "
                 f"without its fold's labels ({int((y >= 0).sum())} labels)")


def _load_version(project, version, *, trust_code: bool = False):
    """(meta, fitted discriminator, its saved spec or None, calibrator) of a version, all from
    the version's own folder."""
    from rorem_data.discriminators.persistence import load_discriminator, saved_spec
    from rorem_data.rounds.versions import load_version_meta, version_dir
    from rorem_data.stats.calibration import calibrator_from_dict

    meta = load_version_meta(project, version)
    folder = os.path.join(version_dir(project, version), "model")
    if "calibration" not in meta or not os.path.isdir(folder):
        raise ConfigError(f"discriminator version {version!r} has no trained model (no "
                          f"calibration in its meta.json or no {folder}); retrain it with "
                          "rorem_data.train_discriminator")
    spec = saved_spec(folder)
    disc = load_discriminator(folder, trust_code=trust_code)
    if spec is None and getattr(disc, "input_kind", "features") == "features":
        raise ConfigError(f"discriminator version {version!r} records no spec (no "
                          f"{os.path.join(folder, 'spec.json')}), so its featurizer is unknown; "
                          "retrain it with rorem_data.train_discriminator")
    return meta, disc, spec, calibrator_from_dict(meta["calibration"])


def predict(project, version: str, ids, items, *, trust_code: bool = False,
            progress: bool | None = None) -> np.ndarray:
    """Calibrated P(success) of (source, result, mask) file triples under a trained version.

    The version is rebuilt from its own folder (saved model + ``spec.json``); ``ids`` (sample
    ids) enable the feature cache, None computes features without caching.

    Returns
    -------
    ndarray, float64, shape (n,)
        In [0, 1], higher = better removal.
    """
    meta, disc, spec, cal = _load_version(project, version, trust_code=trust_code)
    X = items if spec is None else _inputs(project, spec, ids, items, progress=progress)
    return cal.predict(disc.predict_proba(X)[:, 1])


@dataclass(repr=False)
class ScoreResult(Displayable):
    version: str
    round: int
    scored: int
    seconds: float

    def summary(self) -> str:
        return f"scored {self.scored} candidates of round {self.round} with {self.version} in {self.seconds:.1f} s"


def score(project, round: int, version: str | None = None, *, trust_code: bool = False,
          progress: bool | None = None) -> ScoreResult:
    """Store calibrated scores of a version on every candidate of ``round`` (one bulk write).

    ``version`` defaults to the latest trained one; ``trust_code`` allows a saved head class
    that is not registered (see :mod:`rorem_data.discriminators.persistence`).
    """
    from rorem_data.rounds.versions import latest_version

    t0 = time.perf_counter()
    version = latest_version(project) if version is None else version
    if version is None:
        raise ConfigError("no trained discriminator; train one first (rorem_data.train_discriminator)")
    ids, items, _docs = candidate_items(project, round=int(round))
    if not ids:
        raise ConfigError(f"round {round} has no candidates to score")
    p = predict(project, version, ids, items, trust_code=trust_code, progress=progress)
    store.set_field_values(project.dataset, f"scores.{version}", ids, [float(v) for v in p])
    return ScoreResult(version=version, round=int(round), scored=len(ids), seconds=time.perf_counter() - t0)


def evaluate(project, version: str | None = None, *, round: int | None = None, threshold: float = 0.5,
             exclude_training: bool = True, confidence: float = 0.95, trust_code: bool = False,
             progress: bool | None = None) -> dict:
    """Agreement of a version with human labels on candidates (of ``round``, or all).

    Labels the version was trained on are left out by default. Returns the agreement report as
    a dict (AUC, accuracy, precision/recall at ``threshold``, human vs discriminator success
    rate and their difference, each with an interval).
    """
    from rorem_data.stats.agreement import agreement_report
    from rorem_data.rounds.versions import latest_version, load_version_meta

    version = latest_version(project) if version is None else version
    if version is None:
        raise ConfigError("no trained discriminator; train one first (rorem_data.train_discriminator)")
    meta = load_version_meta(project, version)
    ids, items, docs = candidate_items(project, round=round)
    labels = _human_labels(docs, None)
    skip = set(meta.get("train_ids") or []) if exclude_training else set()
    keep = [i for i, (sid, y) in enumerate(zip(ids, labels)) if y is not None and sid not in skip]
    if len(keep) < 2:
        raise ConfigError("fewer than 2 human-labelled candidates to evaluate on (training labels "
                          "excluded); review more, or pass exclude_training=False (--include-training)")
    sub_ids = [ids[i] for i in keep]
    p = predict(project, version, sub_ids, [items[i] for i in keep], trust_code=trust_code,
                progress=progress)
    y = np.array([labels[i] for i in keep])
    rep = agreement_report(p, y, threshold=threshold, confidence=confidence)
    return {"version": version, "n": len(keep), **rep.as_dict()}
