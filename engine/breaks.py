"""Class breaks: exact Fisher–Jenks natural breaks (optionally weighted), quantiles, equal
intervals and manual edges, plus classification and the goodness of variance fit.

We compute natural breaks ourselves: mapclassify's Fisher–Jenks accumulates in float32 and
jenkspy has no weights; both are fine oracles for tests. Repeated values are collapsed into one
value with their summed weight first, which is exact for the weighted cost and is what keeps
classifying a raster-sized array fast.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from carbonscape.errors import InputError
from carbonscape.kernels.jenks import fisher_jenks_starts, weighted_ssd

ArrayLike = Sequence[float] | np.ndarray

# The only list of classification methods (zoning and the study settings take theirs from here).
METHODS = ("jenks", "quantile", "equal", "manual")


def _clean(values: ArrayLike, weights: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    """Finite values (NaN and ±inf are ignored for computing breaks) and their weights."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if weights is None:
        w = np.ones_like(x)
    else:
        w = np.asarray(weights, dtype=np.float64).ravel()
        if w.shape != x.shape:
            raise InputError(f"{w.size} weights for {x.size} values")
        if np.any(~np.isfinite(w) | (w < 0)):
            raise InputError("weights must be finite and non-negative")
    keep = np.isfinite(x) & (w > 0)
    return x[keep], w[keep]


