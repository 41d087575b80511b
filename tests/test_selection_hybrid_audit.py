"""The ``hybrid-audit`` strategy: a hybrid queue plus an audit-style sample of the accept region.

The shared contract suite (tests/test_strategies.py) covers it with every other strategy; these
tests pin what makes it different: the share drawn uniformly from the candidates the
discriminator would auto-accept, the hybrid rest, standardized distances, and its errors.
"""

from __future__ import annotations

import numpy as np
import pytest

from rorem_data.core.errors import ConfigError
from rorem_data.selection.builtin_strategies import accept_region, column_scaling
from rorem_data.selection.scores import uncertainty_score
from rorem_data.selection.strategies import get_strategy, select
from rorem_data.selection.topk import top_k

N = 600


def _data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6)).astype(np.float32)
    X[:, 0] *= 50.0  # one column on a much larger scale
    p = rng.uniform(0.0, 1.0, n)
    reviewed = np.zeros(n, dtype=bool)
    reviewed[rng.choice(n, 40, replace=False)] = True
    return X, p, reviewed


def test_audit_part_is_drawn_from_the_accept_region_and_the_rest_is_uncertain():
    X, p, reviewed = _data()
    out = select("hybrid-audit", 20, proba=p, features=X, reviewed=reviewed, rng=3,
                 audit_share=0.5, region_share=0.4, beta=5)
    region = set(accept_region(p, ~reviewed, region_share=0.4).tolist())
    in_region = [i for i in out if i in region]
    assert len(out) == 20 and len(set(out.tolist())) == 20 and not reviewed[out].any()
    assert len(in_region) >= 10  # the audit half, plus any uncertain pick that lies there
    # the other half comes from the 5 x 10 most uncertain of what the audit left
    audit = out[1::2]  # interleaved: hybrid pick, audit pick, ...
    assert all(i in region for i in audit)
    left = reviewed.copy()
    left[audit] = True
    pool = set(top_k(uncertainty_score(p), 50, rng=3, exclude=left).tolist())
    assert set(out[0::2].tolist()) <= pool


def test_accept_threshold_defines_the_region():
    X, p, reviewed = _data(1)
    out = select("hybrid-audit", 30, proba=p, features=X, reviewed=reviewed, rng=0,
                 audit_share=1.0, accept_threshold=0.9)
    assert (p[out] >= 0.9).all()
    # a region smaller than the audit share: all of it, the rest from the hybrid part
    few = np.where(p > 0.995, p, np.minimum(p, 0.8))
    n_region = int(((few >= 0.99) & ~reviewed).sum())
    out = select("hybrid-audit", 30, proba=few, features=X, reviewed=reviewed, rng=0,
                 audit_share=1.0, accept_threshold=0.99)
    assert int((few[out] >= 0.99).sum()) == n_region and len(out) == 30


def test_audit_sample_is_uniform_over_the_region_not_its_top():
    X, p, reviewed = _data(2, n=4000)
    region = accept_region(p, ~reviewed)  # the default: the top 60%
    rank = np.empty(len(p))
    rank[region] = np.argsort(np.argsort(p[region])) / (len(region) - 1)
    ranks = np.concatenate([
        rank[select("hybrid-audit", 50, proba=p, features=X, reviewed=reviewed, rng=s,
                    audit_share=1.0)] for s in range(20)])
    assert 0.45 < ranks.mean() < 0.55  # uniform ranks average 0.5; the top would be ~1
    assert ranks.min() < 0.05 and ranks.max() > 0.95


def test_no_audit_share_is_plain_hybrid_on_standardized_features():
    X, p, reviewed = _data(3)
    a = select("hybrid-audit", 25, proba=p, features=X, reviewed=reviewed, rng=7, audit_share=0.0)
    b = select("hybrid", 25, proba=p, features=X, reviewed=reviewed, rng=7, beta=5.0,
               standardize=True)
    assert np.array_equal(a, b)


def test_standardize_measures_distances_on_z_scored_columns():
    X, p, reviewed = _data(4)
    mean, scale = column_scaling(X)
    Z = (X - mean) / scale
    a = select("hybrid", 25, proba=p, features=X, reviewed=reviewed, rng=1, standardize=True)
    b = select("hybrid", 25, proba=p, features=Z, reviewed=reviewed, rng=1)
    c = select("hybrid", 25, proba=p, features=X, reviewed=reviewed, rng=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)  # the large column no longer decides alone


def test_column_scaling_matches_numpy_across_chunks_and_keeps_constant_columns():
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((9000, 3)) * [1.0, 100.0, 0.0] + [5.0, -3.0, 7.0]).astype(np.float32)
    mean, scale = column_scaling(X)
    np.testing.assert_allclose(mean, X.astype(np.float64).mean(axis=0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(scale[:2], X[:, :2].astype(np.float64).std(axis=0), rtol=1e-4)
    assert scale[2] == 1.0  # a constant column is left as it is


def test_order_interleaves_hybrid_and_audit_picks():
    X, p, reviewed = _data(5)
    out = select("hybrid-audit", 10, proba=p, features=X, reviewed=reviewed, rng=0,
                 audit_share=0.5, accept_threshold=0.95)
    assert get_strategy("hybrid-audit").params[:3] == ("audit_share", "accept_threshold",
                                                       "region_share")
    audit_like = p[out] >= 0.95
    assert audit_like[1::2].all()
    assert "interleaved" in get_strategy("hybrid-audit").order


@pytest.mark.parametrize("param, value", [
    ("audit_share", 1.5), ("audit_share", -0.1), ("audit_share", "half"),
    ("region_share", 2.0), ("accept_threshold", 1.2), ("accept_threshold", "high"),
    ("beta", 0.5), ("standardize", "yes"), ("method", "approx"),
])
def test_bad_parameters_are_named(param, value):
    X, p, reviewed = _data()
    with pytest.raises(ConfigError, match=param):
        select("hybrid-audit", 5, proba=p, features=X, reviewed=reviewed, **{param: value})


def test_needs_both_inputs():
    X, p, _ = _data()
    with pytest.raises(ConfigError, match="needs features="):
        select("hybrid-audit", 5, proba=p)
    with pytest.raises(ConfigError, match="needs proba="):
        select("hybrid-audit", 5, features=X)
