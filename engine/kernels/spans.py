"""County ids of a window by scanline spans, with the pixel-centre rule (GDAL's, without GDAL).

Why our own kernel: every chunk's counties were burned through :func:`rasterio.features.rasterize`,
which wraps each polygon in an OGR geometry, builds an in-memory dataset and a transformer, and
walks every edge of a polygon for every pixel row it covers (GDAL's ``GDALdllImageFilledPolygon``:
rows × edges per polygon). Here each edge visits only the rows it crosses (crossings bucketed by
row, then sorted within their row), and the spans between pairs of crossings are filled: the work
is the boundary's length in rows plus the filled pixels, with no per-polygon object at all (a
4096² chunk of 3,000-county data: see benchmarks/README.md). GDAL stays as the tests' oracle.

The rule (pixel-centre; GDAL's, made exact on ties)
----------------------------------------------------
Coordinates are pixel units of the window: ``x = column``, ``y = row`` (pixel ``(r, c)`` is the
unit square ``[c, c + 1] × [r, r + 1]``, its centre ``(c + 0.5, r + 0.5)``). For each row ``r``
the centre line ``y = r + 0.5`` is cut by every edge whose lower end (in ``y``) is on or above
the line and whose upper end is strictly below it, ``y_lo <= r + 0.5 < y_hi`` (edges along the
line, of no height, cut nothing); at each cut ``x = x_lo + (r + 0.5 - y_lo) (x_hi - x_lo) /
(y_hi - y_lo)`` (GDAL's formula, so that the same doubles give the same cut). The cuts of all
rings of a polygon are sorted and taken in pairs ``(a, b)`` (even-odd: holes and the parts of a
multipolygon need no orientation), and pixel ``c`` is filled when ``a < c + 0.5 <= b``, i.e.
columns ``floor(a + 0.5) .. floor(b + 0.5) - 1`` (GDAL's rounding).

Ties, a pixel centre exactly on an edge or vertex: across a vertical edge the centre belongs to
the polygon on its left (spans are ``a < x <= b``), across a horizontal one to the polygon below
it (larger row: cuts are made by ``y_lo <= y < y_hi``). Two polygons that share an edge therefore
never both take a centre on it, and the polygons of a tiling take every centre exactly once,
whatever their order. This is GDAL's rule in every case but one (measured on GDAL 3.10 through
rasterio, tests/test_spans.py): GDAL also fills the centres lying on a horizontal edge that
bounds a polygon from below (its interior in the rows above the edge), so on a horizontal
border running exactly along a centre line both polygons claim those centres and the later in
the list wins; here the polygon below always has them. The tests count these pixels and find
no other difference. Polygons are filled in order, a later one
overwriting an earlier one (GDAL's replace), which only matters where polygons overlap.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def grown(array, n, size):  # pragma: no cover
    """A copy of ``array``'s first ``n`` values in a new buffer of ``size`` (a growing scratch buffer)."""
    out = np.empty(size, dtype=array.dtype)
    out[:n] = array[:n]
    return out


@njit(nogil=True, cache=True)
def _row_range(y_lo, y_hi, height):  # pragma: no cover
    """Rows ``r`` with ``y_lo <= r + 0.5 < y_hi``, clipped to ``0 .. height - 1``: ``(first, stop)``."""
    first = np.int64(np.ceil(y_lo - 0.5))
    stop = np.int64(np.ceil(y_hi - 0.5))
    if first < 0:
        first = 0
    if stop > height:
        stop = height
    return first, stop


@njit(nogil=True, cache=True)
def _edge_rows(ys, i, height):  # pragma: no cover
    """The rows whose centre lines edge ``i → i + 1`` cuts (:func:`_row_range`): ``(first, stop)``,
    empty for an edge along a row (of no height, it cuts nothing)."""
    y0, y1 = ys[i], ys[i + 1]
    if y0 == y1:
        return np.int64(0), np.int64(0)
    return _row_range(min(y0, y1), max(y0, y1), height)


