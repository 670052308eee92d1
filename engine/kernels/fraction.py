"""Exact covered fraction of every pixel a polygon's boundary crosses (the quantity exactextract
computes), by signed-area accumulation.

Why our own kernel: exactextract (isciences/exactextract) walks each ring through the cells,
closes each cell's traversals along the cell's sides and flood-fills the interior; it is exact but
runs one polygon at a time over its whole bounding box and is ~10× slower than our supply pass
(benchmarks/). Here each edge of every ring is cut at pixel rows and its signed area is spread
over the cells of its row analytically, the way font rasterizers compute exact anti-aliasing
coverage (font-rs's accumulation buffer, Levien 2016): summed along a row, those contributions
give each cell's covered area exactly (Green's theorem: the area is a sum over edges), holes
subtracting by their opposite winding. Only cells an edge touches get contributions, so the work
is proportional to the boundary's length in pixels, never to the polygon's area; cells in between
are wholly inside or wholly outside and stay with the pixel-centre id raster.

The supply pass calls :func:`share_by_rings` (or :func:`share_by_spans`) once per chunk with every
county ring clipped to the chunk: every edge of every ring is spread into (row, column, value)
entries bucketed by row over the whole chunk (one counting sort: the edges walked once to count
each row's entries, once to write them), then the chunk is taken row by
row, in memory order: each polygon crossing the row sorts its few entries by column, sums them
along the row into its cells' fractions, and applies them to the (county, class) table at once,
while the row's land use, areas and pixel-centre spans are in cache (polygon by polygon, one
polygon's cells lay ~200 rows apart: a cache miss a cell; benchmarks/README.md, issue 7). The result is exactextract's "coverage fraction" of each cell
(Baston, isciences/exactextract: the exact area of the cell inside the polygon over the cell's
area), reached by Green's theorem instead of exactextract's ring traversal and flood fill; tests
compare the two on real CORINE and MODIS excerpts within 1e-6.

Coordinates are pixel units of a window: ``x = column``, ``y = row`` (so a pixel ``(r, c)`` is the
unit square ``[c, c+1] × [r, r+1]``); rings must lie within ``0 <= x <= width``, ``0 <= y <= height``
(callers clip polygons to the window first).
"""

from __future__ import annotations

import numpy as np
from carbonscape.kernels.area import lattice_row
from carbonscape.kernels.classes import class_column
from carbonscape.kernels.spans import grown
from numba import njit


