"""The statistics carbonscape accumulates, one record each (see :class:`~.spec.Accumulation`).

A new statistic is one kernel (``carbonscape.kernels``), one numpy reference
(:mod:`.reference`) and one record here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from carbonscape.accumulate import reference as ref
from carbonscape.accumulate.spec import Accumulation, Chunk, Layout
from carbonscape.accumulate.classindex import ClassIndex
from carbonscape.kernels.crosstab import code_histogram, crosstab_areas, crosstab_counts, crosstab_counts_dense
from carbonscape.kernels.transitions import (
    code_columns,
    count_transitions,
    count_transitions_8bit,
    sparse_transition_tables,
    trajectory_tables,
    transition_tables,
)
from carbonscape.kernels.area import sum_pair_areas as sum_pair_areas_lattice
from carbonscape.kernels.area import lattice_row, sum_pair_areas_dense, sum_pair_counts_areas_dense
from carbonscape.kernels.fraction import correct_by_fractions, share_by_rings, share_by_spans
from carbonscape.kernels.spans import burn_rings, chunk_spans, span_tables


def count_pairs(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels per (county, class column) of one chunk.

    8/16-bit codes take the dense-table kernel (every value of the dtype has its column, no
    branch but the county check; twice the speed of the general kernel), wider codes the general one.
    """
    counties, codes = blocks["counties"], blocks["landuse"]
    index, n_counties = where.layout.classes, where.layout.n_counties
    if codes.dtype.itemsize <= 2:
        lut, offset = index.dense_lut(codes.dtype)  # type: ignore[union-attr]
        return crosstab_counts_dense(counties, codes, lut, offset, n_counties, index.n_cols)  # type: ignore[union-attr]
    return crosstab_counts(
        counties, codes, index.lut, index.offset, n_counties, index.n_cols, index.unknown_col,  # type: ignore[union-attr]
        index.nodata_code, index.nodata_col,  # type: ignore[union-attr]
    )


