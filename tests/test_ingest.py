import os

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from carbonscape import AlignmentError, InputError, ingest, open_store
from conftest import write_tif
from rasterio.transform import from_origin


def test_round_trip_and_xarray_conventions(tmp):
    array = np.arange(35 * 23, dtype=np.uint8).reshape(35, 23) % 7
    src = write_tif(tmp / "lu.tif", array, nodata=6, tiled=True)
    store = ingest(src, tmp / "lu.zarr", chunk=16, scheduler="synchronous")
    opened = open_store(store)
    assert opened.grid.chunks == (16, 16) and opened.grid.shape == (35, 23)
    assert opened.nodata == 6
    np.testing.assert_array_equal(opened.data.compute(scheduler="synchronous"), array)
    counts = opened.attrs["code_counts"]
    assert counts == {str(v): int((array == v).sum()) for v in range(7)}
    ds = xr.open_zarr(store)
    assert ds["landuse"].dtype == np.uint8
    assert ds["landuse"].rio.crs.to_epsg() == 32648
    assert tuple(ds["landuse"].rio.transform())[:6] == (100.0, 0.0, 500000.0, 0.0, -100.0, 2800000.0)


def test_rerun_is_a_no_op_unless_forced(tmp):
    src = write_tif(tmp / "lu.tif", np.ones((20, 20), dtype=np.uint8))
    store = ingest(src, tmp / "lu.zarr", chunk=16, scheduler="synchronous")
    stamp = os.stat(store / "zarr.json").st_mtime_ns
    ingest(src, store, chunk=16, scheduler="synchronous")
    assert os.stat(store / "zarr.json").st_mtime_ns == stamp
    ingest(src, store, chunk=16, scheduler="synchronous", force=True)
    assert os.stat(store / "zarr.json").st_mtime_ns != stamp
    ingest(src, store, chunk=32, scheduler="synchronous")  # other options rebuild too
    assert open_store(store).grid.chunks == (20, 20)
    assert not [p for p in tmp.iterdir() if p.name.startswith(".")], "temporary files left behind"


def test_tiles_of_one_grid_are_mosaicked(tmp):
    rng = np.random.default_rng(1)
    full = rng.integers(1, 5, (30, 40)).astype(np.uint8)
    paths = []
    for r0, c0 in ((0, 0), (0, 25), (17, 0), (17, 25)):
        part = full[r0 : r0 + 17 if r0 == 0 else 30, c0 : c0 + 25 if c0 == 0 else 40]
        transform = from_origin(500_000 + c0 * 100, 2_800_000 - r0 * 100, 100, 100)
        paths.append(write_tif(tmp / f"t{r0}_{c0}.tif", part, transform=transform, nodata=0))
    store = ingest(paths, tmp / "mosaic.zarr", chunk=16, scheduler="threads")
    np.testing.assert_array_equal(open_store(store).data.compute(), full)


def test_overlapping_tiles_keep_each_other_s_data_and_gaps_are_nodata(tmp):
    """Where tiles overlap, a tile's nodata never erases another's data (whichever is read last);
    side by side they are copied as they are; a gap between tiles is nodata."""
    rng = np.random.default_rng(2)
    full = rng.integers(1, 5, (30, 50)).astype(np.uint8)
    a = full[:, :30].copy()
    a[5:9, 22:30] = 0  # nodata in a where b has data
    b = full[:, 22:40].copy()
    b[12:20, 0:8] = 0  # nodata in b where a has data
    c = full[:, 44:].copy()  # beside b with a gap of 4 columns
    paths = [write_tif(tmp / "a.tif", a, transform=from_origin(500_000, 2_800_000, 100, 100), nodata=0),
             write_tif(tmp / "b.tif", b, transform=from_origin(500_000 + 22 * 100, 2_800_000, 100, 100), nodata=0),
             write_tif(tmp / "c.tif", c, transform=from_origin(500_000 + 44 * 100, 2_800_000, 100, 100), nodata=0)]
    expected = full.copy()
    expected[:, 40:44] = 0
    for order in (paths, paths[::-1]):
        store = ingest(order, tmp / "mosaic.zarr", chunk=16, scheduler="threads", force=True)
        np.testing.assert_array_equal(open_store(store).data.compute(), expected)


