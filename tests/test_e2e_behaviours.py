"""Behaviours no test covered before, each with an expected value checkable by hand: quantile and
equal-interval zoning, ``weights = "area"``, more than 255 counties, overlapping mosaic tiles,
numeric county ids, the study options ``sheet``, ``layer``, ``pixel_maps`` and ``dir``, and the
hand-built study end to end through the Python API (the fast twin of test_e2e_cli.py's run).

Strip studies: counties are vertical strips of code-2 pixels (100 t C/ha, 1 ha each) ten rows high
and the demand is 1 t CO2 per person, so a county's ratio is exactly population / supply:
``R = (pop / A) / (S / A)`` whatever its area A.
"""

from __future__ import annotations

import json

import geopandas as gpd
import handbuilt
import numpy as np
import pandas as pd
import pytest
import rasterio
import zarr
from carbonscape import ingest, rasterize_zones, run_study, supply
from conftest import pixel_box, write_pools, write_tif

# Hand arithmetic below counts 1 ha per 100 m pixel, which is the ground area only on an equal-area
# grid (carbonscape measures true areas: UTM's nominal hectare is 0.08 % short); EASE-Grid 2.0.
EQUAL_AREA = "EPSG:6933"

STRIP_STUDY = """
[landuse]
rasters = ["landuse.tif"]

[counties]
path = "counties.gpkg"
id_field = "county"
{counties}

[pools]
path = "pools.csv"

[demand]
table = "{table}"
key = "county"
per_capita_t = 1.0
{demand}

[zoning]
{zoning}
scheme = "classes"

[outputs]
maps = false
report = false
{outputs}
"""


def strip_study(folder, widths: list[int], populations: list[int], *, zoning: str, counties: str = "", demand: str = "",
                outputs: str = "", table: str = "population.csv", names: list[str] | None = None):
    """Counties side by side, ``widths`` pixels wide and 10 high, every pixel code 2 (100 t/ha)."""
    names = names or [f"S{i + 1}" for i in range(len(widths))]
    codes = np.full((10, sum(widths)), 2, dtype=np.uint8)
    write_tif(folder / "landuse.tif", codes, nodata=255, crs=EQUAL_AREA)
    edges = np.concatenate([[0], np.cumsum(widths)])
    boxes = [pixel_box(int(a), 0, int(b), 10) for a, b in zip(edges[:-1], edges[1:])]
    gpd.GeoDataFrame({"county": names}, geometry=boxes, crs=EQUAL_AREA).to_file(folder / "counties.gpkg", layer="counties", engine="pyogrio")
    write_pools(folder / "pools.csv", [(1, 10.0, 2.0, 30.0, 1.0), (2, 60.0, 15.0, 20.0, 5.0)])
    pd.DataFrame({"county": names, "population": populations}).to_csv(folder / "population.csv", index=False)
    path = folder / "study.toml"
    path.write_text(STRIP_STUDY.format(zoning=zoning, counties=counties, demand=demand, outputs=outputs, table=table), encoding="utf-8")
    return path


def _zones(out) -> pd.DataFrame:
    return pd.read_csv(out / "ratio_zones.csv", dtype={"county": str}).set_index("county")


# Six counties of 100 pixels (10,000 t C each) with ratios 1, 2, 3, 5, 6, 10.
SIX_POPULATIONS = [10_000, 20_000, 30_000, 50_000, 60_000, 100_000]


def test_quantile_zoning_puts_two_counties_in_each_of_three_classes(tmp_path):
    """Six ratios 1, 2, 3, 5, 6, 10 in k = 3 quantile classes: edges at the 1/3 and 2/3 quantiles,
    the 2nd and 4th values (inverted CDF), so [1, 2, 5, 10]: {1, 2}, {3, 5}, {6, 10}."""
    study = strip_study(tmp_path, [10] * 6, SIX_POPULATIONS, zoning='method = "quantile"\nk = 3')
    result = run_study(study, scheduler="synchronous")
    zones = _zones(tmp_path / "results")
    np.testing.assert_allclose(zones["ratio"], [1, 2, 3, 5, 6, 10], rtol=1e-12)
    assert zones["class"].tolist() == [1, 1, 2, 2, 3, 3]
    np.testing.assert_allclose(result.zoning["edges"], [1, 2, 5, 10], rtol=1e-12)


