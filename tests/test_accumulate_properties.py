"""The accumulation layer: every statistic equals its plain-numpy reference on random rasters and
chunkings; one pass reads each chunk once; building a graph computes nothing; results by name."""

import dask
import dask.array as da
import numpy as np
import pytest
from carbonscape.accumulate import (
    AREAS,
    CODE_HISTOGRAM,
    COUNTS,
    LIBRARY,
    Accumulation,
    Chunk,
    ClassIndex,
    Layout,
    RowAreas,
    accumulate,
    accumulate_numpy,
    finalize,
)
from carbonscape.errors import AlignmentError, ZoneError
from carbonscape.grid import Grid
from dask.highlevelgraph import HighLevelGraph
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pyproj import CRS

WGS84 = CRS.from_epsg(4326).to_wkt()
UTM = CRS.from_epsg(32648).to_wkt()


class FieldAreas:
    """A per-pixel area field (as a projected grid with a varying scale factor gives): the
    AreaSource protocol's third shape, (rows, cols)."""

    def __init__(self, field: np.ndarray) -> None:
        self.field = field

    def area_block(self, rows: slice, cols: slice) -> np.ndarray:
        return self.field[rows, cols]

    def uniform_area_m2(self) -> None:
        return None


@st.composite
def passes(draw):
    rows, cols = draw(st.integers(1, 30)), draw(st.integers(1, 30))
    n_counties = draw(st.integers(1, 6))
    counties = draw(hnp.arrays(np.uint16, (rows, cols), elements=st.integers(0, n_counties - 1)))
    dtype = draw(st.sampled_from([np.uint8, np.int16, np.int32]))
    lo = 0 if dtype == np.uint8 else -3
    codes = draw(hnp.arrays(dtype, (rows, cols), elements=st.integers(lo, 12)))
    codes_to = draw(hnp.arrays(dtype, (rows, cols), elements=st.integers(lo, 12)))
    table_codes = draw(st.lists(st.integers(0, 10), min_size=1, max_size=8, unique=True))
    nodata = draw(st.one_of(st.none(), st.integers(lo, 12).filter(lambda v: v not in table_codes)))
    chunks = (draw(st.integers(1, rows)), draw(st.integers(1, cols)))
    kind = draw(st.sampled_from(["geographic", "projected", "field", "lattice"]))
    if kind == "field":
        areas = FieldAreas(draw(hnp.arrays(np.float64, (rows, cols), elements=st.floats(0, 1e4, allow_nan=False))))
    elif kind == "lattice":
        # The grid as its own area source: kernels rebuild each row's areas from its area lattice
        # (Web Mercator: areas vary by row; UTM far from its central meridian: by row and column).
        crs, x0 = draw(st.sampled_from([(3857, 1.2e7), (32648, 9.5e5)]))
        areas = Grid(crs_wkt=CRS.from_epsg(crs).to_wkt(), transform=(30.0, 0.0, x0, 0.0, -30.0, draw(st.floats(1e6, 6e6))),
                     shape=(rows, cols))
        assert areas.uniform_area_m2() is None and hasattr(areas, "area_lattice")
    else:
        top = draw(st.floats(-80, 80))
        grid = Grid(
            crs_wkt=WGS84 if kind == "geographic" else UTM,
            transform=(0.01, 0.0, 100.0, 0.0, -0.01, top) if kind == "geographic" else (30.0, 0.0, 5e5, 0.0, -30.0, 3e6),
            shape=(rows, cols),
        )
        areas = RowAreas(grid)
    hist_lo = draw(st.integers(-3, 5))
    # The second map may have its own pools table (other classes) and its own nodata.
    to_codes = draw(st.one_of(st.none(), st.lists(st.integers(0, 10), min_size=1, max_size=8, unique=True)))
    to_nodata = draw(st.one_of(st.none(), st.integers(lo, 12).filter(lambda v: v not in (to_codes or table_codes))))
    layout = Layout(
        n_counties=n_counties,
        classes=ClassIndex.build(table_codes, nodata=nodata),
        classes_to=None if to_codes is None and to_nodata is None else ClassIndex.build(to_codes or table_codes, nodata=to_nodata),
        codes=(hist_lo, draw(st.integers(1, 10))),
    )
    return counties, codes, codes_to, chunks, layout, areas


