"""The bundled Central Yunnan demo's data and helpers. The demo's agreement with the paper is asserted in
test_e2e_demo.py, independently of the demo's own comparison code, on README's 100 m run."""

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from carbonscape.demo import demo_paths, generate_landuse, paper_class, write_demo_study


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


def test_demo_study_carries_a_labelled_synthetic_2030_scenario_whose_change_is_valued(tmp_path):
    from carbonscape import ingest, rasterize_zones
    from carbonscape.change import Valuation, maps_pass
    from carbonscape.study import load_study
    from carbonscape.study.landuse_maps import base_map, change_pairs, study_maps

    study = load_study(write_demo_study(tmp_path / "inputs", resolution_m=2000))
    maps = study_maps(study)
    label = "2030 ecological protection (SYNTHETIC)"
    assert [m.label for m in maps] == ["2020", label] and maps[1].scenario and maps[1].year == 2030
    assert change_pairs(maps, base_map(maps, study.year)) == [("2020", label)]
    with rasterio.open(maps[1].rasters[0]) as src:
        assert "SYNTHETIC" in src.tags()["carbonscape_note"] and "SYNTHETIC" in maps[1].rasters[0].name
    stores = {m.label: ingest(list(m.rasters), tmp_path / f"{m.year}.zarr", scheduler="synchronous") for m in maps}
    zones = rasterize_zones(study.counties, like=stores["2020"], id_field="county", out=tmp_path / "z.zarr", scheduler="synchronous")
    valuation = Valuation(price=study.setting("valuation", "price"), discount_rate=study.setting("valuation", "discount_rate"))
    result = maps_pass(stores, zones, {m.label: study.pools for m in maps}, pairs=[("2020", label)],
                       years={m.label: m.year for m in maps}, valuation=valuation, scheduler="synchronous")
    change = result.changes[("2020", label)]
    moves = change.transitions.set_index(["from_code", "to_code"])["carbon_change_t"]
    # Cropland returning to arbor forest stores carbon; built-up land taking cropland loses some.
    assert moves[(1, 2)] > 0 and moves[(1, 9)] < 0 and change.summary["changed_pixels"] > 0
    assert change.summary["valuation"]["npv"] == pytest.approx(change.change_t * change.summary["valuation"]["valuation_constant_per_t_c"])


def test_the_demo_prints_its_transfer_matrix_and_draws_the_change_of_its_scenario(demo_run):
    folder = demo_run.out / "changes" / "2020_to_2030_ecological_protection_SYNTHETIC"
    for name in ("transitions_sankey.png", "carbon_change_by_county.png"):
        assert (folder / name).stat().st_size > 10_000, name
    assert "drawn: transitions_sankey.png, carbon_change_by_county.png" in demo_run.stdout
    assert "net present value" in demo_run.stdout and "transfer matrix, km² (rows 2020" in demo_run.stdout
    # The printed matrix is the written one: cropland's row, every class present.
    matrix = pd.read_csv(folder / "transfer_matrix_km2.csv", index_col=0).drop(index="total_to", columns="total_from")
    row = matrix.loc[[label for label in matrix.index if label.startswith("1 ")][0]]
    printed = "    " + f"{'1':>6}" + "".join(f"{v:10,.1f}" for v in row.to_numpy()) + f"{row.sum():12,.1f}"
    assert printed in demo_run.stdout.splitlines()
    total = "    " + f"{'total':>6}" + "".join(f"{v:10,.1f}" for v in matrix.sum(axis=0).to_numpy()) + f"{matrix.to_numpy().sum():12,.1f}"
    assert total in demo_run.stdout.splitlines()
    for label in ("2020", "2030_ecological_protection_SYNTHETIC"):
        assert (demo_run.out / "maps" / label / "ratio_zones.csv").exists()


def test_the_demo_sankey_labels_every_class_without_overlap_and_names_the_scenario(demo_run):
    """The demo's Sankey redrawn from its written tables: every class labelled (the 222 km² bamboo
    forest too), no two texts overlapping, the scenario in the title."""
    import json

    from carbonscape.change import ChangeResult
    from carbonscape.change_figures import sankey_figure
    from test_change_figures import assert_every_class_labelled, assert_no_overlap, rendered_boxes

    folder = demo_run.out / "changes" / "2020_to_2030_ecological_protection_SYNTHETIC"
    transitions = pd.read_csv(folder / "transitions.csv")
    found = ChangeResult(by_county=pd.DataFrame(), transitions_by_county=pd.DataFrame(), transitions=transitions,
                         transfer_matrix=pd.DataFrame(), dynamic_degree=pd.DataFrame(),
                         summary=json.loads((folder / "change_summary.json").read_text(encoding="utf-8")))
    fig = sankey_figure(found)
    assert_every_class_labelled(fig, transitions)
    assert_no_overlap(rendered_boxes(fig))
    assert "2020 → 2030 ecological protection (SYNTHETIC)" in " ".join(fig.axes[0].get_title().split())

