import os

import numpy as np
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from rasterio.transform import from_origin

from carbonscape import AlignmentError, InputError, ingest, open_store

from conftest import write_tif


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