@settings(max_examples=80, deadline=None)
@given(passes(), st.lists(st.sampled_from(sorted(LIBRARY)), min_size=1, max_size=4, unique=True))
def test_every_statistic_equals_its_numpy_reference_in_one_pass(case, names):
    counties, codes, codes_to, chunks, layout, areas = case
    specs = [LIBRARY[name] for name in names]
    reference = accumulate_numpy(specs, counties, {"landuse": codes, "landuse_to": codes_to}, layout=layout, areas=areas)
    lazy = accumulate(
        specs, da.from_array(counties, chunks=chunks),
        {"landuse": da.from_array(codes, chunks=chunks), "landuse_to": da.from_array(codes_to, chunks=chunks)},
        layout=layout, areas=areas, split_every=2,
    )
    assert list(lazy) == names
    computed = dask.compute(lazy, scheduler="synchronous")[0]
    for name in names:
        assert computed[name].shape == reference[name].shape
        if LIBRARY[name].dtype.kind == "f":
            np.testing.assert_allclose(computed[name], reference[name], rtol=1e-12, atol=1e-6)
        else:
            np.testing.assert_array_equal(computed[name], reference[name])
    if "counts" in names:
        assert computed["counts"].sum() == counties.size
    if "transitions" in names:
        # The transfer matrix's margins are each map's own counts.
        alone = accumulate_numpy([LIBRARY["counts"]], counties, {"landuse": codes}, layout=layout)["counts"]
        np.testing.assert_array_equal(computed["transitions"].sum(axis=2), alone)
    if "areas" in names:
        total = np.broadcast_to(areas.area_block(slice(0, codes.shape[0]), slice(0, codes.shape[1])), codes.shape).sum()
        assert computed["areas"].sum() == pytest.approx(total, rel=1e-12, abs=1e-6)


def test_hand_computed_tables():
    # counties      codes (nodata 9)   classes 1, 2 → columns 0, 1; nodata 2; unknown 3
    # 1 1 2         1 2 9
    # 0 2 2         1 7 2
    counties = np.array([[1, 1, 2], [0, 2, 2]], dtype=np.uint8)
    codes = np.array([[1, 2, 9], [1, 7, 2]], dtype=np.uint8)
    layout = Layout(n_counties=3, classes=ClassIndex.build([1, 2], nodata=9), codes=(0, 10))
    areas = FieldAreas(np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    lazy = accumulate([COUNTS, AREAS, CODE_HISTOGRAM], da.from_array(counties, chunks=(1, 2)), {"landuse": da.from_array(codes, chunks=(1, 2))}, layout=layout, areas=areas)
    out = dask.compute(lazy, scheduler="synchronous")[0]
    np.testing.assert_array_equal(out["counts"], [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 1]])
    np.testing.assert_array_equal(out["areas"], [[4, 0, 0, 0], [1, 2, 0, 0], [0, 6, 3, 5]])
    assert finalize(CODE_HISTOGRAM, out["code_histogram"], layout) == {1: 2, 2: 2, 7: 1, 9: 1}


def _counted_array(data: np.ndarray, chunks: tuple[int, int], reads: list, name: str) -> da.Array:
    """A dask array whose chunk tasks log each read, as a store's chunk reads would."""
    template = da.from_array(data, chunks=chunks)

    def read(i: int, j: int, block: np.ndarray) -> np.ndarray:
        reads.append((name, i, j))
        return block

    layer = {}
    rows, cols = template.chunks
    r0 = 0
    for i, h in enumerate(rows):
        c0 = 0
        for j, w in enumerate(cols):
            layer[(name, i, j)] = (read, i, j, data[r0 : r0 + h, c0 : c0 + w])
            c0 += w
        r0 += h
    return da.Array(HighLevelGraph.from_collections(name, layer, dependencies=()), name, template.chunks, dtype=data.dtype)


def test_one_pass_reads_each_chunk_once_for_all_statistics():
    rng = np.random.default_rng(1)
    counties = rng.integers(0, 4, (20, 30)).astype(np.uint8)
    codes = rng.integers(0, 6, (20, 30)).astype(np.uint16)
    reads: list = []
    layout = Layout(n_counties=4, classes=ClassIndex.build([1, 2, 3], nodata=0), codes=(0, 8))
    grid = Grid(crs_wkt=WGS84, transform=(0.01, 0.0, 100.0, 0.0, -0.01, 25.0), shape=(20, 30))
    lazy = accumulate(
        [COUNTS, AREAS, CODE_HISTOGRAM], _counted_array(counties, (7, 8), reads, "counties-read"),
        {"landuse": _counted_array(codes, (7, 8), reads, "landuse-read")}, layout=layout, grid=grid,
    )
    dask.compute(lazy, scheduler="synchronous")
    n_chunks = 3 * 4
    assert len(reads) == 2 * n_chunks
    assert len(set(reads)) == 2 * n_chunks


