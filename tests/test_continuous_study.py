"""A study with continuous rasters end to end through `carbonscape run` and `check`: population
from a coarser people-per-pixel grid, NPP sequestration, a soil factor raster; hand-computed."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import CARBONSCAPE, pixel_box, write_pools, write_tif, write_vector
from rasterio.transform import from_origin

# 8×8 land use of 100 m pixels (1 ha): class 1 in the left half, class 2 in the right.
CODES = np.repeat(np.array([[1] * 4 + [2] * 4], dtype=np.uint8), 8, axis=0)
POOLS = [(1, 10, 2, 30, 1), (2, 60, 15, 20, 5)]  # totals 43 and 100 t/ha; soil 30 and 20
# Four counties, one quadrant each (4 × 4 pixels = 16 ha): NW, NE, SW, SE.
QUADRANTS = {"NW": (0, 0, 4, 4), "NE": (4, 0, 8, 4), "SW": (0, 4, 4, 8), "SE": (4, 4, 8, 8)}
# People per 200 m pixel: a 4 × 4 grid twice as coarse, same origin; each county holds 2 × 2 of them.
PEOPLE = np.array([[10, 20, 30, 40], [50, 60, 70, 80], [1, 2, 3, 4], [5, 6, 7, 8]], dtype=np.float32)
COARSE = from_origin(500_000, 2_800_000, 200, 200)

STUDY = """
[study]
name = "Continuous rasters"

[landuse]
rasters = ["lu.tif"]
chunk = 256

[counties]
path = "counties.gpkg"
id_field = "county"

[pools]
path = "pools.csv"

[demand]
per_capita_t = 2.0

[zoning]
method = "quantile"
k = 2
scheme = "classes"

[outputs]
maps = false
report = false

