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

The supply pass calls :func:`share_by_rings` once per chunk with every county ring clipped to the
chunk (kept in the county store): per polygon, its boundary cells and their fractions are found
and applied to the (county, class) table at once, so no table of entries is ever written, read
or sorted across polygons. The result is exactextract's "coverage fraction" of each cell
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
from numba import njit


@njit(nogil=True, cache=True)
def _edge(x0, y0, x1, y1, width, height, keys, values, n, fill):  # pragma: no cover
    """Spread one edge's signed area over the cells of each row it crosses (font-rs ``draw_line``).

    Writes entries ``(row * (width + 2) + col, value)`` from position ``n`` when ``fill``; returns
    the new count either way (a first pass only counts).
    """
    if y0 == y1:
        # No area, but the cells it crosses are partly covered when it runs inside a row of pixels
        # (a horizontal edge between two of the row's lines): list them (value 0), so that the
        # running sum along the row is read there too, not only at cells other edges cross.
        row = int(np.floor(y0))
        if row == y0 or row < 0 or row >= height:
            return n
        lo, hi = (x0, x1) if x0 < x1 else (x1, x0)
        for col in range(int(np.floor(lo)), int(np.ceil(hi))):
            if fill:
                keys[n] = row * (width + 2) + col
                values[n] = 0.0
            n += 1
        return n
    if y0 < y1:
        direction = 1.0
        ax, ay, bx, by = x0, y0, x1, y1
    else:
        direction = -1.0
        ax, ay, bx, by = x1, y1, x0, y0
    dxdy = (bx - ax) / (by - ay)
    stride = width + 2
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
        d = dy * direction
        lo, hi = (x, xnext) if x < xnext else (xnext, x)
        lo_floor = np.floor(lo)
        i0 = int(lo_floor)
        hi_ceil = np.ceil(hi)
        i1 = int(hi_ceil)
        base = row * stride
        if i1 <= i0 + 1:
            xmf = 0.5 * (x + xnext) - lo_floor
            if fill:
                keys[n] = base + i0
                values[n] = d - d * xmf
                keys[n + 1] = base + i0 + 1
                values[n + 1] = d * xmf
            n += 2
        else:
            s = 1.0 / (hi - lo)
            x0f = lo - lo_floor
            a0 = 0.5 * s * (1.0 - x0f) * (1.0 - x0f)
            x1f = hi - hi_ceil + 1.0
            am = 0.5 * s * x1f * x1f
            if fill:
                keys[n] = base + i0
                values[n] = d * a0
            n += 1
            if i1 == i0 + 2:
                if fill:
                    keys[n] = base + i0 + 1
                    values[n] = d * (1.0 - a0 - am)
                n += 1
            else:
                a1 = s * (1.5 - x0f)
                if fill:
                    keys[n] = base + i0 + 1
                    values[n] = d * (a1 - a0)
                n += 1
                for xi in range(i0 + 2, i1 - 1):
                    if fill:
                        keys[n] = base + xi
                        values[n] = d * s
                    n += 1
                a2 = a1 + (i1 - i0 - 3) * s
                if fill:
                    keys[n] = base + i1 - 1
                    values[n] = d * (1.0 - a2 - am)
                n += 1
            if fill:
                keys[n] = base + i1
                values[n] = d * am
            n += 1
        x = xnext
        row += 1
    return n


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
    # Shift by the one-pixel margin so every coordinate is >= 0 (rounding of clipped vertices);
    # then every ring as one polygon, through the kernel the supply pass uses.
    no_keys, no_values = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    m, _, _, pixels, fractions = _polygon_cells(xs + 1.0, ys + 1.0, ring_starts, 0, ring_starts.shape[0] - 1, width, height,
                                                no_keys, no_values, no_keys.copy(), no_values.copy())
    return pixels[:m].copy(), fractions[:m].copy()


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
def _ring_range_edges(xs, ys, ring_starts, k0, k1, width, height, keys, values, fill):  # pragma: no cover
    """:func:`_edge` over every edge of rings ``k0 .. k1 - 1`` (one polygon of several); returns how
    many (cell, value) entries they make, written into ``keys``/``values`` when ``fill``."""
    n = 0
    for k in range(k0, k1):
        start, stop = ring_starts[k], ring_starts[k + 1]
        for i in range(start, stop - 1):
            n = _edge(xs[i], ys[i], xs[i + 1], ys[i + 1], width, height, keys, values, n, fill)
    return n


