import json

import carbonscape
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from carbonscape import StudyError, check_study, load_study, run_study
from carbonscape.synthetic import make_region

STUDY = """
[study]
name = "Generated test region"
year = 2020

[landuse]
rasters = ["region/landuse.tif"]
chunk = 256

[counties]
path = "region/counties.gpkg"
id_field = "county"

[pools]
path = "region/pools.csv"

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
def study_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("study")
    region = make_region(base / "region", shape=(500, 460), n_counties=9, seed=3)
    names = gpd.read_file(region.counties)["county"]
    pd.DataFrame({"county": names, "population": np.arange(1, len(names) + 1) * 10_000}).to_csv(base / "population.csv", index=False)
    (base / "study.toml").write_text(STUDY, encoding="utf-8")
    return base


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
    counties = gpd.read_file(out / "counties.gpkg")
    assert {"county", "supply_t", "ratio", "zone", "demand_demand_t_per_km2"} <= set(counties.columns)
    run = json.loads((out / "run.json").read_text())
    assert run["totals"]["supply_t"] == pytest.approx(result.totals["supply_t"])
    assert {i["role"] for i in run["inputs"]} == {"landuse", "counties", "pools", "demand", "study"}
    assert all(len(i["sha256"]) == 64 for i in run["inputs"])
    assert run["versions"]["carbonscape"] == carbonscape.__version__ and "ingest" in run["timings_s"]


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
