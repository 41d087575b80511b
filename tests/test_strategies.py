"""Query strategies: one contract suite over every registered strategy, plus properties.

Pure numpy; no database. The contract tests are parametrised over ``list_strategies()`` at
collection time, so a newly registered strategy is covered without touching this file.
"""

from __future__ import annotations

import itertools
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rorem_data.core.errors import ConfigError
from rorem_data.selection.kcenter import covering_radius, kcenter_greedy, min_distances
from rorem_data.selection.scores import (
    disagreement_score,
    entropy_score,
    margin_score,
    uncertainty_score,
)
from rorem_data.selection.strata import allocate, quantile_bins, stratum_codes
from rorem_data.selection.strategies import (
    STRATEGIES,
    get_strategy,
    list_strategies,
    register_strategy,
    select,
)
from rorem_data.selection.topk import top_k

N = 48
REVIEWED = np.zeros(N, dtype=bool)
REVIEWED[[0, 5, 6, 17, 30, 47]] = True
N_FREE = int(N - REVIEWED.sum())


def _inputs(n=N, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "proba": rng.uniform(0, 1, n),
        "committee": rng.uniform(0, 1, (3, n)),
        "features": rng.standard_normal((n, 8)).astype(np.float32),
        "strata": rng.integers(0, 4, n),
        "scores": rng.standard_normal(n),
    }


INPUTS = _inputs()


def _call(name, budget, *, rng=0, reviewed=REVIEWED, drop=(), replace=None, **params):
    arrays = {k: v for k, v in INPUTS.items() if k not in drop}
    arrays.update(replace or {})
    return select(name, budget, rng=rng, reviewed=reviewed, **arrays, **params)


def _needs(name):
    return get_strategy(name).needs({})


NAMES = list_strategies()
NEED_PAIRS = [(name, need) for name in NAMES for need in _needs(name)]
INNER = [n for n in NAMES if n != "stratified"]


# =========================================================================== contract suite


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("k", [1, 7, N_FREE - 1])
def test_contract_k_distinct_in_range_unreviewed(name, k):
    out = _call(name, k)
    assert out.dtype == np.int64 and out.shape == (k,)
    assert len(np.unique(out)) == k
    assert out.min() >= 0 and out.max() < N
    assert not REVIEWED[out].any()


@pytest.mark.parametrize("name", NAMES)
def test_contract_budget_equal_to_unreviewed_returns_all(name):
    out = _call(name, N_FREE)
    assert sorted(out.tolist()) == np.flatnonzero(~REVIEWED).tolist()


@pytest.mark.parametrize("name", NAMES)
def test_contract_budget_over_unreviewed_is_a_clear_error(name):
    with pytest.raises(ConfigError, match=rf"budget {N_FREE + 1} > {N_FREE} unreviewed.*--budget"):
        _call(name, N_FREE + 1)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("budget", [0, -3, 2.0, True, "5", None])
def test_contract_bad_budget(name, budget):
    with pytest.raises(ConfigError, match="budget"):
        _call(name, budget)


@pytest.mark.parametrize("name", NAMES)
def test_contract_same_rng_same_selection(name):
    a = _call(name, 9, rng=123)
    assert np.array_equal(a, _call(name, 9, rng=123))
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    assert np.array_equal(_call(name, 9, rng=g1), _call(name, 9, rng=g2))


@pytest.mark.parametrize("name", NAMES)
def test_contract_inputs_are_not_modified(name):
    arrays = {k: v.copy() for k, v in INPUTS.items()}
    reviewed = REVIEWED.copy()
    _call(name, 9, rng=4)
    assert np.array_equal(reviewed, REVIEWED)
    for k, v in arrays.items():
        assert np.array_equal(v, INPUTS[k]), k


@pytest.mark.parametrize("name", NAMES)
def test_contract_summary_and_order_are_documented(name):
    strategy = get_strategy(name)
    assert strategy.name and strategy.summary and strategy.order
    assert strategy is get_strategy(name)  # loaded once, then the same object


