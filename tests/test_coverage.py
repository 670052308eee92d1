"""Coverage per county (covered, nodata and outside-the-raster shares; min_coverage) and exact
partial pixels (fraction mode) against exactextract's coverage fractions."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from carbonscape import ingest, rasterize_zones, supply
from carbonscape.coverage import CoverageError
from carbonscape.rasterize import chunk_fractions, geodesic_areas_km2, outside_areas_km2, read_boundary_window
from conftest import assert_equals_exactextract, exactextract_oracle, geodesic_row_areas_m2, pixel_box, write_pools, write_tif, write_vector
from pyproj import Geod
from rasterio.transform import from_origin

POOLS = [(1, 100, 0, 0, 0), (2, 40, 0, 0, 0), (3, 0, 0, 0, 0)]
DENSITY = {1: 100.0, 2: 40.0, 3: 0.0}


def _codes(rows: int, cols: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).choice(np.array([1, 2, 3], dtype=np.uint8), size=(rows, cols))


def test_county_partly_beyond_the_raster_is_refused_naming_it_then_flagged_when_allowed(tmp):
    """Case 14's kind: C reaches 6 columns past the raster's east edge (60 % outside)."""
    codes = _codes(20, 24)
    lu = ingest(write_tif(tmp / "lu.tif", codes, nodata=255), tmp / "lu.zarr", chunk=16, scheduler="synchronous")
    vector = write_vector(tmp / "c.gpkg", [pixel_box(0, 0, 10, 20), pixel_box(10, 0, 20, 20), pixel_box(20, 0, 30, 20)], ["A", "B", "C"])
    zones = rasterize_zones(vector, like=lu, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    pools = write_pools(tmp / "p.csv", POOLS)
    with pytest.raises(CoverageError, match=r"C: covered 40\.0 % \(nodata 0\.0 %, outside the raster 60\.0 %\)") as refused:
        supply(lu, zones, pools, out=tmp / "out", scheduler="synchronous")
    assert "A:" not in str(refused.value) and "Extend the land-use raster" in str(refused.value)
    assert not (tmp / "out").exists() or not any((tmp / "out").iterdir())
    result = supply(lu, zones, pools, out=tmp / "out", scheduler="synchronous", min_coverage=0.3)
    county = result.by_county.set_index("county")
    assert county.loc["C", "covered_share"] == pytest.approx(0.4, rel=1e-6)
    assert county.loc["C", "outside_share"] == pytest.approx(0.6, rel=1e-6)
    assert county.loc["A", "covered_share"] == pytest.approx(1.0, rel=1e-6) and county.loc["A", "outside_share"] == 0.0
    assert county["low_coverage"].to_dict() == {"A": False, "B": False, "C": True}
    written = pd.read_csv(tmp / "out" / "supply_by_county.csv").set_index("county")
    assert written.loc["C", "low_coverage"] and written.loc["C", "outside_share"] == pytest.approx(0.6, rel=1e-6)


def test_nodata_inside_a_county_counts_against_its_coverage(tmp):
    codes = _codes(10, 10)
    codes[:, :5][_codes(10, 5, seed=4) != 3] = 255  # two thirds of West is nodata
    lu = ingest(write_tif(tmp / "lu.tif", codes, nodata=255), tmp / "lu.zarr", chunk=16, scheduler="synchronous")
    vector = write_vector(tmp / "c.gpkg", [pixel_box(0, 0, 5, 10), pixel_box(5, 0, 10, 10)], ["West", "East"])
    zones = rasterize_zones(vector, like=lu, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    with pytest.raises(CoverageError, match=r"West: covered .* \(nodata .*, outside the raster 0\.0 %\).*Fill the nodata pixels"):
        supply(lu, zones, write_pools(tmp / "p.csv", POOLS), scheduler="synchronous")


def test_outside_areas_are_geodesic_areas_of_the_part_beyond_the_raster():
    """Polygons in lon/lat over a UTM raster: the part beyond its east edge, against pyproj's
    geodesic area of the same part cut in UTM and densified."""
    from carbonscape import Grid

    grid = Grid.from_affine(crs="EPSG:32648", transform=from_origin(500_000, 2_800_000, 100, 100), shape=(100, 100))
    utm = [shapely.box(505_000, 2_791_000, 515_000, 2_799_000), shapely.box(501_000, 2_791_000, 504_000, 2_799_000)]
    gdf = gpd.GeoDataFrame({"county": ["edge", "inside"]}, geometry=utm, crs="EPSG:32648").to_crs("EPSG:4326")
    outside = outside_areas_km2(gdf, grid)
    assert outside[1] == 0.0
    beyond = gpd.GeoSeries([shapely.segmentize(shapely.box(510_000, 2_791_000, 515_000, 2_799_000), 50)], crs="EPSG:32648").to_crs("EPSG:4326")
    lon, lat = np.asarray(beyond.iloc[0].exterior.coords).T
    expected = abs(Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)[0]) / 1e6
    # The polygon's own edges are straight in lon/lat, the raster's in UTM: they differ by ~1e-6.
    assert outside[0] == pytest.approx(expected, rel=1e-5)
    assert outside[0] / geodesic_areas_km2(gdf)[0] == pytest.approx(0.5, rel=1e-4)


def test_a_county_inside_one_pixel_gets_its_area_in_fraction_mode_and_a_clear_refusal_in_centre_mode(tmp):
    codes = _codes(6, 6)
    lu = ingest(write_tif(tmp / "lu.tif", codes, nodata=255), tmp / "lu.zarr", chunk=16, scheduler="synchronous")
    # "tiny" covers 0.3 × 0.4 of pixel (2, 2), away from its centre; "big" is the rest of rows 0-5.
    tiny = pixel_box(2.05, 2.05, 2.35, 2.45)
    big = shapely.difference(pixel_box(0, 0, 6, 6), tiny)
    vector = write_vector(tmp / "c.gpkg", [big, tiny], ["big", "tiny"])
    pools = write_pools(tmp / "p.csv", POOLS)
    centre = rasterize_zones(vector, like=lu, id_field="county", out=tmp / "zc.zarr", scheduler="synchronous")
    with pytest.raises(CoverageError, match=r"tiny: covered 0\.0 %.*coverage = \"fraction\""):
        supply(lu, centre, pools, scheduler="synchronous")
    fraction = rasterize_zones(vector, like=lu, id_field="county", out=tmp / "zf.zarr", coverage="fraction", scheduler="synchronous")
    result = supply(lu, fraction, pools, scheduler="synchronous")
    county = result.by_county.set_index("county")
    code = int(codes[2, 2])
    ha = 0.3 * 0.4 * _HA
    assert county.loc["tiny", "supply_t"] == pytest.approx(DENSITY[code] * ha, rel=1e-7)
    assert county.loc["tiny", "covered_share"] == pytest.approx(1.0, rel=1e-6)
    total_centre_rule = sum(DENSITY[int(c)] for c in codes.ravel()) * _HA
    assert county["supply_t"].sum() == pytest.approx(total_centre_rule, rel=1e-9)
    pairs = result.by_county_class.set_index(["county", "lucode"])
    assert pairs.loc[("tiny", code), "pixels"] == 0 and pairs.loc[("tiny", code), "area_km2"] == pytest.approx(ha / 100, rel=1e-7)


# True ground area (ha) of a nominal 1 ha pixel near the fixture origin (UTM 48N on its central
# meridian, scale 0.9996).
_HA = 1.0  # within 0.1 % of ground area, nominal areas are used (engine/grid.py EQUAL_AREA_TOLERANCE)


def test_chunked_boundary_tables_equal_whole_window_fractions(tmp):
    """Fractions do not depend on the chunking: tables of 16-pixel chunks, gathered, equal one burn
    of the whole raster."""
    codes = _codes(30, 40)
    lu = ingest(write_tif(tmp / "lu.tif", codes, nodata=255), tmp / "lu.zarr", chunk=16, scheduler="synchronous")
    rng = np.random.default_rng(3)
    pts = shapely.points(rng.uniform(500_000, 504_000, 9), rng.uniform(2_797_000, 2_800_000, 9))
    frame = shapely.box(500_000, 2_797_000, 504_000, 2_800_000)
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=frame)), frame)
    cells = shapely.intersection(cells, shapely.Point(502_000, 2_798_500).buffer(1_700))
    vector = write_vector(tmp / "v.gpkg", list(cells), [f"c{i}" for i in range(len(cells))])
    store = rasterize_zones(vector, like=lu, id_field="county", out=tmp / "z.zarr", coverage="fraction", scheduler="threads")
    chunked = read_boundary_window(store, slice(0, 30), slice(0, 40))
    whole = chunk_fractions(shapely.orient_polygons(cells), list(range(1, len(cells) + 1)), tuple(from_origin(500_000, 2_800_000, 100, 100))[:6], (30, 40))
    # Whole pixels may be listed or not (chunk edges touch some): the id raster holds them anyway.
    got = pd.DataFrame({"pixel": chunked["row"] * 40 + chunked["col"], "county": chunked["county"], "f": chunked["fraction"]})
    want = pd.DataFrame({"pixel": whole["pixel"], "county": whole["county"], "f": whole["fraction"]})
    got, want = (t[t["f"] < 1 - 1e-9].sort_values(["pixel", "county"]) for t in (got, want))
    assert len(want) > 100
    np.testing.assert_array_equal(got[["pixel", "county"]].to_numpy(), want[["pixel", "county"]].to_numpy())
    np.testing.assert_allclose(got["f"].to_numpy(), want["f"].to_numpy(), atol=1e-12)


@pytest.fixture(scope="module")
def demo_region(tmp_path_factory):
    """Real county polygons (the demo's: 49 Central Yunnan counties, Albers equal-area) over the
    demo's land use at 2 km (classes synthetic, placed inside the real boundaries)."""
    from carbonscape.demo.generate import generate_landuse

    base = tmp_path_factory.mktemp("demo_region")
    tif = generate_landuse(base / "landuse.tif", resolution_m=2000.0)
    return base, tif


def _run_fraction(base, tif, counties_path, pools):
    lu = ingest(tif, base / "lu.zarr", chunk=64, scheduler="synchronous", force=True)
    zones = rasterize_zones(counties_path, like=lu, id_field="county", out=base / "z.zarr", coverage="fraction", scheduler="threads", force=True)
    return supply(lu, zones, pools, scheduler="threads", min_coverage=0)


def test_fraction_mode_equals_exactextract_on_an_equal_area_grid(demo_region, demo_counties):
    base, tif = demo_region
    counties = demo_counties
    counties.to_file(base / "counties.gpkg")
    pools = pd.read_csv(demo_paths_pools())
    density = dict(zip(pools["lucode"], pools[["c_above", "c_below", "c_soil", "c_dead"]].sum(axis=1)))
    result = _run_fraction(base, tif, base / "counties.gpkg", demo_paths_pools())
    with rasterio.open(tif) as src:
        pixel_m2 = abs(src.transform.a * src.transform.e)
    assert_equals_exactextract(result, *exactextract_oracle(tif, counties, lambda cells: np.full(len(cells), pixel_m2), density))


def test_fraction_mode_equals_exactextract_times_true_areas_on_a_lonlat_grid(demo_region, demo_counties):
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    base, tif = demo_region
    counties = demo_counties
    geo = base / "landuse_lonlat.tif"
    with rasterio.open(tif) as src:
        transform, width, height = calculate_default_transform(src.crs, "EPSG:4326", src.width, src.height, *src.bounds, resolution=0.02)
        profile = src.profile | {"crs": "EPSG:4326", "transform": transform, "width": width, "height": height}
        with rasterio.open(geo, "w", **profile) as dst:
            reproject(rasterio.band(src, 1), rasterio.band(dst, 1), resampling=Resampling.nearest)
    lonlat = counties.to_crs("EPSG:4326")  # as rasterize_zones reprojects them: vertex by vertex
    lonlat.to_file(base / "counties_lonlat.gpkg")
    pools = pd.read_csv(demo_paths_pools())
    density = dict(zip(pools["lucode"], pools[["c_above", "c_below", "c_soil", "c_dead"]].sum(axis=1)))
    result = _run_fraction(base, geo, base / "counties_lonlat.gpkg", demo_paths_pools())
    # The oracle's cell areas: each row's cell as a geodesic polygon with densified parallels.
    row_m2 = geodesic_row_areas_m2(geo)
    assert_equals_exactextract(result, *exactextract_oracle(geo, lonlat, lambda cells: row_m2[cells // width], density))

def demo_paths_pools():
    from carbonscape.demo import demo_paths

    return demo_paths()["pools"]


def test_county_whose_parts_and_hole_share_pixels_is_counted_once_per_pixel():
    """The supply kernel straight from the rings (no table of entries): a county of two parts and
    a hole that meet inside the same pixels, beside a second county and the outside. Every pixel's
    area goes to each county by its exact covered fraction (shapely's intersection areas, the plain
    reference), the rest outside (id 0), whichever county the pixel-centre rule gave it to. The
    top edge of part one runs inside pixel row 0: cells no other edge crosses are partial too."""
    from carbonscape.kernels.fraction import polygon_fractions_numpy, share_by_rings
    from carbonscape.rasterize import window_rings
    from rasterio.features import rasterize as burn

    transform = tuple(from_origin(0, 8, 1, 1))[:6]  # pixel units: x = column, y = 8 - row
    height = width = 8
    # County 1: two parts meeting in pixels of column 3, with a hole crossing pixel rows 5-6.
    one = shapely.MultiPolygon([
        shapely.box(0.2, 0.3, 3.45, 7.6).difference(shapely.box(1.3, 1.4, 2.7, 2.6)),
        shapely.box(3.55, 2.2, 5.1, 6.9),
    ])
    two = shapely.box(5.1, 0.5, 7.8, 7.9).union(shapely.box(3.45, 0.3, 5.1, 2.2))
    geoms = np.array([one, two], dtype=object)
    zones = burn(zip(geoms, [1, 2]), out_shape=(height, width), transform=transform, fill=0, dtype="uint8")
    codes = np.zeros((height, width), dtype=np.uint8)  # one class: column 0
    lut = np.zeros(256, dtype=np.int64)
    areas = np.linspace(1.0, 2.0, height)  # pixel areas varying by row
    table = np.zeros((3, 1))
    for r in range(height):
        for c in range(width):
            table[zones[r, c], 0] += areas[r]
    rings = window_rings(geoms, np.array([1, 2]), transform)
    assert list(rings.counties) == [1, 2] and len(rings.polygon_starts) == 3  # two parts and a hole: one polygon
    share_by_rings(table, zones, codes, lut, 0, 0, 255, 0, areas, np.zeros((1, 1)), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64),
                   0, 0, rings.xs, rings.ys, rings.ring_starts, rings.polygon_starts, rings.counties)
    want = [(polygon_fractions_numpy(g, transform, (height, width)) * areas[:, None]).sum() for g in geoms]
    np.testing.assert_allclose(table[1:, 0], want, rtol=1e-12)
    np.testing.assert_allclose(table[:, 0].sum(), areas.sum() * width, rtol=1e-12)


def test_a_county_store_with_boundary_tables_from_before_rings_gives_the_same_supply(tmp):
    """Stores written before the rings were kept hold per-chunk boundary tables instead; supply
    still reads them (the older kernel, correct_by_fractions), to the same totals."""
    from carbonscape.rasterize import boundary_file, open_zones, read_boundary, rings_file

    codes = _codes(30, 40)
    lu = ingest(write_tif(tmp / "lu.tif", codes, nodata=255), tmp / "lu.zarr", chunk=16, scheduler="synchronous")
    rng = np.random.default_rng(5)
    frame = shapely.box(500_000, 2_797_000, 504_000, 2_800_000)
    pts = shapely.points(rng.uniform(500_000, 504_000, 7), rng.uniform(2_797_000, 2_800_000, 7))
    cells = shapely.intersection(shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(pts), extend_to=frame)), frame)
    vector = write_vector(tmp / "v.gpkg", list(cells), [f"c{i}" for i in range(len(cells))])
    pools = write_pools(tmp / "p.csv", POOLS)
    store = rasterize_zones(vector, like=lu, id_field="county", out=tmp / "z.zarr", coverage="fraction", scheduler="synchronous")
    rings = supply(lu, store, pools, scheduler="synchronous").by_county_class.set_index(["county", "lucode"])["area_km2"]
    grid = open_zones(store)[0].grid
    for location, (r, c) in grid.chunk_windows():
        np.save(boundary_file(store, location), read_boundary(store, location, (r.stop - r.start, c.stop - c.start)), allow_pickle=False)
        rings_file(store, location).unlink()
    tables = supply(lu, store, pools, scheduler="synchronous").by_county_class.set_index(["county", "lucode"])["area_km2"]
    assert len(rings) > 10
    np.testing.assert_allclose(tables.reindex(rings.index), rings, rtol=1e-9)
    np.testing.assert_allclose(rings.groupby("county").sum().sum(), 30 * 40 * 0.01, rtol=1e-9)  # 1 ha pixels, every one shared out


def test_counties_missing_a_few_percent_above_min_coverage_are_named(caplog):
    """A county 4.5 % outside the raster passes min_coverage 0.9, and its density is over its
    whole polygon: a user found it 4.7 % low and unnamed. It is named now; boundary noise is not."""
    import logging

    from carbonscape.coverage import warn_partial

    frame = pd.DataFrame({
        "county": ["C008", "C002", "C005"], "polygon_area_km2": [666.6, 400.0, 300.0],
        "covered_share": [0.954, 0.997, 0.5], "nodata_share": [0.001, 0.001, 0.0], "outside_share": [0.045, 0.002, 0.5],
    })
    with caplog.at_level(logging.WARNING, logger="carbonscape.coverage"):
        assert warn_partial(frame, min_coverage=0.9) == ["C008"]
    assert "C008: covered 95.4 % (nodata 0.1 %, outside the raster 4.5 %)" in caplog.text and "C002" not in caplog.text
    assert warn_partial(frame, min_coverage=0.4) == ["C008", "C005"]