@njit(nogil=True, cache=True)
def _edge(x0, y0, x1, y1, height, slots, cols, values, polygons, polygon, fill):  # pragma: no cover
    """Spread one edge's signed area over the cells of each row it crosses (font-rs ``draw_line``).

    Each entry (``row``, ``col``, ``value``) of a row ``0 <= row < height`` goes to that row's bucket:
    when ``fill``, into ``cols``/``values``/``polygons`` (the last: ``polygon``) at position
    ``slots[row]``; ``slots[row]`` is advanced either way (a first pass only counts).
    """
    if y0 == y1:
        # No area, but the cells it crosses are partly covered when it runs inside a row of pixels
        # (a horizontal edge between two of the row's lines): list them (value 0), so that the
        # running sum along the row is read there too, not only at cells other edges cross.
        row = int(np.floor(y0))
        if row == y0 or row < 0 or row >= height:
            return
        lo, hi = (x0, x1) if x0 < x1 else (x1, x0)
        n = slots[row]
        for col in range(int(np.floor(lo)), int(np.ceil(hi))):
            if fill:
                cols[n] = col
                values[n] = 0.0
                polygons[n] = polygon
            n += 1
        slots[row] = n
        return
    if y0 < y1:
        direction = 1.0
        ax, ay, bx, by = x0, y0, x1, y1
    else:
        direction = -1.0
        ax, ay, bx, by = x1, y1, x0, y0
    dxdy = (bx - ax) / (by - ay)
    x = ax
    row = int(np.floor(ay))
    last = int(np.ceil(by))
    if last > height:
        last = height
    while row < last:
        top = row if row > ay else ay
        bottom = row + 1.0 if row + 1.0 < by else by
        dy = bottom - top
        xnext = x + dxdy * dy
        if row < 0:  # above the window's margin (a clipped vertex rounded out of it): no cell of the window
            x = xnext
            row += 1
            continue
        d = dy * direction
        lo, hi = (x, xnext) if x < xnext else (xnext, x)
        lo_floor = np.floor(lo)
        i0 = int(lo_floor)
        hi_ceil = np.ceil(hi)
        i1 = int(hi_ceil)
        n = slots[row]
        if i1 <= i0 + 1:
            xmf = 0.5 * (x + xnext) - lo_floor
            if fill:
                cols[n] = i0
                values[n] = d - d * xmf
                cols[n + 1] = i0 + 1
                values[n + 1] = d * xmf
                polygons[n] = polygon
                polygons[n + 1] = polygon
            n += 2
        else:
            s = 1.0 / (hi - lo)
            x0f = lo - lo_floor
            a0 = 0.5 * s * (1.0 - x0f) * (1.0 - x0f)
            x1f = hi - hi_ceil + 1.0
            am = 0.5 * s * x1f * x1f
            if fill:
                cols[n] = i0
                values[n] = d * a0
                polygons[n] = polygon
            n += 1
            if i1 == i0 + 2:
                if fill:
                    cols[n] = i0 + 1
                    values[n] = d * (1.0 - a0 - am)
                    polygons[n] = polygon
                n += 1
            else:
                a1 = s * (1.5 - x0f)
                if fill:
                    cols[n] = i0 + 1
                    values[n] = d * (a1 - a0)
                    polygons[n] = polygon
                n += 1
                for xi in range(i0 + 2, i1 - 1):
                    if fill:
                        cols[n] = xi
                        values[n] = d * s
                        polygons[n] = polygon
                    n += 1
                a2 = a1 + (i1 - i0 - 3) * s
                if fill:
                    cols[n] = i1 - 1
                    values[n] = d * (1.0 - a2 - am)
                    polygons[n] = polygon
                n += 1
            if fill:
                cols[n] = i1
                values[n] = d * am
                polygons[n] = polygon
            n += 1
        slots[row] = n
        x = xnext
        row += 1


@njit(nogil=True, cache=True)
def _row_entries(sx, sy, ring_starts, polygon_starts, order, height):  # pragma: no cover
    """Every edge entry of every polygon of a window, bucketed by row (one counting sort).

    ``sx, sy`` are the rings' vertices shifted by the one-pixel margin (window row ``r`` is buffer
    row ``r + 1``; ``height`` the window's); the polygons are walked in ``order`` (indices into
    ``polygon_starts``). Returns ``(row_starts, cols, values, polygons)``: buffer row ``r``'s
    entries are ``row_starts[r] .. row_starts[r + 1] - 1``, in the order the edges made them, so
    each polygon's entries of a row are contiguous, the polygons in ``order`` (``polygons``: int32
    index of the polygon).
    """
    buffer_h = height + 2
    row_starts = np.zeros(buffer_h + 1, dtype=np.int64)
    none_i = np.empty(0, dtype=np.int32)
    none_f = np.empty(0, dtype=np.float64)
    counts = row_starts[1:]
    for k in order:
        for m in range(polygon_starts[k], polygon_starts[k + 1]):
            for i in range(ring_starts[m], ring_starts[m + 1] - 1):
                _edge(sx[i], sy[i], sx[i + 1], sy[i + 1], buffer_h, counts, none_i, none_f, none_i, k, False)
    for r in range(buffer_h):
        row_starts[r + 1] += row_starts[r]
    n = row_starts[buffer_h]
    cols = np.empty(n, dtype=np.int32)
    values = np.empty(n, dtype=np.float64)
    polygons = np.empty(n, dtype=np.int32)
    slots = row_starts[:buffer_h].copy()
    for k in order:
        for m in range(polygon_starts[k], polygon_starts[k + 1]):
            for i in range(ring_starts[m], ring_starts[m + 1] - 1):
                _edge(sx[i], sy[i], sx[i + 1], sy[i + 1], buffer_h, slots, cols, values, polygons, k, True)
    return row_starts, cols, values, polygons


