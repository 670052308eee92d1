"""A study with `[units] grid`: the cell analysis end to end, against numpy block sums of the
rasters and esda run directly on libpysal's own lattice weights; `check` on bad grid settings."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from carbonscape import check_study, run_study
from carbonscape.cli.main import cli
from carbonscape.rasterize import open_zones
from carbonscape.spatial import lattice_weights
from click.testing import CliRunner
from conftest import DEMAND_ZONING, REGION_INPUTS
from esda.moran import Moran
from libpysal.weights import lat2W, w_subset

# 400 × 380 pixels of 30 m; cells of 600 m = 20 × 20 pixels: 20 × 19 cells. Chunks of 256 pixels are
# not whole cells, so cells astride chunk edges are summed from partial tables.
STUDY = """
[study]
name = "Cells"
""" + REGION_INPUTS.replace('path = "region/pools.csv"', 'path = "pools.csv"') + """
[units]
grid = 600
""" + DEMAND_ZONING + """
[statistics]
permutations = 199
seed = 3

[uncertainty]
draws = 200
seed = 8

[outputs]
maps = true
report = true
"""
CELL = 20


@pytest.fixture(scope="module")
def study_dir(small_study):
    made = small_study("cells_study", STUDY, shape=(400, 380), n_counties=12, seed=5,
                       population=lambda n: np.random.default_rng(1).integers(5_000, 90_000, n))
    base = made.base
    pools = pd.read_csv(made.region.pools)
    for pool in ("above", "below", "soil", "dead"):
        pools[f"c_{pool}_sd"] = pools[f"c_{pool}"] * 0.1
    pools.to_csv(base / "pools.csv", index=False)
    return base


@pytest.fixture(scope="module")
def result(study_dir):
    return run_study(study_dir / "study.toml", scheduler="threads")


def _blocks(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Sums of CELL × CELL blocks, the raster padded with zeros to whole cells."""
    padded = np.zeros((shape[0] * CELL, shape[1] * CELL), dtype=np.float64)
    padded[: array.shape[0], : array.shape[1]] = array
    return padded.reshape(shape[0], CELL, shape[1], CELL).sum(axis=(1, 3))


def test_cell_supply_and_demand_equal_numpy_block_sums(study_dir, result):
    out = study_dir / "results" / "cells"
    table = pd.read_csv(out / "ratio_zones_by_cell.csv")
    with rasterio.open(study_dir / "region" / "landuse.tif") as src:
        codes = src.read(1)
    pools = pd.read_csv(study_dir / "pools.csv").set_index("lucode")
    density_t_ha = (pools[["c_above", "c_below", "c_soil", "c_dead"]].sum(axis=1))
    per_pixel = np.zeros(codes.shape)
    for code, d in density_t_ha.items():
        per_pixel[codes == code] = d * 0.09  # 30 m pixels: 0.09 ha (UTM in its zone: nominal areas)
    shape = (20, 19)
    store, zone_table = open_zones(study_dir / "results" / "stores" / "zones.zarr")
    ids = np.asarray(store.data)
    # Only the pixels inside the counties count: a cell on the region's edge holds its part inside.
    supply = _blocks(per_pixel * (ids > 0), shape)
    np.testing.assert_allclose(table["supply_t"], supply[table["row"], table["col"]], rtol=1e-9)
    # Demand: each pixel in a county takes that county's demand density; a cell's is their mean
    # (equal pixel areas), over its pixels in counties only.
    county_density = result.demand["demand_t_per_km2"]
    lookup = np.zeros(zone_table.n_zones)
    for zone_id, key in zip(zone_table.ids, zone_table.values):
        lookup[zone_id] = county_density[str(key)]
    inside = ids > 0
    mean = _blocks(lookup[ids] * inside, shape) / np.maximum(_blocks(inside, shape), 1)
    np.testing.assert_allclose(table["demand_t_per_km2"], mean[table["row"], table["col"]], rtol=1e-9)
    # Only cells holding county land are analysed; the others are in supply_by_cell.csv alone.
    held = _blocks(inside, shape) > 0
    assert set(zip(table["row"], table["col"])) == set(zip(*np.nonzero(held & (_blocks(codes != 255, shape) > 0))))
    assert len(pd.read_csv(out / "supply_by_cell.csv")) == len(table)
    # The cells' totals are the counties' (the counties leave part of the raster out), and
    # region_share is the share of each cell's pixels inside the counties (equal pixel areas).
    assert (ids == 0).sum() > 0.05 * ids.size and 0 < (supply > 0).sum()
    assert _blocks(per_pixel * (ids == 0), shape).sum() > 0.01 * supply.sum()  # enough land outside to tell
    counties = pd.read_csv(study_dir / "results" / "supply_by_county.csv")
    np.testing.assert_allclose(table["supply_t"].sum(), counties["supply_t"].sum(), rtol=1e-9)
    np.testing.assert_allclose(table["supply_t"].sum(), per_pixel[ids > 0].sum(), rtol=1e-9)
    by_cell = pd.read_csv(out / "supply_by_cell.csv")
    whole = _blocks(np.ones(codes.shape), shape)
    np.testing.assert_allclose(by_cell["region_share"], (_blocks(inside, shape) / whole)[by_cell["row"], by_cell["col"]], rtol=1e-9)
    assert (by_cell["region_share"] < 1).any() and (by_cell["region_share"] == 1).any()
    # Ratio = emissions over supply (co2_per_c): demand density × area / supply.
    np.testing.assert_allclose(table["ratio"], table["demand_t_per_km2"] * table["area_km2"] / table["supply_t"], rtol=1e-9)
    assert {"esdr", "balance", "quadrant", "ccd", "class", "zone"} <= set(table.columns)


