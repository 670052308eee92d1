"""`change`: transfer matrices, carbon change per transition and county, InVEST's valuation,
nodata that differs between the maps, the land-use dynamic degrees, and bad input."""

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from carbonscape import InputError, PoolTableError, Valuation, change, ingest, rasterize_zones, valuation_constant
from carbonscape.cli.main import cli
from click.testing import CliRunner
from conftest import pixel_box, write_pools, write_tif, write_vector
from pyproj import Geod
from rasterio.transform import from_origin

# 5×5 maps of 100 m pixels (1 ha); 9 is nodata. Densities 1: 43, 2: 100, 3: 0, 4: 5.5 t/ha.
BEFORE = np.array([
    [1, 1, 2, 2, 3],
    [1, 1, 2, 2, 3],
    [1, 9, 2, 3, 3],
    [4, 4, 4, 3, 3],
    [4, 4, 4, 9, 3],
], dtype=np.uint8)
AFTER = np.array([
    [1, 2, 2, 2, 3],   # West: two 1 → 2
    [1, 2, 2, 2, 3],
    [9, 1, 2, 3, 3],   # West: 1 → nodata, nodata → 1
    [4, 4, 4, 3, 3],
    [4, 4, 1, 9, 3],   # South: 4 → 1
], dtype=np.uint8)
POOLS = [(1, 10, 2, 30, 1), (2, 60, 15, 20, 5), (3, 0, 0, 0, 0), (4, 1, 0.5, 4, 0)]
NAMES = ["crop", "forest", "water", "grass"]
# The hand arithmetic counts 1 ha per 100 m pixel: true on an equal-area grid (EASE-Grid 2.0), not
# in UTM (0.08 % short there, and carbonscape measures true ground areas).
EQUAL_AREA = "EPSG:6933"


