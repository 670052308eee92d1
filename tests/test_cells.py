"""Grid cells as units and continuous rasters per unit: by hand, against numpy block sums, and the
per-chunk kernels against their numpy references on random rasters and chunkings."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from carbonscape import GridError, ingest, rasterize_zones, read_pools
from carbonscape.accumulate import ClassIndex, Layout, accumulate, accumulate_numpy
from carbonscape.cells import (
    CELL_AREAS,
    CELL_COUNTS,
    CELL_COUNTS_AREAS,
    CELL_VALUES,
    WEIGHTED_SUM,
    CellGrid,
    cells_params,
    stitch_cells,
    supply_cells,
    value_sums_table,
)
from carbonscape.grid import Grid
from conftest import pixel_box, write_pools, write_tif, write_vector
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.transform import from_origin

# The 5×5 raster of test_supply (100 m pixels = 1 ha; 9 is nodata), cut into 200 m cells (2 × 2 pixels):
# cells (0,0) (0,1) (0,2) / (1,0) (1,1) (1,2) / (2,0) (2,1) (2,2), the last row and column 1 pixel wide.
CODES = np.array([
    [1, 1, 2, 2, 3],
    [1, 1, 2, 2, 3],
    [1, 9, 2, 3, 3],
    [4, 4, 4, 3, 3],
    [4, 4, 4, 9, 3],
], dtype=np.uint8)
POOLS = [(1, 10, 2, 30, 1), (2, 60, 15, 20, 5), (3, 0, 0, 0, 0), (4, 1, 0.5, 4, 0)]  # totals 43, 100, 0, 5.5 t/ha


def _utm_pixel_ha() -> float:
    """True ground area (ha) of a nominal 1 ha pixel at the fixture's origin (UTM 48N on its
    central meridian, scale 0.9996: ~1/0.9996² ha), by pyproj: the densified outline as a geodesic
    polygon on WGS 84 (over the 5×5 raster it varies by ~1e-9, so one pixel stands for all)."""
    from pyproj import Geod, Transformer

    t = np.linspace(0, 100, 65)
    xs = np.concatenate([500_000 + t, np.full(65, 500_100.0), 500_100 - t, np.full(65, 500_000.0)])
    ys = np.concatenate([np.full(65, 2_799_900.0), 2_799_900 + t, np.full(65, 2_800_000.0), 2_800_000 - t])
    lon, lat = Transformer.from_crs("EPSG:32648", "EPSG:4326", always_xy=True).transform(xs, ys)
    return abs(Geod(ellps="WGS84").polygon_area_perimeter(lon, lat)[0]) / 1e4


HA = 1.0  # UTM inside its zone (< 0.1 % off ground area): nominal areas, as InVEST; _utm_pixel_ha() shows the 0.08 %


def test_supply_per_cell_by_hand(tmp):
    lu = ingest(write_tif(tmp / "lu.tif", CODES, nodata=9), tmp / "lu.zarr", chunk=256, scheduler="synchronous")
    result = supply_cells(lu, write_pools(tmp / "pools.csv", POOLS), size=200, out=tmp / "out", scheduler="synchronous")
    table = result.by_cell.set_index(["row", "col"])
    # Cell (0,0): four 1s = 4 × 43 = 172 t on 4 ha; (0,1): four 2s = 400 t; (0,2): two 3s = 0 t (2 ha).
    assert table.loc[(0, 0), "supply_t"] == pytest.approx(172.0 * HA, rel=1e-7)
    assert table.loc[(0, 1), "supply_t"] == pytest.approx(400.0 * HA, rel=1e-7)
    assert table.loc[(0, 2), ["supply_t", "pixels"]].tolist() == [0.0, 2]
    # Cell (1,0): 1, 9 / 4, 4 → 43 + 2 × 5.5 = 54 t on 3 ha (the nodata pixel counts nowhere).
    assert table.loc[(1, 0), "supply_t"] == pytest.approx(54.0 * HA, rel=1e-7)
    assert table.loc[(1, 0), "area_km2"] == pytest.approx(0.03 * HA, rel=1e-7)
    assert table.loc[(1, 0), "supply_t_per_km2"] == pytest.approx(1800.0)
    # Cell (2,2) is the corner pixel alone: 3 → 0 t on 1 ha; cell (2,1): 4, 9 → 5.5 t.
    assert table.loc[(2, 2), "area_km2"] == pytest.approx(0.01 * HA, rel=1e-7)
    assert table.loc[(2, 1), "supply_t"] == pytest.approx(5.5 * HA, rel=1e-7)
    assert table.loc[(1, 0), "cell"] == 3 and table.loc[(2, 2), "cell"] == 8
    assert table["supply_t"].sum() == pytest.approx((215 + 500 + 33) * HA, rel=1e-7)
    assert table.loc[(1, 0), "supply_t_1"] == pytest.approx(43.0 * HA, rel=1e-7)
    assert table.loc[(1, 0), "supply_t_4"] == pytest.approx(11.0 * HA, rel=1e-7)
    assert result.summary["nodata_pixels"] == 2
    written = pd.read_csv(tmp / "out" / "supply_by_cell.csv")
    assert list(written.columns[:7]) == ["cell", "row", "col", "pixels", "area_km2", "supply_t", "supply_t_per_km2"]
    cells = gpd.read_file(tmp / "out" / "cells.gpkg", layer="cells")
    assert len(cells) == 9
    corner = cells.set_index("cell").loc[8, "geometry"]
    assert corner.bounds == pytest.approx((500_400, 2_799_500, 500_500, 2_799_600))  # cut at the raster's edge: 100 m × 100 m
    # The GeoPackage's polygons (WKB written with numpy) are shapely's boxes of the same cells, column for column.
    expected = result.cells.polygons(cells["row"].to_numpy(), cells["col"].to_numpy())
    assert all(got.equals_exact(want, 0) for got, want in zip(cells.geometry, expected))
    assert cells.crs.to_epsg() == 32648 and cells.geom_type.eq("Polygon").all()
    pd.testing.assert_frame_equal(pd.DataFrame(cells.drop(columns="geometry")), result.by_cell, check_dtype=False)
    with rasterio.open(tmp / "out" / "cell_supply_t.tif") as src:
        assert src.shape == (3, 3) and src.transform.a == 200
        np.testing.assert_allclose(src.read(1)[0], [172.0 * HA, 400.0 * HA, 0.0], rtol=1e-6)  # float32 GeoTIFF


def test_cells_equal_numpy_block_sums_across_chunks(tmp):
    rng = np.random.default_rng(4)
    codes = rng.integers(1, 5, size=(610, 530)).astype(np.uint8)
    codes[rng.random(codes.shape) < 0.05] = 9
    # Chunks of 256 pixels are not whole 30-pixel cells: cells astride chunk edges sum two or four partial tables.
    lu = ingest(write_tif(tmp / "lu.tif", codes, nodata=9), tmp / "lu.zarr", chunk=256, scheduler="synchronous")
    result = supply_cells(lu, write_pools(tmp / "pools.csv", POOLS), size=3000, scheduler="synchronous")
    density = {1: 43.0, 2: 100.0, 3: 0.0, 4: 5.5}
    # t per pixel: density × the area the grid counts for it (UTM inside its zone: nominal, within
    # 0.1 % of ground; the grid's own per-pixel areas, tested against pyproj in test_areas.py).
    true_ha = Grid.from_affine(crs="EPSG:32648", transform=from_origin(500_000, 2_800_000, 100, 100), shape=codes.shape).pixel_areas_m2(
        slice(0, 610), slice(0, 530)) / 1e4
    per_pixel = np.vectorize(lambda c: density.get(int(c), 0.0))(codes) * true_ha
    padded = np.zeros((630, 540))
    padded[:610, :530] = per_pixel
    blocks = padded.reshape(21, 30, 18, 30).sum(axis=(1, 3))
    valid = np.zeros((630, 540))
    valid[:610, :530] = codes != 9
    pixels = valid.reshape(21, 30, 18, 30).sum(axis=(1, 3))
    got = np.zeros((21, 18))
    got[result.by_cell["row"], result.by_cell["col"]] = result.by_cell["supply_t"]
    np.testing.assert_allclose(got, blocks)
    got_pixels = np.zeros((21, 18))
    got_pixels[result.by_cell["row"], result.by_cell["col"]] = result.by_cell["pixels"]
    np.testing.assert_array_equal(got_pixels, pixels)


def test_geographic_cells_sum_true_areas(tmp):
    codes = np.ones((40, 40), dtype=np.uint8)
    transform = from_origin(100.0, 30.0, 0.01, 0.01)
    lu = ingest(write_tif(tmp / "lu.tif", codes, crs="EPSG:4326", transform=transform), tmp / "lu.zarr", chunk=256, scheduler="synchronous")
    result = supply_cells(lu, write_pools(tmp / "pools.csv", POOLS), size=0.1, scheduler="synchronous")
    table = result.by_cell.set_index(["row", "col"])
    grid = Grid.from_affine(crs="EPSG:4326", transform=transform, shape=(40, 40))
    top = grid.row_areas_m2(0, 10).sum() * 10 / 1e6
    assert table.loc[(0, 0), "area_km2"] == pytest.approx(top, rel=1e-12)
    assert table.loc[(3, 0), "area_km2"] > table.loc[(0, 0), "area_km2"]  # further south, nearer the equator: larger


@pytest.mark.parametrize(("size", "words"), [(150, "not a multiple of the pixel size 100 .*use 100 or 200"), (-5, "positive"), (0, "positive")])
def test_a_cell_size_that_is_not_whole_pixels_is_refused(tmp, size, words):
    lu = ingest(write_tif(tmp / "lu.tif", CODES, nodata=9), tmp / "lu.zarr", chunk=256, scheduler="synchronous")
    with pytest.raises(GridError, match=words):
        supply_cells(lu, write_pools(tmp / "pools.csv", POOLS), size=size, scheduler="synchronous")


def test_stitching_trims_the_padding_of_edge_chunks():
    grid = Grid.from_affine(crs="EPSG:32648", transform=from_origin(0, 0, 1, 1), shape=(5, 7), chunks=(4, 4))
    cells = CellGrid(grid, 2)
    assert cells.shape == (3, 4) and cells.chunks() == (4, 4)
    blocks = np.arange(2 * 2 * 2 * 2).reshape(2, 2, 2, 2, 1)  # (row chunk, col chunk, cell row, cell col, 1)
    stitched = stitch_cells(blocks, cells)[..., 0]
    # Chunk (0,0) holds cells (0..1, 0..1), chunk (0,1) cells (0..1, 2..3), chunk (1,0) cell row 2.
    assert stitched.tolist() == [[0, 1, 4, 5], [2, 3, 6, 7], [8, 9, 12, 13]]


def test_weighted_sum_per_county_by_hand(tmp):
    # Population per pixel over the 5×5 grid; NaN and the nodata value -1 are not counted.
    people = np.arange(25, dtype=np.float32).reshape(5, 5)
    people[0, 0] = np.nan
    people[4, 4] = -1
    lu = ingest(write_tif(tmp / "lu.tif", CODES, nodata=9), tmp / "lu.zarr", chunk=256, scheduler="synchronous")
    vector = write_vector(tmp / "c.gpkg", [pixel_box(0, 0, 2, 3), pixel_box(2, 0, 5, 3), pixel_box(0, 3, 5, 5)], ["West", "East", "South"])
    zones = rasterize_zones(vector, like=lu, id_field="county", out=tmp / "z.zarr", scheduler="synchronous")
    from carbonscape.rasterize import open_zones

    store, table = open_zones(zones)
    import dask.array as da

    values = da.from_array(people, chunks=store.data.chunks)
    layout = Layout(n_counties=table.n_zones, params={"values_nodata": -1.0})
    lazy = accumulate([WEIGHTED_SUM], store.data, {"values": values}, layout=layout, grid=store.grid)
    sums = value_sums_table(np.asarray(lazy["weighted_sum"].compute(scheduler="synchronous")))
    by_county = sums.iloc[list(table.ids)].set_axis(list(table.values))
    # West: rows 0-2, columns 0-1 without (0,0): 1 + 5 + 6 + 10 + 11 = 33 people on 5 ha.
    assert by_county.loc["West", "sum"] == pytest.approx(33.0)
    assert by_county.loc["West", "pixels"] == 5 and by_county.loc["West", "area_m2"] == pytest.approx(50_000.0 * HA, rel=1e-7)
    assert by_county.loc["West", "mean"] == pytest.approx(33.0 / 5)
    # South: rows 3-4, all columns but (4,4): 15 + ... + 23 = 171.
    assert by_county.loc["South", "sum"] == pytest.approx(sum(range(15, 24)))


unit_ids = st.integers(1, 4)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    cell=st.integers(1, 6),
    chunk_cells=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    geographic=st.booleans(),
    seed=st.integers(0, 2**16),
    whole=st.booleans(),
    ragged=st.tuples(st.integers(1, 17), st.integers(1, 17)),
)
def test_cell_and_value_statistics_equal_their_numpy_references(shape, cell, chunk_cells, geographic, seed, whole, ragged):
    import dask.array as da

    rng = np.random.default_rng(seed)
    codes = rng.choice(np.array([1, 2, 3, 4, 7, 9], dtype=np.int16), size=shape)
    values = rng.normal(size=shape)
    values[rng.random(shape) < 0.1] = np.nan
    values[rng.random(shape) < 0.1] = -1.0
    counties = rng.integers(0, 4, size=shape).astype(np.int32)
    # Chunks of whole cells, or of any size (cells astride chunk edges: partial tables, added when stitched).
    chunks = (chunk_cells[0] * cell, chunk_cells[1] * cell) if whole else ragged
    crs, transform = ("EPSG:4326", from_origin(100, 40, 0.01, 0.01)) if geographic else ("EPSG:32648", from_origin(0, 0, 30, 30))
    grid = Grid.from_affine(crs=crs, transform=transform, shape=shape, chunks=chunks)
    cells = CellGrid(grid, cell)
    index = ClassIndex.build([1, 2, 3, 4], nodata=9)
    lazy_codes = da.from_array(codes, chunks=chunks)
    layout = Layout(n_counties=4, classes=index, params=cells_params(lazy_codes, cells, values_nodata=-1.0))
    rasters = {"landuse": lazy_codes, "values": da.from_array(values, chunks=chunks)}
    specs = [CELL_COUNTS, CELL_AREAS, CELL_COUNTS_AREAS, CELL_VALUES, WEIGHTED_SUM]
    lazy = accumulate(specs, da.from_array(counties, chunks=chunks), rasters, layout=layout, grid=grid)
    computed = {name: np.asarray(array.compute(scheduler="synchronous")) for name, array in lazy.items()}
    expected = accumulate_numpy(specs, counties, {"landuse": codes, "values": values}, layout=layout, grid=grid,
                                chunks=lazy_codes.chunks)
    np.testing.assert_array_equal(computed["cell_counts"], expected["cell_counts"])
    np.testing.assert_array_equal(computed["cell_counts_areas"][..., : index.n_cols], computed["cell_counts"])  # pixels exact
    for name in ("cell_areas", "cell_counts_areas", "cell_values", "weighted_sum"):
        np.testing.assert_allclose(computed[name], expected[name], rtol=1e-10, atol=1e-6)
    # And the stitched cells are numpy block sums of the whole raster (counts of one class, areas of all).
    stitched = stitch_cells(computed["cell_counts"], cells, lazy_codes.chunks)
    padded = np.zeros((cells.shape[0] * cell, cells.shape[1] * cell), dtype=np.int64)
    padded[: shape[0], : shape[1]] = codes == 2
    blocks = padded.reshape(cells.shape[0], cell, cells.shape[1], cell).sum(axis=(1, 3))
    np.testing.assert_array_equal(stitched[..., index.codes.index(2)], blocks)
    area = np.broadcast_to(grid.pixel_areas_m2(slice(0, shape[0]), slice(0, shape[1])), shape)
    padded_area = np.zeros((cells.shape[0] * cell, cells.shape[1] * cell))
    padded_area[: shape[0], : shape[1]] = area
    np.testing.assert_allclose(stitch_cells(computed["cell_areas"], cells, lazy_codes.chunks).sum(axis=-1),
                               padded_area.reshape(cells.shape[0], cell, cells.shape[1], cell).sum(axis=(1, 3)), rtol=1e-12)


def test_the_command_line_makes_cells_and_refuses_a_bad_size(tmp):
    from carbonscape.cli.main import cli
    from click.testing import CliRunner

    lu = ingest(write_tif(tmp / "lu.tif", CODES, nodata=9), tmp / "lu.zarr", chunk=256, scheduler="synchronous")
    pools = write_pools(tmp / "pools.csv", POOLS)
    runner = CliRunner()
    ok = runner.invoke(cli, ["supply", "--landuse", str(lu), "--grid", "200", "--pools", str(pools), "--out", str(tmp / "cells"),
                             "--scheduler", "synchronous"])
    assert ok.exit_code == 0, ok.output
    assert "in 9 cells of 200 m " in ok.output
    # The stage commands cannot go on from supply per cell: they say what the folder holds and what goes on.
    for command in (["cells"], ["zoning"], ["statistics"], ["maps"], ["report"]):
        stage = runner.invoke(cli, [*command, str(tmp / "cells")])
        assert stage.exit_code == 2, (command, stage.output)
        said = " ".join(stage.output.split())
        assert "supply per grid cell only" in said and "supply --grid" in said and "[units] grid" in said, (command, said)
        assert "carbonscape run study.toml" in said and "into it first" not in said, (command, said)
    assert {p.name for p in (tmp / "cells").iterdir()} >= {"supply_by_cell.csv", "cells.gpkg", "cell_supply_t_per_km2.tif", "cell_supply_t.tif"}
    bad = runner.invoke(cli, ["supply", "--landuse", str(lu), "--grid", "250", "--pools", str(pools), "--out", str(tmp / "bad"),
                              "--scheduler", "synchronous"])
    assert bad.exit_code == 2 and "not a multiple of the pixel size 100" in bad.output
    assert not (tmp / "bad").exists() or not any((tmp / "bad").iterdir())
    both = runner.invoke(cli, ["supply", "--landuse", str(lu), "--pools", str(pools), "--out", str(tmp / "x")])
    assert both.exit_code == 2 and "either --zones" in both.output


def test_the_command_line_sums_people_and_npp_per_cell(tmp):
    from carbonscape.cli.main import cli
    from click.testing import CliRunner

    lu = ingest(write_tif(tmp / "lu.tif", CODES, nodata=9), tmp / "lu.zarr", chunk=256, scheduler="synchronous")
    pools = write_pools(tmp / "pools.csv", POOLS)
    # People per 200 m pixel (a grid twice as coarse, same origin: one source pixel per cell; 3 × 3 of them
    # cover the 5 × 5 land use, the last row and column half outside it). NPP on the land-use grid.
    people = np.array([[10, 20, 30], [40, 50, 60], [70, 80, 90]], dtype=np.float32)
    write_tif(tmp / "pop.tif", people, transform=from_origin(500_000, 2_800_000, 200, 200))
    npp = np.arange(25, dtype=np.float32).reshape(5, 5) * 10
    write_tif(tmp / "npp.tif", npp)
    runner = CliRunner()
    done = runner.invoke(cli, ["supply", "--landuse", str(lu), "--grid", "200", "--pools", str(pools), "--out", str(tmp / "cells"),
                               "--population", str(tmp / "pop.tif"), "--npp", str(tmp / "npp.tif"), "--scheduler", "synchronous"])
    assert done.exit_code == 0, done.output
    table = pd.read_csv(tmp / "cells" / "supply_by_cell.csv").set_index(["row", "col"])
    # Each land-use pixel holds a quarter of its 200 m source pixel's people (a count over its source
    # pixel's area × the 1 ha pixel); a whole cell holds them all, an edge cell (1 or 2 pixels) a share.
    assert table.loc[(0, 0), "population"] == pytest.approx(10.0, rel=1e-6)
    assert table.loc[(1, 1), "population"] == pytest.approx(50.0, rel=1e-6)
    assert table.loc[(0, 2), "population"] == pytest.approx(30.0 / 2, rel=1e-6)  # two pixels of the edge column
    assert table.loc[(2, 2), "population"] == pytest.approx(90.0 / 4, rel=1e-6)  # the corner pixel alone
    # NPP: Σ NPP·a over the cell's pixels × 1e-6 (g C m-2 yr-1 × m² → t C/yr); numpy block sums of the raster.
    padded = np.zeros((6, 6))
    padded[:5, :5] = npp
    blocks = padded.reshape(3, 2, 3, 2).sum(axis=(1, 3)) * 10_000 * 1e-6
    for (r, c), value in table["sequestration_t_c"].items():
        assert value == pytest.approx(blocks[r, c], rel=1e-6)
    values = pd.read_csv(tmp / "cells" / "continuous_by_cell.csv")
    assert set(values["raster"]) == {"population", "npp"} and len(values) == 2 * len(table)
    bad = runner.invoke(cli, ["supply", "--landuse", str(lu), "--grid", "200", "--pools", str(pools), "--out", str(tmp / "bad"),
                              "--factor", str(tmp / "npp.tif"), "--scheduler", "synchronous"])
    assert bad.exit_code == 2 and "--factor" in bad.output


@pytest.mark.parametrize("geographic", [False, True])
def test_a_region_leaves_the_pixels_outside_it_out_of_every_cell(tmp, geographic):
    """`region=`: only the pixels with a county id > 0 count (supply, a raster's sums), and
    region_share is the area inside over the cell's area, by hand."""
    import dask.array as da

    region = np.array([
        [1, 1, 0, 0, 2],
        [1, 1, 0, 2, 2],
        [0, 1, 2, 2, 2],
        [3, 3, 3, 0, 0],
        [3, 3, 3, 0, 0],
    ], dtype=np.int32)
    transform = from_origin(100.0, 30.0, 0.01, 0.01) if geographic else from_origin(500_000, 2_800_000, 100, 100)
    crs = "EPSG:4326" if geographic else "EPSG:32648"
    lu = ingest(write_tif(tmp / "lu.tif", CODES, nodata=9, crs=crs, transform=transform), tmp / "lu.zarr", chunk=256, scheduler="synchronous")
    people = da.from_array(np.arange(25, dtype=np.float64).reshape(5, 5), chunks=3)
    from carbonscape.cells import cell_value_specs

    result = supply_cells(lu, write_pools(tmp / "pools.csv", POOLS), size=0.02 if geographic else 200, scheduler="synchronous",
                          region=da.from_array(region, chunks=2), extra=cell_value_specs(["people"]), rasters={"people": people})
    grid = Grid.from_affine(crs=crs, transform=transform, shape=(5, 5))
    area_ha = np.broadcast_to(grid.row_areas_m2(0, 5)[:, None] / 1e4, (5, 5))
    density = {1: 43.0, 2: 100.0, 3: 0.0, 4: 5.5, 9: 0.0}
    per_pixel = np.vectorize(density.get)(CODES) * area_ha * (region > 0)
    table = result.by_cell.set_index(["row", "col"])
    # Cell (0, 1) holds pixels (0..1, 2..3): only (1, 3) is inside; cell (2, 2) holds pixel (4, 4), outside: no row.
    assert (2, 2) not in table.index and (1, 2) in table.index  # (1, 2): pixels (2..3, 4): (2, 4) inside, code 3 (0 t/ha), land
    for (r, c), row in table.iterrows():
        block = (slice(2 * r, 2 * r + 2), slice(2 * c, 2 * c + 2))
        assert row["supply_t"] == pytest.approx(per_pixel[block].sum(), rel=1e-12), (r, c)
        inside = (region[block] > 0)
        assert row["region_share"] == pytest.approx((area_ha[block] * inside).sum() / area_ha[block].sum(), rel=1e-12), (r, c)
    assert table["supply_t"].sum() == pytest.approx(per_pixel.sum(), rel=1e-12)
    assert table.loc[(0, 1), "region_share"] == pytest.approx(0.25, rel=1e-3) and table.loc[(0, 0), "region_share"] == 1.0
    # The raster's sums: its pixels inside the region only (every one of them lies in a cell with land inside).
    assert result.raster_values("people")["sum"].sum() == np.arange(25.0).reshape(5, 5)[region > 0].sum()


# -- densities corrected per cell (factor rasters and a factor table) ------------------------------

REGION = np.array([  # county ids of the 5 × 5 raster: 0 outside every county
    [1, 1, 0, 0, 2],
    [1, 1, 0, 2, 2],
    [0, 1, 2, 2, 2],
    [3, 3, 3, 0, 0],
    [3, 3, 3, 0, 0],
], dtype=np.int32)


def test_factor_rasters_and_a_table_correct_each_cell_s_supply_by_hand(tmp):
    """Soil × 2 on the left two columns (a raster; NaN elsewhere: uncorrected), and county 2's
    above-ground × 3 (a table): each pixel's pools × their factors, summed per 2 × 2 cell, only
    inside the region; a cell astride counties 1 and 2 takes each pixel's own county's factor."""
    import dask.array as da
    from carbonscape.cells import CellFactors

    lu = ingest(write_tif(tmp / "lu.tif", CODES, nodata=9), tmp / "lu.zarr", chunk=256, scheduler="synchronous")
    soil = np.full((5, 5), np.nan, dtype=np.float32)
    soil[:, :2] = 2.0
    table = np.ones((4, 4))  # zone ids 0..3 × pools (above, below, soil, dead)
    table[2, 0] = 3.0
    factors = CellFactors(rasters={"c_soil": "k"}, county_factors=table)
    assert factors.pools == ("c_above", "c_soil")  # below and dead: 1 everywhere, not corrected
    result = supply_cells(lu, write_pools(tmp / "pools.csv", POOLS), size=200, scheduler="synchronous", region=da.from_array(REGION, chunks=2),
                          rasters={"k": da.from_array(soil, chunks=3)}, factors=factors)
    cells = result.by_cell.set_index(["row", "col"])
    # t/ha per pixel (above, below, soil, dead): 1 → (10, 2, 30, 1), 2 → (60, 15, 20, 5), 3 → 0, 4 → (1, 0.5, 4, 0).
    # Cell (0,0): pixels (0,0) (0,1) (1,0) (1,1), all code 1 in county 1, soil × 2: 4 × (10 + 2 + 60 + 1) = 292.
    assert cells.loc[(0, 0), "supply_t"] == pytest.approx(292.0)
    assert cells.loc[(0, 0), "supply_t_uncorrected"] == pytest.approx(172.0)
    # Cell (0,1): pixels (0,2) (0,3) (1,2) outside; (1,3) code 2 in county 2: above × 3 → 180 + 15 + 20 + 5 = 220.
    assert cells.loc[(0, 1), "supply_t"] == pytest.approx(220.0) and cells.loc[(0, 1), "supply_t_uncorrected"] == pytest.approx(100.0)
    # Cell (1,0): (2,0) outside; (2,1) code 9 (nodata); (3,0) (3,1) code 4 in county 3, soil × 2: 2 × (1 + 0.5 + 8) = 19.
    assert cells.loc[(1, 0), "supply_t"] == pytest.approx(19.0)
    # Cell (1,1): (2,2) code 2 county 2: 220; (2,3) code 3: 0; (3,2) code 4 county 3: 5.5; (3,3) outside.
    assert cells.loc[(1, 1), "supply_t"] == pytest.approx(225.5) and cells.loc[(1, 1), "supply_t_2"] == pytest.approx(220.0)
    assert result.summary["density_correction"] == {"pools": ["c_above", "c_soil"]}
    # The mean factors the Monte Carlo centres on: soil 2 on cell (0,0)'s class 1, above 3 on cell (0,1)'s class 2.
    mean = result.mean_factors()
    at = {cell: k for k, cell in enumerate(result.area_ha.index)}
    assert mean[at[cells.loc[(0, 0), "cell"]], 0].tolist() == [1.0, 1.0, 2.0, 1.0]
    assert mean[at[cells.loc[(0, 1), "cell"]], 1].tolist() == [3.0, 1.0, 1.0, 1.0]
    # Per pixel by numpy: the corrected density of each pixel inside the region, the cells' total.
    dens = {1: (10, 2, 30, 1), 2: (60, 15, 20, 5), 3: (0, 0, 0, 0), 4: (1, 0.5, 4, 0), 9: (0, 0, 0, 0)}
    total = 0.0
    for r in range(5):
        for c in range(5):
            if REGION[r, c] == 0:
                continue
            above, below, s, dead = dens[int(CODES[r, c])]
            total += above * table[REGION[r, c], 0] + below + s * (soil[r, c] if np.isfinite(soil[r, c]) else 1.0) + dead
    assert result.by_cell["supply_t"].sum() == pytest.approx(total)


def test_a_factor_table_without_the_counties_ids_is_refused(tmp):
    from carbonscape.cells import CellFactors

    lu = ingest(write_tif(tmp / "lu.tif", CODES, nodata=9), tmp / "lu.zarr", chunk=256, scheduler="synchronous")
    with pytest.raises(ValueError, match="region="):
        supply_cells(lu, write_pools(tmp / "pools.csv", POOLS), size=200, scheduler="synchronous",
                     factors=CellFactors(county_factors=np.full((4, 4), 2.0)))


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    cell=st.integers(1, 5),
    ragged=st.tuples(st.integers(1, 13), st.integers(1, 13)),
    crs=st.sampled_from(["utm", "geographic", "mercator"]),
    seed=st.integers(0, 2**16),
    which=st.sampled_from(["rasters", "table", "both"]),
)
def test_the_cell_factor_kernel_equals_its_numpy_reference_on_any_chunking(shape, cell, ragged, crs, seed, which):
    """CELL_FACTOR_AREAS through dask on ragged chunks (cells astride chunk edges), on grids of one
    pixel area, of areas by row and of areas from the lattice (Web Mercator), equals its numpy
    reference on the whole raster; and its pools summed with the densities, stitched, are the
    per-pixel corrected carbon summed per cell."""
    import dask.array as da
    from carbonscape.cells import FACTOR_IDS, CellFactors, cell_factor_spec

    rng = np.random.default_rng(seed)
    codes = rng.choice(np.array([1, 2, 3, 4, 7, 9], dtype=np.int16), size=shape)
    k1 = rng.uniform(0.5, 2.0, size=shape)
    k1[rng.random(shape) < 0.2] = np.nan
    k2 = rng.uniform(0.5, 2.0, size=shape).astype(np.float32)
    ids = rng.integers(0, 4, size=shape).astype(np.int32)
    table = rng.uniform(0.5, 2.0, size=(4, 4))
    rasters = {} if which == "table" else {"c_above": "k1", "c_soil": "k2", "c_below": "k1"}
    factors = CellFactors(rasters=rasters, county_factors=None if which == "rasters" else table)
    transform = {"utm": ("EPSG:32648", from_origin(0, 0, 30, 30)), "geographic": ("EPSG:4326", from_origin(100, 40, 0.01, 0.01)),
                 "mercator": ("EPSG:3857", from_origin(0, 6_000_000, 5_000, 5_000))}[crs]
    grid = Grid.from_affine(crs=transform[0], transform=transform[1], shape=shape, chunks=ragged)
    cells = CellGrid(grid, cell)
    index = ClassIndex.build([1, 2, 3, 4], nodata=9)
    lazy_codes = da.from_array(codes, chunks=ragged)
    layout = Layout(classes=index, params=cells_params(lazy_codes, cells, **factors.params()))
    spec = cell_factor_spec(factors)
    arrays = {"landuse": codes, "k1": k1, "k2": k2, FACTOR_IDS: ids}
    lazy = accumulate([spec], None, {name: da.from_array(a, chunks=ragged) for name, a in arrays.items()}, layout=layout, grid=grid)
    computed = np.asarray(lazy["cell_factor_areas"].compute(scheduler="synchronous"))
    expected = accumulate_numpy([spec], None, arrays, layout=layout, grid=grid, chunks=lazy_codes.chunks)["cell_factor_areas"]
    np.testing.assert_allclose(computed, expected, rtol=1e-10, atol=1e-6)
    # Stitched and weighted by the densities: Σ over the cell's pixels of a × Σ_pool density × f_pool × F[county, pool].
    from carbonscape.carbon import POOL_COLUMNS

    densities = {1: (10, 2, 30, 1), 2: (60, 15, 20, 5), 3: (0, 0, 0, 0), 4: (1, 0.5, 4, 0)}
    stitched = stitch_cells(computed, cells, lazy_codes.chunks)
    n_cols, pools = index.n_cols, factors.pools
    got = np.zeros(cells.shape)
    plain = stitch_cells(np.asarray(accumulate([CELL_AREAS], None, {"landuse": lazy_codes}, layout=layout, grid=grid)["cell_areas"]
                                    .compute(scheduler="synchronous")), cells, lazy_codes.chunks)
    for j, column in enumerate(POOL_COLUMNS):
        d = np.array([densities[c][j] for c in index.codes])
        a = stitched[..., pools.index(column) * n_cols:pools.index(column) * n_cols + len(d)] if column in pools else plain[..., :len(d)]
        got += (a * d).sum(axis=-1)
    area = np.broadcast_to(grid.pixel_areas_m2(slice(0, shape[0]), slice(0, shape[1])), shape)
    per_pixel = np.zeros(shape)
    for j, column in enumerate(POOL_COLUMNS):
        d = np.vectorize(lambda c, j=j: float(densities.get(int(c), (0, 0, 0, 0))[j]), otypes=[np.float64])(codes)
        f = np.ones(shape)
        if column in rasters:
            v = {"k1": k1, "k2": k2}[rasters[column]].astype(np.float64)
            f = np.where(np.isfinite(v), v, 1.0)
        if factors.county_factors is not None:
            f = f * table[ids, j]
        per_pixel += area * d * f
    padded = np.zeros((cells.shape[0] * cell, cells.shape[1] * cell))
    padded[: shape[0], : shape[1]] = per_pixel
    np.testing.assert_allclose(got, padded.reshape(cells.shape[0], cell, cells.shape[1], cell).sum(axis=(1, 3)), rtol=1e-9, atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    cell=st.integers(1, 5),
    ragged=st.tuples(st.integers(1, 13), st.integers(1, 13)),
    crs=st.sampled_from(["utm", "geographic", "mercator"]),
    seed=st.integers(0, 2**16),
)
def test_the_region_s_statistics_equal_their_numpy_references_on_any_chunking(shape, cell, ragged, crs, seed):
    """The region applied inside each chunk's task: the counts of the pixels inside, the region's
    area and a value per county id looked up by the kernel, through dask on ragged chunks, equal
    their numpy references and numpy block sums of the masked rasters."""
    import dask.array as da
    from carbonscape.cells import REGION_IDS, _in_region, lookup_spec, region_spec

    rng = np.random.default_rng(seed)
    codes = rng.choice(np.array([1, 2, 3, 4, 9], dtype=np.uint8), size=shape)
    ids = rng.integers(0, 4, size=shape).astype(np.int32)
    table = np.array([np.nan, 2.5, np.nan, 7.0])  # county 2 has no value
    transform = {"utm": ("EPSG:32648", from_origin(0, 0, 30, 30)), "geographic": ("EPSG:4326", from_origin(100, 40, 0.01, 0.01)),
                 "mercator": ("EPSG:3857", from_origin(0, 6_000_000, 5_000, 5_000))}[crs]
    grid = Grid.from_affine(crs=transform[0], transform=transform[1], shape=shape, chunks=ragged)
    cells = CellGrid(grid, cell)
    index = ClassIndex.build([1, 2, 3, 4], nodata=9)
    lazy_codes = da.from_array(codes, chunks=ragged)
    layout = Layout(classes=index, params=cells_params(lazy_codes, cells))
    specs = [_in_region(CELL_COUNTS_AREAS, fill=9, floats=()), lookup_spec("cell_region", None), lookup_spec("cell_values", table),
             region_spec(9, table), _in_region(CELL_COUNTS, fill=9, floats=())]
    arrays = {"landuse": codes, REGION_IDS: ids}
    lazy = accumulate(specs, None, {name: da.from_array(a, chunks=ragged) for name, a in arrays.items()}, layout=layout, grid=grid)
    computed = {name: np.asarray(a.compute(scheduler="synchronous")) for name, a in lazy.items()}
    expected = accumulate_numpy(specs, None, arrays, layout=layout, grid=grid, chunks=lazy_codes.chunks)
    np.testing.assert_array_equal(computed["cell_counts"], expected["cell_counts"])
    for name in ("cell_region", "cell_values", "cell_counts_areas", "cell_region_pass"):
        np.testing.assert_allclose(computed[name], expected[name], rtol=1e-10, atol=1e-6)
    # The one-kernel pass of a region is the three statistics side by side.
    n = 2 * index.n_cols
    fused = computed["cell_region_pass"]
    np.testing.assert_allclose(fused[..., :n], computed["cell_counts_areas"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(fused[..., n:n + 4], computed["cell_region"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(fused[..., n + 4:], computed["cell_values"], rtol=1e-12, atol=1e-9)

    def blocks(array):
        padded = np.zeros((cells.shape[0] * cell, cells.shape[1] * cell))
        padded[: shape[0], : shape[1]] = array
        return padded.reshape(cells.shape[0], cell, cells.shape[1], cell).sum(axis=(1, 3))

    area = np.broadcast_to(grid.pixel_areas_m2(slice(0, shape[0]), slice(0, shape[1])), shape)
    counts = stitch_cells(computed["cell_counts"], cells, lazy_codes.chunks)
    np.testing.assert_array_equal(counts[..., index.codes.index(2)], blocks((codes == 2) & (ids > 0)))
    region = stitch_cells(computed["cell_region"], cells, lazy_codes.chunks)
    np.testing.assert_allclose(region[..., 2], blocks(area * (ids > 0)), rtol=1e-9, atol=1e-6)
    values = stitch_cells(computed["cell_values"], cells, lazy_codes.chunks)
    valued = np.isin(ids, [1, 3])
    np.testing.assert_allclose(values[..., 3], blocks(np.where(valued, area * table[ids], 0.0)), rtol=1e-9, atol=1e-6)
    np.testing.assert_array_equal(values[..., 0], blocks(valued))
