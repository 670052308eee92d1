import os
import subprocess
import sys

import carbonscape
import pandas as pd
import pytest
from carbonscape.cli.main import cli
from click.testing import CliRunner

COMMANDS = ["ingest", "zones", "supply", "generate", "run", "check", "init", "demo", "maps", "report", "completion"]


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
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 1
    assert "could not reach the dask scheduler" in done.stderr and "Traceback" not in done.stderr
    debug = subprocess.run([*command[:3], "--debug", *command[3:]], capture_output=True, text=True, timeout=120, env=env)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_init_writes_a_template_that_check_reads(runner, tmp_path):
    target = tmp_path / "new" / "study.toml"
    assert runner.invoke(cli, ["init", str(target)]).exit_code == 0
    assert "[zoning]" in target.read_text()
    again = runner.invoke(cli, ["init", str(target)])
    assert again.exit_code == 2 and "--force" in again.output
    checked = runner.invoke(cli, ["check", str(target)])
    # The template's files do not exist yet: every one is listed, in one paragraph, exit code 2.
    assert checked.exit_code == 2
    for name in ("landuse.tif", "pools.csv", "counties.gpkg", "population.csv"):
        assert name in checked.output
    assert "Traceback" not in checked.output


def test_completion_script(runner):
    result = runner.invoke(cli, ["completion", "bash"])
    assert result.exit_code == 0 and "_CARBONSCAPE_COMPLETE" in result.output


def test_demo_command_with_maps_and_report(runner, tmp_path):
    result = runner.invoke(cli, ["demo", "--out", str(tmp_path / "d"), "--resolution", "1000", "--scheduler", "threads", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "Table 1" in result.output and "固碳优化区" in result.output
    assert (tmp_path / "d" / "report.html").exists() and (tmp_path / "d" / "maps" / "fig5_zones.png").exists()
    redraw = runner.invoke(cli, ["maps", str(tmp_path / "d"), "--format", "pdf"])
    assert redraw.exit_code == 0 and (tmp_path / "d" / "maps" / "fig2_supply.pdf").exists()
    assert runner.invoke(cli, ["report", str(tmp_path / "d")]).exit_code == 0
