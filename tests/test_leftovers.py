"""Nothing half-written after a failure or an interrupt: staging areas removed, also when a chunk
task writes into one after the first removal, and no empty output folder left behind."""
from __future__ import annotations

import numpy as np
import pytest
from carbonscape import ingest, rasterize_zones, supply
from carbonscape.cluster import executor
from carbonscape.coverage import CoverageError
from carbonscape.io import atomic_path
from conftest import pixel_box, write_pools, write_tif, write_vector


def test_a_local_staging_folder_written_into_after_an_interrupt_is_swept_when_the_executor_closes(tmp_path):
    with executor("synchronous"):
        with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "lu.zarr") as staging:
            (staging / "landuse" / "c" / "0").mkdir(parents=True)
            raise KeyboardInterrupt
        assert not staging.exists()
        (staging / "landuse" / "c" / "0").mkdir(parents=True)  # a chunk task finishing after the interrupt
        (staging / "landuse" / "c" / "0" / "0").write_bytes(b"late")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_refused_supply_leaves_no_empty_output_folder(tmp_path):
    codes = np.array([[1, 1, 2], [1, 9, 2], [2, 2, 2]], dtype=np.uint8)
    lu = ingest(write_tif(tmp_path / "lu.tif", codes, nodata=9), tmp_path / "lu.zarr", chunk=16, scheduler="synchronous")
    # "East" holds the nodata pixel (1 of 6): below min_coverage 0.9, refused after the pass.
    vector = write_vector(tmp_path / "c.gpkg", [pixel_box(0, 0, 1, 2), pixel_box(1, 0, 3, 3), pixel_box(0, 2, 1, 3)], ["West", "East", "South"])
    zones = rasterize_zones(vector, like=lu, id_field="county", out=tmp_path / "z.zarr", scheduler="synchronous")
    pools = write_pools(tmp_path / "pools.csv", [(1, 10, 2, 30, 1), (2, 60, 15, 20, 5)])
    with pytest.raises(CoverageError, match="East: covered 83.3 %"):
        supply(lu, zones, pools, out=tmp_path / "res", scheduler="synchronous")
    assert not (tmp_path / "res").exists()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "mine.txt").write_text("x")
    with pytest.raises(CoverageError):
        supply(lu, zones, pools, out=tmp_path / "kept", scheduler="synchronous")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["mine.txt"]