@njit(nogil=True, cache=True)
def _group_cells(cols, values, a, b, width, out_cols, out_fractions):  # pragma: no cover
    """One polygon's entries ``a .. b - 1`` of one row (buffer columns) sorted by column in place
    (stable: a cell's entries keep the edges' order), summed along the row: the covered fraction
    of each window cell they reach, into ``out_cols`` (window column) / ``out_fractions`` in
    increasing column order; returns how many."""
    if b - a > 32:  # a boundary running along the row: many entries
        order = np.argsort(cols[a:b], kind="mergesort")
        seg_c = cols[a:b][order]
        seg_v = values[a:b][order]
        cols[a:b] = seg_c
        values[a:b] = seg_v
    else:
        for i in range(a + 1, b):
            c, v = cols[i], values[i]
            j = i - 1
            while j >= a and cols[j] > c:
                cols[j + 1] = cols[j]
                values[j + 1] = values[j]
                j -= 1
            cols[j + 1] = c
            values[j + 1] = v
    m = 0
    running = 0.0
    i = a
    while i < b:
        col = cols[i]
        total = 0.0
        while i < b and cols[i] == col:
            total += values[i]
            i += 1
        running += total
        if 1 <= col <= width:
            f = abs(running)
            if f > 1.0:
                f = 1.0
            if f > 1e-12:
                out_cols[m] = col - 1
                out_fractions[m] = f
                m += 1
    return m


@njit(nogil=True, cache=True)
def _left_to_right(sx, ring_starts, polygon_starts):  # pragma: no cover
    """The polygons ordered by their leftmost vertex (stable): walked in this order, the polygons
    crossing a row come nearly in column order."""
    n_polygons = polygon_starts.shape[0] - 1
    lefts = np.empty(n_polygons, dtype=np.float64)
    for k in range(n_polygons):
        left = np.inf
        for i in range(ring_starts[polygon_starts[k]], ring_starts[polygon_starts[k + 1]]):
            if sx[i] < left:
                left = sx[i]
        lefts[k] = left
    return np.argsort(lefts, kind="mergesort")


@njit(nogil=True, cache=True)
def _chunk_rows(sx, sy, ring_starts, polygon_starts, order, height):  # pragma: no cover
    """:func:`_row_entries`, plus the scratch buffers of one row's cells (int64 columns, float64
    fractions) sized for the row with the most entries."""
    row_starts, cols, values, polygons = _row_entries(sx, sy, ring_starts, polygon_starts, order, height)
    longest = 0
    for r in range(row_starts.shape[0] - 1):
        if row_starts[r + 1] - row_starts[r] > longest:
            longest = row_starts[r + 1] - row_starts[r]
    return row_starts, cols, values, polygons, np.empty(longest, dtype=np.int64), np.empty(longest, dtype=np.float64)


@njit(nogil=True, cache=True)
def _group_end(polygons, i, b):  # pragma: no cover
    """The end of the polygon's entries that start at ``i`` in a row ending at ``b``."""
    j = i + 1
    while j < b and polygons[j] == polygons[i]:
        j += 1
    return j


@njit(nogil=True, cache=True)
def polygon_fractions(xs, ys, ring_starts, width, height):  # pragma: no cover
    """Covered fraction of every pixel of a ``height × width`` window that the polygon's boundary
    touches.

    Parameters
    ----------
    xs, ys
        float64 vertices of every ring, each ring closed (first vertex repeated last), in window
        pixel units; all rings of one polygon or multipolygon, any orientation as long as holes
        wind opposite to their shells. Vertices may reach one pixel beyond the window (polygons
        clipped with a margin); what lies beyond counts for nothing.
    ring_starts
        int64 offsets of each ring in ``xs``/``ys``, with the total length last.
    width, height
        The window in pixels.

    Returns
    -------
    (pixels, fractions)
        int64 ``row * width + col`` in increasing order and float64 fractions in ``(0, 1]``;
        pixels absent are wholly inside or wholly outside the polygon.
    """
    # Every ring as one polygon, through the row-by-row kernel the supply pass uses.
    polygon_starts = np.array([0, ring_starts.shape[0] - 1], dtype=np.int64)
    pixels, _, fractions = ring_fractions(xs, ys, ring_starts, polygon_starts, np.zeros(1, dtype=np.int64), width, height)
    return pixels, fractions


