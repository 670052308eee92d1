"""The step-by-step path reaches every output of `run`: one command (and one function) per stage,
over one folder, each later stage reading the folder back; README's Python example runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from carbonscape import read_outputs, run_study
from carbonscape.cli.main import cli
from click.testing import CliRunner
from conftest import REGION_INPUTS

ROOT = Path(__file__).resolve().parents[1]

STUDY = """
[study]
name = "Stages"
year = 2020
""" + REGION_INPUTS + """
[demand]
table = "population.csv"
key = "county"
per_capita_t = 4.1
[zoning]
method = "jenks"
k = 7
scheme = "four_zones"
[outputs]
maps = false
report = false
"""


@pytest.fixture(scope="module")
def region(small_study):
    made = small_study("stages", STUDY, shape=(300, 300), n_counties=14, seed=3,
                       population=lambda n: np.random.default_rng(3).integers(5_000, 400_000, n))
    return made.base, made.region


def _invoke(*args: str):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


def test_every_stage_is_a_command_and_reaches_what_run_writes(region, tmp_path):
    base, made = region
    stores, results = tmp_path / "stores", tmp_path / "results"
    steps = [
        ("ingest", made.landuse, "--out", stores / "landuse.zarr", "--chunk", "256", "--scheduler", "synchronous", "--no-progress"),
        ("zones", made.counties, "--like", stores / "landuse.zarr", "--id-field", "county", "--out", stores / "zones.zarr",
         "--scheduler", "synchronous", "--no-progress"),
        ("supply", "--landuse", stores / "landuse.zarr", "--zones", stores / "zones.zarr", "--pools", made.pools, "--out", results,
         "--scheduler", "synchronous", "--no-progress"),
    ]
    for step in steps:
        done = _invoke(*step)
        assert done.exit_code == 0, (step[0], done.output)
    # Before demand and zoning, the later stages say which stage to run.
    early = _invoke("zoning", results)
    assert early.exit_code == 2 and "carbonscape demand" in early.output
    early = _invoke("maps", results)
    assert early.exit_code == 2 and "carbonscape zoning" in early.output
    done = _invoke("demand", results, "--counties", made.counties, "--id-field", "county", "--table", base / "population.csv",
                   "--per-capita-t", "4.1")
    assert done.exit_code == 0, done.output
    done = _invoke("zoning", results, "--method", "jenks", "--k", "7", "--name", "Stages", "--year", "2020")
    assert done.exit_code == 0, done.output
    assert "zones " in done.output
    done = _invoke("statistics", results)  # the study's [statistics] defaults: queen, 999 permutations, seed 12345
    assert done.exit_code == 0, done.output
    assert "moran " in done.output
    for step in (("maps", results), ("report", results)):
        done = _invoke(*step)
        assert done.exit_code == 0, (step[0], done.output)

    # The same study through `run`: the same tables, the same classes and zones.
    whole = run_study(base / "study.toml", out=tmp_path / "whole", scheduler="synchronous")
    staged = read_outputs(results)
    pd.testing.assert_frame_equal(staged.supply.by_county.set_index("county"), whole.supply.by_county.set_index("county").loc[
        staged.supply.by_county["county"]], check_dtype=False)
    for column in ("population", "area_km2", "demand_t_per_km2"):
        np.testing.assert_allclose(staged.demand[column].to_numpy(dtype=float),
                                   whole.demand[column].reindex(staged.demand.index.astype(str)).to_numpy(dtype=float), rtol=1e-9)
    whole_ratio = whole.ratio_zones.set_axis(whole.ratio_zones.index.astype(str)).reindex(staged.ratio_zones.index.astype(str))
    np.testing.assert_allclose(staged.ratio_zones["ratio"].to_numpy(dtype=float), whole_ratio["ratio"].to_numpy(dtype=float), rtol=1e-9)
    assert staged.ratio_zones["class"].tolist() == whole_ratio["class"].tolist()
    assert staged.ratio_zones["zone"].tolist() == whole_ratio["zone"].tolist()
    assert staged.zoning["edges"] == pytest.approx(whole.zoning["edges"])
    for key in ("supply_t", "total_demand_t", "regional_density_t_per_km2", "counties"):
        assert staged.totals[key] == pytest.approx(whole.totals[key])
    # Every output `run` writes is in the staged folder (run's stores live elsewhere here).
    whole_files = {p.name for p in (tmp_path / "whole").iterdir()} - {"stores", ".carbonscape.json"}
    staged_files = {p.name for p in results.iterdir()} - {"stages.json"}
    assert whole_files <= staged_files | {"maps", "report.html"}, whole_files - staged_files
    # The statistics stage gives what `run` gives: the same Moran's I, local statistics and matching
    # indices, the same maps. The stage reads the densities back from ratio_zones.csv (10 digits), and
    # with 14 units a permutation often redraws the observed neighbour set, where a last-digit change
    # decides the tie: pseudo p-values may differ by a few permutations in 1,000, no more.
    pd.testing.assert_frame_equal(pd.read_csv(results / "moran.csv"), pd.read_csv(tmp_path / "whole" / "moran.csv"), atol=0.005)
    for name, value in (("lisa.csv", "local_i"), ("hotspots.csv", "gi_star_z")):
        staged_table = pd.read_csv(results / name, dtype={"county": str}).sort_values(["variable", "county"], ignore_index=True)
        whole_table = pd.read_csv(tmp_path / "whole" / name, dtype={"county": str}).sort_values(["variable", "county"], ignore_index=True)
        assert staged_table[["county", "variable"]].equals(whole_table[["county", "variable"]])
        np.testing.assert_allclose(staged_table[value], whole_table[value], rtol=1e-7)
        np.testing.assert_allclose(staged_table["p_sim"], whole_table["p_sim"], atol=0.02)
    for column in ("esdr", "balance", "ccd", "quadrant"):
        assert staged.ratio_zones[column].tolist() == pytest.approx(whole_ratio[column].tolist()) if column != "quadrant" else \
            staged.ratio_zones[column].tolist() == whole_ratio[column].tolist()
    for stem in ("matching_quadrants", "matching_balance", "lisa_clusters", "hotspots"):
        assert (results / "maps" / f"{stem}.png").stat().st_size > 10_000, stem
    assert {"counties.gpkg", "run.json", "ratio_zones.csv", "report.html", "maps"} <= staged_files
    assert (results / "maps" / "fig5_zones.png").exists() and "Stages" in (results / "report.html").read_text(encoding="utf-8")
    assert staged.polygons is not None and len(staged.polygons) == 14

    # Redo one stage with other settings: only its outputs change.
    supply_before = (results / "supply_by_county.csv").stat().st_mtime_ns, (results / "demand_by_county.csv").read_bytes()
    done = _invoke("zoning", results, "--k", "4", "--scheme", "classes", "--method", "quantile")
    assert done.exit_code == 0, done.output
    redone = read_outputs(results)
    assert sorted(redone.ratio_zones["class"].unique()) == [1, 2, 3, 4] and redone.zoning["method"] == "quantile"
    # supply untouched; demand written again by the one writer, the same to the byte
    assert ((results / "supply_by_county.csv").stat().st_mtime_ns, (results / "demand_by_county.csv").read_bytes()) == supply_before


def test_demand_needs_exactly_one_source(region, tmp_path):
    base, made = region
    results = tmp_path / "results"
    results.mkdir()
    (results / "supply_by_county.csv").write_text("county,supply_t,share_pct,pixels,area_km2\nC001,1.0,100,1,1.0\n", encoding="utf-8")
    done = _invoke("demand", results, "--counties", made.counties, "--id-field", "county", "--table", base / "population.csv")
    assert done.exit_code == 2 and "exactly one demand source" in done.output
    done = _invoke("zoning", results, "--breaks", "a,b")
    assert done.exit_code == 2 and "--breaks" in done.output


def _readme_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "zoning_stage" in b]
    assert len(blocks) == 1, "README's complete Python study was not found"
    return blocks[0]


def _readme_statistics_example() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "spatial_statistics(" in b]
    assert len(blocks) == 1, "README's spatial-statistics example was not found"
    return blocks[0]


# Appended to README's two examples: the statistics join counties by id, so shuffling the polygons'
# rows changes no county's value.
_BY_ID = """
assert set(county_polygons.index) == set(ratio_table.index)
shuffled = spatial_statistics(county_polygons.sample(frac=1, random_state=3), ratio_table, settings=SpatialSettings(weights="queen", permutations=99, seed=1))
key = ["county", "variable"]
pd.testing.assert_series_equal(stats.lisa.set_index(key)["local_i"].sort_index(), shuffled.lisa.set_index(key)["local_i"].sort_index())
assert list(matching.index) == list(ratio_table.index)
print("statistics by county id")
"""


def test_the_readme_python_example_runs_as_written(tmp_path):
    example = _readme_example() + "\n" + _readme_statistics_example() + _BY_ID
    script = tmp_path / "example.py"
    script.write_text(example, encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = tmp_path / "results"
    for name in ("supply_by_county.csv", "demand_by_county.csv", "ratio_zones.csv", "counties.gpkg", "run.json", "report.html",
                 "maps/fig5_zones.png", "maps/county_key.csv"):
        assert (results / name).exists(), name
    ratio = pd.read_csv(results / "ratio_zones.csv")
    assert len(ratio) == 12 and ratio["class"].between(1, 7).all()
    assert "ratio" in done.stdout and "zone" in done.stdout
    assert "statistics by county id" in done.stdout and "local_i" in done.stdout
