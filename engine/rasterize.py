"""County polygons to integer zone ids on exactly the land-use grid, chunk by chunk.

Each chunk burns only the polygons that touch it (found with an STRtree and clipped to the
chunk), using GDAL's pixel-centre rule through :func:`rasterio.features.rasterize`. Ids are
1..n in the order of the vector file; 0 is outside every polygon. The store keeps the
id ↔ field-value table.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from carbonscape.cluster import Executor, using
from carbonscape.errors import ZoneError
from carbonscape.grid import Grid
from carbonscape import remote
from carbonscape.io import open_store, raster_dataset, store_is_current, write_store
from carbonscape.vectors import read_vector
from dask.highlevelgraph import HighLevelGraph
from pyproj import Geod
from rasterio.errors import NotGeoreferencedWarning
from rasterio.features import rasterize as gdal_rasterize

log = logging.getLogger(__name__)
# rasterio.features.rasterize run from several threads of one process at once sometimes reports
# another thread's in-memory dataset as ungeoreferenced (GDAL error state is shared); the burned
# values are right (tests compare them with a whole-raster burn), so the spurious warning is muted.
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module="rasterio.features")

ZONES_VARIABLE = "zones"


@dataclass(frozen=True)
class ZoneTable:
    """The id ↔ county table of a zone store."""

    id_field: str
    ids: tuple[int, ...]
    values: tuple[Any, ...]

    def to_attrs(self) -> dict[str, Any]:
        return {"id_field": self.id_field, "ids": list(self.ids), "values": list(self.values)}

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> ZoneTable:
        return cls(id_field=str(attrs["id_field"]), ids=tuple(int(i) for i in attrs["ids"]), values=tuple(attrs["values"]))

    @property
    def n_zones(self) -> int:
        """Number of ids including 0 (outside)."""
        return (max(self.ids) if self.ids else 0) + 1

    def series(self) -> pd.Series:
        return pd.Series(list(self.values), index=pd.Index(list(self.ids), name="zone_id"), name=self.id_field)


def read_polygons(
    path: str | os.PathLike[str], *, id_field: str, layer: str | None = None, encoding: str | None = None,
    names: Mapping[str, str] | None = None,
) -> gpd.GeoDataFrame:
    """Read county polygons and check the id field (present, not empty, unique).

    The layer must be named when the file has several; text of a shapefile without a ``.cpg`` is
    decoded as its bytes say (UTF-8 or GBK), unless ``encoding`` is given
    (:func:`carbonscape.vectors.read_vector`). ``names`` says how messages name the options:
    ``{"id_field": "--id-field", ...}`` (the default, for the CLI's `zones`) or
    ``{"id_field": "[counties] id_field", ...}`` for a study file."""
    option = {"id_field": "--id-field", **(names or {})}
    path = os.fspath(path)
    gdf = read_vector(path, layer=layer, encoding=encoding, names=names)
    if gdf.empty:
        raise ZoneError(f"{path}: the layer holds no features")
    if id_field not in gdf.columns:
        fields = [c for c in gdf.columns if c != gdf.geometry.name]
        raise ZoneError(f"{path}: no field {id_field!r}; the fields are {fields}: set {option['id_field']} to one of them")
    if gdf.crs is None:
        raise ZoneError(f"{path}: the file has no CRS; set one (e.g. `ogr2ogr -a_srs EPSG:XXXX out.gpkg {path}`)")
    values = gdf[id_field]
    if values.isna().any():
        rows = np.flatnonzero(values.isna().to_numpy())[:10].tolist()
        raise ZoneError(f"{path}: {id_field!r} is empty in feature(s) {rows} (0-based, in file order); every county needs a value")
    duplicated = values[values.duplicated(keep=False)]
    if not duplicated.empty:
        where = "; ".join(
            f"{value!s} in features {np.flatnonzero((values == value).to_numpy()).tolist()}" for value in list(duplicated.unique())[:10]
        )
        raise ZoneError(
            f"{path}: {id_field!r} is not unique: {where} (0-based, in file order). Dissolve the parts first (e.g. `ogr2ogr -dialect sqlite -sql \"SELECT ST_Union(geom), "
            f"{id_field} FROM layer GROUP BY {id_field}\"`) or choose another id field"
        )
    empty = gdf.geometry.is_empty | gdf.geometry.isna()
    if empty.any():
        log.warning("%s: %d feature(s) without geometry are skipped: %s", path, int(empty.sum()), list(values[empty])[:10])
        gdf = gdf[~empty]
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        log.warning("%s: repairing %d invalid polygon(s): %s", path, int(invalid.sum()), list(gdf.loc[invalid, id_field])[:10])
        gdf = gdf.copy()
        gdf.loc[invalid, gdf.geometry.name] = shapely.make_valid(gdf.geometry[invalid].to_numpy())
    return gdf.reset_index(drop=True)


def geodesic_areas_km2(gdf: gpd.GeoDataFrame) -> np.ndarray:
    """True area of each polygon on its CRS's ellipsoid, in km² (independent of any projection)."""
    geographic = gdf.to_crs(gdf.crs.geodetic_crs)
    ellipsoid = gdf.crs.ellipsoid
    geod = Geod(a=ellipsoid.semi_major_metre, rf=ellipsoid.inverse_flattening) if ellipsoid else Geod(ellps="WGS84")
    # Geod's area is signed by ring orientation (holes count negative only when wound clockwise),
    # so orient every ring first: exteriors counter-clockwise, holes clockwise.
    oriented = shapely.orient_polygons(geographic.geometry.to_numpy(), exterior_cw=False)
    return np.array([geod.geometry_area_perimeter(geom)[0] / 1e6 for geom in oriented])


def _centres_inside(geom: Any, grid: Grid, *, block: int = 4096) -> int:
    """How many pixel centres of ``grid`` fall inside ``geom`` (GDAL's pixel-centre rule), burned
    block by block over the geometry's bounds so a long border sliver costs little memory."""
    minx, miny, maxx, maxy = geom.bounds
    left, _, _, top = grid.bounds
    xres, yres = grid.resolution
    # Pixels whose centres lie within the bounds: centre of column c is left + (c + 0.5) * xres.
    c0, c1 = max(0, math.ceil((minx - left) / xres - 0.5)), min(grid.shape[1], math.floor((maxx - left) / xres - 0.5) + 1)
    r0, r1 = max(0, math.ceil((top - maxy) / yres - 0.5)), min(grid.shape[0], math.floor((top - miny) / yres - 0.5) + 1)
    found = 0
    for row in range(r0, r1, block):
        for col in range(c0, c1, block):
            rows, cols = slice(row, min(row + block, r1)), slice(col, min(col + block, c1))
            window = shapely.box(*grid.window_bounds(rows, cols))
            if not geom.intersects(window):
                continue
            burned = gdal_rasterize([(geom, 1)], out_shape=(rows.stop - rows.start, cols.stop - cols.start),
                                    transform=grid.window_transform(rows.start, cols.start), fill=0, all_touched=False, dtype="uint8")
            found += int(burned.sum(dtype=np.int64))
    return found


def _check_overlaps(gdf: gpd.GeoDataFrame, *, id_field: str, grid: Grid, path: str) -> None:
    """Refuse polygons that overlap where a pixel centre lies: that pixel would belong to two
    counties. Overlaps holding no pixel centre (digitising slivers along shared borders) burn
    nothing twice and pass."""
    geoms = gdf.geometry.to_numpy()
    left, right = gdf.sindex.query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    if left.size == 0:
        return
    shared = shapely.intersection(geoms[left], geoms[right])
    has_area = shapely.area(shared) > 0
    pixels = np.zeros(left.size, dtype=np.int64)
    for k in np.flatnonzero(has_area):
        pixels[k] = _centres_inside(shared[k], grid)
    bad = np.flatnonzero(pixels)
    if bad.size:
        names = [f"{gdf[id_field].iloc[left[k]]!s} and {gdf[id_field].iloc[right[k]]!s} ({pixels[k]:,} pixels)" for k in bad[:5]]
        raise ZoneError(
            f"{path}: polygons overlap, so some pixels would belong to two counties: {'; '.join(names)}"
            f"{f' and {bad.size - 5} more pair(s)' if bad.size > 5 else ''}. Fix the boundaries (e.g. QGIS "
            "'Check validity' / 'Fix geometries', or clip one polygon by the other)"
        )


def _burn_chunk(wkbs: tuple[bytes, ...], ids: tuple[int, ...], transform: tuple[float, ...], shape: tuple[int, int], dtype: str) -> np.ndarray:
    if not wkbs:
        return np.zeros(shape, dtype=dtype)
    from affine import Affine

    geoms = shapely.from_wkb(list(wkbs))
    return gdal_rasterize(
        zip(geoms, ids), out_shape=shape, transform=Affine(*transform), fill=0, all_touched=False, dtype=dtype
    )


def zone_dtype(n: int) -> np.dtype:
    """The smallest unsigned dtype that holds ids 0..n."""
    for candidate in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(candidate).max:
            return np.dtype(candidate)
    raise ZoneError(f"{n:,} zones are more than carbonscape supports")


def zones_array(gdf: gpd.GeoDataFrame, grid: Grid, *, ids: np.ndarray) -> da.Array:
    """Lazy zone-id raster of ``gdf`` (already in the grid's CRS) on ``grid``."""
    dtype = zone_dtype(int(ids.max()) if len(ids) else 0)
    geoms = gdf.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    xres, yres = grid.resolution
    name = "zones-" + uuid.uuid4().hex
    layer: dict[Any, Any] = {}
    for (i, j), (rows, cols) in grid.chunk_windows():
        left, bottom, right, top = grid.window_bounds(rows, cols)
        hits = np.sort(tree.query(shapely.box(left, bottom, right, top)))
        # Clipping bounds each task's payload to the chunk, whatever the polygons' detail.
        clipped = shapely.clip_by_rect(geoms[hits], left - xres, bottom - yres, right + xres, top + yres)
        keep = ~shapely.is_empty(clipped)
        wkbs = tuple(shapely.to_wkb(clipped[keep]))
        layer[(name, i, j)] = (
            _burn_chunk, wkbs, tuple(int(v) for v in ids[hits][keep]),
            tuple(grid.window_transform(rows.start, cols.start))[:6],
            (rows.stop - rows.start, cols.stop - cols.start), dtype.str,
        )
    graph = HighLevelGraph.from_collections(name, layer, dependencies=())
    return da.Array(graph, name, grid.dask_chunks, dtype=dtype)


def rasterize_zones(
    vector: str | os.PathLike[str],
    *,
    like: str | os.PathLike[str],
    id_field: str,
    out: str | os.PathLike[str],
    layer: str | None = None,
    encoding: str | None = None,
    force: bool = False,
    scheduler: str | None = None,
    progress: bool = False,
    run: Executor | None = None,
) -> Path:
    """Rasterize county polygons to zone ids on the grid of a land-use store.

    Parameters
    ----------
    vector
        GeoPackage, Shapefile, GeoJSON… (anything pyogrio reads).
    like
        The land-use store whose grid the zones must match.
    id_field
        The field naming each county; must be unique.
    out
        The zone store to write.
    layer
        The vector layer, when the file has several.
    encoding
        The attribute text's encoding (default: the ``.cpg``, else detected, see
        :func:`carbonscape.vectors.read_vector`).
    force
        Rebuild even when the store is up to date.
    scheduler, progress
        See :func:`carbonscape.ingest`.

    Returns
    -------
    pathlib.Path
        The store's path.
    """
    vector_path = os.fspath(vector)
    landuse = open_store(like)
    grid = landuse.grid
    out_path = remote.location(out) if remote.is_url(out) else Path(out)
    stat = os.stat(vector_path) if os.path.exists(vector_path) else None
    fingerprint = {
        "vector": {"path": os.path.abspath(vector_path), "bytes": stat.st_size if stat else None, "mtime_ns": stat.st_mtime_ns if stat else None},
        "layer": layer,
        **({"encoding": encoding} if encoding else {}),
        "id_field": id_field,
        "grid": grid.to_attrs(),
        "chunks": list(grid.chunks),
        "format": 1,
    }
    if not force and store_is_current(out_path, fingerprint, "carbonscape_source"):
        log.info("%s is up to date; nothing to do (use --force to rebuild)", out_path)
        return out_path
    gdf = read_polygons(vector_path, id_field=id_field, layer=layer, encoding=encoding)
    declared = gdf.crs.name
    gdf = gdf.to_crs(grid.crs)
    if not np.all(np.isfinite(gdf.total_bounds)):
        raise ZoneError(
            f"{vector_path}: the polygons cannot be reprojected from their declared CRS {declared!r} "
            f"to the raster's {grid.crs.name!r}: their coordinates do not fit that CRS. GeoJSON is always read as "
            "lon/lat (WGS 84); if the coordinates are projected, save the file with its real CRS, e.g. as a GeoPackage"
        )
    left, bottom, right, top = grid.bounds
    inside = gdf.intersects(shapely.box(left, bottom, right, top))
    if not inside.any():
        raise ZoneError(
            f"{vector_path}: no polygon overlaps the raster {like} (raster bounds {tuple(round(float(v), 3) for v in grid.bounds)} "
            f"in {grid.crs.name!r}; polygons' bounds {tuple(round(float(v), 3) for v in gdf.total_bounds)}). "
            "Check that both files cover the same region and that their CRSs are declared correctly"
        )
    if not inside.all():
        log.warning("%s: %d polygon(s) lie outside the raster and get no pixels: %s", vector_path, int((~inside).sum()), list(gdf.loc[~inside, id_field])[:10])
    _check_overlaps(gdf, id_field=id_field, grid=grid, path=vector_path)
    ids = np.arange(1, len(gdf) + 1)
    values = [v.item() if isinstance(v, np.generic) else v for v in gdf[id_field].tolist()]
    table = ZoneTable(id_field=id_field, ids=tuple(int(i) for i in ids), values=tuple(values))
    data = zones_array(gdf, grid, ids=ids)
    attrs = {
        "carbonscape_source": fingerprint,
        "carbonscape_kind": "zones",
        "zone_table": table.to_attrs(),
        "landuse_store": os.path.basename(os.path.abspath(os.fspath(like))),
    }
    ds = raster_dataset(data, grid, name=ZONES_VARIABLE, nodata=None, attrs=attrs)

    with using(run, scheduler) as active:
        write_store(ds, out_path, grid=grid, run=active, progress=progress, label=f"zones: {len(gdf)} polygons → {out_path}")
    return out_path


def open_zones(path: str | os.PathLike[str]) -> tuple[Any, ZoneTable]:
    """Open a zone store: the :class:`~carbonscape.io.RasterStore` and its id table."""
    store = open_store(path, variable=ZONES_VARIABLE)
    if "zone_table" not in store.attrs:
        raise ZoneError(f"{path}: not a zone store (no zone table); create it with `carbonscape zones`")
    return store, ZoneTable.from_attrs(store.attrs["zone_table"])