def test_cell_statistics_equal_esda_on_libpysal_lattice_weights(study_dir, result):
    out = study_dir / "results" / "cells"
    table = pd.read_csv(out / "ratio_zones_by_cell.csv")
    moran = pd.read_csv(out / "moran.csv").set_index("variable")
    # Independent weights: libpysal's own queen lattice over the whole grid, cut to the cells.
    whole = lat2W(20, 19, rook=False)
    w = w_subset(whole, table["cell"].tolist())
    w.transform = "R"
    for variable in ("supply_t_per_km2", "demand_t_per_km2", "ratio"):
        values = table[variable].to_numpy(dtype=float)
        np.random.seed(3)
        expected = Moran(values, w, permutations=199)
        assert moran.loc[variable, "I"] == pytest.approx(expected.I, rel=1e-9)
        assert moran.loc[variable, "EI"] == pytest.approx(expected.EI, rel=1e-12)
        assert moran.loc[variable, "p_sim"] == pytest.approx(expected.p_sim)
    lisa = pd.read_csv(out / "lisa.csv")
    assert set(lisa["cluster"]) <= {"HH", "LL", "HL", "LH", "not significant"} and len(lisa) == 3 * len(table)
    assert json.loads((study_dir / "results" / "run.json").read_text())["cells"]["statistics"]["weights"] == "queen"


def test_lattice_weights_are_libpysal_s_lattice_cut_to_the_cells():
    rng = np.random.default_rng(2)
    shape = (7, 9)
    keep = np.sort(rng.choice(63, size=40, replace=False))
    rows, cols = keep // 9, keep % 9
    for kind, rook in (("queen", False), ("rook", True)):
        got = lattice_weights(rows, cols, shape, kind=kind)
        expected = w_subset(lat2W(*shape, rook=rook), keep.tolist(), silence_warnings=True)
        assert got.id_order == keep.tolist()
        assert {k: sorted(v) for k, v in got.neighbors.items()} == {k: sorted(v) for k, v in expected.neighbors.items()}
        assert got.transform == "R"


def test_cell_geotiffs_hold_the_table_s_values(study_dir, result):
    out = study_dir / "results" / "cells"
    table = pd.read_csv(out / "ratio_zones_by_cell.csv")
    for file, column in (("cell_ratio.tif", "ratio"), ("cell_demand_t_per_km2.tif", "demand_t_per_km2"), ("cell_class.tif", "class")):
        with rasterio.open(out / file) as src:
            band = src.read(1)
            assert src.transform.a == 600 and band.shape == (20, 19)
        np.testing.assert_allclose(band[table["row"], table["col"]], table[column], rtol=1e-6)
    for stem in ("cells_supply_demand", "cells_ratio_zones", "cells_matching", "cells_lisa_clusters", "cells_hotspots", "cells_zone_stability"):
        assert (out / "maps" / f"{stem}.png").stat().st_size > 10_000, stem
    cells = gpd.read_file(out / "cells.gpkg", layer="cells")
    assert {"supply_t", "ratio", "zone", "esdr"} <= set(cells.columns)
    uncertainty = pd.read_csv(out / "uncertainty_by_cell.csv")
    assert len(uncertainty) == len(table) and "p_zone_class_1" in uncertainty.columns
    assert "Grid cells (cells/)" in (study_dir / "results" / "report.html").read_text(encoding="utf-8")


