"""Fraction mode for transfer matrices: the statistic :data:`FRACTION_TRANSITIONS`.

In fraction mode (a county store of ``coverage = "fraction"``) each map's (county, class) areas
share every boundary pixel among the counties covering it by its exact covered fraction
(:func:`carbonscape.kernels.fraction.share_by_rings`). A transfer matrix by county must share them
the same way, or its row sums (over the second map's classes) would not be the first map's
areas of that county, nor its column sums the second map's. This statistic is what turns the
pixel-centre (county, class A, class B) areas of :data:`~carbonscape.accumulate.TRANSITION_TABLES`
(or of :class:`~carbonscape.accumulate.Trajectories`) into fraction-mode ones: per chunk, the
area each boundary pixel moves from its pixel-centre county (or from outside every county) to the
counties covering it, in its (class A, class B) cell. Added to the pixel-centre areas it gives,
for every county and class, a row sum equal to the first map's fraction-mode area and a column sum
equal to the second's (to float precision); pixel counts are not moved (a county's ``pixels``
stay the pixel-centre count).

Its table is sparse (:data:`~carbonscape.accumulate.SPARSE_DTYPE` records, ``pixels`` 0): only
boundary pixels move area, so it holds a few cells per boundary county, never
``n_counties × n_a × n_b``. The per-chunk work reuses the (county, class) fraction kernel unchanged:
the pixel's pair of columns is its "class" and the chunk's counties and pairs are numbered
locally (:func:`carbonscape.kernels.fraction_pairs.local_pairs`), so the kernel's table is
(counties crossing the chunk + 1) × (pairs present in the chunk).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from carbonscape.accumulate import reference as ref
from carbonscape.accumulate.classindex import ClassIndex
from carbonscape.accumulate.library import SPARSE_DTYPE, _row_areas, merge_sparse
from carbonscape.accumulate.spec import Accumulation, Chunk, Layout
from carbonscape.kernels.fraction import correct_by_fractions, share_by_rings
from carbonscape.kernels.fraction_pairs import local_pairs, pair_codes_8bit

#: ``nodata`` argument of the kernels for local pair numbers, which are never negative.
_NO_NODATA = -1


def _rings_of(blocks: Mapping[str, Any], where: Chunk) -> tuple[Any, np.ndarray | None]:
    """``(rings, None)`` of the chunk (read as the raster ``layout.params["boundary_rings"]`` or
    from the fraction-mode store at ``layout.params["boundary"]``), or ``(None, entries)`` for a
    store written before rings were kept (its per-chunk boundary table)."""
    params = where.layout.params
    raster = params.get("boundary_rings")
    if raster is not None:
        if raster not in blocks:
            raise ValueError(f"fraction mode reads the county rings as raster {raster!r}: the statistic must read it")
        return blocks[raster], None
    store = params.get("boundary")
    if store is None:
        raise ValueError("FRACTION_TRANSITIONS needs Layout(params={'boundary': store}) or {'boundary_rings': raster}")
    from carbonscape.rasterize import read_boundary, read_rings

    rings = read_rings(store, where.location)
    if rings is not None:
        return rings, None
    return None, read_boundary(store, where.location)


#: Up to this many (county, pair of columns) cells, a chunk's moves are gathered in a table of
#: every county and pair (no per-pixel renumbering: 8-bit maps then cost one pass writing a
#: uint16 pair code a pixel); beyond it, in one of the chunk's own counties and pairs.
DENSE_CELLS = 1 << 20


def fraction_transition_moves(blocks: Mapping[str, Any], where: Chunk) -> np.ndarray:
    """The area (m²) the chunk's boundary pixels move between (county, column in ``landuse``,
    column in ``landuse_to``) cells, from the pixel-centre rule to exact covered fractions, as
    :data:`SPARSE_DTYPE` records sorted by key ``(county * n_a + a) * n_b + b`` (``pixels`` 0; the
    moves of one pixel sum to 0, id 0 being outside every county).

    Two 8-bit maps with few (county, pair) cells (:data:`DENSE_CELLS`): each pixel's pair is one
    uint16 code (:func:`~carbonscape.kernels.fraction_pairs.pair_codes_8bit`) read through a table
    of pair columns, and the kernel's table has a row per county. Otherwise counties and pairs are
    numbered per chunk (:func:`~carbonscape.kernels.fraction_pairs.local_pairs`)."""
    layout = where.layout
    index_a, index_b = layout.classes, layout.to_classes
    n_a, n_b = layout.n_cols, index_b.n_cols
    rings, entries = _rings_of(blocks, where)
    ring_counties = np.asarray(rings.counties if rings is not None else entries["county"], dtype=np.int64)
    if not len(ring_counties):
        return np.empty(0, dtype=SPARSE_DTYPE)
    zones, a, b = blocks["counties"], blocks["landuse"], blocks["landuse_to"]
    eight_bit = all(x.dtype.kind in "iu" and x.dtype.itemsize == 1 for x in (a, b))
    if eight_bit and layout.n_counties * n_a * n_b <= DENSE_CELLS:
        lut_a, off_a = index_a.dense_lut(a.dtype)  # type: ignore[union-attr]
        lut_b, off_b = index_b.dense_lut(b.dtype)
        lut = (lut_a[:, None].astype(np.int32) * n_b + lut_b[None, :]).ravel()
        codes = pair_codes_8bit(a, b, off_a, off_b)
        n_cols, keys = n_a * n_b, np.arange(n_a * n_b, dtype=np.int64)
        rows_of = np.arange(layout.n_counties, dtype=np.int64)  # table row → county id
        to_row = rows_of
    else:
        present = np.unique(ring_counties)
        county_local = np.zeros(layout.n_counties, dtype=np.int32)
        county_local[present] = np.arange(1, len(present) + 1, dtype=np.int32)
        pair_local = np.full(n_a * n_b, -1, dtype=np.int64)
        codes, zones, keys = local_pairs(
            zones, a, index_a.lut, index_a.offset, index_a.unknown_col, index_a.nodata_code, index_a.nodata_col,  # type: ignore[union-attr]
            b, index_b.lut, index_b.offset, index_b.unknown_col, index_b.nodata_code, index_b.nodata_col, n_b, county_local, pair_local,
        )
        n_cols = len(keys)
        lut = np.arange(n_cols, dtype=np.int32)
        rows_of = np.concatenate([[0], present]).astype(np.int64)
        to_row = county_local.astype(np.int64)
    table = np.zeros((len(rows_of), n_cols + 1))  # the last column: nodata/unknown of ``lut``, never hit
    height = codes.shape[0]
    row_areas, (lattice, node_rows, node_cols) = _row_areas(where, height)
    if rings is not None:
        share_by_rings(
            table, zones, codes, lut, 0, n_cols, _NO_NODATA, n_cols,
            np.zeros(0) if row_areas is None else row_areas, lattice, node_rows, node_cols, where.rows.start, where.cols.start,
            rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, to_row[rings.counties],
        )
    else:  # an older store's per-pixel boundary table
        if row_areas is not None:  # per-row areas as a lattice of one node per row
            lattice = np.ascontiguousarray(row_areas[:, None])
            node_rows = np.arange(where.rows.start, where.rows.start + height, dtype=np.int64)
            node_cols = np.array([where.cols.start], dtype=np.int64)
        correct_by_fractions(
            table, zones, codes, lut, 0, n_cols, _NO_NODATA, n_cols, lattice, node_rows, node_cols,
            where.rows.start, where.cols.start, entries["pixel"], to_row[entries["county"].astype(np.int64)], entries["fraction"],
        )
    rows, cols = np.nonzero(table[:, :n_cols])
    out = np.empty(len(rows), dtype=SPARSE_DTYPE)
    out["key"] = rows_of[rows] * (n_a * n_b) + keys[cols]
    out["pixels"] = 0
    out["area_m2"] = table[rows, cols]
    return out[np.argsort(out["key"], kind="stable")]


def fraction_transition_moves_reference(blocks: Mapping[str, Any], where: Chunk) -> np.ndarray:
    """Plain numpy: the pair of columns ``a * n_b + b`` of every pixel taken as its class, the
    fraction-mode (county, class) areas of :func:`carbonscape.accumulate.reference.areas_reference`
    (or, from rings, of ``span_counts_areas_reference``) minus the pixel-centre ones, as records of
    the cells that differ."""
    layout = where.layout
    n_a, n_b = layout.n_cols, layout.to_classes.n_cols
    pair_codes = layout.classes.columns(blocks["landuse"]) * n_b + layout.to_classes.columns(blocks["landuse_to"])  # type: ignore[union-attr]
    pair_index = ClassIndex.build(range(n_a * n_b), nodata=None)
    as_classes = Layout(n_counties=layout.n_counties, classes=pair_index, params=layout.params)
    centre = Chunk(layout=replace(as_classes, params={}), rows=where.rows, cols=where.cols, location=where.location, areas=where.areas)
    shared = Chunk(layout=as_classes, rows=where.rows, cols=where.cols, location=where.location, areas=where.areas)
    pair_blocks = {**blocks, "landuse": pair_codes}
    before = ref.areas_reference(pair_blocks, centre)
    if layout.params.get("boundary_rings") is not None:
        rings_blocks = {"landuse": pair_codes, "county_rings": blocks[layout.params["boundary_rings"]]}
        after = ref.span_counts_areas_reference(rings_blocks, replace(shared, layout=replace(as_classes, params={"boundary_rings": "county_rings"})))[1]
    else:
        after = ref.areas_reference(pair_blocks, shared)
    moves = (after - before)[:, : n_a * n_b]
    county, pair = np.nonzero(moves)
    out = np.empty(len(county), dtype=SPARSE_DTYPE)
    out["key"] = county * (n_a * n_b) + pair
    out["pixels"] = 0
    out["area_m2"] = moves[county, pair]
    return out


def fraction_transitions(*, rings: str | None = None) -> Accumulation:
    """:data:`FRACTION_TRANSITIONS`, reading the county rings as raster ``rings`` when counties
    are burned on the fly (``Layout(params={"boundary_rings": rings})``)."""
    reads = ("counties", "landuse", "landuse_to") + ((rings,) if rings is not None else ())
    return Accumulation(
        "fraction_transitions", chunk=fraction_transition_moves, reference=fraction_transition_moves_reference, reads=reads,
        shape=lambda _layout: (0,), dtype=SPARSE_DTYPE, combine="merge", merge=merge_sparse, needs_area=True,
    )


FRACTION_TRANSITIONS = fraction_transitions()
"""The area (m²) boundary pixels move between (county, class in ``landuse``, class in
``landuse_to``) cells in fraction mode (``Layout(params={"boundary": fraction-mode county
store})``): sparse records (:data:`~carbonscape.accumulate.SPARSE_DTYPE`, ``pixels`` 0) to add to
the pixel-centre areas of :data:`~carbonscape.accumulate.TRANSITION_TABLES`."""


def add_moves(cells: tuple[np.ndarray, ...], moves: np.ndarray, layout: Layout) -> tuple[np.ndarray, ...]:
    """``(county, a, b, pixels, area m²)`` cells (as :func:`~carbonscape.accumulate.sparse_cells`
    gives them) with the areas of :data:`FRACTION_TRANSITIONS` records added: cells the moves
    reach that held no pixel centre appear with 0 pixels; the result is sorted by key."""
    county, a, b, pixels, area = (np.asarray(x) for x in cells)
    n_a, n_b = layout.n_cols, layout.to_classes.n_cols
    records = np.empty(len(county), dtype=SPARSE_DTYPE)
    records["key"] = (county.astype(np.int64) * n_a + a) * n_b + b
    records["pixels"], records["area_m2"] = pixels, area
    from carbonscape.accumulate.library import sparse_cells

    return sparse_cells(merge_sparse([records, np.asarray(moves, dtype=SPARSE_DTYPE)]), layout)
