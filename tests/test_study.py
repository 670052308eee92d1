import json

import carbonscape
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from carbonscape import StudyError, check_study, load_study, run_study
from conftest import REGION_INPUTS

STUDY = """
[study]
name = "Generated test region"
year = 2020
""" + REGION_INPUTS + """
[demand]
table = "population.csv"
key = "county"
total_emissions_t = 4.0e7
total_population = 1.0e7

[ratio]
units = "paper"

[zoning]
method = "jenks"
k = 3
scheme = "classes"

[outputs]
maps = false
report = false
"""


@pytest.fixture(scope="module")
def study_dir(small_study):
    return small_study("study", STUDY, shape=(500, 460), n_counties=9, seed=3).base


def test_end_to_end_on_a_generated_study(study_dir):
    result = run_study(study_dir / "study.toml", scheduler="threads")
    out = study_dir / "results"
    for name in ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool", "demand_by_county", "ratio_zones"):
        assert (out / f"{name}.csv").exists(), name
    ratio = pd.read_csv(out / "ratio_zones.csv")
    assert list(ratio.columns)[:8] == ["county", "supply_t", "supply_t_per_km2", "demand_t_per_km2", "ratio", "ratio_infinite", "class", "zone"]
    # R = emissions / stock: per capita 4 t × population / supply.
    expected = 4.0 * pd.read_csv(study_dir / "population.csv").set_index("county")["population"] / ratio.set_index("county")["supply_t"]
    np.testing.assert_allclose(ratio.set_index("county")["ratio"], expected.reindex(ratio["county"]).to_numpy(), rtol=1e-8)
    assert set(ratio["class"]) == {1, 2, 3}
    demand = pd.read_csv(out / "demand_by_county.csv")
    assert list(demand.columns)[:6] == ["county", "population", "area_km2", "density_per_km2", "demand_t_per_km2", "share_pct"]
    # True polygon areas vs the raster's pixel areas: close, not equal.
    assert np.allclose(demand["area_km2"], demand["pixel_area_km2"], rtol=0.05)
    # One row per county in demand_by_county.csv; the region's totals beside it, each named and unit-bearing.
    assert len(demand) == 9 and (demand["demand_unit"] == "t CO2/km²").all()
    totals = pd.read_csv(out / "demand_totals.csv").set_index("total")
    assert result.files["demand_totals"] == out / "demand_totals.csv"
    assert totals.loc["sum_of_county_densities_t_per_km2", "value"] == pytest.approx(demand["demand_t_per_km2"].sum())
    population = demand["population"].sum()  # 10,000 × (1 + ... + 9) = 450,000 people at 4 t each
    assert population == 450_000
    assert totals.loc["regional_density_t_per_km2", "value"] == pytest.approx(4.0 * population / demand["area_km2"].sum())
    assert totals.loc["total_demand_t", "value"] == pytest.approx(1.8e6) and totals.loc["per_capita_t", "value"] == 4.0
    assert totals.loc["regional_density_t_per_km2", "unit"] == "t CO2/km²" and "sum of densities" in totals.loc["sum_of_county_densities_t_per_km2", "meaning"]
    assert (ratio["demand_unit"] == "t CO2/km²").all()
    counties = gpd.read_file(out / "counties.gpkg")
    assert {"county", "supply_t", "supply_t_c_per_km2", "demand_t_co2_per_km2", "demand_t_c_per_km2", "ratio", "zone", "zone_key"} <= set(counties.columns)
    assert not {"demand_demand_t_per_km2", "demand_t_per_km2"} & set(counties.columns)
    by_key = counties.set_index("county")
    np.testing.assert_allclose(by_key["demand_t_co2_per_km2"], demand.set_index("county")["demand_t_per_km2"].reindex(by_key.index), rtol=1e-9)
    np.testing.assert_allclose(by_key["demand_t_c_per_km2"], by_key["demand_t_co2_per_km2"] * 12 / 44, rtol=1e-9)
    run = json.loads((out / "run.json").read_text())
    assert run["units"]["ratio_zones.csv"]["demand_t_per_km2"] == "t CO2/km²" and run["zoning"]["clipped"] == {}
    assert run["totals"]["supply_t"] == pytest.approx(result.totals["supply_t"])
    assert {i["role"] for i in run["inputs"]} == {"landuse", "counties", "pools", "demand", "study"}
    assert all(len(i["sha256"]) == 64 for i in run["inputs"])
    assert run["versions"]["carbonscape"] == carbonscape.__version__ and "ingest" in run["timings_s"]


