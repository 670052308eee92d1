"""The statistics carbonscape accumulates, one record each (see :class:`~.spec.Accumulation`).

A new statistic is one kernel (``carbonscape.kernels``), one numpy reference
(:mod:`.reference`) and one record here.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from carbonscape.accumulate import reference as ref
from carbonscape.accumulate.spec import Accumulation, Chunk, Layout
from carbonscape.accumulate.classindex import ClassIndex
from carbonscape.kernels.crosstab import code_histogram, crosstab_areas, crosstab_counts, crosstab_counts_dense
from carbonscape.kernels.transitions import code_columns, count_transitions, count_transitions_8bit, sum_transition_areas
from carbonscape.kernels.area import sum_pair_areas as sum_pair_areas_lattice
from carbonscape.kernels.area import sum_pair_areas_dense, sum_pair_counts_areas_dense
from carbonscape.kernels.fraction import correct_by_fractions


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
    boundary = where.layout.params.get("boundary")
    if boundary is not None:
        _share_boundary_pixels(table, counties, codes, where, boundary)
    return table


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
    from carbonscape.rasterize import read_boundary

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


def count_and_sum_pair_areas(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels and true areas (m²) per (county, class column) of one chunk: ``(2, n_counties, n_cols)``
    float64, counts first. On a grid's area lattice with 8/16-bit codes one fused kernel makes both
    (Web Mercator supply within ~1.2× of the count alone, benchmarks/areas.py); otherwise the two
    statistics' own kernels. Fraction mode shares boundary pixels' areas as :func:`sum_pair_areas`."""
    counties, codes = blocks["counties"], blocks["landuse"]
    lattice = getattr(where.areas, "area_lattice", None)
    if lattice is None or codes.dtype.itemsize > 2 or _uniform_area(where) is not None:
        return np.stack([count_pairs(blocks, where).astype(np.float64), sum_pair_areas(blocks, where)])
    index = where.layout.classes
    lut, offset = index.dense_lut(codes.dtype)  # type: ignore[union-attr]
    table = sum_pair_counts_areas_dense(
        counties, codes, lut, offset, where.layout.n_counties, index.n_cols, *lattice(), where.rows.start, where.cols.start,  # type: ignore[union-attr]
    )
    boundary = where.layout.params.get("boundary")
    if boundary is not None:
        _share_boundary_pixels(table[1], counties, codes, where, boundary)
    return table


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
    return sum_transition_areas(*_pair(blocks, where), where.area())


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

LIBRARY: dict[str, Accumulation] = {
    spec.name: spec for spec in (COUNTS, AREAS, CODE_HISTOGRAM, TRANSITIONS, TRANSITION_AREAS, COUNTS_AREAS)
}
