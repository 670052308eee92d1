"""Continuous (float) rasters as inputs: population per pixel, NPP, density-correction factors.

**Ingest** (:func:`ingest_continuous`): a GeoTIFF of floats becomes a Zarr store on the land-use
grid (same pixels, same chunks), so its sums ride in the supply pass (one read of every chunk,
counts and value sums together). A raster on another grid is resampled by nearest neighbour: each
land-use pixel takes the value of the source pixel holding its centre (transformed to the
source's CRS when the CRSs differ, which must be declared: ``resampling="nearest"``). Nodata and
land-use pixels outside the source's extent are NaN. The store's attributes record the source
grid and the method (and the study copies them into ``run.json``).

Two kinds of quantity (``quantity``):

* ``"density"``: a value per unit area or a dimensionless one (NPP in g C m⁻² yr⁻¹, a correction
  factor, a carbon density) is copied as it is.
* ``"count"``: a count per pixel (WorldPop/LandScan people per pixel) is stored as a density, the
  count over its source pixel's true area (people per m²), and summed as ``Σ d·a`` over the
  land-use pixels' true areas ``a``. Resampling a count by nearest without this would multiply
  the people by the ratio of the pixel areas (a 100 m WorldPop grid read on a 30 m land use 11
  times); on the same grid ``Σ d·a`` is the plain sum of the counts.

**Statistics** (:func:`value_specs`, :data:`VALUES`, :data:`FACTOR_AREAS`): the per-county running sums
``[pixels, Σv, Σa, Σv·a]`` of :data:`carbonscape.cells.WEIGHTED_SUM` (its kernel in
:mod:`carbonscape.kernels.cells`) give the sum and the area-weighted mean ``Σv·a / Σa``; the
factor-weighted areas per (county, class) of :func:`carbonscape.kernels.continuous.factor_areas`
give corrected supply. In fraction mode both share each boundary pixel among the counties
covering it by its exact covered fraction (:func:`carbonscape.kernels.continuous.share_boundary`),
as supply's areas do: ``Σ f·v`` is exactextract's ``sum``.

**What they give** (formulas in README "Continuous rasters"):

* population per county ``P = Σ d·a`` and demand ``P × per-capita emission`` (:func:`population_by_county`);
* yearly sequestration ``NPP × a`` (:func:`sequestration_by_county`): with NPP in g C m⁻² yr⁻¹
  and ``a`` in m², ``Σ NPP·a`` g C/yr × 10⁻⁶ t/g = t C/yr (kg C m⁻² yr⁻¹: × 10⁻³; t C ha⁻¹ yr⁻¹: × 10⁻⁴);
* densities corrected per pixel by a factor raster or per county by a factor table
  (:func:`corrected_supply`): ``supply = Σ_pool Σ_class density[class, pool] × Σ a·f_pool``.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import rasterio
from carbonscape import remote
from carbonscape.accumulate import Accumulation, Chunk, Layout, bind
from carbonscape.accumulate.reference import _county_ids
from carbonscape.carbon import M2_PER_HA, M2_PER_KM2, POOL_COLUMNS, POOLS, PoolTable, SupplyResult
from carbonscape.cluster import Executor, using
from carbonscape.errors import GridError, InputError
from carbonscape.grid import Grid
from carbonscape.io import open_store, raster_dataset, source_fingerprint, store_is_current, write_store
from carbonscape.kernels.cells import N_SUMS, N_VALID, SUM_A, SUM_V, SUM_VA, unit_value_sums
from carbonscape.kernels.continuous import factor_areas, share_boundary
from dask.highlevelgraph import HighLevelGraph
from rasterio.windows import Window

log = logging.getLogger(__name__)

__all__ = [
    "FACTOR_AREAS", "VALUES", "NPP_UNITS", "QUANTITIES", "ContinuousError", "ContinuousSupply", "corrected_carbon", "corrected_supply",
    "county_factor_array", "factor_table", "ingest_continuous", "write_corrected_pixel_maps",
    "population_by_county", "raster_minimum", "region_coverage", "scan_region", "resampling_needed", "sequestration_by_county",
    "continuous_table", "supply_with_rasters", "value_specs", "values_by_cell", "values_by_county",
]

VALUES_VARIABLE = "values"
QUANTITIES = {
    "density": "a value per unit area or a dimensionless one (NPP, a factor): copied, area-weighted in means",
    "count": "a count per pixel (people per pixel): stored per m² of its source pixel, summed as Σ d·a",
}
# "none": another CRS is refused (other pixels of the same CRS are still read by nearest neighbour).
RESAMPLING = ("none", "nearest")
# t C per (unit × m²) of each NPP unit: g C m⁻² yr⁻¹ × m² = g C/yr, × 1e-6 t/g.
NPP_UNITS = {"g C m-2 yr-1": 1e-6, "kg C m-2 yr-1": 1e-3, "t C ha-1 yr-1": 1.0 / M2_PER_HA}
# Molar masses: t CO2 = t C × 44/12 (IPCC 2006 Guidelines, vol. 4, eq. 2.x conventions).
C_TO_CO2 = 44.0 / 12.0
# Reading a source window larger than this many pixels per land-use pixel of the chunk switches to
# row-by-row reads of only the source rows nearest neighbour needs (a much finer source).
_WINDOW_RATIO = 4
_STRIP_ROWS = 512
# Pixel offsets below this fraction of a pixel are the same lattice (rounding of the georeferencing).
_SNAP = 1e-6


class ContinuousError(InputError):
    """A continuous raster that cannot be used: unreadable, off the region, another CRS without
    a declared resampling, negative counts."""


# -- the source and how it meets the land-use grid -------------------------------------------------

@dataclass(frozen=True)
class Source:
    """A continuous raster's header: its grid, dtype and nodata."""

    path: str
    grid: Grid
    dtype: str
    nodata: float | None


def read_source(path: str | os.PathLike[str]) -> Source:
    """The header of a continuous raster (a local file, or an ``s3://``/``http(s)://`` URL read by
    GDAL's range requests as the land use is, :mod:`carbonscape.remote`); :class:`ContinuousError`
    for a missing or unreadable file or one without a CRS."""
    path = os.fspath(path)
    if remote.is_url(path):
        try:
            remote.describe(path)  # a clear error naming the URL when the object is not there
        except ContinuousError:
            raise
        except InputError as exc:
            raise ContinuousError(str(exc)) from None
    elif not os.path.isfile(path):
        raise ContinuousError(f"{path}: no such file")
    try:
        with remote.gdal_env_for(path), rasterio.open(path) as src:
            if src.crs is None:
                raise ContinuousError(f"{path}: the raster has no CRS; assign one, e.g. `gdal_edit.py -a_srs EPSG:XXXX {path}`")
            if src.count > 1:
                log.warning("%s has %d bands; only band 1 is read", path, src.count)
            grid = Grid.from_affine(crs=src.crs, transform=src.transform, shape=(src.height, src.width))
            return Source(path=path, grid=grid, dtype=str(src.dtypes[0]), nodata=src.nodata)
    except rasterio.errors.RasterioIOError as exc:
        raise ContinuousError(f"{path}: cannot be read as a raster ({exc})") from None
    except GridError as exc:
        raise ContinuousError(f"{path}: {exc}") from None


def _lattice_offset(source: Grid, target: Grid) -> tuple[int, int] | None:
    """``(row, col)`` of the target's top-left pixel in the source when both are one lattice (same
    CRS, pixel size, whole-pixel offset, north-up), else None."""
    if not source.crs.equals(target.crs, ignore_axis_order=True):
        return None
    a, b, c, d, e, f = source.transform
    ta, tb, tc, td, te, tf = target.transform
    if b or d or tb or td or abs(a - ta) > _SNAP * abs(a) or abs(e - te) > _SNAP * abs(e):
        return None
    col, row = (tc - c) / a, (tf - f) / e
    if abs(col - round(col)) > _SNAP or abs(row - round(row)) > _SNAP:
        return None
    return int(round(row)), int(round(col))


def resampling_needed(source: Grid, target: Grid) -> str:
    """How a source grid meets the land-use grid: ``"none"`` (the same pixels, read by window),
    ``"nearest"`` (same CRS, other pixels) or ``"reproject"`` (another CRS: must be declared)."""
    if _lattice_offset(source, target) is not None:
        return "none"
    return "nearest" if source.crs.equals(target.crs, ignore_axis_order=True) else "reproject"