@pytest.fixture
def two_maps(tmp):
    a = ingest(write_tif(tmp / "a.tif", BEFORE, nodata=9, crs=EQUAL_AREA), tmp / "a.zarr", chunk=16, scheduler="synchronous")
    b = ingest(write_tif(tmp / "b.tif", AFTER, nodata=9, crs=EQUAL_AREA), tmp / "b.zarr", chunk=16, scheduler="synchronous")
    # West: columns 0-1 of rows 0-2; East: columns 2-4 of rows 0-2; South: rows 3-4.
    vector = write_vector(tmp / "c.gpkg", [pixel_box(0, 0, 2, 3), pixel_box(2, 0, 5, 3), pixel_box(0, 3, 5, 5)], ["West", "East", "South"],
                          crs=EQUAL_AREA)
    zones = rasterize_zones(vector, like=a, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    return a, b, zones, write_pools(tmp / "pools.csv", POOLS, names=NAMES)


def invest_constant_by_its_sum(price, discount, change_pct, years):
    """The User's Guide's form: price/n · Σ_{t=0}^{n-1} 1/((1+r)^t (1+c)^t), summed term by term."""
    n = years[1] - years[0]
    return price / n * sum(1 / ((1 + discount / 100) ** t * (1 + change_pct / 100) ** t) for t in range(n))


def test_valuation_constant_equals_the_published_formula_and_invest_s_own_test_values():
    for args in [(50, 7, 0, (2020, 2030)), (43, -7.1, 2.8, (2016, 2030)), (50, 50, 5, (2010, 2012)), (10, 0, 0, (2000, 2001))]:
        assert valuation_constant(price=args[0], discount_rate=args[1], rate_change=args[2], years=args[3]) == pytest.approx(
            invest_constant_by_its_sum(*args), rel=1e-12)
    # InVEST's tests/test_carbon.py: test_calculate_valuation_constant (2010→2012, r 50 %, c 5 %, price 50).
    assert round(valuation_constant(price=50, discount_rate=50, rate_change=5, years=(2010, 2012)), 5) == 40.87302
    # test_carbon_zero_rates: no discounting, the price itself: -58 t/ha × 43 = -2494 per ha.
    assert -58 * valuation_constant(price=43, discount_rate=0, rate_change=0, years=(2016, 2030)) == pytest.approx(-2494.0)
    # test_carbon_full: -58 t/ha at r = -7.1 %, c = 2.8 % → -0.3422078 per 1 m² pixel = -3422.078 per ha.
    assert -58 * valuation_constant(price=43, discount_rate=-7.1, rate_change=2.8, years=(2016, 2030)) == pytest.approx(-3422.078, abs=1e-3)


def test_hand_computed_change(tmp, two_maps):
    a, b, zones, pools = two_maps
    result = change(a, b, zones, pools, years=(2020, 2030), valuation=Valuation(price=50, discount_rate=7, rate_change=0),
                    out=tmp / "out", scheduler="synchronous")
    county = result.by_county.set_index("county")
    # West: A five 1s = 215; B 1,2,1,2,1 = 3×43 + 2×100 = 329; change over pixels valid in both: 2 × (100 − 43).
    assert county.loc["West", ["supply_from_t", "supply_to_t", "change_t"]].tolist() == pytest.approx([215, 329, 114])
    assert county.loc["East", ["supply_from_t", "supply_to_t", "change_t"]].tolist() == pytest.approx([500, 500, 0])
    # South: one 4 → 1 = 43 − 5.5; A 33, B 5 × 5.5 + 43.
    assert county.loc["South", ["supply_from_t", "supply_to_t", "change_t"]].tolist() == pytest.approx([33, 70.5, 37.5])
    # The nodata pixel of each map that is not nodata in the other, per county; (4, 3) is nodata in both.
    assert county["nodata_from_only_pixels"].to_dict() == {"West": 1, "East": 0, "South": 0}
    assert county["nodata_to_only_pixels"].to_dict() == {"West": 1, "East": 0, "South": 0}
    assert county["changed_pixels"].to_dict() == {"West": 2, "East": 0, "South": 1}
    constant = invest_constant_by_its_sum(50, 7, 0, (2020, 2030))
    assert county["npv"].tolist() == pytest.approx([114 * constant, 0, 37.5 * constant])
    pairs = result.transitions_by_county.set_index(["county", "from_code", "to_code"])
    assert pairs.loc[("West", 1, 2)].tolist() == pytest.approx([2, 0.02, 114])
    assert pairs.loc[("South", 4, 1), "carbon_change_t"] == pytest.approx(37.5)
    assert pairs["pixels"].sum() == 25 - 1 - 2  # 25 pixels, 1 nodata in both maps, 2 in one map only
    region = result.transitions.set_index(["from_code", "to_code"])
    assert region.loc[(1, 2), ["from_name", "to_name"]].tolist() == ["crop", "forest"]
    assert region.loc[(2, 2), "area_km2"] == pytest.approx(0.05)
    assert region["carbon_change_t"].sum() == pytest.approx(151.5)
    # Land-use dynamic degree over 10 years: class 1 5 → 4 ha: -2 %/yr; 2: 5 → 7 ha: +4; 4: 6 → 5; 3: 7 → 7.
    degree = result.dynamic_degree.set_index("lucode")["single_dynamic_degree_pct_per_year"]
    assert degree.to_dict() == pytest.approx({1: -2.0, 2: 4.0, 3: 0.0, 4: -100 / 60})
    # Comprehensive: 3 ha left their class (1 → 2 twice, 4 → 1) out of 23 ha of classes in 2020.
    assert result.summary["comprehensive_dynamic_degree_pct_per_year"] == pytest.approx(3 / 23 / 10 * 100)
    matrix = pd.read_csv(tmp / "out" / "transfer_matrix_km2.csv", index_col=0)
    assert matrix.loc["1 crop", "2 forest"] == pytest.approx(0.02)
    assert matrix.loc["total_to", "total_from"] == pytest.approx(0.22)  # the 22 pixels valid in both maps
    written = pd.read_csv(tmp / "out" / "change_by_county.csv")
    assert list(written.columns[:5]) == ["county", "supply_from_t", "supply_to_t", "change_t", "npv"]
    assert list(pd.read_csv(tmp / "out" / "transitions_by_county.csv").columns) == [
        "county", "from_code", "to_code", "pixels", "area_km2", "carbon_change_t"]
    summary = json.loads((tmp / "out" / "change_summary.json").read_text())
    assert summary["change_t"] == pytest.approx(151.5) and summary["valuation"]["npv"] == pytest.approx(151.5 * constant)


def test_pixel_maps_follow_invest_s_rasters(tmp, two_maps):
    a, b, zones, pools = two_maps
    change(a, b, zones, pools, years=(2020, 2030), valuation=Valuation(price=50, discount_rate=7), out=tmp / "out",
           pixel_maps=True, scheduler="synchronous")
    density = {1: 43.0, 2: 100.0, 3: 0.0, 4: 5.5}
    expected = np.full(BEFORE.shape, -1.0, dtype=np.float32)
    both = (BEFORE != 9) & (AFTER != 9)
    expected[both] = [density[int(y)] - density[int(x)] for x, y in zip(BEFORE[both], AFTER[both])]
    with rasterio.open(tmp / "out" / "c_change.tif") as src:
        np.testing.assert_array_equal(src.read(1), expected)
        assert src.nodata == -1.0 and src.crs.to_epsg() == 6933
    with rasterio.open(tmp / "out" / "npv.tif") as src:
        npv = src.read(1)
    constant = np.float32(invest_constant_by_its_sum(50, 7, 0, (2020, 2030)))
    np.testing.assert_allclose(npv[both], expected[both] * constant, rtol=1e-6)
    assert (npv[~both] == -1.0).all()


def test_transfer_matrix_equals_a_numpy_reference_with_true_areas_on_a_geographic_grid(tmp):
    rng = np.random.default_rng(7)
    rows, cols = 40, 30
    transform = from_origin(100.0, 26.0, 0.01, 0.01)  # 0.01° pixels in Yunnan's latitudes
    before = rng.integers(1, 5, (rows, cols)).astype(np.uint8)
    after = np.where(rng.random((rows, cols)) < 0.3, rng.integers(1, 5, (rows, cols)), before).astype(np.uint8)
    before[rng.random((rows, cols)) < 0.02] = 255
    after[rng.random((rows, cols)) < 0.02] = 255
    a = ingest(write_tif(tmp / "a.tif", before, transform=transform, crs="EPSG:4326", nodata=255), tmp / "a.zarr", chunk=16, scheduler="synchronous")
    b = ingest(write_tif(tmp / "b.tif", after, transform=transform, crs="EPSG:4326", nodata=255), tmp / "b.zarr", chunk=16, scheduler="synchronous")
    boxes = [pixel_box(0, 0, 30, 17, transform=transform), pixel_box(0, 17, 30, 40, transform=transform)]
    vector = write_vector(tmp / "c.gpkg", boxes, ["N", "S"], crs="EPSG:4326")
    zones = rasterize_zones(vector, like=a, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    pools = write_pools(tmp / "pools.csv", POOLS, names=NAMES)
    result = change(a, b, zones, pools, scheduler="synchronous")
    # Reference: each row's pixel area on the WGS84 ellipsoid from pyproj's Geod, bincount of (county, a, b).
    geod = Geod(ellps="WGS84")
    row_area = np.array([abs(geod.polygon_area_perimeter([100, 100.01, 100.01, 100], [26 - 0.01 * r, 26 - 0.01 * r, 26 - 0.01 * (r + 1), 26 - 0.01 * (r + 1)])[0]) for r in range(rows)])
    county = np.where(np.arange(rows)[:, None] < 17, 0, 1) * np.ones((1, cols), dtype=int)
    valid = (before != 255) & (after != 255)
    keys = (county * 5 + before.astype(int)) * 5 + after.astype(int)
    area = np.broadcast_to(row_area[:, None], (rows, cols))
    ref_area = np.bincount(keys[valid], weights=area[valid], minlength=2 * 25).reshape(2, 5, 5)
    ref_pixels = np.bincount(keys[valid], minlength=2 * 25).reshape(2, 5, 5)
    got = result.transitions_by_county
    for row in got.itertuples():
        k = 0 if row.county == "N" else 1
        assert row.pixels == ref_pixels[k, row.from_code, row.to_code]
        # Geod closes the cell with geodesics, not parallels: ~1e-9 apart at 0.01°.
        assert row.area_km2 == pytest.approx(ref_area[k, row.from_code, row.to_code] / 1e6, rel=1e-8)
    assert got["pixels"].sum() == valid.sum()
    nodata_from_only = ((before == 255) & (after != 255))
    assert result.by_county["nodata_from_only_pixels"].tolist() == [int(nodata_from_only[:17].sum()), int(nodata_from_only[17:].sum())]


def test_bad_input_is_refused_before_computing_with_the_map_named(tmp, two_maps):
    a, b, zones, pools = two_maps
    with pytest.raises(InputError, match="valuation needs the years"):
        change(a, b, zones, pools, valuation=Valuation(price=50, discount_rate=7), scheduler="synchronous")
    with pytest.raises(InputError, match="year 2010 is not after the .* year 2020"):
        change(a, b, zones, pools, years=(2020, 2010), scheduler="synchronous")
    short = write_pools(tmp / "short.csv", POOLS[:3], names=NAMES[:3])
    with pytest.raises(PoolTableError, match=r"b.zarr.*missing from the pools table.*4 \(5 pixels\)"):
        change(a, b, zones, pools, pools_to=short, scheduler="synchronous")
    other = ingest(write_tif(tmp / "o.tif", AFTER, transform=from_origin(500_000, 2_800_000, 50, 50), nodata=9, crs=EQUAL_AREA), tmp / "o.zarr", chunk=16, scheduler="synchronous")
    with pytest.raises(InputError, match="o.zarr"):
        change(a, other, zones, pools, scheduler="synchronous")
    assert not (tmp / "never").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--price", "50", "--discount-rate", "7"], "valuation needs the years"),
        (["--years", "2020", "2010"], "not after"),
        (["--discount-rate", "7"], "give --price too"),
        (["--price", "50", "--years", "2020", "2030"], "--price needs --discount-rate"),
    ],
)
def test_cli_bad_input_exits_2_and_writes_nothing(tmp, two_maps, extra, message):
    a, b, zones, pools = two_maps
    out = tmp / "out"
    res = CliRunner().invoke(cli, ["change", "--from", str(a), "--to", str(b), "--zones", str(zones), "--pools", str(pools),
                                   "--out", str(out), "--scheduler", "synchronous", *extra])
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert not out.exists()