SCORE_STRATEGIES = {
    "uncertainty": lambda: uncertainty_score(INPUTS["proba"]),
    "margin": lambda: margin_score(INPUTS["proba"]),
    "entropy": lambda: entropy_score(INPUTS["proba"]),
    "disagreement": lambda: disagreement_score(INPUTS["committee"]),
    "score": lambda: INPUTS["scores"],
}


@pytest.mark.parametrize("name", sorted(SCORE_STRATEGIES))
def test_score_strategies_pick_the_highest_need_first(name):
    """One direction everywhere: higher score = more in need of a human, picked first."""
    need = SCORE_STRATEGIES[name]()
    out = _call(name, 12, rng=2)
    assert get_strategy(name).order == "highest need first"
    assert np.all(np.diff(need[out]) <= 0)
    free = np.flatnonzero(~REVIEWED)
    assert need[out].min() >= np.sort(need[free])[::-1][11]


@pytest.mark.parametrize("name", NAMES)
def test_contract_reviewed_as_positions_equals_mask(name):
    a = _call(name, 10, reviewed=REVIEWED)
    b = _call(name, 10, reviewed=np.flatnonzero(REVIEWED))
    c = _call(name, 10, reviewed=np.flatnonzero(REVIEWED).tolist())
    assert np.array_equal(a, b) and np.array_equal(a, c)


@pytest.mark.parametrize("name", NAMES)
def test_contract_no_reviewed(name):
    out = _call(name, N, reviewed=None)
    assert sorted(out.tolist()) == list(range(N))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad, match", [
    (np.zeros(N - 1, dtype=bool), "reviewed: 47|shape"),
    (np.array([3, N]), "outside"),
    (np.array([-1]), "outside"),
    (np.array([0.0, 1.0]), "positions"),
])
def test_contract_bad_reviewed(name, bad, match):
    with pytest.raises(ConfigError, match=match):
        _call(name, 3, reviewed=bad)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("rng", [None, -1, 1.5, "seed"])
def test_contract_bad_rng(name, rng):
    with pytest.raises(ConfigError, match="rng"):
        _call(name, 3, rng=rng)


@pytest.mark.parametrize("name", NAMES)
def test_contract_unknown_param(name):
    with pytest.raises(ConfigError, match="does not take|inner"):
        _call(name, 3, no_such_param=1)


@pytest.mark.parametrize("name, need", NEED_PAIRS)
def test_contract_missing_input_named(name, need):
    with pytest.raises(ConfigError, match=rf"needs {need}="):
        _call(name, 3, drop=(need,))


@pytest.mark.parametrize("name, need", NEED_PAIRS)
def test_contract_length_mismatch(name, need):
    short = INPUTS[need][:, :-1] if need == "committee" else INPUTS[need][:-1]
    with pytest.raises(ConfigError, match="disagree|labels but there are"):
        _call(name, 3, replace={need: short})


@pytest.mark.parametrize("name, need", [p for p in NEED_PAIRS if p[1] != "strata"])
def test_contract_nan_input(name, need):
    bad = INPUTS[need].astype(np.float64).copy()
    if need == "committee":
        bad[1, 4] = np.nan
    else:
        bad[4] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        _call(name, 3, replace={need: bad})


def test_nan_strata_and_continuous_strata_rejected():
    strata = np.linspace(0, 1, N)
    with pytest.raises(ConfigError, match="quantile_bins"):
        select("stratified", 3, strata=strata)
    strata = np.zeros(N)
    strata[2] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        select("stratified", 3, strata=strata)


