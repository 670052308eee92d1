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


# The row walk every cell kernel shares: a chunk row goes cell by cell (no division per pixel), each
# cell's columns from _cell_columns; the pixels' true areas of the row come from _row_areas.

@njit(inline="always")
def _cell_columns(cc, cell, c0, cols):  # pragma: no cover
    """Columns ``[start, end)`` of a chunk row ``cols`` wide, whose first pixel lies ``c0`` into its
    cell, that fall in the chunk's ``cc``-th cell (an empty range past the row's end)."""
    return max(0, cc * cell - c0), min(cols, (cc + 1) * cell - c0)


@njit(inline="always")
def _row_areas(r, area, lattice, node_rows, node_cols, row0, col0, out):  # pragma: no cover
    """``out[c]``: the true area (m²) of pixel ``(r, c)`` of the chunk, from ``lattice`` (see
    :func:`carbonscape.kernels.area.lattice_row`; ``row0, col0`` the chunk's first pixel on the
    whole grid) when it has nodes, else from ``area`` broadcast to the chunk (``(rows, 1)``,
    ``(1, 1)`` or ``(rows, cols)``)."""
    if lattice.shape[0] > 0:
        lattice_row(lattice, node_rows, node_cols, row0 + r, col0, out)
        return
    ar, ac = area.shape
    rr = r if ar > 1 else 0
    for c in range(out.shape[0]):
        out[c] = area[rr, c if ac > 1 else 0]



@njit(inline="always")
def _add_value(sums, at, v, a):  # pragma: no cover
    """Add a valid pixel of value ``v`` and area ``a`` to the running sums ``[pixels, Σv, Σa, Σv·a]``
    at ``sums[at : at + 4]``."""
    sums[at] += 1.0
    sums[at + 1] += v
    sums[at + 2] += a
    sums[at + 3] += v * a

# What a kernel taking one of the two sources of pixel areas passes for the other.
_NO_AREA = np.zeros((1, 1), dtype=np.float64)
_NO_LATTICE = np.zeros((0, 0), dtype=np.float64)
_NO_NODES = np.zeros(0, dtype=np.int64)


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
        for cc in range(out_cols):
            start, end = _cell_columns(cc, cell, c0, cols)
            table = counts[cr, cc]
            for c in range(start, end):
                table[class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)] += 1
    return counts


@njit(nogil=True, cache=True)
def cell_areas(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, area, r0, c0):  # pragma: no cover
    """Like :func:`cell_counts` but sums each pixel's true area (m², float64). ``area`` broadcasts
    to the chunk: ``(rows, 1)``, ``(1, 1)`` or ``(rows, cols)``."""
    return _class_areas(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0,
                        area, _NO_LATTICE, _NO_NODES, _NO_NODES, 0, 0)


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
            _add_value(sums[u], 0, v, a)
    return sums


@njit(nogil=True, cache=True)
def cell_value_sums(values, nodata, has_nodata, cell, out_rows, out_cols, area, r0, c0):  # pragma: no cover
    """``[pixels, Σv, Σa, Σv·a]`` per (cell row, cell column) of a float raster's valid pixels in
    one chunk whose first pixel lies ``(r0, c0)`` into its cell: float64 ``(out_rows, out_cols, 4)``.
    ``area`` broadcasts to the chunk."""
    return _value_sums(values, nodata, has_nodata, cell, out_rows, out_cols, r0, c0, area, _NO_LATTICE, _NO_NODES, _NO_NODES, 0, 0)


# The same sums with each pixel's true area rebuilt row by row from the grid's area lattice (as the
# county kernels of carbonscape.kernels.area do): no per-pixel area block is ever made. Building a
# chunk's (rows, cols) area block instead took 3/4 of the cell pass at 10^8 pixels (benchmarks/cells.py).