@njit(nogil=True, cache=True)
def _sort_by_row(keys, values, n, stride):  # pragma: no cover
    """The first ``n`` (key, value) entries sorted by key (``row * stride + col``): bucketed by row
    (one counting pass), then each row's few entries by insertion sort (a long row, a boundary
    running along it, by argsort): 36 ms against argsort's 56 ms for the 0.87 M keys of a
    4096² chunk with 813 county pieces (benchmarks/README.md, issue 7)."""
    rmin = keys[0] // stride if n else 0
    rmax = rmin
    for i in range(n):
        r = keys[i] // stride
        if r < rmin:
            rmin = r
        if r > rmax:
            rmax = r
    starts = np.zeros(rmax - rmin + 2, dtype=np.int64)
    for i in range(n):
        starts[keys[i] // stride - rmin + 1] += 1
    for r in range(1, starts.shape[0]):
        starts[r] += starts[r - 1]
    fill = starts[:-1].copy()
    out_k = np.empty(n, dtype=np.int64)
    out_v = np.empty(n, dtype=np.float64)
    for i in range(n):
        r = keys[i] // stride - rmin
        out_k[fill[r]] = keys[i]
        out_v[fill[r]] = values[i]
        fill[r] += 1
    for r in range(starts.shape[0] - 1):
        a, b = starts[r], starts[r + 1]
        if b - a > 32:
            order = np.argsort(out_k[a:b])
            seg_k = out_k[a:b][order]
            seg_v = out_v[a:b][order]
            out_k[a:b] = seg_k
            out_v[a:b] = seg_v
            continue
        for i in range(a + 1, b):
            k, v = out_k[i], out_v[i]
            j = i - 1
            while j >= a and out_k[j] > k:
                out_k[j + 1] = out_k[j]
                out_v[j + 1] = out_v[j]
                j -= 1
            out_k[j + 1] = k
            out_v[j + 1] = v
    return out_k, out_v


@njit(nogil=True, cache=True)
def _polygon_cells(sx, sy, ring_starts, k0, k1, width, height, keys, values, out_pixels, out_fractions):  # pragma: no cover
    """Covered fractions of the cells one polygon's boundary touches (rings ``k0 .. k1 - 1`` of
    margin-shifted coordinates ``sx, sy``), into ``out_pixels``/``out_fractions`` (``row * width +
    col`` of the window, increasing); returns how many, plus the scratch buffers (grown if needed)."""
    buffer_w, buffer_h = width + 2, height + 2
    n = _ring_range_edges(sx, sy, ring_starts, k0, k1, buffer_w, buffer_h, keys, values, False)
    if n > keys.shape[0]:
        keys = np.empty(2 * n, dtype=np.int64)
        values = np.empty(2 * n, dtype=np.float64)
        out_pixels = np.empty(2 * n, dtype=np.int64)
        out_fractions = np.empty(2 * n, dtype=np.float64)
    _ring_range_edges(sx, sy, ring_starts, k0, k1, buffer_w, buffer_h, keys, values, True)
    stride = buffer_w + 2
    sorted_keys, sorted_values = _sort_by_row(keys, values, n, stride)
    m = 0
    running = 0.0
    current_row = -(1 << 40)
    i = 0
    while i < n:
        key = sorted_keys[i]
        total = 0.0
        while i < n and sorted_keys[i] == key:
            total += sorted_values[i]
            i += 1
        row = key // stride
        col = key - row * stride
        if row != current_row:
            running = 0.0
            current_row = row
        running += total
        if 1 <= col <= width and 1 <= row <= height:
            f = abs(running)
            if f > 1.0:
                f = 1.0
            if f > 1e-12:
                out_pixels[m] = (row - 1) * width + (col - 1)
                out_fractions[m] = f
                m += 1
    return m, keys, values, out_pixels, out_fractions


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
    sx = xs + 1.0
    sy = ys + 1.0
    keys = np.empty(1024, dtype=np.int64)
    values = np.empty(1024, dtype=np.float64)
    cells = np.empty(1024, dtype=np.int64)
    shares = np.empty(1024, dtype=np.float64)
    total = 0
    all_pixels = np.empty(4096, dtype=np.int64)
    all_counties = np.empty(4096, dtype=np.int64)
    all_fractions = np.empty(4096, dtype=np.float64)
    for k in range(polygon_starts.shape[0] - 1):
        m, keys, values, cells, shares = _polygon_cells(sx, sy, ring_starts, polygon_starts[k], polygon_starts[k + 1], width, height,
                                                        keys, values, cells, shares)
        if total + m > all_pixels.shape[0]:
            size = 2 * (total + m)
            grown_p = np.empty(size, dtype=np.int64)
            grown_c = np.empty(size, dtype=np.int64)
            grown_f = np.empty(size, dtype=np.float64)
            grown_p[:total] = all_pixels[:total]
            grown_c[:total] = all_counties[:total]
            grown_f[:total] = all_fractions[:total]
            all_pixels, all_counties, all_fractions = grown_p, grown_c, grown_f
        for i in range(m):
            all_pixels[total + i] = cells[i]
            all_counties[total + i] = counties[k]
            all_fractions[total + i] = shares[i]
        total += m
    order = np.argsort(all_pixels[:total], kind="mergesort")
    return all_pixels[:total][order], all_counties[:total][order], all_fractions[:total][order]


@njit(nogil=True, cache=True)
def share_by_rings(table, zones, codes, lut, offset, unknown_col, nodata, nodata_col, row_areas, lattice, node_rows, node_cols, row0, col0,
                   xs, ys, ring_starts, polygon_starts, counties):  # pragma: no cover
    """Fraction mode in one chunk, straight from the county rings: move every boundary pixel from
    its pixel-centre county to the counties covering it, by exact covered fraction.

    ``table`` ``(n_zones, n_cols)`` holds the chunk's true areas under the pixel-centre rule (each
    pixel wholly in ``zones[r, c]``). Each polygon's boundary cells are found and their covered
    fractions ``f`` computed as in :func:`polygon_fractions` (signed-area accumulation; the
    quantity exactextract computes, isciences/exactextract's "coverage fraction"), then applied at
    once, with no table of entries kept or sorted across polygons: a cell of county ``k`` with
    pixel area ``a`` adds ``f a`` to ``k`` and takes it from id 0 (outside every county); the
    county that the pixel-centre rule gave the whole pixel to, which its own boundary crosses
    there, gives ``a`` back to id 0. Summed over a pixel's polygons this leaves ``f_k a`` with
    every county ``k`` and ``(1 - Σ f) a`` outside (the rule of :func:`correct_by_fractions`).

    Pixel areas and class columns: :func:`_pixel_area_and_column` (``row_areas[r]`` for the
    chunk's row ``r`` when given, else each pixel's from the lattice). Rings are in the chunk's pixel
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
    area = np.empty(1, dtype=np.float64)
    sx = xs + 1.0
    sy = ys + 1.0
    keys = np.empty(1024, dtype=np.int64)
    values = np.empty(1024, dtype=np.float64)
    cells = np.empty(1024, dtype=np.int64)
    shares = np.empty(1024, dtype=np.float64)
    pixel_cols = np.empty(1024, dtype=np.int64)
    pixel_areas = np.empty(1024, dtype=np.float64)
    for k in range(polygon_starts.shape[0] - 1):
        county = counties[k]
        m, keys, values, cells, shares = _polygon_cells(sx, sy, ring_starts, polygon_starts[k], polygon_starts[k + 1], width, height,
                                                        keys, values, cells, shares)
        if pixel_cols.shape[0] < m:
            pixel_cols = np.empty(cells.shape[0], dtype=np.int64)
            pixel_areas = np.empty(cells.shape[0], dtype=np.float64)
        # Every cell's class column and area first, in a loop of loads alone: the boundary cells
        # of one polygon are scattered over the chunk's rows, each land-use read a likely cache
        # miss, and a loop with no stores lets the core have many misses in flight at once (with
        # the table updates in the same loop they waited on each other; the kernel is ~1.1x
        # faster so on the 10^8-pixel benchmark's chunks, same tables: benchmarks/README.md).
        for i in range(m):
            p = cells[i]
            r = p // width
            c = p - r * width
            a, col = _pixel_area_and_column(r, c, codes, lut, offset, unknown_col, nodata, nodata_col, row_areas, lattice, node_rows, node_cols,
                                            row0, col0, area)
            pixel_cols[i] = col
            pixel_areas[i] = a
        current_row = -1
        j = 0
        j_stop = 0
        for i in range(m):
            p = cells[i]
            r = p // width
            c = p - r * width
            a, col = pixel_areas[i], pixel_cols[i]
            moved = shares[i] * a
            table[county, col] += moved
            table[0, col] -= moved
            if by_spans:
                # The cells come sorted by row, then column: walk the row's spans forward with
                # them (one binary search a row, as centre_county's, then a step or two a cell).
                if r != current_row:
                    current_row = r
                    j, j_stop = span_starts[r], span_starts[r + 1]
                    hi = j_stop
                    while j < hi:
                        mid = (j + hi) // 2
                        if span_c1[mid] <= c:
                            j = mid + 1
                        else:
                            hi = mid
                while j < j_stop and span_c1[j] <= c:
                    j += 1
                holder = span_ids[j] if j < j_stop and span_c0[j] <= c else 0
            else:
                holder = np.int64(zones[r, c])
            if holder == county:
                table[county, col] -= a
                table[0, col] += a


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