@pytest.mark.parametrize("inner", INNER)
@pytest.mark.parametrize("allocation", ["proportional", "equal"])
def test_contract_stratified_with_every_inner(inner, allocation):
    k = 13
    out = _call("stratified", k, inner=inner, allocation=allocation, rng=3)
    assert len(np.unique(out)) == k and not REVIEWED[out].any()
    sizes = np.bincount(INPUTS["strata"][~REVIEWED], minlength=4)
    expected = allocate(sizes, k, method=allocation, rng=3)
    assert np.bincount(INPUTS["strata"][out], minlength=4).tolist() == expected.tolist()
    assert np.array_equal(out, _call("stratified", k, inner=inner, allocation=allocation, rng=3))


# =========================================================================== registry


def test_registry_lists_the_built_ins():
    assert {"random", "uncertainty", "margin", "entropy", "disagreement", "kcenter", "hybrid",
            "hybrid-audit", "stratified", "score"} <= set(list_strategies())
    assert list_strategies() == STRATEGIES.names() == sorted(list_strategies())
    for name in NAMES:
        assert get_strategy(name).summary


def test_unknown_strategy_lists_choices():
    with pytest.raises(ConfigError, match=r"unknown strategy 'nope'.*kcenter.*uncertainty"):
        select("nope", 1, n=5)
    with pytest.raises(ConfigError, match="unknown strategy"):
        get_strategy(["not", "a", "name"])


def test_register_duplicate_and_bad_needs():
    with pytest.raises(ConfigError, match="already registered"):
        register_strategy("random")
    with pytest.raises(ConfigError, match="unknown inputs"):
        register_strategy("x_bad_needs", needs=("images",))


def test_registered_plugin_goes_through_select():
    @register_strategy("_test_lowest", needs=("proba",), summary="lowest first")
    def _lowest(budget, inputs, *, rng):
        return top_k(1.0 - inputs.proba, budget, rng=rng, exclude=inputs.reviewed)

    try:
        out = select("_test_lowest", 2, proba=[0.9, 0.1, 0.2, 0.05], reviewed=[3])
        assert out.tolist() == [1, 2]
        with pytest.raises(ConfigError, match="needs proba="):
            select("_test_lowest", 1, features=np.zeros((4, 2)))
    finally:
        STRATEGIES.unregister("_test_lowest")


def test_register_by_target_string_loads_lazily_and_checks_the_type():
    register_strategy("_test_margin_alias", "rorem_data.selection.builtin_strategies:margin")
    register_strategy("_test_not_a_strategy", "rorem_data.selection.topk:top_k")
    try:
        assert "_test_margin_alias" in list_strategies()
        p = INPUTS["proba"]
        assert np.array_equal(select("_test_margin_alias", 5, proba=p), select("margin", 5, proba=p))
        with pytest.raises(ConfigError, match="not a rorem_data.selection.strategies.Strategy"):
            select("_test_not_a_strategy", 1, n=3)
        with pytest.raises(ConfigError, match="already registered"):
            register_strategy("_test_margin_alias", "rorem_data.selection.builtin_strategies:entropy")
    finally:
        STRATEGIES.unregister("_test_margin_alias")
        STRATEGIES.unregister("_test_not_a_strategy")
    assert "_test_margin_alias" not in list_strategies()


def test_random_needs_a_size_and_differs_across_seeds():
    with pytest.raises(ConfigError, match="how many candidates"):
        select("random", 3)
    a = select("random", 10, n=1000, rng=0)
    b = select("random", 10, n=1000, rng=1)
    assert not np.array_equal(a, b)
    assert select("random", 3, reviewed=np.zeros(5, bool)).shape == (3,)


def test_inputs_disagreeing_on_n():
    with pytest.raises(ConfigError, match=r"disagree.*n: 40, proba: 48"):
        select("uncertainty", 3, proba=INPUTS["proba"], n=40)


