"""Continuous rasters as inputs: ingest onto the land-use grid (nearest), sums per county in the
supply pass, population demand, NPP sequestration, corrected densities; hand-computed first."""

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from carbonscape import ingest, rasterize_zones, supply
from carbonscape.accumulate import ClassIndex, Layout, accumulate, accumulate_numpy
from carbonscape.continuous import (
    FACTOR_AREAS,
    ContinuousError,
    corrected_supply,
    factor_table,
    ingest_continuous,
    open_continuous,
    population_by_county,
    raster_minimum,
    read_source,
    region_coverage,
    sequestration_by_county,
    value_specs,
    values_by_county,
)
from carbonscape.grid import Grid
from carbonscape.rasterize import open_zones
from conftest import pixel_box, write_pools, write_tif, write_vector
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin

# 4×4 land use of 100 m pixels (1 ha, nominal: UTM inside its zone), code 9 nodata.
CODES = np.array([
    [1, 1, 2, 2],
    [1, 1, 2, 2],
    [1, 9, 2, 2],
    [1, 1, 2, 2],
], dtype=np.uint8)
POOLS = [(1, 10, 2, 30, 1), (2, 60, 15, 20, 5)]  # totals 43 and 100 t/ha
# People per 200 m pixel (4 land-use pixels each), on a grid twice as coarse, same origin.
PEOPLE = np.array([[40.0, 80.0], [120.0, 0.0]], dtype=np.float32)
COARSE = from_origin(500_000, 2_800_000, 200, 200)


