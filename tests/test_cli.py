import os
import re
import subprocess
import sys
from pathlib import Path

import carbonscape
import pandas as pd
import pytest
from carbonscape.cli.main import cli
from click.testing import CliRunner

COMMANDS = ["ingest", "zones", "supply", "generate", "run", "check", "init", "demo", "maps", "report", "completion", "settings"]


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


def _console_script() -> list[str]:
    """The installed `carbonscape` console script (carbonscape.cli.main:main), else the module."""
    script = Path(sys.executable).with_name("carbonscape")
    return [str(script)] if script.exists() else [sys.executable, "-m", "carbonscape.cli.main"]


def test_help_and_bad_input_as_a_real_process(tmp_path):
    done = subprocess.run([*_console_script(), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "carbonscape demo --out demo-out" in done.stdout and not done.stderr
    sub = subprocess.run([*_console_script(), "ingest", "--help"], capture_output=True, text=True, timeout=60)
    assert sub.returncode == 0 and "--progress / --no-progress" in sub.stdout and "Default: auto" in sub.stdout
    run = tmp_path / "run"
    run.mkdir()
    (run / "counties.gpkg").write_bytes(b"\x00 this is not a GeoPackage" * 40)
    bad = subprocess.run([*_console_script(), "maps", str(run)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2, bad.stderr
    assert bad.stdout == ""
    assert bad.stderr.startswith("Error: ") and "counties.gpkg is not a readable GeoPackage" in bad.stderr and "carbonscape run" in bad.stderr
    assert "Traceback" not in bad.stderr and "DRIVER" not in bad.stderr


def _ingest_command(tmp_path, *extra: str) -> tuple[list[str], Path]:
    region = tmp_path / "r"
    if not region.exists():
        carbonscape.make_region(region, shape=(600, 500), n_counties=4, seed=3)
    out = tmp_path / f"lu{len(list(tmp_path.glob('lu*.zarr')))}.zarr"
    return [*_console_script(), *extra[:1], "ingest", str(region / "landuse.tif"), "--out", str(out), "--chunk", "64", *extra[1:]], out


@pytest.mark.parametrize("scheduler", ["threads", "processes", None])
def test_progress_off_a_terminal_is_log_lines_on_stderr(tmp_path, scheduler):
    command, out = _ingest_command(tmp_path, "-v", *(["--scheduler", scheduler] if scheduler else []))
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)  # stderr is a pipe, not a terminal
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}\n"  # stdout carries the result only: `P=$(carbonscape ingest ...)` works
    assert "\r" not in done.stderr and "\x1b[" not in done.stderr and "Completed" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if re.search(r"ingest .*: \d+% \(\d+/\d+ tasks, ", line)]
    assert lines and lines[-1].startswith("INFO: ") and re.search(r": 100% \((\d+)/\1 tasks", lines[-1]), done.stderr
    assert len(lines) <= 12  # about one line per 10%, not one per poll
    if scheduler is None:
        assert re.search(r"^INFO: dask dashboard: http", done.stderr, re.M)


def test_quiet_hides_progress_and_the_dashboard(tmp_path):
    command, out = _ingest_command(tmp_path, "-q")
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and done.stdout == f"{out}\n" and done.stderr == "", done.stderr
    command, out = _ingest_command(tmp_path, "-v", "--no-progress", "--scheduler", "threads")
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and "%" not in done.stderr, done.stderr


def test_python_warnings_are_log_lines(tmp_path):
    code = ("import warnings\nfrom carbonscape.cli.main import cli\n"
            "@cli.command()\ndef odd():\n    warnings.warn('something odd', UserWarning)\n"
            "import sys\ncli(sys.argv[1:], prog_name='carbonscape')\n")
    done = subprocess.run([sys.executable, "-c", code, "odd"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "WARNING: something odd\n"
    verbose = subprocess.run([sys.executable, "-c", code, "-v", "odd"], capture_output=True, text=True, timeout=60)
    assert "WARNING: something odd (UserWarning, <string>:5)" in verbose.stderr and "warnings.warn(" not in verbose.stderr
    quiet = subprocess.run([sys.executable, "-c", code, "-qq", "odd"], capture_output=True, text=True, timeout=60)
    assert quiet.stderr == ""


def test_study_summary_lists_zones_in_the_scheme_order(capsys):
    from types import SimpleNamespace

    from carbonscape.cli.main import _print_study_summary

    ratio = pd.DataFrame({"class": [1, 7, 3, 4, 2, 0], "zone": ["低碳保持区", "固碳优化区", "协调发展区", "碳汇发展区", "低碳保持区", ""]})
    totals = {"supply_t": 1e6, "counties": 6, "sum_of_county_densities_t_per_km2": 1.0, "regional_density_t_per_km2": 1.0}
    _print_study_summary(SimpleNamespace(totals=totals, ratio_zones=ratio, out="out", files={}))
    zones_line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("zones"))
    assert zones_line == "zones    固碳优化区: 1; 碳汇发展区: 1; 协调发展区: 1; 低碳保持区: 2"