def test_cli_change_prints_and_writes(tmp, two_maps):
    a, b, zones, pools = two_maps
    res = CliRunner().invoke(cli, ["change", "--from", str(a), "--to", str(b), "--zones", str(zones), "--pools", str(pools),
                                   "--out", str(tmp / "out"), "--years", "2020", "2030", "--price", "50", "--discount-rate", "7",
                                   "--scheduler", "synchronous", "--pixel-maps"])
    assert res.exit_code == 0, res.output
    assert "change +152 t C" in res.output and "crop → forest: 0.020 km²" in res.output
    for name in ("change_by_county.csv", "transitions_by_county.csv", "transitions.csv", "c_change.tif", "npv.tif", "transitions_sankey.png"):
        assert (tmp / "out" / name).exists()


def test_cli_change_prints_the_transfer_matrix_with_totals_unless_quiet(tmp, two_maps):
    a, b, zones, pools = two_maps
    args = ["change", "--from", str(a), "--to", str(b), "--zones", str(zones), "--pools", str(pools), "--years", "2020", "2030",
            "--scheduler", "synchronous", "--no-progress"]
    res = CliRunner().invoke(cli, [*args, "--out", str(tmp / "out")])
    assert res.exit_code == 0, res.output
    rows = {line.split()[0]: line.split()[1:] for line in res.output.splitlines() if line.startswith("    ") and "." in line}
    assert "transfer matrix, km² (rows 2020, columns 2030; 1 crop, 2 forest, 3 water, 4 grass)" in res.output
    # By hand (1 ha pixels, both maps with a class): crop 2 stay, 2 → forest; forest 5; water 7; grass 5 stay, 1 → crop.
    assert rows["1"] == ["0.020", "0.020", "0.000", "0.000", "0.040"]
    assert rows["4"] == ["0.010", "0.000", "0.000", "0.050", "0.060"]
    assert rows["total"] == ["0.030", "0.070", "0.070", "0.050", "0.220"]
    quiet = CliRunner().invoke(cli, ["-q", *args, "--out", str(tmp / "quiet")])
    assert quiet.exit_code == 0, quiet.output
    assert "transfer matrix" not in quiet.output and "change +152 t C" in quiet.output