def test_strategy_module_imports_only_numpy():
    code = (
        "import sys, rorem_data.selection.strategies as s; s.get_strategy('hybrid');"
        "import rorem_data.selection.kcenter, rorem_data.selection.builtin_strategies;"
        "heavy=[m for m in ('torch','fiftyone','scipy','sklearn','open_clip','diffusers')"
        " if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# =========================================================================== scores


def test_uncertainty_follows_the_threshold():
    p = np.array([0.1, 0.5, 0.78, 0.85, 0.99])
    assert select("uncertainty", 2, proba=p, threshold=0.8).tolist() == [2, 3]
    assert select("uncertainty", 1, proba=p).tolist() == [1]
    s = uncertainty_score(p, 0.8)
    assert s.max() <= 1.0 and s.min() >= 0.0 and s[2] > s[3] > s[1]
    with pytest.raises(ConfigError, match="threshold"):
        uncertainty_score(p, 1.5)


def test_binary_and_two_column_probabilities_agree():
    p = INPUTS["proba"]
    two = np.stack([1 - p, p], axis=1)
    for name in ("uncertainty", "margin", "entropy"):
        assert np.array_equal(select(name, 10, proba=p), select(name, 10, proba=two))
    np.testing.assert_allclose(margin_score(p), margin_score(two))
    np.testing.assert_allclose(entropy_score(p), entropy_score(two))


def test_multiclass_margin_and_entropy():
    p = np.array([[0.4, 0.35, 0.25], [0.9, 0.05, 0.05], [1 / 3, 1 / 3, 1 / 3]])
    np.testing.assert_allclose(margin_score(p), [0.95, 0.15, 1.0])
    e = entropy_score(p)
    assert e[2] == pytest.approx(1.0) and e[1] < e[0] < e[2]
    with pytest.raises(ConfigError, match="binary"):
        uncertainty_score(p)


@pytest.mark.parametrize("bad, match", [
    (np.array([0.2, 1.3]), "logits"),
    (np.array([[0.2, 0.7], [0.5, 0.5]]), "sum to 1"),
    (np.array([[0.2], [0.5]]), "shape"),
    (np.array(["a", "b"]), "dtype"),
])
def test_bad_probabilities(bad, match):
    with pytest.raises(ConfigError, match=match):
        margin_score(bad)


def test_disagreement_measures():
    c = np.array([[0.1, 0.9, 0.5, 0.7], [0.1, 0.1, 0.5, 0.3], [0.1, 0.5, 0.5, 0.8]])
    for measure in ("kl_to_mean", "vote_entropy", "std"):
        s = disagreement_score(c, measure)
        assert s.shape == (4,) and s.min() >= 0 and s.max() <= 1
        assert s[0] == pytest.approx(0.0, abs=1e-12) and s[1] > 0
    assert disagreement_score(c, "kl_to_mean")[2] == pytest.approx(0.0)  # all agree at 0.5
    assert disagreement_score(c, "std")[1] == pytest.approx(2 * np.std([0.9, 0.1, 0.5]))
    assert select("disagreement", 1, committee=c, measure="std").tolist() == [1]
    assert np.array_equal(disagreement_score(np.stack([1 - c, c], axis=-1)),
                          disagreement_score(c))
    with pytest.raises(ConfigError, match="measure"):
        disagreement_score(c, "bald")
    with pytest.raises(ConfigError, match="n_members >= 2"):
        disagreement_score(c[:1])


# =========================================================================== top_k properties

_scores = hnp.arrays(np.float64, st.integers(1, 60),
                     elements=st.sampled_from([-1.0, 0.0, 0.25, 0.5, 0.5000001, 2.0, 7.0]))


@settings(max_examples=150, deadline=None)
@given(scores=_scores, data=st.data())
def test_top_k_picks_the_k_highest_up_to_ties(scores, data):
    n = len(scores)
    exclude = data.draw(hnp.arrays(np.bool_, n))
    free = np.flatnonzero(~exclude)
    if len(free) == 0:
        with pytest.raises(ConfigError):
            top_k(scores, 1, exclude=exclude)
        return
    k = data.draw(st.integers(1, len(free)))
    seed = data.draw(st.integers(0, 2**32))
    out = top_k(scores, k, rng=seed, exclude=exclude)
    assert len(np.unique(out)) == k and not exclude[out].any()
    rest = np.setdiff1d(free, out)
    if len(rest):
        assert scores[out].min() >= scores[rest].max()
    assert np.all(np.diff(scores[out]) <= 0)  # highest first
    assert np.array_equal(out, top_k(scores, k, rng=seed, exclude=exclude))


def test_top_k_ties_are_broken_by_rng_not_position():
    scores = np.zeros(1000)
    picks = {tuple(sorted(top_k(scores, 5, rng=s))) for s in range(5)}
    assert len(picks) == 5
    with pytest.raises(ConfigError, match=r"k 4 > 3 unreviewed"):
        top_k([1.0, 2.0, 3.0], 4)


@settings(max_examples=100, deadline=None)
@given(p=hnp.arrays(np.float64, st.integers(1, 50), elements=st.floats(0, 1)),
       threshold=st.floats(0, 1), data=st.data())
def test_uncertainty_picks_are_the_k_closest_to_the_threshold(p, threshold, data):
    k = data.draw(st.integers(1, len(p)))
    out = select("uncertainty", k, proba=p, threshold=threshold, rng=1)
    dist = np.abs(p - threshold)
    rest = np.setdiff1d(np.arange(len(p)), out)
    if len(rest):
        assert dist[out].max() <= dist[rest].min() + 1e-12


# =========================================================================== k-center


def _brute_force_radius(X, k):
    best = np.inf
    for subset in itertools.combinations(range(len(X)), k):
        best = min(best, covering_radius(X, list(subset)))
    return best


_small_points = st.integers(2, 8).flatmap(
    lambda n: hnp.arrays(np.float32, (n, 2), elements=st.integers(-8, 8).map(float)))


@settings(max_examples=80, deadline=None)
@given(X=_small_points, data=st.data())
def test_exact_greedy_is_within_2x_of_the_optimal_radius(X, data):
    k = data.draw(st.integers(1, min(3, len(X))))
    out = kcenter_greedy(X, k, method="exact", rng=data.draw(st.integers(0, 100)))
    assert covering_radius(X, out) <= 2 * _brute_force_radius(X, k) + 1e-5


_points = st.tuples(st.integers(2, 40), st.integers(1, 4)).flatmap(
    lambda s: hnp.arrays(np.float32, s, elements=st.integers(-6, 6).map(float)))


@settings(max_examples=80, deadline=None)
@given(X=_points, data=st.data())
def test_every_pick_is_a_farthest_point_for_both_methods(X, data):
    """The defining greedy step, checked for the exact loop and the blocked fast variant."""
    n = len(X)
    reviewed = data.draw(hnp.arrays(np.bool_, n))
    if reviewed.all():
        reviewed[0] = False
    k = data.draw(st.integers(1, int((~reviewed).sum())))
    fast_small = {"front_size": 3, "max_pending": 2, "n_groups": 2, "n_probe": 1}
    for method, kw in (("exact", {}), ("fast", fast_small), ("fast", {"n_groups": 0})):
        out = kcenter_greedy(X, k, exclude=reviewed, initial=reviewed, method=method, rng=0, **kw)
        assert len(np.unique(out)) == k and not reviewed[out].any()
        centres = list(np.flatnonzero(reviewed))
        for pick in out:
            if centres:
                d = min_distances(X, centres)
                d[reviewed] = -1
                d[centres] = -1
                assert d[pick] >= d.max() - 1e-4, method
            centres.append(int(pick))


def _clusters(n=3000, d=16, n_clusters=30, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, d)) * 4
    labels = rng.integers(0, n_clusters, n)
    return (centres[labels] + rng.standard_normal((n, d))).astype(np.float32)