def _refuse(*args, **kwargs):
    raise AssertionError("graph building computed something")


def test_building_the_graph_computes_nothing():
    def poisoned(shape: tuple[int, int], dtype: str, name: str) -> da.Array:
        layer = {(name, i, j): (_refuse,) for i in range(shape[0] // 100) for j in range(shape[1] // 100)}
        chunks = ((100,) * (shape[0] // 100), (100,) * (shape[1] // 100))
        return da.Array(HighLevelGraph.from_collections(name, layer, dependencies=()), name, chunks, dtype=dtype)

    layout = Layout(n_counties=50, classes=ClassIndex.build(range(1, 10), nodata=255), codes=(0, 256))
    grid = Grid(crs_wkt=WGS84, transform=(0.001, 0.0, 100.0, 0.0, -0.001, 25.0), shape=(2000, 3000))
    with dask.config.set(scheduler=_refuse):
        lazy = accumulate(
            [COUNTS, AREAS, CODE_HISTOGRAM], poisoned((2000, 3000), "u2", "counties-x"),
            {"landuse": poisoned((2000, 3000), "u1", "landuse-x")}, layout=layout, grid=grid,
        )
    assert lazy["counts"].shape == (50, 11)  # 9 classes, nodata, unknown
    assert lazy["areas"].dtype == np.float64
    assert lazy["code_histogram"].shape == (257,)


def _pixels_per_block(blocks, where: Chunk) -> np.ndarray:
    return np.array([blocks["landuse"].size, where.rows.start, where.cols.start], dtype=np.int64)


def _weighted(blocks, where: Chunk) -> np.ndarray:
    ids = blocks["counties"].astype(np.int64).ravel()
    return np.bincount(ids, weights=blocks["weights"].ravel(), minlength=where.layout.n_counties)


def test_a_statistic_declared_outside_the_library_plugs_in_with_its_own_raster_and_blockwise_tables():
    # What issue 10 adds: sums of a float raster read by name, and tables kept one per block.
    weighted = Accumulation("weighted", chunk=_weighted, reference=_weighted, reads=("counties", "weights"),
                            dtype=np.dtype("f8"), shape=lambda layout: (layout.n_counties,))
    per_block = Accumulation("per_block", chunk=_pixels_per_block, reference=_pixels_per_block,
                             shape=lambda layout: (3,), combine="blocks")
    rng = np.random.default_rng(2)
    counties = rng.integers(0, 3, (10, 12)).astype(np.uint8)
    weights = rng.random((10, 12))
    codes = np.ones((10, 12), dtype=np.uint8)
    layout = Layout(n_counties=3)
    chunks = (4, 5)
    lazy = accumulate([weighted, per_block], da.from_array(counties, chunks=chunks),
                      {"weights": da.from_array(weights, chunks=chunks), "landuse": da.from_array(codes, chunks=chunks)}, layout=layout)
    out = dask.compute(lazy, scheduler="synchronous")[0]
    reference = accumulate_numpy([weighted, per_block], counties, {"weights": weights, "landuse": codes}, layout=layout,
                                 chunks=((4, 4, 2), (5, 5, 2)))
    np.testing.assert_allclose(out["weighted"], [weights[counties == k].sum() for k in range(3)])
    np.testing.assert_allclose(out["weighted"], reference["weighted"])
    assert out["per_block"].shape == (3, 3, 3)
    np.testing.assert_array_equal(out["per_block"], reference["per_block"])
    np.testing.assert_array_equal(out["per_block"][2, 1], [2 * 5, 8, 5])


def test_unit_ids_out_of_range_and_misaligned_rasters_are_refused():
    layout = Layout(n_counties=2, classes=ClassIndex.build([1], nodata=None))
    counties = np.array([[0, 1, 2]], dtype=np.uint8)
    codes = np.ones((1, 3), dtype=np.uint8)
    lazy = accumulate([COUNTS], da.from_array(counties), {"landuse": da.from_array(codes)}, layout=layout)
    with pytest.raises(ZoneError, match="unit id"):
        lazy["counts"].compute(scheduler="synchronous")
    with pytest.raises(AlignmentError, match="chunked differently"):
        accumulate([COUNTS], da.from_array(counties, chunks=1), {"landuse": da.from_array(codes, chunks=2)}, layout=layout)
    with pytest.raises(ValueError, match="need pixel areas"):
        accumulate([AREAS], da.from_array(counties), {"landuse": da.from_array(codes)}, layout=layout)
    with pytest.raises(ValueError, match="not given"):
        accumulate([COUNTS], da.from_array(counties), {}, layout=layout)


def test_bound_statistics_count_several_maps_in_one_pass_each_with_its_own_classes():
    from carbonscape.accumulate import TRANSITIONS, bind

    rng = np.random.default_rng(3)
    counties = rng.integers(0, 3, (17, 23)).astype(np.uint8)
    maps = {label: rng.integers(0, 7, (17, 23)).astype(np.uint8) for label in ("2000", "2010", "2030 eco")}
    layouts = {
        "2000": Layout(n_counties=3, classes=ClassIndex.build([1, 2, 3], nodata=0)),
        "2010": Layout(n_counties=3, classes=ClassIndex.build([1, 2, 3, 4], nodata=6)),
        "2030 eco": Layout(n_counties=3, classes=ClassIndex.build([2, 5], nodata=None)),
    }
    specs = [bind(COUNTS, f"counts {label}", rasters={"landuse": label}, layout=layout) for label, layout in layouts.items()]
    pair = Layout(n_counties=3, classes=layouts["2000"].classes, classes_to=layouts["2030 eco"].classes)
    specs.append(bind(TRANSITIONS, "2000 → 2030 eco", rasters={"landuse": "2000", "landuse_to": "2030 eco"}, layout=pair))
    reads: list = []
    lazy = accumulate(specs, _counted_array(counties, (5, 6), reads, "c"),
                      {label: _counted_array(data, (5, 6), reads, label) for label, data in maps.items()}, layout=Layout())
    out = dask.compute(lazy, scheduler="synchronous")[0]
    assert len(reads) == 4 * 4 * 4  # 4 rasters × 16 chunks, each read once for 4 statistics
    reference = accumulate_numpy(specs, counties, maps, layout=Layout())
    for label, layout in layouts.items():
        alone = accumulate_numpy([COUNTS], counties, {"landuse": maps[label]}, layout=layout)["counts"]
        np.testing.assert_array_equal(out[f"counts {label}"], alone)
        np.testing.assert_array_equal(reference[f"counts {label}"], alone)
    assert out["2000 → 2030 eco"].shape == (3, 5, 4)
    np.testing.assert_array_equal(out["2000 → 2030 eco"], reference["2000 → 2030 eco"])
    np.testing.assert_array_equal(out["2000 → 2030 eco"].sum(axis=1), out["counts 2030 eco"])


@settings(max_examples=60, deadline=None)
@given(passes(), st.integers(2, 5))
def test_sparse_transitions_equal_their_numpy_reference_and_the_dense_table(case, split_every):
    from carbonscape.accumulate import SPARSE_TRANSITIONS, TRANSITION_TABLES, sparse_to_dense

    counties, codes, codes_to, chunks, layout, areas = case
    rasters = {"landuse": codes, "landuse_to": codes_to}
    reference = accumulate_numpy([SPARSE_TRANSITIONS, TRANSITION_TABLES], counties, rasters, layout=layout, areas=areas)
    lazy = accumulate([SPARSE_TRANSITIONS], da.from_array(counties, chunks=chunks),
                      {k: da.from_array(v, chunks=chunks) for k, v in rasters.items()}, layout=layout, areas=areas, split_every=split_every)
    got = dask.compute(lazy, scheduler="synchronous")[0]["sparse_transitions"]
    expected = reference["sparse_transitions"]
    np.testing.assert_array_equal(got["key"], expected["key"])
    np.testing.assert_array_equal(got["pixels"], expected["pixels"])
    np.testing.assert_allclose(got["area_m2"], expected["area_m2"], rtol=1e-12, atol=1e-6)
    assert (got["pixels"] > 0).all() and got["pixels"].sum() == counties.size
    np.testing.assert_allclose(sparse_to_dense(got, layout), reference["transition_tables"], rtol=1e-12, atol=1e-6)


def test_sparse_transitions_stay_small_with_16_bit_codes_hundreds_of_classes_and_thousands_of_units():
    """300 classes of 16-bit codes and 3,000 units: the dense table would hold 3,000 × 302 × 302
    cells (2.2 GB of float64); the sparse one holds the cells present, and the hash table grows
    (far more than its first 1,024 slots' worth of cells in one chunk)."""
    from carbonscape.accumulate import SPARSE_TRANSITIONS, sparse_cells

    rng = np.random.default_rng(9)
    shape = (300, 400)
    classes = rng.choice(np.arange(1000, 60000), 300, replace=False)
    counties = rng.integers(0, 3000, shape).astype(np.uint16)
    before = rng.choice(classes, shape).astype(np.uint16)
    after = np.where(rng.random(shape) < 0.3, rng.choice(classes, shape), before).astype(np.uint16)
    after[:5, :5] = 65535  # nodata in the later map only
    layout = Layout(n_counties=3000, classes=ClassIndex.build(classes, nodata=65535))
    areas = RowAreas(Grid(crs_wkt=WGS84, transform=(0.001, 0.0, 100.0, 0.0, -0.001, 25.0), shape=shape))
    lazy = accumulate([SPARSE_TRANSITIONS], da.from_array(counties, chunks=(150, 200)),
                      {"landuse": da.from_array(before, chunks=(150, 200)), "landuse_to": da.from_array(after, chunks=(150, 200))},
                      layout=layout, areas=areas)
    got = dask.compute(lazy, scheduler="synchronous")[0]["sparse_transitions"]
    expected = accumulate_numpy([SPARSE_TRANSITIONS], counties, {"landuse": before, "landuse_to": after}, layout=layout, areas=areas)
    expected = expected["sparse_transitions"]
    assert 3000 * 302 * 302 > 1000 * len(got) and len(got) > 60000
    np.testing.assert_array_equal(got["key"], expected["key"])
    np.testing.assert_array_equal(got["pixels"], expected["pixels"])
    np.testing.assert_allclose(got["area_m2"], expected["area_m2"], rtol=1e-12)
    county, a, b, pixels, _ = sparse_cells(got, layout)
    # Hand check of one cell: the pixels of county 7 going from the first class to itself.
    code = classes[0]
    assert pixels[(county == 7) & (a == 0) & (b == 0)].sum() == ((counties == 7) & (before == code) & (after == code)).sum()
    assert pixels[b == layout.classes.nodata_col].sum() == 25


@settings(max_examples=50, deadline=None)
@given(passes(), st.integers(2, 5), st.data())
def test_trajectories_through_three_maps_equal_their_reference_and_give_every_pair_and_map(case, split_every, data):
    from carbonscape.accumulate import TRANSITION_TABLES, Trajectories

    counties, codes, codes_to, chunks, layout, areas = case
    # A third map: the second with some pixels changed again (in its dtype, codes -3..12).
    third = np.where(data.draw(hnp.arrays(np.bool_, codes.shape)), codes_to, codes[::-1, ::-1] if codes.ndim == 2 else codes).astype(codes.dtype)
    third = third.astype(data.draw(st.sampled_from([third.dtype, np.int32])))  # maps of mixed dtypes go through their columns
    third_index = ClassIndex.build(data.draw(st.lists(st.integers(0, 10), min_size=1, max_size=8, unique=True)), nodata=None)
    indexes = (layout.classes, layout.to_classes, third_index)
    maps = {"m0": codes, "m1": codes_to, "m2": third}
    # Both ways of counting a chunk: a table of every cell, or a hash table of the cells present.
    paths = Trajectories(maps=tuple(maps), classes=indexes, n_counties=layout.n_counties, dense_cells=data.draw(st.sampled_from([0, 1 << 20])))
    spec = paths.statistic()
    lazy = accumulate([spec], da.from_array(counties, chunks=chunks), {k: da.from_array(v, chunks=chunks) for k, v in maps.items()},
                      layout=layout, areas=areas, split_every=split_every)
    got = dask.compute(lazy, scheduler="synchronous")[0]["trajectories"]
    expected = accumulate_numpy([spec], counties, maps, layout=layout, areas=areas)["trajectories"]
    np.testing.assert_array_equal(got["key"], expected["key"])
    np.testing.assert_array_equal(got["pixels"], expected["pixels"])
    np.testing.assert_allclose(got["area_m2"], expected["area_m2"], rtol=1e-12, atol=1e-6)
    for i, j in ((0, 1), (1, 2), (0, 2)):
        pair_layout = Layout(n_counties=layout.n_counties, classes=indexes[i], classes_to=indexes[j])
        dense = accumulate_numpy([TRANSITION_TABLES], counties, {"landuse": maps[f"m{i}"], "landuse_to": maps[f"m{j}"]},
                                 layout=pair_layout, areas=areas)["transition_tables"]
        z, a, b, pixels, area = paths.pair(got, i, j)
        rebuilt = np.zeros_like(dense)
        rebuilt[0, z, a, b], rebuilt[1, z, a, b] = pixels, area
        np.testing.assert_allclose(rebuilt, dense, rtol=1e-12, atol=1e-6)
        margin_pixels, margin_areas = paths.margin(got, i)
        np.testing.assert_array_equal(margin_pixels, dense[0].sum(axis=2))
        np.testing.assert_allclose(margin_areas, dense[1].sum(axis=2), rtol=1e-12, atol=1e-6)