def test_one_pass_over_many_maps_equals_each_map_and_pair_run_alone(tmp, two_maps):
    from carbonscape import supply
    from carbonscape.change import maps_pass

    a, b, zones, pools = two_maps
    later = AFTER.copy()
    later[0, 4] = 4  # water → grass in the scenario
    c = ingest(write_tif(tmp / "c.tif", later, nodata=9, crs=EQUAL_AREA), tmp / "c.zarr", chunk=16, scheduler="synchronous")
    pools_2030 = write_pools(tmp / "pools2030.csv", [(1, 12, 2, 30, 1), (2, 70, 15, 20, 5), (3, 0, 0, 0, 0), (4, 1, 0.5, 4, 0)], names=NAMES)
    maps = {"2000": a, "2010": b, "2030 eco": c}
    result = maps_pass(maps, zones, {"2000": pools, "2010": pools, "2030 eco": pools_2030},
                       pairs=[("2000", "2010"), ("2010", "2030 eco")], years={"2000": 2000, "2010": 2010, "2030 eco": 2030},
                       valuation=Valuation(price=50, discount_rate=7), scheduler="synchronous")
    for label, table in (("2000", pools), ("2010", pools), ("2030 eco", pools_2030)):
        alone = supply(maps[label], zones, table, scheduler="synchronous", min_coverage=0.8)  # West is 1/6 nodata
        # supply() alone adds its coverage columns; the tables the one pass shares must be equal.
        pd.testing.assert_frame_equal(result.supply[label].by_county, alone.by_county[result.supply[label].by_county.columns])
        pd.testing.assert_frame_equal(result.supply[label].by_county_class, alone.by_county_class)
    alone = change(b, c, zones, pools, pools_to=pools_2030, years=(2010, 2030), valuation=Valuation(price=50, discount_rate=7),
                   scheduler="synchronous")
    ours = result.changes[("2010", "2030 eco")]
    pd.testing.assert_frame_equal(ours.by_county, alone.by_county)
    pd.testing.assert_frame_equal(ours.transitions_by_county, alone.transitions_by_county)
    # East's water pixel that became grass gains 5.5 t; every other East pixel keeps its class but 2030's forest is denser.
    assert ours.by_county.set_index("county").loc["East", "change_t"] == pytest.approx(5.5 + 5 * 10)
    assert result.summary["maps"]["2030 eco"]["supply_t"] == pytest.approx(result.supply["2030 eco"].total_t)


