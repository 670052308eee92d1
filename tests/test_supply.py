import exactextract  # oracles: imported plainly, so a missing one fails rather than skips
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterstats
import shapely
from carbonscape import AlignmentError, PoolTableError, ingest, rasterize_zones, read_pools, supply
from carbonscape.synthetic import make_region
from conftest import pixel_box, write_pools, write_tif, write_vector
from pyproj import Geod
from rasterio.transform import from_origin

# 5×5 land use (100 m pixels = 1 ha); 9 is nodata.
CODES = np.array([
    [1, 1, 2, 2, 3],
    [1, 1, 2, 2, 3],
    [1, 9, 2, 3, 3],
    [4, 4, 4, 3, 3],
    [4, 4, 4, 9, 3],
], dtype=np.uint8)
# total densities: 1 → 10+2+30+1 = 43, 2 → 100, 3 → 0, 4 → 5.5 t/ha
POOLS = [(1, 10, 2, 30, 1), (2, 60, 15, 20, 5), (3, 0, 0, 0, 0), (4, 1, 0.5, 4, 0)]


def _utm_pixel_ha() -> float:
    """True ground area (ha) of a nominal 1 ha pixel of the fixture grid (UTM 48N on its central
    meridian, scale 0.9996, so ~1/0.9996² ha), by pyproj: the pixel's outline, densified, as a
    geodesic polygon on WGS 84 (the grid varies by ~1e-9 over 500 m: one pixel stands for all)."""
    from pyproj import Transformer

    t = np.linspace(0, 100, 65)
    xs = np.concatenate([500_000 + t, np.full(65, 500_100.0), 500_100 - t, np.full(65, 500_000.0)])
    ys = np.concatenate([np.full(65, 2_799_900.0), 2_799_900 + t, np.full(65, 2_800_000.0), 2_800_000 - t])
    lon, lat = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True).transform(xs, ys)
    return abs(Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)[0]) / 1e4


# UTM inside its zone is within its design scale error (< 0.1 %) of ground area: carbonscape then
# uses nominal areas, as InVEST and ArcGIS do, so every hand-computed hectare below is exactly 1 ha.
HA = 1.0


