"""The heart of the engine: one pass that counts (zone, class) pixel pairs, chunk by chunk.

Per-chunk counting is the numba kernel in :mod:`carbonscape.kernels.crosstab`; chunk results are
small ``(zones, classes)`` tables that dask sums as a tree (flox's chunk → combine), so only those
tables ever leave the workers. :func:`crosstab_numpy` is the plain-numpy reference engine.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import dask.array as da
import numpy as np
from carbonscape.errors import InputError
from carbonscape.grid import Grid
from carbonscape.kernels.crosstab import (
    crosstab_areas,
    crosstab_counts,
    crosstab_counts_dense,
    lookup_values,
)

# A code no integer raster can hold, used when there is no nodata value.
_NO_NODATA = np.iinfo(np.int64).min
# Land-use codes are small integers in practice; a larger span means a mistaken raster.
_MAX_LUT = 1 << 24


@dataclass(frozen=True)
class ClassIndex:
    """How land-use codes map to table columns: classes first, then nodata, then unknown codes."""

    codes: tuple[int, ...]
    nodata: int | None
    lut: np.ndarray
    offset: int

    @classmethod
    def build(cls, codes: Sequence[int], *, nodata: int | float | None) -> ClassIndex:
        codes = tuple(int(c) for c in codes)
        if len(set(codes)) != len(codes):
            raise InputError(f"duplicate land-use codes {codes}")
        lo, hi = min(codes), max(codes)
        if hi - lo + 1 > _MAX_LUT:
            raise InputError(f"land-use codes span {lo}..{hi}; carbonscape expects codes within {_MAX_LUT:,} of each other")
        unknown_col = len(codes) + 1
        lut = np.full(hi - lo + 1, unknown_col, dtype=np.int32)
        for column, code in enumerate(codes):
            lut[code - lo] = column
        nd = None if nodata is None or (isinstance(nodata, float) and not np.isfinite(nodata)) else int(nodata)
        if nd is not None and nd in codes:
            raise InputError(
                f"the raster's nodata value {nd} is also a land-use code in the pools table; remove that row "
                "from the table, or give the raster another nodata value (`gdal_edit.py -a_nodata`) and ingest it again"
            )
        return cls(codes=codes, nodata=nd, lut=lut, offset=lo)

    @property
    def n_classes(self) -> int:
        return len(self.codes)

    @property
    def nodata_col(self) -> int:
        return len(self.codes)

    @property
    def unknown_col(self) -> int:
        return len(self.codes) + 1

    @property
    def n_cols(self) -> int:
        return len(self.codes) + 2

    @property
    def nodata_code(self) -> int:
        return _NO_NODATA if self.nodata is None else self.nodata

    def dense_lut(self, dtype: np.dtype) -> tuple[np.ndarray, int]:
        """A table over every value of an 8/16-bit ``dtype``: class, nodata or unknown column."""
        info = np.iinfo(dtype)
        lut = np.full(int(info.max) - int(info.min) + 1, self.unknown_col, dtype=np.int32)
        for column, code in enumerate(self.codes):
            if info.min <= code <= info.max:
                lut[code - info.min] = column
        if self.nodata is not None and info.min <= self.nodata <= info.max:
            lut[self.nodata - info.min] = self.nodata_col
        return lut, int(info.min)


def _chunk_counts(zones: np.ndarray, codes: np.ndarray, *, index: ClassIndex, n_zones: int) -> np.ndarray:
    if codes.dtype.itemsize <= 2:
        lut, offset = index.dense_lut(codes.dtype)
        return crosstab_counts_dense(zones, codes, lut, offset, n_zones, index.n_cols)[None, None, :, :]
    counts = crosstab_counts(
        zones, codes, index.lut, index.offset, n_zones, index.n_cols, index.unknown_col, index.nodata_code, index.nodata_col
    )
    return counts[None, None, :, :]


def _chunk_areas(
    zones: np.ndarray, codes: np.ndarray, *, index: ClassIndex, n_zones: int, grid: Grid, block_info: dict | None = None
) -> np.ndarray:
    row0, row1 = block_info[0]["array-location"][0]  # type: ignore[index]
    areas = crosstab_areas(
        zones, codes, index.lut, index.offset, n_zones, index.n_cols, index.unknown_col, index.nodata_code,
        index.nodata_col, grid.row_areas_m2(row0, row1),
    )
    return areas[None, None, :, :]


def _check_pair(zones: da.Array, codes: da.Array) -> da.Array:
    if zones.shape != codes.shape:
        raise InputError(f"zones {zones.shape} and land use {codes.shape} differ in shape")
    if zones.chunks != codes.chunks:
        zones = zones.rechunk(codes.chunks)
    return zones


def crosstab(
    zones: da.Array, codes: da.Array, *, index: ClassIndex, n_zones: int, split_every: int = 16
) -> da.Array:
    """Lazy ``(n_zones, index.n_cols)`` int64 pixel counts of every (zone, class) pair.

    Parameters
    ----------
    zones
        Zone ids ``0..n_zones-1`` on the land-use grid (0 = outside every polygon).
    codes
        Land-use codes.
    index
        The code → column mapping (see :class:`ClassIndex`).
    n_zones
        Number of zone ids including 0.
    split_every
        Fan-in of the tree reduction.
    """
    zones = _check_pair(zones, codes)
    per_chunk = da.map_blocks(
        partial(_chunk_counts, index=index, n_zones=n_zones),
        zones,
        codes,
        dtype=np.int64,
        chunks=tuple((1,) * len(c) for c in codes.chunks) + ((n_zones,), (index.n_cols,)),
        new_axis=[2, 3],
        name="carbonscape-crosstab",
    )
    return per_chunk.sum(axis=(0, 1), split_every=split_every)


def crosstab_area(
    zones: da.Array, codes: da.Array, *, index: ClassIndex, n_zones: int, grid: Grid, split_every: int = 16
) -> da.Array:
    """Lazy ``(n_zones, index.n_cols)`` float64 sums of true pixel areas (m²) per (zone, class).

    Needed on a geographic grid, where each row has its own pixel area on the ellipsoid.
    """
    zones = _check_pair(zones, codes)
    per_chunk = da.map_blocks(
        partial(_chunk_areas, index=index, n_zones=n_zones, grid=grid),
        zones,
        codes,
        dtype=np.float64,
        chunks=tuple((1,) * len(c) for c in codes.chunks) + ((n_zones,), (index.n_cols,)),
        new_axis=[2, 3],
        name="carbonscape-crosstab-area",
    )
    return per_chunk.sum(axis=(0, 1), split_every=split_every)


def crosstab_numpy(zones: np.ndarray, codes: np.ndarray, *, index: ClassIndex, n_zones: int) -> np.ndarray:
    """Plain-numpy reference for :func:`crosstab` (``np.bincount`` over flattened pairs)."""
    codes64 = np.asarray(codes).astype(np.int64).ravel()
    zones64 = np.asarray(zones).astype(np.int64).ravel()
    if zones64.size and (zones64.min() < 0 or zones64.max() >= n_zones):
        raise InputError("zone id out of range of the zone table")
    position = codes64 - index.offset
    inside = (position >= 0) & (position < index.lut.size)
    columns = np.full(codes64.shape, index.unknown_col, dtype=np.int64)
    columns[inside] = index.lut[position[inside]]
    columns[codes64 == index.nodata_code] = index.nodata_col
    flat = np.bincount(zones64 * index.n_cols + columns, minlength=n_zones * index.n_cols)
    return flat.reshape(n_zones, index.n_cols)


def lookup(codes: da.Array, *, index: ClassIndex, values: np.ndarray, fill: float = np.nan) -> da.Array:
    """Lazy float32 raster of ``values[class]`` per pixel; nodata and unknown codes get ``fill``."""
    values = np.asarray(values, dtype=np.float64)
    return codes.map_blocks(_lookup_block, index=index, values=values, fill=fill, dtype=np.float32)


def _lookup_block(block: np.ndarray, *, index: ClassIndex, values: np.ndarray, fill: float) -> np.ndarray:
    # nodata is never a class code, so the table already sends it to ``fill``.
    return lookup_values(block, index.lut, index.offset, values, np.float32(fill))
