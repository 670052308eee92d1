"""Per-chunk tables of regular grid cells and of continuous (float) rasters.

Grid cells are squares of ``cell × cell`` pixels aligned to the raster's top-left corner. A chunk
keeps the table of every cell it touches, indexed from its first cell: pixel ``(r, c)`` of a chunk
whose first pixel lies ``(r0, c0)`` into its cell (``start % cell``) goes to ``((r + r0) // cell,
(c + c0) // cell)``. Chunks whose edges are whole cells hold whole cells; otherwise a cell astride
two chunks gets one partial table from each, added where the tables are laid side by side.

Continuous rasters (population per pixel, NPP, a density or a correction factor) are summed per
unit (county id) or per cell over their valid pixels: the four running sums ``[pixels, Σv, Σa,
Σv·a]`` (``a`` the pixel's true area, m²) give the sum ``Σv`` and the area-weighted mean
``Σv·a / Σa`` on the client. A pixel is valid when its value is finite and not ``nodata``.

Codes reach the class kernels through the lookup table of :mod:`carbonscape.kernels.crosstab`
(``lut[code - offset]``, nodata → ``nodata_col``, anything else → ``unknown_col``).
"""

from __future__ import annotations

import numpy as np
from carbonscape.kernels.area import lattice_row
from carbonscape.kernels.classes import class_column
from numba import njit

# Columns of a continuous raster's running sums.
N_VALID, SUM_V, SUM_A, SUM_VA = 0, 1, 2, 3
N_SUMS = 4


@njit(nogil=True, cache=True)
def cell_counts(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0):  # pragma: no cover
    """Pixels per (cell row, cell column, class column) of one chunk whose first pixel lies ``r0``
    rows and ``c0`` columns into its cell (``start % cell``); returns int64 ``(out_rows, out_cols,
    n_cols)`` indexed from the chunk's first cell (cells past the raster's edge stay 0).

    Each row is walked cell by cell (no division per pixel)."""
    counts = np.zeros((out_rows, out_cols, n_cols), dtype=np.int64)
    rows, cols = codes.shape
    for r in range(rows):
        cr = (r + r0) // cell
        start = 0
        cc = 0
        while start < cols:
            end = min(cols, (cc + 1) * cell - c0)
            table = counts[cr, cc]
            for c in range(start, end):
                table[class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)] += 1
            start = end
            cc += 1
    return counts


@njit(nogil=True, cache=True)
def cell_areas(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, area, r0, c0):  # pragma: no cover
    """Like :func:`cell_counts` but sums each pixel's true area (m², float64). ``area`` broadcasts
    to the chunk: ``(rows, 1)``, ``(1, 1)`` or ``(rows, cols)``."""
    sums = np.zeros((out_rows, out_cols, n_cols), dtype=np.float64)
    rows, cols = codes.shape
    ar, ac = area.shape
    for r in range(rows):
        cr = (r + r0) // cell
        rr = r if ar > 1 else 0
        for c in range(cols):
            cc = (c + c0) // cell
            a = area[rr, c if ac > 1 else 0]
            sums[cr, cc, class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)] += a
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
def cell_value_sums(values, nodata, has_nodata, cell, out_rows, out_cols, area, r0, c0):  # pragma: no cover
    """``[pixels, Σv, Σa, Σv·a]`` per (cell row, cell column) of a float raster's valid pixels in
    one chunk whose first pixel lies ``(r0, c0)`` into its cell: float64 ``(out_rows, out_cols, 4)``."""
    sums = np.zeros((out_rows, out_cols, 4), dtype=np.float64)
    rows, cols = values.shape
    ar, ac = area.shape
    for r in range(rows):
        cr = (r + r0) // cell
        rr = r if ar > 1 else 0
        for c in range(cols):
            v = np.float64(values[r, c])
            if not np.isfinite(v) or (has_nodata and v == nodata):
                continue
            cc = (c + c0) // cell
            a = area[rr, c if ac > 1 else 0]
            sums[cr, cc, 0] += 1.0
            sums[cr, cc, 1] += v
            sums[cr, cc, 2] += a
            sums[cr, cc, 3] += v * a
    return sums


# The same sums with each pixel's true area rebuilt row by row from the grid's area lattice (as the
# county kernels of carbonscape.kernels.area do): no per-pixel area block is ever made. Building a
# chunk's (rows, cols) area block instead took 3/4 of the cell pass at 10^8 pixels (benchmarks/cells.py).

@njit(nogil=True, cache=True)
def cell_areas_lattice(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0,
                       lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_areas` with pixel areas from ``lattice`` (see :func:`carbonscape.kernels.area.lattice_row`);
    ``row0, col0`` are the chunk's first pixel on the whole grid."""
    sums = np.zeros((out_rows, out_cols, n_cols), dtype=np.float64)
    rows, cols = codes.shape
    area = np.empty(cols, dtype=np.float64)
    for r in range(rows):
        lattice_row(lattice, node_rows, node_cols, row0 + r, col0, area)
        cr = (r + r0) // cell
        start = 0
        cc = 0
        while start < cols:
            end = min(cols, (cc + 1) * cell - c0)
            table = sums[cr, cc]
            for c in range(start, end):
                table[class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)] += area[c]
            start = end
            cc += 1
    return sums


@njit(nogil=True, cache=True)
def cell_value_sums_lattice(values, nodata, has_nodata, cell, out_rows, out_cols, r0, c0, lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_value_sums` with pixel areas from ``lattice``."""
    sums = np.zeros((out_rows, out_cols, 4), dtype=np.float64)
    rows, cols = values.shape
    area = np.empty(cols, dtype=np.float64)
    for r in range(rows):
        lattice_row(lattice, node_rows, node_cols, row0 + r, col0, area)
        cr = (r + r0) // cell
        start = 0
        cc = 0
        while start < cols:
            end = min(cols, (cc + 1) * cell - c0)
            table = sums[cr, cc]
            for c in range(start, end):
                v = np.float64(values[r, c])
                if not np.isfinite(v) or (has_nodata and v == nodata):
                    continue
                a = area[c]
                table[0] += 1.0
                table[1] += v
                table[2] += a
                table[3] += v * a
            start = end
            cc += 1
    return sums


@njit(nogil=True, cache=True)
def cell_counts_areas_lattice(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0,
                              lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """Pixels and true areas together, one read of each pixel: float64 ``(out_rows, out_cols,
    2·n_cols)``, pixels in ``[..., :n_cols]`` (exact as float64 below 2^53) and areas (m²) in
    ``[..., n_cols:]``. Two kernels, one for each, took 1.5× the county pass's time."""
    sums = np.zeros((out_rows, out_cols, 2 * n_cols), dtype=np.float64)
    rows, cols = codes.shape
    area = np.empty(cols, dtype=np.float64)
    for r in range(rows):
        lattice_row(lattice, node_rows, node_cols, row0 + r, col0, area)
        cr = (r + r0) // cell
        start = 0
        cc = 0
        while start < cols:
            end = min(cols, (cc + 1) * cell - c0)
            table = sums[cr, cc]
            for c in range(start, end):
                k = class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)
                table[k] += 1.0
                table[n_cols + k] += area[c]
            start = end
            cc += 1
    return sums
