"""County polygons to integer zone ids on exactly the land-use grid, chunk by chunk.

Each chunk burns only the polygons that touch it (found with an STRtree and clipped to the
chunk) by scanline spans with GDAL's pixel-centre rule (:func:`burn_window`,
:mod:`carbonscape.kernels.spans`; GDAL itself is the tests' oracle). Ids are
1..n in the order of the vector file; 0 is outside every polygon. The store keeps the
id ↔ field-value table.
"""

from __future__ import annotations

import io
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
from carbonscape.coverage import COVERAGE_MODES
from carbonscape.errors import InputError, ZoneError
from carbonscape.grid import AREA_NOMINAL, Grid
from carbonscape import remote
from carbonscape.io import RasterStore, open_store, raster_dataset, store_is_current, write_store
from carbonscape.vectors import read_vector
from dask.highlevelgraph import HighLevelGraph
from pyproj import Geod
from rasterio.errors import NotGeoreferencedWarning

log = logging.getLogger(__name__)
# rasterio.features.rasterize run from several threads of one process at once sometimes reports
# another thread's in-memory dataset as ungeoreferenced (GDAL error state is shared); the burned
# values are right (tests compare them with a whole-raster burn), so the spurious warning is muted.
# (The ids here are filled by kernels/spans.py; GDAL's burn remains in other modules, e.g. continuous.)
warnings.filterwarnings("ignore", category=NotGeoreferencedWarning, module="rasterio.features")

ZONES_VARIABLE = "zones"
# In fraction mode, a pair of polygons is refused only when its overlap exceeds BOTH half a pixel of
# area and this share of the smaller polygon: the slivers of a border digitised twice (a metre's
# misalignment along a 50 km border is 55 pixels of 30 m, 0.005 % of such a county) pass, real
# double counting does not. Each polygon gets its own fractions, so a sliver is counted twice:
# at most 0.01 % of the smaller county's area.
OVERLAP_TOLERANCE_PX = 0.5
OVERLAP_TOLERANCE_SHARE = 1e-4
# And whatever the pixel size, an overlap above this share of the smaller polygon is refused: a
# county drawn on top of another (a development zone not cut out of its county, smaller than half
# a coarse pixel) is no sliver, and fraction mode would count all of it twice.
OVERLAP_REFUSED_SHARE = 0.01


@dataclass(frozen=True)
class ZoneTable:
    """The id ↔ county table of a zone store.

    ``area_km2`` is each polygon's geodesic area and ``outside_km2`` the geodesic area of its part
    beyond the raster's extent (both on the ellipsoid, in id order); stores written before they
    were recorded have None.
    """

    id_field: str
    ids: tuple[int, ...]
    values: tuple[Any, ...]
    area_km2: tuple[float, ...] | None = None
    outside_km2: tuple[float, ...] | None = None

    def to_attrs(self) -> dict[str, Any]:
        attrs: dict[str, Any] = {"id_field": self.id_field, "ids": list(self.ids), "values": list(self.values)}
        if self.area_km2 is not None and self.outside_km2 is not None:
            attrs["area_km2"] = list(self.area_km2)
            attrs["outside_km2"] = list(self.outside_km2)
        return attrs

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, Any]) -> ZoneTable:
        areas, outside = attrs.get("area_km2"), attrs.get("outside_km2")
        return cls(
            id_field=str(attrs["id_field"]), ids=tuple(int(i) for i in attrs["ids"]), values=tuple(attrs["values"]),
            area_km2=None if areas is None else tuple(float(v) for v in areas),
            outside_km2=None if outside is None else tuple(float(v) for v in outside),
        )

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
    kinds = gdf.geometry.geom_type
    # Counties are areas: a layer of boundary lines or centroid points would rasterize to nothing
    # (and be reported as a county outside the raster or of 0 km²); name what it is instead.
    not_areas = ~kinds.isin(["Polygon", "MultiPolygon"]) & ~((kinds == "GeometryCollection") & (shapely.area(gdf.geometry.to_numpy()) > 0))
    if not_areas.any():
        found = "; ".join(f"{value!s}: {kind}" for value, kind in list(zip(values[not_areas.index[not_areas]], kinds[not_areas]))[:10])
        raise ZoneError(
            f"{path}: {int(not_areas.sum())} of {len(gdf)} feature(s) are not polygons ({found}{'; …' if not_areas.sum() > 10 else ''}); "
            "counties must be polygon areas. If these are boundary lines, build polygons from them first "
            "(QGIS: Vector ▸ Geometry Tools ▸ Lines to Polygons, or `ogr2ogr -nlt POLYGON`), or give the polygon layer (`layer`)"
        )
    invalid = ~gdf.geometry.is_valid
    if invalid.any():
        log.warning("%s: repairing %d invalid polygon(s): %s", path, int(invalid.sum()), list(gdf.loc[invalid, id_field])[:10])
        gdf = gdf.copy()
        gdf.loc[invalid, gdf.geometry.name] = shapely.make_valid(gdf.geometry[invalid].to_numpy())
    return gdf.reset_index(drop=True)