@njit(nogil=True, cache=True)
def _polygon_cuts(xs, ys, ring_starts, k0, k1, height, rows, cuts, counts):  # pragma: no cover
    """The cuts of rings ``k0 .. k1 - 1`` with the centre lines of rows ``0 .. height - 1``, sorted
    within each row (the module's rule).

    Returns ``(r_min, n_rows, rows, cuts, counts)``: row ``r_min + i``'s cuts are
    ``cuts[counts[i] : counts[i + 1]]`` in increasing order, for ``i < n_rows`` (``n_rows = 0``
    when no centre line is cut); ``rows``, ``cuts`` and ``counts`` are the scratch buffers (int64,
    float64, int64), grown when too small, to be handed to the next call.
    """
    # First pass: the rows the polygon's edges span, and how many cuts in all.
    r_min = height
    r_max = -1
    n = 0
    for k in range(k0, k1):
        for i in range(ring_starts[k], ring_starts[k + 1] - 1):
            first, stop = _edge_rows(ys, i, height)
            if stop > first:
                n += stop - first
                if first < r_min:
                    r_min = first
                if stop - 1 > r_max:
                    r_max = stop - 1
    if n == 0:
        return 0, 0, rows, cuts, counts
    n_rows = r_max - r_min + 1
    if counts.shape[0] < n_rows + 1:
        counts = np.empty(2 * (n_rows + 1), dtype=np.int64)
    if rows.shape[0] < n_rows:
        rows = np.empty(2 * n_rows, dtype=np.int64)
    if cuts.shape[0] < n:
        cuts = np.empty(2 * n, dtype=np.float64)
    for r in range(n_rows + 1):
        counts[r] = 0
    for k in range(k0, k1):
        for i in range(ring_starts[k], ring_starts[k + 1] - 1):
            first, stop = _edge_rows(ys, i, height)
            for r in range(first, stop):
                counts[r - r_min + 1] += 1
    for r in range(1, n_rows + 1):
        counts[r] += counts[r - 1]
    # Second pass: each cut into its row's slot (``rows`` holds the next free slot of each row).
    for r in range(n_rows):
        rows[r] = counts[r]
    for k in range(k0, k1):
        for i in range(ring_starts[k], ring_starts[k + 1] - 1):
            first, stop = _edge_rows(ys, i, height)
            if stop <= first:
                continue
            if ys[i] < ys[i + 1]:
                x_lo, y_lo, x_hi, y_hi = xs[i], ys[i], xs[i + 1], ys[i + 1]
            else:
                x_lo, y_lo, x_hi, y_hi = xs[i + 1], ys[i + 1], xs[i], ys[i]
            for r in range(first, stop):
                dy = r + 0.5
                slot = rows[r - r_min]
                cuts[slot] = (dy - y_lo) * (x_hi - x_lo) / (y_hi - y_lo) + x_lo
                rows[r - r_min] = slot + 1
    # Each row's cuts sorted (insertion sort: a row holds few).
    for r in range(n_rows):
        a, b = counts[r], counts[r + 1]
        for i in range(a + 1, b):
            v = cuts[i]
            j = i - 1
            while j >= a and cuts[j] > v:
                cuts[j + 1] = cuts[j]
                j -= 1
            cuts[j + 1] = v
    return r_min, n_rows, rows, cuts, counts


@njit(nogil=True, cache=True)
def _span(cut_a, cut_b, width):  # pragma: no cover
    """Columns ``c0 .. c1 - 1`` whose centres lie in ``(cut_a, cut_b]``, clipped to ``0 .. width``."""
    c0 = np.int64(np.floor(cut_a + 0.5))
    c1 = np.int64(np.floor(cut_b + 0.5))
    if c0 < 0:
        c0 = 0
    if c1 > width:
        c1 = width
    return c0, c1


