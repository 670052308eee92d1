"""Per-chunk (zone, class) pixel counting and per-pixel pool lookup.

Land-use codes reach the kernels through a lookup table ``lut`` indexed by ``code - offset``:
``lut[i]`` is the class column of that code, the ``nodata`` code goes to ``nodata_col`` (pass a
value outside the dtype's range when there is none), and every code outside the table (or marked
``unknown_col`` in it) lands in the ``unknown`` column, so one pass also tells whether the raster
holds codes the pools table lacks. That lookup is
:func:`carbonscape.kernels.classes.class_column`, inlined into every kernel that takes ``lut``.
"""

from __future__ import annotations

import numpy as np
from carbonscape.kernels.classes import class_column
from numba import njit


@njit(nogil=True, cache=True)
def crosstab_counts(zones, codes, lut, offset, n_zones, n_cols, unknown_col, nodata, nodata_col):  # pragma: no cover
    """Count pixels per (zone id, class column) in one chunk.

    ``zones`` holds ids 0..n_zones-1 (0 = outside every polygon); ``codes`` the land-use codes.
    Returns an int64 array ``(n_zones, n_cols)``. A zone id out of range raises, since it means
    the zone store was built from other polygons than the table describes.
    """
    counts = np.zeros((n_zones, n_cols), dtype=np.int64)
    rows, cols = codes.shape
    for r in range(rows):
        for c in range(cols):
            z = zones[r, c]
            if z < 0 or z >= n_zones:
                raise ValueError("zone id out of range of the zone table")
            counts[z, class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)] += 1
    return counts


@njit(nogil=True, cache=True)
def crosstab_areas(zones, codes, lut, offset, n_zones, n_cols, unknown_col, nodata, nodata_col, area):  # pragma: no cover
    """Like :func:`crosstab_counts` but sums each pixel's true area as float64.

    ``area`` is a 2-D float64 array that broadcasts to the chunk: ``(rows, 1)`` for row areas
    (a geographic grid), ``(1, 1)`` for one area, ``(rows, cols)`` for a per-pixel field.
    """
    areas = np.zeros((n_zones, n_cols), dtype=np.float64)
    rows, cols = codes.shape
    row_step = 1 if area.shape[0] > 1 else 0
    col_step = 1 if area.shape[1] > 1 else 0
    for r in range(rows):
        area_row = area[r * row_step]
        for c in range(cols):
            z = zones[r, c]
            if z < 0 or z >= n_zones:
                raise ValueError("zone id out of range of the zone table")
            a = area_row[c * col_step]
            areas[z, class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)] += a
    return areas


@njit(nogil=True, cache=True)
def lookup_values(codes, lut, offset, values, fill):  # pragma: no cover
    """Map codes to ``values[lut[code - offset]]`` as float32; other codes get ``fill``."""
    out = np.empty(codes.shape, dtype=np.float32)
    n_lut = lut.shape[0]
    n_values = values.shape[0]
    rows, cols = codes.shape
    for r in range(rows):
        for c in range(cols):
            i = np.int64(codes[r, c]) - offset
            if 0 <= i < n_lut:
                k = lut[i]
                out[r, c] = values[k] if k < n_values else fill
            else:
                out[r, c] = fill
    return out


@njit(nogil=True, cache=True)
def code_histogram(codes, lo, n):  # pragma: no cover
    """Counts of codes ``lo .. lo+n-1``; codes outside land in the last bin ``n``."""
    hist = np.zeros(n + 1, dtype=np.int64)
    rows, cols = codes.shape
    for r in range(rows):
        for c in range(cols):
            i = np.int64(codes[r, c]) - lo
            if 0 <= i < n:
                hist[i] += 1
            else:
                hist[n] += 1
    return hist


@njit(nogil=True, cache=True)
def crosstab_counts_dense(zones, codes, lut, offset, n_zones, n_cols):  # pragma: no cover
    """:func:`crosstab_counts` for 8/16-bit codes, with ``lut`` covering the dtype's whole range.

    Every code (nodata and unknown ones included) has its column in ``lut``, so the inner loop has
    no branch but the zone check. Four partial tables break the store-to-load dependency between
    neighbouring pixels of the same (zone, class), which land-use patches make the common case;
    this doubles the speed over one table.
    """
    parts = np.zeros((4, n_zones * n_cols), dtype=np.int64)
    rows, cols = codes.shape
    for r in range(rows):
        zone_row = zones[r]
        code_row = codes[r]
        c = 0
        while c + 4 <= cols:
            for k in range(4):
                z = np.int64(zone_row[c + k])
                if z < 0 or z >= n_zones:
                    raise ValueError("zone id out of range of the zone table")
                parts[k, z * n_cols + lut[np.int64(code_row[c + k]) - offset]] += 1
            c += 4
        while c < cols:
            z = np.int64(zone_row[c])
            if z < 0 or z >= n_zones:
                raise ValueError("zone id out of range of the zone table")
            parts[0, z * n_cols + lut[np.int64(code_row[c]) - offset]] += 1
            c += 1
    return parts.sum(axis=0).reshape(n_zones, n_cols)