@pytest.mark.parametrize("with_reviewed", [False, True])
@pytest.mark.parametrize("tuning", [
    {"front_size": 128, "max_pending": 32},  # blocked folds, then probed ones
    {"front_size": 128, "max_pending": 32, "n_groups": 10, "n_probe": 1},  # many misses
    {"front_size": 4096, "n_groups": 0},  # blocked dense folds only
])
def test_fast_kcenter_matches_exact_on_clustered_data(with_reviewed, tuning):
    X = _clusters()
    reviewed = np.zeros(len(X), bool)
    if with_reviewed:
        reviewed[::37] = True
    kw = {"exclude": reviewed, "initial": reviewed, "rng": 5}
    exact = kcenter_greedy(X, 150, method="exact", **kw)
    fast = kcenter_greedy(X, 150, method="fast", **tuning, **kw)
    r_exact = covering_radius(X, np.concatenate([exact, np.flatnonzero(reviewed)]))
    r_fast = covering_radius(X, np.concatenate([fast, np.flatnonzero(reviewed)]))
    assert r_fast <= 1.05 * r_exact
    assert len(np.intersect1d(exact, fast)) >= 0.95 * 150  # same greedy up to float near-ties


def test_kcenter_reviewed_points_count_as_covered():
    X = np.array([[0, 0], [0.1, 0], [0.2, 0], [10, 0], [10.1, 0], [20, 0]], dtype=np.float32)
    out = select("kcenter", 1, features=X, reviewed=[0, 3])
    assert out.tolist() == [5]
    out = select("kcenter", 2, features=X, reviewed=[0, 3, 5])
    assert set(out.tolist()) == {2, 4}
    # without using reviewed points as centres the far point still comes first
    assert select("kcenter", 1, features=X, reviewed=[5], reviewed_as_centers=False,
                  rng=0).shape == (1,)