@njit(nogil=True, cache=True)
def burn_polygon(xs, ys, ring_starts, k0, k1, value, out, rows, cuts, counts):  # pragma: no cover
    """Fill the pixels whose centres rings ``k0 .. k1 - 1`` enclose (even-odd) with ``value``.

    Parameters
    ----------
    xs, ys
        float64 ``(n_vertices,)``: every ring's vertices in window pixel units (``x = column``,
        ``y = row``), each ring closed (first vertex repeated last); any winding.
    ring_starts
        int64 ``(n_rings + 1,)``: ring ``m`` is ``xs/ys[ring_starts[m] : ring_starts[m + 1]]``.
    k0, k1
        The polygon's rings (a polygon with its holes, or all parts of a multipolygon).
    value
        The id written.
    out
        ``(height, width)`` integer raster, written in place (pixels outside are left as they are).
    rows, cuts, counts
        Scratch buffers (int64, float64, int64), grown here when too small and returned.

    Returns
    -------
    (n_filled, rows, cuts, counts)
        How many pixels were written, and the scratch buffers for the next call.
    """
    height, width = out.shape
    r_min, n_rows, rows, cuts, counts = _polygon_cuts(xs, ys, ring_starts, k0, k1, height, rows, cuts, counts)
    filled = 0
    for r in range(n_rows):
        line = out[r + r_min]
        for i in range(counts[r], counts[r + 1] - 1, 2):
            c0, c1 = _span(cuts[i], cuts[i + 1], width)
            if c1 > c0:
                line[c0:c1] = value
                filled += c1 - c0
    return filled, rows, cuts, counts


@njit(nogil=True, cache=True)
def burn_rings(xs, ys, ring_starts, polygon_starts, ids, out):  # pragma: no cover
    """Fill a window's id raster from its polygons' rings by scanline spans (the module's rule).

    Parameters
    ----------
    xs, ys, ring_starts
        Every ring of every polygon, as :func:`burn_polygon` takes them (window pixel units,
        closed rings), one polygon's rings after another.
    polygon_starts
        int64 ``(n_polygons + 1,)``: polygon ``k`` owns rings ``polygon_starts[k] .. polygon_starts[k + 1] - 1``.
    ids
        int64 ``(n_polygons,)``: the id each polygon is filled with (a county's parts may be one
        polygon or several with the same id).
    out
        ``(height, width)`` unsigned integer raster (zeros: outside every polygon), filled in
        place; polygons later in the list overwrite earlier ones where they overlap.

    Returns
    -------
    int
        The number of pixel writes (the filled pixels when polygons do not overlap).
    """
    rows = np.empty(256, dtype=np.int64)
    cuts = np.empty(256, dtype=np.float64)
    counts = np.empty(256, dtype=np.int64)
    total = 0
    for k in range(polygon_starts.shape[0] - 1):
        filled, rows, cuts, counts = burn_polygon(xs, ys, ring_starts, polygon_starts[k], polygon_starts[k + 1], ids[k], out, rows, cuts, counts)
        total += filled
    return total


def burn_rings_numpy(xs: np.ndarray, ys: np.ndarray, ring_starts: np.ndarray, polygon_starts: np.ndarray, ids: np.ndarray,
                     shape: tuple[int, int]) -> np.ndarray:
    """Plain-numpy reference of :func:`burn_rings` (the same rule, every centre against every edge,
    with a crossing-number test): an ``int64`` ``shape`` raster. Slow; tests only."""
    height, width = shape
    out = np.zeros(shape, dtype=np.int64)
    cx = np.arange(width) + 0.5
    for k in range(len(polygon_starts) - 1):
        inside = np.zeros(shape, dtype=bool)
        for m in range(polygon_starts[k], polygon_starts[k + 1]):
            x, y = xs[ring_starts[m]:ring_starts[m + 1]], ys[ring_starts[m]:ring_starts[m + 1]]
            for i in range(len(x) - 1):
                if y[i] == y[i + 1]:
                    continue
                lo, hi = (i, i + 1) if y[i] < y[i + 1] else (i + 1, i)
                for r in range(height):
                    dy = r + 0.5
                    if y[lo] <= dy < y[hi]:
                        cut = (dy - y[lo]) * (x[hi] - x[lo]) / (y[hi] - y[lo]) + x[lo]
                        # a centre is inside when an odd number of cuts lie at or right of it
                        # (cut >= centre), which is ``a < centre <= b`` for the pairs (a, b)
                        inside[r] ^= np.floor(cut + 0.5) > cx - 0.5
        out[inside] = ids[k]
    return out