def _check_resampling(source: Source, target: Grid, resampling: str | None, *, setting: str) -> str:
    need = resampling_needed(source.grid, target)
    resampling = None if resampling == "none" else resampling
    if resampling is not None and resampling not in RESAMPLING:
        raise ContinuousError(f"{setting} {resampling!r}: the resampling must be one of {', '.join(RESAMPLING)}")
    if need == "reproject" and resampling is None:
        raise ContinuousError(
            f"{source.path}: its CRS {source.grid.crs.name!r} differs from the land use's {target.crs.name!r}; carbonscape "
            f"resamples it onto the land-use grid only when told: {_resampling_advice(setting)} (each land-use pixel takes the "
            "source pixel under its centre), or warp it yourself (gdalwarp -t_srs ... -tr ... -tap)"
        )
    return need


# -- resampling one chunk --------------------------------------------------------------------------

def _source_indices(source: Grid, target: Grid, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
    """Source (row, col) of the pixel under each land-use pixel centre of the window, -1 outside.

    Same CRS: separable (one row index per land-use row, one column per column), shapes
    ``(n, 1)`` and ``(1, m)``. Another CRS: every centre transformed by pyproj, ``(n, m)`` each.
    Our own nearest rather than GDAL's warper: a count needs its source pixel's area and the
    footprint must be told apart, and GDAL's choice on exact pixel edges is not documented.
    """
    a, _, c, _, e, f = target.transform
    x = c + a * (np.arange(cols.start, cols.stop) + 0.5)
    y = f + e * (np.arange(rows.start, rows.stop) + 0.5)
    if source.crs.equals(target.crs, ignore_axis_order=True):
        xs, ys = x[None, :], y[:, None]
    else:
        from pyproj import Transformer

        transformer = Transformer.from_crs(target.crs, source.crs, always_xy=True)
        xx, yy = np.meshgrid(x, y)
        xs, ys = transformer.transform(xx, yy, errcheck=False)
        xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    sa, _, sc, _, se, sf = source.transform
    height, width = source.shape
    with np.errstate(invalid="ignore"):
        col = np.floor((xs - sc) / sa)
        row = np.floor((ys - sf) / se)
    col = np.where(np.isfinite(col) & (col >= 0) & (col < width), col, -1).astype(np.int64)
    row = np.where(np.isfinite(row) & (row >= 0) & (row < height), row, -1).astype(np.int64)
    return row, col


def _read_rows(src: Any, rows: np.ndarray, c0: int, c1: int, quantity: str, source: Grid, nodata: float | None) -> np.ndarray:
    """Source rows ``rows`` (sorted, unique), columns ``c0 .. c1-1``, as float64 with nodata NaN and
    counts over their pixels' true areas: one window read when the rows are close together, else
    row by row (a much finer source: only the rows nearest neighbour takes)."""
    r0, r1 = int(rows[0]), int(rows[-1]) + 1
    if (r1 - r0) <= _WINDOW_RATIO * len(rows):
        lines = src.read(1, window=Window(c0, r0, c1 - c0, r1 - r0)).astype(np.float64)[rows - r0]
    else:
        lines = np.stack([src.read(1, window=Window(c0, int(r), c1 - c0, 1))[0] for r in rows]).astype(np.float64)
    if nodata is not None:
        lines[lines == nodata] = np.nan
    if quantity == "count":
        negative = lines < 0  # judged in the raster's own units (people per pixel), before they become people per m²
        if negative.any():
            raise ContinuousError(
                f"{src.name}: a count per pixel cannot be negative, and {int(negative.sum()):,} pixels are (as low as "
                f"{float(lines[negative].min()):g} people per pixel); set the raster's nodata value to the fill it uses "
                "(`gdal_edit.py -a_nodata -99999`) or clip it at 0"
            )
        area = source.pixel_areas_m2(slice(r0, r1), slice(c0, c1))
        lines /= area[rows - r0] if area.shape[0] > 1 else area
    return lines


def _gather(src: Any, rows: np.ndarray, cols: np.ndarray, quantity: str, source: Grid, nodata: float | None, out_dtype: str) -> np.ndarray:
    """Values of the source pixels ``(rows, cols)`` (broadcast), NaN where either is -1 or nodata.

    Same CRS (``rows`` ``(n, 1)``, ``cols`` ``(1, m)``) the gather is separable: the needed rows
    once, then their needed columns. Otherwise each pixel's own (row, col)."""
    shape = np.broadcast_shapes(rows.shape, cols.shape)
    out = np.full(shape, np.nan, dtype=out_dtype)
    if not (rows >= 0).any() or not (cols >= 0).any():
        return out
    if rows.shape[1] == 1 and cols.shape[0] == 1:
        rr, cc = rows[:, 0], cols[0]
        vr, vc = rr >= 0, cc >= 0
        c0, c1 = int(cc[vc].min()), int(cc[vc].max()) + 1
        needed, inverse = np.unique(rr[vr], return_inverse=True)
        lines = _read_rows(src, needed, c0, c1, quantity, source, nodata)
        out[np.ix_(vr, vc)] = lines[inverse][:, cc[vc] - c0]
        return out
    valid = (rows >= 0) & (cols >= 0)
    if not valid.any():
        return out
    r_all, c_all = rows[valid], cols[valid]
    c0, c1 = int(c_all.min()), int(c_all.max()) + 1
    needed, inverse = np.unique(r_all, return_inverse=True)
    if len(needed) * (c1 - c0) > _WINDOW_RATIO * 64 * max(out.size, 1):
        raise ContinuousError(
            f"{src.name}: its pixels are far finer than the land use's in another CRS; aggregate it first "
            "(gdalwarp -t_srs <land use CRS> -tr <land-use pixel size> -r average, or -r sum for counts)"
        )
    lines = _read_rows(src, needed, c0, c1, quantity, source, nodata)
    out[valid] = lines[inverse, c_all - c0]
    return out


def _resample_window(path: str, source: Grid, target: Grid, quantity: str, nodata: float | None, out_dtype: str,
                     rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """One chunk of the land-use grid filled from the source by nearest neighbour (see module doc)."""
    block = np.empty((rows[1] - rows[0], cols[1] - cols[0]), dtype=out_dtype)
    with remote.gdal_env_for(path), rasterio.open(path) as src:
        # In strips of rows: the index and value arrays of a whole 4096² chunk would be ~1 GB.
        for start in range(rows[0], rows[1], _STRIP_ROWS):
            stop = min(start + _STRIP_ROWS, rows[1])
            src_rows, src_cols = _source_indices(source, target, slice(start, stop), slice(*cols))
            block[start - rows[0]:stop - rows[0]] = _gather(src, src_rows, src_cols, quantity, source, nodata, out_dtype)
    if quantity == "count":
        negative = block < 0
        if negative.any():
            raise ContinuousError(
                f"{path}: a count per pixel cannot be negative, and {int(negative.sum()):,} pixels are (as low as "
                f"{float(np.nanmin(block[negative])):g} per m²); set the raster's nodata value to the fill it uses "
                "(`gdal_edit.py -a_nodata -99999`) or clip it at 0"
            )
    return block


# -- ingest -----------------------------------------------------------------------------------------

def ingest_continuous(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    like: str | os.PathLike[str],
    quantity: str = "density",
    resampling: str | None = None,
    force: bool = False,
    setting: str = "--resampling",
    scheduler: str | None = None,
    progress: bool = False,
    run: Executor | None = None,
) -> Path:
    """Put a float raster on the land-use grid of ``like`` as a Zarr store (variable ``values``).

    Parameters
    ----------
    source
        A GeoTIFF (any dtype; read as float).
    out
        The store to write.
    like
        The land-use store whose grid and chunks the values take.
    quantity
        ``"density"`` (copied) or ``"count"`` (stored per m² of its source pixel), see :data:`QUANTITIES`.
    resampling
        ``"nearest"`` to allow a source in another CRS; a source in the land use's CRS on other
        pixels is always resampled by nearest neighbour (and says so in the store's attributes).
    force
        Rebuild even when the store is up to date with the same source, grid and options.
    setting
        How messages name the resampling option (``[continuous] resampling`` from a study).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ContinuousError
        Unreadable source, another CRS without ``resampling``, a negative count (at compute).
    """
    if quantity not in QUANTITIES:
        raise ContinuousError(f"quantity {quantity!r} must be one of {', '.join(QUANTITIES)}")
    info = read_source(source)
    land = open_store(like)
    target = land.grid
    method = _check_resampling(info, target, resampling, setting=setting)
    # float32 unless the source is float64: the pass reading these stores is read-bound, and a float64
    # store of a float32 population grid doubled the pass's time (1.4 vs 0.76 s per 67 Mpx here) for
    # digits the data never had (a count over its area to 1e-7 relative).
    out_dtype = "float64" if np.dtype(info.dtype).itemsize > 4 else "float32"
    fingerprint = {**source_fingerprint([info.path], target.chunks[0]), "like": target.to_attrs(), "quantity": quantity,
                   "resampling": method, "chunks": list(target.chunks)}
    out_path = remote.location(out) if remote.is_url(out) else Path(out)
    if not force and store_is_current(out_path, fingerprint, "carbonscape_source"):
        log.info("%s is up to date with %s; nothing to do", out_path, info.path)
        return out_path
    if method != "none":
        ratio = (abs(info.grid.resolution[0]) * abs(info.grid.resolution[1])) / (abs(target.resolution[0]) * abs(target.resolution[1]))
        log.info("%s: resampled by nearest neighbour from its %s grid (%g × %g) onto the land use's (%g × %g)", info.path,
                 info.grid.crs.name, *info.grid.resolution, *target.resolution)
        if method == "nearest" and ratio < 0.25:
            log.warning("%s has pixels %.3g times smaller than the land use's; nearest neighbour reads one source pixel per land-use "
                        "pixel and drops the rest. Aggregate it to the land-use grid first (gdalwarp -r sum / -r average) for exact sums",
                        info.path, 1 / ratio)
    if quantity == "count":
        info.grid.area_model  # noqa: B018  (measured once here, not in every chunk's task: it travels with the grid)
    name = "continuous-" + uuid.uuid4().hex
    layer = {
        (name, i, j): (_resample_window, info.path, info.grid, target, quantity, info.nodata, out_dtype,
                       (rows.start, rows.stop), (cols.start, cols.stop))
        for (i, j), (rows, cols) in target.chunk_windows()
    }
    data = da.Array(HighLevelGraph.from_collections(name, layer, dependencies=()), name, target.dask_chunks, dtype=np.dtype(out_dtype))
    provenance = {
        "source": remote.name_of(info.path),
        "source_grid": {"crs": info.grid.crs.name, "transform": list(info.grid.transform), "shape": list(info.grid.shape),
                        "pixel_size": list(info.grid.resolution), "nodata": info.nodata, "dtype": info.dtype},
        "method": {"none": "identical pixels (window read)", "nearest": "nearest neighbour, same CRS",
                   "reproject": "nearest neighbour, reprojected from the source CRS"}[method],
        "resampling": method,
        "quantity": quantity,
        "stored_as": "per m² of the source pixel" if quantity == "count" else "as given",
        "nodata_as": "NaN",
    }
    attrs = {"carbonscape_source": fingerprint, "carbonscape_kind": "continuous", "continuous": provenance}
    ds = raster_dataset(data, target, name=VALUES_VARIABLE, nodata=float("nan"), attrs=attrs)
    with using(run, scheduler) as active:
        write_store(ds, out_path, grid=target, run=active, progress=progress,
                    label=f"ingest {remote.name_of(info.path)} onto {target.shape[0]}×{target.shape[1]} pixels → {out_path}")
    return out_path


def open_continuous(path: str | os.PathLike[str]) -> Any:
    """The :class:`~carbonscape.io.RasterStore` of a continuous store (its ``attrs["continuous"]``
    say where it came from)."""
    store = open_store(path, variable=VALUES_VARIABLE)
    if store.attrs.get("carbonscape_kind") != "continuous":
        raise ContinuousError(f"{path}: not a continuous store; make it with `carbonscape.ingest_continuous`")
    return store


# -- statistics ------------------------------------------------------------------------------------
#
# Fraction mode (a county store made with coverage="fraction", or `run`'s counties burned on the fly
# with it): the continuous sums share each boundary pixel among the counties covering it by its
# exact covered fraction, as the (county, class) areas do (carbonscape.accumulate.library's
# _share_fractions): the centre-rule sums first, then every boundary pixel's weight moved by
# kernels.continuous.share_boundary from the entries kernels.fraction.ring_fractions makes of the
# chunk's county rings. Only the boundary cells are visited (no per-pixel area or weight raster is
# built for them), and the fractions are computed once for every weight of the pixel.


def _boundary_entries(blocks: Mapping[str, Any], where: Chunk, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The chunk's boundary entries ``(pixels, counties, fractions)`` (sorted by pixel ``r * cols +
    c``, one per covering county) in fraction mode, else None: from the rings the pass reads as
    the raster ``layout.params["boundary_rings"]`` (counties burned on the fly), or from the
    fraction-mode county store at ``layout.params["boundary"]`` (its rings, or an older store's
    boundary table)."""
    from carbonscape.kernels.fraction import ring_fractions
    from carbonscape.rasterize import read_boundary, read_rings

    params = where.layout.params
    name = params.get("boundary_rings")
    # Every continuous statistic of the chunk (population, NPP, factors) needs the same entries:
    # computed once per task and thread (the fractions cost ~1.6× the centre-rule sums of a 4096²
    # chunk under 800 county parts), keyed by a block of the task itself, held so that its id is
    # never reused: the rings block, or for a store the county ids block (a store rewritten
    # between passes is read afresh).
    if name is not None:
        if name not in blocks:
            raise ValueError(f"fraction mode reads the county rings as raster {name!r}: the statistic must read it (reads={name!r})")
        anchor, key = blocks[name], (None, None, shape)
    elif params.get("boundary") is not None:
        anchor, key = blocks["counties"], (str(params["boundary"]), where.location, shape)
    else:
        return None
    last = getattr(_LAST_ENTRIES, "value", None)
    if last is not None and last[0] is anchor and last[1] == key:
        return last[2]
    if name is not None:
        rings = anchor
    else:
        rings = read_rings(params["boundary"], where.location)
        if rings is None:
            table = read_boundary(params["boundary"], where.location)
            return table["pixel"].astype(np.int64), table["county"].astype(np.int64), table["fraction"].astype(np.float64)
    if not len(rings.counties):
        return None
    entries = ring_fractions(rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties, shape[1], shape[0])
    _LAST_ENTRIES.value = (anchor, key, entries)
    return entries


# The last chunk's boundary entries, per thread (a worker runs several chunks' tasks at once).
_LAST_ENTRIES = threading.local()


def _at(area: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The areas of pixels ``(r, c)`` from a 2-D area block broadcasting to the chunk (``(1, 1)``,
    ``(rows, 1)``, ``(rows, cols)``), without materialising the broadcast."""
    return area[r if area.shape[0] > 1 else 0 * r, c if area.shape[1] > 1 else 0 * c]


def _values_nodata(layout: Layout) -> tuple[float, bool]:
    nodata = layout.params.get("values_nodata")
    return (0.0, False) if nodata is None or not np.isfinite(nodata) else (float(nodata), True)


def sum_values(blocks: Mapping[str, Any], where: Chunk) -> np.ndarray:
    """``[pixels, Σv, Σa, Σv·a]`` per county id of the ``values`` raster in one chunk (its valid
    pixels: finite, not ``layout.params["values_nodata"]``; ``a`` true m²), as
    :data:`carbonscape.cells.WEIGHTED_SUM`; in fraction mode ``Σv``, ``Σa`` and ``Σv·a`` share each
    boundary pixel by covered fraction (exactextract's ``sum`` is ``Σ f·v``, its area-weighted
    ``weighted_sum`` ``Σ f·v·a``), while ``pixels`` stays the pixel-centre count of valued pixels
    (the counts' rule: ``pixels_without_value`` is the county's pixel count minus it)."""
    values = blocks["values"]
    nodata, has_nodata = _values_nodata(where.layout)
    area = np.ascontiguousarray(np.atleast_2d(where.area()), dtype=np.float64)
    table = unit_value_sums(blocks["counties"], values, nodata, has_nodata, where.layout.n_counties, area)
    entries = _boundary_entries(blocks, where, values.shape)
    if entries is not None and len(entries[0]):
        pixels = entries[0]
        r, c = np.divmod(pixels, values.shape[1])
        v = np.asarray(values)[r, c].astype(np.float64)
        valid = np.isfinite(v) & ~((v == nodata) if has_nodata else np.zeros(v.shape, dtype=bool))
        v = np.where(valid, v, 0.0)
        a = np.where(valid, _at(area, r, c), 0.0)
        weights = np.column_stack([v, a, v * a])
        columns = np.broadcast_to(np.array([SUM_V, SUM_A, SUM_VA], dtype=np.int64), weights.shape)
        share_boundary(table, blocks["counties"], pixels, entries[1], entries[2], np.ascontiguousarray(columns), weights)
    return table


def _fraction_weights(blocks: Mapping[str, Any], where: Chunk, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray] | None:
    """Plain reference of fraction mode: ``(county, pixel, share)`` triples giving every pixel of
    the chunk to the counties that cover it (``share`` its covered fraction, the rest to id 0),
    or None in centre mode. With rings read in the pass (``boundary_rings``) the fractions are
    shapely's, for every pixel and county (:func:`carbonscape.kernels.fraction.polygon_fractions_numpy`,
    no code shared with the kernels); from a fraction-mode store, the store's boundary entries
    (:func:`carbonscape.rasterize.read_boundary_window`) over the pixel-centre ids."""
    params = where.layout.params
    n_pixels = shape[0] * shape[1]
    if params.get("boundary_rings") is not None:
        import shapely
        from carbonscape.kernels.fraction import polygon_fractions_numpy

        rings = blocks[params["boundary_rings"]]
        keys, pixels, shares = [], [], []
        covered = np.zeros(n_pixels)
        for k in range(len(rings.counties)):
            geom = shapely.Polygon()
            for a, b in zip(rings.ring_starts[rings.polygon_starts[k]:rings.polygon_starts[k + 1]],
                            rings.ring_starts[rings.polygon_starts[k] + 1:rings.polygon_starts[k + 1] + 1]):
                geom = shapely.symmetric_difference(geom, shapely.Polygon(np.column_stack([rings.xs[a:b], rings.ys[a:b]])))
            f = polygon_fractions_numpy(geom, (1.0, 0.0, 0.0, 0.0, 1.0, 0.0), shape).ravel()
            covered += f
            at = np.flatnonzero(f)
            keys.append(np.full(len(at), int(rings.counties[k]))), pixels.append(at), shares.append(f[at])
        keys.append(np.zeros(n_pixels, dtype=np.int64)), pixels.append(np.arange(n_pixels)), shares.append(np.clip(1.0 - covered, 0.0, None))
        return np.concatenate(keys).astype(np.int64), np.concatenate(pixels), np.concatenate(shares)
    if params.get("boundary") is None:
        return None
    from carbonscape.rasterize import read_boundary_window

    ids = _county_ids(blocks, where)
    entries = read_boundary_window(params["boundary"], where.rows, where.cols)
    pixel = entries["row"] * shape[1] + entries["col"]
    shared = np.zeros(n_pixels, dtype=bool)
    shared[pixel] = True
    covered = np.bincount(pixel, weights=entries["fraction"], minlength=n_pixels)
    rest = np.flatnonzero(shared)
    whole = np.flatnonzero(~shared)
    return (np.concatenate([ids[whole], entries["county"].astype(np.int64), np.zeros(len(rest), dtype=np.int64)]),
            np.concatenate([whole, pixel, rest]),
            np.concatenate([np.ones(len(whole)), entries["fraction"], np.clip(1.0 - covered[rest], 0.0, None)]))


def values_reference(blocks: Mapping[str, Any], where: Chunk) -> np.ndarray:
    """Plain-numpy :func:`sum_values`: ``np.bincount`` of the valid pixels per county; in fraction
    mode ``Σv, Σa, Σv·a`` of every pixel's (county, share) triples (:func:`_fraction_weights`)."""
    from carbonscape.cells import sum_unit_values_reference

    table = sum_unit_values_reference(blocks, where)
    values = np.asarray(blocks["values"])
    triples = _fraction_weights(blocks, where, values.shape)
    if triples is None:
        return table
    county, pixel, share = triples
    nodata, has_nodata = _values_nodata(where.layout)
    v = values.astype(np.float64).ravel()
    valid = np.isfinite(v) & ~((v == nodata) if has_nodata else np.zeros(v.shape, dtype=bool))
    v = np.where(valid, v, 0.0)
    a = np.where(valid, np.broadcast_to(where.area(), values.shape).ravel(), 0.0)
    n = where.layout.n_counties
    for column, w in ((SUM_V, v), (SUM_A, a), (SUM_VA, v * a)):
        table[:, column] = np.bincount(county, weights=share * w[pixel], minlength=n)
    return table


VALUES = Accumulation("values", chunk=sum_values, reference=values_reference, reads=("counties", "values"), dtype=np.dtype(np.float64),
                      shape=lambda layout: (layout.n_counties, N_SUMS), needs_area=True)
"""``[pixels, Σv, Σa, Σv·a]`` per county of a continuous raster (:func:`sum_values`): the
statistic of :data:`carbonscape.cells.WEIGHTED_SUM`, with boundary pixels shared by covered
fraction in fraction mode."""


def sum_factor_areas(blocks: Mapping[str, Any], where: Chunk) -> np.ndarray:
    """Σ a·f (m²) per (county, class column) of one chunk (factor NaN → 1); in fraction mode each
    boundary pixel's ``a·f`` shared by covered fraction in its class column, as its area is."""
    index = where.layout.classes
    codes, factor = blocks["landuse"], blocks["factor"]
    area = np.ascontiguousarray(np.atleast_2d(where.area()), dtype=np.float64)
    table = factor_areas(
        blocks["counties"], codes, factor, index.lut, index.offset, where.layout.n_counties,  # type: ignore[union-attr]
        index.n_cols, index.unknown_col, index.nodata_code, index.nodata_col,  # type: ignore[union-attr]
        area,
    )
    entries = _boundary_entries(blocks, where, codes.shape)
    if entries is not None and len(entries[0]):
        pixels = entries[0]
        r, c = np.divmod(pixels, codes.shape[1])
        f = np.asarray(factor)[r, c].astype(np.float64)
        f = np.where(np.isfinite(f), f, 1.0)
        a = _at(area, r, c)
        columns = index.columns(np.asarray(codes)[r, c])[:, None]  # type: ignore[union-attr]
        share_boundary(table, blocks["counties"], pixels, entries[1], entries[2], np.ascontiguousarray(columns), (a * f)[:, None])
    return table


def factor_areas_reference(blocks: Mapping[str, Any], where: Chunk) -> np.ndarray:
    """Plain-numpy :func:`sum_factor_areas`: ``np.bincount`` over (county, column) keys (in
    fraction mode over every pixel's (county, share) triples, :func:`_fraction_weights`)."""
    layout = where.layout
    shape = blocks["landuse"].shape
    columns = layout.classes.columns(blocks["landuse"]).ravel()  # type: ignore[union-attr]
    factor = np.asarray(blocks["factor"], dtype=np.float64).ravel()
    factor = np.where(np.isfinite(factor), factor, 1.0)
    weights = np.broadcast_to(where.area(), shape).ravel() * factor
    size = layout.n_counties * layout.n_cols
    triples = _fraction_weights(blocks, where, shape)
    if triples is None:
        ids = _county_ids(blocks, where)
        return np.bincount(ids * layout.n_cols + columns, weights=weights, minlength=size).reshape(layout.n_counties, layout.n_cols)
    county, pixel, share = triples
    return np.bincount(county * layout.n_cols + columns[pixel], weights=share * weights[pixel], minlength=size).reshape(layout.n_counties, layout.n_cols)


FACTOR_AREAS = Accumulation(
    "factor_areas", chunk=sum_factor_areas, reference=factor_areas_reference, reads=("counties", "landuse", "factor"),
    dtype=np.dtype(np.float64), needs_area=True,
)


def value_specs(name: str, *, factor: bool = False) -> list[Accumulation]:
    """The statistics of the continuous raster read as ``name`` in the supply pass: its per-county
    sums (``"values <name>"``, :data:`VALUES`) and, for a factor, the factor-weighted areas
    (``"factor_areas <name>"``). Both share boundary pixels by covered fraction in fraction mode
    (:func:`carbonscape.supply` adds the county rings to their reads when the pass has them)."""
    specs = [bind(VALUES, f"values {name}", rasters={"values": name})]
    if factor:
        specs.append(bind(FACTOR_AREAS, f"factor_areas {name}", rasters={"factor": name}))
    return specs


def values_by_county(sums: np.ndarray, *, zone_table: Any, counts: np.ndarray | None = None) -> pd.DataFrame:
    """Per county, from ``(n_zones, 4)`` running sums: ``pixels`` with a value, ``pixels_without_value``
    (of the county's pixels, when ``counts`` are given), ``sum`` Σv, ``area_km2`` of the valued
    pixels, ``mean`` (area-weighted, Σv·a / Σa), ``sum_va`` Σv·a (value × m²)."""
    ids = list(zone_table.ids)
    rows = np.asarray(sums)[ids]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = rows[:, SUM_VA] / rows[:, SUM_A]
    frame = pd.DataFrame({
        "county": [str(v) for v in zone_table.values],
        "pixels": rows[:, N_VALID].astype(np.int64),
        "sum": rows[:, SUM_V],
        "area_km2": rows[:, SUM_A] / M2_PER_KM2,
        "mean": mean,
        "sum_va": rows[:, SUM_VA],
    })
    if counts is not None:
        frame.insert(2, "pixels_without_value", np.asarray(counts)[ids].sum(axis=1).astype(np.int64) - frame["pixels"].to_numpy())
    return frame


def population_by_county(values: pd.DataFrame) -> pd.Series:
    """People per county from a ``count`` store's :func:`values_by_county`: ``P = Σ d·a``
    (people per m² × m²), indexed by county."""
    return pd.Series(values["sum_va"].to_numpy(), index=pd.Index(values["county"], name="county"), name="population")


def sequestration_by_county(values: pd.DataFrame, *, units: str = "g C m-2 yr-1") -> pd.DataFrame:
    """Yearly sequestration per county from an NPP store's :func:`values_by_county`.

    ``sequestration_t_c = Σ NPP·a × k`` with ``a`` the pixel's true area (m²) and ``k`` the
    unit's t C per (unit × m²) (:data:`NPP_UNITS`: g C m⁻² yr⁻¹ → 10⁻⁶), and
    ``sequestration_t_co2 = sequestration_t_c × 44/12``. NPP is taken as the net carbon uptake of
    the vegetation (the common proxy for sequestration in supply–demand studies); pixels without
    NPP add nothing.

    Returns
    -------
    pandas.DataFrame
        Indexed by county: ``npp_mean`` (area-weighted, in ``units``), ``npp_area_km2``,
        ``sequestration_t_c``, ``sequestration_t_co2`` (per year).
    """
    if units not in NPP_UNITS:
        raise ContinuousError(f"NPP units {units!r} must be one of {', '.join(NPP_UNITS)}")
    factor = NPP_UNITS[units]
    t_c = values["sum_va"].to_numpy() * factor
    return pd.DataFrame({
        "npp_mean": values["mean"].to_numpy(),
        "npp_area_km2": values["area_km2"].to_numpy(),
        "sequestration_t_c": t_c,
        "sequestration_t_co2": t_c * C_TO_CO2,
    }, index=pd.Index(values["county"], name="county"))


def factor_table(path: str | os.PathLike[str], *, key: str, counties: Sequence[str]) -> pd.DataFrame:
    """A per-county factor table (CSV or XLSX): the ``key`` column and ``factor`` (every pool) or
    one column per pool (``c_above`` ...; a pool without a column keeps factor 1).

    Returns
    -------
    pandas.DataFrame
        Indexed by county (as text), one column per pool of :data:`carbonscape.carbon.POOL_COLUMNS`.

    Raises
    ------
    ContinuousError
        An unreadable table, a missing key or factor column, a county missing from it, a factor
        that is not a non-negative number.
    """
    from carbonscape.demand import read_county_table

    try:
        raw = read_county_table(path, key=key)
    except InputError as exc:
        raise ContinuousError(f"factor table: {exc}") from None
    pools = [c for c in POOL_COLUMNS if c in raw.columns]
    if "factor" not in raw.columns and not pools:
        raise ContinuousError(f"{path}: a factor table needs a `factor` column (every pool) or columns {', '.join(POOL_COLUMNS)}")
    table = pd.DataFrame(index=raw.index.astype(str))
    for pool in POOL_COLUMNS:
        column = pool if pool in raw.columns else "factor" if "factor" in raw.columns else None
        table[pool] = 1.0 if column is None else pd.to_numeric(raw[column], errors="coerce").to_numpy()
    bad = table[~np.isfinite(table.to_numpy()).all(axis=1) | (table.to_numpy() < 0).any(axis=1)]
    if len(bad):
        raise ContinuousError(f"{path}: factors must be non-negative numbers; rows {', '.join(map(str, bad.index[:10]))} are not")
    missing = [c for c in counties if c not in table.index]
    if missing:
        raise ContinuousError(f"{path}: no factor for {len(missing)} county(ies) ({', '.join(missing[:10])}); add a row per county (1 for no correction)")
    return table


def corrected_supply(
    result: SupplyResult, pools: PoolTable, *, areas_m2: np.ndarray, zone_table: Any,
    pool_areas_m2: Mapping[str, np.ndarray] | None = None, county_factors: pd.DataFrame | None = None,
) -> SupplyResult:
    """Supply with densities corrected per pixel (factor rasters) and/or per county (a factor table).

    ``supply[county, class] = Σ_pool density[class, pool] × A_pool[county, class] × F[county, pool]``
    where ``A_pool = Σ a·f_pool`` over the county's pixels of the class (the pool's factor raster's
    :data:`FACTOR_AREAS`; ``areas_m2`` for a pool without one) and ``F`` the county's factor of
    the pool (1 without a table). The returned result keeps every table's shape; ``supply_t`` is
    the corrected supply, ``supply_t_uncorrected`` beside it in ``by_county`` and ``by_class``, and
    ``by_county_class`` gains ``factor_c_above`` … ``factor_c_dead``: the mean factor of each pool's
    density over the county's pixels of the class, ``A_pool·F / A`` (so the corrected mean density
    of the pool there is ``density × factor``).
    """
    pool_areas_m2 = dict(pool_areas_m2 or {})
    ids = list(zone_table.ids)
    keys = [str(v) for v in zone_table.values]
    n_classes = len(pools.codes)
    per_pool, per_pool_ha = [], []
    for column in POOL_COLUMNS:
        area_ha = np.asarray(pool_areas_m2.get(column, areas_m2))[ids, :n_classes] / M2_PER_HA
        if county_factors is not None:
            area_ha = area_ha * county_factors.loc[keys, column].to_numpy()[:, None]
        per_pool_ha.append(area_ha)
        per_pool.append(area_ha * pools.table[column].to_numpy()[None, :])
    supply = np.sum(per_pool, axis=0)  # (counties, classes) t C
    by_county, by_class = result.by_county.copy(), result.by_class.copy()
    by_county["supply_t_uncorrected"] = by_county["supply_t"]
    by_class["supply_t_uncorrected"] = by_class["supply_t"]
    total = supply.sum()
    by_county["supply_t"] = supply.sum(axis=1)
    by_county["share_pct"] = 100.0 * by_county["supply_t"] / total if total > 0 else 0.0
    by_class["supply_t"] = supply.sum(axis=0)
    by_class["share_pct"] = 100.0 * by_class["supply_t"] / total if total > 0 else 0.0
    pairs = result.by_county_class.copy()
    lookup = {(k, code): supply[i, j] for i, k in enumerate(keys) for j, code in enumerate(pools.codes)}
    pairs["supply_t"] = [lookup[(str(k), code)] for k, code in zip(pairs["county"], pairs["lucode"])]
    # The mean factor of each pool's density over the county's pixels of the class, A_pool·F / A
    # (1 where the class has no area): the corrected mean density is density × factor, the centre
    # of the Monte Carlo of [uncertainty] (uncertainty.factors_from_pairs reads these columns).
    plain_ha = np.asarray(areas_m2)[ids, :n_classes] / M2_PER_HA
    row = {k: i for i, k in enumerate(keys)}
    col = {code: j for j, code in enumerate(pools.codes)}
    at = ([row[str(k)] for k in pairs["county"]], [col[code] for code in pairs["lucode"]])
    for column, pool_ha in zip(POOL_COLUMNS, per_pool_ha):
        with np.errstate(divide="ignore", invalid="ignore"):
            mean_factor = np.where(plain_ha > 0, pool_ha / plain_ha, 1.0)
        pairs[f"factor_{column}"] = mean_factor[at]
    by_pool = pd.DataFrame({"pool": list(POOLS), "supply_t": [float(p.sum()) for p in per_pool]})
    summary = {**result.summary, "total_supply_t_uncorrected": result.summary.get("total_supply_t"), "total_supply_t": float(total)}
    return SupplyResult(by_county=by_county, by_class=by_class, by_county_class=pairs, by_pool=by_pool, summary=summary, files=dict(result.files))


def county_factor_array(county_factors: pd.DataFrame, zone_table: Any) -> np.ndarray:
    """A factor table (:func:`factor_table`) as ``(n_zones, 4)`` float64 indexed by zone id (the
    county store's pixel values), pools in :data:`~carbonscape.carbon.POOL_COLUMNS` order; id 0
    (outside every county) and ids without a county keep factor 1."""
    out = np.ones((zone_table.n_zones, len(POOL_COLUMNS)), dtype=np.float64)
    keys = [str(v) for v in zone_table.values]
    out[list(zone_table.ids)] = county_factors.loc[keys, list(POOL_COLUMNS)].to_numpy(dtype=np.float64)
    return out


def _corrected_block(codes: np.ndarray, *blocks: np.ndarray, index: Any, densities: np.ndarray, raster_pools: tuple[int, ...],
                     by_county: np.ndarray | None) -> np.ndarray:
    """One chunk of :func:`corrected_carbon`: ``Σ_pool density[class, pool] × f_pool × F[county, pool]``,
    ``blocks`` the factor rasters (one per entry of ``raster_pools``) then, with ``by_county``, the
    county ids; NaN factors count as 1 (as in the supply's :func:`factor_areas`)."""
    from carbonscape.kernels.crosstab import lookup_values

    rasters = dict(zip(raster_pools, blocks[:len(raster_pools)]))
    ids = None
    if by_county is not None:
        ids = np.asarray(blocks[len(raster_pools)], dtype=np.int64)
        ids = np.where((ids >= 0) & (ids < by_county.shape[0]), ids, 0)
    total = np.zeros(codes.shape, dtype=np.float32)
    for p in range(densities.shape[1]):
        pool = lookup_values(codes, index.lut, index.offset, np.ascontiguousarray(densities[:, p]), np.float32(np.nan))
        if p in rasters:
            f = np.asarray(rasters[p], dtype=np.float32)
            pool *= np.where(np.isfinite(f), f, np.float32(1.0))
        if ids is not None:
            pool *= by_county[ids, p].astype(np.float32)
        total += pool
    return total


def corrected_carbon(
    land: da.Array, *, index: Any, pools: PoolTable, factor_rasters: Mapping[str, da.Array] | None = None,
    counties: da.Array | None = None, county_factors: np.ndarray | None = None,
) -> da.Array:
    """Carbon per pixel (t/ha, float32, lazy) with the densities corrected as :func:`corrected_supply`
    corrects the tables: ``Σ_pool density[class, pool] × f_pool(pixel) × F[county, pool]``.

    Parameters
    ----------
    land
        Land-use codes (the store's dask array); nodata and unknown codes give NaN.
    index
        The pools' :class:`~carbonscape.accumulate.ClassIndex` for ``land``.
    pools
        The pools table (t/ha).
    factor_rasters
        Pool column (``c_soil`` …) → its factor raster on the land-use grid and chunks (a
        continuous store's data); NaN → 1.
    counties, county_factors
        The county store's ids and :func:`county_factor_array` of a factor table.
    """
    factor_rasters = dict(factor_rasters or {})
    raster_pools = tuple(POOL_COLUMNS.index(column) for column in factor_rasters)
    arrays = [land, *factor_rasters.values()]
    by_county = None
    if county_factors is not None:
        if counties is None:
            raise ValueError("county_factors need the county store's ids (counties)")
        arrays.append(counties)
        by_county = np.asarray(county_factors, dtype=np.float64)
    densities = pools.table[list(POOL_COLUMNS)].to_numpy(dtype=np.float64)
    return da.map_blocks(_corrected_block, *arrays, index=index, densities=densities, raster_pools=raster_pools,
                         by_county=by_county, dtype=np.float32)


def write_corrected_pixel_maps(
    landuse: str | os.PathLike[str], pools: PoolTable, *, out: str | os.PathLike[str], run: Executor,
    factor_stores: Mapping[str, str | os.PathLike[str]] | None = None, zones: str | os.PathLike[str] | None = None,
    county_factors: pd.DataFrame | None = None, progress: bool = False,
) -> dict[str, Path]:
    """``carbon_t_per_ha.zarr``/``.tif`` and the overview (:data:`~carbonscape.carbon.PIXEL_MAP_FILES`)
    of :func:`corrected_carbon` in ``out``: the pixel maps of the corrected densities.

    ``factor_stores``: pool column → continuous store of its factor raster; ``zones`` and
    ``county_factors``: the county store and the factor table (:func:`factor_table`)."""
    from carbonscape.accumulate import ClassIndex
    from carbonscape.carbon import PIXEL_MAP_FILES, _write_pixel_maps
    from carbonscape.rasterize import open_zones

    land = open_store(landuse)
    index = ClassIndex.build(pools.codes, nodata=land.nodata)
    rasters = {pool: open_continuous(store).data for pool, store in (factor_stores or {}).items()}
    counties = by_county = None
    if county_factors is not None:
        if zones is None:
            raise ValueError("a factor table needs the county store (zones)")
        zone_store, zone_table = open_zones(zones)
        counties, by_county = zone_store.data, county_factor_array(county_factors, zone_table)
    carbon = corrected_carbon(land.data, index=index, pools=pools, factor_rasters=rasters, counties=counties, county_factors=by_county)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    _write_pixel_maps(land, index, pools, folder, run, progress=progress, carbon=carbon)
    return {name: folder.absolute() / file for name, file in PIXEL_MAP_FILES.items()}


# -- checks before compute -------------------------------------------------------------------------

def region_coverage(source: Source, polygons: Any) -> float:
    """Share (0–1) of the region's polygons' area outside the raster's extent, measured in the
    raster's CRS (its footprint is a rectangle there)."""
    import shapely

    region = polygons.geometry.to_crs(source.grid.crs)
    union = shapely.union_all(np.asarray(region.values))
    if union.is_empty or union.area <= 0:
        return 0.0
    inside = union.intersection(shapely.box(*source.grid.bounds)).area
    return float(max(0.0, 1.0 - inside / union.area))


@dataclass(frozen=True)
class RegionScan:
    """What :func:`scan_region` found of a raster over the counties.

    Attributes
    ----------
    minimum
        The smallest valid value over the counties' window (None when none is valid).
    pixels, valued
        Per county (in the order of the polygons given), the source pixels whose centre lies in
        it, and of those the ones holding a value (not nodata, not NaN).
    """

    minimum: float | None
    pixels: np.ndarray
    valued: np.ndarray


# Pixels read and burned at a time by scan_region (~130 MB of float64 and int32 at most).
_SCAN_PIXELS = 1 << 23


def scan_region(source: Source, polygons: Any) -> RegionScan:
    """Read a continuous raster over the counties' extent only, in strips of rows (memory flat), and
    count per county its pixels and those with a value (centres burned by GDAL's rasterize), with
    the smallest valid value. What `check` asks before any compute: is a county left without
    values (all nodata), are there negative values or an undeclared fill value."""
    import shapely
    from rasterio import features, windows

    region = polygons.geometry.to_crs(source.grid.crs).reset_index(drop=True)
    n = len(region)
    pixels, valued = np.zeros(n + 1, dtype=np.int64), np.zeros(n + 1, dtype=np.int64)
    lowest: float | None = None
    geoms = np.asarray(region.values)
    tree = shapely.STRtree(geoms)
    with remote.gdal_env_for(source.path), rasterio.open(source.path) as src:
        height, width = src.height, src.width
        try:
            box = windows.from_bounds(*shapely.union_all(geoms).bounds, transform=src.transform)
        except Exception:  # noqa: BLE001 - an empty or degenerate region
            return RegionScan(None, pixels[1:], valued[1:])
        r0, c0 = max(0, int(np.floor(box.row_off))), max(0, int(np.floor(box.col_off)))
        r1, c1 = min(height, int(np.ceil(box.row_off + box.height))), min(width, int(np.ceil(box.col_off + box.width)))
        if r0 >= r1 or c0 >= c1:
            return RegionScan(None, pixels[1:], valued[1:])
        step = max(1, _SCAN_PIXELS // (c1 - c0))
        for top in range(r0, r1, step):
            window = Window(c0, top, c1 - c0, min(step, r1 - top))
            transform = windows.transform(window, src.transform)
            hits = tree.query(shapely.box(*windows.bounds(window, src.transform)))
            if not len(hits):
                continue
            ids = features.rasterize(((geoms[i], int(i) + 1) for i in hits), out_shape=(window.height, window.width),
                                     transform=transform, fill=0, dtype="int32")
            block = src.read(1, window=window).astype(np.float64)
            good = np.isfinite(block) if src.nodata is None else np.isfinite(block) & (block != src.nodata)
            pixels += np.bincount(ids.ravel(), minlength=n + 1)
            valued += np.bincount(ids[good].ravel(), minlength=n + 1)
            inside = good & (ids > 0)
            if inside.any():
                low = float(block[inside].min())
                lowest = low if lowest is None else min(lowest, low)
    return RegionScan(lowest, pixels[1:], valued[1:])


def raster_minimum(path: str | os.PathLike[str]) -> float | None:
    """The smallest valid value of band 1, read block by block (memory flat); None when all nodata."""
    lowest: float | None = None
    with remote.gdal_env_for(os.fspath(path)), rasterio.open(path) as src:
        nodata = src.nodata
        for _, window in src.block_windows(1):
            block = src.read(1, window=window).astype(np.float64)
            valid = np.isfinite(block) & ((block != nodata) if nodata is not None else True)
            if valid.any():
                low = float(block[valid].min())
                lowest = low if lowest is None else min(lowest, low)
    return lowest


# Values at or below this over the counties, without a declared nodata, are a fill (-9999, -3.4e38),
# not a population, an NPP or a factor.
FILL_LIKE = -9999.0


def _resampling_advice(setting: str) -> str:
    """How to ask for nearest-neighbour resampling where the user gives it: the CLI's flag form
    (``--resampling nearest``) or the study file's (``[continuous] resampling = "nearest"``)."""
    return f"give {setting} nearest" if setting.startswith("--") else f'set {setting} = "nearest"'


def raster_problems(
    path: str | os.PathLike[str],
    *,
    setting: str,
    quantity: str,
    factor: bool = False,
    polygons: Any = None,
    keys: Sequence[str] | None = None,
    landuse: Grid | None = None,
    resampling: str | None = None,
    resampling_setting: str = "--resampling",
    max_uncovered: float = 0.001,
) -> tuple[list[str], RegionScan | None]:
    """What is wrong with one continuous raster before anything is computed — the one check of
    `check`, `run` and `supply`: unreadable, another CRS than the land use's without resampling,
    more than ``max_uncovered`` of the region (``polygons``) outside its extent, counties (``keys``,
    aligned with ``polygons``) without a value, negative counts or factors, an undeclared fill.

    Parameters
    ----------
    path
        The GeoTIFF (local path or URL).
    setting
        How messages name the raster (``--population``, ``[continuous] population``).
    quantity, factor
        ``"count"`` (people per pixel) or ``"density"``; ``factor``: a correction factor.
    polygons
        The region (a GeoSeries or GeoDataFrame in any CRS); None: no coverage or value checks
        over the counties (the whole raster's minimum is still checked for counts and factors).
    keys
        The county keys of ``polygons``, for the counties left without values; None: not checked.
    landuse
        The land-use grid, for the CRS check; None: not checked.
    resampling, resampling_setting
        The resampling asked for and how the user gives it (``--resampling``, ``[continuous] resampling``).
    max_uncovered
        Share (0–1) of the region's area allowed outside the raster's extent.

    Returns
    -------
    (list of str, RegionScan or None)
        The problems (empty: fine), each naming the file, the value and the fix; the scan of the
        raster over the region when one was made.
    """
    problems: list[str] = []
    try:
        source = read_source(path)
    except ContinuousError as exc:
        return [f"{setting}: {exc}"], None
    if landuse is not None and resampling_needed(source.grid, landuse) == "reproject" and resampling != "nearest":
        problems.append(
            f"{setting}: {source.path}: its CRS {source.grid.crs.name!r} differs from the land use's {landuse.crs.name!r}; "
            f"{_resampling_advice(resampling_setting)} to resample it onto the land-use grid, or warp it yourself (gdalwarp -tap)"
        )
    uncovered = 0.0
    if polygons is not None:
        try:
            uncovered = region_coverage(source, polygons)
        except Exception as exc:  # noqa: BLE001 - pyproj's errors vary by version
            problems.append(f"{setting}: {source.path}: the counties cannot be put in its CRS ({exc})")
        if uncovered > max_uncovered:
            problems.append(
                f"{setting}: {source.path} does not cover the region: {100 * uncovered:.2f}% of the counties' area lies "
                f"outside its extent (more than [continuous] max_uncovered = {max_uncovered:g}); give a raster that covers every county"
            )
    scan = None
    if polygons is not None and uncovered < 1.0:
        try:  # the counties' window only (a continental raster for one province is not read whole)
            scan = scan_region(source, polygons)
        except Exception as exc:  # noqa: BLE001 - GDAL's read errors name the file
            problems.append(f"{setting}: {source.path}: cannot be read over the counties ({exc})")
            return problems, None
        if keys is not None:
            problems.extend(_empty_counties(setting, source, scan, list(keys), quantity=quantity, factor=factor))
    lowest = scan.minimum if scan is not None else (raster_minimum(source.path) if quantity == "count" or factor else None)
    if (quantity == "count" or factor) and lowest is not None and lowest < 0:
        what = "people per pixel" if quantity == "count" else "a correction factor"
        problems.append(
            f"{setting}: {source.path} holds negative values (as low as {lowest:g}{' people per pixel' if quantity == 'count' else ''}), "
            f"impossible for {what}; set its nodata value to the fill it uses (`gdal_edit.py -a_nodata -99999`) or fix the values"
        )
    elif source.nodata is None and lowest is not None and lowest <= FILL_LIKE:
        problems.append(
            f"{setting}: {source.path} declares no nodata value and holds {lowest:g}, a fill value rather than data; "
            f"declare it (`gdal_edit.py -a_nodata {lowest:g}`) so those pixels count as missing"
        )
    return problems, scan


def _empty_counties(setting: str, source: Source, scan: RegionScan, keys: list[str], *, quantity: str, factor: bool) -> list[str]:
    """Counties over which the raster holds pixels but none with a value (its nodata, or NaN): their
    population or sequestration would silently be 0, their densities left uncorrected."""
    empty = [key for key, n, v in zip(keys, scan.pixels, scan.valued) if n > 0 and v == 0]
    if not empty:
        return []
    what = {"count": "their population would be 0", "density": "their sums would be 0"}[quantity]
    if factor:
        what = "their densities would be left uncorrected"
    nodata = f"nodata {source.nodata:g}" if source.nodata is not None else "NaN"
    return [
        f"{setting}: {source.path} holds no value ({nodata}) over {len(empty)} county(ies) ({', '.join(empty[:10])}"
        f"{' …' if len(empty) > 10 else ''}): {what}; give a raster with values there"
        + (" (1 where no correction is meant)" if factor else ", or check its nodata value (`gdalinfo -stats`)")
    ]


# Land-use pixels per side of the coarse footprint :func:`store_footprint` draws (at most ~1000²).
_FOOTPRINT_SIDE = 1024


def store_footprint(store: str | os.PathLike[str], *, zones: bool) -> Any:
    """The region of a zone store (its pixels in a county) or of a land-use store (its extent) as
    polygons in the store's CRS, for :func:`raster_problems` where no county polygons are at hand
    (`supply --zones`, `supply --grid`). The zone footprint is traced on a grid at most ~1000
    samples a side (one pixel in every ``step``), each sample standing for its ``step²`` block:
    exact enough to tell a raster covering half the region from one covering it all."""
    import geopandas as gpd
    import shapely

    from carbonscape.rasterize import open_zones

    held = open_zones(store)[0] if zones else open_store(store)
    grid = held.grid
    if not zones:
        return gpd.GeoSeries([shapely.box(*grid.bounds)], crs=grid.crs)
    from rasterio import features

    step = max(1, int(np.ceil(max(grid.shape) / _FOOTPRINT_SIDE)))
    mask = np.asarray(da.asarray(held.data)[::step, ::step] != 0)
    a, b, c, d, e, f = tuple(grid.transform)[:6]
    coarse = rasterio.Affine(a * step, b, c, d, e * step, f)
    shapes = [shapely.geometry.shape(geom) for geom, value in
              features.shapes(mask.astype(np.uint8), mask=mask, transform=coarse) if value == 1]
    return gpd.GeoSeries(shapes or [shapely.box(*grid.bounds)], crs=grid.crs)


def check_rasters(
    rasters: Mapping[str, tuple[str | os.PathLike[str] | None, str]],
    *,
    like: str | os.PathLike[str],
    zones: str | os.PathLike[str] | None = None,
    resampling: str | None = None,
    max_uncovered: float = 0.001,
) -> None:
    """:func:`raster_problems` of the `supply` command's rasters over the region of its zone store
    (or, with ``--grid``, the land use's extent), before anything is computed.

    Parameters
    ----------
    rasters
        ``{flag: (path or None, quantity)}``, e.g. ``{"--population": ("pop.tif", "count")}``;
        ``--factor`` is checked as a correction factor.

    Raises
    ------
    ContinuousError
        Every problem found, one per line.
    """
    given = {flag: (path, quantity) for flag, (path, quantity) in rasters.items() if path is not None}
    if not given:
        return
    landuse = open_store(like).grid
    region = store_footprint(zones if zones is not None else like, zones=zones is not None)
    problems: list[str] = []
    for flag, (path, quantity) in given.items():
        found, _ = raster_problems(path, setting=flag, quantity=quantity, factor=flag == "--factor", polygons=region, landuse=landuse,
                                   resampling=None if resampling == "none" else resampling, max_uncovered=max_uncovered)
        problems.extend(found)
    if problems:
        raise ContinuousError("\n".join(problems))


# -- supply with continuous rasters (the `supply` command's --population/--npp/--factor) -----------

@dataclass
class ContinuousSupply:
    """Supply (corrected when a factor raster is given) and the continuous rasters' per-county tables."""

    supply: SupplyResult
    values: dict[str, pd.DataFrame]
    sequestration: pd.DataFrame | None
    provenance: dict[str, Any]
    files: dict[str, Path]


def supply_with_rasters(
    landuse: str | os.PathLike[str],
    zones: str | os.PathLike[str],
    pools: str | os.PathLike[str],
    *,
    out: str | os.PathLike[str],
    population: str | os.PathLike[str] | None = None,
    npp: str | os.PathLike[str] | None = None,
    npp_units: str = "g C m-2 yr-1",
    factor: str | os.PathLike[str] | None = None,
    resampling: str | None = None,
    min_coverage: float | None = None,
    pixel_maps: bool = False,
    scheduler: str | None = None,
    progress: bool = False,
    run: Executor | None = None,
) -> ContinuousSupply:
    """:func:`carbonscape.supply` with continuous rasters summed in the same pass.

    Each raster is ingested onto the land-use grid (``out/stores/<name>.zarr``, nearest
    neighbour, see :func:`ingest_continuous`); ``population`` (people per pixel) gives people per
    county, ``npp`` yearly sequestration (:func:`sequestration_by_county`), and ``factor`` corrects
    every pool's density pixel by pixel (:func:`corrected_supply`). Writes the supply tables,
    ``continuous_by_county.csv`` and, with ``npp``, ``sequestration_by_county.csv`` to ``out``;
    ``pixel_maps``: carbon per pixel too, of the corrected densities when ``factor`` is given
    (:func:`write_corrected_pixel_maps`).
    """
    from carbonscape.carbon import read_pools, supply
    from carbonscape.io import atomic_path
    from carbonscape.rasterize import open_zones

    if npp is not None and npp_units not in NPP_UNITS:
        raise ContinuousError(f"--npp-units {npp_units!r} must be one of {', '.join(NPP_UNITS)}")
    wanted = [(name, path, quantity) for name, path, quantity in
              (("population", population, "count"), ("npp", npp, "density"), ("factor", factor, "density")) if path is not None]
    folder = Path(out)
    pool_table = read_pools(pools)
    with using(run, scheduler) as active:
        stores, provenance = {}, {}
        for name, path, quantity in wanted:
            stores[name] = ingest_continuous(path, folder / "stores" / f"{name}.zarr", like=landuse, quantity=quantity,
                                             resampling=resampling, progress=progress, run=active)
            provenance[name] = {"path": str(remote.location(path)), **open_continuous(stores[name]).attrs["continuous"]}
        specs = [spec for name, *_ in wanted for spec in value_specs(name, factor=name == "factor")]
        # With a factor the pixel maps are of the corrected densities, written below once the pass is done.
        result = supply(landuse, zones, pools, out=folder, progress=progress, run=active, min_coverage=min_coverage, extra=specs,
                        rasters={name: open_continuous(store).data for name, store in stores.items()},
                        pixel_maps=pixel_maps and factor is None)
        if pixel_maps and factor is not None:
            maps = write_corrected_pixel_maps(landuse, pool_table, out=folder, run=active, progress=progress,
                                              factor_stores={pool: stores["factor"] for pool in POOL_COLUMNS})
    _, zone_table = open_zones(zones)
    values = {name: values_by_county(result.tables[f"values {name}"], zone_table=zone_table, counts=result.tables["counts"])
              for name, *_ in wanted}
    if factor is not None:
        tables = result.tables
        result = corrected_supply(result, pool_table, areas_m2=tables["areas"], zone_table=zone_table,
                                  pool_areas_m2={pool: tables["factor_areas factor"] for pool in POOL_COLUMNS})
        result.tables = tables
        result.write(folder)
        if pixel_maps:
            result.files.update(maps)
    sequestration = sequestration_by_county(values["npp"], units=npp_units) if npp is not None else None
    files = dict(result.files)
    if values:
        files["continuous"] = _write_csv(continuous_table(values), folder / "continuous_by_county.csv", atomic_path)
    if sequestration is not None:
        files["sequestration"] = _write_csv(sequestration.reset_index(), folder / "sequestration_by_county.csv", atomic_path)
    return ContinuousSupply(supply=result, values=values, sequestration=sequestration, provenance=provenance, files=files)


def continuous_table(values: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """``continuous_by_county.csv``: one row per raster and county (from :func:`values_by_county`):
    pixels with and without a value, the sum, the valued area (km²) and the area-weighted mean; for
    population (stored per m²) the sum is people (Σ d·a) and the mean people per km²."""
    rows = []
    for name, table in values.items():
        table = table if "county" in table.columns else table.reset_index()
        frame = table.drop(columns=["sum_va"]).assign(raster=name)
        if name == "population":
            frame["sum"] = table["sum_va"].to_numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                frame["mean"] = frame["sum"] / frame["area_km2"]
        rows.append(frame)
    combined = pd.concat(rows, ignore_index=True)
    return combined[["raster", "county", *[c for c in combined.columns if c not in ("raster", "county")]]]


def _write_csv(frame: pd.DataFrame, path: Path, atomic_path: Any) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, encoding="utf-8", float_format="%.10g")
    return path.absolute()


def values_by_cell(store: str | os.PathLike[str], *, size: float, scheduler: str | None = None, progress: bool = False,
                   run: Executor | None = None) -> pd.DataFrame:
    """A continuous store summed per regular grid cell of ``size`` CRS units (cells of
    :class:`carbonscape.cells.CellGrid`, aligned to the land-use grid's top-left corner), each
    cell's sums made in the chunk that holds it (:data:`carbonscape.cells.CELL_VALUES`).

    Returns
    -------
    pandas.DataFrame
        One row per cell holding a value: ``cell, row, col, pixels, sum, area_km2, mean``
        (area-weighted), and for a ``count`` store ``people`` (Σ d·a) in place of a plain sum.
    """
    from carbonscape.accumulate import accumulate as run_statistics
    from carbonscape.accumulate import pixel_areas
    from carbonscape.cells import CELL_VALUES, CellGrid, cells_params, stitch_cells

    held = open_continuous(store)
    cells = CellGrid.from_size(held.grid, size)
    data = held.data  # chunks need not be whole cells: a cell astride a chunk edge sums its parts
    layout = Layout(params=cells_params(data, cells))
    lazy = run_statistics([CELL_VALUES], None, {"values": data}, layout=layout, areas=pixel_areas(held.grid))
    with using(run, scheduler) as active:
        (table,) = active.compute(lazy["cell_values"], progress=progress, label=f"values per {cells.size:g} cell")
    sums = stitch_cells(np.asarray(table), cells, data.chunks)
    rows, cols = np.nonzero(sums[..., N_VALID] > 0)
    picked = sums[rows, cols]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = picked[:, SUM_VA] / picked[:, SUM_A]
    frame = pd.DataFrame({"cell": cells.cell_ids(rows, cols), "row": rows, "col": cols, "pixels": picked[:, N_VALID].astype(np.int64),
                          "sum": picked[:, SUM_V], "area_km2": picked[:, SUM_A] / M2_PER_KM2, "mean": mean})
    if held.attrs["continuous"].get("quantity") == "count":
        frame["sum"] = picked[:, SUM_VA]  # people: Σ d·a
        frame["mean"] = frame["sum"] / frame["area_km2"]  # people per km²
    return frame