@pytest.fixture
def five_by_five(tmp):
    lu = ingest(write_tif(tmp / "lu.tif", CODES, nodata=9), tmp / "lu.zarr", chunk=16, scheduler="synchronous")
    # West: columns 0-1 of rows 0-2; East: columns 2-4 of rows 0-2; South: rows 3-4 (all columns).
    vector = write_vector(tmp / "c.gpkg", [pixel_box(0, 0, 2, 3), pixel_box(2, 0, 5, 3), pixel_box(0, 3, 5, 5)], ["West", "East", "South"])
    zones = rasterize_zones(vector, like=lu, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    pools = write_pools(tmp / "pools.csv", POOLS, names=["crop", "forest", "water", "grass"])
    return lu, zones, pools


def test_hand_computed_5x5(tmp, five_by_five):
    lu, zones, pools = five_by_five
    # West is 1/6 nodata (covered 83 %, below the default min_coverage 0.9): accepted and flagged.
    result = supply(lu, zones, pools, out=tmp / "out", scheduler="synchronous", min_coverage=0.8)
    county = result.by_county.set_index("county")
    assert county["low_coverage"].to_dict() == {"West": True, "East": False, "South": False}
    assert county.loc["West", "nodata_share"] == pytest.approx(1 / 6) and county.loc["West", "covered_share"] == pytest.approx(5 / 6)
    # West: five 1s (one nodata) = 5 × 43; East: five 2s, four 3s = 500; South: six 4s, three 3s
    # (one nodata) = 33; each pixel HA hectares of ground (UTM's nominal 1 ha is 0.08 % short).
    assert _utm_pixel_ha() == pytest.approx(1 / 0.9996**2, rel=1e-6)  # 0.08 %: under the 0.1 % nominal-area tolerance
    assert county.loc["West", "supply_t"] == pytest.approx(215.0 * HA, rel=1e-7)
    assert county.loc["East", "supply_t"] == pytest.approx(500.0 * HA, rel=1e-7)
    assert county.loc["South", "supply_t"] == pytest.approx(33.0 * HA, rel=1e-7)
    assert county["pixels"].tolist() == [5, 9, 9]
    assert county.loc["West", "area_km2"] == pytest.approx(0.05 * HA, rel=1e-7)
    assert county["share_pct"].sum() == pytest.approx(100.0)
    klass = result.by_class.set_index("lucode")
    assert klass["supply_t"].tolist() == pytest.approx([215.0 * HA, 500.0 * HA, 0.0, 33.0 * HA], rel=1e-7)
    assert klass["pixels"].tolist() == [5, 5, 7, 6] and klass.loc[2, "name"] == "forest"
    assert klass.loc[4, "area_ha"] == pytest.approx(6.0 * HA, rel=1e-7)
    pool = result.by_pool.set_index("pool")["supply_t"]
    expected_pools = {"above": 5 * 10 + 5 * 60 + 6 * 1, "below": 10 + 75 + 3, "soil": 150 + 100 + 24, "dead": 5 + 25}
    assert pool.to_dict() == pytest.approx({k: v * HA for k, v in expected_pools.items()}, rel=1e-7)
    assert pool.sum() == pytest.approx(result.total_t)
    pairs = result.by_county_class.set_index(["county", "lucode"])
    assert pairs.loc[("South", 3), "pixels"] == 3 and pairs.loc[("East", 2), "supply_t"] == pytest.approx(500.0 * HA, rel=1e-7)
    assert pairs.loc[("East", 2), "area_km2"] == pytest.approx(0.05 * HA, rel=1e-7)
    assert result.summary["nodata_pixels_in_counties"] == 2
    assert result.summary["nodata_pixels_by_county"] == {"West": 1, "South": 1}
    written = pd.read_csv(tmp / "out" / "supply_by_county.csv")
    assert list(written.columns) == [
        "county", "supply_t", "share_pct", "pixels", "area_km2", "polygon_area_km2", "covered_share", "nodata_share", "outside_share", "low_coverage",
    ]
    assert list(pd.read_csv(tmp / "out" / "supply_by_class.csv").columns) == ["lucode", "name", "supply_t", "share_pct", "pixels", "area_ha"]
    assert list(pd.read_csv(tmp / "out" / "supply_by_county_class.csv").columns) == ["county", "lucode", "pixels", "area_km2", "supply_t"]


def test_pixel_maps_follow_invest_formula(tmp, five_by_five):
    lu, zones, pools = five_by_five
    supply(lu, zones, pools, out=tmp / "out", scheduler="synchronous", pixel_maps=True, min_coverage=0.8)
    density = {1: 43.0, 2: 100.0, 3: 0.0, 4: 5.5}
    expected = np.vectorize(lambda c: density.get(int(c), np.nan))(CODES).astype(np.float32)
    with rasterio.open(tmp / "out" / "carbon_t_per_ha.tif") as src:
        np.testing.assert_array_equal(src.read(1), expected)
        assert src.crs.to_epsg() == 32648
    import xarray as xr

    np.testing.assert_array_equal(xr.open_zarr(tmp / "out" / "carbon_t_per_ha.zarr")["carbon_t_per_ha"].values, expected)


def test_unknown_codes_are_listed(tmp, five_by_five):
    lu, zones, _ = five_by_five
    pools = write_pools(tmp / "short.csv", POOLS[:2])
    with pytest.raises(PoolTableError, match=r"missing from the pools table.*3 \(7 pixels\), 4 \(6 pixels\)"):
        supply(lu, zones, pools, scheduler="synchronous")


def test_unknown_codes_found_without_the_ingest_histogram(tmp, five_by_five):
    lu, zones, _ = five_by_five
    import zarr

    group = zarr.open_group(str(lu), mode="r+")
    del group.attrs["code_counts"]
    with pytest.raises(PoolTableError, match=r"3 \(7 pixels\)"):
        supply(lu, zones, write_pools(tmp / "short.csv", POOLS[:2]), scheduler="synchronous")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("lucode,c_above,c_below,c_soil\n1,1,1,1\n", r"missing column\(s\) \['c_dead'\]"),
        ("lucode,c_above,c_below,c_soil,c_dead\n1,1,-2,1,0\n", "pools.csv.*lucode 1: c_below = -2 is negative"),
        ("lucode,c_above,c_below,c_soil,c_dead\n1,abc,1,1,0\n", "lucode 1: c_above = 'abc' is not a number"),
        ("lucode,c_above,c_below,c_soil,c_dead\n1,1,1,1,0\n1,2,2,2,0\n", r"lucode \[1\] appears more than once"),
        ("lucode,c_above,c_below,c_soil,c_dead\n1.5,1,1,1,0\n", "lucode must be an integer"),
        ("", "pools.csv: the file is empty"),
    ],
)
def test_bad_pool_tables(tmp, rows, message):
    path = tmp / "pools.csv"
    path.write_text(rows)
    with pytest.raises(PoolTableError, match=message):
        read_pools(path)


def test_summary_with_nodata_is_written_beside_the_tables(tmp, five_by_five):
    import json

    lu, zones, pools = five_by_five
    result = supply(lu, zones, pools, out=tmp / "out", scheduler="synchronous", min_coverage=0.8)
    summary = json.loads((tmp / "out" / "supply_summary.json").read_text())
    assert summary["nodata_pixels_by_county"] == {"West": 1, "South": 1} and summary["pixels_in_counties"] == 23
    assert result.files["supply_summary"] == (tmp / "out" / "supply_summary.json").absolute()