@njit(nogil=True, cache=True)
def chunk_spans(xs, ys, ring_starts, polygon_starts, ids, height, width):  # pragma: no cover
    """Every span of a window's polygons (the module's rule), sorted by row then column: what
    :func:`burn_rings` would fill, without the raster.

    Parameters
    ----------
    xs, ys, ring_starts, polygon_starts, ids
        As :func:`burn_rings`.
    height, width
        The window in pixels.

    Returns
    -------
    (row_starts, c0, c1, span_ids)
        int64 ``(height + 1,)`` offsets: row ``r``'s spans are ``row_starts[r] .. row_starts[r + 1] - 1``;
        each span covers columns ``c0 .. c1 - 1`` (non-empty, inside the window) of polygon id
        ``span_ids``. Within a row spans are disjoint and increasing; where polygons overlap
        (which the overlap check refuses upstream), a pixel stays with the span that reached it
        first from the left.
    """
    rows = np.empty(256, dtype=np.int64)
    cuts = np.empty(256, dtype=np.float64)
    counts = np.empty(256, dtype=np.int64)
    size = 1024
    s_row = np.empty(size, dtype=np.int64)
    s_c0 = np.empty(size, dtype=np.int64)
    s_c1 = np.empty(size, dtype=np.int64)
    s_id = np.empty(size, dtype=np.int64)
    n = 0
    for k in range(polygon_starts.shape[0] - 1):
        r_min, n_rows, rows, cuts, counts = _polygon_cuts(xs, ys, ring_starts, polygon_starts[k], polygon_starts[k + 1], height, rows, cuts, counts)
        for r in range(n_rows):
            for i in range(counts[r], counts[r + 1] - 1, 2):
                c0, c1 = _span(cuts[i], cuts[i + 1], width)
                if c1 <= c0:
                    continue
                if n == size:
                    size *= 2
                    s_row, s_c0 = grown(s_row, n, size), grown(s_c0, n, size)
                    s_c1, s_id = grown(s_c1, n, size), grown(s_id, n, size)
                s_row[n] = r + r_min
                s_c0[n] = c0
                s_c1[n] = c1
                s_id[n] = ids[k]
                n += 1
    # Bucket by row (counting sort), then each row's spans by first column (insertion sort).
    row_starts = np.zeros(height + 1, dtype=np.int64)
    for i in range(n):
        row_starts[s_row[i] + 1] += 1
    for r in range(height):
        row_starts[r + 1] += row_starts[r]
    fill = row_starts[:height].copy()
    c0 = np.empty(n, dtype=np.int64)
    c1 = np.empty(n, dtype=np.int64)
    span_ids = np.empty(n, dtype=np.int64)
    for i in range(n):
        slot = fill[s_row[i]]
        c0[slot] = s_c0[i]
        c1[slot] = s_c1[i]
        span_ids[slot] = s_id[i]
        fill[s_row[i]] = slot + 1
    for r in range(height):
        a, b = row_starts[r], row_starts[r + 1]
        for i in range(a + 1, b):
            v0, v1, vid = c0[i], c1[i], span_ids[i]
            j = i - 1
            while j >= a and c0[j] > v0:
                c0[j + 1] = c0[j]
                c1[j + 1] = c1[j]
                span_ids[j + 1] = span_ids[j]
                j -= 1
            c0[j + 1] = v0
            c1[j + 1] = v1
            span_ids[j + 1] = vid
        # Overlaps (refused upstream) trimmed so that spans stay disjoint: a span may be left empty.
        reach = 0
        for i in range(a, b):
            if c0[i] < reach:
                c0[i] = reach
            if c1[i] < c0[i]:
                c1[i] = c0[i]
            reach = c1[i]
    return row_starts, c0, c1, span_ids