@pytest.fixture
def region(tmp):
    lu = ingest(write_tif(tmp / "lu.tif", CODES, nodata=9), tmp / "lu.zarr", chunk=16, scheduler="synchronous")
    # West: columns 0-1; East: columns 2-3 (all rows).
    vector = write_vector(tmp / "c.gpkg", [pixel_box(0, 0, 2, 4), pixel_box(2, 0, 4, 4)], ["West", "East"])
    zones = rasterize_zones(vector, like=lu, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    pools = write_pools(tmp / "pools.csv", POOLS, names=["crop", "forest"])
    return lu, zones, pools, vector


def _pass(lu, zones, pools, **stores):
    """The supply pass with each store's statistics riding in it; values per county by name."""
    specs, rasters = [], {}
    for name, (path, is_factor) in stores.items():
        specs += value_specs(name, factor=is_factor)
        rasters[name] = open_continuous(path).data
    result = supply(lu, zones, pools, scheduler="synchronous", extra=specs, rasters=rasters, min_coverage=0.5)
    _, table = open_zones(zones)
    counts = result.tables["counts"]
    return result, {name: values_by_county(result.tables[f"values {name}"], zone_table=table, counts=counts).set_index("county")
                    for name in stores}, table


def test_population_on_a_coarser_grid_by_hand(tmp, region):
    lu, zones, pools, _ = region
    store = ingest_continuous(write_tif(tmp / "pop.tif", PEOPLE, transform=COARSE), tmp / "pop.zarr", like=lu, quantity="count",
                              scheduler="synchronous")
    held = open_continuous(store)
    assert held.grid.same_grid(open_zones(zones)[0].grid)
    assert held.attrs["continuous"]["resampling"] == "nearest" and held.attrs["continuous"]["source_grid"]["pixel_size"] == [200.0, 200.0]
    # Each 200 m pixel's people spread over its four 1 ha land-use pixels: 40 people → 10 per ha.
    values = np.asarray(held.data.compute(scheduler="synchronous")) * 10_000
    np.testing.assert_allclose(values, [[10, 10, 20, 20], [10, 10, 20, 20], [30, 30, 0, 0], [30, 30, 0, 0]], rtol=1e-7)  # float32 store
    result, by_name, _ = _pass(lu, zones, pools, population=(store, False))
    people = population_by_county(by_name["population"].reset_index())
    # West takes the left column of source pixels: 40 + 120 = 160 people; East 80 + 0 = 80.
    assert people.to_dict() == pytest.approx({"West": 160.0, "East": 80.0})
    # The same pass made the supply: West 7 ha of class 1 (one pixel nodata) × 43 t/ha.
    assert result.by_county.set_index("county").loc["West", "supply_t"] == pytest.approx(7 * 43)


def test_offset_grid_and_partial_cover_by_hand(tmp, region):
    lu, zones, pools, _ = region
    # A 200 m grid shifted 100 m right and down, 2×2 pixels: covers land-use rows 1-3 / columns 1-3
    # (its pixel (0, 0) holds land-use pixels (1..2, 1..2)); row 0 and column 0 are outside it.
    shifted = from_origin(500_100, 2_799_900, 200, 200)
    npp = np.array([[500.0, 600.0], [700.0, -9999.0]], dtype=np.float32)
    store = ingest_continuous(write_tif(tmp / "npp.tif", npp, transform=shifted, nodata=-9999.0), tmp / "npp.zarr", like=lu,
                              scheduler="synchronous")
    values = np.asarray(open_continuous(store).data.compute(scheduler="synchronous"), dtype=np.float64)
    nan = np.nan
    np.testing.assert_array_equal(values, [[nan, nan, nan, nan], [nan, 500, 500, 600], [nan, 500, 500, 600], [nan, 700, 700, nan]])
    _, by_name, _ = _pass(lu, zones, pools, npp=(store, False))
    west, east = by_name["npp"].loc["West"], by_name["npp"].loc["East"]
    # West: column 1, rows 1-3 → 500, 500 (nodata in land use still has an NPP value), 700.
    assert west["pixels"] == 3 and west["sum"] == pytest.approx(1700.0) and west["mean"] == pytest.approx(1700 / 3)
    assert west["pixels_without_value"] == 5
    # East: columns 2-3, rows 1-3 → 500, 600, 500, 600, 700 (and the source's nodata) → 2900 on 5 ha.
    assert east["pixels"] == 5 and east["sum"] == pytest.approx(2900.0) and east["pixels_without_value"] == 3
    flux = sequestration_by_county(by_name["npp"].reset_index())
    # 2900 g C m⁻² yr⁻¹ × 10,000 m² × 1e-6 t/g = 29 t C/yr; × 44/12 as CO2.
    assert flux.loc["East", "sequestration_t_c"] == pytest.approx(29.0)
    assert flux.loc["East", "sequestration_t_co2"] == pytest.approx(29.0 * 44 / 12)
    assert sequestration_by_county(by_name["npp"].reset_index(), units="kg C m-2 yr-1").loc["East", "sequestration_t_c"] == pytest.approx(29_000.0)


def test_another_crs_needs_a_declared_resampling(tmp, region):
    lu, zones, pools, _ = region
    # A constant NPP of 250 on a WGS 84 grid covering the region: every land-use pixel gets 250.
    from pyproj import Transformer

    lon, lat = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True).transform([499_900, 500_500], [2_799_500, 2_800_100])
    transform = from_origin(min(lon), max(lat), 0.001, 0.001)
    width, height = int(np.ceil((max(lon) - min(lon)) / 0.001)), int(np.ceil((max(lat) - min(lat)) / 0.001))
    path = write_tif(tmp / "npp_wgs84.tif", np.full((height, width), 250.0, dtype=np.float32), transform=transform, crs="EPSG:4326")
    with pytest.raises(ContinuousError, match=r"npp_wgs84.tif.*differs from the land use's.*resampling = \"nearest\""):
        ingest_continuous(path, tmp / "npp.zarr", like=lu, scheduler="synchronous", setting="[continuous] resampling")
    store = ingest_continuous(path, tmp / "npp.zarr", like=lu, resampling="nearest", scheduler="synchronous")
    assert open_continuous(store).attrs["continuous"]["method"].startswith("nearest neighbour, reprojected")
    np.testing.assert_array_equal(np.asarray(open_continuous(store).data.compute(scheduler="synchronous")), np.full((4, 4), 250.0))