def test_misaligned_tile_is_refused(tmp):
    a = write_tif(tmp / "a.tif", np.ones((10, 10), dtype=np.uint8), nodata=0)
    b = write_tif(tmp / "b.tif", np.ones((10, 10), dtype=np.uint8), nodata=0, transform=from_origin(501_050, 2_800_000, 100, 100))
    with pytest.raises(AlignmentError, match="b.tif.*fraction of a pixel"):
        ingest([a, b], tmp / "bad.zarr", scheduler="synchronous")
    assert not (tmp / "bad.zarr").exists()


def test_float_raster_and_missing_crs_are_refused(tmp):
    f = write_tif(tmp / "f.tif", np.ones((4, 4), dtype=np.float32))
    with pytest.raises(InputError, match="f.tif.*integers"):
        ingest(f, tmp / "f.zarr", scheduler="synchronous")
    import rasterio

    with rasterio.open(tmp / "nocrs.tif", "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8", transform=from_origin(10, 10, 1, 1)) as dst:
        dst.write(np.ones((4, 4), dtype=np.uint8), 1)
    with pytest.raises(InputError, match="nocrs.tif.*no CRS"):
        ingest(tmp / "nocrs.tif", tmp / "n.zarr", scheduler="synchronous")
    with pytest.raises(InputError, match="no such file"):
        ingest(tmp / "missing.tif", tmp / "m.zarr", scheduler="synchronous")


def test_rotated_grid_is_refused_with_the_file_named(tmp):
    from carbonscape import GridError
    from rasterio.transform import Affine

    rotated = write_tif(tmp / "rotated.tif", np.ones((4, 4), dtype=np.uint8), transform=Affine(100, 20, 500_000, 20, -100, 2_800_000))
    with pytest.raises(GridError, match="rotated.tif.*rotat"):
        ingest(rotated, tmp / "r.zarr", scheduler="synchronous")
    assert not (tmp / "r.zarr").exists()
    # (A CRS without units cannot be written to a GeoTIFF: GDAL gives it metres; tests/test_grid.py
    # checks the grid refuses one, which ingest now asks before writing anything.)


def test_stores_written_by_others_are_read_through_zarr(tmp):
    """A store from plain xarray (zarr's default codecs) takes the zarr path, not the direct reader."""
    import dask.array as dask_array
    from carbonscape.grid import Grid
    from carbonscape.io import _direct_chunks, raster_dataset

    array = np.random.default_rng(5).integers(0, 9, (40, 30)).astype(np.int16)
    grid = Grid.from_affine(crs="EPSG:32648", transform=from_origin(0, 4000, 100, 100), shape=array.shape, chunks=(16, 16))
    ds = raster_dataset(dask_array.from_array(array, chunks=16), grid, name="landuse", nodata=-1, attrs={})
    ds.to_zarr(tmp / "other.zarr", zarr_format=3, consolidated=False)
    assert _direct_chunks(tmp / "other.zarr" / "landuse", grid) is None
    opened = open_store(tmp / "other.zarr")
    np.testing.assert_array_equal(opened.data.compute(), array)
    assert opened.nodata == -1 and opened.grid.same_grid(grid)


def test_direct_reader_matches_zarr_on_edge_chunks(tmp):
    import zarr
    from carbonscape.io import _direct_chunks

    array = np.random.default_rng(6).integers(0, 200, (37, 29)).astype(np.uint16)
    store = ingest(write_tif(tmp / "e.tif", array, nodata=65535), tmp / "e.zarr", chunk=16, scheduler="synchronous")
    direct = _direct_chunks(store / "landuse", open_store(store).grid)
    assert direct is not None
    np.testing.assert_array_equal(direct.compute(scheduler="synchronous"), zarr.open_group(str(store))["landuse"][:])
