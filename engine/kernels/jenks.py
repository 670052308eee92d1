"""Exact optimal 1-D classification (Fisher 1958 / Jenks natural breaks), weighted, in float64.

Minimises the total within-class weighted sum of squared deviations over sorted, distinct values.
The within-class cost of sorted data is Monge (it satisfies the quadrangle inequality), so the
best start of the last class never moves left as the class end moves right; each layer of the
dynamic programme is then filled by divide and conquer in O(n log n) instead of O(n²), as in
Ckmeans.1d.dp (Wang & Song 2011; Grønlund et al. 2017).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def _segment_cost(w_prefix, s1_prefix, s2_prefix, a, b):  # pragma: no cover
    """Weighted SSD of values a..b (inclusive) from prefix sums of w, w·x, w·x²."""
    weight = w_prefix[b + 1] - w_prefix[a]
    if weight <= 0.0:
        return 0.0
    s1 = s1_prefix[b + 1] - s1_prefix[a]
    cost = (s2_prefix[b + 1] - s2_prefix[a]) - s1 * s1 / weight
    return cost if cost > 0.0 else 0.0


@njit(nogil=True, cache=True)
def fisher_jenks_starts(values, weights, k):  # pragma: no cover
    """Start index of every class (k of them) of the optimal partition of sorted distinct values.

    ``values`` must be sorted ascending and distinct, ``weights`` positive, ``1 <= k <= n``.
    """
    n = values.shape[0]
    # Centre the data: prefix sums of x² lose precision far from zero.
    shift = values[n // 2]
    w_prefix = np.zeros(n + 1)
    s1_prefix = np.zeros(n + 1)
    s2_prefix = np.zeros(n + 1)
    for i in range(n):
        x = values[i] - shift
        w_prefix[i + 1] = w_prefix[i] + weights[i]
        s1_prefix[i + 1] = s1_prefix[i] + weights[i] * x
        s2_prefix[i + 1] = s2_prefix[i] + weights[i] * x * x
    previous = np.empty(n)
    for i in range(n):
        previous[i] = _segment_cost(w_prefix, s1_prefix, s2_prefix, 0, i)
    current = np.empty(n)
    starts = np.zeros((k, n), dtype=np.int64)
    # Explicit stack of (lo, hi, opt_lo, opt_hi) ranges instead of recursion.
    stack = np.empty((4 * (n + 2) + 64, 4), dtype=np.int64)
    for j in range(1, k):
        for i in range(j):
            current[i] = np.inf
        top = 0
        stack[0, 0] = j
        stack[0, 1] = n - 1
        stack[0, 2] = j
        stack[0, 3] = n - 1
        top = 1
        while top > 0:
            top -= 1
            lo = stack[top, 0]
            hi = stack[top, 1]
            opt_lo = stack[top, 2]
            opt_hi = stack[top, 3]
            if lo > hi:
                continue
            mid = (lo + hi) // 2
            best = np.inf
            best_m = opt_lo
            last = opt_hi if opt_hi < mid else mid
            for m in range(opt_lo, last + 1):
                cost = previous[m - 1] + _segment_cost(w_prefix, s1_prefix, s2_prefix, m, mid)
                if cost < best:
                    best = cost
                    best_m = m
            current[mid] = best
            starts[j, mid] = best_m
            stack[top, 0] = lo
            stack[top, 1] = mid - 1
            stack[top, 2] = opt_lo
            stack[top, 3] = best_m
            top += 1
            stack[top, 0] = mid + 1
            stack[top, 1] = hi
            stack[top, 2] = best_m
            stack[top, 3] = opt_hi
            top += 1
        for i in range(n):
            previous[i] = current[i]
    result = np.zeros(k, dtype=np.int64)
    end = n - 1
    for j in range(k - 1, 0, -1):
        result[j] = starts[j, end]
        end = result[j] - 1
    result[0] = 0
    return result


@njit(nogil=True, cache=True)
def weighted_ssd(values, weights, labels, k):  # pragma: no cover
    """Total within-class weighted SSD for class labels 0..k-1 (for goodness of variance fit)."""
    w = np.zeros(k)
    s1 = np.zeros(k)
    s2 = np.zeros(k)
    for i in range(values.shape[0]):
        c = labels[i]
        if c < 0:
            continue
        w[c] += weights[i]
        s1[c] += weights[i] * values[i]
        s2[c] += weights[i] * values[i] * values[i]
    total = 0.0
    for c in range(k):
        if w[c] > 0:
            part = s2[c] - s1[c] * s1[c] / w[c]
            total += part if part > 0 else 0.0
    return total
