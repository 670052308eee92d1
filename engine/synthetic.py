"""Synthetic regions of any size: clustered land-use classes and Voronoi counties.

For benchmarks, tests and trying carbonscape without data. Everything is generated window by
window from a seed, so a 10^9-pixel region is written in flat memory and is the same every time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from carbonscape.io import atomic_path
from rasterio.transform import from_origin

# Ten classes like the Central Yunnan study's, with plausible densities (t/ha): for synthetic runs only.
SYNTHETIC_POOLS = pd.DataFrame({
    "lucode": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    "LULC_name": ["cropland", "arbor forest", "shrub forest", "bamboo forest", "other forest", "grassland", "orchard", "water", "built-up", "unused"],
    "c_above": [5.0, 60.0, 20.0, 40.0, 30.0, 4.0, 20.0, 0.0, 2.0, 1.0],
    "c_below": [2.0, 15.0, 6.0, 10.0, 8.0, 3.0, 5.0, 0.0, 1.0, 0.5],
    "c_soil": [90.0, 140.0, 110.0, 120.0, 115.0, 95.0, 100.0, 0.0, 40.0, 30.0],
    "c_dead": [1.0, 8.0, 3.0, 5.0, 4.0, 1.0, 2.0, 0.0, 0.0, 0.0],
})
# Share of each class (same order), applied as quantiles of a smooth noise field.
_CLASS_SHARES = np.array([0.25, 0.36, 0.10, 0.005, 0.025, 0.08, 0.03, 0.02, 0.06, 0.07])
_CLASS_ORDER = np.array([9, 1, 7, 6, 10, 3, 5, 4, 2, 8])  # low noise → built-up … high → forest, water last
DEFAULT_CRS = "EPSG:32648"  # UTM zone 48N, metres (Yunnan)


@dataclass(frozen=True)
class Region:
    """Paths of a generated region."""

    landuse: Path
    counties: Path
    pools: Path
    id_field: str = "county"


def _coarse_field(rng: np.random.Generator, rows: int, cols: int, cell: int) -> np.ndarray:
    return rng.standard_normal((rows // cell + 3, cols // cell + 3))


def _interpolate(field: np.ndarray, cell: int, r0: int, r1: int, cols: int) -> np.ndarray:
    """Bilinear interpolation of a coarse field at pixel rows r0..r1, every column."""
    y = (np.arange(r0, r1) + 0.5) / cell
    x = (np.arange(cols) + 0.5) / cell
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - y0)[:, None].astype(np.float32), (x - x0)[None, :].astype(np.float32)
    f00 = field[np.ix_(y0, x0)]
    f01 = field[np.ix_(y0, x0 + 1)]
    f10 = field[np.ix_(y0 + 1, x0)]
    f11 = field[np.ix_(y0 + 1, x0 + 1)]
    top = f00 + (f01 - f00) * fx
    bottom = f10 + (f11 - f10) * fx
    return (top + (bottom - top) * fy).astype(np.float32)


def make_region(
    out_dir: str | os.PathLike[str],
    *,
    shape: tuple[int, int] = (2000, 2000),
    pixel_size: float = 30.0,
    n_counties: int = 50,
    seed: int = 0,
    crs: str = DEFAULT_CRS,
    nodata_fraction: float = 0.001,
) -> Region:
    """Write ``landuse.tif``, ``counties.gpkg`` and ``pools.csv`` for a synthetic region.

    Parameters
    ----------
    out_dir
        Folder to write into (created).
    shape
        Raster ``(rows, cols)``.
    pixel_size
        Pixel edge in metres.
    n_counties
        Number of Voronoi counties, clipped to an ellipse inside the raster so that some pixels
        lie outside every county.
    seed
        Random seed; the same seed gives the same region.
    crs
        A projected CRS in metres.
    nodata_fraction
        Share of pixels set to nodata (255), scattered.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows, cols = shape
    rng = np.random.default_rng(seed)
    left, top = 500_000.0, 2_800_000.0
    transform = from_origin(left, top, pixel_size, pixel_size)
    fields = [(_coarse_field(rng, rows, cols, cell), cell, weight) for cell, weight in ((max(rows, cols) // 4 or 1, 1.0), (256, 0.6), (32, 0.35), (6, 0.2))]
    # Class thresholds: quantiles of the summed field's (approximately normal) distribution.
    sigma = float(np.sqrt(sum(w * w for _, _, w in fields)))
    from statistics import NormalDist

    cumulative = np.cumsum(_CLASS_SHARES[_CLASS_ORDER - 1])[:-1]
    thresholds = np.array([NormalDist(0.0, sigma).inv_cdf(q) for q in cumulative], dtype=np.float32)
    landuse = out / "landuse.tif"
    profile = {
        "driver": "GTiff", "width": cols, "height": rows, "count": 1, "dtype": "uint8", "crs": crs,
        "transform": transform, "nodata": 255, "tiled": True, "blockxsize": 512, "blockysize": 512,
        "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }
    band_rows = 1024
    with atomic_path(landuse) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for r0 in range(0, rows, band_rows):
            r1 = min(rows, r0 + band_rows)
            value = np.zeros((r1 - r0, cols), dtype=np.float32)
            for field, cell, weight in fields:
                value += weight * _interpolate(field, cell, r0, r1, cols)
            classes = _CLASS_ORDER[np.searchsorted(thresholds, value)].astype(np.uint8)
            if nodata_fraction > 0:
                band_rng = np.random.default_rng([seed, r0])
                classes[band_rng.random(classes.shape) < nodata_fraction] = 255
            dst.write(classes, 1, window=rasterio.windows.Window(0, r0, cols, r1 - r0))
    width, height = cols * pixel_size, rows * pixel_size
    cx, cy = left + width / 2, top - height / 2
    ellipse = shapely.affinity.scale(shapely.Point(cx, cy).buffer(1.0, quad_segs=64), width * 0.48, height * 0.48)
    points = np.column_stack([
        rng.uniform(left + width * 0.03, left + width * 0.97, n_counties * 3),
        rng.uniform(top - height * 0.97, top - height * 0.03, n_counties * 3),
    ])
    points = points[shapely.contains_xy(ellipse, points[:, 0], points[:, 1])][:n_counties]
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=shapely.box(left, top - height, left + width, top)))
    cells = shapely.intersection(cells, ellipse)
    cells = cells[~shapely.is_empty(cells)]
    # voronoi_polygons does not keep the points' order; order counties north-west to south-east.
    centroids = shapely.centroid(cells)
    order = np.lexsort((shapely.get_x(centroids), -shapely.get_y(centroids)))
    cells = cells[order]
    gdf = gpd.GeoDataFrame(
        {"county": [f"C{i + 1:03d}" for i in range(len(cells))], "code": np.arange(1, len(cells) + 1)},
        geometry=cells, crs=crs,
    )
    counties = out / "counties.gpkg"
    with atomic_path(counties) as tmp:
        gdf.to_file(tmp, layer="counties", driver="GPKG", engine="pyogrio")
    pools = out / "pools.csv"
    with atomic_path(pools) as tmp:
        SYNTHETIC_POOLS.to_csv(tmp, index=False)
    return Region(landuse=landuse, counties=counties, pools=pools)