def test_negative_population_is_refused(tmp, region):
    lu, *_ = region
    path = write_tif(tmp / "pop.tif", np.array([[40.0, -3.0], [1.0, 0.0]], dtype=np.float32), transform=COARSE)
    assert raster_minimum(path) == -3.0
    with pytest.raises(ContinuousError, match=r"pop.tif: a count per pixel cannot be negative.*as low as -3 people per pixel"):
        ingest_continuous(path, tmp / "pop.zarr", like=lu, quantity="count", scheduler="synchronous")
    assert not (tmp / "pop.zarr").exists()


def test_uncovered_share_of_the_region(tmp, region):
    _, _, _, vector = region
    import geopandas as gpd

    # The coarse grid's left column only: covers half of the 400 m-wide region.
    path = write_tif(tmp / "half.tif", PEOPLE[:, :1].copy(), transform=COARSE)
    assert region_coverage(read_source(path), gpd.read_file(vector)) == pytest.approx(0.5)
    assert region_coverage(read_source(write_tif(tmp / "all.tif", PEOPLE, transform=COARSE)), gpd.read_file(vector)) == pytest.approx(0.0)


def test_densities_corrected_per_pixel_and_per_county(tmp, region):
    lu, zones, pools, _ = region
    # A factor of 2 on the top half of the land use (source rows 0), 1 below; applied to the soil pool only.
    factor = np.array([[2.0, 2.0], [1.0, 1.0]], dtype=np.float32)
    store = ingest_continuous(write_tif(tmp / "k.tif", factor, transform=COARSE), tmp / "k.zarr", like=lu, scheduler="synchronous")
    result, by_name, table = _pass(lu, zones, pools, soil=(store, True))
    from carbonscape import read_pools

    pool_table = read_pools(pools)
    fixed = corrected_supply(result, pool_table, areas_m2=result.tables["areas"], zone_table=table,
                             pool_areas_m2={"c_soil": result.tables["factor_areas soil"]})
    county = fixed.by_county.set_index("county")
    # West: 7 ha of class 1 (43 t/ha, soil 30), 4 of them in the top half: 7 × 43 + 4 × 30 × (2 − 1) = 421.
    assert county.loc["West", "supply_t"] == pytest.approx(7 * 43 + 4 * 30)
    assert county.loc["West", "supply_t_uncorrected"] == pytest.approx(7 * 43)
    # East: 8 ha of class 2 (100 t/ha, soil 20), 4 on top: 800 + 80.
    assert county.loc["East", "supply_t"] == pytest.approx(880.0)
    assert fixed.by_pool.set_index("pool").loc["soil", "supply_t"] == pytest.approx(7 * 30 + 4 * 30 + 8 * 20 + 4 * 20)
    assert fixed.by_county_class.set_index(["county", "lucode"]).loc[("East", 2), "supply_t"] == pytest.approx(880.0)
    # Per county from a table: West's soil × 0.5, East's every pool × 1.1.
    pd.DataFrame({"county": ["West", "East"], "c_soil": [0.5, 1.1], "c_above": [1.0, 1.1], "c_below": [1.0, 1.1],
                  "c_dead": [1.0, 1.1]}).to_csv(tmp / "factors.csv", index=False)
    per_county = factor_table(tmp / "factors.csv", key="county", counties=["West", "East"])
    by_table = corrected_supply(result, pool_table, areas_m2=result.tables["areas"], zone_table=table, county_factors=per_county)
    county = by_table.by_county.set_index("county")
    assert county.loc["West", "supply_t"] == pytest.approx(7 * (10 + 2 + 15 + 1))
    assert county.loc["East", "supply_t"] == pytest.approx(8 * 100 * 1.1)
    pd.DataFrame({"county": ["West"], "factor": [1.0]}).to_csv(tmp / "short.csv", index=False)
    with pytest.raises(ContinuousError, match=r"short.csv: no factor for 1 county\(ies\) \(East\)"):
        factor_table(tmp / "short.csv", key="county", counties=["West", "East"])