def _check(study_dir, old: str, new: str) -> list[str]:
    path = study_dir / "bad.toml"
    path.write_text(STUDY.replace(old, new), encoding="utf-8")
    return check_study(path, out=study_dir / "bad-results")


def test_check_refuses_a_grid_that_is_not_whole_pixels_and_too_few_cells_for_the_zones(study_dir):
    problems = _check(study_dir, "grid = 600", "grid = 615")
    assert any("[units] grid 615 is not a multiple of the pixel size 30" in p and "use 600 or 630" in p for p in problems), problems
    assert _check(study_dir, "permutations = 199", "permutations = 199\nenabled = true") == []
    assert _check(study_dir, "grid = 600", "grid = 6000") == []  # 2 × 2 cells: the statistics are left out unless asked for
    (study_dir / "bad.toml").write_text(STUDY.replace("grid = 600", "grid = 615"), encoding="utf-8")
    done = CliRunner().invoke(cli, ["check", str(study_dir / "bad.toml")])
    assert done.exit_code == 2 and "[units] grid 615" in done.output
    # More classes than cells: 400 × 380 pixels of 30 m in cells of 6000 m are 2 × 2 = 4 cells; k = 5 is refused, k = 4 passes.
    # The largest grid giving 5 cells or more: 5970 m (199 pixels: 3 × 2 cells); 6000 m (200 pixels) gives 2 × 2.
    (study_dir / "many.toml").write_text(STUDY.replace("grid = 600", "grid = 6000").replace("k = 3", "k = 5"), encoding="utf-8")
    done = CliRunner().invoke(cli, ["check", str(study_dir / "many.toml")])
    said = " ".join(done.output.split())
    assert done.exit_code == 2 and "[zoning] k = 5 ratio classes need at least 5 cells" in said, said
    assert "[units] grid = 6000 gives 4 cell(s) (2 × 2)" in said and "use [zoning] k = 4 or less" in said and "at most 5970" in said, said
    text = STUDY.replace("grid = 600", "grid = 6000").replace("k = 3", "k = 4")
    (study_dir / "four.toml").write_text(text, encoding="utf-8")
    assert check_study(study_dir / "four.toml", out=study_dir / "four-results") == []


def test_statistics_asked_for_with_too_few_cells_leave_out_only_the_cells_statistics(study_dir, tmp_path):
    """[statistics] enabled = true with 4 cells: `check` passes and says the cells' statistics will
    be left out; `run` makes the counties' statistics and the cells' analysis, without the cells'
    Moran/LISA/Gi*, and says so in the log, run.json, the command's summary and the report."""
    from carbonscape.study import check_report

    text = (STUDY.replace("grid = 600", "grid = 6000").replace("permutations = 199", "permutations = 199\nenabled = true")
            .replace("maps = true", "maps = false"))
    (study_dir / "few.toml").write_text(text, encoding="utf-8")
    out = tmp_path / "few-results"
    problems, lines = check_report(study_dir / "few.toml", out=out)
    assert problems == []
    said = " ".join(" ".join(lines).split())
    assert "[units] grid = 6000: 4 cells (2 × 2, 200 pixels a side)" in said, said
    assert "spatial statistics of the cells left out: [units] grid = 6000 gives 4 cell(s) over the land use" in said, said
    assert "the counties' statistics are unaffected" in said and "use a smaller [units] grid" in said, said
    done = CliRunner().invoke(cli, ["run", str(study_dir / "few.toml"), "--out", str(out), "--scheduler", "synchronous"])
    assert done.exit_code == 0, done.output
    summary = " ".join(done.output.split())
    assert "moran " in summary and "spatial statistics of the cells left out: [units] grid = 6000 gives 4 cell(s) with land" in summary, summary
    for name in ("moran.csv", "lisa.csv", "hotspots.csv"):
        assert (out / name).exists() and not (out / "cells" / name).exists(), name
    assert (out / "cells" / "ratio_zones_by_cell.csv").exists()
    info = json.loads((out / "run.json").read_text())
    assert info["statistics"]["permutations"] == 199  # the counties' statistics ran
    assert "statistics" not in info["cells"] and "4 cell(s) with land" in info["cells"]["statistics_left_out"]
    page = " ".join((out / "report.html").read_text(encoding="utf-8").split())
    assert "grid-cell statistics" in page and "4 cell(s) with land" in page


