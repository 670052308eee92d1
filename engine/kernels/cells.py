"""Per-chunk tables of regular grid cells and of continuous (float) rasters.

Grid cells are squares of ``cell × cell`` pixels aligned to the raster's top-left corner; a chunk
whose origin is a multiple of ``cell`` holds whole cells (the last row and column of cells may be
cut by the raster's edge), so each cell's table is made in the one chunk that holds it and no
global reduction is needed. A cell's position inside its chunk is ``(r // cell, c // cell)``.

Continuous rasters (population per pixel, NPP, a density or a correction factor) are summed per
unit (county id) or per cell over their valid pixels: the four running sums ``[pixels, Σv, Σa,
Σv·a]`` (``a`` the pixel's true area, m²) give the sum ``Σv`` and the area-weighted mean
``Σv·a / Σa`` on the client. A pixel is valid when its value is finite and not ``nodata``.

Codes reach the class kernels through the lookup table of :mod:`carbonscape.kernels.crosstab`
(``lut[code - offset]``, nodata → ``nodata_col``, anything else → ``unknown_col``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

# Columns of a continuous raster's running sums.
N_VALID, SUM_V, SUM_A, SUM_VA = 0, 1, 2, 3
N_SUMS = 4


@njit(nogil=True, cache=True)
def cell_counts(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols):  # pragma: no cover
    """Pixels per (cell row, cell column, class column) of one chunk whose origin is a multiple of
    ``cell``; returns int64 ``(out_rows, out_cols, n_cols)`` (cells past the raster's edge stay 0)."""
    counts = np.zeros((out_rows, out_cols, n_cols), dtype=np.int64)
    n_lut = lut.shape[0]
    rows, cols = codes.shape
    for r in range(rows):
        cr = r // cell
        for c in range(cols):
            cc = c // cell
            code = np.int64(codes[r, c])
            i = code - offset
            if code == nodata:
                counts[cr, cc, nodata_col] += 1
            elif 0 <= i < n_lut:
                counts[cr, cc, lut[i]] += 1
            else:
                counts[cr, cc, unknown_col] += 1
    return counts


@njit(nogil=True, cache=True)
def cell_areas(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, area):  # pragma: no cover
    """Like :func:`cell_counts` but sums each pixel's true area (m², float64). ``area`` broadcasts
    to the chunk: ``(rows, 1)``, ``(1, 1)`` or ``(rows, cols)``."""
    sums = np.zeros((out_rows, out_cols, n_cols), dtype=np.float64)
    n_lut = lut.shape[0]
    rows, cols = codes.shape
    ar, ac = area.shape
    for r in range(rows):
        cr = r // cell
        rr = r if ar > 1 else 0
        for c in range(cols):
            cc = c // cell
            a = area[rr, c if ac > 1 else 0]
            code = np.int64(codes[r, c])
            i = code - offset
            if code == nodata:
                sums[cr, cc, nodata_col] += a
            elif 0 <= i < n_lut:
                sums[cr, cc, lut[i]] += a
            else:
                sums[cr, cc, unknown_col] += a
    return sums


@njit(nogil=True, cache=True)
def unit_value_sums(units, values, nodata, has_nodata, n_units, area):  # pragma: no cover
    """``[pixels, Σv, Σa, Σv·a]`` per unit id of a float raster's valid pixels: float64
    ``(n_units, 4)``. ``area`` broadcasts to the chunk. A unit id out of range raises."""
    sums = np.zeros((n_units, 4), dtype=np.float64)
    rows, cols = values.shape
    ar, ac = area.shape
    for r in range(rows):
        rr = r if ar > 1 else 0
        for c in range(cols):
            u = units[r, c]
            if u < 0 or u >= n_units:
                raise ValueError("zone id out of range of the zone table")
            v = np.float64(values[r, c])
            if not np.isfinite(v) or (has_nodata and v == nodata):
                continue
            a = area[rr, c if ac > 1 else 0]
            sums[u, 0] += 1.0
            sums[u, 1] += v
            sums[u, 2] += a
            sums[u, 3] += v * a
    return sums


@njit(nogil=True, cache=True)
def cell_value_sums(values, nodata, has_nodata, cell, out_rows, out_cols, area):  # pragma: no cover
    """``[pixels, Σv, Σa, Σv·a]`` per (cell row, cell column) of a float raster's valid pixels in
    one chunk whose origin is a multiple of ``cell``: float64 ``(out_rows, out_cols, 4)``."""
    sums = np.zeros((out_rows, out_cols, 4), dtype=np.float64)
    rows, cols = values.shape
    ar, ac = area.shape
    for r in range(rows):
        cr = r // cell
        rr = r if ar > 1 else 0
        for c in range(cols):
            v = np.float64(values[r, c])
            if not np.isfinite(v) or (has_nodata and v == nodata):
                continue
            cc = c // cell
            a = area[rr, c if ac > 1 else 0]
            sums[cr, cc, 0] += 1.0
            sums[cr, cc, 1] += v
            sums[cr, cc, 2] += a
            sums[cr, cc, 3] += v * a
    return sums