@njit(nogil=True, cache=True)
def _pixel_area_and_column(r, c, codes, lut, offset, unknown_col, nodata, nodata_col, row_areas, lattice, node_rows, node_cols, row0, col0, area):  # pragma: no cover
    """A boundary pixel's true area (m²) and its class column: what both ways of sharing boundary
    pixels (:func:`correct_by_fractions`, :func:`share_by_rings`) need of pixel ``(r, c)`` of the chunk.

    The area is ``row_areas[r]`` when ``row_areas`` has one value per row of the chunk (areas
    varying by row only, or uniform), else the pixel's own from the lattice
    (:func:`carbonscape.kernels.area.lattice_row` at global pixel ``(row0 + r, col0 + c)``, written
    into the one-element scratch ``area``). Codes map to columns as in
    :func:`carbonscape.kernels.classes.class_column`.
    """
    if row_areas.shape[0] == codes.shape[0]:
        a = row_areas[r]
    else:
        lattice_row(lattice, node_rows, node_cols, row0 + r, col0 + c, area)
        a = area[0]
    col = class_column(np.int64(codes[r, c]), lut, offset, nodata, nodata_col, unknown_col)
    return a, col


@njit(nogil=True, cache=True)
def correct_by_fractions(table, zones, codes, lut, offset, unknown_col, nodata, nodata_col, lattice, node_rows, node_cols, row0, col0, pixels, counties, fractions):  # pragma: no cover
    """Move boundary pixels from their pixel-centre county to the counties that cover them.

    ``table`` ``(n_zones, n_cols)`` holds the chunk's true areas under the pixel-centre rule (each
    pixel wholly in ``zones[r, c]``); for every pixel listed in ``pixels`` (``r * width + c`` of
    the chunk, sorted, one entry per covering county), its true area (from the lattice, as
    :mod:`carbonscape.kernels.area` computes it) is taken back from that county and given to each
    listed county by its fraction, the rest to id 0 (outside every county). Areas and columns:
    :func:`_pixel_area_and_column`, the helper :func:`share_by_rings` uses too.
    """
    width = codes.shape[1]
    n = pixels.shape[0]
    area = np.empty(1, dtype=np.float64)
    by_lattice = np.empty(0, dtype=np.float64)  # no per-row areas: every pixel's from the lattice
    i = 0
    while i < n:
        p = pixels[i]
        r = p // width
        c = p - r * width
        a, col = _pixel_area_and_column(r, c, codes, lut, offset, unknown_col, nodata, nodata_col, by_lattice, lattice, node_rows, node_cols,
                                        row0, col0, area)
        table[np.int64(zones[r, c]), col] -= a
        rest = 1.0
        while i < n and pixels[i] == p:
            table[counties[i], col] += fractions[i] * a
            rest -= fractions[i]
            i += 1
        if rest > 1e-12:
            table[0, col] += rest * a