def geodesic_areas_km2(gdf: gpd.GeoDataFrame, *, batch_points: int = 500_000, parallel_points: float = 1_000_000) -> np.ndarray:
    """True area of each polygon on its CRS's ellipsoid, in km² (independent of any projection).

    A projected polygon's edges are straight lines of its CRS, not geodesics (an equal-area
    CRS's parallels bow away from the geodesic between their ends): they are densified before
    the vertices go to lon/lat, to ~10 m (at most 4,000 points a polygon), which keeps the area
    within ~1e-8 of the exact one (the error falls as the square of the step).

    Polygons are measured in batches of about ``batch_points`` densified vertices, so memory stays
    flat however many polygons there are (2,900 counties at once held 11.6 million densified
    points in several copies: 1.8 GB, the peak of a whole nation's run); each polygon's area is
    computed alone, so batching does not change any value. From ``parallel_points`` densified
    vertices on, a helper process measures half of each batch's rings (:class:`_RingAreas`).
    """
    geoms = gdf.geometry.to_numpy()
    if len(geoms) == 0:
        return np.zeros(0)
    step = None
    points = shapely.get_num_coordinates(geoms).astype(np.float64)
    if not gdf.crs.is_geographic:
        lengths = shapely.length(geoms)
        unit = gdf.crs.axis_info[0].unit_conversion_factor if gdf.crs.axis_info else 1.0
        # 4,000 points, not more: 2,900 counties of a nation at 20,000 points each took 46 s here.
        step = np.maximum(10.0 / (unit or 1.0), lengths / 4_000)
        step = np.where(step > 0, step, 1.0)
        points = points + np.nan_to_num(lengths / step)
    ends = np.searchsorted(np.cumsum(points), np.arange(1, int(points.sum() // batch_points) + 2) * batch_points, side="right")
    bounds = np.unique(np.concatenate([[0], np.minimum(ends, len(geoms)), [len(geoms)]]))
    areas = np.zeros(len(geoms))
    ellipsoid = gdf.crs.ellipsoid
    shape = {"a": ellipsoid.semi_major_metre, "rf": ellipsoid.inverse_flattening} if ellipsoid else {"ellps": "WGS84"}
    with _RingAreas(shape, helper=points.sum() >= parallel_points) as ring_areas:
        for a, b in zip(bounds[:-1], bounds[1:]):
            if b > a:
                areas[a:b] = _geodesic_areas_m2(geoms[a:b], gdf.crs, None if step is None else step[a:b], ring_areas)
    return areas / 1e6


# The helper process of _RingAreas: pyproj's Geod holds the GIL, so a second core is used through a
# plain interpreter that imports only numpy and pyproj (not carbonscape: no fork of a process whose
# dask threads may hold locks, and no second of imports).
_RING_AREAS_HELPER = """
import sys
import numpy as np
from pyproj import Geod
geod = Geod(**eval(sys.argv[1]))
read, write = sys.stdin.buffer.read, sys.stdout.buffer
while True:
    head = read(16)
    if len(head) < 16:
        break
    n, r = np.frombuffer(head, dtype="<i8")
    bounds = np.frombuffer(read(8 * (int(r) + 1)), dtype="<i8")
    lon = np.frombuffer(read(8 * int(n)), dtype="<f8")
    lat = np.frombuffer(read(8 * int(n)), dtype="<f8")
    out = np.array([geod.polygon_area_perimeter(lon[bounds[k]:bounds[k + 1]], lat[bounds[k]:bounds[k + 1]])[0] for k in range(int(r))], dtype="<f8")
    write.write(out.tobytes())
    write.flush()
"""


class _RingAreas:
    """Signed geodesic areas (m²) of rings, on two cores when ``helper``: the later half of each
    batch's rings goes to a helper process while this one measures the first half. The same
    :meth:`pyproj.Geod.polygon_area_perimeter` on the same numbers either way, so the values do
    not depend on where they were computed. Falls back to one core if the helper cannot start."""

    def __init__(self, shape: dict[str, Any], *, helper: bool) -> None:
        self.geod = Geod(**shape)
        self.shape, self.wanted, self.proc = shape, helper, None

    def __enter__(self) -> _RingAreas:
        if self.wanted:
            import subprocess
            import sys

            try:
                self.proc = subprocess.Popen([sys.executable, "-c", _RING_AREAS_HELPER, repr(self.shape)],
                                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            except OSError as exc:
                log.info("geodesic areas on one core: the helper process did not start (%s)", exc)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            self.proc.stdin.close()
            self.proc.stdout.close()
            self.proc.wait()

    def _local(self, lon: np.ndarray, lat: np.ndarray, bounds: np.ndarray, rings: range) -> list[float]:
        return [self.geod.polygon_area_perimeter(lon[bounds[k]:bounds[k + 1]], lat[bounds[k]:bounds[k + 1]])[0] for k in rings]

    def __call__(self, lon: np.ndarray, lat: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        n = len(bounds) - 1
        if self.proc is None or n < 2:
            return np.asarray(self._local(lon, lat, bounds, range(n)), dtype=np.float64)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        half = int(np.searchsorted(bounds, bounds[-1] / 2))
        half = min(max(half, 1), n - 1)
        start = int(bounds[half])
        theirs = (bounds[half:] - start).astype("<i8")
        self.proc.stdin.write(np.array([int(bounds[-1]) - start, n - half], dtype="<i8").tobytes() + theirs.tobytes()
                              + np.ascontiguousarray(lon[start:], dtype="<f8").tobytes() + np.ascontiguousarray(lat[start:], dtype="<f8").tobytes())
        self.proc.stdin.flush()
        mine = self._local(lon, lat, bounds, range(half))
        answer = self.proc.stdout.read(8 * (n - half))
        if len(answer) != 8 * (n - half):
            raise RuntimeError("the geodesic-area helper process stopped before answering")
        return np.concatenate([np.asarray(mine, dtype=np.float64), np.frombuffer(answer, dtype="<f8")])


def _geodesic_areas_m2(geoms: np.ndarray, crs: Any, step: np.ndarray | None, ring_areas: Any) -> np.ndarray:
    """:func:`geodesic_areas_km2` of some polygons, in m²: densified by ``step`` (CRS units; None for lon/lat)."""
    if step is not None:
        geoms = shapely.segmentize(geoms, step)
    geographic = gpd.GeoSeries(geoms, crs=crs).to_crs(crs.geodetic_crs)
    # Geod's area is signed by ring orientation (holes count negative only when wound clockwise),
    # so orient every ring first: exteriors counter-clockwise, holes clockwise.
    oriented = shapely.orient_polygons(geographic.to_numpy(), exterior_cw=False)
    # Ring by ring on plain arrays (shapely's per-ring .xy copies cost as much as the areas).
    parts, part_of = shapely.get_parts(oriented, return_index=True)  # get_rings reads polygons, not multipolygons
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    owner = part_of[ring_part]
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    bounds = np.searchsorted(ring_of, np.arange(len(rings) + 1))
    lon, lat = np.ascontiguousarray(coords[:, 0]), np.ascontiguousarray(coords[:, 1])
    del coords
    per_ring = ring_areas(lon, lat, bounds)
    areas = np.zeros(len(oriented))
    for k in range(len(rings)):  # in ring order, as one loop summed them
        areas[owner[k]] += per_ring[k]
    return areas


def county_areas_km2(source: gpd.GeoDataFrame, projected: gpd.GeoDataFrame, grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Each county's area and the area of its part beyond the raster (km²), as coverage measures
    them: geodesic areas of the polygons as given (``source``), except on grids whose pixels count
    nominal areas, where ``projected`` (the same polygons in the grid's CRS) is measured in the plane."""
    if grid.area_model.rule == AREA_NOMINAL:
        # Pixels count nominal areas here (an equal-area grid, or UTM inside its zone within 0.1 %):
        # polygons and their parts beyond the raster are measured the same way, in the grid's plane,
        # so that a county its pixels cover wholly is covered 100 %, not 99.92 % (and no geodesic
        # area is needed: 7 s of 10 for 3,000 counties at 10^8 pixels).
        unit_km2 = grid.linear_unit_m**2 / 1e6
        geoms = projected.geometry.to_numpy()
        area_km2 = shapely.area(geoms) * unit_km2
        footprint = shapely.box(*grid.bounds)
        crossing = ~shapely.within(geoms, footprint)
        outside_km2 = np.zeros(len(geoms))
        outside_km2[crossing] = shapely.area(shapely.difference(geoms[crossing], footprint)) * unit_km2
    else:
        area_km2, outside_km2 = geodesic_areas_km2(source), outside_areas_km2(source, grid)
    return area_km2, outside_km2


def outside_areas_km2(gdf: gpd.GeoDataFrame, grid: Grid, *, points_per_edge: int = 256) -> np.ndarray:
    """Geodesic area (km²) of each polygon's part beyond the raster's extent.

    The raster's footprint (a rectangle in the grid's CRS, its edges densified so they stay the
    grid's straight lines) is carried to the polygons' own CRS and cut from them there; polygons
    wholly inside it get exactly 0.
    """
    left, bottom, right, top = grid.bounds
    t = np.linspace(0.0, 1.0, points_per_edge, endpoint=False)
    xs = np.concatenate([left + (right - left) * t, np.full_like(t, right), right - (right - left) * t, np.full_like(t, left)])
    ys = np.concatenate([np.full_like(t, bottom), bottom + (top - bottom) * t, np.full_like(t, top), top - (top - bottom) * t])
    footprint = gpd.GeoSeries([shapely.Polygon(np.column_stack([xs, ys]))], crs=grid.crs).to_crs(gdf.crs).iloc[0]
    if not footprint.is_valid:
        footprint = shapely.make_valid(footprint)
    geoms = gdf.geometry.to_numpy()
    inside = shapely.within(geoms, footprint)
    out = np.zeros(len(gdf))
    crossing = np.flatnonzero(~inside)
    if crossing.size:
        beyond = gpd.GeoDataFrame(geometry=shapely.difference(geoms[crossing], footprint), crs=gdf.crs)
        empty = beyond.geometry.is_empty.to_numpy()
        areas = np.zeros(len(crossing))
        if (~empty).any():
            areas[~empty] = geodesic_areas_km2(beyond[~empty].reset_index(drop=True))
        out[crossing] = areas
    return out


def _centres_inside(geom: Any, grid: Grid, *, block: int = 4096) -> int:
    """How many pixel centres of ``grid`` fall inside ``geom`` (the pixel-centre rule, :func:`burn_window`), burned
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
            burned = burn_window([geom], [1], tuple(grid.window_transform(rows.start, cols.start))[:6],
                                 (rows.stop - rows.start, cols.stop - cols.start), dtype=np.uint8)
            found += int(burned.sum(dtype=np.int64))
    return found


def _polygonal(geoms: np.ndarray) -> np.ndarray:
    """Only the polygonal parts of each geometry. Two counties sharing a border intersect in lines
    and points (and, after reprojection, in collections of them with slivers); GDAL burns every
    pixel a line touches, so the line parts must not reach the pixel count."""
    out = np.empty(len(geoms), dtype=object)
    for k, geom in enumerate(geoms):
        parts = [p for p in shapely.get_parts(geom) if shapely.get_type_id(p) in (3, 6)]  # Polygon, MultiPolygon
        flat = [q for p in parts for q in shapely.get_parts(p)]
        out[k] = shapely.multipolygons(flat) if flat else shapely.Polygon()
    return out


def _check_overlaps(gdf: gpd.GeoDataFrame, *, id_field: str, grid: Grid, path: str, coverage: str = "centre") -> None:
    """Refuse polygons that overlap where a pixel centre lies: that pixel would belong to two
    counties. Only the polygonal part of an intersection counts: shared borders (lines and points)
    and overlaps holding no pixel centre (digitising slivers along shared borders) pass."""
    geoms = gdf.geometry.to_numpy()
    left, right = gdf.sindex.query(geoms, predicate="intersects")
    pairs = left < right
    left, right = left[pairs], right[pairs]
    # Only pairs whose interiors meet can share area (neighbours sharing a border meet on it
    # alone): the DE-9IM test is a third of the cost of intersecting every neighbour pair
    # (0.03 vs 0.09 s for 3,000 counties), and most pairs never get intersected.
    inner = shapely.relate_pattern(geoms[left], geoms[right], "T********")
    left, right = left[inner], right[inner]
    if left.size == 0:
        return
    shared = shapely.intersection(geoms[left], geoms[right])
    # Lines and points have no area, so an intersection without area has no polygonal part: only
    # those with area are taken apart (most neighbours only share a border; 0.5 s of 3,000 counties).
    has_area = shapely.area(shared) > 0
    shared[has_area] = _polygonal(shared[has_area])
    pixels = np.zeros(left.size, dtype=np.float64)
    if coverage == "fraction":
        # Fractions share each pixel by area, so any overlap with area counts, in pixels of area,
        # above a tolerance that lets digitising slivers along shared borders pass.
        xres, yres = grid.resolution
        overlap = shapely.area(shared) / (xres * yres)
        smaller = np.minimum(shapely.area(geoms[left]), shapely.area(geoms[right])) / (xres * yres)
        refused = ((overlap > OVERLAP_TOLERANCE_PX) & (overlap > OVERLAP_TOLERANCE_SHARE * smaller)) | (overlap > OVERLAP_REFUSED_SHARE * smaller)
        pixels[refused] = overlap[refused]
        unit = "pixels of area"
    else:
        for k in np.flatnonzero(has_area):
            pixels[k] = _centres_inside(shared[k], grid)
        unit = "pixels"
    bad = np.flatnonzero(pixels)
    if bad.size:
        if coverage == "fraction":
            share = pixels / np.where(smaller > 0, smaller, 1.0)
            names = [f"{gdf[id_field].iloc[left[k]]!s} and {gdf[id_field].iloc[right[k]]!s} ({pixels[k]:,.4g} {unit}, "
                     f"{100 * share[k]:.3g} % of the smaller)" for k in bad[:5]]
        else:
            names = [f"{gdf[id_field].iloc[left[k]]!s} and {gdf[id_field].iloc[right[k]]!s} ({pixels[k]:,.4g} {unit})" for k in bad[:5]]
        raise ZoneError(
            f"{path}: polygons overlap, so "
            + ("their shared area would be counted in both counties" if coverage == "fraction" else "some pixels would belong to two counties")
            + f": {'; '.join(names)}"
            f"{f' and {bad.size - 5} more pair(s)' if bad.size > 5 else ''}. Fix the boundaries: cut a county drawn on top of "
            "another out of it (QGIS Vector ▸ Geoprocessing ▸ Difference), or remove digitising slivers (QGIS Processing "
            "'Snap geometries to layer', or GRASS v.clean with tool=rmarea)"
        )


def _burn_chunk(wkbs: tuple[bytes, ...], ids: tuple[int, ...], transform: tuple[float, ...], shape: tuple[int, int], dtype: str) -> np.ndarray:
    """One chunk's id raster from its clipped polygons (WKB, :func:`_chunk_tasks`): :func:`burn_window`."""
    if not wkbs:
        return np.zeros(shape, dtype=dtype)
    return burn_window(shapely.from_wkb(list(wkbs)), ids, transform, shape, dtype=dtype, clip=False)


def burn_window(geoms: Any, ids: Any, transform: tuple[float, ...], shape: tuple[int, int], *, dtype: Any = np.uint32,
                clip: bool = True) -> np.ndarray:
    """The ids of polygons on one window of a grid, by the pixel-centre rule: a pixel takes the id
    of the polygon holding its centre, 0 where none does, a later polygon winning where they
    overlap.

    Scanline spans (:func:`carbonscape.kernels.spans.burn_rings`, whose docstring gives the rule
    and its ties): GDAL's rasterize rule, which the tests hold it to, at a fraction of its cost
    (benchmarks/README.md). ``geoms`` are shapely polygons or multipolygons in the grid's CRS
    (lines and points have no area and burn nothing); ``transform`` the window's affine
    ``(a, b, c, d, e, f)``; ``shape`` ``(rows, cols)``. With ``clip`` they are first clipped to
    the window with a one-pixel margin (as :func:`_chunk_tasks` clips them), which changes no
    pixel but bounds the work by the window. Returns a ``shape`` array of ``dtype``.
    """
    from carbonscape.kernels.spans import burn_rings

    out = np.zeros(shape, dtype=dtype)
    geoms = np.asarray(geoms, dtype=object)
    if not len(geoms):
        return out
    if clip:
        a, _, c, _, e, f = transform[:6]
        x0, x1 = sorted((c - a, c + (shape[1] + 1) * a))
        y0, y1 = sorted((f - e, f + (shape[0] + 1) * e))
        geoms = shapely.clip_by_rect(geoms, x0, y0, x1, y1)
    # Even-odd filling needs no winding: the rings as they are (no orientation pass).
    rings = window_rings(geoms, np.asarray(ids, dtype=np.int64), transform, orient=False)
    burn_rings(rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties, out)
    return out


BOUNDARY_DTYPE = np.dtype([("pixel", "<i8"), ("county", "<u4"), ("fraction", "<f8")])


def _pixel_rings(geom: Any, transform: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every ring of a (multi)polygon in window pixel units, closed, concatenated with offsets."""
    a, _, c, _, e, f = transform[:6]
    rings: list[np.ndarray] = []
    for part in shapely.get_parts(geom):
        if shapely.get_type_id(part) != 3:  # clipping can leave lines and points: no area
            continue
        rings.append(shapely.get_coordinates(part.exterior))
        rings.extend(shapely.get_coordinates(hole) for hole in part.interiors)
    if not rings:
        return np.zeros(0), np.zeros(0), np.zeros(1, dtype=np.int64)
    coords = np.concatenate(rings)
    starts = np.concatenate([[0], np.cumsum([len(r) for r in rings])]).astype(np.int64)
    return (coords[:, 0] - c) / a, (coords[:, 1] - f) / e, starts


def chunk_fractions(geoms: Any, ids: Any, transform: tuple[float, ...], shape: tuple[int, int]) -> np.ndarray:
    """Exact covered fractions of the pixels of one window that county boundaries cross.

    Returns a :data:`BOUNDARY_DTYPE` array sorted by pixel (``row * width + col`` of the window),
    one entry per (pixel, covering county); every other pixel is wholly inside one county or
    outside all of them, as the pixel-centre id raster says (kernel:
    :func:`carbonscape.kernels.fraction.polygon_fractions`).
    """
    from carbonscape.kernels.fraction import polygon_fractions

    height, width = shape
    parts = []
    # Signed-area accumulation needs shells wound one way and holes the other; clipping a polygon
    # to a chunk (clip_by_rect) does not keep the winding of the parts it makes, so orient here.
    geoms = shapely.orient_polygons(np.asarray(geoms, dtype=object))
    for geom, county in zip(geoms, ids):
        xs, ys, starts = _pixel_rings(geom, transform)
        if len(xs) == 0:
            continue
        pixels, fractions = polygon_fractions(xs, ys, starts, width, height)
        entry = np.empty(len(pixels), dtype=BOUNDARY_DTYPE)
        entry["pixel"], entry["county"], entry["fraction"] = pixels, county, fractions
        parts.append(entry)
    if not parts:
        return np.empty(0, dtype=BOUNDARY_DTYPE)
    table = np.concatenate(parts)
    return table[np.argsort(table["pixel"], kind="stable")]


def zone_dtype(n: int) -> np.dtype:
    """The smallest unsigned dtype that holds ids 0..n."""
    for candidate in (np.uint8, np.uint16, np.uint32):
        if n <= np.iinfo(candidate).max:
            return np.dtype(candidate)
    raise ZoneError(f"{n:,} zones are more than carbonscape supports")


def _chunk_tasks(gdf: gpd.GeoDataFrame, grid: Grid, *, ids: np.ndarray) -> dict[tuple[int, int], tuple[Any, ...]]:
    """Per chunk: the polygons touching it, clipped to it with a one-pixel margin (WKB), their ids,
    the chunk's transform and shape. Clipping bounds each task's payload to the chunk, whatever
    the polygons' detail."""
    geoms = gdf.geometry.to_numpy()
    tree = shapely.STRtree(geoms)
    xres, yres = grid.resolution
    tasks = {}
    for (i, j), (rows, cols) in grid.chunk_windows():
        left, bottom, right, top = grid.window_bounds(rows, cols)
        hits = np.sort(tree.query(shapely.box(left, bottom, right, top)))
        clipped = shapely.clip_by_rect(geoms[hits], left - xres, bottom - yres, right + xres, top + yres)
        keep = ~shapely.is_empty(clipped)
        tasks[(i, j)] = (
            tuple(shapely.to_wkb(clipped[keep])), tuple(int(v) for v in ids[hits][keep]),
            tuple(grid.window_transform(rows.start, cols.start))[:6], (rows.stop - rows.start, cols.stop - cols.start),
        )
    return tasks


def zones_array(gdf: gpd.GeoDataFrame, grid: Grid, *, ids: np.ndarray) -> da.Array:
    """Lazy zone-id raster of ``gdf`` (already in the grid's CRS) on ``grid``."""
    return zones_and_rings(gdf, grid, ids=ids)[0]


def zones_and_rings(gdf: gpd.GeoDataFrame, grid: Grid, *, ids: np.ndarray) -> tuple[da.Array, da.Array]:
    """:func:`zones_array` and its fraction-mode companion of the same chunking: a lazy array whose
    block ``(i, j)`` is not pixels but chunk ``(i, j)``'s :class:`ChunkRings` (:func:`_rings_chunk`),
    made from the same clipped polygons as the ids: what a fraction-mode store keeps in
    ``boundary/``. Only the accumulation runner reads it, inside the task of its chunk; computing
    it as an array is meaningless."""
    dtype = zone_dtype(int(ids.max()) if len(ids) else 0)
    token = uuid.uuid4().hex
    name, rings_name = "zones-" + token, "county-rings-" + token
    layer: dict[Any, Any] = {}
    rings_layer: dict[Any, Any] = {}
    for (i, j), (wkbs, chunk_ids, transform, shape) in _chunk_tasks(gdf, grid, ids=ids).items():
        layer[(name, i, j)] = (_burn_chunk, wkbs, chunk_ids, transform, shape, dtype.str)
        rings_layer[(rings_name, i, j)] = (_rings_chunk, wkbs, chunk_ids, transform)
    zones = da.Array(HighLevelGraph.from_collections(name, layer, dependencies=()), name, grid.dask_chunks, dtype=dtype)
    rings = da.Array(HighLevelGraph.from_collections(rings_name, rings_layer, dependencies=()), rings_name, grid.dask_chunks, dtype=object)
    return zones, rings


def _rings_chunk(wkbs: tuple[bytes, ...], ids: tuple[int, ...], transform: tuple[float, ...]) -> ChunkRings:
    """One chunk's :class:`ChunkRings` from its clipped polygons (WKB: the coordinates exactly as
    clipped: the rings :func:`chunk_rings` writes into a store are made here too)."""
    if not wkbs:
        return ChunkRings.empty()
    return window_rings(shapely.from_wkb(list(wkbs)), np.asarray(ids, dtype=np.int64), transform)


BOUNDARY_FOLDER = "boundary"
# The name fraction-mode county rings go by, as an attribute of lazy_zones' counties and as the
# raster the accumulation pass reads them from (one ChunkRings per chunk).
COUNTY_RINGS = "county_rings"


def boundary_file(store: str | os.PathLike[str], location: tuple[int, int]) -> Path:
    """Where a fraction-mode county store keeps chunk ``(i, j)``'s boundary table."""
    return Path(store) / BOUNDARY_FOLDER / f"{location[0]}.{location[1]}.npy"


RINGS_SUFFIX = ".rings.npz"


def rings_file(store: str | os.PathLike[str], location: tuple[int, int]) -> Path | str:
    """Where a fraction-mode county store (a local folder or an ``s3://`` URL) keeps chunk
    ``(i, j)``'s clipped county rings."""
    name = f"{location[0]}.{location[1]}{RINGS_SUFFIX}"
    if remote.is_url(store):
        return remote.join(str(store), BOUNDARY_FOLDER, name)
    return Path(store) / BOUNDARY_FOLDER / name


@dataclass(frozen=True)
class ChunkRings:
    """The county polygons touching one chunk, clipped to it (one-pixel margin), as rings in the
    chunk's pixel units (``x = column``, ``y = row``), shells and holes wound opposite ways:
    polygon ``k`` (county ``counties[k]``) owns rings ``polygon_starts[k] .. polygon_starts[k+1]-1``,
    ring ``m`` is ``xs/ys[ring_starts[m] : ring_starts[m+1]]`` (closed)."""

    xs: np.ndarray
    ys: np.ndarray
    ring_starts: np.ndarray
    polygon_starts: np.ndarray
    counties: np.ndarray

    @classmethod
    def empty(cls) -> ChunkRings:
        return cls(np.zeros(0), np.zeros(0), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def save(self, path: Path | str) -> None:
        """Write to a local file or an object-storage URL."""
        arrays = {"xs": self.xs, "ys": self.ys, "ring_starts": self.ring_starts, "polygon_starts": self.polygon_starts, "counties": self.counties}
        if isinstance(path, str) and remote.is_url(path):
            buffer = io.BytesIO()
            np.savez(buffer, **arrays)
            remote.put_bytes(path, buffer.getvalue())
            return
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | io.BytesIO) -> ChunkRings:
        with np.load(path, allow_pickle=False) as f:
            return cls(f["xs"], f["ys"], f["ring_starts"], f["polygon_starts"], f["counties"])


def window_rings(geoms: np.ndarray, counties: np.ndarray, transform: tuple[float, ...], *, orient: bool = True) -> ChunkRings:
    """:class:`ChunkRings` of (already clipped) geometries, without a Python loop per polygon:
    lines and points that clipping leaves have no area and are dropped; a county's parts stay one
    polygon. Signed-area accumulation needs shells wound one way and holes the other; clipping
    (``clip_by_rect``) does not keep the winding of the parts it makes, so they are oriented here
    (``orient=False`` keeps the winding as it is: the id burn's even-odd fill needs none)."""
    a, _, c, _, e, f = transform[:6]
    geoms = np.asarray(geoms, dtype=object)
    if orient:
        geoms = shapely.orient_polygons(geoms)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    inner, owner2 = shapely.get_parts(parts, return_index=True)  # collections of multipolygons: two levels
    owner = owner[owner2]
    polygon = shapely.get_type_id(inner) == 3
    inner, owner = inner[polygon], owner[polygon]
    if not len(inner):
        return ChunkRings.empty()
    rings, ring_part = shapely.get_rings(inner, return_index=True)
    ring_owner = owner[ring_part]  # increasing: parts come in geometry order, rings in part order
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    ring_starts = np.searchsorted(ring_of, np.arange(len(rings) + 1)).astype(np.int64)
    used = np.unique(ring_owner)
    polygon_starts = np.searchsorted(ring_owner, np.append(used, len(geoms))).astype(np.int64)
    return ChunkRings(
        xs=(coords[:, 0] - c) / a, ys=(coords[:, 1] - f) / e, ring_starts=ring_starts, polygon_starts=polygon_starts,
        counties=np.asarray(counties, dtype=np.int64)[used],
    )


def chunk_rings(gdf: gpd.GeoDataFrame, grid: Grid, *, ids: np.ndarray) -> dict[tuple[int, int], ChunkRings]:
    """Per chunk, the polygons touching it clipped to it with a one-pixel margin (the clipping
    :func:`_chunk_tasks` does for the id burn), as :class:`ChunkRings`."""
    return {location: _rings_chunk(wkbs, chunk_ids, transform)
            for location, (wkbs, chunk_ids, transform, _) in _chunk_tasks(gdf, grid, ids=ids).items()}


def read_rings(store: str | os.PathLike[str], location: tuple[int, int]) -> ChunkRings | None:
    """Chunk ``(i, j)``'s :class:`ChunkRings` of a fraction-mode county store, or None for a
    store written before rings were kept (it has boundary tables instead)."""
    path = rings_file(store, location)
    if isinstance(path, str):
        payload = remote.read_bytes(path)
        return None if payload is None else ChunkRings.load(io.BytesIO(payload))
    return ChunkRings.load(path) if path.exists() else None


def read_boundary(store: str | os.PathLike[str], location: tuple[int, int], shape: tuple[int, int] | None = None) -> np.ndarray:
    """Chunk ``(i, j)``'s :data:`BOUNDARY_DTYPE` table of a fraction-mode county store: computed
    from its rings (``shape``, the chunk's, needed then), or read from an older store's table."""
    rings = read_rings(store, location)
    if rings is None:
        return np.load(boundary_file(store, location), allow_pickle=False)
    from carbonscape.kernels.fraction import ring_fractions

    if shape is None:
        raise ValueError("the chunk's shape is needed to compute its boundary fractions")
    pixels, counties, fractions = ring_fractions(rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties, shape[1], shape[0])
    table = np.empty(len(pixels), dtype=BOUNDARY_DTYPE)
    table["pixel"], table["county"], table["fraction"] = pixels, counties, fractions
    return table


def read_boundary_window(store: str | os.PathLike[str], rows: slice, cols: slice) -> np.ndarray:
    """Every boundary entry of a fraction-mode county store inside a window, as a record array of
    ``row, col`` (window-relative), ``county`` and ``fraction`` (the plain reference's view: it
    gathers the per-chunk tables whatever the chunking)."""
    store_obj = open_store(store, variable=ZONES_VARIABLE)
    grid = store_obj.grid
    out = []
    for (i, j), (r, c) in grid.chunk_windows():
        if r.stop <= rows.start or r.start >= rows.stop or c.stop <= cols.start or c.start >= cols.stop:
            continue
        table = read_boundary(store, (i, j), (r.stop - r.start, c.stop - c.start))
        width = c.stop - c.start
        row = table["pixel"] // width + r.start
        col = table["pixel"] % width + c.start
        keep = (row >= rows.start) & (row < rows.stop) & (col >= cols.start) & (col < cols.stop)
        part = np.empty(int(keep.sum()), dtype=[("row", "<i8"), ("col", "<i8"), ("county", "<u4"), ("fraction", "<f8")])
        part["row"], part["col"] = row[keep] - rows.start, col[keep] - cols.start
        part["county"], part["fraction"] = table["county"][keep], table["fraction"][keep]
        out.append(part)
    if not out:
        return np.empty(0, dtype=[("row", "<i8"), ("col", "<i8"), ("county", "<u4"), ("fraction", "<f8")])
    return np.concatenate(out)


def _write_rings(gdf: gpd.GeoDataFrame, grid: Grid, *, ids: np.ndarray, folder: Path | str) -> int:
    """Write every chunk's clipped county rings into ``folder`` (a local folder or a URL; a few
    kB a chunk: no pass over the pixels; the supply pass computes the covered fractions from
    them); the number of polygon parts written."""
    if isinstance(folder, Path):
        folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for location, rings in chunk_rings(gdf, grid, ids=ids).items():
        rings.save(remote.join(folder, f"{location[0]}.{location[1]}{RINGS_SUFFIX}"))
        written += len(rings.counties)
    return written


def lazy_zones(
    vector: str | os.PathLike[str],
    *,
    like: str | os.PathLike[str] | Any,
    id_field: str,
    layer: str | None = None,
    encoding: str | None = None,
    coverage: str = "centre",
) -> RasterStore:
    """County polygons read, checked and measured as :func:`rasterize_zones` does, with their ids
    burned chunk by chunk only when the lazy array is computed: no zone store is written.

    ``like`` is the land-use store (path or opened :class:`~carbonscape.io.RasterStore`). Returns a
    :class:`~carbonscape.io.RasterStore` whose ``path`` is the vector file, ``data`` the lazy
    zone-id raster (:func:`zones_array`) and ``attrs`` holds ``zone_table`` and ``coverage`` as a
    stored zone store's do (plus ``polygons`` in the grid's CRS and their ``ids``), so
    :func:`open_zones` and :func:`carbonscape.supply` take it where they take a store path:
    `run` counts each chunk's counties in the same task that reads its land use.
    ``attrs["county_rings"]`` (:data:`COUNTY_RINGS`) is the lazy per-chunk :class:`ChunkRings`
    (:func:`zones_and_rings`), clipped in that same task: supply counts along their spans with no
    id raster (:data:`carbonscape.accumulate.library.SPAN_COUNTS`), and in fraction coverage
    shares the boundary pixels by them as it does from a fraction-mode store's rings.

    Raises
    ------
    ZoneError
        As :func:`rasterize_zones`: bad id field, CRS, no overlap with the raster, overlapping polygons.
    """
    vector_path = os.fspath(vector)
    if coverage not in COVERAGE_MODES:
        raise InputError(f"coverage must be one of {list(COVERAGE_MODES)}, not {coverage!r}")
    grid = (like if isinstance(like, RasterStore) else open_store(like)).grid
    gdf = read_polygons(vector_path, id_field=id_field, layer=layer, encoding=encoding)
    declared = gdf.crs.name
    source = gdf
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
            f"{vector_path}: no polygon overlaps the raster {like.path if isinstance(like, RasterStore) else like} (raster bounds {tuple(round(float(v), 3) for v in grid.bounds)} "
            f"in {grid.crs.name!r}; polygons' bounds {tuple(round(float(v), 3) for v in gdf.total_bounds)}). "
            "Check that both files cover the same region and that their CRSs are declared correctly"
        )
    if not inside.all():
        log.warning("%s: %d polygon(s) lie outside the raster and get no pixels: %s", vector_path, int((~inside).sum()), list(gdf.loc[~inside, id_field])[:10])
    _check_overlaps(gdf, id_field=id_field, grid=grid, path=vector_path, coverage=coverage)
    ids = np.arange(1, len(gdf) + 1)
    values = [v.item() if isinstance(v, np.generic) else v for v in gdf[id_field].tolist()]
    # Coverage needs each polygon's true area and the part of it the raster cannot see, measured on
    # the polygons as given (before reprojection to the grid).
    area_km2, outside_km2 = county_areas_km2(source, gdf, grid)
    table = ZoneTable(
        id_field=id_field, ids=tuple(int(i) for i in ids), values=tuple(values),
        area_km2=tuple(float(v) for v in area_km2), outside_km2=tuple(float(v) for v in outside_km2),
    )
    attrs: dict[str, Any] = {"carbonscape_kind": "zones", "zone_table": table.to_attrs(), "coverage": coverage, "polygons": gdf, "ids": ids}
    data, rings = zones_and_rings(gdf, grid, ids=ids)
    # The clipped county rings of each chunk, made in the supply pass's task of that chunk: the pass
    # counts along their spans (no id raster), and in fraction mode shares boundary pixels by them.
    attrs[COUNTY_RINGS] = rings
    return RasterStore(path=vector_path, grid=grid, data=data, nodata=None, attrs=attrs)


def rasterize_zones(
    vector: str | os.PathLike[str],
    *,
    like: str | os.PathLike[str],
    id_field: str,
    out: str | os.PathLike[str],
    layer: str | None = None,
    encoding: str | None = None,
    coverage: str = "centre",
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
    coverage
        ``"centre"`` (default; ArcGIS and InVEST parity): each pixel belongs wholly to the county
        holding its centre. ``"fraction"``: as well, every pixel a county boundary crosses is shared
        among the counties covering it by its exact covered fraction (exactextract's quantity),
        the supply pass computing those fractions from the county rings the store keeps per chunk
        (``boundary/``, :class:`ChunkRings`) beside the id raster.
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
    if coverage not in COVERAGE_MODES:
        raise InputError(f"coverage must be one of {list(COVERAGE_MODES)}, not {coverage!r}")
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
        "coverage": coverage,
        "format": 2,  # 2: the zone table records polygon and outside-the-raster areas
        **({"fractions": "rings"} if coverage == "fraction" else {}),  # boundary rings per chunk, not fraction tables
    }
    if not force and store_is_current(out_path, fingerprint, "carbonscape_source"):
        log.info("%s is up to date; nothing to do (use --force to rebuild)", out_path)
        return out_path
    counties = lazy_zones(vector_path, like=like, id_field=id_field, layer=layer, encoding=encoding, coverage=coverage)
    gdf, ids, table, data = counties.attrs["polygons"], counties.attrs["ids"], ZoneTable.from_attrs(counties.attrs["zone_table"]), counties.data
    attrs = {
        "carbonscape_source": fingerprint,
        "carbonscape_kind": "zones",
        "zone_table": table.to_attrs(),
        "landuse_store": os.path.basename(os.path.abspath(os.fspath(like))),
        "coverage": coverage,
    }
    ds = raster_dataset(data, grid, name=ZONES_VARIABLE, nodata=None, attrs=attrs)

    with using(run, scheduler) as active:

        def add_boundary(group: Any, _: Any) -> None:
            if coverage == "fraction":
                # A (member-less) zarr group, so that zarr sees the folder as part of the store.
                group.create_group(BOUNDARY_FOLDER, attributes={"carbonscape_kind": "boundary rings"})
                folder = remote.join(_group_location(group), BOUNDARY_FOLDER)
                group.attrs["boundary_polygons"] = _write_rings(gdf, grid, ids=ids, folder=folder)

        with warnings.catch_warnings():
            # zarr's metadata consolidation lists the boundary tables (.npy files) and warns that
            # they are not zarr nodes, which they are not meant to be.
            warnings.filterwarnings("ignore", message=".*not recognized as a component of a Zarr hierarchy")
            write_store(ds, out_path, grid=grid, run=active, progress=progress, label=f"zones: {len(gdf)} polygons → {out_path}", finalize=add_boundary)
    return out_path


def _group_location(group: Any) -> Path | str:
    """The folder (local store) or URL (zarr's FsspecStore) a zarr group is written to."""
    store = group.store
    if hasattr(store, "root"):
        return Path(str(store.root))
    protocol = store.fs.protocol
    protocol = protocol[0] if isinstance(protocol, (tuple, list)) else protocol
    return f"{protocol}://{store.path.strip('/')}"


def open_zones(path: str | os.PathLike[str] | RasterStore) -> tuple[Any, ZoneTable]:
    """Open a zone store: the :class:`~carbonscape.io.RasterStore` and its id table (counties
    burned on the fly, :func:`lazy_zones`, are passed through)."""
    store = path if isinstance(path, RasterStore) else open_store(path, variable=ZONES_VARIABLE)
    if "zone_table" not in store.attrs:
        raise ZoneError(f"{path}: not a zone store (no zone table); create it with `carbonscape zones`")
    return store, ZoneTable.from_attrs(store.attrs["zone_table"])
