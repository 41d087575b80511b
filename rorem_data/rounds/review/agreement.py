"""Agreement between reviewers on a round's double-reviewed items."""

from __future__ import annotations

from rorem_data.dataset import ledger, queries

def reviewer_agreement(project, round: int, *, confidence: float = 0.95) -> dict:
    """Agreement between reviewers on the double-reviewed items of ``round``.

    Returns percent agreement (with a Clopper-Pearson interval), Cohen's kappa over reviewer
    pairs, the number of items compared, and how many await adjudication.
    """
    pairs = []
    waiting = 0
    for d in queries.queue_members(project.dataset, round, ["reviews", "needs_adjudication"],
                                   min_quota=2):
        latest: dict[str, str] = {}
        for r in d.get("reviews") or []:
            if r and r.get("round") == round and not r.get("adjudication"):
                latest[r["reviewer"]] = r["status"]
        latest = {k: v for k, v in latest.items() if v != ledger.WITHDRAWN}
        if len(latest) >= 2:
            a, b = [latest[k] for k in sorted(latest)[:2]]
            pairs.append((a, b))
        waiting += bool(d.get("needs_adjudication"))
    n = len(pairs)
    agree = sum(a == b for a, b in pairs)
    out = {"items": n, "agree": agree, "needs_adjudication": waiting}
    if n:
        from scipy.stats import binomtest
        from sklearn.metrics import cohen_kappa_score

        ci = binomtest(agree, n).proportion_ci(confidence_level=confidence, method="exact")
        out["percent_agreement"] = agree / n
        out["percent_agreement_ci"] = [float(ci.low), float(ci.high)]
        a = [x for x, _ in pairs]
        b = [y for _, y in pairs]
        out["cohen_kappa"] = float(cohen_kappa_score(a, b)) if len(set(a) | set(b)) > 1 else 1.0
    return out
