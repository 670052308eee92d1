"""The accumulation layer: per-chunk statistics declared once, run together in one pass.

A statistic is an :class:`Accumulation` (its numba ``chunk``, a tree-sum or blockwise combine, an
optional client-side ``finalize``, and a plain-numpy ``reference``); :func:`accumulate` maps any set
of them over aligned rasters, reading each chunk once, and returns lazy tables by name. The library
(:data:`COUNTS`, :data:`AREAS`, :data:`CODE_HISTOGRAM`, ...) is in :mod:`.library`;
:func:`accumulate_numpy` is the reference engine the property tests hold every kernel to.

``crosstab``/``crosstab_area``/``crosstab_numpy`` are the earlier names of the counts and areas
passes, kept as thin calls of the runner.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
from carbonscape.accumulate.classindex import ClassIndex, lookup
from carbonscape.accumulate.library import (
    AREAS,
    CODE_HISTOGRAM,
    COUNTS,
    LIBRARY,
    SPARSE_DTYPE,
    SPARSE_TRANSITIONS,
    TRANSITION_AREAS,
    TRANSITION_TABLES,
    TRANSITIONS,
    Trajectories,
    code_counts,
    merge_sparse,
    sparse_cells,
    sparse_to_dense,
)
from carbonscape.accumulate.runner import accumulate, accumulate_numpy, finalize
from carbonscape.accumulate.spec import Accumulation, AreaSource, Chunk, Layout, RowAreas, bind, pixel_areas
from carbonscape.grid import Grid

__all__ = [
    "AREAS", "CODE_HISTOGRAM", "COUNTS", "LIBRARY", "Accumulation", "AreaSource", "Chunk", "ClassIndex", "Layout",
    "RowAreas", "TRANSITIONS", "TRANSITION_AREAS", "TRANSITION_TABLES", "accumulate", "accumulate_numpy", "bind", "code_counts", "crosstab", "crosstab_area", "crosstab_numpy",
    "finalize", "lookup", "pixel_areas", "SPARSE_DTYPE", "SPARSE_TRANSITIONS", "merge_sparse", "sparse_cells", "sparse_to_dense", "Trajectories",
]


def _aligned_counties(zones: da.Array, codes: da.Array) -> da.Array:
    from carbonscape.errors import InputError

    if zones.shape != codes.shape:
        raise InputError(f"zones {zones.shape} and land use {codes.shape} differ in shape")
    return zones if zones.chunks == codes.chunks else zones.rechunk(codes.chunks)


def crosstab(zones: da.Array, codes: da.Array, *, index: ClassIndex, n_zones: int, split_every: int = 16) -> da.Array:
    """Lazy ``(n_zones, index.n_cols)`` int64 pixel counts of every (unit, class) pair (:data:`COUNTS`)."""
    zones = _aligned_counties(zones, codes)
    layout = Layout(n_counties=n_zones, classes=index)
    return accumulate([COUNTS], zones, {"landuse": codes}, layout=layout, split_every=split_every)["counts"]


def crosstab_area(
    zones: da.Array, codes: da.Array, *, index: ClassIndex, n_zones: int, grid: Grid, split_every: int = 16
) -> da.Array:
    """Lazy ``(n_zones, index.n_cols)`` float64 true areas (m²) per (unit, class) (:data:`AREAS`)."""
    zones = _aligned_counties(zones, codes)
    layout = Layout(n_counties=n_zones, classes=index)
    return accumulate([AREAS], zones, {"landuse": codes}, layout=layout, grid=grid, split_every=split_every)["areas"]


def crosstab_numpy(zones: np.ndarray, codes: np.ndarray, *, index: ClassIndex, n_zones: int) -> np.ndarray:
    """Plain-numpy reference for :func:`crosstab`."""
    layout = Layout(n_counties=n_zones, classes=index)
    return accumulate_numpy([COUNTS], zones, {"landuse": codes}, layout=layout)["counts"]