def test_cells_without_counties_say_what_is_missing(study_dir):
    text = STUDY.replace('[counties]\npath = "region/counties.gpkg"\nid_field = "county"\n', "")
    (study_dir / "nocounties.toml").write_text(text, encoding="utf-8")
    problems = check_study(study_dir / "nocounties.toml", out=study_dir / "nc-results")
    assert any("[units] grid needs the cells' population" in p and "population raster" in p for p in problems), problems


# The same region with a population raster (people per pixel, on the land-use grid, some nodata) and
# no county table: each cell's demand is its own people × the per-capita emission over its land area.
POPULATION_STUDY = (STUDY.replace('table = "population.csv"\nkey = "county"\n', "")
                    .replace("[outputs]\nmaps = true\nreport = true", "[outputs]\nmaps = false\nreport = false")
                    + '\n[continuous]\npopulation = "people.tif"\nnpp = "npp.tif"\n')


@pytest.fixture(scope="module")
def population_dir(study_dir, tmp_path_factory):
    base = tmp_path_factory.mktemp("cells_population")
    import shutil

    shutil.copytree(study_dir / "region", base / "region")
    shutil.copy(study_dir / "pools.csv", base / "pools.csv")
    with rasterio.open(base / "region" / "landuse.tif") as src:
        profile = {**src.profile, "dtype": "float32", "nodata": -1.0, "compress": "deflate"}
    rng = np.random.default_rng(11)
    people = rng.gamma(2.0, 3.0, size=(400, 380)).astype(np.float32)
    people[rng.random(people.shape) < 0.05] = -1.0  # nodata: no people counted there
    npp = rng.uniform(200, 800, size=(400, 380)).astype(np.float32)
    for name, band in (("people.tif", people), ("npp.tif", npp)):
        with rasterio.open(base / name, "w", **profile) as dst:
            dst.write(band, 1)
    (base / "study.toml").write_text(POPULATION_STUDY, encoding="utf-8")
    return base


@pytest.fixture(scope="module")
def population_result(population_dir):
    return run_study(population_dir / "study.toml", scheduler="threads")


def test_population_per_cell_equals_numpy_block_sums_of_the_raster(population_dir, population_result):
    out = population_dir / "results" / "cells"
    table = pd.read_csv(out / "ratio_zones_by_cell.csv")
    with rasterio.open(population_dir / "people.tif") as src:
        people = src.read(1).astype(np.float64)
    with rasterio.open(population_dir / "npp.tif") as src:
        npp = src.read(1).astype(np.float64)
    shape = (20, 19)
    ids = np.asarray(open_zones(population_dir / "results" / "stores" / "zones.zarr")[0].data)
    expected = _blocks(np.where((people >= 0) & (ids > 0), people, 0.0), shape)
    np.testing.assert_allclose(table["population"], expected[table["row"], table["col"]], rtol=1e-6)
    # Demand: the cell's people × 4 t CO2 over its land area (30 m pixels of land: 0.0009 km² each).
    with rasterio.open(population_dir / "region" / "landuse.tif") as src:
        land = _blocks(((src.read(1) != 255) & (ids > 0)).astype(np.float64), shape) * 0.0009
    np.testing.assert_allclose(table["demand_t_per_km2"], 4.0 * expected[table["row"], table["col"]] / land[table["row"], table["col"]],
                               rtol=1e-6)
    np.testing.assert_allclose(table["emissions_t"], 4.0 * table["population"], rtol=1e-9)
    # NPP (g C m-2 yr-1) × 900 m² a pixel × 1e-6 t/g, summed per cell.
    np.testing.assert_allclose(table["sequestration_t_c"], (_blocks(npp * (ids > 0), shape) * 900e-6)[table["row"], table["col"]], rtol=1e-6)
    values = pd.read_csv(out / "continuous_by_cell.csv")
    assert set(values["raster"]) == {"population", "npp"}
    population = values[values["raster"] == "population"].set_index("cell")
    np.testing.assert_allclose(population["sum"], expected.ravel()[population.index], rtol=1e-6)
    info = json.loads((population_dir / "results" / "run.json").read_text())["cells"]
    assert info["demand_source"] == "population"
    with rasterio.open(out / "cell_population.tif") as src:
        np.testing.assert_allclose(src.read(1)[table["row"], table["col"]], table["population"], rtol=1e-6)  # float32
    # The counties' people are the same raster's: the cells hold the counties' people, no more (the
    # pixels outside the counties are left out of the cells on the region's edge).
    counties = pd.read_csv(population_dir / "results" / "demand_by_county.csv")
    assert np.where(people >= 0, people, 0.0)[ids == 0].sum() > 0.01 * expected.sum()  # people outside to leave out
    np.testing.assert_allclose(table["population"].sum(), counties["population"].sum(), rtol=1e-6)