def test_equal_interval_zoning_splits_the_range_in_equal_thirds(tmp_path):
    """Ratios 1..10 in k = 3 equal intervals: edges 1, 4, 7, 10, so {1, 2, 3}, {5, 6}, {10}."""
    study = strip_study(tmp_path, [10] * 6, SIX_POPULATIONS, zoning='method = "equal"\nk = 3')
    result = run_study(study, scheduler="synchronous")
    assert _zones(tmp_path / "results")["class"].tolist() == [1, 1, 1, 2, 2, 3]
    np.testing.assert_allclose(result.zoning["edges"], [1, 4, 7, 10], rtol=1e-12)


@pytest.mark.parametrize("weights", ["none", "area"])
def test_area_weights_change_the_natural_breaks(tmp_path, weights):
    """Ratios 1, 4, 5, 10 on counties of 300, 10, 10 and 10 pixels, k = 2.
    Unweighted, {1, 4, 5} | {10} costs 8.67 against 17 and 20.67: edges [1, 5, 10].
    Weighted by area (30 : 1 : 1 : 1), {1} | {4, 5, 10} costs 20.67 against 21.21 for
    {1, 4} | {5, 10} and 23.47 for {1, 4, 5} | {10}: edges [1, 1, 10]."""
    # Supply 30,000, 1,000, 1,000, 1,000 t; ratio = population / supply.
    study = strip_study(tmp_path, [30, 1, 1, 1], [30_000, 4_000, 5_000, 10_000],
                        zoning=f'method = "jenks"\nk = 2\nweights = "{weights}"')
    result = run_study(study, scheduler="synchronous")
    zones = _zones(tmp_path / "results")
    np.testing.assert_allclose(zones["ratio"], [1, 4, 5, 10], rtol=1e-12)
    if weights == "area":
        assert zones["class"].tolist() == [1, 2, 2, 2]
        np.testing.assert_allclose(result.zoning["edges"], [1, 1, 10], rtol=1e-12)
    else:
        assert zones["class"].tolist() == [1, 1, 1, 2]
        np.testing.assert_allclose(result.zoning["edges"], [1, 5, 10], rtol=1e-12)


def test_more_than_255_counties(tmp_path):
    """300 counties of 2 × 2 pixels on a 20 × 60 raster (ids 1..300, beyond 8 bits): each county's
    supply is the sum of its four pixels' densities."""
    rng = np.random.default_rng(5)
    codes = rng.choice(np.array([1, 2, 255], dtype=np.uint8), size=(20, 60), p=[0.45, 0.45, 0.1])
    write_tif(tmp_path / "lu.tif", codes, nodata=255, crs=EQUAL_AREA)
    ids, boxes, want = [], [], {}
    density = {1: 43.0, 2: 100.0, 255: 0.0}
    for i in range(300):
        r, c = divmod(i, 30)
        ids.append(i + 1)
        boxes.append(pixel_box(2 * c, 2 * r, 2 * c + 2, 2 * r + 2))
        want[str(i + 1)] = sum(density[int(v)] for v in codes[2 * r:2 * r + 2, 2 * c:2 * c + 2].ravel())
    gpd.GeoDataFrame({"county": ids}, geometry=boxes, crs=EQUAL_AREA).to_file(tmp_path / "c.gpkg", engine="pyogrio")
    write_pools(tmp_path / "pools.csv", [(1, 10.0, 2.0, 30.0, 1.0), (2, 60.0, 15.0, 20.0, 5.0)])
    lu = ingest(tmp_path / "lu.tif", tmp_path / "lu.zarr", chunk=256, scheduler="synchronous")
    zones = rasterize_zones(tmp_path / "c.gpkg", like=lu, id_field="county", out=tmp_path / "z.zarr", scheduler="synchronous")
    # 2×2-pixel counties with 10 % nodata: many are covered under the default 0.9; accepted here.
    result = supply(lu, zones, tmp_path / "pools.csv", scheduler="synchronous", min_coverage=0)
    got = result.by_county.assign(county=result.by_county["county"].astype(str)).set_index("county")["supply_t"]
    assert len(got) == 300 and sorted(got.index) == sorted(want)
    np.testing.assert_allclose(got.reindex(list(want)).to_numpy(), list(want.values()), rtol=1e-12)