@njit(nogil=True, cache=True)
def ring_fractions(xs, ys, ring_starts, polygon_starts, counties, width, height):  # pragma: no cover
    """Every (pixel, county, covered fraction) of a window, from all its polygons' rings at once.

    Parameters
    ----------
    xs, ys, ring_starts
        As :func:`polygon_fractions`, for the rings of every polygon of the window one after the
        other (each polygon's shells and holes wound opposite ways).
    polygon_starts
        int64 ``(n_polygons + 1,)``: polygon ``k`` owns rings ``polygon_starts[k] .. polygon_starts[k + 1] - 1``.
    counties
        int64 ``(n_polygons,)``: each polygon's county id (one id per polygon: parts of one county
        must be one polygon, so a pixel two of its parts touch is counted once).
    width, height
        The window in pixels.

    Returns
    -------
    (pixels, counties, fractions)
        int64, int64, float64 entries, sorted by pixel (``row * width + col``), then by polygon.
    """
    # Shift by the one-pixel margin so every coordinate is >= 0 (window row r is buffer row r + 1).
    order = np.arange(polygon_starts.shape[0] - 1)
    row_starts, cols, values, polygons, cell_cols, cell_fractions = _chunk_rows(xs + 1.0, ys + 1.0, ring_starts, polygon_starts, order, height)
    size = 4096
    all_pixels = np.empty(size, dtype=np.int64)
    all_counties = np.empty(size, dtype=np.int64)
    all_fractions = np.empty(size, dtype=np.float64)
    total = 0
    for r in range(height):
        a, b = row_starts[r + 1], row_starts[r + 2]
        i = a
        while i < b:
            k = polygons[i]
            j = _group_end(polygons, i, b)
            m = _group_cells(cols, values, i, j, width, cell_cols, cell_fractions)
            if total + m > size:
                size = 2 * (total + m)
                all_pixels = grown(all_pixels, total, size)
                all_counties = grown(all_counties, total, size)
                all_fractions = grown(all_fractions, total, size)
            for q in range(m):
                all_pixels[total + q] = r * width + cell_cols[q]
                all_counties[total + q] = counties[k]
                all_fractions[total + q] = cell_fractions[q]
            total += m
            i = j
    # Each row's polygons one after the other: sorted by pixel, a pixel's polygons staying in order.
    order = np.argsort(all_pixels[:total], kind="mergesort")
    return all_pixels[:total][order], all_counties[:total][order], all_fractions[:total][order]


@njit(nogil=True, cache=True)
def share_by_rings(table, zones, codes, lut, offset, unknown_col, nodata, nodata_col, row_areas, lattice, node_rows, node_cols, row0, col0,
                   xs, ys, ring_starts, polygon_starts, counties):  # pragma: no cover
    """Fraction mode in one chunk, straight from the county rings: move every boundary pixel from
    its pixel-centre county to the counties covering it, by exact covered fraction.

    ``table`` ``(n_zones, n_cols)`` holds the chunk's true areas under the pixel-centre rule (each
    pixel wholly in ``zones[r, c]``). Row by row, each polygon's boundary cells in the row are
    found and their covered fractions ``f`` computed as in :func:`polygon_fractions` (signed-area
    accumulation; the quantity exactextract computes, isciences/exactextract's "coverage
    fraction"), then applied at once: a cell of county ``k`` with
    pixel area ``a`` adds ``f a`` to ``k`` and takes it from id 0 (outside every county); the
    county that the pixel-centre rule gave the whole pixel to, which its own boundary crosses
    there, gives ``a`` back to id 0. Summed over a pixel's polygons this leaves ``f_k a`` with
    every county ``k`` and ``(1 - Σ f) a`` outside (the rule of :func:`correct_by_fractions`).

    Pixel areas are ``row_areas[r]`` for the chunk's row ``r`` when given, else each pixel's from
    the lattice (as :func:`_pixel_area_and_column`); class columns as
    :func:`carbonscape.kernels.classes.class_column`. Rings are in the chunk's pixel
    units (``x = column``, ``y = row``), clipped to it with at most a one-pixel margin.
    """
    _share(table, zones, codes, lut, offset, unknown_col, nodata, nodata_col, row_areas, lattice, node_rows, node_cols, row0, col0,
           xs, ys, ring_starts, polygon_starts, counties, _NO_SPANS, _NO_SPANS, _NO_SPANS, _NO_SPANS)


_NO_SPANS = np.zeros(1, dtype=np.int64)


@njit(nogil=True, cache=True)
def share_by_spans(table, codes, lut, offset, unknown_col, nodata, nodata_col, row_areas, lattice, node_rows, node_cols, row0, col0,
                   xs, ys, ring_starts, polygon_starts, counties, span_starts, span_c0, span_c1, span_ids):  # pragma: no cover
    """:func:`share_by_rings` without an id raster: the county whose pixel-centre rule holds a
    boundary pixel is read from the chunk's spans (:func:`carbonscape.kernels.spans.chunk_spans`,
    the spans :func:`carbonscape.kernels.spans.span_tables` counted the chunk from)."""
    no_zones = np.zeros((0, 0), dtype=np.int64)
    _share(table, no_zones, codes, lut, offset, unknown_col, nodata, nodata_col, row_areas, lattice, node_rows, node_cols, row0, col0,
           xs, ys, ring_starts, polygon_starts, counties, span_starts, span_c0, span_c1, span_ids)


