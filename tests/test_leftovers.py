"""Nothing half-written after a failure or an interrupt: staging areas removed, also when a chunk
task writes into one after the first removal, and no empty output folder left behind."""
from __future__ import annotations

import numpy as np
import pytest
from carbonscape import ingest, rasterize_zones, supply
from carbonscape.cluster import executor
from carbonscape.coverage import CoverageError
from carbonscape.cli.main import cli
from carbonscape.io import atomic_path
from click.testing import CliRunner
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


def refused_supply_inputs(tmp_path):
    """Land use, zones and pools that supply refuses after its pass: "East" holds the nodata pixel
    (1 of 6), below min_coverage 0.9."""
    codes = np.array([[1, 1, 2], [1, 9, 2], [2, 2, 2]], dtype=np.uint8)
    lu = ingest(write_tif(tmp_path / "lu.tif", codes, nodata=9), tmp_path / "lu.zarr", chunk=16, scheduler="synchronous")
    vector = write_vector(tmp_path / "c.gpkg", [pixel_box(0, 0, 1, 2), pixel_box(1, 0, 3, 3), pixel_box(0, 2, 1, 3)], ["West", "East", "South"])
    zones = rasterize_zones(vector, like=lu, id_field="county", out=tmp_path / "z.zarr", scheduler="synchronous")
    return lu, zones, write_pools(tmp_path / "pools.csv", [(1, 10, 2, 30, 1), (2, 60, 15, 20, 5)])


def test_a_refused_supply_leaves_no_empty_output_folder(tmp_path):
    lu, zones, pools = refused_supply_inputs(tmp_path)
    with pytest.raises(CoverageError, match="East: covered 83.3 %"):
        supply(lu, zones, pools, out=tmp_path / "res", scheduler="synchronous")
    assert not (tmp_path / "res").exists()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "mine.txt").write_text("x")
    with pytest.raises(CoverageError):
        supply(lu, zones, pools, out=tmp_path / "kept", scheduler="synchronous")
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["mine.txt"]


def test_a_refused_supply_into_new_nested_folders_leaves_none_of_the_folders_it_made(tmp_path):
    """A user's trial: `supply ... --out a/b/new` refused removed ``new`` but left ``a/b``."""
    lu, zones, pools = refused_supply_inputs(tmp_path)
    with pytest.raises(CoverageError):
        supply(lu, zones, pools, out=tmp_path / "a" / "b" / "new", scheduler="synchronous")
    assert not (tmp_path / "a").exists()
    (tmp_path / "mine").mkdir()  # a folder the user had stays, empty as it was
    with pytest.raises(CoverageError):
        supply(lu, zones, pools, out=tmp_path / "mine" / "b" / "new", scheduler="synchronous")
    assert list((tmp_path / "mine").iterdir()) == []
    done = CliRunner().invoke(cli, ["supply", "--landuse", str(lu), "--zones", str(zones), "--pools", str(pools),
                                    "--out", str(tmp_path / "x" / "y" / "new"), "--scheduler", "synchronous"])
    assert done.exit_code == 2 and "East: covered 83.3 %" in done.output
    assert not (tmp_path / "x").exists()


def test_a_failed_file_or_results_folder_leaves_none_of_the_parent_folders_it_made(tmp_path):
    from carbonscape.study.outputs import results_folder

    with pytest.raises(ValueError), atomic_path(tmp_path / "a" / "b" / "table.csv") as staging:
        staging.write_text("half")
        raise ValueError("refused")
    with pytest.raises(ValueError), results_folder(tmp_path / "c" / "d" / "results", owner={"study": "s"}) as staging:
        (staging / "supply_by_county.csv").write_text("half")
        raise ValueError("refused")
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    with atomic_path(tmp_path / "a" / "b" / "table.csv") as staging:  # success keeps them
        staging.write_text("whole")
    assert (tmp_path / "a" / "b" / "table.csv").read_text() == "whole"
