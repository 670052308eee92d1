import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

import carbonscape
from carbonscape.cli.main import cli

COMMANDS = ["ingest", "zones", "supply", "generate"]


@pytest.fixture
def runner():
    return CliRunner()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(runner, command):
    result = runner.invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and f"carbonscape {command}" in result.output


def test_version(runner):
    result = runner.invoke(cli, ["--version"])
    assert result.exit_code == 0 and carbonscape.__version__ in result.output


def test_generated_region_end_to_end(runner, tmp_path):
    steps = [
        ["generate", str(tmp_path / "r"), "--size", "300x260", "--counties", "6"],
        ["-q", "ingest", str(tmp_path / "r" / "landuse.tif"), "--out", str(tmp_path / "lu.zarr"), "--chunk", "128", "--scheduler", "threads"],
        ["-q", "zones", str(tmp_path / "r" / "counties.gpkg"), "--like", str(tmp_path / "lu.zarr"), "--id-field", "county", "--out", str(tmp_path / "z.zarr"), "--scheduler", "threads"],
        ["supply", "--landuse", str(tmp_path / "lu.zarr"), "--zones", str(tmp_path / "z.zarr"), "--pools", str(tmp_path / "r" / "pools.csv"), "--out", str(tmp_path / "out"), "--scheduler", "threads", "--no-progress"],
    ]
    for step in steps:
        result = runner.invoke(cli, step)
        assert result.exit_code == 0, result.output
    assert "total supply" in result.output
    table = pd.read_csv(tmp_path / "out" / "supply_by_county.csv")
    assert len(table) == 6 and table["share_pct"].sum() == pytest.approx(100)


def test_bad_input_exits_2_with_one_paragraph(runner, tmp_path):
    result = runner.invoke(cli, ["ingest", str(tmp_path / "missing.tif"), "--out", str(tmp_path / "x.zarr")])
    assert result.exit_code == 2
    assert "missing.tif: no such file" in result.output and "Traceback" not in result.output


def test_failure_exits_1_and_debug_shows_the_traceback(tmp_path):
    carbonscape.make_region(tmp_path / "r", shape=(64, 64), n_counties=3)
    lu = carbonscape.ingest(tmp_path / "r" / "landuse.tif", tmp_path / "lu.zarr", chunk=64, scheduler="synchronous")
    zones = carbonscape.rasterize_zones(tmp_path / "r" / "counties.gpkg", like=lu, id_field="county", out=tmp_path / "z.zarr", scheduler="synchronous")
    command = [sys.executable, "-m", "carbonscape.cli.main", "supply", "--landuse", str(lu), "--zones", str(zones),
               "--pools", str(tmp_path / "r" / "pools.csv"), "--out", str(tmp_path / "o"), "--scheduler", "tcp://127.0.0.1:9"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "could not reach the dask scheduler" in done.stderr and "Traceback" not in done.stderr
    debug = subprocess.run([*command[:3], "--debug", *command[3:]], capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
