"""Fraction mode on `run`'s FUSED path against exactextract × true cell areas, within 1e-6, on real
land cover under real county polygons.

`run` writes no county store: :func:`carbonscape.rasterize.lazy_zones` (``coverage="fraction"``)
clips the county rings to each chunk inside the supply pass, the counties are counted along
scanline spans (``kernels/spans.py``) and the boundary pixels shared by the rings with each
pixel's centre county read off those spans (``share_by_spans``, ``kernels/fraction.py``).
tests/test_coverage_real.py checks the stored path (``rasterize_zones`` → store → supply) on the
same data; this file checks the fused one, with chunks small enough that most counties are split
between several of them, and a county smaller than a pixel lying across a chunk border:

- a lon/lat grid: the MODIS MCD12C1 excerpt (0.05°, Clarke 1866, 90 × 90) in 16-pixel chunks under the
  demo's 49 counties; the oracle's cell areas are geodesic;
- an equal-area grid: the CORINE excerpt (25 m, EPSG:3035) in 256-pixel chunks under the demo's
  county shapes carried onto it, through the API and through `carbonscape run` with
  ``[counties] coverage = "fraction"`` (a LocalCluster; the study minimum chunk is 256).
"""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from carbonscape import ingest, supply
from carbonscape.cli.main import cli
from carbonscape.rasterize import COUNTY_RINGS, lazy_zones
from click.testing import CliRunner
from conftest import DEMAND_ZONING, IGBP_DENSITY, MODIS, assert_equals_exactextract, clc_counties, clc_path, density_pools, exactextract_oracle, geodesic_row_areas_m2
from pyproj import CRS


