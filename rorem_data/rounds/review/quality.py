"""How good are the reviewers? Accuracy on gold items, agreement, speed; flag the careless.

Per reviewer (of one round or all):

* **gold accuracy**: share of gold items (:mod:`rorem_data.rounds.review.gold`) judged as their known
  answer, with a Clopper-Pearson interval; a reviewer is **flagged** when the whole interval lies
  below ``min_accuracy`` (the evidence says they are careless, not just unlucky), and
  **watched** when only the point estimate does;
* **agreement** with the other reviewers on the items both judged (percent, with an interval);
* **time per decision** (median and 90th percentile seconds from the moment the App showed the
  candidate to the judgment) and **judgments per hour** of active reviewing (gaps over ten
  minutes count as breaks).

Excluding a flagged reviewer (:func:`exclude_reviewers`) makes their judgments count for
nothing - in training, estimates, exports and the App - through the decision ledger.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from rorem_data.core import schema
from rorem_data.dataset import ledger, queries

BREAK_SECONDS = 600.0


def _latest(reviews):
    """Each reviewer's standing (latest, not withdrawn) non-adjudication judgment."""
    out = {}
    for r in reviews or ():
        if not r or r.get("adjudication"):
            continue
        out[r["reviewer"]] = r
    return {k: v for k, v in out.items() if v.get("status") != ledger.WITHDRAWN}


def reviewer_quality(project, *, round: int | None = None, min_accuracy: float = 0.8,
                     confidence: float = 0.95) -> dict:
    """``{reviewer: {...}}`` as described in the module docstring, plus ``"_excluded"``.

    Each entry: ``judgments``, ``gold`` (``n``, ``correct``, ``accuracy`` Estimate dict or None),
    ``flag`` (``"flagged"``, ``"watched"``, ``"ok"`` or ``"no gold yet"``), ``agreement``
    (Estimate dict or None, over items shared with other reviewers), ``seconds_per_decision``
    (``median``, ``p90``, ``n``), ``judgments_per_hour``, ``excluded``.
    """
    return dataset_reviewer_quality(project.dataset, round=round, min_accuracy=min_accuracy,
                                    confidence=confidence)


def dataset_reviewer_quality(ds, *, round: int | None = None, min_accuracy: float = 0.8,
                             confidence: float = 0.95) -> dict:
    """:func:`reviewer_quality` for a FiftyOne dataset (what the App's Review panel has)."""
    from rorem_data.stats.intervals import proportion

    excluded = ledger.excluded_reviewers(ds)
    gold = defaultdict(lambda: [0, 0])
    agree = defaultdict(lambda: [0, 0])
    times = defaultdict(list)
    stamps = defaultdict(list)
    counts = defaultdict(int)
    for d in queries.reviewed(ds, round=round):
        latest = _latest(d.get("reviews"))
        for r in d.get("reviews") or ():
            if not r or r.get("status") == ledger.WITHDRAWN:
                continue
            who = r["reviewer"]
            counts[who] += 1
            if r.get("at") is not None:
                stamps[who].append(r["at"])
                if r.get("shown_at") is not None:
                    dt = (r["at"] - r["shown_at"]).total_seconds()
                    if 0 <= dt <= BREAK_SECONDS:
                        times[who].append(dt)
        if d.get("kind") == schema.KIND_GOLD and d.get("gold_truth"):
            for who, r in latest.items():
                gold[who][0] += 1
                gold[who][1] += int(r["status"] == d["gold_truth"])
        elif len(latest) >= 2:
            for who, r in latest.items():
                others = [o["status"] for w, o in latest.items() if w != who]
                agree[who][0] += len(others)
                agree[who][1] += sum(s == r["status"] for s in others)
    out = {}
    for who in sorted(counts):
        n_g, ok_g = gold[who]
        acc = proportion(ok_g, n_g, confidence=confidence).as_dict() if n_g else None
        if acc is None:
            flag = "no gold yet"
        elif acc["hi"] < min_accuracy:
            flag = "flagged"
        elif acc["value"] < min_accuracy:
            flag = "watched"
        else:
            flag = "ok"
        n_a, ok_a = agree[who]
        t = np.array(times[who], dtype=np.float64)
        ts = sorted(stamps[who])
        active = sum(min((b - a).total_seconds(), BREAK_SECONDS) for a, b in zip(ts, ts[1:]))
        out[who] = {
            "judgments": counts[who],
            "gold": {"n": n_g, "correct": ok_g, "accuracy": acc},
            "flag": flag,
            "agreement": proportion(ok_a, n_a, confidence=confidence).as_dict() if n_a else None,
            "seconds_per_decision": {"n": int(t.size),
                                     "median": float(np.median(t)) if t.size else None,
                                     "p90": float(np.percentile(t, 90)) if t.size else None},
            "judgments_per_hour": (3600.0 * (len(ts) - 1) / active) if active > 0 else None,
            "excluded": who in excluded,
        }
    out["_excluded"] = sorted(excluded)
    out["_min_accuracy"] = float(min_accuracy)
    return out


def exclude_reviewers(project, names, *, include: bool = False) -> dict:
    """Keep these reviewers' judgments out of training, estimates and export (``include=True``
    lets them count again). See :func:`rorem_data.dataset.ledger.set_excluded_reviewers`."""
    return ledger.set_excluded_reviewers(project.dataset, names, excluded=not include)
