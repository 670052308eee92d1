"""Results are all or nothing: built in a staging folder beside --out and swapped in whole; a
failed, interrupted or killed run leaves the previous folder exactly as it was; a folder of other
files or another study's results is refused (exit 2) unless --overwrite."""

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from carbonscape import InputError, run_study
from carbonscape.cli.main import cli
from click.testing import CliRunner
from conftest import REGION_INPUTS

STUDY = """
[study]
name = "{name}"
""" + REGION_INPUTS + """
[demand]
table = "population.csv"
per_capita_t = 4.0
[zoning]
method = "jenks"
k = {k}
scheme = "classes"
[outputs]
maps = {maps}
report = false
"""


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too) with its SHA-256 and mtime."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() + f"@{p.stat().st_mtime_ns}"
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


@pytest.fixture(scope="module")
def region(small_study):
    return small_study("folder", shape=(300, 280), n_counties=6, seed=5, population=lambda n: np.arange(1, n + 1) * 1000).base


def write_study(folder: Path, name: str = "a", *, k: int = 3, maps: bool = False) -> Path:
    path = folder / f"{name}.toml"
    path.write_text(STUDY.format(name=name, k=k, maps=str(maps).lower()), encoding="utf-8")
    return path


def test_a_folder_of_the_user_s_own_files_is_refused_unless_overwrite(region, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.docx").write_bytes(b"my thesis")
    before = snapshot(out)
    study = write_study(region, "own")
    result = CliRunner().invoke(cli, ["run", str(study), "--out", str(out), "--scheduler", "synchronous"])
    assert result.exit_code == 2, result.output
    assert f"{out} holds files carbonscape did not write (notes.docx)" in result.output and "--overwrite" in result.output
    assert snapshot(out) == before and leftovers(out) == []
    result = CliRunner().invoke(cli, ["run", str(study), "--out", str(out), "--overwrite", "--scheduler", "synchronous"])
    assert result.exit_code == 0, result.output
    assert not (out / "notes.docx").exists() and (out / "ratio_zones.csv").exists()


def test_another_study_s_results_are_refused_and_a_rerun_replaces_its_own_whole(region, tmp_path):
    out = tmp_path / "results"
    first = run_study(write_study(region, "first"), out=out, scheduler="synchronous")
    assert first.out == out.absolute() and first.files["ratio_zones"] == out.absolute() / "ratio_zones.csv"
    assert all(str(path).startswith(str(out.absolute())) for path in first.files.values())
    assert ".staging" not in (out / "run.json").read_text()
    (out / "stale.csv").write_text("an output an older run left behind")
    before = snapshot(out)
    with pytest.raises(InputError, match=r"holds the results of another study \(.*first.toml\); give another folder"):
        run_study(write_study(region, "second"), out=out, scheduler="synchronous")
    assert snapshot(out) == before
    # The same study again: its own folder is replaced whole (no stale file survives), stores reused.
    store = out / "stores" / "landuse.zarr" / "zarr.json"
    stamp = store.stat().st_mtime_ns
    run_study(write_study(region, "first"), out=out, scheduler="synchronous")
    assert not (out / "stale.csv").exists() and store.stat().st_mtime_ns == stamp
    run_study(write_study(region, "second"), out=out, scheduler="synchronous", overwrite=True)
    assert '"name": "second"' in (out / "run.json").read_text()
    assert leftovers(out) == []


def test_a_folder_holding_the_study_s_inputs_is_never_replaced(region):
    result = CliRunner().invoke(cli, ["run", str(write_study(region, "inside")), "--out", str(region), "--overwrite"])
    assert result.exit_code == 2 and "holds the study's own inputs" in result.output, result.output


def test_a_late_failure_leaves_the_previous_results_exactly_as_they_were(region, tmp_path):
    """k above the number of distinct ratios is only known after supply: the good run's folder
    stays whole, with no table of the failed run mixed in."""
    out = tmp_path / "results"
    study = write_study(region, "late", k=3)
    run_study(study, out=out, scheduler="synchronous")
    before = snapshot(out)
    population = pd.read_csv(region / "population.csv")
    try:
        population.assign(population=0).to_csv(region / "population.csv", index=False)  # every ratio 0: one distinct value
        with pytest.raises(InputError):
            run_study(study, out=out, scheduler="synchronous")
    finally:
        population.to_csv(region / "population.csv", index=False)
    assert snapshot(out) == before and leftovers(out) == []


def _console() -> list[str]:
    script = Path(sys.executable).with_name("carbonscape")
    return [str(script)] if script.exists() else [sys.executable, "-m", "carbonscape.cli.main"]


@pytest.fixture(scope="module")
def slow_region(small_study):
    """A study whose maps take a few seconds to draw: time to stop it between supply and the end."""
    return small_study("slow", shape=(1200, 1100), n_counties=40, seed=8, population=lambda n: np.arange(1, n + 1) * 1000).base


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_a_run_stopped_mid_way_leaves_the_previous_results_as_they_were(slow_region, tmp_path, how):
    study = write_study(slow_region, f"stopped{int(how)}", k=4, maps=True)
    out = tmp_path / "results"
    command = [*_console(), "-q", "run", str(study), "--out", str(out), "--scheduler", "threads"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    before = snapshot(out)
    # Again, stopped once its staging folder holds the supply tables (maps and report still to come).
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not list(out.parent.glob(f".{out.name}.staging-*/supply_by_county.csv")):
        assert process.poll() is None, f"the run ended before it could be stopped: {process.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.send_signal(how)
    _, stderr = process.communicate(timeout=300)
    assert process.returncode != 0
    if how != signal.SIGKILL:
        assert process.returncode == 130 and "Interrupted; no partial output was left behind." in stderr, stderr
        assert leftovers(out) == []
    assert snapshot(out) == before
    if how == signal.SIGKILL:  # the killed run's staging folder is cleared by the next run
        assert leftovers(out)
        rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert rerun.returncode == 0, rerun.stderr
        assert leftovers(out) == [] and (out / "ratio_zones.csv").exists()


def test_demo_into_another_study_s_results_is_refused(region, tmp_path):
    out = tmp_path / "results"
    run_study(write_study(region, "mine"), out=out, scheduler="synchronous")
    before = snapshot(out)
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--resolution", "2000", "--no-maps", "--no-report",
                                      "--scheduler", "synchronous"])
    assert result.exit_code == 2 and "holds the results of another study" in result.output, result.output
    assert snapshot(out) == before
    assert os.path.exists(out / "run.json")


