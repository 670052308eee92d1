"""Cluster features against real processes: a `dask scheduler` and two `dask worker`s on 127.0.0.1."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from carbonscape import cluster, ingest, rasterize_zones, supply
from carbonscape.errors import ClusterError, InputError
from carbonscape.synthetic import make_region

DASK = [sys.executable, "-m", "dask"]


@pytest.fixture(scope="module")
def region_stores(tmp_path_factory):
    base = tmp_path_factory.mktemp("cluster")
    region = make_region(base / "in", shape=(600, 500), n_counties=8, seed=11)
    lu = ingest(region.landuse, base / "lu.zarr", chunk=128, scheduler="threads")
    zones = rasterize_zones(region.counties, like=lu, id_field="county", out=base / "z.zarr", scheduler="threads")
    reference = supply(lu, zones, region.pools, scheduler="synchronous")
    return region, lu, zones, reference, base


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    base = tmp_path_factory.mktemp("scheduler")
    scheduler_file = base / "scheduler.json"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [subprocess.Popen([*DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert scheduler_file.exists(), "dask scheduler did not start"
        for name in ("w1", "w2"):
            procs.append(subprocess.Popen([*DASK, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1", "--nworkers", "1",
                                           "--name", name, "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(base / name)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        from distributed import Client

        with Client(scheduler_file=str(scheduler_file), timeout="30s") as client:
            client.wait_for_workers(2, timeout=60)
            address = client.scheduler.address
        yield address, scheduler_file
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _tables(path: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(path / f"{name}.csv") for name in ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool")}


def test_cli_against_a_running_scheduler_gives_the_same_tables(region_stores, dask_cluster, tmp_path):
    region, lu, zones, reference, _ = region_stores
    address, scheduler_file = dask_cluster
    for label, target in (("address", address), ("file", str(scheduler_file))):
        out = tmp_path / label
        done = subprocess.run(
            [sys.executable, "-m", "carbonscape.cli.main", "supply", "--landuse", str(lu), "--zones", str(zones), "--pools", str(region.pools),
             "--out", str(out), "--scheduler", target, "--no-progress"],
            capture_output=True, text=True, timeout=180,
        )
        assert done.returncode == 0, done.stderr
        tables = _tables(out)
        pd.testing.assert_series_equal(tables["supply_by_county"]["supply_t"], reference.by_county["supply_t"], check_names=False, rtol=1e-9)
        assert tables["supply_by_county_class"]["pixels"].tolist() == reference.by_county_class["pixels"].tolist()


def test_dask_scheduler_address_setting_is_honoured(region_stores, dask_cluster, tmp_path):
    region, lu, zones, reference, _ = region_stores
    address, _ = dask_cluster
    env = {**os.environ, "DASK_SCHEDULER_ADDRESS": address}
    # The ingest runs on the cluster's workers, which read the GeoTIFF by path.
    done = subprocess.run(
        [sys.executable, "-m", "carbonscape.cli.main", "-v", "ingest", str(region.landuse), "--out", str(tmp_path / "lu.zarr"), "--chunk", "256", "--no-progress"],
        capture_output=True, text=True, timeout=180, env=env,
    )
    assert done.returncode == 0, done.stderr
    from distributed import Client

    with Client(address) as client:
        # The cluster's workers, not this process, ran the reads: the scheduler knows their tasks.
        prefixes = client.run_on_scheduler(lambda dask_scheduler: sorted(dask_scheduler.task_prefixes))
    assert any(prefix.startswith("ingest") for prefix in prefixes), prefixes
    result = supply(tmp_path / "lu.zarr", rasterize_zones(region.counties, like=tmp_path / "lu.zarr", id_field="county", out=tmp_path / "z.zarr", scheduler="threads"),
                    region.pools, scheduler=address)
    assert result.by_county["pixels"].tolist() == reference.by_county["pixels"].tolist()


def test_relative_paths_reach_workers_that_run_elsewhere(region_stores, dask_cluster, tmp_path):
    """The workers run in another folder than the command: relative paths must not reach them as
    such (they used to write the chunks into their own folder and read back zeros)."""
    import shutil

    region, _, _, reference, _ = region_stores
    address, _ = dask_cluster
    for source, name in ((region.landuse, "landuse.tif"), (region.counties, "counties.gpkg"), (region.pools, "pools.csv")):
        shutil.copy(source, tmp_path / name)
    steps = [
        ["ingest", "landuse.tif", "--out", "lu.zarr", "--chunk", "256"],
        ["zones", "counties.gpkg", "--like", "lu.zarr", "--id-field", "county", "--out", "z.zarr"],
        ["supply", "--landuse", "lu.zarr", "--zones", "z.zarr", "--pools", "pools.csv", "--out", "out"],
    ]
    for step in steps:
        done = subprocess.run([sys.executable, "-m", "carbonscape.cli.main", *step, "--scheduler", address, "--no-progress"],
                              capture_output=True, text=True, timeout=180, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    table = pd.read_csv(tmp_path / "out" / "supply_by_county.csv")
    assert table["pixels"].tolist() == reference.by_county["pixels"].tolist()
    pd.testing.assert_series_equal(table["supply_t"], reference.by_county["supply_t"], check_names=False, rtol=1e-9)


@pytest.mark.parametrize(("value", "message"), [
    ("thread", "'thread' is not a scheduler"),
    ("missing/scheduler.json", "no such scheduler file"),
])
def test_bad_scheduler_values_are_bad_input(region_stores, value, message, tmp_path):
    region, lu, zones, _, _ = region_stores
    done = subprocess.run([sys.executable, "-m", "carbonscape.cli.main", "supply", "--landuse", str(lu), "--zones", str(zones),
                           "--pools", str(region.pools), "--out", str(tmp_path / "out"), "--scheduler", value],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_file_that_is_not_a_scheduler_file(region_stores, tmp_path):
    from carbonscape.errors import InputError

    region, lu, zones, _, _ = region_stores
    (tmp_path / "s.json").write_text("{}")
    with pytest.raises(InputError, match="s.json: not a dask scheduler file"):
        supply(lu, zones, region.pools, scheduler=str(tmp_path / "s.json"))


def test_local_cluster_default(region_stores):
    region, lu, zones, reference, _ = region_stores
    result = supply(lu, zones, region.pools)  # no scheduler: a LocalCluster for the call
    assert result.by_class["pixels"].tolist() == reference.by_class["pixels"].tolist()


def test_unreachable_scheduler_is_a_clear_error(region_stores):
    import dask

    region, lu, zones, _, _ = region_stores
    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}), pytest.raises(ClusterError, match="could not reach the dask scheduler 'tcp://127.0.0.1:9'"):
        supply(lu, zones, region.pools, scheduler="tcp://127.0.0.1:9")


def test_progress_with_a_remote_scheduler_goes_to_stderr_only(region_stores, dask_cluster, tmp_path):
    region, lu, zones, _, _ = region_stores
    address, scheduler_file = dask_cluster
    out = tmp_path / "lu.zarr"
    # The bug: `P=$(carbonscape ingest ... --scheduler tcp://... 2>/dev/null)` captured bar text.
    done = subprocess.run(
        [sys.executable, "-m", "carbonscape.cli.main", "ingest", str(region.landuse), "--out", str(out), "--chunk", "64", "--scheduler", address],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}\n"
    lines = [line for line in done.stderr.splitlines() if re.match(r"INFO: ingest .*: \d+% \(\d+/\d+ tasks, \d+ s\)$", line)]
    assert lines and re.search(r": 100% \((\d+)/\1 tasks", lines[-1]), done.stderr
    assert "\r" not in done.stderr and "\x1b[" not in done.stderr
    # supply prints its summary on stdout; the scheduler's progress stays off it.
    summary = subprocess.run(
        [sys.executable, "-m", "carbonscape.cli.main", "supply", "--landuse", str(lu), "--zones", str(zones), "--pools", str(region.pools),
         "--out", str(tmp_path / "s"), "--scheduler", str(scheduler_file), "--progress"],
        capture_output=True, text=True, timeout=180,
    )
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.startswith("total supply ") and "%" not in summary.stdout and "\r" not in summary.stdout
    assert re.search(r"^INFO: supply: .*: 100% \(", summary.stderr, re.M), summary.stderr


def test_progress_report_lines_are_throttled(monkeypatch, caplog):
    clock = [0.0]
    monkeypatch.setattr(cluster.time, "monotonic", lambda: clock[0])
    with caplog.at_level(logging.INFO, logger="carbonscape.cluster"):
        report = cluster.ProgressReport("supply", bar=False)
        for done in range(0, 1001):
            clock[0] += 0.01  # 10 s in all: a line per 10 %, none for the polls between
            report.update(done, 1000)
        report.close()
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(": ")[1].split("%")[0] for m in messages] == [str(p) for p in range(10, 101, 10)]
    assert messages[3] == "supply: 40% (400/1000 tasks, 4 s)"
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="carbonscape.cluster"):
        slow = cluster.ProgressReport("zones", bar=False)
        for done in range(0, 5):
            clock[0] += 31.0  # each step under 10 % but more than 30 s after the last line
            slow.update(done, 1000)
        slow.close()
    assert [r.getMessage() for r in caplog.records] == [
        "zones: 0% (0/1000 tasks, 31 s)", "zones: 0% (1/1000 tasks, 62 s)", "zones: 0% (2/1000 tasks, 93 s)",
        "zones: 0% (3/1000 tasks, 2 min 04 s)", "zones: 0% (4/1000 tasks, 2 min 35 s)", "zones: 100% (1000/1000 tasks, 2 min 35 s)",
    ]


def test_progress_bar_on_a_terminal_writes_to_its_stream_not_stdout(capsys):
    stream = io.StringIO()
    report = cluster.ProgressReport("ingest", bar=True, stream=stream)
    for done in range(0, 51):
        report.update(done, 50)
    report.close()
    assert "ingest" in stream.getvalue() and "50/50" in stream.getvalue()
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_local_schedulers_feed_the_report(scheduler, monkeypatch):
    import dask.array as da

    seen = []
    monkeypatch.setattr(cluster.ProgressReport, "update", lambda self, done, total: seen.append((done, total)))
    with cluster.executor(scheduler) as run:
        (total,) = run.compute(da.ones((64, 64), chunks=8).sum(), progress=True, label="test")
    assert total == 64 * 64
    assert seen and seen[-1][0] == seen[-1][1] > 64  # every chunk's task counted, to the end


@pytest.mark.parametrize("where", ["local cluster", "remote scheduler"])
def test_the_scheduler_feeds_the_report(where, request, monkeypatch):
    """The scheduler's own task counts reach the report (no silent fallback to plain waiting)."""
    import dask.array as da

    address = request.getfixturevalue("dask_cluster")[0] if where == "remote scheduler" else None
    seen = []
    monkeypatch.setattr(cluster.ProgressReport, "update", lambda self, done, total: seen.append((done, total)))
    with cluster.executor(address) as run:
        assert run.client is not None
        (total,) = run.compute(da.ones((64, 64), chunks=8).sum(), progress=True, label="test")
    assert total == 64 * 64
    assert seen and seen[-1][0] == seen[-1][1] > 64, seen