def test_overlapping_tiles_keep_each_others_data(tmp_path):
    """Two 4 × 6 tiles overlapping by two columns. In the overlap, tile A has data (code 1) and
    tile B nodata in one column, data (code 2) in the other: where one tile has nodata, the other's
    data stays; nodata only where neither has data."""
    transform = rasterio.transform.from_origin(500_000, 2_800_000, 100, 100)
    a = np.ones((4, 6), dtype=np.uint8)
    a[0, 0] = 255
    b = np.full((4, 6), 2, dtype=np.uint8)
    b[:, 0] = 255  # the first overlap column (mosaic column 4)
    b[3, 5] = 255
    write_tif(tmp_path / "a.tif", a, transform=transform, nodata=255)
    write_tif(tmp_path / "b.tif", b, transform=transform * rasterio.Affine.translation(4, 0), nodata=255)
    expected = np.array([
        [255, 1, 1, 1, 1, 2, 2, 2, 2, 2],
        [1, 1, 1, 1, 1, 2, 2, 2, 2, 2],
        [1, 1, 1, 1, 1, 2, 2, 2, 2, 2],
        [1, 1, 1, 1, 1, 2, 2, 2, 2, 255],
    ], dtype=np.uint8)
    for order in (["a.tif", "b.tif"], ["b.tif", "a.tif"]):
        store = ingest([tmp_path / name for name in order], tmp_path / f"m_{order[0]}.zarr", chunk=256, scheduler="synchronous")
        mosaic = np.asarray(zarr.open_group(str(store), mode="r")["landuse"][:])
        # Column 5 has data in both tiles (1 in A, 2 in B): either tile may win there, nothing else may change.
        assert mosaic.shape == expected.shape
        assert np.array_equal(np.delete(mosaic, 5, axis=1), np.delete(expected, 5, axis=1)), (order, mosaic)
        assert set(mosaic[:, 5].tolist()) <= {1, 2}, (order, mosaic)


def test_numeric_county_ids_run_end_to_end(tmp_path):
    """The hand-built study with county ids 101..116 (integers in the GeoPackage and the table):
    every output is keyed by the id as written, and the numbers are the hand-computed ones."""
    ids = list(range(101, 117))
    study = handbuilt.write_handbuilt(tmp_path, ids=ids)
    run_study(study.study, scheduler="synchronous")
    want = handbuilt.expected(ids=ids)
    got = _zones(tmp_path / "results")
    assert sorted(got.index) == sorted(str(i) for i in ids)
    got = got.reindex(want.index)
    np.testing.assert_allclose(got["supply_t"], want["supply_t"], rtol=1e-12)
    assert got["class"].tolist() == want["class"].tolist()
    gpkg = gpd.read_file(tmp_path / "results" / "counties.gpkg", layer="counties")
    assert sorted(gpkg["county"].astype(str)) == sorted(str(i) for i in ids)