def test_many_maps_refuse_another_grid_and_a_scenario_before_its_base_naming_the_map(tmp, two_maps):
    from carbonscape.change import maps_pass

    a, b, zones, pools = two_maps
    with pytest.raises(InputError, match="the 2030 eco map's year 2010 is not after the 2020 map's year 2020; .*correct the map's year"):
        maps_pass({"2020": a, "2030 eco": b}, zones, {"2020": pools, "2030 eco": pools}, pairs=[("2020", "2030 eco")],
                  years={"2020": 2020, "2030 eco": 2010}, scheduler="synchronous")
    other = ingest(write_tif(tmp / "o.tif", AFTER, transform=from_origin(500_000, 2_800_000, 50, 50), nodata=9, crs=EQUAL_AREA), tmp / "o.zarr",
                   chunk=16, scheduler="synchronous")
    with pytest.raises(InputError, match="the map '2030'"):
        maps_pass({"2020": a, "2030": other}, zones, {"2020": pools, "2030": pools}, scheduler="synchronous")
    short = write_pools(tmp / "short.csv", POOLS[:3], names=NAMES[:3])
    with pytest.raises(PoolTableError, match=r"2010 map .*missing from the pools table"):
        maps_pass({"2000": a, "2010": b}, zones, {"2000": pools, "2010": short}, scheduler="synchronous")