@njit(nogil=True, cache=True)
def centre_county(row_starts, c0, c1, span_ids, r, c):  # pragma: no cover
    """The id whose span holds pixel ``(r, c)`` (:func:`chunk_spans`), 0 when none does: the id
    raster's value there, by binary search in the row's spans."""
    lo, hi = row_starts[r], row_starts[r + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if c1[mid] <= c:
            lo = mid + 1
        else:
            hi = mid
    if lo < row_starts[r + 1] and c0[lo] <= c < c1[lo]:
        return span_ids[lo]
    return 0


@njit(nogil=True, cache=True)
def span_tables(codes, lut, offset, n_zones, n_cols, row_starts, c0, c1, span_ids, row_areas):  # pragma: no cover
    """Pixels (and true areas) per (county id, class column) of one chunk, straight from its spans:
    no id raster is made or read.

    Parameters
    ----------
    codes
        ``(height, width)`` 8/16-bit land-use codes.
    lut, offset
        Dense class lookup: ``lut[code - offset]`` is every code's column (nodata's and unknown
        codes' included), as :meth:`carbonscape.accumulate.ClassIndex.dense_lut` gives it.
    n_zones, n_cols
        The table's shape; id 0 is outside every county (the pixels between spans).
    row_starts, c0, c1, span_ids
        The chunk's spans (:func:`chunk_spans`).
    row_areas
        float64 ``(height,)`` true pixel area (m²) of each row, or empty for counts only.

    Returns
    -------
    (counts, areas)
        int64 ``(n_zones, n_cols)`` pixels, and float64 ``(n_zones, n_cols)`` m² (zeros when
        ``row_areas`` is empty). The county is one per span, so a pixel costs a code load, a
        lookup and an add; four partial tables break the store-to-load dependency between
        neighbouring pixels of one class (as :func:`carbonscape.kernels.crosstab.crosstab_counts_dense`).

    Raises
    ------
    ValueError
        An id outside ``0 .. n_zones - 1``.
    """
    height, width = codes.shape
    size = n_zones * n_cols
    counts = np.zeros((4, size), dtype=np.int64)
    with_area = row_areas.shape[0] == height
    areas = np.zeros((4, size) if with_area else (1, size), dtype=np.float64)
    for r in range(height):
        line = codes[r]
        a = row_areas[r] if with_area else 0.0
        pos = 0
        i = row_starts[r]
        while pos < width:
            if i < row_starts[r + 1]:
                if c0[i] > pos:  # the gap before the next span: outside every county
                    zone, stop = 0, c0[i]
                else:
                    zone, stop = span_ids[i], c1[i]
                    i += 1
            else:
                zone, stop = 0, width
            if zone < 0 or zone >= n_zones:
                raise ValueError("zone id out of range of the zone table")
            base = zone * n_cols
            c = pos
            while c + 4 <= stop:
                for k in range(4):
                    key = base + lut[np.int64(line[c + k]) - offset]
                    counts[k, key] += 1
                    if with_area:
                        areas[k, key] += a
                c += 4
            while c < stop:
                key = base + lut[np.int64(line[c]) - offset]
                counts[0, key] += 1
                if with_area:
                    areas[0, key] += a
                c += 1
            if stop > pos:
                pos = stop
    return counts.sum(axis=0).reshape(n_zones, n_cols), areas.sum(axis=0).reshape(n_zones, n_cols)