[continuous]
population = "pop.tif"
npp = "npp.tif"
factors = { c_soil = "k_soil.tif" }
"""


@pytest.fixture
def study(tmp):
    write_tif(tmp / "lu.tif", CODES)
    write_vector(tmp / "counties.gpkg", [pixel_box(*box) for box in QUADRANTS.values()], list(QUADRANTS))
    write_pools(tmp / "pools.csv", POOLS)
    write_tif(tmp / "pop.tif", PEOPLE, transform=COARSE)
    write_tif(tmp / "npp.tif", np.full((8, 8), 400.0, dtype=np.float32))  # g C m⁻² yr⁻¹ on the land-use grid
    # Soil factor 1.5 in the top half (rows 0-3), no correction (1) below.
    write_tif(tmp / "k_soil.tif", np.array([[1.5, 1.5], [1.0, 1.0]], dtype=np.float32), transform=from_origin(500_000, 2_800_000, 400, 400))
    (tmp / "study.toml").write_text(STUDY, encoding="utf-8")
    return tmp


def _run(*args):
    return subprocess.run([str(CARBONSCAPE), *map(str, args)], capture_output=True, text=True, timeout=600)


def test_study_with_a_population_raster_runs_end_to_end(study):
    done = _run("run", study / "study.toml", "--scheduler", "synchronous", "--out", study / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    out = study / "out"
    demand = pd.read_csv(out / "demand_by_county.csv").set_index("county")
    # NW: source pixels (0..1, 0..1) = 10 + 20 + 50 + 60 = 140 people; NE 30+40+70+80 = 220; SW 1+2+5+6 = 14; SE 22.
    assert demand["population"].to_dict() == pytest.approx({"NW": 140.0, "NE": 220.0, "SW": 14.0, "SE": 22.0})
    ratio = pd.read_csv(out / "ratio_zones.csv").set_index("county")
    supply = pd.read_csv(out / "supply_by_county.csv").set_index("county")
    # Soil × 1.5 in the top half: NW 16 ha × 43 + 16 × 30 × 0.5 = 928; NE 16 × 100 + 16 × 20 × 0.5 = 1760; SW 688; SE 1600.
    assert supply["supply_t"].to_dict() == pytest.approx({"NW": 928.0, "NE": 1760.0, "SW": 688.0, "SE": 1600.0})
    assert supply.loc["NW", "supply_t_uncorrected"] == pytest.approx(688.0)
    assert ratio.loc["NE", "supply_t"] == pytest.approx(1760.0)
    flux = pd.read_csv(out / "sequestration_by_county.csv").set_index("county")
    # 400 g C m⁻² yr⁻¹ × 160,000 m² × 1e-6 = 64 t C/yr per county; emissions 2 t × people.
    assert flux["sequestration_t_c"].to_dict() == pytest.approx({k: 64.0 for k in QUADRANTS})
    assert flux.loc["NE", "emissions_t_co2"] == pytest.approx(440.0)
    assert flux.loc["NE", "emissions_over_sequestration"] == pytest.approx(440.0 / (64.0 * 44 / 12))
    values = pd.read_csv(out / "continuous_by_county.csv")
    assert set(values["raster"]) == {"population", "npp", "factor 1"}
    run = json.loads((out / "run.json").read_text())
    population = run["continuous"]["population"]
    assert population["resampling"] == "nearest" and population["source_grid"]["pixel_size"] == [200.0, 200.0]
    assert population["quantity"] == "count" and run["continuous"]["npp"]["resampling"] == "none"


def test_population_from_the_command_line(study):
    (study / "study.toml").write_text(STUDY.replace('population = "pop.tif"\n', ""), encoding="utf-8")
    done = _run("run", study / "study.toml", "--scheduler", "synchronous", "--out", study / "out", "--population", study / "pop.tif")
    assert done.returncode == 0, done.stderr[-3000:]
    assert pd.read_csv(study / "out" / "demand_by_county.csv")["population"].sum() == pytest.approx(float(PEOPLE.sum()))


def test_check_refuses_a_raster_that_does_not_cover_the_region(study):
    # Only the left half of the people grid: the eastern counties (half the region) are outside it.
    write_tif(study / "pop.tif", PEOPLE[:, :2].copy(), transform=COARSE)
    done = _run("check", study / "study.toml")
    assert done.returncode == 2
    assert "[continuous] population" in done.stderr and "pop.tif does not cover the region: 50.00% of the counties' area" in done.stderr


def test_check_refuses_another_crs_without_resampling_and_negative_people(study):
    write_tif(study / "npp.tif", np.full((20, 20), 400.0, dtype=np.float32), transform=from_origin(104.9, 25.4, 0.01, 0.01), crs="EPSG:4326")
    write_tif(study / "pop.tif", np.where(PEOPLE == 60, -5, PEOPLE).astype(np.float32), transform=COARSE)
    done = _run("check", study / "study.toml")
    assert done.returncode == 2
    assert "[continuous] npp" in done.stderr and "differs from the land use's" in done.stderr and 'resampling = "nearest"' in done.stderr
    assert "pop.tif holds negative values (as low as -5 people per pixel)" in done.stderr


def test_a_study_without_table_or_population_raster_is_refused(study):
    (study / "study.toml").write_text(STUDY.replace('population = "pop.tif"\n', ""), encoding="utf-8")
    done = _run("check", study / "study.toml")
    assert done.returncode == 2 and "[demand] needs `table`" in done.stderr


def test_supply_command_sums_rasters_in_its_pass(study):
    assert _run("ingest", study / "lu.tif", "--out", study / "lu.zarr", "--scheduler", "synchronous").returncode == 0
    assert _run("zones", study / "counties.gpkg", "--like", study / "lu.zarr", "--id-field", "county", "--out", study / "z.zarr",
                "--scheduler", "synchronous").returncode == 0
    done = _run("supply", "--landuse", study / "lu.zarr", "--zones", study / "z.zarr", "--pools", study / "pools.csv", "--out",
                study / "s", "--population", study / "pop.tif", "--npp", study / "npp.tif", "--npp-units", "kg C m-2 yr-1",
                "--factor", study / "k_soil.tif", "--scheduler", "synchronous")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "population 396 people" in done.stdout
    values = pd.read_csv(study / "s" / "continuous_by_county.csv").set_index(["raster", "county"])
    assert values.loc[("population", "NE"), "sum"] == pytest.approx(220.0)
    assert values.loc[("population", "NE"), "mean"] == pytest.approx(220.0 / 0.16)  # people per km²
    # Every pool × 1.5 in the top half: NW 16 ha × 43 × 1.5.
    assert pd.read_csv(study / "s" / "supply_by_county.csv").set_index("county").loc["NW", "supply_t"] == pytest.approx(16 * 43 * 1.5)
    # 400 kg C m⁻² yr⁻¹ × 160,000 m² × 1e-3 = 64,000 t C/yr.
    assert pd.read_csv(study / "s" / "sequestration_by_county.csv").set_index("county").loc["SW", "sequestration_t_c"] == pytest.approx(64_000.0)


def test_check_says_how_each_raster_meets_the_land_use(study):
    done = _run("check", study / "study.toml")
    assert done.returncode == 0, done.stderr
    assert "continuous pop.tif: people per pixel, 4 × 4 pixels of 200 × 200" in done.stdout
    assert "resampled by nearest neighbour onto the land use's grid" in done.stdout
    assert "continuous npp.tif: NPP (g C m-2 yr-1)" in done.stdout and "on the land use's pixels" in done.stdout
    # The counties' share of the raster's pixels without a value, from check's own read.
    npp = np.full((8, 8), 400.0, dtype=np.float32)
    npp[:, :2] = -1.0
    write_tif(study / "npp.tif", npp, nodata=-1.0)
    done = _run("check", study / "study.toml")
    assert done.returncode == 0, done.stderr
    assert "on the land use's pixels; 25.00% of its 64 pixels over the counties without a value" in done.stdout
    assert "resampled by nearest neighbour onto the land use's grid; 0.00% of its 16 pixels over the counties without a value" in done.stdout


def test_a_raster_with_nodata_over_the_counties_is_reported(study):
    # NPP with nodata on the western quarter (water, towns: MODIS fill values): run warns, run.json records the share.
    npp = np.full((8, 8), 400.0, dtype=np.float32)
    npp[:, :2] = -1.0
    write_tif(study / "npp.tif", npp, nodata=-1.0)
    done = _run("run", study / "study.toml", "--scheduler", "synchronous", "--out", study / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "npp.tif ([continuous] npp) has no value on 25.00% of the counties' pixels" in done.stderr
    run = json.loads((study / "out" / "run.json").read_text())
    assert run["continuous"]["npp"]["pixels_without_value_share"] == pytest.approx(0.25)
    flux = pd.read_csv(study / "out" / "sequestration_by_county.csv").set_index("county")
    assert flux.loc["NW", "sequestration_t_c"] == pytest.approx(32.0) and flux.loc["NE", "sequestration_t_c"] == pytest.approx(64.0)


def test_check_refuses_a_county_left_without_values(study):
    # Nodata over the whole western half: NW and SW would get no sequestration at all.
    npp = np.full((8, 8), 400.0, dtype=np.float32)
    npp[:, :4] = -1.0
    write_tif(study / "npp.tif", npp, nodata=-1.0)
    done = _run("check", study / "study.toml")
    assert done.returncode == 2, done.stdout
    assert "[continuous] npp" in done.stderr and "holds no value (nodata -1) over 2 county(ies) (NW, SW): their sums would be 0" in done.stderr
    # The same fill without a declared nodata: a fill value, not data.
    write_tif(study / "npp.tif", np.where(npp < 0, -9999, npp).astype(np.float32))
    done = _run("check", study / "study.toml")
    assert done.returncode == 2 and "declares no nodata value and holds -9999" in done.stderr and "gdal_edit.py -a_nodata -9999" in done.stderr


def test_check_takes_the_population_raster_from_the_command_line(study):
    (study / "study.toml").write_text(STUDY.replace('population = "pop.tif"\n', ""), encoding="utf-8")
    assert _run("check", study / "study.toml").returncode == 2  # no table, no population raster
    done = _run("check", study / "study.toml", "--population", study / "pop.tif")
    assert done.returncode == 0, done.stderr
    assert "continuous pop.tif: people per pixel" in done.stdout
    # A people grid of the northern half only: half of the counties' area outside it, found before any compute.
    write_tif(study / "north.tif", PEOPLE[:2].copy(), transform=COARSE)
    done = _run("check", study / "study.toml", "--population", study / "north.tif")
    assert done.returncode == 2
    assert "[continuous] population" in done.stderr and "north.tif does not cover the region: 50.00% of the counties' area" in done.stderr
    assert "give a raster that covers every county" in done.stderr
    assert not (study / "results").exists() and not (study / "out").exists()


def test_corrected_densities_reach_the_pixel_maps_and_the_monte_carlo(study):
    """Soil × 1.5 in the top half (factor raster) and SE's above-ground × 2 (factor table): the carbon
    per pixel and the Monte Carlo's centre use the corrected densities, as the supply tables do."""
    pools = pd.DataFrame(POOLS, columns=["lucode", "c_above", "c_below", "c_soil", "c_dead"])
    for column in ("c_above", "c_below", "c_soil", "c_dead"):
        pools[f"{column}_sd"] = 0.0  # certain densities: every draw is the point estimate
    pools.to_csv(study / "pools.csv", index=False)
    pd.DataFrame({"county": list(QUADRANTS), "c_above": [1.0, 1.0, 1.0, 2.0]}).to_csv(study / "k.csv", index=False)
    text = STUDY.replace("maps = false", "maps = false\npixel_maps = true") + 'factor_table = "k.csv"\n\n[uncertainty]\ndraws = 50\n'
    (study / "study.toml").write_text(text, encoding="utf-8")
    done = _run("run", study / "study.toml", "--scheduler", "synchronous", "--out", study / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    out = study / "out"
    # Per pixel (t/ha): NW class 1 10 + 2 + 30·1.5 + 1 = 58; NE class 2 60 + 15 + 20·1.5 + 5 = 110; SW 43; SE 60·2 + 15 + 20 + 5 = 160.
    import rasterio

    with rasterio.open(out / "carbon_t_per_ha.tif") as src:
        carbon = src.read(1)
    expected = np.zeros((8, 8), dtype=np.float32)
    expected[:4, :4], expected[:4, 4:], expected[4:, :4], expected[4:, 4:] = 58, 110, 43, 160
    np.testing.assert_array_equal(carbon, expected)
    supply = pd.read_csv(out / "supply_by_county.csv").set_index("county")["supply_t"]
    hand = {"NW": 16 * 58.0, "NE": 16 * 110.0, "SW": 16 * 43.0, "SE": 16 * 160.0}
    assert supply.to_dict() == pytest.approx(hand)
    pairs = pd.read_csv(out / "supply_by_county_class.csv").set_index(["county", "lucode"])
    assert pairs.loc[("NW", 1), "factor_c_soil"] == pytest.approx(1.5) and pairs.loc[("SE", 2), "factor_c_above"] == pytest.approx(2.0)
    assert pairs.loc[("SW", 1), ["factor_c_above", "factor_c_below", "factor_c_soil", "factor_c_dead"]].tolist() == [1.0] * 4
    mc = pd.read_csv(out / "uncertainty_by_county.csv").set_index("county")
    for column in ("supply_t_mean", "supply_t_p05", "supply_t_p95"):
        assert mc[column].to_dict() == pytest.approx(hand), column
    assert "corrected" in json.loads((out / "run.json").read_text())["uncertainty"]["densities"]


def test_supply_command_draws_pixel_maps_of_the_corrected_densities(study):
    assert _run("ingest", study / "lu.tif", "--out", study / "lu.zarr", "--scheduler", "synchronous").returncode == 0
    assert _run("zones", study / "counties.gpkg", "--like", study / "lu.zarr", "--id-field", "county", "--out", study / "z.zarr",
                "--scheduler", "synchronous").returncode == 0
    done = _run("supply", "--landuse", study / "lu.zarr", "--zones", study / "z.zarr", "--pools", study / "pools.csv", "--out",
                study / "s", "--factor", study / "k_soil.tif", "--pixel-maps", "--scheduler", "synchronous")
    assert done.returncode == 0, done.stderr[-3000:]
    import rasterio

    with rasterio.open(study / "s" / "carbon_t_per_ha.tif") as src:
        carbon = src.read(1)
    # --factor multiplies every pool: × 1.5 in the top half.
    assert carbon[0, 0] == pytest.approx(43 * 1.5) and carbon[0, 7] == pytest.approx(150.0) and carbon[7, 0] == 43 and carbon[7, 7] == 100
    assert "carbon_cog" in done.stdout


def _stores(study):
    assert _run("ingest", study / "lu.tif", "--out", study / "lu.zarr", "--scheduler", "synchronous").returncode == 0
    assert _run("zones", study / "counties.gpkg", "--like", study / "lu.zarr", "--id-field", "county", "--out", study / "z.zarr",
                "--scheduler", "synchronous").returncode == 0


def _supply(study, *args):
    return _run("supply", "--landuse", study / "lu.zarr", "--pools", study / "pools.csv", "--out", study / "s", "--scheduler", "synchronous", *args)


def test_supply_refuses_a_population_raster_covering_half_the_region_as_check_does(study):
    _stores(study)
    write_tif(study / "pop_half.tif", PEOPLE[:, :2].copy(), transform=COARSE)  # the eastern counties lie outside it
    for where in (["--zones", study / "z.zarr"], ["--grid", 400]):
        done = _supply(study, *where, "--population", study / "pop_half.tif")
        assert done.returncode == 2, (where, done.stdout, done.stderr[-3000:])
        assert "--population: " in done.stderr and "pop_half.tif does not cover the region: 50.00% of the counties' area" in done.stderr
        assert not (study / "s").exists()  # refused before anything is computed or written
    # The whole raster passes (the region of the zone store is traced, not the land use's box).
    assert _supply(study, "--zones", study / "z.zarr", "--population", study / "pop.tif").returncode == 0


def test_supply_refuses_negative_people_before_computing_in_people_per_pixel(study):
    _stores(study)
    write_tif(study / "pop_neg.tif", np.where(PEOPLE == 60, -3, PEOPLE).astype(np.float32), transform=COARSE)
    for where in (["--zones", study / "z.zarr"], ["--grid", 400]):
        done = _supply(study, *where, "--population", study / "pop_neg.tif")
        assert done.returncode == 2, done.stderr[-3000:]
        assert "pop_neg.tif holds negative values (as low as -3 people per pixel)" in done.stderr, done.stderr
        assert "per m²" not in done.stderr and "Traceback" not in done.stderr and "Compute Failed" not in done.stderr


def test_supply_names_the_resampling_flag_as_a_flag_and_the_help_per_cell(study):
    _stores(study)
    write_tif(study / "pop_4326.tif", np.full((20, 20), 5.0, dtype=np.float32), transform=from_origin(104.9, 25.4, 0.01, 0.01), crs="EPSG:4326")
    done = _supply(study, "--zones", study / "z.zarr", "--population", study / "pop_4326.tif")
    assert done.returncode == 2 and "--resampling nearest" in done.stderr and '= "nearest"' not in done.stderr, done.stderr
    assert "differs from the land use's" in done.stderr
    helped = " ".join(_run("supply", "--help").stdout.split())
    assert "people per county in continuous_by_county.csv (with --grid: per cell" in helped


def test_corrected_densities_reach_the_cells_and_their_monte_carlo(study):
    """[units] grid = 300 (3 × 3 pixels; cell (1, 1) straddles all four counties) with the soil
    factor raster (× 1.5 in the top half) and SE's above-ground × 2 (a table): each pixel of a cell
    takes its own county's factor, so the cells' corrected supply sums to the counties'."""
    pools = pd.DataFrame(POOLS, columns=["lucode", "c_above", "c_below", "c_soil", "c_dead"])
    for column in ("c_above", "c_below", "c_soil", "c_dead"):
        pools[f"{column}_sd"] = 0.0  # certain densities: every draw is the point estimate
    pools.to_csv(study / "pools.csv", index=False)
    pd.DataFrame({"county": list(QUADRANTS), "c_above": [1.0, 1.0, 1.0, 2.0]}).to_csv(study / "k.csv", index=False)
    text = (STUDY.replace("[pools]", "[units]\ngrid = 300\n\n[pools]") + 'factor_table = "k.csv"\n\n[uncertainty]\ndraws = 50\n'
            "\n[statistics]\nenabled = false\n")
    (study / "study.toml").write_text(text, encoding="utf-8")
    done = _run("run", study / "study.toml", "--scheduler", "synchronous", "--out", study / "out")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "correct the counties' supply only" not in done.stderr  # the old warning
    out = study / "out"
    cells = pd.read_csv(out / "cells" / "supply_by_cell.csv").set_index(["row", "col"])
    # t/ha per pixel: NW 10 + 2 + 30·1.5 + 1 = 58; NE 60 + 15 + 20·1.5 + 5 = 110; SW 43; SE 60·2 + 15 + 20 + 5 = 160.
    # Cell (1, 1), pixels rows 3-5 × cols 3-5: (3,3) NW, (3,4) (3,5) NE, (4,3) (5,3) SW, the other four SE.
    assert cells.loc[(1, 1), "supply_t"] == pytest.approx(58 + 2 * 110 + 2 * 43 + 4 * 160)
    assert cells.loc[(1, 1), "supply_t_uncorrected"] == pytest.approx(43 + 2 * 100 + 2 * 43 + 4 * 100)
    assert cells.loc[(0, 0), "supply_t"] == pytest.approx(9 * 58)  # wholly in NW
    assert cells.loc[(2, 2), "supply_t"] == pytest.approx(4 * 160)  # the corner: 2 × 2 pixels of SE
    counties = pd.read_csv(out / "supply_by_county.csv")
    assert counties["supply_t"].sum() == pytest.approx(16 * (58 + 110 + 43 + 160))
    assert cells["supply_t"].sum() == pytest.approx(counties["supply_t"].sum(), rel=1e-12)
    assert cells["supply_t_uncorrected"].sum() == pytest.approx(counties["supply_t_uncorrected"].sum(), rel=1e-12)
    ratio = pd.read_csv(out / "cells" / "ratio_zones_by_cell.csv").set_index(["row", "col"])
    assert ratio.loc[(1, 1), "supply_t"] == pytest.approx(1004.0)  # the ratio uses the corrected supply
    # The cells' Monte Carlo centres on the corrected densities (spreads 0: every draw is the corrected supply).
    mc = pd.read_csv(out / "cells" / "uncertainty_by_cell.csv").set_index("cell")
    by_id = ratio.reset_index().set_index("cell")["supply_t"]
    for column in ("supply_t_mean", "supply_t_p05", "supply_t_p95"):
        np.testing.assert_allclose(mc[column].to_numpy(), by_id.reindex(mc.index).to_numpy(), rtol=1e-9, err_msg=column)
    run = json.loads((out / "run.json").read_text())
    assert run["cells"]["density_correction"] == {"pools": ["c_above", "c_soil"]}
