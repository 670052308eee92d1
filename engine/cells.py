"""Regular grid cells as units, and continuous rasters summed per unit, on the accumulation layer.

**Grid cells.** A cell is ``SIZE × SIZE`` CRS units (a whole number of pixels ``cell``) aligned to
the land-use raster's top-left corner: cell ``(row, col)`` holds pixels ``row·cell … row·cell +
cell − 1`` down and ``col·cell …`` across, and its id is ``row · n_cell_cols + col`` (row-major, no
polygons, no rasterization). The land use is read in the store's own chunks, and each chunk makes
the table of the cells it touches: :data:`CELL_COUNTS` and :data:`CELL_AREAS` keep one small table
per chunk (``combine="blocks"``) that :func:`stitch_cells` lays side by side, adding the partial
tables of a cell astride a chunk edge, with no global reduction over a million-row table (a
store ingested with chunks of whole cells has no such cell).
Cells cut by the raster's right or bottom edge hold fewer pixels; their area says so.

**Continuous rasters** (:data:`WEIGHTED_SUM` per county, :data:`CELL_VALUES` per cell): the running
sums ``[pixels, Σv, Σa, Σv·a]`` of a float raster's valid pixels (finite, not nodata; ``a`` the
pixel's true area in m²) in the same pass as the counts, giving the sum ``Σv`` (population per
pixel → people) and the area-weighted mean ``Σv·a / Σa`` (a density, NPP, a correction factor).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
from carbonscape.accumulate import Accumulation, Chunk, ClassIndex, Layout, accumulate, bind, pixel_areas
from carbonscape.carbon import (  # _count_unknown: the supply pass's own error-path listing, shared rather than copied
    M2_PER_HA,
    M2_PER_KM2,
    POOL_COLUMNS,
    PoolTable,
    UnknownCodesError,
    _count_unknown,
    read_pools,
    unknown_codes_message,
)
from carbonscape.cluster import Executor, using
from carbonscape.errors import GridError, InputError, PoolTableError
from carbonscape.grid import Grid
from carbonscape.io import atomic_path, open_store, staged_outputs
from carbonscape.kernels.cells import (
    N_SUMS,
    cell_areas,
    cell_areas_lattice,
    cell_counts,
    cell_counts_areas_lattice,
    cell_factor_areas,
    cell_factor_areas_lattice,
    cell_lookup_sums,
    cell_lookup_sums_lattice,
    cell_region_sums,
    cell_region_sums_lattice,
    cell_value_sums,
    cell_value_sums_lattice,
    unit_value_sums,
)

log = logging.getLogger(__name__)

CELL_FILES = {"table": "supply_by_cell.csv", "polygons": "cells.gpkg", "supply_density": "cell_supply_t_per_km2.tif",
              "supply": "cell_supply_t.tif"}
# Relative tolerance when judging that a cell size is a whole number of pixels (10.000000001 m is 10 m).
_SIZE_TOLERANCE = 1e-6


# -- the statistics ------------------------------------------------------------------------------

def _cells_shape(layout: Layout) -> tuple[int, ...]:
    rows, cols = layout.params["cells_per_chunk"]
    return (int(rows), int(cols), layout.n_cols)


def _values_cells_shape(layout: Layout) -> tuple[int, ...]:
    rows, cols = layout.params["cells_per_chunk"]
    return (int(rows), int(cols), N_SUMS)


def _offsets(where: Chunk) -> tuple[int, int, int]:
    """The cell edge (pixels) and how far into its cell the chunk's first pixel lies."""
    cell = int(where.layout.params["cell"])
    return cell, where.rows.start % cell, where.cols.start % cell


# A nodata code no pixel holds: with a dense table nodata is already sent to its column by the table.
_NO_CODE = -(2**62)


def _table(index: ClassIndex, codes: np.ndarray) -> tuple[np.ndarray, int, int]:
    """``(lut, offset, nodata)`` for the kernels: for 8/16-bit codes a table over every value, so
    that the inner loop has no range test (as the county kernels' dense tables)."""
    if codes.dtype.itemsize <= 2:
        lut, offset = index.dense_lut(codes.dtype)
        return lut, offset, _NO_CODE
    return index.lut, index.offset, index.nodata_code