def test_real_geotiff_population_sum_equals_its_own_total_on_the_same_grid(tmp, region):
    """On the land use's own grid a count store's Σ d·a is the GeoTIFF's plain sum, per county."""
    lu, zones, pools, _ = region
    rng = np.random.default_rng(3)
    people = rng.integers(0, 50, size=(4, 4)).astype(np.float32)
    store = ingest_continuous(write_tif(tmp / "pop_same.tif", people), tmp / "p.zarr", like=lu, quantity="count", scheduler="synchronous")
    assert open_continuous(store).attrs["continuous"]["resampling"] == "none"
    _, by_name, _ = _pass(lu, zones, pools, population=(store, False))
    people_by_county = population_by_county(by_name["population"].reset_index())
    # Stored as float32 people per m² (as the float32 source): the plain sum to float32 precision.
    assert people_by_county["West"] == pytest.approx(float(people[:, :2].sum()), rel=1e-6)
    assert people_by_county["East"] == pytest.approx(float(people[:, 2:].sum()), rel=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    chunk=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    geographic=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_factor_areas_and_value_sums_equal_their_numpy_references(shape, chunk, geographic, seed):
    rng = np.random.default_rng(seed)
    codes = rng.choice(np.array([1, 2, 3, 7, 9], dtype=np.int16), size=shape)
    factor = rng.uniform(0.2, 3.0, size=shape)
    factor[rng.random(shape) < 0.15] = np.nan
    counties = rng.integers(0, 4, size=shape).astype(np.int32)
    crs, transform = ("EPSG:4326", from_origin(100.0, 30.0, 0.01, 0.01)) if geographic else ("EPSG:32648", from_origin(500_000, 2_800_000, 30, 30))
    grid = Grid.from_affine(crs=crs, transform=transform, shape=shape, chunks=chunk)
    layout = Layout(n_counties=4, classes=ClassIndex.build([1, 2, 3], nodata=9))
    specs = [*value_specs("k", factor=True)]
    lazy = accumulate(specs, da.from_array(counties, chunks=chunk), {"landuse": da.from_array(codes, chunks=chunk),
                                                                     "k": da.from_array(factor, chunks=chunk)}, layout=layout, grid=grid)
    expected = accumulate_numpy(specs, counties, {"landuse": codes, "k": factor}, layout=layout, grid=grid)
    for name in ("values k", "factor_areas k"):
        np.testing.assert_allclose(np.asarray(lazy[name].compute(scheduler="synchronous")), expected[name], rtol=1e-9, atol=1e-6)
    # Without factors (all NaN) the factor areas are the plain areas.
    plain = accumulate_numpy([FACTOR_AREAS], counties, {"landuse": codes, "factor": np.full(shape, np.nan)}, layout=layout, grid=grid)
    from carbonscape.accumulate import AREAS

    np.testing.assert_allclose(plain["factor_areas"], accumulate_numpy([AREAS], counties, {"landuse": codes}, layout=layout, grid=grid)["areas"])


def test_strips_of_rows_give_the_same_store(tmp, region, monkeypatch):
    """The chunk is filled in strips of rows (memory); strips of 1 or 3 rows give the same values."""
    import carbonscape.continuous as continuous

    lu, *_ = region
    path = write_tif(tmp / "pop.tif", PEOPLE, transform=from_origin(500_150, 2_799_850, 200, 200))
    whole = ingest_continuous(path, tmp / "a.zarr", like=lu, quantity="count", scheduler="synchronous")
    expected = np.asarray(open_continuous(whole).data.compute(scheduler="synchronous"))
    for rows in (1, 3):
        monkeypatch.setattr(continuous, "_STRIP_ROWS", rows)
        store = ingest_continuous(path, tmp / f"s{rows}.zarr", like=lu, quantity="count", scheduler="synchronous")
        np.testing.assert_array_equal(np.asarray(open_continuous(store).data.compute(scheduler="synchronous")), expected)
    # The shifted grid leaves row 0 and column 0 uncovered; every other pixel has a value.
    assert np.isnan(expected[0]).all() and np.isnan(expected[:, 0]).all() and np.isfinite(expected[1:, 1:]).all()


@pytest.mark.parametrize("ratio", [4, 1])
def test_a_finer_source_gives_each_pixel_the_source_pixel_under_its_centre(tmp, region, monkeypatch, ratio):
    """A 25 m source under 100 m land use: pixel (r, c)'s centre lies in source pixel (4r + 2, 4c + 2);
    read as one window (ratio 4) or row by row (ratio 1)."""
    import carbonscape.continuous as continuous

    monkeypatch.setattr(continuous, "_WINDOW_RATIO", ratio)
    lu, *_ = region
    fine = np.arange(16 * 16, dtype=np.float32).reshape(16, 16)
    path = write_tif(tmp / "fine.tif", fine, transform=from_origin(500_000, 2_800_000, 25, 25))
    store = ingest_continuous(path, tmp / f"fine{ratio}.zarr", like=lu, scheduler="synchronous")
    got = np.asarray(open_continuous(store).data.compute(scheduler="synchronous"))
    np.testing.assert_array_equal(got, fine[2::4, 2::4])


def test_population_per_grid_cell_by_hand(tmp, region):
    """200 m cells (2 × 2 land-use pixels) over the coarse people grid: each cell is one source pixel."""
    from carbonscape.continuous import values_by_cell

    lu, *_ = region
    store = ingest_continuous(write_tif(tmp / "pop.tif", PEOPLE, transform=COARSE), tmp / "pop.zarr", like=lu, quantity="count",
                              scheduler="synchronous")
    cells = values_by_cell(store, size=200, scheduler="synchronous").set_index(["row", "col"])
    assert cells["sum"].to_dict() == pytest.approx({(0, 0): 40.0, (0, 1): 80.0, (1, 0): 120.0, (1, 1): 0.0})
    assert cells.loc[(1, 0), "cell"] == 2 and cells.loc[(1, 0), "mean"] == pytest.approx(120.0 / 0.04)
    # 400 m cells: the whole raster in one cell.
    assert values_by_cell(store, size=400, scheduler="synchronous")["sum"].tolist() == pytest.approx([240.0])


def test_people_are_kept_on_a_lon_lat_grid(tmp):
    """Lon/lat grids: pixel areas vary by row; a 0.02° people grid read on 0.01° land use keeps each
    source pixel's people (its four land-use pixels' ellipsoidal areas add up to its own)."""
    import shapely

    land = from_origin(102.0, 25.0, 0.01, 0.01)
    lu = ingest(write_tif(tmp / "lu.tif", CODES, transform=land, crs="EPSG:4326", nodata=9), tmp / "lu.zarr", scheduler="synchronous")
    boxes = [shapely.box(102.0, 24.96, 102.02, 25.0), shapely.box(102.02, 24.96, 102.04, 25.0)]
    vector = write_vector(tmp / "c.gpkg", boxes, ["West", "East"], crs="EPSG:4326")
    zones = rasterize_zones(vector, like=lu, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    pools = write_pools(tmp / "pools.csv", POOLS)
    store = ingest_continuous(write_tif(tmp / "pop.tif", PEOPLE, transform=from_origin(102.0, 25.0, 0.02, 0.02), crs="EPSG:4326"),
                              tmp / "pop.zarr", like=lu, quantity="count", scheduler="synchronous")
    _, by_name, _ = _pass(lu, zones, pools, population=(store, False))
    people = population_by_county(by_name["population"].reset_index())
    assert people.to_dict() == pytest.approx({"West": 160.0, "East": 80.0}, rel=1e-6)