@njit(nogil=True, cache=True)
def _class_areas(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0,
                 area, lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_areas` with pixel areas from either source (see :func:`_row_areas`)."""
    sums = np.zeros((out_rows, out_cols, n_cols), dtype=np.float64)
    rows, cols = codes.shape
    row = np.empty(cols, dtype=np.float64)
    for r in range(rows):
        _row_areas(r, area, lattice, node_rows, node_cols, row0, col0, row)
        cr = (r + r0) // cell
        for cc in range(out_cols):
            start, end = _cell_columns(cc, cell, c0, cols)
            table = sums[cr, cc]
            for c in range(start, end):
                table[class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)] += row[c]
    return sums


@njit(nogil=True, cache=True)
def cell_areas_lattice(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0,
                       lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_areas` with pixel areas from ``lattice`` (see :func:`carbonscape.kernels.area.lattice_row`);
    ``row0, col0`` are the chunk's first pixel on the whole grid."""
    return _class_areas(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0,
                        _NO_AREA, lattice, node_rows, node_cols, row0, col0)


@njit(nogil=True, cache=True)
def _value_sums(values, nodata, has_nodata, cell, out_rows, out_cols, r0, c0, area, lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_value_sums` with pixel areas from either source (see :func:`_row_areas`)."""
    sums = np.zeros((out_rows, out_cols, 4), dtype=np.float64)
    rows, cols = values.shape
    row = np.empty(cols, dtype=np.float64)
    for r in range(rows):
        _row_areas(r, area, lattice, node_rows, node_cols, row0, col0, row)
        cr = (r + r0) // cell
        for cc in range(out_cols):
            start, end = _cell_columns(cc, cell, c0, cols)
            table = sums[cr, cc]
            for c in range(start, end):
                v = np.float64(values[r, c])
                if not np.isfinite(v) or (has_nodata and v == nodata):
                    continue
                a = row[c]
                _add_value(table, 0, v, a)
    return sums


@njit(nogil=True, cache=True)
def cell_value_sums_lattice(values, nodata, has_nodata, cell, out_rows, out_cols, r0, c0, lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_value_sums` with pixel areas from ``lattice``."""
    return _value_sums(values, nodata, has_nodata, cell, out_rows, out_cols, r0, c0, _NO_AREA, lattice, node_rows, node_cols, row0, col0)


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
        for cc in range(out_cols):
            start, end = _cell_columns(cc, cell, c0, cols)
            table = sums[cr, cc]
            for c in range(start, end):
                k = class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)
                table[k] += 1.0
                table[n_cols + k] += area[c]
    return sums


# Corrected-density areas per cell: Σ a·f_p·F[county, p] per (cell, pool, class column), the cell
# counterpart of carbonscape.kernels.continuous.factor_areas (per county). A county's factor of a
# table is constant over the county, so the county pass multiplies its sums by it afterwards; a
# cell holds pixels of several counties, so here it is applied per pixel, through the county ids.

@njit(nogil=True, cache=True)
def _factor_areas(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0,
                  factors, pool_raster, counties, by_county, area, lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_factor_areas` with pixel areas from either source (see :func:`_row_areas`)."""
    n_pools = pool_raster.shape[0]
    n_zones = by_county.shape[0]
    sums = np.zeros((out_rows, out_cols, n_pools * n_cols), dtype=np.float64)
    rows, cols = codes.shape
    row = np.empty(cols, dtype=np.float64)
    for r in range(rows):
        _row_areas(r, area, lattice, node_rows, node_cols, row0, col0, row)
        cr = (r + r0) // cell
        for cc in range(out_cols):
            start, end = _cell_columns(cc, cell, c0, cols)
            table = sums[cr, cc]
            for c in range(start, end):
                k = class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)
                a = row[c]
                z = 0
                if n_zones > 0:
                    z = np.int64(counties[r, c])
                    if z < 0 or z >= n_zones:
                        raise ValueError("zone id out of range of the zone table")
                for p in range(n_pools):
                    f = 1.0
                    q = pool_raster[p]
                    if q >= 0:
                        v = np.float64(factors[q, r, c])
                        if np.isfinite(v):
                            f = v
                    if n_zones > 0:
                        f *= by_county[z, p]
                    table[p * n_cols + k] += a * f
    return sums


@njit(nogil=True, cache=True)
def cell_factor_areas(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0,
                      factors, pool_raster, counties, by_county, area):  # pragma: no cover
    """Σ a·f_p·F[z, p] (m²) per (cell row, cell column, corrected pool ``p``, class column) of one
    chunk: float64 ``(out_rows, out_cols, n_pools·n_cols)``, pool ``p``'s columns at
    ``[p·n_cols : (p + 1)·n_cols]``.

    ``factors`` ``(n_rasters, rows, cols)`` are the chunk's factor rasters; ``pool_raster[p]`` the
    raster of pool ``p`` (−1: none, f = 1); a NaN factor counts as 1 (the pool's density left
    uncorrected there, as in :func:`carbonscape.kernels.continuous.factor_areas`). ``by_county``
    ``(n_zones, n_pools)`` is each county's factor of a table, read through ``counties`` (the
    pixel's county id; a ``(0, n_pools)`` table: none, and ``counties`` is not read). ``area``
    broadcasts to the chunk (``(rows, 1)``, ``(1, 1)`` or ``(rows, cols)``)."""
    return _factor_areas(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0,
                         factors, pool_raster, counties, by_county, area, _NO_LATTICE, _NO_NODES, _NO_NODES, 0, 0)


@njit(nogil=True, cache=True)
def cell_factor_areas_lattice(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0,
                              factors, pool_raster, counties, by_county, lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_factor_areas` with pixel areas from ``lattice`` (see
    :func:`carbonscape.kernels.area.lattice_row`); ``row0, col0`` are the chunk's first pixel on the whole grid."""
    return _factor_areas(codes, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0,
                         factors, pool_raster, counties, by_county, _NO_AREA, lattice, node_rows, node_cols, row0, col0)


# A value per county id summed per cell, looked up from the ids in the kernel (no float raster of
# the values is built): each cell's demand density from its counties', or the region's area.

@njit(nogil=True, cache=True)
def _lookup_sums(ids, table, cell, out_rows, out_cols, r0, c0, area, lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_lookup_sums` with pixel areas from either source (see :func:`_row_areas`)."""
    n_table = table.shape[0]
    sums = np.zeros((out_rows, out_cols, 4), dtype=np.float64)
    rows, cols = ids.shape
    row = np.empty(cols, dtype=np.float64)
    for r in range(rows):
        _row_areas(r, area, lattice, node_rows, node_cols, row0, col0, row)
        cr = (r + r0) // cell
        for cc in range(out_cols):
            start, end = _cell_columns(cc, cell, c0, cols)
            out = sums[cr, cc]
            for c in range(start, end):
                z = np.int64(ids[r, c])
                if z <= 0:
                    continue
                if n_table == 0:
                    v = 1.0
                else:
                    if z >= n_table:
                        raise ValueError("zone id out of range of the zone table")
                    v = table[z]
                    if not np.isfinite(v):
                        continue
                a = row[c]
                _add_value(out, 0, v, a)
    return sums


@njit(nogil=True, cache=True)
def cell_lookup_sums(ids, table, cell, out_rows, out_cols, area, r0, c0):  # pragma: no cover
    """``[pixels, Σv, Σa, Σv·a]`` per (cell row, cell column) of one chunk with ``v = table[id]``
    for the pixels of county id > 0 (a NaN entry: no value); an empty ``table`` gives v = 1 (the
    sums are then the region's pixels and area). float64 ``(out_rows, out_cols, 4)``; ``area``
    broadcasts to the chunk. An id past the table raises."""
    return _lookup_sums(ids, table, cell, out_rows, out_cols, r0, c0, area, _NO_LATTICE, _NO_NODES, _NO_NODES, 0, 0)


@njit(nogil=True, cache=True)
def cell_lookup_sums_lattice(ids, table, cell, out_rows, out_cols, r0, c0, lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_lookup_sums` with pixel areas from ``lattice``."""
    return _lookup_sums(ids, table, cell, out_rows, out_cols, r0, c0, _NO_AREA, lattice, node_rows, node_cols, row0, col0)


# The cell pass of a study region in one kernel: pixels and true areas per class column of the
# pixels inside the region (county id > 0; those outside go to the nodata column), the region's
# sums and a value per county id's sums, in one read of the codes and the ids. As three kernels
# (masked counts, the region's area, the values) the pass took twice the county pass.

@njit(nogil=True, cache=True)
def _region_sums(codes, ids, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0, table,
                 area, lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_region_sums` with pixel areas from either source (see :func:`_row_areas`)."""
    n_table = table.shape[0]
    base = 2 * n_cols
    sums = np.zeros((out_rows, out_cols, base + 8), dtype=np.float64)
    rows, cols = codes.shape
    row = np.empty(cols, dtype=np.float64)
    for r in range(rows):
        _row_areas(r, area, lattice, node_rows, node_cols, row0, col0, row)
        cr = (r + r0) // cell
        for cc in range(out_cols):
            start, end = _cell_columns(cc, cell, c0, cols)
            out = sums[cr, cc]
            for c in range(start, end):
                a = row[c]
                z = np.int64(ids[r, c])
                if z <= 0:
                    out[nodata_col] += 1.0
                    out[n_cols + nodata_col] += a
                    continue
                k = class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)
                out[k] += 1.0
                out[n_cols + k] += a
                _add_value(out, base, 1.0, a)
                if n_table > 0:
                    if z >= n_table:
                        raise ValueError("zone id out of range of the zone table")
                    v = table[z]
                    if np.isfinite(v):
                        _add_value(out, base + 4, v, a)
    return sums


@njit(nogil=True, cache=True)
def cell_region_sums(codes, ids, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0, table, area):  # pragma: no cover
    """Per (cell row, cell column) of one chunk, float64 ``(out_rows, out_cols, 2·n_cols + 8)``:
    pixels ``[:n_cols]`` and true areas (m²) ``[n_cols:2·n_cols]`` per class column of the pixels
    whose county id is > 0 (a pixel outside counts in ``nodata_col``), then the region's
    ``[pixels, Σ1, Σa, Σa]`` and the ``[pixels, Σv, Σa, Σv·a]`` of ``v = table[id]`` (NaN: no
    value; an empty ``table``: zeros). ``area`` broadcasts to the chunk. An id past a non-empty
    table raises."""
    return _region_sums(codes, ids, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0, table,
                        area, _NO_LATTICE, _NO_NODES, _NO_NODES, 0, 0)


@njit(nogil=True, cache=True)
def cell_region_sums_lattice(codes, ids, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0, table,
                             lattice, node_rows, node_cols, row0, col0):  # pragma: no cover
    """:func:`cell_region_sums` with pixel areas from ``lattice``."""
    return _region_sums(codes, ids, lut, offset, n_cols, unknown_col, nodata, nodata_col, cell, out_rows, out_cols, r0, c0, table,
                        _NO_AREA, lattice, node_rows, node_cols, row0, col0)
