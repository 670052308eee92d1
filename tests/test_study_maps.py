"""A study of several land-use maps ([landuse.maps]): every map's supply and the changes between
them from one pass, the base map's full study, and bad maps refused by `check` naming the map."""

import json

import numpy as np
import pandas as pd
import pytest
import rasterio
from carbonscape import check_study, run_study
from carbonscape.synthetic import SYNTHETIC_POOLS
from conftest import DEMAND_ZONING

STUDY = """
[study]
name = "Three maps"
year = 2020

[landuse.maps]
"2000" = "lu2000.tif"
"2020" = ["region/landuse.tif"]
"2030 eco" = { rasters = ["lu2030_eco.tif"], year = 2030, scenario = true, pools = "pools2030.csv" }

[counties]
path = "region/counties.gpkg"
id_field = "county"

[pools]
path = "region/pools.csv"
""" + DEMAND_ZONING + """
[outputs]
maps = false
report = false
"""


def _write_like(path, array, template):
    with rasterio.open(template) as src:
        profile = src.profile
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(array, 1)


@pytest.fixture(scope="module")
def study_dir(small_study):
    def people(n):
        # Per-year populations (the `_{year}` convention); 2020, the study year, has only `population`.
        people = np.arange(1, n + 1) * 10_000
        return {"population": people, "population_2000": people * 0.8, "population_2030": people * 1.25}

    made = small_study("maps", STUDY, shape=(300, 280), n_counties=6, seed=5, population=people)
    base, region = made.base, made.region
    with rasterio.open(region.landuse) as src:
        lu2020 = src.read(1)
    lu2000 = lu2020.copy()
    lu2000[(lu2020 == 9) & (np.arange(lu2020.shape[1])[None, :] % 2 == 0)] = 1  # built-up was cropland in 2000
    lu2030 = lu2020.copy()
    lu2030[(lu2020 == 1) & (np.arange(lu2020.shape[0])[:, None] % 3 == 0)] = 2  # cropland → forest
    _write_like(base / "lu2000.tif", lu2000, region.landuse)
    _write_like(base / "lu2030_eco.tif", lu2030, region.landuse)
    denser = SYNTHETIC_POOLS.copy()
    denser.loc[denser["lucode"] == 2, "c_above"] += 10
    denser.to_csv(base / "pools2030.csv", index=False)
    return base