def test_kcenter_initial_features_and_errors():
    X = np.array([[0.0], [1.0], [5.0]], dtype=np.float32)
    assert kcenter_greedy(X, 1, initial_features=[[5.0]]).tolist() == [0]
    with pytest.raises(ConfigError, match="dims"):
        kcenter_greedy(X, 1, initial_features=np.zeros((1, 2)))
    with pytest.raises(ConfigError, match="method"):
        kcenter_greedy(X, 1, method="approx")
    with pytest.raises(ConfigError, match="method"):
        select("kcenter", 1, features=X, method="approx")
    with pytest.raises(ConfigError, match="selectable"):
        kcenter_greedy(X, 3, exclude=[0])
    with pytest.raises(ConfigError, match="2-D"):
        kcenter_greedy(X[:, 0], 1)
    with pytest.raises(ConfigError, match="front_size"):
        kcenter_greedy(X, 1, method="fast", front_size=0)
    with pytest.raises(ConfigError, match="n_probe"):
        kcenter_greedy(X, 1, method="fast", n_probe=0)
    assert covering_radius(X, [1]) == pytest.approx(4.0)
    assert np.isinf(covering_radius(X, []))


# =========================================================================== hybrid


def test_hybrid_batch_is_not_near_duplicates():
    rng = np.random.default_rng(0)
    groups = rng.standard_normal((40, 16)).astype(np.float32) * 10
    X = np.repeat(groups, 10, axis=0) + 0.01 * rng.standard_normal((400, 16)).astype(np.float32)
    group = np.repeat(np.arange(40), 10)
    p = rng.uniform(0.0, 1.0, 400)
    p[group == 0] = 0.5  # the ten most uncertain are copies of one item
    unc = select("uncertainty", 10, proba=p)
    hyb = select("hybrid", 10, proba=p, features=X, beta=8)
    assert len(np.unique(group[unc])) == 1
    assert len(np.unique(group[hyb])) == 10
    assert group[hyb[0]] == 0  # starts from the most uncertain item
    # candidates come only from the beta * k most uncertain
    pool = select("uncertainty", 80, proba=p)
    assert set(hyb.tolist()) <= set(pool.tolist())


