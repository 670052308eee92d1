"""Per-chunk kernels of continuous (float) rasters read beside the land use.

``factor_areas`` sums each pixel's true area times a per-pixel factor per (county, class column):
the effective area a corrected carbon density is multiplied by (``supply = Σ density_class ×
Σ a·f``). A pixel without a factor (NaN: the factor raster's nodata or outside its extent) counts
with factor 1, its density left uncorrected; the per-county sums of the factor raster
(:data:`carbonscape.cells.WEIGHTED_SUM`) say how many pixels that was.

Codes reach the kernel through :func:`carbonscape.kernels.classes.class_column`
(``lut[code - offset]``, nodata → ``nodata_col``, anything else → ``unknown_col``).
"""

from __future__ import annotations

import numpy as np
from carbonscape.kernels.classes import class_column
from numba import njit


@njit(nogil=True, cache=True)
def factor_areas(counties, codes, factor, lut, offset, n_counties, n_cols, unknown_col, nodata, nodata_col, area):  # pragma: no cover
    """Σ area × factor (m²) per (county id, class column) of one chunk: float64 ``(n_counties, n_cols)``.

    ``counties`` holds ids ``0..n_counties-1``; ``codes`` land-use codes; ``factor`` the float
    factor of each pixel (NaN → 1); ``area`` float64 m², broadcasting to the chunk (``(rows, 1)``,
    ``(1, 1)`` or ``(rows, cols)``). A county id out of range raises.
    """
    out = np.zeros((n_counties, n_cols), dtype=np.float64)
    rows, cols = codes.shape
    ar, ac = area.shape
    for r in range(rows):
        rr = r if ar > 1 else 0
        for c in range(cols):
            z = counties[r, c]
            if z < 0 or z >= n_counties:
                raise ValueError("zone id out of range of the zone table")
            f = np.float64(factor[r, c])
            if not np.isfinite(f):
                f = 1.0
            a = area[rr, c if ac > 1 else 0] * f
            out[z, class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)] += a
    return out



@njit(nogil=True, cache=True)
def share_boundary(table, zones, pixels, counties, fractions, columns, weights):  # pragma: no cover
    """Fraction mode for any per-pixel weight: move each boundary pixel's weights from its
    pixel-centre county to the counties covering it, by covered fraction, in place.

    ``table`` float64 ``(n_zones, n_cols)`` holds the chunk's sums under the pixel-centre rule
    (each pixel wholly in ``zones[r, c]``, ids ``0..n_zones-1``, ``(rows, cols)``). ``pixels``,
    ``counties``, ``fractions`` (int64, int64, float64 ``(n,)``) are the chunk's boundary entries
    sorted by pixel (``r * cols + c``), one per covering county (what
    :func:`carbonscape.kernels.fraction.ring_fractions` returns: exactextract's coverage
    fraction). ``columns`` int64 and ``weights`` float64 ``(n, m)`` give, for each entry, the
    ``m`` table columns its pixel adds to and the pixel's whole weight in each (the same on every
    entry of one pixel; e.g. ``v, a, v·a`` of a value raster, or ``a·f`` of a factor raster in
    the pixel's class column). Each pixel's weight ``w`` is taken back from its pixel-centre
    county, ``f_k·w`` given to each covering county ``k`` and ``(1 − Σ f)·w`` to id 0 (outside
    every county): the rule :func:`carbonscape.kernels.fraction.correct_by_fractions` applies to
    the (county, class) areas.
    """
    width = zones.shape[1]
    n = pixels.shape[0]
    m = columns.shape[1]
    i = 0
    while i < n:
        p = pixels[i]
        r = p // width
        c = p - r * width
        first = i
        holder = np.int64(zones[r, c])
        for j in range(m):
            table[holder, columns[first, j]] -= weights[first, j]
        rest = 1.0
        while i < n and pixels[i] == p:
            f = fractions[i]
            for j in range(m):
                table[counties[i], columns[first, j]] += f * weights[first, j]
            rest -= f
            i += 1
        if rest > 1e-12:
            for j in range(m):
                table[0, columns[first, j]] += rest * weights[first, j]
