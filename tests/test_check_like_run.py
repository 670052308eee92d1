"""`check` refuses what `run` would refuse (a user found three studies that `check` passed and
`run` then refused): overlapping counties, a county holding no pixel centre, a job queue without
the worker jobs' cores and memory."""
from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from carbonscape import check_study, run_study
from carbonscape.errors import StudyError
from conftest import DEMAND_ZONING, REGION_INPUTS

STUDY = """
[study]
name = "Check like run"
""" + REGION_INPUTS + """""" + DEMAND_ZONING + """
[outputs]
maps = false
report = false
"""


def _with_counties(made, change) -> None:
    counties = gpd.read_file(made.region.counties)
    counties = change(counties)
    counties.to_file(made.region.counties, engine="pyogrio")
    pd.DataFrame({"county": counties["county"], "population": 10_000}).to_csv(made.base / "population.csv", index=False)


def test_overlapping_counties_are_refused_by_check_as_by_run(small_study):
    made = small_study("overlap", STUDY, shape=(200, 200), n_counties=6, seed=4)

    def grow(counties):
        counties.loc[0, "geometry"] = counties.geometry.iloc[0].buffer(300)  # 10 pixels of 30 m into its neighbours
        return counties

    _with_counties(made, grow)
    first = counties_of(made)[0]
    problems = check_study(made.study)
    assert any("polygons overlap" in p and first in p for p in problems), problems
    with pytest.raises(StudyError, match="polygons overlap"):
        run_study(made.study, scheduler="synchronous")


def counties_of(made) -> list[str]:
    return gpd.read_file(made.region.counties)["county"].astype(str).tolist()


def test_a_county_holding_no_pixel_centre_is_refused_by_check_as_by_run(small_study):
    made = small_study("tiny", STUDY, shape=(200, 200), n_counties=6, seed=4)

    def carve(counties):
        # A 10 × 10 m county in one corner of a 30 m pixel, away from its centre, cut out of its county.
        host = counties.geometry.iloc[2]
        x, y = host.representative_point().coords[0]
        x = 500_000 + 30 * np.floor((x - 500_000) / 30) + 2  # pixel edges at multiples of 30 m from the origin
        y = 2_800_000 - 30 * np.floor((2_800_000 - y) / 30) - 12
        tiny = shapely.box(x, y, x + 10, y + 10)
        counties.loc[2, "geometry"] = host.difference(tiny)
        extra = gpd.GeoDataFrame({"county": ["TINY"]}, geometry=[tiny], crs=counties.crs)
        return pd.concat([counties, extra], ignore_index=True)

    _with_counties(made, carve)
    problems = check_study(made.study)
    assert any("no pixel centre falls in these counties" in p and "TINY: covered 0.0 %" in p for p in problems), problems
    with pytest.raises(StudyError, match="TINY: covered 0.0 %"):
        run_study(made.study, scheduler="synchronous")
    # In fraction mode the county gets its share of the pixels: nothing to refuse.
    (made.base / "fraction.toml").write_text(STUDY.replace('id_field = "county"', 'id_field = "county"\ncoverage = "fraction"'))
    assert not [p for p in check_study(made.base / "fraction.toml") if "TINY" in p]
    result = run_study(made.base / "fraction.toml", scheduler="synchronous")
    tiny = result.supply.by_county.set_index("county").loc["TINY"]
    assert tiny["supply_t"] > 0  # its share of one pixel
    assert "counties_without_pixels" not in result.supply.summary  # it was warned "no land-use pixels"


def test_a_job_queue_without_cores_and_memory_is_refused_by_check(small_study, monkeypatch):
    for name in ("DASK_JOBQUEUE__SLURM__CORES", "DASK_JOBQUEUE__SLURM__MEMORY"):
        monkeypatch.delenv(name, raising=False)
    import dask

    text = STUDY + '\n[cluster]\nscheduler = "slurm"\njobs = 2\n'
    made = small_study("queue", text, shape=(120, 120), n_counties=4, seed=4)
    with dask.config.set({"jobqueue.slurm.cores": None, "jobqueue.slurm.memory": None}):
        problems = check_study(made.study)
        assert any("cluster:" in p and "cores and memory of each worker job are not set" in p for p in problems), problems
        (made.base / "given.toml").write_text(text + 'cores = 2\nmemory = "4GiB"\n')
        assert not [p for p in check_study(made.base / "given.toml") if "cluster" in p]