def count_cell_pairs(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels per (cell row, cell column, class column) of one chunk."""
    cell, r0, c0 = _offsets(where)
    index: ClassIndex = where.layout.classes  # type: ignore[assignment]
    rows, cols = where.layout.params["cells_per_chunk"]
    lut, offset, nodata = _table(index, blocks["landuse"])
    return cell_counts(blocks["landuse"], lut, offset, index.n_cols, index.unknown_col, nodata,
                       index.nodata_col, cell, int(rows), int(cols), r0, c0)


def sum_cell_areas(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """True area (m²) per (cell row, cell column, class column) of one chunk."""
    cell, r0, c0 = _offsets(where)
    index: ClassIndex = where.layout.classes  # type: ignore[assignment]
    rows, cols = where.layout.params["cells_per_chunk"]
    lattice = getattr(where.areas, "area_lattice", None)
    if lattice is not None:
        lut, offset, nodata = _table(index, blocks["landuse"])
        return cell_areas_lattice(blocks["landuse"], lut, offset, index.n_cols, index.unknown_col, nodata, index.nodata_col, cell, int(rows), int(cols), r0, c0, *lattice(), where.rows.start, where.cols.start)
    return cell_areas(blocks["landuse"], index.lut, index.offset, index.n_cols, index.unknown_col, index.nodata_code,
                      index.nodata_col, cell, int(rows), int(cols), np.ascontiguousarray(np.atleast_2d(where.area())), r0, c0)


def count_and_sum_cell_areas(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Pixels and true areas (m²) per (cell row, cell column, class column) of one chunk, in one
    read of each pixel: ``[..., :n_cols]`` pixels, ``[..., n_cols:]`` areas."""
    lattice = getattr(where.areas, "area_lattice", None)
    if lattice is None:
        return np.concatenate([count_cell_pairs(blocks, where).astype(np.float64), sum_cell_areas(blocks, where)], axis=-1)
    cell, r0, c0 = _offsets(where)
    index: ClassIndex = where.layout.classes  # type: ignore[assignment]
    rows, cols = where.layout.params["cells_per_chunk"]
    lut, offset, nodata = _table(index, blocks["landuse"])
    return cell_counts_areas_lattice(blocks["landuse"], lut, offset, index.n_cols, index.unknown_col, nodata, index.nodata_col, cell,
                                     int(rows), int(cols), r0, c0, *lattice(), where.rows.start, where.cols.start)


def _nodata(layout: Layout) -> tuple[float, bool]:
    nodata = layout.params.get("values_nodata")
    return (0.0, False) if nodata is None or not np.isfinite(nodata) else (float(nodata), True)


def sum_unit_values(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """``[pixels, Σv, Σa, Σv·a]`` per county id of the ``values`` raster in one chunk."""
    nodata, has_nodata = _nodata(where.layout)
    return unit_value_sums(blocks["counties"], blocks["values"], nodata, has_nodata, where.layout.n_counties,
                           np.ascontiguousarray(np.atleast_2d(where.area())))


def sum_cell_values(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """``[pixels, Σv, Σa, Σv·a]`` per (cell row, cell column) of the ``values`` raster in one chunk."""
    cell, r0, c0 = _offsets(where)
    nodata, has_nodata = _nodata(where.layout)
    rows, cols = where.layout.params["cells_per_chunk"]
    lattice = getattr(where.areas, "area_lattice", None)
    if lattice is not None:
        return cell_value_sums_lattice(blocks["values"], nodata, has_nodata, cell, int(rows), int(cols), r0, c0, *lattice(),
                                       where.rows.start, where.cols.start)
    return cell_value_sums(blocks["values"], nodata, has_nodata, cell, int(rows), int(cols),
                           np.ascontiguousarray(np.atleast_2d(where.area())), r0, c0)


# Plain-numpy references (np.bincount over flattened keys, no code shared with the kernels).

def _cell_keys(shape: tuple[int, int], where: Chunk) -> tuple[np.ndarray, int]:
    cell, r0, c0 = _offsets(where)
    rows, cols = where.layout.params["cells_per_chunk"]
    r, c = np.indices(shape)
    return (((r + r0) // cell) * int(cols) + ((c + c0) // cell)).ravel(), int(rows) * int(cols)


def count_cell_pairs_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    codes = np.asarray(blocks["landuse"])
    keys, n = _cell_keys(codes.shape, where)
    n_cols = where.layout.n_cols
    columns = where.layout.classes.columns(codes).ravel()  # type: ignore[union-attr]
    flat = np.bincount(keys * n_cols + columns, minlength=n * n_cols)
    return flat.reshape(_cells_shape(where.layout))


def sum_cell_areas_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    codes = np.asarray(blocks["landuse"])
    keys, n = _cell_keys(codes.shape, where)
    n_cols = where.layout.n_cols
    columns = where.layout.classes.columns(codes).ravel()  # type: ignore[union-attr]
    weights = np.broadcast_to(where.area(), codes.shape).ravel()
    flat = np.bincount(keys * n_cols + columns, weights=weights, minlength=n * n_cols)
    return flat.reshape(_cells_shape(where.layout))


def _value_sums_reference(keys: np.ndarray, n: int, values: np.ndarray, area: np.ndarray, layout: Layout) -> np.ndarray:
    nodata, has_nodata = _nodata(layout)
    v = values.astype(np.float64).ravel()
    valid = np.isfinite(v) & ~((v == nodata) if has_nodata else np.zeros(v.shape, dtype=bool))
    k, v, a = keys[valid], v[valid], area.ravel()[valid]
    return np.stack([np.bincount(k, minlength=n).astype(np.float64), np.bincount(k, weights=v, minlength=n),
                     np.bincount(k, weights=a, minlength=n), np.bincount(k, weights=v * a, minlength=n)], axis=-1)


def sum_unit_values_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    values = np.asarray(blocks["values"])
    ids = np.asarray(blocks["counties"]).astype(np.int64).ravel()
    if ids.size and (ids.min() < 0 or ids.max() >= where.layout.n_counties):
        raise InputError("zone id out of range of the zone table")
    area = np.broadcast_to(where.area(), values.shape)
    return _value_sums_reference(ids, where.layout.n_counties, values, area, where.layout)


def sum_cell_values_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    values = np.asarray(blocks["values"])
    keys, n = _cell_keys(values.shape, where)
    area = np.broadcast_to(where.area(), values.shape)
    return _value_sums_reference(keys, n, values, area, where.layout).reshape(_values_cells_shape(where.layout))


CELL_COUNTS = Accumulation("cell_counts", chunk=count_cell_pairs, reference=count_cell_pairs_reference, reads=("landuse",),
                           shape=_cells_shape, combine="blocks")
CELL_AREAS = Accumulation("cell_areas", chunk=sum_cell_areas, reference=sum_cell_areas_reference, reads=("landuse",),
                          dtype=np.dtype(np.float64), shape=_cells_shape, combine="blocks", needs_area=True)
def _both_shape(layout: Layout) -> tuple[int, ...]:
    rows, cols = layout.params["cells_per_chunk"]
    return (int(rows), int(cols), 2 * layout.n_cols)


def count_and_sum_cell_areas_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    return np.concatenate([count_cell_pairs_reference(blocks, where).astype(np.float64), sum_cell_areas_reference(blocks, where)], axis=-1)


# Pixels and areas of the cells in one statistic (one read of each pixel) where the grid's pixel areas vary.
CELL_COUNTS_AREAS = Accumulation("cell_counts_areas", chunk=count_and_sum_cell_areas, reference=count_and_sum_cell_areas_reference,
                                 reads=("landuse",), dtype=np.dtype(np.float64), shape=_both_shape, combine="blocks", needs_area=True)
CELL_VALUES = Accumulation("cell_values", chunk=sum_cell_values, reference=sum_cell_values_reference, reads=("values",),
                           dtype=np.dtype(np.float64), shape=_values_cells_shape, combine="blocks", needs_area=True)
# The prefix of a continuous raster's per-cell sums among the cell pass's tables (:func:`cell_value_specs`).
RASTER_PREFIX = "cell_values "


def cell_value_specs(names: Iterable[str]) -> list[Accumulation]:
    """:data:`CELL_VALUES` once per raster of ``names`` (read under that name in the cell pass,
    e.g. a study's ``"population"`` or ``"npp"`` store), as ``"cell_values <name>"``: hand them to
    :func:`supply_cells` as ``extra=`` with the rasters as ``rasters=``."""
    return [bind(CELL_VALUES, f"{RASTER_PREFIX}{name}", rasters={"values": name}) for name in names]


WEIGHTED_SUM = Accumulation("weighted_sum", chunk=sum_unit_values, reference=sum_unit_values_reference,
                            reads=("counties", "values"), dtype=np.dtype(np.float64),
                            shape=lambda layout: (layout.n_counties, N_SUMS), needs_area=True)


# -- corrected densities per cell ------------------------------------------------------------------
# The county ids the cell pass reads for a factor table: the region's ids (:data:`REGION_IDS`).
FACTOR_IDS = "region_ids"


@dataclass(frozen=True)
class CellFactors:
    """Density-correction factors for the cell pass, as :func:`carbonscape.continuous.corrected_supply`
    applies them to the counties: pool ``p``'s density on a pixel is multiplied by ``f_p`` (its
    factor raster there; 1 without one, or where it has no value) and ``F[county, p]`` (the
    pixel's county's factor of a table; 1 without one).

    Attributes
    ----------
    rasters
        Pool column (``c_soil`` …) → the name its factor raster is read under in the cell pass
        (a key of :func:`supply_cells`' ``rasters``).
    county_factors
        :func:`carbonscape.continuous.county_factor_array` of a factor table, ``(n_zones, 4)``
        indexed by the county ids of :func:`supply_cells`' ``region``; None without a table.
    """

    rasters: Mapping[str, str] = field(default_factory=dict)
    county_factors: np.ndarray | None = None

    @property
    def pools(self) -> tuple[str, ...]:
        """The pools corrected, in :data:`~carbonscape.carbon.POOL_COLUMNS` order: those with a
        raster, and those a table gives some county a factor other than 1 for."""
        table = None if self.county_factors is None else np.asarray(self.county_factors, dtype=np.float64)
        return tuple(column for j, column in enumerate(POOL_COLUMNS)
                     if column in self.rasters or (table is not None and bool((table[:, j] != 1.0).any())))

    def params(self) -> dict[str, Any]:
        """The :class:`Layout` params of :data:`CELL_FACTOR_AREAS`."""
        pools = self.pools
        names = tuple(dict.fromkeys(self.rasters[p] for p in pools if p in self.rasters))
        table = None
        if self.county_factors is not None:
            table = np.ascontiguousarray(np.asarray(self.county_factors, dtype=np.float64)[:, [POOL_COLUMNS.index(p) for p in pools]])
        return {"factor_pools": pools, "factor_rasters": names,
                "factor_pool_raster": tuple(names.index(self.rasters[p]) if p in self.rasters else -1 for p in pools),
                "county_factors": table}


def _factor_shape(layout: Layout) -> tuple[int, ...]:
    rows, cols = layout.params["cells_per_chunk"]
    return (int(rows), int(cols), len(layout.params["factor_pools"]) * layout.n_cols)


def _factor_inputs(blocks: Mapping[str, np.ndarray], layout: Layout) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The kernel's ``factors, pool_raster, counties, by_county`` of one chunk."""
    params = layout.params
    names = params["factor_rasters"]
    if not names:
        factors = np.ones((0, 1, 1), dtype=np.float32)
    elif len(names) == 1:
        factors = np.asarray(blocks[names[0]])[None]  # a view: one raster is not copied
    else:
        factors = np.stack([np.asarray(blocks[name]) for name in names])
    pool_raster = np.asarray(params["factor_pool_raster"], dtype=np.int64)
    table = params["county_factors"]
    if table is None:
        return factors, pool_raster, np.zeros((1, 1), dtype=np.int32), np.ones((0, len(pool_raster)), dtype=np.float64)
    return factors, pool_raster, np.asarray(blocks[FACTOR_IDS]), table


def sum_cell_factor_areas(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Σ a·f_p·F[county, p] (m²) per (cell row, cell column, corrected pool, class column) of one chunk."""
    cell, r0, c0 = _offsets(where)
    index: ClassIndex = where.layout.classes  # type: ignore[assignment]
    rows, cols = where.layout.params["cells_per_chunk"]
    lut, offset, nodata = _table(index, blocks["landuse"])
    factors, pool_raster, counties, by_county = _factor_inputs(blocks, where.layout)
    lattice = getattr(where.areas, "area_lattice", None)
    if lattice is not None:
        return cell_factor_areas_lattice(blocks["landuse"], lut, offset, index.n_cols, index.unknown_col, nodata, index.nodata_col, cell,
                                         int(rows), int(cols), r0, c0, factors, pool_raster, counties, by_county, *lattice(),
                                         where.rows.start, where.cols.start)
    return cell_factor_areas(blocks["landuse"], lut, offset, index.n_cols, index.unknown_col, nodata, index.nodata_col, cell,
                             int(rows), int(cols), r0, c0, factors, pool_raster, counties, by_county,
                             np.ascontiguousarray(np.atleast_2d(where.area()), dtype=np.float64))


def sum_cell_factor_areas_reference(blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
    """Plain-numpy :func:`sum_cell_factor_areas`: ``np.bincount`` over (cell, column) keys, once per pool."""
    layout = where.layout
    codes = np.asarray(blocks["landuse"])
    keys, n = _cell_keys(codes.shape, where)
    n_cols = layout.n_cols
    flat = keys * n_cols + layout.classes.columns(codes).ravel()  # type: ignore[union-attr]
    area = np.broadcast_to(where.area(), codes.shape).ravel()
    names, table = layout.params["factor_rasters"], layout.params["county_factors"]
    ids = None
    if table is not None:
        ids = np.asarray(blocks[FACTOR_IDS]).astype(np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
            raise InputError("zone id out of range of the zone table")
    parts = []
    for p, q in enumerate(layout.params["factor_pool_raster"]):
        f = np.ones(codes.size)
        if q >= 0:
            v = np.asarray(blocks[names[q]], dtype=np.float64).ravel()
            f = np.where(np.isfinite(v), v, 1.0)
        if ids is not None:
            f = f * table[ids, p]
        parts.append(np.bincount(flat, weights=area * f, minlength=n * n_cols).reshape(*_cells_shape(layout)))
    return np.concatenate(parts, axis=-1) if parts else np.zeros(_factor_shape(layout))


# Corrected-density areas per (cell, pool, class): made with the cells' counts in the same pass.
CELL_FACTOR_AREAS = Accumulation("cell_factor_areas", chunk=sum_cell_factor_areas, reference=sum_cell_factor_areas_reference,
                                 reads=("landuse",), dtype=np.dtype(np.float64), shape=_factor_shape, combine="blocks", needs_area=True)


def cell_factor_spec(factors: CellFactors) -> Accumulation:
    """:data:`CELL_FACTOR_AREAS` reading ``factors``' rasters (and the county ids, with a table);
    its layout's params are ``factors.params()``."""
    from dataclasses import replace

    params = factors.params()
    reads = ("landuse", *params["factor_rasters"], *((FACTOR_IDS,) if params["county_factors"] is not None else ()))
    return replace(CELL_FACTOR_AREAS, reads=reads)


# -- the study region, applied inside each chunk's task --------------------------------------------
# The county ids the cell pass reads to keep only the pixels inside the study region.
REGION_IDS = FACTOR_IDS


@dataclass(frozen=True)
class _InRegion:
    """A cell statistic's chunk (or reference) function run on the pixels inside the region only:
    the land use outside it becomes ``fill`` (a code counted as nodata) and the float rasters
    ``floats`` NaN there.

    Masking with dask (``da.where`` on the land use, the rasters and a float region raster) made
    each of those a task of its own whose chunk travelled between worker processes into the pass's
    task (benchmarks/README.md). Here every raster is read in the pass's own task (the runner
    inlines store reads) and masked there. The pass's own pixels, areas, region share and counties'
    values are made by one kernel reading the codes and ids (:func:`region_spec`), with no float
    raster at all; this wrapper serves the other statistics (continuous rasters, factors)."""

    function: Any
    fill: int
    floats: tuple[str, ...] = ()

    def __call__(self, blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
        ids = np.asarray(blocks[REGION_IDS])
        inside = ids > 0
        masked = dict(blocks)
        if "landuse" in masked:
            codes = np.asarray(masked["landuse"])
            masked["landuse"] = np.where(inside, codes, np.array(self.fill, dtype=codes.dtype))
        for name in self.floats:
            if name in masked:
                values = np.asarray(masked[name])
                masked[name] = np.where(inside, values, np.array(np.nan, dtype=values.dtype if values.dtype.kind == "f" else np.float64))
        return self.function(masked, where)


@dataclass(frozen=True)
class _Lookup:
    """Chunk function of :func:`lookup_spec`: ``table[id]`` per pixel of the region's ids, summed per cell."""

    table: np.ndarray

    def __call__(self, blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
        cell, r0, c0 = _offsets(where)
        rows, cols = where.layout.params["cells_per_chunk"]
        ids = np.asarray(blocks[REGION_IDS])
        lattice = getattr(where.areas, "area_lattice", None)
        if lattice is not None:
            return cell_lookup_sums_lattice(ids, self.table, cell, int(rows), int(cols), r0, c0, *lattice(), where.rows.start, where.cols.start)
        return cell_lookup_sums(ids, self.table, cell, int(rows), int(cols), np.ascontiguousarray(np.atleast_2d(where.area()), dtype=np.float64),
                                r0, c0)


@dataclass(frozen=True)
class _LookupReference:
    """Plain-numpy :class:`_Lookup`."""

    table: np.ndarray

    def __call__(self, blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
        ids = np.asarray(blocks[REGION_IDS]).astype(np.int64)
        if len(self.table) and ids.size and ids.max() >= len(self.table):
            raise InputError("zone id out of range of the zone table")
        values = np.where(ids > 0, 1.0, np.nan) if not len(self.table) else np.where(ids > 0, self.table[np.clip(ids, 0, None)], np.nan)
        keys, n = _cell_keys(ids.shape, where)
        area = np.broadcast_to(where.area(), ids.shape)
        layout = Layout(classes=where.layout.classes, params={**where.layout.params, "values_nodata": None})
        return _value_sums_reference(keys, n, values, area, layout).reshape(_values_cells_shape(where.layout))


def lookup_spec(name: str, table: np.ndarray | None) -> Accumulation:
    """``[pixels, Σv, Σa, Σv·a]`` per cell (as :data:`CELL_VALUES`) of ``v = table[id]`` over the
    pixels of the region's ids (:data:`REGION_IDS`) > 0, looked up in the kernel; ``table`` None:
    v = 1 (the region's pixels and area per cell)."""
    values = np.zeros(0, dtype=np.float64) if table is None else np.ascontiguousarray(table, dtype=np.float64)
    return Accumulation(name, chunk=_Lookup(values), reference=_LookupReference(values), reads=(REGION_IDS,), dtype=np.dtype(np.float64),
                        shape=_values_cells_shape, combine="blocks", needs_area=True)


@dataclass(frozen=True)
class _RegionPass:
    """Chunk function of :func:`region_spec` (:func:`carbonscape.kernels.cells.cell_region_sums`)."""

    table: np.ndarray

    def __call__(self, blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
        cell, r0, c0 = _offsets(where)
        index: ClassIndex = where.layout.classes  # type: ignore[assignment]
        rows, cols = where.layout.params["cells_per_chunk"]
        lut, offset, nodata = _table(index, blocks["landuse"])
        head = (blocks["landuse"], np.asarray(blocks[REGION_IDS]), lut, offset, index.n_cols, index.unknown_col, nodata, index.nodata_col,
                cell, int(rows), int(cols), r0, c0, self.table)
        lattice = getattr(where.areas, "area_lattice", None)
        if lattice is not None:
            return cell_region_sums_lattice(*head, *lattice(), where.rows.start, where.cols.start)
        return cell_region_sums(*head, np.ascontiguousarray(np.atleast_2d(where.area()), dtype=np.float64))


@dataclass(frozen=True)
class _RegionPassReference:
    """Plain-numpy :class:`_RegionPass`: the masked land use's pixels and areas, the region's and
    the values' sums, each by its own reference."""

    table: np.ndarray
    fill: int

    def __call__(self, blocks: Mapping[str, np.ndarray], where: Chunk) -> np.ndarray:
        codes = np.asarray(blocks["landuse"])
        masked = {"landuse": np.where(np.asarray(blocks[REGION_IDS]) > 0, codes, np.array(self.fill, dtype=codes.dtype))}
        region = _LookupReference(np.zeros(0))(blocks, where)
        values = _LookupReference(self.table)(blocks, where) if len(self.table) else np.zeros(region.shape)
        return np.concatenate([count_and_sum_cell_areas_reference(masked, where), region, values], axis=-1)


def _region_shape(layout: Layout) -> tuple[int, ...]:
    rows, cols = layout.params["cells_per_chunk"]
    return (int(rows), int(cols), 2 * layout.n_cols + 2 * N_SUMS)


def region_spec(fill: int, table: np.ndarray | None = None) -> Accumulation:
    """The cell pass of a study region in one kernel and one read of the codes and the region's
    ids (:data:`REGION_IDS`): :data:`CELL_COUNTS_AREAS` of the pixels inside (those outside count
    as nodata, the land-use code ``fill``), then the region's sums (as ``lookup_spec(..., None)``)
    and, with ``table``, the sums of ``table[id]`` (as :func:`lookup_spec`); one table
    ``(rows, cols, 2·n_cols + 8)`` per chunk, split by :func:`supply_cells`."""
    values = np.zeros(0, dtype=np.float64) if table is None else np.ascontiguousarray(table, dtype=np.float64)
    return Accumulation("cell_region_pass", chunk=_RegionPass(values), reference=_RegionPassReference(values, int(fill)),
                        reads=("landuse", REGION_IDS), dtype=np.dtype(np.float64), shape=_region_shape, combine="blocks", needs_area=True)


def _in_region(spec: Accumulation, *, fill: int, floats: Sequence[str]) -> Accumulation:
    """``spec`` reading the region's ids too, its chunk and reference wrapped in :class:`_InRegion`."""
    from dataclasses import replace

    reads = tuple(dict.fromkeys((*spec.reads, REGION_IDS)))
    return replace(spec, reads=reads, chunk=_InRegion(spec.chunk, fill, tuple(floats)), reference=_InRegion(spec.reference, fill, tuple(floats)))


# -- the cell grid -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CellGrid:
    """Square cells of ``cell`` pixels over a land-use grid, aligned to its top-left corner.

    Attributes
    ----------
    grid
        The land-use grid.
    cell
        Cell edge in pixels.
    """

    grid: Grid
    cell: int

    @classmethod
    def from_size(cls, grid: Grid, size: float, *, setting: str = "--grid") -> CellGrid:
        """Cells of ``size`` CRS units; refuses a size that is not a whole number of pixels.

        Raises
        ------
        GridError
            A size that is not positive, not a multiple of the pixel size, or pixels that are not square.
        """
        x, y = grid.resolution
        if isinstance(size, bool) or not isinstance(size, (int, float)) or not math.isfinite(size) or size <= 0:
            raise GridError(f"{setting} {size!r}: a cell size must be a positive number in the CRS's units")
        if abs(x - y) > _SIZE_TOLERANCE * max(x, y):
            raise GridError(f"{setting}: the land-use pixels are not square ({x:g} × {y:g}); square cells need square pixels")
        ratio = size / x
        cell = round(ratio)
        if cell < 1 or abs(ratio - cell) > _SIZE_TOLERANCE * max(ratio, 1.0):
            below, above = max(math.floor(ratio), 1) * x, max(math.ceil(ratio), 1) * x
            raise GridError(
                f"{setting} {size:g} is not a multiple of the pixel size {x:g} ({ratio:.4g} pixels); use {below:g} or {above:g} "
                f"({'degrees' if grid.is_geographic else 'CRS units'})"
            )
        return cls(grid=grid, cell=int(cell))

    @property
    def size(self) -> float:
        """Cell edge in CRS units."""
        return self.cell * self.grid.resolution[0]

    @property
    def unit(self) -> str:
        """The CRS's unit of :attr:`size`: ``m``, ``°`` on a geographic grid, else the axis unit's name."""
        if self.grid.is_geographic:
            return "°"
        axis = self.grid.crs.axis_info[0] if self.grid.crs.axis_info else None
        name = (axis.unit_name if axis is not None else "") or ""
        return "m" if name.lower() in ("metre", "meter", "m") else name

    @property
    def shape(self) -> tuple[int, int]:
        """Cell rows and columns (the last ones cut by the raster's edge)."""
        return (math.ceil(self.grid.shape[0] / self.cell), math.ceil(self.grid.shape[1] / self.cell))

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        a, b, c, d, e, f = self.grid.transform
        return (a * self.cell, b, c, d, e * self.cell, f)

    def chunks(self) -> tuple[int, int]:
        """Chunk edges (pixels) that are whole numbers of cells, as near the store's as can be."""
        return tuple(max(self.cell, (edge // self.cell) * self.cell) for edge in self.grid.chunks)  # type: ignore[return-value]

    def cell_ids(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return rows.astype(np.int64) * self.shape[1] + cols.astype(np.int64)

    def _edges(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        a, _, c, _, e, f = self.grid.transform
        height, width = self.grid.shape
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        x0 = c + a * np.minimum(cols * self.cell, width)
        x1 = c + a * np.minimum((cols + 1) * self.cell, width)
        y0 = f + e * np.minimum(rows * self.cell, height)
        y1 = f + e * np.minimum((rows + 1) * self.cell, height)
        return x0, y1, x1, y0  # min x, min y, max x, max y

    def box_wkb(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """The cells' boxes (cut at the raster's edge) as little-endian WKB polygons, an object
        array of ``bytes``: the ring of :func:`shapely.box` (counter-clockwise from the lower
        right corner), written with numpy, no geometry objects."""
        minx, miny, maxx, maxy = self._edges(rows, cols)
        record = np.dtype([("order", "u1"), ("kind", "<u4"), ("rings", "<u4"), ("points", "<u4"), ("xy", "<f8", (10,))])
        packed = np.empty(len(minx), dtype=record)
        packed["order"], packed["kind"], packed["rings"], packed["points"] = 1, 3, 1, 5
        xy = packed["xy"]
        xy[:, 0], xy[:, 1], xy[:, 2], xy[:, 3], xy[:, 4] = maxx, miny, maxx, maxy, minx
        xy[:, 5], xy[:, 6], xy[:, 7], xy[:, 8], xy[:, 9] = maxy, minx, miny, maxx, miny
        raw, size = packed.tobytes(), record.itemsize
        out = np.empty(len(minx), dtype=object)
        out[:] = [raw[k:k + size] for k in range(0, len(raw), size)]
        return out

    def polygons(self, rows: np.ndarray, cols: np.ndarray) -> Any:
        """Shapely boxes of the cells (cut at the raster's edge)."""
        import shapely

        a, _, c, _, e, f = self.grid.transform
        height, width = self.grid.shape
        x0 = c + a * np.minimum(cols * self.cell, width)
        x1 = c + a * np.minimum((cols + 1) * self.cell, width)
        y0 = f + e * np.minimum(rows * self.cell, height)
        y1 = f + e * np.minimum((rows + 1) * self.cell, height)
        return shapely.box(x0, y1, x1, y0)


def stitch_cells(blocks: np.ndarray, cells: CellGrid, chunks: tuple[tuple[int, ...], tuple[int, ...]] | None = None) -> np.ndarray:
    """Lay per-chunk cell tables ``(n_row_chunks, n_col_chunks, rows, cols, k)`` side by side into
    ``(cell rows, cell columns, k)``.

    ``chunks`` are the pixel chunks the tables were made over (dask's ``.chunks``). Each table is
    indexed from its chunk's first cell and added in place, so a cell astride a chunk edge sums
    its partial tables; the padding of edge chunks is trimmed. Without ``chunks`` the chunks are
    taken to be whole cells of equal size (each table then lands on its own cells).
    """
    n_i, n_j, rows, cols, k = blocks.shape
    height, width = cells.shape
    if chunks is None:
        whole = blocks.transpose(0, 2, 1, 3, 4).reshape(n_i * rows, n_j * cols, k)
        return whole[:height, :width]
    out = np.zeros((height, width, k), dtype=blocks.dtype)
    row_starts, col_starts = np.cumsum((0, *chunks[0])), np.cumsum((0, *chunks[1]))
    for i in range(n_i):
        first_r = int(row_starts[i]) // cells.cell
        n_r = -(-(int(row_starts[i]) % cells.cell + int(chunks[0][i])) // cells.cell)
        for j in range(n_j):
            first_c = int(col_starts[j]) // cells.cell
            n_c = -(-(int(col_starts[j]) % cells.cell + int(chunks[1][j])) // cells.cell)
            out[first_r:first_r + n_r, first_c:first_c + n_c] += blocks[i, j, :n_r, :n_c]
    return out


def cells_params(data: da.Array, cells: CellGrid, **params: Any) -> dict[str, Any]:
    """The :class:`Layout` ``params`` of the cell statistics over ``data``: the cell edge and the
    most cells any chunk touches (a chunk whose edges are not whole cells touches one more)."""

    def most(chunks: tuple[int, ...]) -> int:
        starts = np.cumsum((0, *chunks[:-1]))
        return max(math.ceil((int(s) % cells.cell + int(n)) / cells.cell) for s, n in zip(starts, chunks))

    return {"cell": cells.cell, "cells_per_chunk": (most(data.chunks[0]), most(data.chunks[1])), **params}


# -- supply per cell -------------------------------------------------------------------------------

@dataclass
class CellSupplyResult:
    """Supply per grid cell.

    Attributes
    ----------
    by_cell
        One row per cell holding land-use pixels: ``cell, row, col, pixels, area_km2, supply_t,
        supply_t_per_km2`` and ``supply_t_<lucode>`` per class; with a ``region``
        (:func:`supply_cells`) only the pixels inside count, and ``region_share`` is the share of
        the cell's area inside it.
    cells
        The cell grid.
    area_ha
        Area (ha) per cell (rows, as ``by_cell``) and land-use code (columns): the table the Monte
        Carlo of :mod:`carbonscape.uncertainty` draws over.
    factor_ha
        With :class:`CellFactors`: per corrected pool, ``Σ a·f·F`` (ha) per cell and code, as
        ``area_ha`` (:meth:`mean_factors`).
    summary
        Cell size, counts, nodata, timings.
    values
        With ``values=`` given to :func:`supply_cells`: per cell (rows as ``by_cell``) the float
        raster's valid ``pixels``, ``sum``, ``area_m2`` and area-weighted ``mean``.
    """

    by_cell: pd.DataFrame
    cells: CellGrid
    area_ha: pd.DataFrame
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    values: pd.DataFrame | None = None
    tables: dict[str, np.ndarray] = field(default_factory=dict)
    factor_ha: dict[str, pd.DataFrame] = field(default_factory=dict)

    def mean_factors(self, index: pd.Index | None = None) -> np.ndarray | None:
        """Each pool's mean density factor per cell and class, ``A_pool / A`` (1 where the class
        has no area, or for a pool not corrected): ``(cells, classes, 4)`` in the rows of
        ``index`` (cell ids; default ``area_ha``'s) and the columns of ``area_ha``, the
        ``factors`` of :func:`carbonscape.uncertainty.supply_uncertainty` (as ``factor_c_*`` of
        ``supply_by_county_class.csv`` per county); None when the densities were not corrected."""
        if not self.factor_ha:
            return None
        plain = self.area_ha if index is None else self.area_ha.reindex(index, fill_value=0.0)
        out = np.ones((*plain.shape, len(POOL_COLUMNS)), dtype=np.float64)
        a = plain.to_numpy(dtype=np.float64)
        for j, column in enumerate(POOL_COLUMNS):
            if column in self.factor_ha:
                pool = self.factor_ha[column] if index is None else self.factor_ha[column].reindex(index, fill_value=0.0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    out[..., j] = np.where(a > 0, pool.to_numpy(dtype=np.float64) / a, 1.0)
        return out

    def raster_values(self, name: str) -> pd.DataFrame | None:
        """Per cell (rows as ``by_cell``) the sums of the raster read as ``name`` in the pass
        (:func:`cell_value_specs`): ``pixels`` with a value, ``sum`` Σv, ``area_m2`` Σa of the
        valued pixels, ``mean`` Σv·a / Σa, ``sum_va`` Σv·a; None when it was not summed."""
        table = self.tables.get(f"{RASTER_PREFIX}{name}")
        return None if table is None else value_sums_table(table).set_index(self.by_cell.index)

    def continuous_table(self) -> pd.DataFrame | None:
        """``continuous_by_cell.csv``: per continuous raster summed in the pass and cell with land,
        as ``continuous_by_county.csv`` per county: ``pixels`` with a value, ``sum``, ``area_km2``
        of the valued pixels and the area-weighted ``mean``; for ``population`` (a count store,
        people per m²) the sum is people (Σ d·a) and the mean people per km². None without rasters."""
        frames = []
        for name in self.raster_names:
            sums = self.raster_values(name)
            assert sums is not None
            frame = pd.DataFrame({"raster": name, "cell": self.by_cell["cell"].to_numpy(), "row": self.by_cell["row"].to_numpy(),
                                  "col": self.by_cell["col"].to_numpy(), "pixels": sums["pixels"].to_numpy(), "sum": sums["sum"].to_numpy(),
                                  "area_km2": sums["area_m2"].to_numpy() / M2_PER_KM2, "mean": sums["mean"].to_numpy()})
            if name == "population":
                frame["sum"] = sums["sum_va"].to_numpy()
                with np.errstate(divide="ignore", invalid="ignore"):
                    frame["mean"] = frame["sum"] / frame["area_km2"]
            frames.append(frame)
        return pd.concat(frames, ignore_index=True) if frames else None

    @property
    def raster_names(self) -> list[str]:
        """The rasters summed per cell in the pass (:meth:`raster_values`)."""
        return [name.removeprefix(RASTER_PREFIX) for name in self.tables if name.startswith(RASTER_PREFIX)]

    def write(self, out: str | os.PathLike[str], *, polygons: bool = True) -> dict[str, Path]:
        """``supply_by_cell.csv``, ``cells.gpkg`` (layer ``cells``; not with ``polygons=False``,
        when the caller writes it with more columns) and GeoTIFFs of supply density (t/km²) and
        supply (t) per cell in ``out``, each written atomically."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / CELL_FILES["table"]
        with atomic_path(target) as tmp:
            self.by_cell.to_csv(tmp, index=False, encoding="utf-8", float_format="%.10g")
        self.files["table"] = target
        if polygons:
            self.files["polygons"] = write_cells_gpkg(self.cells, self.by_cell, folder / CELL_FILES["polygons"])
        for name, column, unit in (("supply_density", "supply_t_per_km2", "t C/km²"), ("supply", "supply_t", "t C")):
            self.files[name] = write_cell_geotiff(self.cells, self.by_cell, column, folder / CELL_FILES[name], unit=unit)
        return dict(self.files)


def write_cells_gpkg(cells: CellGrid, table: pd.DataFrame, path: Path, *, layer: str = "cells") -> Path:
    """The cells of ``table`` (its ``row``, ``col``) as polygons with every column, in a GeoPackage.

    The boxes go to GDAL as WKB made with numpy (:meth:`CellGrid.box_wkb`) through pyogrio's
    array writer, not as shapely polygons in a GeoDataFrame: a million cells' polygons and the
    frame's copy held ~600 MB more than the rest of the 10^9-pixel run (benchmarks/README.md),
    and writing in appended batches instead was slower (GeoPackage's spatial index grows row by
    row on append, and is built once at the end of a single write)."""
    from pyogrio.raw import write

    field_data, field_mask = [], []
    for name in table.columns:
        values = table[name].array
        if isinstance(values, pd.api.extensions.ExtensionArray) and not isinstance(values, pd.arrays.NumpyExtensionArray):
            field_data.append(np.asarray(values.to_numpy(na_value=None) if values.dtype.kind == "O" else values.to_numpy()))
            field_mask.append(np.asarray(values.isna()))
        else:
            field_data.append(table[name].to_numpy())
            field_mask.append(None)
    crs = cells.grid.crs
    epsg = crs.to_epsg()
    with atomic_path(path) as tmp:
        write(tmp, geometry=cells.box_wkb(table["row"].to_numpy(), table["col"].to_numpy()), field_data=field_data,
              field_mask=field_mask, fields=[str(c) for c in table.columns], layer=layer, driver="GPKG", geometry_type="Polygon",
              crs=f"EPSG:{epsg}" if epsg is not None else crs.to_wkt("WKT1_GDAL"))
    return path


def write_cell_geotiff(cells: CellGrid, table: pd.DataFrame, column: str, path: Path, *, unit: str = "",
                       dtype: str = "float32") -> Path:
    """One band of ``table[column]`` on the cell grid (NaN, or -1 for integers, where no cell has a value)."""
    import rasterio

    height, width = cells.shape
    integer = np.dtype(dtype).kind in "iu"
    fill = -1 if integer else np.nan
    band = np.full((height, width), fill, dtype=dtype)
    band[table["row"].to_numpy(), table["col"].to_numpy()] = table[column].to_numpy(dtype=np.float64).astype(dtype)
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", driver="GTiff", dtype=dtype, count=1, width=width, height=height, crs=cells.grid.crs_wkt,
                           transform=rasterio.Affine(*cells.transform), nodata=fill, compress="deflate", tiled=width >= 256 and height >= 256) as dst:
            dst.write(band, 1)
            dst.update_tags(1, quantity=column, units=unit)
    return path


def supply_cells(
    landuse: str | os.PathLike[str],
    pools: str | os.PathLike[str] | PoolTable,
    *,
    size: float,
    out: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    run: Executor | None = None,
    values: da.Array | None = None,
    values_nodata: float | None = None,
    extra: Sequence[Accumulation] = (),
    rasters: Mapping[str, da.Array] | None = None,
    region: da.Array | None = None,
    factors: CellFactors | None = None,
    values_by_region: np.ndarray | None = None,
) -> CellSupplyResult:
    """Carbon supply per regular grid cell, each cell's table made in the chunk that holds it.

    Parameters
    ----------
    landuse
        Land-use store from :func:`carbonscape.ingest`.
    pools
        InVEST carbon pools table (path or :class:`~carbonscape.carbon.PoolTable`).
    size
        Cell edge in the CRS's units (metres, or degrees on a geographic grid): a whole number of pixels.
    out
        Folder for ``supply_by_cell.csv``, ``cells.gpkg`` and the cell GeoTIFFs; nothing is written when None.
    scheduler, progress, run
        As :func:`carbonscape.supply`.
    values, values_nodata
        A float raster on the land-use grid (same shape; e.g. a demand density per pixel) whose
        sum and area-weighted mean per cell are made in the same pass (:data:`CELL_VALUES`);
        pixels that are NaN or ``values_nodata`` are left out.
    extra, rasters
        More per-cell statistics to make in the same pass (``combine="blocks"``, shaped by the
        cell layout: :func:`cell_value_specs` for continuous rasters), reading the land use and
        ``rasters`` (aligned stores by name, on the land-use grid). Their stitched tables, one row
        per row of ``by_cell``, are the result's ``tables`` by name (:meth:`CellSupplyResult.raster_values`).
    region
        The study region on the land-use grid (county ids, > 0 inside): with it only the pixels
        inside count, for the supply, ``rasters`` and ``values`` alike (a pixel outside is taken
        as land-use nodata, a raster's value there as missing), so that the cells' totals are the
        counties'; ``by_cell`` then holds the cells with land inside, and ``region_share``: the
        share of the cell's area (cut at the raster's edge) inside the region.
    values_by_region
        With ``region``, instead of ``values``: the value of every pixel of county id ``i`` is
        ``values_by_region[i]`` (NaN: none), made from the ids inside the pass's task (e.g. each
        county's demand density; no float raster is built).
    factors
        Density-correction factors (:class:`CellFactors`: factor rasters among ``rasters`` by
        pool, a factor table per county of ``region``), applied per pixel in the same pass
        (:data:`CELL_FACTOR_AREAS`) as :func:`carbonscape.continuous.corrected_supply` applies
        them per county: ``supply_t`` is then the corrected supply, ``supply_t_uncorrected``
        beside it, and the cells' corrected supply sums to the counties'.

    Returns
    -------
    CellSupplyResult

    Raises
    ------
    GridError
        A size that is not a multiple of the pixel size.
    UnknownCodesError
        Land-use codes the pools table lacks.
    """
    started = time.perf_counter()
    pool_table = pools if isinstance(pools, PoolTable) else read_pools(pools)
    land = open_store(landuse)
    if land.attrs.get("carbonscape_kind") not in (None, "landuse"):
        raise InputError(f"{land.path} is a {land.attrs['carbonscape_kind']} store, not land use; pass the store `carbonscape ingest` wrote")
    cells = CellGrid.from_size(land.grid, size)
    found = land.attrs.get("code_counts")
    if found is not None:
        unknown_codes = {int(c): int(n) for c, n in found.items() if int(c) not in pool_table.codes and int(c) != land.nodata}
        if unknown_codes:
            raise UnknownCodesError(unknown_codes_message(land.path, pool_table, unknown_codes))
    try:
        index = ClassIndex.build(pool_table.codes, nodata=land.nodata)
    except InputError as exc:
        raise PoolTableError(f"{pool_table.source} with {land.path}: {exc}") from None
    # The store's own chunks, whole cells or not: a cell astride two chunks gets a partial table from
    # each, added when the tables are laid side by side. Rechunking to whole cells instead copied
    # every pixel once more and made the pass 4-5× slower than the county pass (benchmarks/cells.py).
    data = land.data
    areas = pixel_areas(land.grid)
    specs = [CELL_COUNTS if areas.uniform_area_m2() is not None else CELL_COUNTS_AREAS]
    fill = None
    arrays = {"landuse": data}
    if region is not None:
        if tuple(region.shape) != tuple(land.data.shape):
            raise InputError(f"the region of shape {tuple(region.shape)} is not on the land-use grid {tuple(land.data.shape)} of {land.path}")
        # Applied inside each chunk's task (_InRegion): the pixels outside count as nodata.
        arrays[REGION_IDS] = region if region.chunks == data.chunks else region.rechunk(data.chunks)
        fill = _outside_code(data.dtype, pool_table.codes, land.nodata)
        if index.nodata is None or index.nodata != fill:
            index = ClassIndex.build(pool_table.codes, nodata=fill)
        # Counts, areas, the region's sums and the counties' values in one kernel (region_spec).
        specs = [region_spec(fill, None if values_by_region is None else np.asarray(values_by_region, dtype=np.float64))]
    if values_by_region is not None and (region is None or values is not None):
        raise ValueError("values_by_region takes the values from the region's ids: give region= and no values=")
    if values is not None:
        if tuple(values.shape) != tuple(land.data.shape):
            raise InputError(f"values of shape {tuple(values.shape)} are not on the land-use grid {tuple(land.data.shape)} of {land.path}")
        arrays["values"] = values if values.chunks == data.chunks else values.rechunk(data.chunks)
        specs.append(CELL_VALUES)
    for spec in extra:
        if spec.combine != "blocks":
            raise ValueError(f"{spec.name}: the cell pass keeps one table per chunk; a statistic for it must have combine='blocks'")
    for name, raster in (rasters or {}).items():
        if tuple(raster.shape) != tuple(land.data.shape):
            raise InputError(f"raster {name!r} of shape {tuple(raster.shape)} is not on the land-use grid {tuple(land.data.shape)} of {land.path}")
        arrays[name] = raster if raster.chunks == data.chunks else raster.rechunk(data.chunks)
    specs += list(extra)
    corrected: tuple[str, ...] = ()
    factor_params: dict[str, Any] = {}
    if factors is not None and factors.pools:
        corrected, factor_params = factors.pools, factors.params()
        missing = [name for name in factor_params["factor_rasters"] if name not in arrays]
        if missing:
            raise ValueError(f"factor rasters {missing} are not among the cell pass's rasters ({', '.join(rasters or {}) or 'none'})")
        if factor_params["county_factors"] is not None:
            if region is None:
                raise ValueError("a factor table per county needs the counties' ids: give region=")
        specs.append(cell_factor_spec(factors))
    if region is not None:
        floats = ["values", *(rasters or {})]
        specs = [spec if spec.name == "cell_region_pass" else _in_region(spec, fill=int(fill), floats=floats) for spec in specs]
    layout = Layout(classes=index, params=cells_params(data, cells, values_nodata=values_nodata, **factor_params))
    lazy = accumulate(specs, None, arrays, layout=layout, areas=areas)
    staging = staged_outputs(out) if out is not None else contextlib.nullcontext(None)
    with using(run, scheduler) as active, staging as stage:
        tables = compute_cell_tables(lazy, cells, data.chunks, active, progress=progress,
                                     label=f"supply per {cells.size:g} cell: {land.grid.shape[0]}×{land.grid.shape[1]} pixels")
        if "cell_region_pass" in tables:
            fused = tables.pop("cell_region_pass")
            n = 2 * index.n_cols
            tables["cell_counts_areas"], tables["cell_region"] = fused[..., :n], fused[..., n:n + N_SUMS]
            if values_by_region is not None:
                tables["cell_values"] = fused[..., n + N_SUMS:]
            del fused
        if "cell_counts_areas" in tables:
            both = tables.pop("cell_counts_areas")
            counts, area_m2 = both[..., : index.n_cols].astype(np.int64), both[..., index.n_cols:]
            del both
        else:
            counts, area_m2 = tables.pop("cell_counts"), None  # equal pixels: areas are counts × the one pixel area
        if counts[..., index.unknown_col].any():
            raise UnknownCodesError(unknown_codes_message(land.path, pool_table, _count_unknown(land, pool_table, active)))
        # Every pixel of the cell (cut at the raster's edge), whatever its column: the region's share is of this.
        whole_m2 = area_m2.sum(axis=-1) if area_m2 is not None else counts.sum(axis=-1) * float(areas.uniform_area_m2())
        result = cell_supply_table(counts, area_m2, cells=cells, index=index, pools=pool_table, pixel_area_m2=areas.uniform_area_m2(),
                                   factor_areas_m2=tables.pop("cell_factor_areas", None), factor_pools=corrected)
        del counts, area_m2
        if "cell_region" in tables:
            rows, cols = result.by_cell["row"].to_numpy(), result.by_cell["col"].to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                result.by_cell["region_share"] = tables.pop("cell_region")[rows, cols, 2] / whole_m2[rows, cols]
        if "cell_values" in tables:
            rows, cols = result.by_cell["row"].to_numpy(), result.by_cell["col"].to_numpy()
            result.values = value_sums_table(tables["cell_values"][rows, cols]).set_index(result.by_cell.index)
        rows, cols = result.by_cell["row"].to_numpy(), result.by_cell["col"].to_numpy()
        result.tables = {spec.name: tables[spec.name][rows, cols] for spec in extra}
        result.summary.update({"seconds": time.perf_counter() - started, "landuse": str(land.path)})
        if stage is not None:
            result.write(stage)
    if out is not None:
        result.files = {name: Path(out).absolute() / path.name for name, path in result.files.items()}
    return result


def _outside_code(dtype: np.dtype, codes: Sequence[int], nodata: Any) -> int:
    """The code given to land-use pixels outside the study region: the raster's nodata, or (without
    one) the first value of ``dtype`` from its top that no pools-table code uses."""
    if nodata is not None and np.isfinite(nodata):
        return int(nodata)
    info = np.iinfo(dtype)
    taken = {int(c) for c in codes}
    code = int(info.max)
    while code in taken:
        code -= 1
    return code


def compute_cell_tables(lazy: Mapping[str, da.Array], cells: CellGrid, chunks: tuple[tuple[int, ...], tuple[int, ...]], active: Executor, *,
                        progress: bool = False, label: str = "") -> dict[str, np.ndarray]:
    """Compute the per-chunk tables of ``"blocks"`` statistics and lay each side by side
    (:func:`stitch_cells`), by name.

    The chunks' tables are fetched as separate arrays and added into the cell grid one by one,
    each dropped once placed: computing the stacked dask array instead made dask concatenate every
    chunk's table into one more copy of them all (the 10^9-pixel pass into 1 km cells held ~100 MB
    of it at its peak, benchmarks/README.md).
    """
    names = list(lazy)
    # Not optimized array by array: each statistic's array would get its own copy of the pass's
    # task fused into it, and the pass would run once per statistic (k statistics: k reads and
    # runs of every chunk). The runner already puts each chunk's reads in its pass task.
    parts = [lazy[name].to_delayed(optimize_graph=False).reshape(lazy[name].numblocks[:2]) for name in names]
    flat = [block for grid in parts for block in grid.ravel()]
    computed = list(active.compute(*flat, progress=progress, label=label))
    tables: dict[str, np.ndarray] = {}
    for name, grid in zip(names, parts):
        n_i, n_j = grid.shape
        tables[name] = stitch_cells(_Parts(computed, n_i, n_j), cells, chunks)
        del computed[: n_i * n_j]
    return tables


class _Parts:
    """Computed chunk tables ``(1, 1, rows, cols, k)`` in row-major order, read as the stacked
    array :func:`stitch_cells` takes (``shape``, ``[i, j, :n_r, :n_c]``), each released once read."""

    def __init__(self, computed: list[Any], n_i: int, n_j: int) -> None:
        self._computed = computed
        first = np.asarray(computed[0])
        self.shape = (n_i, n_j, *first.shape[2:])
        self.dtype = first.dtype
        self._n_j = n_j

    def __getitem__(self, key: tuple[Any, ...]) -> np.ndarray:
        i, j, *rest = key
        k = int(i) * self._n_j + int(j)
        block = np.asarray(self._computed[k])[0, 0]
        self._computed[k] = None  # placed once: let it go
        return block[tuple(rest)]


def supply_cells_with_rasters(
    landuse: str | os.PathLike[str],
    pools: str | os.PathLike[str] | PoolTable,
    *,
    size: float,
    out: str | os.PathLike[str],
    population: str | os.PathLike[str] | None = None,
    npp: str | os.PathLike[str] | None = None,
    npp_units: str = "g C m-2 yr-1",
    resampling: str | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    run: Executor | None = None,
) -> CellSupplyResult:
    """:func:`supply_cells` with a population and/or an NPP raster summed per cell in the same
    pass (`carbonscape supply --grid SIZE --population P --npp N`).

    Each raster is put on the land-use grid (``out/stores/<name>.zarr``, nearest neighbour, see
    :func:`carbonscape.continuous.ingest_continuous`); ``supply_by_cell.csv`` then gets
    ``population`` (people, Σ d·a) and, with NPP, ``npp_mean`` (area-weighted, ``npp_units``) and
    ``sequestration_t_c`` (yearly, ``Σ NPP·a`` × the unit's t C per unit·m²), and
    ``continuous_by_cell.csv`` each raster's sums per cell.
    """
    from carbonscape.continuous import NPP_UNITS, ContinuousError, ingest_continuous, open_continuous

    if npp is not None and npp_units not in NPP_UNITS:
        raise ContinuousError(f"--npp-units {npp_units!r} must be one of {', '.join(NPP_UNITS)}")
    wanted = [(name, path, quantity) for name, path, quantity in (("population", population, "count"), ("npp", npp, "density")) if path is not None]
    folder = Path(out)
    with using(run, scheduler) as active:
        stores = {name: ingest_continuous(path, folder / "stores" / f"{name}.zarr", like=landuse, quantity=quantity, resampling=resampling,
                                          progress=progress, run=active) for name, path, quantity in wanted}
        result = supply_cells(landuse, pools, size=size, run=active, progress=progress, extra=cell_value_specs(stores),
                              rasters={name: open_continuous(store).data for name, store in stores.items()})
    if "population" in stores:
        result.by_cell["population"] = result.raster_values("population")["sum_va"].to_numpy()  # type: ignore[index]
    if "npp" in stores:
        sums = result.raster_values("npp")
        assert sums is not None
        result.by_cell["npp_mean"] = sums["mean"].to_numpy()
        result.by_cell["sequestration_t_c"] = sums["sum_va"].to_numpy() * NPP_UNITS[npp_units]
    with staged_outputs(folder) as stage:
        result.write(stage)
        table = result.continuous_table()
        if table is not None:
            with atomic_path(stage / "continuous_by_cell.csv") as tmp:
                table.to_csv(tmp, index=False, encoding="utf-8", float_format="%.10g")
            result.files["continuous"] = stage / "continuous_by_cell.csv"
    result.files = {name: folder.absolute() / path.name for name, path in result.files.items()}
    return result


def cell_supply_table(counts: np.ndarray, area_m2: np.ndarray | None, *, cells: CellGrid, index: ClassIndex, pools: PoolTable,
                      pixel_area_m2: float | None = None, factor_areas_m2: np.ndarray | None = None,
                      factor_pools: Sequence[str] = ()) -> CellSupplyResult:
    """The per-cell table from stitched ``(cell rows, cell cols, n_cols)`` counts and areas (m²);
    ``area_m2`` None: every pixel has the area ``pixel_area_m2``.

    ``factor_areas_m2`` (stitched :data:`CELL_FACTOR_AREAS`, ``(cell rows, cell cols,
    len(factor_pools)·n_cols)``): the corrected-density areas ``A_p = Σ a·f_p·F`` of the pools
    ``factor_pools``; the supply is then ``Σ_pool Σ_class density[class, pool] × A_p`` (``A`` for a
    pool not corrected), as :func:`carbonscape.continuous.corrected_supply` per county, and
    ``supply_t_uncorrected`` (the pools table's densities) follows the per-class columns.

    Only the cells holding land are gathered, into one float block (``area_km2``, ``supply_t``,
    ``supply_t_per_km2``, then the per-class supply) that becomes the frame's columns without a
    copy: at a million cells the table is most of the pass's memory.
    """
    n_classes = index.n_classes
    class_pixels = counts[..., :n_classes]
    pixels = class_pixels.sum(axis=-1)
    occupied = pixels > 0
    rows, cols = np.nonzero(occupied)
    if area_m2 is None:
        if pixel_area_m2 is None:
            raise ValueError("cell_supply_table needs area_m2 or pixel_area_m2")
        area_ha = class_pixels[rows, cols].astype(np.float64)
        area_ha *= pixel_area_m2 / M2_PER_HA
    else:
        area_ha = area_m2[rows, cols, :n_classes]
        area_ha /= M2_PER_HA
    density = pools.total_density
    correcting = factor_areas_m2 is not None and len(factor_pools) > 0
    block = np.empty((len(rows), 3 + n_classes + int(correcting)), dtype=np.float64)
    factor_ha: dict[str, np.ndarray] = {}
    if correcting:
        assert factor_areas_m2 is not None
        per_pool = pools.table[list(POOL_COLUMNS)].to_numpy(dtype=np.float64)  # (classes, pools) t/ha
        supply = block[:, 3:3 + n_classes]
        supply[:] = 0.0
        for j, column in enumerate(POOL_COLUMNS):
            if column in factor_pools:
                p = list(factor_pools).index(column)
                pool_ha = factor_areas_m2[rows, cols, p * index.n_cols:p * index.n_cols + n_classes] / M2_PER_HA
                factor_ha[column] = pool_ha
            else:
                pool_ha = area_ha
            supply += pool_ha * per_pool[None, :, j]
        block[:, -1] = area_ha @ density  # the pools table's densities, as before the correction
    else:
        np.multiply(area_ha, density[None, :], out=block[:, 3:])
    area_ha.sum(axis=1, out=block[:, 0])
    block[:, 0] *= M2_PER_HA / M2_PER_KM2
    block[:, 3:3 + n_classes].sum(axis=1, out=block[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(block[:, 1], block[:, 0], out=block[:, 2])
    ids = cells.cell_ids(rows, cols)
    names = ["area_km2", "supply_t", "supply_t_per_km2", *(f"supply_t_{code}" for code in pools.codes),
             *(["supply_t_uncorrected"] if correcting else [])]
    by_cell = pd.DataFrame(block, columns=names, copy=False)
    for position, (name, column) in enumerate((("cell", ids), ("row", rows), ("col", cols), ("pixels", pixels[rows, cols]))):
        by_cell.insert(position, name, column)
    nodata = counts[..., index.nodata_col]
    summary = {
        "cell_size": cells.size, "cell_unit": cells.unit, "cell_pixels": cells.cell, "cell_grid_shape": list(cells.shape),
        "cells_with_land": int(len(rows)), "total_supply_t": float(block[:, 1].sum()),
        "nodata_pixels": int(nodata.sum()), "cells_all_nodata": int(((nodata > 0) & ~occupied).sum()),
    }
    if correcting:
        summary.update(total_supply_t_uncorrected=float(block[:, -1].sum()), density_correction={"pools": list(factor_pools)})
    area_frame = pd.DataFrame(area_ha, index=pd.Index(ids, name="cell"), columns=list(pools.codes), copy=False)
    factor_frames = {column: pd.DataFrame(ha, index=area_frame.index, columns=list(pools.codes), copy=False) for column, ha in factor_ha.items()}
    return CellSupplyResult(by_cell=by_cell, cells=cells, area_ha=area_frame, summary=summary, factor_ha=factor_frames)


def value_sums_table(sums: np.ndarray) -> pd.DataFrame:
    """``pixels, sum, area_m2, mean`` (area-weighted) and ``sum_va`` (Σv·a: people of a count
    store, value × m²) from ``[..., 4]`` running sums, flattened."""
    flat = sums.reshape(-1, N_SUMS)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = flat[:, 3] / flat[:, 2]
    return pd.DataFrame({"pixels": flat[:, 0].astype(np.int64), "sum": flat[:, 1], "area_m2": flat[:, 2], "mean": mean,
                         "sum_va": flat[:, 3]})