def test_check_out_checks_the_folder_run_out_would_write(region, tmp_path):
    """Two study files side by side share the default results/ folder: `check` of the second was
    refused for the first's results with no way to say where it will run; `check --out DIR` checks
    DIR, as `run --out DIR` writes it (a subprocess, as a user types it)."""
    import shutil

    from conftest import CARBONSCAPE

    def check(study: Path, *out: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(CARBONSCAPE), "check", str(study), *out], capture_output=True, text=True, timeout=600)

    first, second = write_study(region, "first_beside"), write_study(region, "second_beside")
    try:
        run_study(first, scheduler="synchronous")  # into results/ beside the study files
        refused = check(second)
        said = " ".join(refused.stderr.split())
        assert refused.returncode == 2 and "holds the results of another study" in said and "first_beside.toml" in said, said
        elsewhere = tmp_path / "second"
        done = check(second, "--out", str(elsewhere))
        assert done.returncode == 0, done.stderr[-3000:]
        assert "all inputs look right" in done.stdout and not elsewhere.exists()  # check writes nothing
        run_study(second, out=elsewhere, scheduler="synchronous")
        assert check(second, "-o", str(elsewhere)).returncode == 0  # its own results: a rerun replaces them
        again = check(first, "--out", str(elsewhere))
        assert again.returncode == 2 and "second_beside.toml" in again.stderr
        assert check(first).returncode == 0
    finally:
        shutil.rmtree(region / "results", ignore_errors=True)
