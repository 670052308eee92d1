import itertools

import jenkspy  # the oracle: imported plainly, so a missing one fails rather than skips
import numpy as np
import pytest
from carbonscape import InputError
from carbonscape.breaks import (
    classify,
    equal_interval_breaks,
    goodness_of_variance_fit,
    manual_breaks,
    natural_breaks,
    quantile_breaks,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def _ssd(groups, weights):
    total = 0.0
    for g, w in zip(groups, weights):
        mean = np.average(g, weights=w)
        total += float(np.sum(w * (g - mean) ** 2))
    return total


def _brute_force(values, k, weights):
    """Smallest weighted SSD over every way to cut the sorted distinct values into k classes."""
    order = np.argsort(values)
    x, w = values[order], weights[order]
    unique = np.unique(x)
    best = np.inf
    for cuts in itertools.combinations(range(1, len(unique)), k - 1):
        bounds = [unique[0] - 1, *[unique[c - 1] for c in cuts], unique[-1]]
        groups = [(x > lo) & (x <= hi) for lo, hi in zip(bounds[:-1], bounds[1:])]
        best = min(best, _ssd([x[g] for g in groups], [w[g] for g in groups]))
    return best


def _cost_of(values, weights, edges):
    labels = classify(values, edges)
    groups = [labels == c for c in range(1, len(edges))]
    return _ssd([values[g] for g in groups], [weights[g] for g in groups])


def test_hand_computed_two_clusters():
    values = [1, 2, 3, 10, 11, 12, 30]
    np.testing.assert_array_equal(natural_breaks(values, 3), [1, 3, 12, 30])
    np.testing.assert_array_equal(classify(values, [1, 3, 12, 30]), [1, 1, 1, 2, 2, 2, 3])


def test_weights_move_the_break():
    values = [0.0, 4.0, 5.0, 10.0]
    # {0, 4, 5} | {10}: SSD 9 + 1 + 4 = 14, better than {0} | {4, 5, 10}: 20.67.
    assert natural_breaks(values, 2).tolist() == [0, 5, 10]
    # Weight 10 on 0: {0, 4, 5} costs 34.2, so 0 stands alone (class 1 is the point [0, 0]).
    assert natural_breaks(values, 2, weights=[10, 1, 1, 1]).tolist() == [0, 0, 10]
    assert classify(values, [0, 0, 10]).tolist() == [1, 2, 2, 2]


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 300), st.integers(2, 8), st.integers(0, 2**32 - 1), st.booleans())
def test_equals_jenkspy(n, k, seed, with_ties):
    rng = np.random.default_rng(seed)
    values = rng.lognormal(size=n)
    if with_ties:
        values = np.round(values, 1)
    if np.unique(values).size < k:
        return
    ours = natural_breaks(values, k)
    theirs = np.asarray(jenkspy.jenks_breaks(values, n_classes=k))
    # Both are optimal; where two partitions tie exactly the edges may differ, the cost may not.
    if not np.allclose(ours, theirs):
        w = np.ones_like(values)
        assert _cost_of(values, w, ours) == pytest.approx(_cost_of(values, w, theirs), rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(4, 10), st.integers(2, 4), st.integers(0, 2**32 - 1), st.booleans())
def test_optimal_against_exhaustive_search(n, k, seed, weighted):
    rng = np.random.default_rng(seed)
    values = np.round(rng.normal(size=n) * 10, 1)
    weights = rng.uniform(0.1, 5.0, n) if weighted else np.ones(n)
    if np.unique(values).size < k:
        return
    edges = natural_breaks(values, k, weights=weights if weighted else None)
    assert _cost_of(values, weights, edges) == pytest.approx(_brute_force(values, k, weights), rel=1e-9, abs=1e-9)


def _fisher_oracle(unique, weights, k):
    """The least weighted SSD of k classes of sorted distinct values: Fisher's O(k n²) dynamic
    programme written plainly in numpy (prefix sums of w, w·x, w·x²), independent of the kernel."""
    n = unique.size
    cw, cx, cxx = (np.concatenate([[0.0], np.cumsum(a)]) for a in (weights, weights * unique, weights * unique * unique))

    def cost(s, i):  # classes of unique[s..i] inclusive, s an array of starts
        w = cw[i + 1] - cw[s]
        sx = cx[i + 1] - cx[s]
        return (cxx[i + 1] - cxx[s]) - sx * sx / w

    best = cost(np.zeros(n, dtype=int), np.arange(n))  # one class: unique[0..i]
    for _ in range(2, k + 1):
        new = np.full(n, np.inf)
        for i in range(1, n):
            starts = np.arange(1, i + 1)
            new[i] = np.min(best[starts - 1] + cost(starts, i))
        best = new
    return float(best[-1])


