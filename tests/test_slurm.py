"""`--scheduler slurm`: worker jobs from a real SLURM queue through dask-jobqueue.

Needs a SLURM controller that answers `sinfo` on this machine (CI starts a single-node one with
`.ci/slurm_up.sh` before the tests and stops it after with `.ci/slurm_down.sh`; as root, run the same
to try these tests locally). Under CI a missing SLURM fails these tests; elsewhere they are skipped
with that instruction.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from carbonscape import cluster, ingest, rasterize_zones, supply
from carbonscape.errors import ClusterError, InputError
from carbonscape.synthetic import make_region

CLI = [sys.executable, "-m", "carbonscape.cli.main"]
TABLES = ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool")


def _slurm_answers() -> str | None:
    if shutil.which("sinfo") is None:
        return "sinfo is not installed"
    try:
        done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"sinfo failed ({exc})"
    if done.returncode != 0 or "idle" not in done.stdout.split() and "mixed" not in done.stdout.split():
        return f"no idle SLURM node (sinfo: {done.stdout.strip() or done.stderr.strip()})"
    return None


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    """The dask-jobqueue settings of the test jobs, as a user gives them: DASK_JOBQUEUE__SLURM__*."""
    problem = _slurm_answers()
    try:
        import dask_jobqueue  # noqa: F401
    except ImportError:  # a development .venv made before the dependency was added
        problem = "dask-jobqueue is not installed: `pip install -e '.[test]'` again"
    if problem:
        message = f"SLURM is not running here ({problem}); start it with `bash .ci/slurm_up.sh` (as root)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    logs = tmp_path_factory.mktemp("slurm-logs")
    name = f"cs-test-{uuid.uuid4().hex[:6]}"
    env = {
        "DASK_JOBQUEUE__SLURM__CORES": "1",
        "DASK_JOBQUEUE__SLURM__MEMORY": "1GiB",
        "DASK_JOBQUEUE__SLURM__WALLTIME": "00:10:00",
        "DASK_JOBQUEUE__SLURM__NAME": name,
        "DASK_JOBQUEUE__SLURM__LOG_DIRECTORY": str(logs),
        # Scheduler and workers on the loopback interface only.
        "DASK_JOBQUEUE__SLURM__INTERFACE": "lo",
        "DASK_CARBONSCAPE__JOBS_TIMEOUT": "120s",
    }
    yield env, name
    left = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True).stdout.split()
    if left:
        subprocess.run(["scancel", *left])
    assert not left, f"worker jobs {left} were left in the queue"


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    base = tmp_path_factory.mktemp("slurm-region")
    region = make_region(base / "in", shape=(600, 500), n_counties=8, seed=5)
    lu = ingest(region.landuse, base / "lu.zarr", chunk=128, scheduler="threads")
    zones = rasterize_zones(region.counties, like=lu, id_field="county", out=base / "z.zarr", scheduler="threads")
    local = base / "local"
    supply(lu, zones, region.pools, out=local, scheduler="threads")
    return region, lu, zones, local


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env={**os.environ, **env})


def test_supply_on_two_slurm_worker_jobs_equals_the_local_run(slurm, stores, tmp_path):
    env, name = slurm
    region, lu, zones, local = stores
    done = _run(["supply", "--landuse", str(lu), "--zones", str(zones), "--pools", str(region.pools), "--out", "out",
                 "--scheduler", "slurm", "--jobs", "2", "--no-progress"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "submitted 2 SLURM worker job(s)" in done.stderr
    for table in TABLES:
        assert (tmp_path / "out" / f"{table}.csv").read_bytes() == (local / f"{table}.csv").read_bytes(), table
    # The jobs are cancelled when the command ends.
    assert subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True).stdout.split() == []


def test_the_workers_are_slurm_jobs_and_compute_the_same_tables(slurm, stores, monkeypatch):
    env, _ = slurm
    region, lu, zones, local = stores
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    import dask

    dask.config.refresh()
    try:
        with cluster.executor(cluster.JobQueue("slurm", jobs=2, settings={"cores": 1, "memory": "1GiB"})) as active:
            active.client.wait_for_workers(2, timeout=120)
            job_ids = set(active.client.run(lambda: os.environ.get("SLURM_JOB_ID")).values())
            result = supply(lu, zones, region.pools, run=active)
    finally:
        monkeypatch.undo()
        dask.config.refresh()
    assert len(job_ids) == 2 and None not in job_ids, job_ids
    import pandas as pd

    expected = pd.read_csv(local / "supply_by_county.csv")
    assert result.by_county["pixels"].tolist() == expected["pixels"].tolist()
    pd.testing.assert_series_equal(result.by_county["supply_t"].reset_index(drop=True), expected["supply_t"], check_names=False, rtol=1e-12)


def test_a_queue_that_starts_no_worker_is_an_infrastructure_error_naming_the_jobs(slurm, stores, tmp_path):
    env, name = slurm
    region, lu, zones, _ = stores
    # The jobs are accepted but may not begin for an hour: PENDING (BeginTime) past the timeout.
    pending = {**env, "DASK_JOBQUEUE__SLURM__JOB_EXTRA_DIRECTIVES": '["--begin=now+3600"]', "DASK_CARBONSCAPE__JOBS_TIMEOUT": "3s"}
    done = _run(["supply", "--landuse", str(lu), "--zones", str(zones), "--pools", str(region.pools), "--out", "out",
                 "--scheduler", "slurm", "--jobs", "2"], pending, tmp_path)
    assert done.returncode == 1, done.stderr
    assert "the queue started none of the 2 worker job(s) in 3 s" in done.stderr
    assert "PENDING BeginTime" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
    assert subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True).stdout.split() == []


def test_a_partition_slurm_refuses_is_bad_input_named_before_waiting(slurm, stores, tmp_path):
    env, _ = slurm
    region, lu, zones, _ = stores
    done = _run(["supply", "--landuse", str(lu), "--zones", str(zones), "--pools", str(region.pools), "--out", "out",
                 "--scheduler", "slurm"], {**env, "DASK_JOBQUEUE__SLURM__QUEUE": "no-such-partition"}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "SLURM refuses the worker job" in done.stderr and "no-such-partition" in done.stderr
    assert not (tmp_path / "out").exists()


def test_job_size_not_configured_is_bad_input_naming_the_settings(monkeypatch):
    import dask

    with dask.config.set({"jobqueue.slurm.cores": None, "jobqueue.slurm.memory": None}), \
            pytest.raises(InputError, match="DASK_JOBQUEUE__SLURM__CORES and DASK_JOBQUEUE__SLURM__MEMORY"):
        with cluster.executor("slurm"):
            pass


def test_jobs_without_a_queue_is_bad_input(stores, tmp_path):
    region, lu, zones, _ = stores
    done = _run(["supply", "--landuse", str(lu), "--zones", str(zones), "--pools", str(region.pools), "--out", "out",
                 "--scheduler", "threads", "--jobs", "2"], {}, tmp_path)
    assert done.returncode == 2 and "--jobs 2 needs a job queue" in done.stderr
    assert not (tmp_path / "out").exists()


def test_job_queue_settings_are_checked():
    with pytest.raises(InputError, match="not a job setting"):
        cluster.JobQueue("slurm", settings={"partition": "debug"})
    with pytest.raises(InputError, match="not known"):
        cluster.JobQueue("torque")
    assert cluster.job_queue("SLURM", 3) == cluster.JobQueue("slurm", jobs=3)
    assert cluster.job_queue("tcp://127.0.0.1:8786", None) == "tcp://127.0.0.1:8786"
    assert isinstance(ClusterError("x"), Exception)


def test_the_study_files_cluster_section_reaches_the_queue(slurm, tmp_path):
    """[cluster] scheduler = "slurm" with the job's queue: SLURM is asked (and here refuses the partition)."""
    from carbonscape import bench

    env, _ = slurm
    make_region(tmp_path / "region", shape=(300, 300), n_counties=8, seed=1)
    study = bench._write_study(tmp_path)
    study.write_text(study.read_text() + '[cluster]\nscheduler = "slurm"\njobs = 2\nqueue = "no-such-partition"\ncores = 1\nmemory = "1GiB"\n')
    done = _run(["run", str(study), "--out", "out", "--no-progress"], env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "SLURM refuses the worker job" in done.stderr and "queue='no-such-partition'" in done.stderr
    assert not (tmp_path / "out").exists()


def test_scheduler_from_settings():
    settings = {"scheduler": "slurm", "jobs": 3, "queue": "normal", "cores": 4, "memory": "8GiB", "timeout": 60.0}
    assert cluster.scheduler_from_settings(None, settings) == cluster.JobQueue(
        "slurm", jobs=3, settings={"queue": "normal", "cores": 4, "memory": "8GiB"}, timeout=60.0)
    # The command line wins; a queue given there keeps the study's job size.
    assert cluster.scheduler_from_settings("tcp://127.0.0.1:8786", settings) == "tcp://127.0.0.1:8786"
    merged = cluster.scheduler_from_settings(cluster.JobQueue("slurm", jobs=2), settings)
    assert merged.jobs == 2 and merged.settings["memory"] == "8GiB" and merged.timeout == 60.0
    assert cluster.scheduler_from_settings(None, {}) is None


def test_check_asks_slurm_about_the_study_files_worker_job(slurm, tmp_path):
    """`check` runs `sbatch --test-only` on the job `run` would submit: a partition SLURM does not
    have is named by `check` (exit 2), before any `run`; a partition it has passes."""
    from carbonscape import bench

    env, name = slurm
    make_region(tmp_path / "region", shape=(300, 300), n_counties=8, seed=1)
    study = bench._write_study(tmp_path)
    text = study.read_text()
    study.write_text(text + '[cluster]\nscheduler = "slurm"\nqueue = "no-such-partition"\ncores = 1\nmemory = "1GiB"\n')
    done = _run(["check", str(study)], env, tmp_path)
    assert done.returncode == 2, done.stderr + done.stdout
    said = done.stdout + done.stderr
    assert "SLURM refuses the worker job" in said and "no-such-partition" in said
    study.write_text(text + '[cluster]\nscheduler = "slurm"\ncores = 1\nmemory = "1GiB"\n')
    done = _run(["check", str(study)], env, tmp_path)
    assert done.returncode == 0, done.stderr + done.stdout
    assert subprocess.run(["squeue", "-h", "-n", name, "-o", "%i"], capture_output=True, text=True).stdout.split() == []
