"""A study with matching indices, spatial statistics and density uncertainty, run and checked from its file."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from carbonscape import check_study, run_study
from carbonscape.matching import matching_indices
from conftest import DEMAND_ZONING, REGION_INPUTS
from esda.moran import Moran
from libpysal.weights import Queen

# The region's inputs but the pools: pools.csv, the region's with spreads (study_dir).
STUDY = """
[study]
name = "Second half"
""" + REGION_INPUTS.replace('path = "region/pools.csv"', 'path = "pools.csv"') + """""" + DEMAND_ZONING + """
[matching]
supply_weight = 0.6
demand_weight = 0.4

[statistics]
permutations = 199
seed = 3

[uncertainty]
draws = 300
seed = 8

[outputs]
maps = true
report = false
"""


@pytest.fixture(scope="module")
def study_dir(small_study):
    made = small_study("second_half", STUDY, shape=(400, 380), n_counties=12, seed=5,
                       population=lambda n: np.random.default_rng(1).integers(5_000, 90_000, n))
    base, region = made.base, made.region
    pools = pd.read_csv(region.pools)
    for pool in ("above", "below", "soil", "dead"):
        pools[f"c_{pool}_sd"] = pools[f"c_{pool}"] * 0.1
    pools.to_csv(base / "pools.csv", index=False)
    return base


@pytest.fixture(scope="module")
def result(study_dir):
    return run_study(study_dir / "study.toml", scheduler="threads")


def test_ratio_zones_gain_the_matching_columns(study_dir, result):
    table = pd.read_csv(study_dir / "results" / "ratio_zones.csv").set_index("county")
    columns = list(table.columns)  # the matching block, in this order (the coverage columns follow it)
    start = columns.index("balance")
    assert columns[start:start + 7] == ["balance", "esdr", "z_supply", "z_demand", "quadrant", "coupling", "ccd"]
    expected = matching_indices(table, alpha=0.6, beta=0.4)
    np.testing.assert_allclose(table["ccd"], expected["ccd"], rtol=1e-8)
    # The CSV keeps 10 significant digits of each density, so their difference is good to ~1e-5 t/km².
    np.testing.assert_allclose(table["balance"], table["supply_t_per_km2"] - table["demand_t_per_km2"], atol=1e-3)
    assert set(table["quadrant"]) <= {"HS-HD", "HS-LD", "LS-HD", "LS-LD"}


def test_spatial_statistics_of_the_counties_equal_esda(study_dir, result):
    out = study_dir / "results"
    moran = pd.read_csv(out / "moran.csv").set_index("variable")
    counties = gpd.read_file(out / "counties.gpkg").set_index("county")
    ratio = pd.read_csv(out / "ratio_zones.csv").set_index("county").reindex(counties.index)
    w = Queen.from_dataframe(counties, use_index=True)
    w.transform = "R"
    np.random.seed(3)
    direct = Moran(ratio["supply_t_per_km2"].to_numpy(), w, permutations=199)
    assert moran.loc["supply_t_per_km2", "I"] == pytest.approx(direct.I, rel=1e-8)  # moran.csv keeps 10 significant digits
    assert moran.loc["supply_t_per_km2", "p_sim"] == pytest.approx(direct.p_sim)
    lisa = pd.read_csv(out / "lisa.csv")
    assert set(lisa["county"]) == set(counties.index) and set(lisa["variable"]) == {"supply_t_per_km2", "demand_t_per_km2", "ratio"}
    assert (out / "hotspots.csv").exists()
    run = json.loads((out / "run.json").read_text())
    assert run["statistics"]["permutations"] == 199 and run["statistics"]["weights"] == "queen"


def test_uncertainty_by_county(study_dir, result):
    out = study_dir / "results"
    table = pd.read_csv(out / "uncertainty_by_county.csv").set_index("county")
    ratio = pd.read_csv(out / "ratio_zones.csv").set_index("county")
    assert list(table.columns[:6]) == ["supply_t_mean", "supply_t_sd", "supply_t_p05", "supply_t_p95", "ratio_p05", "ratio_p95"]
    assert set(table.index) == set(ratio.index)
    # 10 % sd on every pool: the point supply lies inside the 5–95 % interval, the mean within 4 standard errors.
    supply = ratio["supply_t"].reindex(table.index)
    assert ((table["supply_t_p05"] < supply) & (supply < table["supply_t_p95"])).all()
    assert (np.abs(table["supply_t_mean"] - supply) < 4 * table["supply_t_sd"] / np.sqrt(300)).all()
    zones = [c for c in table.columns if c.startswith("p_zone_")]
    assert zones == ["p_zone_class_3", "p_zone_class_2", "p_zone_class_1"] or set(zones) == {"p_zone_class_1", "p_zone_class_2", "p_zone_class_3"}
    np.testing.assert_allclose(table[zones].sum(axis=1), 1.0)
    assert json.loads((out / "run.json").read_text())["uncertainty"]["draws"] == 300


def test_the_maps_of_the_second_half_are_drawn(study_dir, result):
    maps = study_dir / "results" / "maps"
    for stem in ("matching_quadrants", "matching_balance", "lisa_clusters", "hotspots", "zone_stability"):
        assert (maps / f"{stem}.png").stat().st_size > 10_000, stem


def _problems(study_dir, text: str, old: str, new: str, tmp_name: str = "bad.toml") -> list[str]:
    path = study_dir / tmp_name
    path.write_text(text.replace(old, new), encoding="utf-8")
    # Its own output folder: the fixture's results belong to study.toml, and check refuses another's.
    return check_study(path, out=study_dir / f"{path.stem}-results")


def test_check_finds_bad_second_half_settings(study_dir):
    problems = _problems(study_dir, STUDY, "supply_weight = 0.6", "supply_weight = 0.9")
    assert any("[matching]" in p and "sum to 1" in p for p in problems), problems
    problems = _problems(study_dir, STUDY, "permutations = 199", 'permutations = 199\nweights = "distance"')
    assert any("[statistics] weights 'distance'" in p and "queen" in p for p in problems), problems
    problems = _problems(study_dir, STUDY, "draws = 300", "draws = 5")
    assert any("[uncertainty] `draws`" in p for p in problems), problems


def test_check_finds_bad_spreads_and_missing_ones(study_dir):
    pools = pd.read_csv(study_dir / "pools.csv")
    pools.loc[0, "c_soil_sd"] = -2.0
    pools.to_csv(study_dir / "bad_pools.csv", index=False)
    problems = _problems(study_dir, STUDY, 'path = "pools.csv"', 'path = "bad_pools.csv"')
    assert any("c_soil_sd = -2 is negative" in p and "bad_pools.csv" in p for p in problems), problems
    problems = _problems(study_dir, STUDY, 'path = "pools.csv"', 'path = "region/pools.csv"').copy()
    assert problems == []  # no spreads, [uncertainty] not forced on: the Monte Carlo is left out
    problems = _problems(study_dir, STUDY, 'path = "pools.csv"', 'path = "region/pools.csv"').copy()
    forced = _problems(study_dir, STUDY.replace('path = "pools.csv"', 'path = "region/pools.csv"'), "draws = 300", "draws = 300\nenabled = true")
    assert any("[uncertainty] enabled = true" in p and "c_above_sd" in p for p in forced), forced


def test_check_refuses_statistics_on_too_few_counties(small_study):
    text = STUDY.replace("k = 3", "k = 2").replace("[statistics]", "[statistics]\nenabled = true")
    made = small_study("few", text, shape=(200, 200), n_counties=3, seed=2, population=lambda n: np.full(n, 1000))
    pd.read_csv(made.region.pools).to_csv(made.base / "pools.csv", index=False)
    problems = check_study(made.study)
    assert any("[statistics] enabled = true needs at least 5 counties" in p and "has 3" in p for p in problems), problems


def test_the_result_names_the_files_where_they_ended_up(study_dir, result):
    out = (study_dir / "results").absolute()
    assert result.statistics.files["moran"] == out / "moran.csv" and result.uncertainty.files["uncertainty"] == out / "uncertainty_by_county.csv"
    assert result.files["lisa"].exists() and result.files["uncertainty"].exists()


def test_the_command_line_flags_set_the_draws_and_the_statistics(study_dir):
    from carbonscape.cli.main import cli
    from click.testing import CliRunner

    runner = CliRunner()
    out = study_dir / "cli_out"
    done = runner.invoke(cli, ["run", str(study_dir / "study.toml"), "--out", str(out), "--no-maps", "--no-statistics",
                               "--draws", "50", "--seed", "4", "--scheduler", "threads"])
    assert done.exit_code == 0, done.output
    assert "50 draws" in done.output and "moran" not in done.output
    assert not (out / "moran.csv").exists() and (out / "uncertainty_by_county.csv").exists()
    assert json.loads((out / "run.json").read_text())["uncertainty"]["seed"] == 4
    bad = runner.invoke(cli, ["run", str(study_dir / "study.toml"), "--out", str(study_dir / "bad_out"), "--draws", "5"])
    assert bad.exit_code == 2 and "[uncertainty] `draws` must be an integer >= 20, not 5" in bad.output, bad.output


def test_the_statistics_command_with_spreads_on_a_run_folder_equals_the_run(study_dir, result, tmp_path):
    """`carbonscape statistics DIR --pools` (the README's uncertainty command) on a copy of a run's
    folder: the Monte Carlo read back from disk equals the run's own for the same draws and seed."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    folder = tmp_path / "results"
    shutil.copytree(study_dir / "results", folder)
    (folder / "uncertainty_by_county.csv").unlink()
    for pools in ("pools.csv", "pools_min_max.csv"):
        if pools == "pools_min_max.csv":  # the same spreads as a uniform min/max table: the command runs too
            table = pd.read_csv(study_dir / "pools.csv")
            for pool in ("above", "below", "soil", "dead"):
                sd = table.pop(f"c_{pool}_sd")
                table[f"c_{pool}_min"], table[f"c_{pool}_max"] = table[f"c_{pool}"] - sd, table[f"c_{pool}"] + sd
            table.to_csv(tmp_path / pools, index=False)
        source = study_dir / pools if pools == "pools.csv" else tmp_path / pools
        done = subprocess.run([str(Path(sys.executable).with_name("carbonscape")), "statistics", str(folder), "--pools", str(source),
                               "--draws", "300", "--draws-seed", "8", "--permutations", "199", "--seed", "3", "--no-maps"],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "KeyError" not in done.stdout + done.stderr
        mine = pd.read_csv(folder / "uncertainty_by_county.csv").set_index("county")
        if pools == "pools.csv":
            theirs = pd.read_csv(study_dir / "results" / "uncertainty_by_county.csv").set_index("county")
            pd.testing.assert_frame_equal(mine, theirs.reindex(mine.index))
        else:
            assert mine["ratio_p05"].notna().all() and (mine["supply_t_p05"] < mine["supply_t_p95"]).all()


def test_ccd_is_zero_for_the_lowest_supply_and_the_lowest_demand_unit_as_the_readme_says(study_dir, result):
    """README ("How to read them"): min–max normalisation gives U = 0, so C = 0 and ccd = 0, to the unit
    of lowest supply density and to that of lowest demand density, whatever their values."""
    table = pd.read_csv(study_dir / "results" / "ratio_zones.csv").set_index("county")
    assert table.loc[table["supply_t_per_km2"].idxmin(), "ccd"] == 0.0
    assert table.loc[table["demand_t_per_km2"].idxmin(), "ccd"] == 0.0
    assert (table["ccd"].drop([table["supply_t_per_km2"].idxmin(), table["demand_t_per_km2"].idxmin()]) > 0).all()


@pytest.fixture(scope="module")
def reported(small_study):
    """The same study on counties and on grid cells, with its report."""
    text = STUDY.replace("[demand]", "[units]\ngrid = 600\n\n[demand]", 1).replace("report = false", "report = true")
    made = small_study("second_half_report", text, shape=(400, 380), n_counties=12, seed=5,
                       population=lambda n: np.random.default_rng(1).integers(5_000, 90_000, n))
    pools = pd.read_csv(made.region.pools)
    for pool in ("above", "below", "soil", "dead"):
        pools[f"c_{pool}_sd"] = pools[f"c_{pool}"] * 0.1
    pools.to_csv(made.base / "pools.csv", index=False)
    result = run_study(made.base / "study.toml", scheduler="threads")
    return result


def _linked_maps(page: str) -> set[str]:
    import re

    return set(re.findall(r'<a href="((?:maps|cells/maps)/[^"]+\.png)"', page))


def test_the_report_shows_every_map_of_the_second_half(reported):
    from carbonscape.cli.main import cli
    from click.testing import CliRunner

    out = reported.out
    drawn = {p.relative_to(out).as_posix() for p in [*(out / "maps").glob("*.png"), *(out / "cells" / "maps").glob("*.png")]}
    expected = {f"maps/{s}.png" for s in ("matching_quadrants", "matching_balance", "lisa_clusters", "hotspots", "zone_stability")}
    expected |= {f"cells/maps/cells_{s}.png" for s in ("supply_demand", "ratio_zones", "matching", "lisa_clusters", "hotspots",
                                                         "zone_stability")}
    assert expected <= drawn
    page = (out / "report.html").read_text(encoding="utf-8")
    assert _linked_maps(page) == drawn
    for section in ("matching-maps", "spatial-maps", "uncertainty-maps", "cells-maps"):
        assert f'<section id="{section}">' in page
    # Each map embedded once, with its caption; the same page from the folder on disk.
    assert page.count('<img class="map"') == len(drawn)
    (out / "report.html").unlink()
    done = CliRunner().invoke(cli, ["report", str(out)])
    assert done.exit_code == 0, done.output
    assert _linked_maps((out / "report.html").read_text(encoding="utf-8")) == drawn


def test_the_maps_of_a_run_carry_the_study_and_its_crs(reported, monkeypatch):
    """The maps of matching, statistics, uncertainty and cells, as a run draws them, carry the credit
    line of Figs 1–5: the study's name, its sources and CRS."""
    import matplotlib.text
    from carbonscape import statmaps
    from carbonscape.maps import crs_label
    from carbonscape.study.outputs import _draw_cells, _draw_statistics

    texts: list[str] = []
    monkeypatch.setattr(statmaps, "_release", lambda fig: texts.append(" ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))))
    drawn = _draw_statistics(reported) + _draw_cells(reported)
    assert len(drawn) == len(texts) == 11
    crs = crs_label(reported.polygons.crs)
    for text in texts:
        text = text.replace("\n", " ")
        assert "Second half" in text and f"CRS: {crs}" in text and "data: " in text, text[-300:]