def test_integer_weights_equal_repetition():
    """Integer weights are repetitions: our weighted breaks cost what jenkspy's unweighted breaks
    of the repeated values cost (jenkspy has no weights, so the repetition reaches it for real)."""
    rng = np.random.default_rng(4)
    values = rng.normal(size=60)
    counts = rng.integers(1, 5, 60)
    repeated = np.repeat(values, counts)
    ours = natural_breaks(values, 5, weights=counts)
    theirs = np.asarray(jenkspy.jenks_breaks(repeated, n_classes=5))
    ones = np.ones_like(repeated)
    assert _cost_of(repeated, ones, ours) == pytest.approx(_cost_of(repeated, ones, theirs), rel=1e-12)
    unweighted = natural_breaks(values, 5)
    assert _cost_of(repeated, ones, unweighted) > _cost_of(repeated, ones, theirs) * (1 + 1e-9)  # the weights matter here


def test_large_input_is_optimal():
    """10^5 values (lognormal, to 0.01: a few thousand distinct values with many ties): the breaks'
    cost equals the optimum of a plain numpy Fisher programme over the distinct values weighted by
    their counts. Valid-looking but not optimal breaks (from a sample, say) fail here."""
    values = np.round(np.random.default_rng(0).lognormal(size=100_000), 2)
    edges = natural_breaks(values, 7)
    assert edges[0] == values.min() and edges[-1] == values.max() and np.all(np.diff(edges) > 0)
    unique, counts = np.unique(values, return_counts=True)
    optimum = _fisher_oracle(unique, counts.astype(float), 7)
    assert _cost_of(values, np.ones_like(values), edges) == pytest.approx(optimum, rel=1e-9)


def test_nan_and_inf_are_ignored_and_bad_k_refused():
    assert natural_breaks([1, 2, np.nan, 10, np.inf, 11], 2).tolist() == [1, 2, 11]
    with pytest.raises(InputError, match="at most 2 classes"):
        natural_breaks([1, 1, 2], 3)
    with pytest.raises(InputError, match=">= 2"):
        natural_breaks([1, 2, 3], 1)


def test_quantile_equal_interval_and_manual():
    values = np.arange(1, 11, dtype=float)
    assert quantile_breaks(values, 2).tolist() == [1, 5, 10]
    assert quantile_breaks(values, 5).tolist() == [1, 2, 4, 6, 8, 10]
    assert equal_interval_breaks([0, 3, 10], 4).tolist() == [0, 2.5, 5, 7.5, 10]
    with pytest.raises(InputError, match="strictly increasing"):
        manual_breaks([0, 2, 1])


def test_quantile_breaks_with_ties_name_the_tied_value():
    # 10 of 15 values are 0: the 1/4 and 2/4 quantiles are both 0, so class 2 would be empty.
    with pytest.raises(InputError, match=r"tie at 0 \(67% of them\).*4 quantile classes would be empty; use at most k = 2"):
        quantile_breaks([0] * 10 + [1, 2, 3, 4, 5], 4)
    # k = 2 works there: the minimum alone in class 1 is a class, not an empty one.
    assert quantile_breaks([0] * 10 + [1, 2, 3, 4, 5], 2).tolist() == [0, 0, 5]
    # Ties at the top: the median is the maximum, so class 2 would be empty for any k.
    with pytest.raises(InputError, match=r"tie at 5 .*no number of quantile classes avoids that; use method=\"jenks\""):
        quantile_breaks([1, 2, 3, 5, 5, 5, 5, 5], 2)


def test_natural_breaks_takes_weights_by_position():
    values, weights = [0.0, 4.0, 5.0, 10.0], [10, 1, 1, 1]
    assert natural_breaks(values, 2, weights).tolist() == [0, 0, 10]
    assert natural_breaks(values, 2, weights).tolist() == natural_breaks(values, 2, weights=weights).tolist()


def test_classify_edges_and_outside_values():
    edges = [0, 1, 2]
    assert classify([0, 0.5, 1, 1.5, 2, np.nan], edges).tolist() == [1, 1, 1, 2, 2, 0]
    with pytest.raises(InputError, match="outside the class edges"):
        classify([3], edges)
    assert classify([-1, 3, np.inf], edges, clip=True).tolist() == [1, 2, 2]


def test_goodness_of_variance_fit_by_hand():
    values = [1, 2, 3, 11, 12, 13]
    # SDAM = 2·(6²+5²+4²) = 154; SDCM = 2 + 2 = 4; GVF = 1 − 4/154.
    assert goodness_of_variance_fit(values, [1, 3, 13]) == pytest.approx(1 - 4 / 154)
    assert goodness_of_variance_fit(values, [1, 13]) == pytest.approx(0.0)