@njit(nogil=True, cache=True)
def _share(table, zones, codes, lut, offset, unknown_col, nodata, nodata_col, row_areas, lattice, node_rows, node_cols, row0, col0,
           xs, ys, ring_starts, polygon_starts, counties, span_starts, span_c0, span_c1, span_ids):  # pragma: no cover
    """The body of :func:`share_by_rings` and :func:`share_by_spans`: the pixel-centre county of a
    boundary pixel from ``zones`` or, when ``zones`` is empty, from the spans."""
    height, width = codes.shape
    by_spans = zones.shape[0] == 0
    by_row = row_areas.shape[0] == height
    area = np.empty(1, dtype=np.float64)
    sx = xs + 1.0
    sy = ys + 1.0
    order = _left_to_right(sx, ring_starts, polygon_starts)
    row_starts, cols, values, polygons, cell_cols, cell_fractions = _chunk_rows(sx, sy, ring_starts, polygon_starts, order, height)
    s = s_start = s_stop = s_first = 0
    # Row by row (window row r is buffer row r + 1): every polygon crossing the row, one after the
    # other from left to right (by their leftmost vertices); the row's land use, areas and spans
    # are read while they are in cache; each polygon's cells come in increasing column order, and
    # the pixel-centre holder of a cell is found by walking the row's spans from where the
    # previous polygon's first cell was (back a step or two, then forward), with no search.
    for r in range(height):
        a, b = row_starts[r + 1], row_starts[r + 2]
        if a == b:
            continue
        line = codes[r]
        a_row = row_areas[r] if by_row else 0.0
        if by_spans:
            s_start, s_stop = span_starts[r], span_starts[r + 1]
            s = s_start
        i = a
        while i < b:
            k = polygons[i]
            j = _group_end(polygons, i, b)
            m = _group_cells(cols, values, i, j, width, cell_cols, cell_fractions)
            i = j
            if m == 0:
                continue
            county = counties[k]
            if by_spans:
                c = cell_cols[0]
                while s > s_start and span_c1[s - 1] > c:
                    s -= 1
                while s < s_stop and span_c1[s] <= c:
                    s += 1
                s_first = s
            for q in range(m):
                c = cell_cols[q]
                col = class_column(np.int64(line[c]), lut, offset, nodata, nodata_col, unknown_col)
                if by_row:
                    pixel_area = a_row
                else:
                    lattice_row(lattice, node_rows, node_cols, row0 + r, col0 + c, area)
                    pixel_area = area[0]
                moved = cell_fractions[q] * pixel_area
                table[county, col] += moved
                table[0, col] -= moved
                if by_spans:
                    while s < s_stop and span_c1[s] <= c:
                        s += 1
                    holder = span_ids[s] if s < s_stop and span_c0[s] <= c else 0
                else:
                    holder = np.int64(zones[r, c])
                if holder == county:
                    table[county, col] -= pixel_area
                    table[0, col] += pixel_area
            if by_spans:
                s = s_first


def polygon_fractions_numpy(geom, transform, shape):
    """Plain reference (shapely): the covered fraction of every pixel of ``shape`` under ``geom``
    (in the window's CRS; ``transform`` its affine), as a dense float64 array. Slow; tests only."""
    import shapely
    from affine import Affine

    affine = Affine(*tuple(transform)[:6])
    rows, cols = shape
    out = np.zeros(shape)
    for r in range(rows):
        for c in range(cols):
            x0, y0 = affine * (c, r)
            x1, y1 = affine * (c + 1, r + 1)
            cell = shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            out[r, c] = shapely.area(shapely.intersection(cell, geom)) / shapely.area(cell)
    return out