def test_hybrid_other_scores_and_bad_beta():
    out = _call("hybrid", 5, score="disagreement", measure="std", drop=("proba",))
    assert len(np.unique(out)) == 5
    with pytest.raises(ConfigError, match="needs committee="):
        _call("hybrid", 5, score="disagreement", drop=("committee",))
    with pytest.raises(ConfigError, match="beta"):
        _call("hybrid", 5, beta=0.5)
    with pytest.raises(ConfigError, match="unknown score"):
        _call("hybrid", 5, score="nope")


# =========================================================================== strata


@settings(max_examples=200, deadline=None)
@given(sizes=st.lists(st.integers(0, 30), min_size=1, max_size=8),
       method=st.sampled_from(["proportional", "equal"]), data=st.data())
def test_allocation_sums_to_budget_and_respects_sizes(sizes, method, data):
    sizes = np.array(sizes)
    if sizes.sum() == 0:
        with pytest.raises(ConfigError):
            allocate(sizes, 1, method=method)
        return
    budget = data.draw(st.integers(1, int(sizes.sum())))
    counts = allocate(sizes, budget, method=method, rng=data.draw(st.integers(0, 99)))
    assert counts.sum() == budget and np.all(counts >= 0) and np.all(counts <= sizes)
    if method == "proportional":
        quota = budget * sizes / sizes.sum()
        assert np.all(counts >= np.floor(quota)) and np.all(counts <= np.ceil(quota))
    else:
        open_ = counts < sizes
        if open_.any():
            level = counts[open_].min()
            assert counts.max() - level <= 1
            assert np.all(counts[open_] >= counts.max() - 1)


def test_allocation_errors():
    with pytest.raises(ConfigError, match="budget 9 > 8"):
        allocate([5, 3], 9)
    with pytest.raises(ConfigError, match="allocation"):
        allocate([5, 3], 2, method="neyman")
    with pytest.raises(ConfigError, match="sizes"):
        allocate([5, -1], 2)


def test_stratified_uses_inner_scores_within_each_stratum():
    strata = np.array([0] * 10 + [1] * 10)
    p = np.concatenate([np.linspace(0, 0.45, 10), np.linspace(0.55, 1, 10)])
    out = select("stratified", 4, strata=strata, proba=p, inner="uncertainty",
                 allocation="equal")
    assert set(out.tolist()) == {8, 9, 10, 11}
    assert set(strata[out[:2]]) == {0, 1}  # strata interleaved in the queue


def test_stratified_crosses_several_label_arrays():
    category = np.array(["cat", "dog"] * 12)
    origin = np.array(["coco"] * 12 + ["openimages"] * 12)
    out = select("stratified", 8, strata={"category": category, "origin": origin},
                 allocation="equal", rng=0)
    combos = {(category[i], origin[i]) for i in out}
    assert len(combos) == 4
    codes = stratum_codes([category, origin])
    assert len(np.unique(codes)) == 4
    assert np.array_equal(codes, stratum_codes({"a": category, "b": origin}))


def test_stratified_inner_errors():
    with pytest.raises(ConfigError, match="inner must be one of"):
        _call("stratified", 3, inner="stratified")
    with pytest.raises(ConfigError, match="needs features="):
        _call("stratified", 3, inner="kcenter", drop=("features",))


def test_quantile_bins_for_mask_area():
    area = np.array([0.01, 0.02, 0.03, 0.2, 0.3, 0.4, 0.5, 0.6])
    assert quantile_bins(area, 2).tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert len(set(quantile_bins(np.ones(5), 3).tolist())) == 1  # equal values share a bin
    out = select("stratified", 4, strata=quantile_bins(area, 2), allocation="equal")
    assert sorted(np.bincount(quantile_bins(area, 2)[out]).tolist()) == [2, 2]
    with pytest.raises(ConfigError, match="n_bins"):
        quantile_bins(area, 0)