def _copy_results(study_dir, tmp_path):
    import shutil

    folder = tmp_path / "results"
    shutil.copytree(study_dir / "results", folder, ignore=shutil.ignore_patterns("stores"))
    return folder


def test_cells_stage_reproduces_the_run_s_cell_tables(study_dir, result, tmp_path):
    folder = _copy_results(study_dir, tmp_path)
    original = folder / "cells"
    before = {name: pd.read_csv(original / name) for name in ("ratio_zones_by_cell.csv", "moran.csv", "lisa.csv", "hotspots.csv")}
    uncertainty_before = pd.read_csv(original / "uncertainty_by_cell.csv")
    for name in ("moran.csv", "lisa.csv", "hotspots.csv", "uncertainty_by_cell.csv", "cell_ratio.tif"):
        (original / name).unlink()
    # The stage reads the cells' supply and demand; what it makes of them is spoiled here and must come back.
    spoiled = pd.read_csv(original / "ratio_zones_by_cell.csv")
    spoiled[["ratio", "class", "esdr", "ccd"]] = 0
    spoiled["zone"] = "x"
    spoiled.to_csv(original / "ratio_zones_by_cell.csv", index=False)
    done = CliRunner().invoke(cli, ["cells", str(folder), "--pools", str(study_dir / "pools.csv"), "--no-maps"])
    assert done.exit_code == 0, done.output
    # It prints what the cells used, not the counties' summary.
    assert "200 draws" in done.output and "counties" not in done.output, done.output
    assert "cells of 600 m," in done.output and "jenks k = 3" in done.output, done.output
    # The same tables (numbers to the CSVs' 10 digits: the stage starts from the written supply and demand).
    # The coupling indices take square roots of min-max normalised densities: a cell at the minimum
    # supply density within rounding (1e-9) gets a coupling of ~1e-4 from the run's unrounded values and 0 here.
    for name, frame in before.items():
        again = pd.read_csv(original / name)
        rooted = [c for c in ("coupling", "ccd") if c in frame.columns]
        pd.testing.assert_frame_equal(again.drop(columns=rooted), frame.drop(columns=rooted), rtol=1e-8, atol=1e-4, obj=name)
        pd.testing.assert_frame_equal(again[rooted], frame[rooted], atol=1e-3, obj=name)
    # The Monte Carlo draws over per-class areas rebuilt from the per-class supply (10 digits in the CSV).
    pd.testing.assert_frame_equal(pd.read_csv(original / "uncertainty_by_cell.csv"), uncertainty_before, rtol=1e-7)
    assert (original / "cell_ratio.tif").exists()
    # Another setting gives another analysis, recorded in run.json.
    done = CliRunner().invoke(cli, ["cells", str(folder), "--k", "2", "--no-statistics", "--no-maps"])
    assert done.exit_code == 0, done.output
    table = pd.read_csv(original / "ratio_zones_by_cell.csv")
    assert set(table["class"]) <= {1, 2} and json.loads((folder / "run.json").read_text())["cells"]["zoning"]["k"] == 2