def test_carbon_units_say_so_and_manual_breaks_record_clipped_counties(study_dir):
    """units = "carbon": ratio_zones.csv's demand is t C (× 12/44) and says so; the counties
    outside the manual edges are classed in the outer classes and listed in run.json."""
    paper = pd.read_csv(study_dir / "results" / "ratio_zones.csv") if (study_dir / "results" / "ratio_zones.csv").exists() else None
    if paper is None:
        run_study(study_dir / "study.toml", scheduler="threads")
        paper = pd.read_csv(study_dir / "results" / "ratio_zones.csv")
    carbon_ratio = paper.set_index("county")["ratio"].sort_values() * 12 / 44
    low, high = carbon_ratio.index[0], carbon_ratio.index[-1]
    # Edges between neighbouring ratios, the outer ones inside the lowest and the highest: those two fall outside.
    r = carbon_ratio.to_numpy()
    breaks = [(r[0] + r[1]) / 2, (r[2] + r[3]) / 2, (r[5] + r[6]) / 2, (r[7] + r[8]) / 2]
    text = (STUDY.replace('units = "paper"', 'units = "carbon"')
            .replace('method = "jenks"', f'method = "manual"\nbreaks = {[float(b) for b in breaks]}'))
    (study_dir / "carbon.toml").write_text(text, encoding="utf-8")
    result = run_study(study_dir / "carbon.toml", out=study_dir / "carbon_results", scheduler="threads")
    out = study_dir / "carbon_results"
    zones = pd.read_csv(out / "ratio_zones.csv").set_index("county")
    demand = pd.read_csv(out / "demand_by_county.csv").set_index("county")
    np.testing.assert_allclose(zones["demand_t_per_km2"], demand["demand_t_per_km2"].reindex(zones.index) * 12 / 44, rtol=1e-9)
    assert (zones["demand_unit"] == "t C/km²").all() and (demand["demand_unit"] == "t CO2/km²").all()
    assert zones.loc[low, "class"] == 1 and zones.loc[high, "class"] == 3
    run = json.loads((out / "run.json").read_text())
    assert run["units"]["ratio_zones.csv"]["demand_t_per_km2"] == "t C/km²"
    assert run["units"]["demand_by_county.csv"]["demand_t_per_km2"] == "t CO2/km²"
    assert run["zoning"]["clipped"] == pytest.approx({low: carbon_ratio[low], high: carbon_ratio[high]}, rel=1e-9)
    assert set(result.zoning["clipped"]) == {low, high}
    counties = gpd.read_file(out / "counties.gpkg")
    assert (counties["ratio_demand_unit"] == "t C/km²").all()


def test_second_run_reuses_the_stores(study_dir):
    store = study_dir / "results" / "stores" / "landuse.zarr" / "zarr.json"
    if not store.exists():
        run_study(study_dir / "study.toml", scheduler="threads")
    stamp = store.stat().st_mtime_ns
    run_study(study_dir / "study.toml", scheduler="threads")
    assert store.stat().st_mtime_ns == stamp


def test_check_lists_every_problem_at_once(study_dir, tmp_path):
    population = pd.read_csv(study_dir / "population.csv")
    population.loc[0, "county"] = "Atlantis"
    population.to_csv(tmp_path / "population.csv", index=False)
    text = STUDY.replace('path = "region/pools.csv"', 'path = "missing_pools.csv"').replace('"region/', f'"{study_dir.as_posix()}/region/')
    (tmp_path / "study.toml").write_text(text, encoding="utf-8")
    problems = check_study(tmp_path / "study.toml")
    joined = "\n".join(problems)
    assert "missing_pools.csv: no such file" in joined
    assert "'Atlantis'" in joined and "'C001'" in joined
    assert len(problems) == 3


def test_bad_study_file_reports_all_settings(tmp_path):
    (tmp_path / "s.toml").write_text('[landuse]\nchunk = 10\n[zoning]\nmethod = "magic"\n[demand]\ntable = "p.csv"\n', encoding="utf-8")
    with pytest.raises(StudyError) as info:
        load_study(tmp_path / "s.toml")
    text = str(info.value)
    for needle in ("rasters", "[counties]", "[pools]", "exactly one of", "'magic'", "chunk"):
        assert needle in text


def test_template_breaks_are_the_papers_table_4_edges():
    from carbonscape.study import STUDY_TEMPLATE
    from carbonscape.zoning import PAPER_RATIO_BREAKS

    line = next(line for line in STUDY_TEMPLATE.splitlines() if line.startswith("# breaks"))
    listed = [float(v) for v in line.split("[")[1].split("]")[0].split(",")]
    assert tuple(listed) == PAPER_RATIO_BREAKS == (0.005517, 0.013832, 0.025549, 0.040932, 0.076898, 0.136217, 0.356339, 0.637277)
