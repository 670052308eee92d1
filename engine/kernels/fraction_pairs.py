"""Fraction mode for transfer matrices: the inputs that let the (county, class) fraction kernel
share the boundary pixels of a (county, class in map A, class in map B) table.

:func:`carbonscape.kernels.fraction.share_by_rings` moves each boundary pixel of a chunk from its
pixel-centre county to the counties covering it, by exact covered fraction, in a table of
(county, column) with the column read through a lookup table from a code raster. A transition is
a column too: the pair ``a * n_b + b`` of the pixel's columns in the two maps. This module turns a
chunk into the two rasters that kernel then reads, in one pass:

- each pixel's pair numbered *locally* (pairs in order of first appearance in the chunk), so the
  kernel's table has as many columns as the chunk holds pairs, never ``n_a × n_b``;
- each pixel's county numbered locally too (the counties whose rings cross the chunk as
  ``1 .. m``, every other id as 0), so the table has ``m + 1`` rows, never ``n_counties``.

Numbering counties locally leaves the kernel's result unchanged: it writes only the rows of the
ring counties and of row 0, and reads the id raster only to ask whether a boundary pixel's
pixel-centre county is the ring's county, which holds locally exactly when it holds globally
(every other id becomes 0, which no ring carries).
"""

from __future__ import annotations

import numpy as np
from carbonscape.kernels.classes import class_column
from numba import njit


@njit(nogil=True, cache=True)
def local_pairs(zones, codes_a, lut_a, offset_a, unknown_a, nodata_a, nodata_col_a,
                codes_b, lut_b, offset_b, unknown_b, nodata_b, nodata_col_b, n_b, county_local, pair_local):  # pragma: no cover
    """Each pixel's transition and county, numbered locally (see the module's docstring).

    Parameters
    ----------
    zones : 2-D integer array
        The chunk's county ids (pixel-centre rule).
    codes_a, codes_b : 2-D integer arrays of the chunk's shape
        Land-use codes of the two maps; each maps to its class column through its ``lut``,
        ``offset``, nodata and unknown columns as :func:`carbonscape.kernels.classes.class_column`.
    n_b : int
        Columns of the second map: the pair of columns ``(a, b)`` is ``a * n_b + b``.
    county_local : 1-D int32 array, ``(n_counties,)``
        Local number of every county id (``1 .. m`` for the chunk's ring counties, 0 otherwise).
    pair_local : 1-D int64 array, ``(n_a * n_b,)``, all -1 on entry
        Filled with the local number of every pair present (-1 for pairs absent).

    Returns
    -------
    pairs : int32 ``(height, width)``
        Each pixel's local pair number.
    counties : int32 ``(height, width)``
        Each pixel's local county number.
    keys : int64 ``(n_local,)``
        The pair ``a * n_b + b`` of each local pair number.
    """
    height, width = codes_a.shape
    pairs = np.empty((height, width), dtype=np.int32)
    counties = np.empty((height, width), dtype=np.int32)
    keys = np.empty(16, dtype=np.int64)
    n_local = 0
    n_counties = county_local.shape[0]
    for r in range(height):
        for c in range(width):
            z = np.int64(zones[r, c])
            if z < 0 or z >= n_counties:
                raise ValueError("zone id out of range of the zone table")
            counties[r, c] = county_local[z]
            a = class_column(np.int64(codes_a[r, c]), lut_a, offset_a, nodata_a, nodata_col_a, unknown_a)
            b = class_column(np.int64(codes_b[r, c]), lut_b, offset_b, nodata_b, nodata_col_b, unknown_b)
            key = np.int64(a) * n_b + b
            k = pair_local[key]
            if k < 0:
                k = n_local
                pair_local[key] = k
                if n_local == keys.shape[0]:
                    grown = np.empty(2 * n_local, dtype=np.int64)
                    grown[:n_local] = keys
                    keys = grown
                keys[n_local] = key
                n_local += 1
            pairs[r, c] = k
    return pairs, counties, keys[:n_local].copy()


@njit(nogil=True, cache=True)
def pair_codes_8bit(codes_a, codes_b, offset_a, offset_b):  # pragma: no cover
    """Two 8-bit maps' codes as one uint16 code a pixel, ``(code_a - offset_a) * 256 + (code_b -
    offset_b)``: read through a 65,536-entry table of (column A, column B) pairs (built from both
    maps' dense tables, as :func:`carbonscape.kernels.transitions.count_transitions_8bit` reads
    its pairs), it is the pixel's pair column with no branch a pixel. Returns uint16 of the chunk's shape."""
    height, width = codes_a.shape
    out = np.empty((height, width), dtype=np.uint16)
    for r in range(height):
        for c in range(width):
            out[r, c] = np.uint16((np.int64(codes_a[r, c]) - offset_a) * 256 + (np.int64(codes_b[r, c]) - offset_b))
    return out