def test_cells_stage_names_the_flags_and_takes_k_from_the_breaks(study_dir, result, tmp_path):
    folder = _copy_results(study_dir, tmp_path)
    info = json.loads((folder / "run.json").read_text())
    info["zoning"]["scheme"] = "four_zones"  # as a run with the default scheme (7 classes)
    (folder / "run.json").write_text(json.dumps(info))
    bad = CliRunner().invoke(cli, ["cells", str(folder), "--k", "5", "--no-maps", "--no-statistics"])
    said = " ".join(bad.output.split())
    assert bad.exit_code == 2, said
    assert "--k 5" in said and "--scheme classes" in said and "'four_zones' (the run's)" in said, said
    assert "run.json: [zoning]" not in said and 'scheme = "classes"' not in said, said
    wrong = CliRunner().invoke(cli, ["cells", str(folder), "--k", "5", "--scheme", "four_zones", "--no-maps", "--no-statistics"])
    assert wrong.exit_code == 2 and "--scheme four_zones is made for 7 classes, not --k 5" in " ".join(wrong.output.split()), wrong.output
    # README's example runs.
    done = CliRunner().invoke(cli, ["cells", str(folder), "--k", "5", "--scheme", "classes", "--no-maps", "--no-statistics",
                                    "--pools", str(study_dir / "pools.csv"), "--draws", "300"])
    assert done.exit_code == 0, done.output
    # stdout says what the cells used: 300 draws (the run's counties had 200), k = 5.
    assert "300 draws" in done.output and "200 draws" not in done.output and "k = 5, scheme classes" in done.output, done.output
    assert json.loads((folder / "run.json").read_text())["cells"]["zoning"]["k"] == 5
    # --breaks: manual zoning with k from the edges (3 edges: 2 classes).
    ratio = pd.read_csv(folder / "cells" / "ratio_zones_by_cell.csv")["ratio"]
    edges = f"{ratio.min():.6g},{ratio.median():.6g},{ratio.max() * 1.01:.6g}"
    manual = CliRunner().invoke(cli, ["cells", str(folder), "--method", "manual", "--breaks", edges, "--scheme", "classes", "--no-maps",
                                      "--no-statistics"])
    assert manual.exit_code == 0, manual.output
    recorded = json.loads((folder / "run.json").read_text())["cells"]["zoning"]
    assert recorded["k"] == 2 and recorded["method"] == "manual"
    assert set(pd.read_csv(folder / "cells" / "ratio_zones_by_cell.csv")["class"]) <= {0, 1, 2}
    clash = CliRunner().invoke(cli, ["cells", str(folder), "--breaks", edges, "--k", "4", "--no-maps"])
    assert clash.exit_code == 2 and "not --k 4" in clash.output, clash.output


def test_cells_stage_refuses_a_folder_without_cells(study_dir, tmp_path):
    folder = _copy_results(study_dir, tmp_path)
    import shutil

    shutil.rmtree(folder / "cells")
    done = CliRunner().invoke(cli, ["cells", str(folder)])
    assert done.exit_code == 2 and "[units] grid" in done.output


def test_report_from_disk_shows_the_cell_tables(study_dir, result, tmp_path):
    from carbonscape import read_outputs

    folder = _copy_results(study_dir, tmp_path)
    back = read_outputs(folder)
    assert back.cells is not None
    pd.testing.assert_frame_equal(back.cells.statistics.moran, result.cells.statistics.moran, check_dtype=False, rtol=1e-9)
    assert back.cells.cells.grid.shape == result.cells.cells.grid.shape and back.cells.cells.cell == CELL
    assert len(back.cells.table) == len(result.cells.table)
    (folder / "report.html").unlink()
    done = CliRunner().invoke(cli, ["report", str(folder)])
    assert done.exit_code == 0, done.output
    page = (folder / "report.html").read_text(encoding="utf-8")
    assert 'id="cells-moran"' in page and "Grid cells (cells/)" in page
    section = page[page.index('id="cells-moran"'):]
    assert f"{result.cells.statistics.moran['I'].iloc[0]:.3f}"[:4] in section[:3000]