def test_a_study_of_three_maps(study_dir):
    assert check_study(study_dir / "study.toml") == []
    result = run_study(study_dir / "study.toml", scheduler="threads")
    out = study_dir / "results"
    summary = pd.read_csv(out / "maps_summary.csv", dtype={"map": str}).set_index("map")
    assert list(summary.index) == ["2000", "2020", "2030 eco"]
    assert summary.loc["2020", "base"] and not summary.loc["2000", "base"]
    # The base map (the study year's) is the study's own supply.
    base = pd.read_csv(out / "supply_by_county.csv")
    per_map = pd.read_csv(out / "maps" / "2020" / "supply_by_county.csv")
    # The per-map tables carry the coverage columns too (issue 7).
    assert {"covered_share", "nodata_share", "outside_share", "low_coverage"} <= set(per_map.columns)
    assert set(per_map.columns) <= set(base.columns)
    pd.testing.assert_frame_equal(per_map, base[list(per_map.columns)])
    assert summary.loc["2020", "supply_t"] == pytest.approx(result.supply.total_t)
    changes = pd.read_csv(out / "changes_summary.csv", dtype={"from": str, "to": str})
    assert [tuple(r) for r in changes[["from", "to"]].to_numpy()] == [("2000", "2020"), ("2020", "2030 eco")]
    # 2000 → 2020: built-up replaced cropland (95 → 43 t/ha in the synthetic pools): carbon lost.
    first = pd.read_csv(out / "changes" / "2000_to_2020" / "transitions.csv")
    lost = first[(first["from_code"] == 1) & (first["to_code"] == 9)]
    assert len(lost) == 1 and lost["carbon_change_t"].iloc[0] < 0
    assert first.loc[first["from_code"] != first["to_code"], "pixels"].sum() == pd.read_csv(out / "changes_summary.csv")["changed_pixels"].iloc[0]
    # The scenario has its own pools: its supply uses them, and unchanged forest gains 10 t/ha.
    eco = pd.read_csv(out / "changes" / "2020_to_2030_eco" / "change_by_county.csv")
    assert eco["supply_to_t"].sum() == pytest.approx(summary.loc["2030 eco", "supply_t"])
    assert eco["change_t"].sum() > 0
    run = json.loads((out / "run.json").read_text())
    assert set(run["landuse_maps"]["maps"]) == {"2000", "2020", "2030 eco"}
    # Per map: demand of its year's population, its own ratio and zones.
    assert list(summary["population_column"]) == ["population_2000", "population", "population_2030"]
    base_demand = pd.read_csv(out / "demand_by_county.csv")
    pd.testing.assert_frame_equal(pd.read_csv(out / "maps" / "2020" / "demand_by_county.csv"), base_demand)
    base_ratio = pd.read_csv(out / "ratio_zones.csv")
    ratio_2020 = pd.read_csv(out / "maps" / "2020" / "ratio_zones.csv")
    pd.testing.assert_frame_equal(ratio_2020, base_ratio[list(ratio_2020.columns)])
    for folder, factor, label in (("2000", 0.8, "2000"), ("2030_eco", 1.25, "2030 eco")):
        demand = pd.read_csv(out / "maps" / folder / "demand_by_county.csv")
        np.testing.assert_allclose(demand["population"], base_demand["population"] * factor)
        np.testing.assert_allclose(demand["demand_t_per_km2"], base_demand["demand_t_per_km2"] * factor)
        ratio = pd.read_csv(out / "maps" / folder / "ratio_zones.csv").set_index("county")
        supply_here = pd.read_csv(out / "maps" / folder / "supply_by_county.csv").set_index("county")["supply_t"]
        np.testing.assert_allclose(ratio["supply_t"], supply_here.reindex(ratio.index))
        np.testing.assert_allclose(ratio["ratio"], ratio["demand_t_per_km2"] / ratio["supply_t_per_km2"], rtol=1e-8)  # CSV: 10 digits
        assert summary.loc[label, "population"] == pytest.approx(base_demand["population"].sum() * factor)
        assert ratio["zone"].notna().all()


def _study_with(study_dir, tmp_path, maps_block):
    text = STUDY.split("[landuse.maps]")[0] + maps_block + "\n[counties]" + STUDY.split("[counties]")[1]
    text = text.replace('"region/', f'"{study_dir}/region/').replace('"population.csv"', f'"{study_dir}/population.csv"')
    (tmp_path / "study.toml").write_text(text, encoding="utf-8")
    return check_study(tmp_path / "study.toml")


def test_bad_maps_are_refused_by_check_naming_the_map(study_dir, tmp_path):
    lu = f"{study_dir}/region/landuse.tif"
    problems = _study_with(study_dir, tmp_path, f'[landuse.maps]\n"2020" = "{lu}"\n"2010 farm" = {{ rasters = "{lu}", scenario = true }}\n')
    assert any("scenario '2010 farm' (year 2010) is not after its base map '2020'" in p for p in problems)
    with rasterio.open(lu) as src:
        profile, data = src.profile, src.read(1)
    profile.update(transform=rasterio.Affine(60, 0, profile["transform"].c, 0, -60, profile["transform"].f))
    with rasterio.open(tmp_path / "coarse.tif", "w", **profile) as dst:
        dst.write(data, 1)
    problems = _study_with(study_dir, tmp_path, f'[landuse.maps]\n"2020" = "{lu}"\n"2030" = "{tmp_path / "coarse.tif"}"\n')
    assert any("land-use map '2030'" in p and "not on the grid of map '2020'" in p for p in problems)
    pd.DataFrame(SYNTHETIC_POOLS[SYNTHETIC_POOLS["lucode"] != 2]).to_csv(tmp_path / "short.csv", index=False)
    problems = _study_with(study_dir, tmp_path, f'[landuse.maps]\n"2020" = "{lu}"\n"2030" = {{ rasters = "{lu}", pools = "{tmp_path / "short.csv"}" }}\n')
    assert any(p.startswith("land-use map '2030'") and "missing from the pools table" in p for p in problems)
    (tmp_path / "both.toml").write_text(STUDY.replace("[landuse.maps]", f'[landuse]\nrasters = ["{lu}"]\n\n[landuse.maps]'), encoding="utf-8")
    assert any("not both" in p for p in check_study(tmp_path / "both.toml"))