def sum_pair_areas(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """True area (m²) per (county, class column) of one chunk, from the grid's per-pixel areas.

    A :class:`~carbonscape.grid.Grid` as the area source gives its area lattice, and the lattice
    kernels rebuild each row's areas on the fly (no per-pixel area block is ever materialised);
    other sources hand a broadcastable block. With ``layout.params["boundary"]`` (a fraction-mode
    county store) boundary pixels are then shared among their counties by covered fraction.
    """
    index = where.layout.classes
    counties, codes = blocks["counties"], blocks["landuse"]
    lattice = getattr(where.areas, "area_lattice", None)
    uniform = _uniform_area(where)
    if uniform is not None:
        # One area for every pixel (fraction mode on an equal-area grid): the counting kernel's
        # table × that area, 4× faster than evaluating a constant lattice at every pixel.
        table = count_pairs(blocks, where).astype(np.float64) * uniform
    elif lattice is None:
        table = crosstab_areas(
            counties, codes, index.lut, index.offset, where.layout.n_counties, index.n_cols,  # type: ignore[union-attr]
            index.unknown_col, index.nodata_code, index.nodata_col, where.area(),  # type: ignore[union-attr]
        )
    else:
        table = _lattice_areas(counties, codes, index, where, *lattice())
    _share_fractions(table, blocks, where)
    return table


def _share_fractions(table: np.ndarray, blocks: Mapping[str, Any], where: Chunk) -> None:
    """Fraction mode, when the layout says so: the chunk's boundary pixels shared by covered
    fraction, from the county rings the pass reads as the raster named by
    ``layout.params["boundary_rings"]`` (counties burned on the fly, clipped in this task:
    :func:`carbonscape.rasterize.zones_and_rings`) or else from the fraction-mode county store at
    ``layout.params["boundary"]``."""
    rings_raster = where.layout.params.get("boundary_rings")
    if rings_raster is not None:
        if rings_raster not in blocks:
            raise ValueError(f"fraction mode reads the county rings as raster {rings_raster!r}: the statistic must read it (reads={rings_raster!r})")
        _share_by_rings(table, blocks["counties"], blocks["landuse"], where, blocks[rings_raster])
        return
    boundary = where.layout.params.get("boundary")
    if boundary is not None:
        _share_boundary_pixels(table, blocks["counties"], blocks["landuse"], where, boundary)


def _uniform_area(where: Chunk) -> float | None:
    """The one pixel area of the area source, when it says every pixel has it, else None."""
    uniform = getattr(where.areas, "uniform_area_m2", None)
    return uniform() if callable(uniform) else None


def _lattice_areas(counties, codes, index, where: Chunk, lattice, node_rows, node_cols) -> np.ndarray:  # type: ignore[no-untyped-def]
    row0, col0 = where.rows.start, where.cols.start
    if codes.dtype.itemsize <= 2:
        lut, offset = index.dense_lut(codes.dtype)
        return sum_pair_areas_dense(counties, codes, lut, offset, where.layout.n_counties, index.n_cols, lattice, node_rows, node_cols, row0, col0)
    return sum_pair_areas_lattice(
        counties, codes, index.lut, index.offset, where.layout.n_counties, index.n_cols, index.unknown_col, index.nodata_code,
        index.nodata_col, lattice, node_rows, node_cols, row0, col0,
    )


def _share_boundary_pixels(table: np.ndarray, counties: np.ndarray, codes: np.ndarray, where: Chunk, store: str) -> None:
    """Fraction mode: move each boundary pixel of the chunk from its pixel-centre county to the
    counties covering it, by covered fraction (the store's per-chunk boundary table)."""
    from carbonscape.rasterize import read_boundary, read_rings

    rings = read_rings(store, where.location)
    if rings is not None:
        _share_by_rings(table, counties, codes, where, rings)
        return
    entries = read_boundary(store, where.location)
    if not len(entries):
        return
    index = where.layout.classes
    source = where.areas
    lattice = getattr(source, "area_lattice", None)
    uniform = _uniform_area(where)
    if uniform is not None:  # one node: every boundary pixel's area is the constant, not a cubic over the lattice's columns
        grid_lattice = np.full((1, 1), uniform)
        node_rows = np.array([where.rows.start], dtype=np.int64)
        node_cols = np.array([where.cols.start], dtype=np.int64)
    elif lattice is not None:
        grid_lattice, node_rows, node_cols = lattice()
    else:  # a plain area source: its block as a lattice with a node on every pixel
        block = np.broadcast_to(where.area(), codes.shape)
        grid_lattice = np.ascontiguousarray(block, dtype=np.float64)
        node_rows = np.arange(where.rows.start, where.rows.stop, dtype=np.int64)
        node_cols = np.arange(where.cols.start, where.cols.stop, dtype=np.int64)
    correct_by_fractions(
        table, counties, codes, index.lut, index.offset, index.unknown_col, index.nodata_code, index.nodata_col,
        grid_lattice, node_rows, node_cols, where.rows.start, where.cols.start,
        entries["pixel"], entries["county"].astype(np.int64), entries["fraction"],
    )


def _row_areas(where: Chunk, height: int) -> tuple[np.ndarray | None, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(row_areas, (lattice, node_rows, node_cols))`` of a chunk: float64 ``(height,)`` areas
    (m²) of its rows when pixel areas vary by row only (uniform too), else None with the area
    lattice the kernels interpolate per pixel (a plain area source's block as a lattice with a
    node on every pixel)."""
    lattice = getattr(where.areas, "area_lattice", None)
    uniform = _uniform_area(where)
    none = (np.zeros((1, 1)), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
    if uniform is not None:
        return np.full(height, uniform), none
    if lattice is not None:
        grid_lattice, node_rows, node_cols = lattice()
        if grid_lattice.shape[1] == 1:  # areas vary by row only (lon/lat, Web Mercator): one per row
            row_areas = np.empty(height)
            one = np.empty(1)
            for r in range(height):
                lattice_row(grid_lattice, node_rows, node_cols, where.rows.start + r, where.cols.start, one)
                row_areas[r] = one[0]
            return row_areas, none
        return None, (grid_lattice, node_rows, node_cols)
    block = np.asarray(where.area())
    if block.ndim == 2 and block.shape[1] == 1:
        return np.ascontiguousarray(np.broadcast_to(block, (height, 1))[:, 0], dtype=np.float64), none
    block = np.broadcast_to(block, (height, where.cols.stop - where.cols.start))
    return None, (np.ascontiguousarray(block, dtype=np.float64), np.arange(where.rows.start, where.rows.stop, dtype=np.int64),
                  np.arange(where.cols.start, where.cols.stop, dtype=np.int64))


def _share_by_rings(table: np.ndarray, counties: np.ndarray, codes: np.ndarray, where: Chunk, rings: Any) -> None:
    """Fraction mode from the chunk's county rings (:class:`carbonscape.rasterize.ChunkRings`): the
    covered fractions are computed and applied in one numba call
    (:func:`carbonscape.kernels.fraction.share_by_rings`), only at the cells the rings cross."""
    if not len(rings.counties):
        return
    index = where.layout.classes
    row_areas, (grid_lattice, node_rows, node_cols) = _row_areas(where, codes.shape[0])
    share_by_rings(
        table, counties, codes, index.lut, index.offset, index.unknown_col, index.nodata_code, index.nodata_col,
        np.zeros(0) if row_areas is None else row_areas, grid_lattice, node_rows, node_cols, where.rows.start, where.cols.start,
        rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties,
    )


def count_and_sum_pair_areas(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels and true areas (m²) per (county, class column) of one chunk: ``(2, n_counties, n_cols)``
    float64, counts first. On a grid's area lattice with 8/16-bit codes one fused kernel makes both
    (Web Mercator supply within ~1.2× of the count alone, benchmarks/areas.py); otherwise the two
    statistics' own kernels. Fraction mode shares boundary pixels' areas as :func:`sum_pair_areas`."""
    counties, codes = blocks["counties"], blocks["landuse"]
    lattice = getattr(where.areas, "area_lattice", None)
    uniform = _uniform_area(where)
    if uniform is not None:  # one count, the areas from it (not the counting kernel twice)
        counts = count_pairs(blocks, where).astype(np.float64)
        table = np.stack([counts, counts * uniform])
        _share_fractions(table[1], blocks, where)
        return table
    if lattice is None or codes.dtype.itemsize > 2:
        return np.stack([count_pairs(blocks, where).astype(np.float64), sum_pair_areas(blocks, where)])
    index = where.layout.classes
    lut, offset = index.dense_lut(codes.dtype)  # type: ignore[union-attr]
    table = sum_pair_counts_areas_dense(
        counties, codes, lut, offset, where.layout.n_counties, index.n_cols, *lattice(), where.rows.start, where.cols.start,  # type: ignore[union-attr]
    )
    _share_fractions(table[1], blocks, where)
    return table


#: The raster name under which the accumulation pass reads each chunk's county rings
#: (:data:`carbonscape.rasterize.COUNTY_RINGS`: one :class:`~carbonscape.rasterize.ChunkRings` a chunk).
COUNTY_RINGS = "county_rings"


def span_counts_areas(blocks: Mapping[str, Any], where: Chunk) -> np.ndarray:
    """:data:`COUNTS_AREAS` from the counties' rings instead of an id raster: the chunk's spans
    (pixel-centre rule, :func:`carbonscape.kernels.spans.chunk_spans`) are counted straight into
    the (county, class) table with the land use (:func:`~carbonscape.kernels.spans.span_tables`),
    so no id raster is burned, held or read; in fraction mode (``layout.params["boundary_rings"]``)
    boundary pixels are then shared by covered fraction, their pixel-centre county read from the
    spans (:func:`~carbonscape.kernels.fraction.share_by_spans`).

    Where the kernel does not apply (codes wider than 16 bits, or areas that vary along rows, e.g.
    UTM far off its zone), the ids are burned from the same rings and counted as
    :func:`count_and_sum_pair_areas` does: the same table either way, for counties that share no
    pixel centre (what the overlap check of :func:`carbonscape.rasterize.lazy_zones` guarantees;
    were two to share one, the id raster would give it to the later, the spans to the one
    reaching it first from the left).
    """
    codes, rings = blocks["landuse"], blocks[COUNTY_RINGS]
    index, layout = where.layout.classes, where.layout
    height, width = codes.shape
    row_areas, (grid_lattice, node_rows, node_cols) = _row_areas(where, height)
    if codes.dtype.kind not in "iu" or codes.dtype.itemsize > 2 or row_areas is None:
        ids = np.zeros(codes.shape, dtype=np.min_scalar_type(layout.n_counties))  # as small as the burned id raster was
        burn_rings(rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties, ids)
        return count_and_sum_pair_areas({**blocks, "counties": ids}, where)
    spans = chunk_spans(rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties, height, width)
    lut, offset = index.dense_lut(codes.dtype)  # type: ignore[union-attr]
    uniform = _uniform_area(where)
    counts, areas = span_tables(codes, lut, offset, layout.n_counties, index.n_cols, *spans,  # type: ignore[union-attr]
                                np.zeros(0) if uniform is not None else row_areas)
    table = np.stack([counts.astype(np.float64), counts * uniform if uniform is not None else areas])
    if layout.params.get("boundary_rings") is not None and len(rings.counties):
        share_by_spans(
            table[1], codes, index.lut, index.offset, index.unknown_col, index.nodata_code, index.nodata_col,  # type: ignore[union-attr]
            row_areas, grid_lattice, node_rows, node_cols, where.rows.start, where.cols.start,
            rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties, *spans,
        )
    return table


def span_counts(blocks: Mapping[str, Any], where: Chunk) -> np.ndarray:
    """:data:`COUNTS` from the counties' rings instead of an id raster (pixels only, where every
    pixel has one area): the counts of :func:`span_counts_areas`, int64 ``(n_counties, n_cols)``."""
    codes, rings = blocks["landuse"], blocks[COUNTY_RINGS]
    index, layout = where.layout.classes, where.layout
    if codes.dtype.kind not in "iu" or codes.dtype.itemsize > 2:
        ids = np.zeros(codes.shape, dtype=np.min_scalar_type(layout.n_counties))  # as small as the burned id raster was
        burn_rings(rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties, ids)
        return count_pairs({"counties": ids, "landuse": codes}, where)
    spans = chunk_spans(rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties, *codes.shape)
    lut, offset = index.dense_lut(codes.dtype)  # type: ignore[union-attr]
    return span_tables(codes, lut, offset, layout.n_counties, index.n_cols, *spans, np.zeros(0))[0]  # type: ignore[union-attr]


def _span_counts_reference(blocks: Mapping[str, Any], where: Chunk) -> np.ndarray:
    from carbonscape.kernels.spans import burn_rings_numpy

    rings = blocks[COUNTY_RINGS]
    ids = burn_rings_numpy(rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties, blocks["landuse"].shape)
    return ref.counts_reference({"counties": ids, "landuse": blocks["landuse"]}, where)


def _counts_areas_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    return np.stack([ref.counts_reference(blocks, where).astype(np.float64), ref.areas_reference(blocks, where)])


def _counts_areas_shape(layout: Layout) -> tuple[int, ...]:
    return (2, layout.n_counties, layout.n_cols)


def count_codes(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels of each code in ``layout.codes``'s range, others in the last bin."""
    lo, n = where.layout.codes  # type: ignore[misc]
    return code_histogram(blocks["landuse"], lo, n)


def code_counts(hist: np.ndarray, layout: Layout) -> dict[int, int]:
    """Finalize of :data:`CODE_HISTOGRAM`: ``{code: pixels}`` of the codes present (as the store's
    ``code_counts`` attribute records them)."""
    lo = layout.codes[0]  # type: ignore[index]
    hist = np.asarray(hist)
    return {int(i) + lo: int(hist[i]) for i in np.flatnonzero(hist[:-1])}


def _dense(codes: np.ndarray, index: ClassIndex) -> tuple[np.ndarray, np.ndarray, int]:
    """``(values, lut, offset)`` such that ``lut[values - offset]`` is each pixel's column."""
    if codes.dtype.kind in "iu" and codes.dtype.itemsize <= 2:
        lut, offset = index.dense_lut(codes.dtype)
        return codes, lut, offset
    columns = code_columns(codes, index.lut, index.offset, index.unknown_col, index.nodata_code, index.nodata_col)
    return columns, np.arange(index.n_cols, dtype=np.int32), 0


def _pair(blocks: Mapping[str, np.ndarray], where: Chunk) -> tuple:
    layout = where.layout
    a, lut_a, off_a = _dense(blocks["landuse"], layout.classes)  # type: ignore[arg-type]
    b, lut_b, off_b = _dense(blocks["landuse_to"], layout.to_classes)
    return (blocks["counties"], a, b, lut_a, off_a, lut_b, off_b, layout.n_counties, layout.n_cols, layout.to_classes.n_cols)


def count_pair_transitions(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels per (county, column in ``landuse``, column in ``landuse_to``) of one chunk.

    Two 8-bit maps take one lookup per pixel in a 256 × 256 table of (from, to) cells (12 % faster
    than two lookups on a 4096² chunk here, and the pass is read-bound); others two lookups.
    """
    a, b = blocks["landuse"], blocks["landuse_to"]
    if a.dtype.kind in "iu" and b.dtype.kind in "iu" and a.dtype.itemsize == 1 and b.dtype.itemsize == 1:
        layout = where.layout
        lut_a, off_a = layout.classes.dense_lut(a.dtype)  # type: ignore[union-attr]
        lut_b, off_b = layout.to_classes.dense_lut(b.dtype)
        n_b = layout.to_classes.n_cols
        pair_lut = (lut_a[:, None] * n_b + lut_b[None, :]).astype(np.int32)
        table = count_transitions_8bit(blocks["counties"], a, b, pair_lut, off_a, off_b, layout.n_counties, layout.n_cols * n_b)
        return table.reshape(layout.n_counties, layout.n_cols, n_b)
    return count_transitions(*_pair(blocks, where))


def sum_pair_transition_areas(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """True area (m²) per (county, column in ``landuse``, column in ``landuse_to``) of one chunk."""
    return _transition_tables(blocks, where, with_area=True)[1]


def _transition_tables(blocks: Mapping[str, np.ndarray], where: Chunk, *, with_area: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(pixels, areas m²)`` per (county, column A, column B) of one chunk from one kernel call
    (:func:`~carbonscape.kernels.transitions.transition_tables`); ``areas`` is None without ``with_area``.

    On a grid that knows its area lattice each row's areas are rebuilt from it inside the kernel
    (the per-pixel area block of a 4096² chunk took 1.3 s to build, ten times the kernel)."""
    layout = where.layout
    counties, a, b = blocks["counties"], blocks["landuse"], blocks["landuse_to"]
    a, lut_a, off_a = _dense(a, layout.classes)  # type: ignore[arg-type]
    b, lut_b, off_b = _dense(b, layout.to_classes)
    n_a, n_b = layout.n_cols, layout.to_classes.n_cols
    pixels, areas = transition_tables(
        counties, a, b, lut_a.astype(np.int64) * n_b, off_a, lut_b.astype(np.int64), off_b, layout.n_counties, n_a * n_b,
        *_area_arguments(where, a.shape, with_area),
    )
    shape = (layout.n_counties, n_a, n_b)
    return pixels.reshape(shape), (areas.reshape(shape) if with_area else None)  # type: ignore[return-value]


def _area_arguments(where: Chunk, shape: tuple[int, int], with_area: bool) -> tuple:
    """The area arguments of the transition kernels (``with_area, use_lattice, lattice, node_rows,
    node_cols, area, row0, col0``): the grid's area lattice when it has one, else the area source's
    block broadcast to 2-D (see :func:`~carbonscape.kernels.transitions.transition_tables`)."""
    lattice = getattr(where.areas, "area_lattice", None) if with_area else None
    if lattice is not None:
        grid_lattice, node_rows, node_cols = lattice()
        area = _NO_AREA
    else:
        grid_lattice, node_rows, node_cols = _NO_LATTICE
        area = np.asarray(where.area(), dtype=np.float64) if with_area else _NO_AREA
        if area.ndim != 2:
            area = np.broadcast_to(area, shape).copy()
    return (with_area, lattice is not None, np.ascontiguousarray(grid_lattice, dtype=np.float64), np.asarray(node_rows, dtype=np.int64),
            np.asarray(node_cols, dtype=np.int64), np.ascontiguousarray(area), where.rows.start, where.cols.start)


#: One record per (county, from, to) cell present: ``key = (county * n_a + a) * n_b + b``
#: (columns as :class:`ClassIndex` numbers them), its pixels and true area (m²).
SPARSE_DTYPE = np.dtype([("key", np.int64), ("pixels", np.int64), ("area_m2", np.float64)])


def sparse_pair_transitions(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """The (county, column in ``landuse``, column in ``landuse_to``) cells one chunk holds, as
    :data:`SPARSE_DTYPE` records sorted by key: pixels and true areas (m²) from one hashed kernel
    call (:func:`~carbonscape.kernels.transitions.sparse_transition_tables`)."""
    layout = where.layout
    a, lut_a, off_a = _dense(blocks["landuse"], layout.classes)  # type: ignore[arg-type]
    b, lut_b, off_b = _dense(blocks["landuse_to"], layout.to_classes)
    n_a, n_b = layout.n_cols, layout.to_classes.n_cols
    uniform = where.areas.uniform_area_m2() if where.areas is not None else None
    keys, pixels, areas = sparse_transition_tables(
        blocks["counties"], a, b, lut_a.astype(np.int64) * n_b, off_a, lut_b.astype(np.int64), off_b, layout.n_counties, n_a * n_b,
        *_area_arguments(where, a.shape, uniform is None),
    )
    out = np.empty(len(keys), dtype=SPARSE_DTYPE)
    out["key"], out["pixels"] = keys, pixels
    out["area_m2"] = areas if uniform is None else pixels * float(uniform)
    return out


def merge_sparse(tables: list[np.ndarray]) -> np.ndarray:
    """Sparse transition tables (:data:`SPARSE_DTYPE`) into one: cells of one key summed, sorted by key."""
    joined = np.concatenate([np.asarray(t, dtype=SPARSE_DTYPE) for t in tables]) if tables else np.empty(0, SPARSE_DTYPE)
    keys, inverse = np.unique(joined["key"], return_inverse=True)
    inverse = inverse.ravel()
    out = np.empty(len(keys), dtype=SPARSE_DTYPE)
    out["key"] = keys
    pixels = np.zeros(len(keys), dtype=np.int64)
    np.add.at(pixels, inverse, joined["pixels"])  # integer sums stay exact
    out["pixels"] = pixels
    out["area_m2"] = np.bincount(inverse, weights=joined["area_m2"], minlength=len(keys))
    return out


def sparse_cells(table: np.ndarray, layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(county, column A, column B, pixels, area m²)`` arrays of a sparse transition table."""
    table = np.asarray(table, dtype=SPARSE_DTYPE)
    n_a, n_b = layout.n_cols, layout.to_classes.n_cols
    county, rest = np.divmod(table["key"], n_a * n_b)
    a, b = np.divmod(rest, n_b)
    return county, a, b, table["pixels"].copy(), table["area_m2"].copy()


def sparse_to_dense(table: np.ndarray, layout: Layout) -> np.ndarray:
    """A sparse transition table as the dense ``(2, n_counties, n_a, n_b)`` of :data:`TRANSITION_TABLES`."""
    n_a, n_b = layout.n_cols, layout.to_classes.n_cols
    dense = np.zeros((2, layout.n_counties * n_a * n_b))
    table = np.asarray(table, dtype=SPARSE_DTYPE)
    dense[0, table["key"]] = table["pixels"]
    dense[1, table["key"]] = table["area_m2"]
    return dense.reshape(2, layout.n_counties, n_a, n_b)


#: Up to this many (county, class in each map) cells a chunk's trajectories are counted in a table
#: of every cell (2^20: 16 MiB of pixels and areas), beyond it in a hash table of the cells present.
_DENSE_TRAJECTORY_CELLS = 1 << 20


@dataclass(frozen=True)
class Trajectories:
    """Every pixel's path through ``k`` maps: pixels and true areas (m²) per (county, column in
    map 1, ..., column in map k), the cells present only (:data:`SPARSE_DTYPE` records, the key
    ``county * stride + Σ column_m * stride_m``).

    One table per pass however many maps: each pair's transfer matrix (:meth:`pair`) and each
    map's own (county, class) table (:meth:`margin`) are its margins, so a further map costs one
    load, one lookup and one add per pixel, not another table per chunk
    (:func:`~carbonscape.kernels.transitions.trajectory_tables`).
    """

    maps: tuple[str, ...]
    classes: tuple[ClassIndex, ...]
    n_counties: int
    dense_cells: int = _DENSE_TRAJECTORY_CELLS  # up to this many cells, a table of every cell per chunk

    @property
    def strides(self) -> tuple[tuple[int, ...], int]:
        """``(stride of each map's column, stride of the county)``."""
        strides, total = [], 1
        for index in reversed(self.classes):
            strides.append(total)
            total *= index.n_cols
        return tuple(reversed(strides)), total

    def fits(self) -> bool:
        """Whether every key fits an int64 (else pairs are accumulated one table each)."""
        return self.n_counties * self.strides[1] < (1 << 62)

    def statistic(self, name: str = "trajectories") -> Accumulation:
        return Accumulation(name, chunk=self.chunk, reference=self.reference, reads=("counties", *self.maps), shape=lambda _l: (0,),
                            dtype=SPARSE_DTYPE, combine="merge", merge=merge_sparse, needs_area=True)

    def chunk(self, blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
        strides, total = self.strides
        codes = [blocks[name] for name in self.maps]
        if all(c.dtype == codes[0].dtype for c in codes) and codes[0].dtype.kind in "iu" and codes[0].dtype.itemsize <= 2:
            tables = [index.dense_lut(codes[0].dtype) for index in self.classes]
            luts = np.stack([lut.astype(np.int64) * stride for (lut, _), stride in zip(tables, strides)])
            offsets = np.array([offset for _, offset in tables], dtype=np.int64)
        else:  # mixed or wide codes: each map's columns first, read through identity tables
            codes = [code_columns(c, ix.lut, ix.offset, ix.unknown_col, ix.nodata_code, ix.nodata_col) for c, ix in zip(codes, self.classes)]
            width = max(ix.n_cols for ix in self.classes)
            luts = np.stack([np.arange(width, dtype=np.int64) * stride for stride in strides])
            offsets = np.zeros(len(codes), dtype=np.int64)
        uniform = where.areas.uniform_area_m2() if where.areas is not None else None
        keys, pixels, areas = trajectory_tables(
            blocks["counties"], tuple(np.ascontiguousarray(c) for c in codes), luts, offsets, self.n_counties, total,
            self.n_counties * total <= self.dense_cells,
            *_area_arguments(where, codes[0].shape, uniform is None),
        )
        out = np.empty(len(keys), dtype=SPARSE_DTYPE)
        out["key"], out["pixels"] = keys, pixels
        out["area_m2"] = areas if uniform is None else pixels * float(uniform)
        return out

    def reference(self, blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
        """Plain numpy: the keys of every pixel, ``np.unique``, ``np.bincount``."""
        strides, total = self.strides
        keys = ref._county_ids(blocks, where) * total
        for name, index, stride in zip(self.maps, self.classes, strides):
            keys = keys + index.columns(blocks[name]).ravel() * stride
        return ref.sparse_records(keys, np.broadcast_to(where.area(), blocks[self.maps[0]].shape).ravel())

    def columns(self, table: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """``(county ids, [column in each map])`` of every record."""
        strides, total = self.strides
        county, rest = np.divmod(np.asarray(table["key"], dtype=np.int64), total)
        columns = []
        for stride in strides:
            column, rest = np.divmod(rest, stride)
            columns.append(column)
        return county, columns

    def pair(self, table: np.ndarray, first: int, second: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(county, column in map first, column in map second, pixels, area m²)``: the pair's
        transfer matrix, cells present only (sorted by county, then columns)."""
        county, columns = self.columns(table)
        n_a, n_b = self.classes[first].n_cols, self.classes[second].n_cols
        keys = (county * n_a + columns[first]) * n_b + columns[second]
        present, inverse = np.unique(keys, return_inverse=True)
        inverse = inverse.ravel()
        pixels = np.zeros(len(present), dtype=np.int64)
        np.add.at(pixels, inverse, table["pixels"])
        areas = np.bincount(inverse, weights=table["area_m2"], minlength=len(present))
        z, rest = np.divmod(present, n_a * n_b)
        a, b = np.divmod(rest, n_b)
        return z, a, b, pixels, areas

    def margin(self, table: np.ndarray, which: int) -> tuple[np.ndarray, np.ndarray]:
        """``(pixels int64, areas m²)`` per (county, class column) of map ``which``."""
        county, columns = self.columns(table)
        n = self.classes[which].n_cols
        flat = county * n + columns[which]
        pixels = np.zeros(self.n_counties * n, dtype=np.int64)
        np.add.at(pixels, flat, table["pixels"])
        areas = np.bincount(flat, weights=table["area_m2"], minlength=self.n_counties * n)
        return pixels.reshape(-1, n), areas.reshape(-1, n)


_NO_AREA = np.ones((1, 1), dtype=np.float64)
_NO_LATTICE = (np.ones((1, 1), dtype=np.float64), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))


def pair_transition_tables(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels and true area (m²) per (county, column in ``landuse``, column in ``landuse_to``) of
    one chunk, as float64 ``(2, n_counties, n_a, n_b)`` (pixel counts are exact in float64 up to
    2^53): one kernel call, one read of the three blocks. Where every pixel has one area (a
    nominal grid) the kernel only counts and the areas are ``pixels × area``."""
    uniform = where.areas.uniform_area_m2() if where.areas is not None else None
    pixels, areas = _transition_tables(blocks, where, with_area=uniform is None)
    if areas is None:
        areas = pixels * float(uniform)  # type: ignore[arg-type]
    return np.stack([pixels.astype(np.float64), areas])


def _transition_shape(layout: Layout) -> tuple[int, ...]:
    return (layout.n_counties, layout.n_cols, layout.to_classes.n_cols)


def _histogram_shape(layout: Layout) -> tuple[int, ...]:
    if layout.codes is None:
        raise ValueError("CODE_HISTOGRAM needs Layout(codes=(lo, n))")
    return (layout.codes[1] + 1,)


COUNTS = Accumulation("counts", chunk=count_pairs, reference=ref.counts_reference)
AREAS = Accumulation(
    "areas", chunk=sum_pair_areas, reference=ref.areas_reference, dtype=np.dtype(np.float64), needs_area=True
)
COUNTS_AREAS = Accumulation(
    "counts_areas", chunk=count_and_sum_pair_areas, reference=_counts_areas_reference, dtype=np.dtype(np.float64),
    shape=_counts_areas_shape, needs_area=True,
)
SPAN_COUNTS_AREAS = Accumulation(
    "counts_areas", chunk=span_counts_areas, reference=ref.span_counts_areas_reference, reads=("landuse", COUNTY_RINGS),
    dtype=np.dtype(np.float64), shape=_counts_areas_shape, needs_area=True,
)
"""Pixels and true areas (m²) per (county, class column), ``(2, n_counties, n_cols)`` as
:data:`COUNTS_AREAS`, from the land use and each chunk's county rings only (no id raster):
what a pass over counties burned on the fly counts (:func:`span_counts_areas`)."""
SPAN_COUNTS = Accumulation("counts", chunk=span_counts, reference=_span_counts_reference, reads=("landuse", COUNTY_RINGS))
""":data:`COUNTS` from the land use and each chunk's county rings only (:func:`span_counts`)."""
CODE_HISTOGRAM = Accumulation(
    "code_histogram", chunk=count_codes, reference=ref.code_histogram_reference, reads=("landuse",),
    shape=_histogram_shape, finalize=code_counts,
)

TRANSITIONS = Accumulation(
    "transitions", chunk=count_pair_transitions, reference=ref.transitions_reference,
    reads=("counties", "landuse", "landuse_to"), shape=_transition_shape,
)
TRANSITION_AREAS = Accumulation(
    "transition_areas", chunk=sum_pair_transition_areas, reference=ref.transition_areas_reference,
    reads=("counties", "landuse", "landuse_to"), shape=_transition_shape, dtype=np.dtype(np.float64), needs_area=True,
)

TRANSITION_TABLES = Accumulation(
    "transition_tables", chunk=pair_transition_tables, reference=ref.transition_tables_reference,
    reads=("counties", "landuse", "landuse_to"), shape=lambda layout: (2, *_transition_shape(layout)), dtype=np.dtype(np.float64),
    needs_area=True,
)
"""Pixels ``[0]`` and true areas in m² ``[1]`` of every (county, class in ``landuse``, class in
``landuse_to``) in one kernel call per chunk: the statistic of :func:`carbonscape.change.change`
and :func:`carbonscape.change.maps_pass` (each map's own counts and areas are its margins)."""

SPARSE_TRANSITIONS = Accumulation(
    "sparse_transitions", chunk=sparse_pair_transitions, reference=ref.sparse_transitions_reference,
    reads=("counties", "landuse", "landuse_to"), shape=lambda layout: (0,), dtype=SPARSE_DTYPE, combine="merge",
    merge=merge_sparse, needs_area=True,
)
""":data:`TRANSITION_TABLES` where codes are many: only the (county, from, to) cells present, as
:data:`SPARSE_DTYPE` records (:func:`sparse_cells`, :func:`sparse_to_dense` read them). Its size
is the number of distinct transitions, never ``n_counties × n_a × n_b``."""

LIBRARY: dict[str, Accumulation] = {
    spec.name: spec for spec in (COUNTS, AREAS, CODE_HISTOGRAM, TRANSITIONS, TRANSITION_AREAS, TRANSITION_TABLES, COUNTS_AREAS)
}