def with_tiny_county(counties: gpd.GeoDataFrame, transform, chunk: int) -> tuple[gpd.GeoDataFrame, shapely.Polygon]:
    """``counties`` (in the raster's CRS) and one more, "tiny": 0.4 × 0.3 of a pixel astride the
    column border of two chunks (0.2 of a pixel each side, rows away from the pixel centres, so
    it holds no centre), cut out of the county that held it."""
    geoms = counties.geometry.to_numpy()
    for chunk_col in range(chunk, 10 * chunk, chunk):
        for row in range(chunk // 2, 10 * chunk):
            corners = [transform * (chunk_col + dc, row + dr) for dc, dr in ((-0.2, 0.55), (0.2, 0.55), (0.2, 0.85), (-0.2, 0.85))]
            tiny = shapely.Polygon(corners)
            host = np.flatnonzero(shapely.contains(geoms, tiny.buffer(abs(transform.a) * 2)))
            if len(host):
                geoms = geoms.copy()
                geoms[host[0]] = shapely.difference(geoms[host[0]], tiny)
                frame = gpd.GeoDataFrame({"county": [*counties["county"], "tiny"]}, geometry=[*geoms, tiny], crs=counties.crs)
                return frame, tiny
    raise AssertionError("no county holds two pixels astride a chunk border")


def chunks_crossed(counties: gpd.GeoDataFrame, transform, chunk: int) -> np.ndarray:
    """How many chunks each county's bounding box reaches into."""
    inverse = ~transform
    out = []
    for x0, y0, x1, y1 in counties.geometry.bounds.to_numpy():
        (c0, r0), (c1, r1) = inverse * (x0, y1), inverse * (x1, y0)
        out.append((int(c1 // chunk) - int(c0 // chunk) + 1) * (int(r1 // chunk) - int(r0 // chunk) + 1))
    return np.array(out)


def fused_supply(tmp_path, tif, counties: gpd.GeoDataFrame, density, *, chunk: int):
    """`run`'s two calls: lazy_zones(coverage="fraction") and supply, with no county store."""
    counties.to_file(tmp_path / "counties.gpkg", engine="pyogrio")
    lu = ingest(tif, tmp_path / "lu.zarr", chunk=chunk, scheduler="threads")
    zones = lazy_zones(tmp_path / "counties.gpkg", like=lu, id_field="county", coverage="fraction")
    assert COUNTY_RINGS in zones.attrs and len(zones.data.chunks[0]) > 2 and len(zones.data.chunks[1]) > 2
    result = supply(lu, zones, density_pools(tmp_path / "pools.csv", density), scheduler="threads")
    assert sorted(p.name for p in tmp_path.glob("*.zarr")) == ["lu.zarr"]  # no county store
    assert result.summary["coverage"]["mode"] == "fraction"
    return result


def check_tiny(result, want_area: pd.Series, tiny: shapely.Polygon, cell_m2: float) -> None:
    """"tiny" holds no pixel centre yet gets its area, ~0.12 of a pixel, split over two chunks."""
    county = result.by_county.set_index("county").loc["tiny"]
    assert county["pixels"] == 0
    assert county["area_km2"] == pytest.approx(want_area.loc["tiny"].sum(), rel=1e-6)
    assert county["area_km2"] == pytest.approx(0.12 * cell_m2 / 1e6, rel=1e-3)


def test_fused_fraction_supply_on_modis_lonlat_equals_exactextract_times_geodesic_cell_areas(tmp_path, demo_counties):
    with rasterio.open(MODIS) as src:
        crs, transform, width = CRS.from_user_input(src.crs), src.transform, src.width
    counties, tiny = with_tiny_county(demo_counties.to_crs(crs), transform, 16)
    # 16-pixel chunks (ingest's smallest; 6 × 6 of them, the last 10 wide): 45 of the 50 counties
    # reach into 2 to 6 chunks.
    assert (chunks_crossed(counties, transform, 16) > 1).sum() >= 45
    result = fused_supply(tmp_path, MODIS, counties, IGBP_DENSITY, chunk=16)
    row_m2 = geodesic_row_areas_m2(MODIS)
    want_supply, want_area = exactextract_oracle(MODIS, counties, lambda cells: row_m2[cells // width], IGBP_DENSITY)
    assert_equals_exactextract(result, want_supply, want_area)
    tiny_row = int((~transform * (tiny.centroid.x, tiny.centroid.y))[1])
    check_tiny(result, want_area, tiny, row_m2[tiny_row])


@pytest.fixture(scope="module")
def corine(tmp_path_factory, demo_counties):
    """The CORINE excerpt, the demo's county shapes on it (and "tiny" astride a 256-pixel chunk
    border), a density for each class present, and exactextract's answer."""
    tif = clc_path()
    with rasterio.open(tif) as src:
        bounds, crs, transform, codes = tuple(src.bounds), src.crs, src.transform, np.unique(src.read(1))
    pixel_m2 = abs(transform.a * transform.e)
    density = {int(code): float(5 * code) for code in codes}
    counties, tiny = with_tiny_county(clc_counties(demo_counties, bounds, crs), transform, 256)
    assert (chunks_crossed(counties, transform, 256) > 1).sum() > 25
    want = exactextract_oracle(tif, counties, lambda cells: np.full(len(cells), pixel_m2), density)
    return tif, counties, tiny, pixel_m2, density, want


def test_fused_fraction_supply_on_corine_equal_area_equals_exactextract(tmp_path, corine):
    tif, counties, tiny, pixel_m2, density, (want_supply, want_area) = corine
    result = fused_supply(tmp_path, tif, counties, density, chunk=256)
    assert result.summary["areas"]["rule"] == "nominal"  # LAEA: nominal pixel areas are true areas
    assert_equals_exactextract(result, want_supply, want_area)
    check_tiny(result, want_area, tiny, pixel_m2)


def test_carbonscape_run_in_fraction_coverage_on_corine_equals_exactextract(tmp_path, corine):
    """The same through `carbonscape run` (a LocalCluster), its tables read from the CSVs it wrote."""
    tif, counties, tiny, pixel_m2, density, (want_supply, want_area) = corine
    counties.to_file(tmp_path / "counties.gpkg", engine="pyogrio")
    density_pools(tmp_path / "pools.csv", density)
    pd.DataFrame({"county": counties["county"], "population": np.arange(1, len(counties) + 1) * 1_000}).to_csv(tmp_path / "population.csv", index=False)
    (tmp_path / "study.toml").write_text(f"""
[study]
name = "Fused fraction on CORINE"

[landuse]
rasters = ["{tif.as_posix()}"]
chunk = 256

[counties]
path = "counties.gpkg"
id_field = "county"
coverage = "fraction"

[pools]
path = "pools.csv"
""" + DEMAND_ZONING + """
[outputs]
maps = false
report = false
""", encoding="utf-8")
    done = CliRunner().invoke(cli, ["run", str(tmp_path / "study.toml"), "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert not (tmp_path / "out" / "stores" / "zones.zarr").exists()  # the fused path: no county store

    class Written:  # the tables as `run` wrote them (10 significant digits)
        by_county = pd.read_csv(tmp_path / "out" / "supply_by_county.csv")
        by_county_class = pd.read_csv(tmp_path / "out" / "supply_by_county_class.csv")

    assert_equals_exactextract(Written, want_supply, want_area)
    check_tiny(Written, want_area, tiny, pixel_m2)