@pytest.mark.parametrize(("said", "error", "text"), [
    ("Batch job submission failed: Unable to contact slurm controller (connect failure)", "ClusterError", "cannot reach the SLURM controller"),
    ("Batch job submission failed: Invalid partition name specified", "InputError", "SLURM refuses the worker job"),
])
def test_sbatch_that_cannot_reach_the_controller_blames_the_controller_not_the_settings(tmp_path, monkeypatch, said, error, text):
    """What sbatch prints (SLURM's own messages) decides the fault: a controller that does not
    answer is infrastructure (exit 1, no advice to change the job settings); a refused job is
    the user's settings (exit 2). A stand-in sbatch on PATH prints SLURM's words."""
    import carbonscape.errors
    from carbonscape.cluster import _test_submit

    fake = tmp_path / "sbatch"
    fake.write_text(f"#!/bin/sh\necho 'sbatch: error: {said}' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(getattr(carbonscape.errors, error), match=text) as caught:
        _test_submit("#!/bin/sh\n", {"queue": "normal"})
    assert ("fix jobqueue.slurm" in str(caught.value)) == (error == "InputError")


def test_an_address_from_dask_scheduler_address_is_named_as_such_when_it_fails(monkeypatch):
    """With no --scheduler, DASK_SCHEDULER_ADDRESS picks the scheduler: when it is wrong the user
    must learn where the address came from (a user chased a --scheduler they never gave)."""
    import dask
    from carbonscape.cluster import executor
    from carbonscape.errors import ClusterError

    with dask.config.set({"scheduler-address": "tcp://127.0.0.1:1", "distributed.comm.timeouts.connect": "2s"}):
        with pytest.raises(ClusterError, match="comes from DASK_SCHEDULER_ADDRESS"), executor(None):
            pass
    with dask.config.set({"scheduler-address": "thread"}):
        with pytest.raises(InputError, match="comes from DASK_SCHEDULER_ADDRESS"), executor(None):
            pass


CHUNK_CALLS: list[tuple[int, ...]] = []


def _counted_chunk(block):
    if block.size:  # not map_blocks' look at an empty block for the dtype
        CHUNK_CALLS.append(block.shape)  # list.append is atomic: threads and in-process workers share it
    return block * 2


def _first(blocks):
    return "first"


def _second(value):
    return f"second {value}"


@pytest.mark.parametrize("scheduler", ["synchronous", "threads", None])
def test_delayed_objects_and_arrays_computed_together_come_back_in_order(scheduler):
    """dask 2026.8 returns Delayed results and array results of one compute grouped by kind
    (``dask.compute(d1, x, d2, x2)`` gives ``d1, d2, x, x2``): tables would be taken under another
    statistic's name. Executor.compute gives them back in order, the shared chunk tasks run once."""
    import dask
    import dask.array as da
    import numpy as np

    CHUNK_CALLS.clear()
    source = da.ones((4, 6), chunks=(2, 3)).map_blocks(_counted_chunk, dtype=float)  # 4 chunk tasks, shared by all below
    total = source.sum()  # a 0-d array
    rows = source.sum(axis=1)  # a multi-block array
    first = dask.delayed(_first)(source.to_delayed(optimize_graph=False).ravel().tolist())
    second = dask.delayed(_second)(7)
    if scheduler is None:  # a LocalCluster in this process, so the chunk calls are counted here
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as local, Client(local) as client:
            results = cluster.Executor(description="test", client=client).compute(first, total, second, rows)
    else:
        results = cluster.Executor(description="test", local_scheduler=scheduler).compute(first, total, second, rows)
    assert results[0] == "first" and results[2] == "second 7"
    assert float(results[1]) == 48.0
    np.testing.assert_array_equal(results[3], [12.0, 12.0, 12.0, 12.0])
    assert len(CHUNK_CALLS) == 4  # each chunk once, for every result
