"""The bundled Central Yunnan demo's data and helpers. The demo's agreement with the paper is asserted in
test_e2e_demo.py, independently of the demo's own comparison code, on README's 100 m run."""

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from carbonscape.demo import demo_paths, generate_landuse, paper_class


def test_demo_data_are_complete_and_consistent():
    paths = demo_paths()
    counties = gpd.read_file(paths["counties"])
    paper = pd.read_csv(paths["tables2_3"])
    assert sorted(counties["county"]) == sorted(paper["county"]) and len(counties) == 49
    assert counties.is_valid.all() and abs(counties.area.sum() / 1e6 / 111_333 - 1) < 0.01
    left, right = counties.sindex.query(counties.geometry, predicate="intersects")
    pairs = left < right
    overlaps = counties.geometry.values[left[pairs]].intersection(counties.geometry.values[right[pairs]]).area
    assert overlaps.max() < 1e6  # < 1 km² for any pair
    pools = pd.read_csv(paths["pools"]).set_index("lucode")
    assert list(pools.index) == list(range(1, 11))
    assert pools.loc[8, ["c_above", "c_below", "c_soil", "c_dead"]].sum() == 0
    areas = pd.read_csv(paths["areas"]).pivot(index="county", columns="lucode", values="area_ha")
    density = pools[["c_above", "c_below", "c_soil", "c_dead"]].sum(axis=1)
    supply = (areas * density).sum(axis=1) / 1e6
    np.testing.assert_allclose(supply.reindex(paper["county"]).to_numpy(), paper["supply_1e6_t"].to_numpy(), rtol=1e-6)


def test_generated_raster_is_labelled_synthetic(tmp_path):
    path = generate_landuse(tmp_path / "lu.tif", resolution_m=2000)
    with rasterio.open(path) as src:
        assert "SYNTHETIC" in src.tags()["DESCRIPTION"]
        assert src.nodata == 255 and src.res == (2000.0, 2000.0)
        codes = set(np.unique(src.read(1)).tolist())
    assert codes <= set(range(1, 11)) | {255} and 2 in codes


def test_paper_class_follows_table_4():
    table4 = pd.read_csv(demo_paths()["table4"])
    bounds = table4.sort_values("class")
    lows, highs = bounds["ratio_min"].to_numpy(), bounds["ratio_max"].to_numpy()
    assert paper_class(lows, table4).tolist() == list(range(1, 8))
    assert paper_class(highs, table4).tolist() == list(range(1, 8))
    assert paper_class(np.array([0.001, 0.9]), table4).tolist() == [1, 7]