def test_transitions_sankey_and_change_map_are_drawn_from_the_result(tmp, two_maps):
    from carbonscape.change_figures import draw_change_map, draw_transitions
    from carbonscape.rasterize import read_polygons
    from PIL import Image

    a, b, zones, pools = two_maps
    result = change(a, b, zones, pools, scheduler="synchronous", labels=("2020", "2030"))
    sankey = draw_transitions(result, tmp / "fig" / "sankey.png")
    polygons = read_polygons(tmp / "c.gpkg", id_field="county")
    mapped = draw_change_map(result, polygons, "county", tmp / "fig" / "change.png")
    for path in (sankey, mapped):
        with Image.open(path) as image:
            assert image.size[0] > 500 and len(np.unique(np.asarray(image.convert("RGB")).reshape(-1, 3), axis=0)) > 20  # drawn, not blank


def test_a_sparse_transfer_matrix_gives_the_tables_of_the_dense_one(tmp, two_maps, monkeypatch):
    """Where (county, from, to) cells are many the pass accumulates only the cells present; every
    table, each map's supply and the change must be those of the dense pass."""
    import sys

    from carbonscape.change import maps_pass

    change_module = sys.modules["carbonscape.change"]  # the package's `change` is the function

    a, b, zones, pools = two_maps
    kwargs = {"pairs": [("2000", "2010")], "years": {"2000": 2000, "2010": 2010}, "valuation": Valuation(price=50, discount_rate=7),
              "scheduler": "synchronous"}
    dense = maps_pass({"2000": a, "2010": b}, zones, {"2000": pools, "2010": pools}, **kwargs)
    dense_change = change(a, b, zones, pools, years=(2000, 2010), scheduler="synchronous")
    monkeypatch.setattr(change_module, "SPARSE_ABOVE_CELLS", 0)
    import carbonscape.accumulate as accumulate_module

    read_sparse = []
    original = accumulate_module.sparse_cells
    monkeypatch.setattr(accumulate_module, "sparse_cells", lambda *a, **k: read_sparse.append(1) or original(*a, **k))
    sparse = maps_pass({"2000": a, "2010": b}, zones, {"2000": pools, "2010": pools}, **kwargs)
    sparse_change = change(a, b, zones, pools, years=(2000, 2010), scheduler="synchronous")
    assert len(read_sparse) == 1  # change took the sparse tables (maps_pass keeps trajectories, sparse themselves)
    for ours, theirs in ((sparse.changes[("2000", "2010")], dense.changes[("2000", "2010")]), (sparse_change, dense_change)):
        for name in ("by_county", "transitions_by_county", "transitions", "transfer_matrix", "dynamic_degree"):
            pd.testing.assert_frame_equal(getattr(ours, name), getattr(theirs, name), rtol=1e-12)
    for label in ("2000", "2010"):
        pd.testing.assert_frame_equal(sparse.supply[label].by_county, dense.supply[label].by_county, rtol=1e-12)
        pd.testing.assert_frame_equal(sparse.supply[label].by_county_class, dense.supply[label].by_county_class, rtol=1e-12)
    # West: two crop pixels became forest, one crop pixel nodata, one nodata pixel crop.
    west = sparse_change.by_county.set_index("county").loc["West"]
    assert (west["changed_pixels"], west["nodata_from_only_pixels"], west["nodata_to_only_pixels"]) == (2, 1, 1)


def test_cli_refuses_another_grid_and_a_code_missing_from_a_map_s_pools_naming_the_map(tmp, two_maps):
    a, b, zones, pools = two_maps
    short = write_pools(tmp / "short.csv", POOLS[:3], names=NAMES[:3])
    other = ingest(write_tif(tmp / "o.tif", AFTER, transform=from_origin(500_000, 2_800_000, 50, 50), nodata=9, crs=EQUAL_AREA),
                   tmp / "o.zarr", chunk=16, scheduler="synchronous")
    for to, extra, named in ((b, ["--pools-to", str(short)], "b.zarr"), (other, [], "o.zarr")):
        out = tmp / "out"
        res = CliRunner().invoke(cli, ["change", "--from", str(a), "--to", str(to), "--zones", str(zones), "--pools", str(pools),
                                       "--out", str(out), "--scheduler", "synchronous", *extra])
        assert res.exit_code == 2, res.output
        assert named in res.output
        assert not out.exists()