def test_a_failed_run_leaves_no_output(tmp, five_by_five, monkeypatch):
    from carbonscape import carbon

    lu, zones, pools = five_by_five
    out = tmp / "out"

    def fail_after_the_pixel_maps(*args, **kwargs):
        raise RuntimeError("stopped while writing tables")

    monkeypatch.setattr(carbon.SupplyResult, "write", fail_after_the_pixel_maps)
    with pytest.raises(RuntimeError, match="stopped while writing"):
        supply(lu, zones, pools, out=out, scheduler="synchronous", pixel_maps=True, min_coverage=0.8)
    assert not out.exists()  # neither the pixel maps already written, nor a staging folder, nor the folder it made


def test_nodata_listed_in_the_pools_table_names_both_files(tmp, five_by_five):
    lu, zones, _ = five_by_five
    pools = write_pools(tmp / "with9.csv", [*POOLS, (9, 0, 0, 0, 0)])
    with pytest.raises(PoolTableError, match=r"with9.csv with .*lu.zarr: the raster's nodata value 9 is also a land-use code"):
        supply(lu, zones, pools, scheduler="synchronous")


def test_a_zone_store_is_not_taken_for_land_use(tmp, five_by_five):
    from carbonscape import InputError

    _, zones, pools = five_by_five
    with pytest.raises(InputError, match="z.zarr is a zones store, not land use"):
        supply(zones, zones, pools, scheduler="synchronous")


def test_missing_chunk_of_a_carbonscape_store_is_an_error(tmp, five_by_five):
    from carbonscape import InputError

    lu, zones, pools = five_by_five
    (lu / "landuse" / "c" / "0" / "0").unlink()
    with pytest.raises(InputError, match="a chunk of the store is missing"):
        supply(lu, zones, pools, scheduler="synchronous")


def test_relative_store_paths_are_made_absolute(tmp, five_by_five, monkeypatch):
    """Workers on a cluster run in their own folders: every path they get must be absolute."""
    lu, zones, pools = five_by_five
    from carbonscape import open_store

    monkeypatch.chdir(tmp)
    store = open_store("lu.zarr")
    assert store.path.is_absolute()
    paths = [task[1] for task in dict(store.data.__dask_graph__()).values() if isinstance(task, tuple) and len(task) > 1 and isinstance(task[1], str)]
    assert paths and all(path.startswith(str(tmp)) for path in paths)


def test_invest_column_names_are_case_insensitive(tmp):
    path = tmp / "pools.csv"
    path.write_text("LUCODE,LULC_Name,C_ABOVE,C_BELOW,C_SOIL,C_DEAD\n1,crop,1,2,3,4\n")
    table = read_pools(path)
    assert table.names == ["crop"] and table.total_density.tolist() == [10.0]


def test_zones_of_another_grid_are_refused(tmp, five_by_five):
    lu, _, pools = five_by_five
    other = ingest(write_tif(tmp / "o.tif", CODES, nodata=9, transform=from_origin(500_100, 2_800_000, 100, 100)), tmp / "o.zarr", chunk=16)
    vector = write_vector(tmp / "v.gpkg", [pixel_box(0, 0, 5, 5)], ["all"])
    zones = rasterize_zones(vector, like=other, id_field="county", out=tmp / "oz.zarr", scheduler="synchronous")
    with pytest.raises(AlignmentError, match="not on the grid"):
        supply(lu, zones, pools, scheduler="synchronous")


def test_geographic_grid_uses_true_ellipsoidal_areas(tmp):
    res = 0.001
    codes = np.array([[1, 2, 2], [1, 1, 2], [2, 2, 2], [1, 2, 1]], dtype=np.uint8)
    transform = from_origin(102.0, 25.0, res, res)
    lu = ingest(write_tif(tmp / "geo.tif", codes, transform=transform, crs="EPSG:4326"), tmp / "geo.zarr", chunk=16)
    vector = write_vector(tmp / "g.gpkg", [shapely.box(101.9, 24.9, 102.1, 25.1)], ["all"], crs="EPSG:4326")
    zones = rasterize_zones(vector, like=lu, id_field="county", out=tmp / "gz.zarr", scheduler="synchronous")
    pools = write_pools(tmp / "p.csv", [(1, 100, 0, 0, 0), (2, 10, 0, 0, 0)])
    result = supply(lu, zones, pools, scheduler="synchronous", min_coverage=0)  # the polygon is larger than the raster
    geod = Geod(ellps="WGS84")
    expected = 0.0
    for r in range(codes.shape[0]):
        north, south = 25.0 - r * res, 25.0 - (r + 1) * res
        area_m2 = abs(geod.polygon_area_perimeter([102, 102 + res, 102 + res, 102], [south, south, north, north])[0])
        expected += area_m2 / 1e4 * sum(100 if c == 1 else 10 for c in codes[r])
    assert result.by_county["supply_t"].iloc[0] == pytest.approx(expected, rel=1e-7)
    # ~1 ha pixels at 25°N: far from the 1-degree-square answer a naive lat/lon area would give.
    assert 1.10 < result.by_class["area_ha"].sum() / 12 < 1.13  # 111 m × 101 m at 25°N