def _collapse(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    unique, inverse = np.unique(x, return_inverse=True)
    return unique, np.bincount(inverse, weights=w, minlength=unique.size)


def _check_k(k: int, n_unique: int) -> None:
    if not isinstance(k, (int, np.integer)) or k < 2:
        raise InputError(f"the number of classes must be an integer >= 2, not {k!r}")
    if k > n_unique:
        raise InputError(f"{k} classes asked for {n_unique} distinct value(s); use at most {n_unique} classes")


def natural_breaks(values: ArrayLike, k: int, weights: ArrayLike | None = None) -> np.ndarray:
    """Exact Fisher–Jenks natural breaks.

    ``natural_breaks(values, k, weights)``: the signature the issue specifies, so ``weights`` may be
    passed by position too.

    Parameters
    ----------
    values
        The values to classify; NaN and infinite values are ignored.
    k
        Number of classes.
    weights
        Optional non-negative weight per value (e.g. county area, which is what classifying a
        ratio map pixel by pixel does).

    Returns
    -------
    numpy.ndarray
        The ``k + 1`` class edges ``[min, b1, ..., max]``: each inner edge is the largest value of
        its class, as jenkspy and ArcGIS report them.
    """
    x, w = _clean(values, weights)
    unique, unique_w = _collapse(x, w)
    _check_k(k, unique.size)
    starts = fisher_jenks_starts(unique, unique_w, int(k))
    ends = np.append(starts[1:] - 1, unique.size - 1)
    return np.concatenate([[unique[0]], unique[ends]])


def quantile_breaks(values: ArrayLike, k: int, *, weights: ArrayLike | None = None) -> np.ndarray:
    """Edges putting (weighted) equal shares of the values in each class (inverted-CDF quantiles).

    Parameters
    ----------
    values
        The values to classify; NaN and infinite values are ignored.
    k
        Number of classes.
    weights
        Optional non-negative weight per value.

    Returns
    -------
    numpy.ndarray
        The ``k + 1`` class edges ``[min, q1, ..., max]``.

    Raises
    ------
    InputError
        When tied values make two quantiles fall on one value, which would leave a class empty;
        the message names the value and the largest ``k`` that works.
    """
    x, w = _clean(values, weights)
    _check_k(k, np.unique(x).size)
    order = np.argsort(x, kind="stable")
    x, w = x[order], w[order]
    cumulative = np.cumsum(w) / w.sum()
    edges = _quantile_edges(x, cumulative, int(k))
    tied = _tied_edge(edges)
    if tied is not None:
        share = float(w[x == tied].sum() / w.sum())
        usable = next((j for j in range(int(k) - 1, 1, -1) if _tied_edge(_quantile_edges(x, cumulative, j)) is None), None)
        fewer = f"use at most k = {usable} classes or" if usable else "no number of quantile classes avoids that; use"
        raise InputError(
            f"quantile breaks: the values tie at {tied:g} ({share:.0%} of them), so quantile edges coincide there "
            f"and some of the {k} quantile classes would be empty; {fewer} method=\"jenks\" (natural breaks "
            "handle tied values)"
        )
    return edges


def _quantile_edges(x: np.ndarray, cumulative: np.ndarray, k: int) -> np.ndarray:
    inner = [x[min(np.searchsorted(cumulative, q, side="left"), x.size - 1)] for q in np.arange(1, k) / k]
    return np.array([x[0], *inner, x[-1]], dtype=np.float64)


def _tied_edge(edges: np.ndarray) -> float | None:
    """The value two edges share when that empties a class, else None.

    ``[min, min, ...]`` is allowed (class 1 is then the minimum alone, as :func:`classify` reads it).
    """
    steps = np.diff(edges)[1:]
    tied = np.flatnonzero(steps <= 0)
    return float(edges[tied[0] + 1]) if tied.size else None


def equal_interval_breaks(values: ArrayLike, k: int) -> np.ndarray:
    """Edges splitting the range of the values into ``k`` equal intervals."""
    x, _ = _clean(values, None)
    _check_k(k, max(np.unique(x).size, k if x.size else 0))
    return np.linspace(x.min(), x.max(), k + 1)


def _check_edges(edges: ArrayLike, *, first_class_may_be_a_point: bool) -> np.ndarray:
    array = np.asarray(edges, dtype=np.float64).ravel()
    if array.size < 2:
        raise InputError(f"class breaks need at least 2 edges (k + 1 for k classes), got {array.tolist()}")
    steps = np.diff(array)
    if first_class_may_be_a_point:
        # Natural breaks put the minimum alone in class 1 when that is optimal: [min, min, ...].
        steps = steps[1:] if array.size > 2 else steps
    if not np.all(np.isfinite(array)) or np.any(steps <= 0):
        raise InputError(f"class breaks must be finite and strictly increasing, got {array.tolist()}")
    return array


def manual_breaks(edges: ArrayLike) -> np.ndarray:
    """Validate user edges: at least two, finite, strictly increasing."""
    return _check_edges(edges, first_class_may_be_a_point=False)


def classify(values: ArrayLike, edges: ArrayLike, *, clip: bool = False) -> np.ndarray:
    """Class of each value, 1..k; class ``i`` covers ``(edges[i-1], edges[i]]`` and the first
    class includes ``edges[0]`` too. NaN gets class 0.

    Values outside ``[edges[0], edges[-1]]`` (infinite ones included) raise :class:`InputError`
    unless ``clip``, which puts them in the first or last class.
    """
    x = np.asarray(values, dtype=np.float64)
    e = _check_edges(edges, first_class_may_be_a_point=True)
    k = e.size - 1
    classes = np.searchsorted(e, x, side="left").astype(np.int64)
    classes = np.where(x == e[0], 1, classes)
    outside = ~np.isnan(x) & ((x < e[0]) | (x > e[-1]))
    if outside.any() and not clip:
        shown = np.unique(x[outside])[:5].tolist()
        raise InputError(f"value(s) {shown} fall outside the class edges [{e[0]}, {e[-1]}]; widen the edges or clip")
    classes = np.clip(classes, 1, k)
    classes[np.isnan(x)] = 0
    return classes


def goodness_of_variance_fit(values: ArrayLike, edges: ArrayLike, *, weights: ArrayLike | None = None) -> float:
    """GVF = 1 − SDCM / SDAM: 1 for a perfect classification, 0 for none."""
    x, w = _clean(values, weights)
    if x.size == 0:
        return float("nan")
    centred = x - np.average(x, weights=w)
    labels = classify(x, edges, clip=True) - 1
    k = len(edges) - 1
    sdam = float(np.sum(w * centred * centred))
    if sdam == 0:
        return 1.0
    sdcm = weighted_ssd(centred, w, labels.astype(np.int64), k)
    return 1.0 - sdcm / sdam