def test_the_hand_built_study_through_the_python_api(tmp_path):
    """The fast twin of test_e2e_cli.py's `carbonscape run`: run_study in process, every number
    against the hand-computed answer."""
    study = handbuilt.write_handbuilt(tmp_path)
    result = run_study(study.study, scheduler="synchronous")
    want = handbuilt.expected()
    got = _zones(tmp_path / "results")
    assert sorted(got.index) == sorted(want.index)
    got = got.reindex(want.index)
    np.testing.assert_allclose(got["supply_t"], want["supply_t"], rtol=1e-12)
    np.testing.assert_allclose(got["demand_t_per_km2"], want["demand_t_per_km2"], rtol=1e-9)
    finite = np.isfinite(want["ratio"])
    np.testing.assert_allclose(got["ratio"][finite], want["ratio"][finite], rtol=1e-9)
    assert np.isinf(got.loc[handbuilt.ZERO_SUPPLY, "ratio"]) and got.loc[handbuilt.ZERO_SUPPLY, "supply_t"] == 0
    assert got["class"].tolist() == want["class"].tolist()
    assert got["zone"].tolist() == want["zone"].tolist()
    np.testing.assert_allclose(result.zoning["edges"], want.attrs["edges"], rtol=1e-12)
    assert result.totals["supply_t"] == pytest.approx(want["supply_t"].sum(), rel=1e-12)


# -- study options: sheet, layer, pixel_maps, dir --------------------------------------------------


@pytest.fixture(scope="module")
def optioned(tmp_path_factory):
    """A strip study whose county table is sheet `2020` of a workbook (sheet `2010` first, with other
    numbers), whose counties are layer `counties` of a GeoPackage whose first layer is a decoy, with
    pixel maps on and outputs in `[outputs] dir`."""
    folder = tmp_path_factory.mktemp("options")
    study = strip_study(folder, [10, 20, 30], [1_000, 4_000, 9_000], zoning='method = "jenks"\nk = 2', counties='layer = "counties"',
                        demand='sheet = "2020"', outputs='dir = "elsewhere"\npixel_maps = true', table="population.xlsx")
    polygons = gpd.read_file(folder / "counties.gpkg", layer="counties")
    decoy = gpd.GeoDataFrame({"county": ["whole"]}, geometry=[pixel_box(0, 0, 60, 10)], crs=EQUAL_AREA)
    (folder / "counties.gpkg").unlink()
    decoy.to_file(folder / "counties.gpkg", layer="decoy", engine="pyogrio")
    polygons.to_file(folder / "counties.gpkg", layer="counties", engine="pyogrio")
    with pd.ExcelWriter(folder / "population.xlsx") as writer:
        pd.DataFrame({"county": ["S1", "S2", "S3"], "population": [7, 7, 7]}).to_excel(writer, sheet_name="2010", index=False)
        pd.DataFrame({"county": ["S1", "S2", "S3"], "population": [1_000, 4_000, 9_000]}).to_excel(writer, sheet_name="2020", index=False)
    run_study(study, scheduler="synchronous")
    return folder


def test_study_dir_option_is_where_the_outputs_go(optioned):
    assert (optioned / "elsewhere" / "ratio_zones.csv").exists() and not (optioned / "results").exists()


def test_study_sheet_option_reads_that_sheet(optioned):
    demand = pd.read_csv(optioned / "elsewhere" / "demand_by_county.csv").set_index("county")
    assert demand["population"].tolist() == [1_000, 4_000, 9_000]
    # Supply 10,000, 20,000 and 30,000 t; 1 t per person: ratios 0.1, 0.2, 0.3.
    np.testing.assert_allclose(_zones(optioned / "elsewhere")["ratio"], [0.1, 0.2, 0.3], rtol=1e-12)


def test_study_layer_option_reads_that_layer(optioned):
    supply_t = pd.read_csv(optioned / "elsewhere" / "supply_by_county.csv").set_index("county")["supply_t"]
    assert supply_t.to_dict() == pytest.approx({"S1": 10_000.0, "S2": 20_000.0, "S3": 30_000.0}, rel=1e-12)


def test_study_pixel_maps_option_writes_carbon_per_pixel(optioned):
    with rasterio.open(optioned / "elsewhere" / "carbon_t_per_ha.tif") as src:
        assert src.shape == (10, 60)
        np.testing.assert_array_equal(src.read(1), np.full((10, 60), 100.0))  # code 2: 60 + 15 + 20 + 5 t/ha
    assert json.loads((optioned / "elsewhere" / "run.json").read_text())["totals"]["supply_t"] == pytest.approx(60_000)