def test_geographic_areas_follow_each_chunks_rows(tmp):
    """Many chunks down a tall lat/lon raster: each chunk must use the areas of its own rows."""
    res = 0.5
    rng = np.random.default_rng(5)
    codes = rng.integers(1, 3, size=(120, 7)).astype(np.uint8)  # 60° of latitude, 16-row chunks
    transform = from_origin(100.0, 60.0, res, res)
    lu = ingest(write_tif(tmp / "tall.tif", codes, transform=transform, crs="EPSG:4326"), tmp / "tall.zarr", chunk=16)
    zones = rasterize_zones(write_vector(tmp / "t.gpkg", [shapely.box(99, -1, 104, 61)], ["all"], crs="EPSG:4326"),
                            like=lu, id_field="county", out=tmp / "tz.zarr", scheduler="synchronous")
    result = supply(lu, zones, write_pools(tmp / "p.csv", [(1, 100, 0, 0, 0), (2, 10, 0, 0, 0)]), scheduler="threads", min_coverage=0)
    geod = Geod(ellps="WGS84")
    # A pixel is bounded by parallels, which are not geodesics: densify them for pyproj's polygon.
    along = np.linspace(100, 100 + res, 200)

    def pixel_area_ha(south: float, north: float) -> float:
        lons = np.concatenate([along, along[::-1]])
        lats = np.concatenate([np.full(along.size, south), np.full(along.size, north)])
        return abs(geod.polygon_area_perimeter(lons, lats)[0]) / 1e4

    row_area_ha = np.array([pixel_area_ha(60 - (r + 1) * res, 60 - r * res) for r in range(codes.shape[0])])
    expected = float((row_area_ha[:, None] * np.where(codes == 1, 100.0, 10.0)).sum())
    assert result.by_county["supply_t"].iloc[0] == pytest.approx(expected, rel=1e-7)
    class_area = result.by_class.set_index("lucode")["area_ha"]
    assert class_area[1] == pytest.approx(float((row_area_ha[:, None] * (codes == 1)).sum()), rel=1e-7)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    base = tmp_path_factory.mktemp("region")
    region = make_region(base / "in", shape=(420, 380), pixel_size=30, n_counties=12, seed=7)
    lu = ingest(region.landuse, base / "lu.zarr", chunk=128, scheduler="threads")
    zones = rasterize_zones(region.counties, like=lu, id_field="county", out=base / "z.zarr", scheduler="threads")
    result = supply(lu, zones, region.pools, out=base / "out", scheduler="threads", pixel_maps=True)
    return region, result, base


def test_counts_equal_rasterstats_centre_rule(generated):
    region, result, _ = generated
    stats = rasterstats.zonal_stats(str(region.counties), str(region.landuse), categorical=True, all_touched=False, nodata=255)
    import geopandas as gpd

    names = gpd.read_file(region.counties)["county"].tolist()
    pairs = result.by_county_class.set_index(["county", "lucode"])["pixels"]
    for name, counts in zip(names, stats):
        for code, n in counts.items():
            assert pairs.get((name, int(code)), 0) == n, (name, code)
        assert sum(counts.values()) == pairs.loc[name].sum()


def test_supply_close_to_exactextract_coverage_weighted(generated):
    region, result, base = generated
    import geopandas as gpd

    gdf = gpd.read_file(region.counties)
    frame = exactextract.exact_extract(str(base / "out" / "carbon_t_per_ha.tif"), gdf, ["sum", "count"], include_cols=["county"], output="pandas")
    exact = frame.set_index("county")["sum"] * 0.09  # t/ha × 0.09 ha per 30 m pixel
    ours = result.by_county.set_index("county")["supply_t"]
    # Only boundary pixels differ: within a few percent for counties of thousands of pixels.
    relative = (ours - exact.reindex(ours.index)).abs() / exact.reindex(ours.index)
    assert relative.max() < 0.03, relative.sort_values().tail()
    assert abs(ours.sum() / exact.sum() - 1) < 0.005
