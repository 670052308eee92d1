"""Worker loss: a real `dask scheduler` and two `dask worker` processes (no nanny), one SIGKILLed in
the middle of ingest and in the middle of supply. The store's chunks and the tables are
byte-identical to a run without faults, and no half-written chunk is left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from carbonscape import ingest, rasterize_zones, supply
from carbonscape.synthetic import make_region

DASK = [sys.executable, "-m", "dask"]
TABLES = ("supply_by_county", "supply_by_class", "supply_by_county_class", "supply_by_pool")


@pytest.fixture(scope="module")
def region(tmp_path_factory):
    """Enough small chunks (about 2,000) that each pass lasts a few seconds on two one-thread workers."""
    base = tmp_path_factory.mktemp("loss")
    made = make_region(base / "in", shape=(5600, 5600), n_counties=12, seed=9)
    lu = ingest(made.landuse, base / "lu.zarr", chunk=128, scheduler="threads")
    zones = rasterize_zones(made.counties, like=lu, id_field="county", out=base / "z.zarr", scheduler="threads")
    supply(lu, zones, made.pools, out=base / "tables", scheduler="threads")
    return made, lu, zones, base


class Cluster:
    """A scheduler and two single-thread workers as separate processes."""

    def __init__(self, base: Path) -> None:
        self.file = base / "scheduler.json"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.scheduler = subprocess.Popen([*DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                           "--scheduler-file", str(self.file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.time() + 60
        while not self.file.exists() and time.time() < deadline:
            time.sleep(0.1)
        assert self.file.exists(), "dask scheduler did not start"
        self.workers = [
            subprocess.Popen([*DASK, "worker", "--scheduler-file", str(self.file), "--nthreads", "1", "--no-nanny", "--name", name,
                              "--no-dashboard", "--host", "127.0.0.1", "--local-directory", str(base / name)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            for name in ("w1", "w2")
        ]
        from distributed import Client

        self.client = Client(scheduler_file=str(self.file), timeout="30s", set_as_default=False)
        self.client.wait_for_workers(2, timeout=60)
        self.address = self.client.scheduler.address

    def done_and_total(self, prefix: str) -> tuple[int, int]:
        def count(dask_scheduler, prefix=prefix):  # noqa: ANN001
            tasks = [ts for key, ts in dask_scheduler.tasks.items() if prefix in ts.prefix.name]
            return sum(ts.state in ("memory", "released", "forgotten") for ts in tasks), len(tasks)

        return self.client.run_on_scheduler(count)

    def kill_one_when(self, prefix: str, running: threading.Thread, *, share: float = 0.15) -> tuple[int, int]:
        """SIGKILL worker w2 once ``share`` of the ``prefix`` tasks are done; returns (done, total) then."""
        deadline = time.time() + 300
        while time.time() < deadline and running.is_alive():
            done, total = self.done_and_total(prefix)
            if total and done >= share * total:
                os.kill(self.workers[1].pid, signal.SIGKILL)
                self.workers[1].wait(timeout=30)
                return done, total
            time.sleep(0.02)
        raise AssertionError(f"the {prefix} pass ended before a worker could be killed")

    def close(self) -> None:
        self.client.close()
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.fixture
def cluster(tmp_path):
    running = Cluster(tmp_path)
    try:
        yield running
    finally:
        running.close()


def _in_thread(func, *args, **kwargs) -> tuple[threading.Thread, dict]:
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["result"] = func(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001  (reported by the test)
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def _chunk_files(store: Path) -> dict[str, bytes]:
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(store.rglob("*")) if p.is_file() and "/c/" in f"/{p.relative_to(store)}"}


def test_a_worker_killed_mid_ingest_changes_no_chunk(region, cluster, tmp_path):
    made, lu, _, _ = region
    out = tmp_path / "lu.zarr"
    thread, outcome = _in_thread(ingest, made.landuse, out, chunk=128, scheduler=cluster.address)
    done, total = cluster.kill_one_when("", thread)
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    assert 0 < done < total, (done, total)
    assert cluster.workers[1].returncode == -signal.SIGKILL
    assert len(cluster.client.scheduler_info()["workers"]) == 1
    expected, got = _chunk_files(lu), _chunk_files(out)
    assert len(got) == len(expected) > 1000
    assert got == expected  # every chunk complete and byte-identical: none half-written
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".lu.tmp")], "staging left behind"


def test_a_worker_killed_mid_supply_changes_no_table(region, cluster, tmp_path):
    made, lu, zones, base = region
    out = tmp_path / "tables"
    thread, outcome = _in_thread(supply, lu, zones, made.pools, out=out, scheduler=cluster.address)
    done, total = cluster.kill_one_when("", thread, share=0.1)
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    assert 0 < done < total, (done, total)
    assert cluster.workers[1].returncode == -signal.SIGKILL
    for table in TABLES:
        assert (out / f"{table}.csv").read_bytes() == (base / "tables" / f"{table}.csv").read_bytes(), table


def _fused_ingest_and_supply(made, store, zone_polygons, out, address):
    """`run`'s raster pass: the land use ingested by the supply pass itself (io.ingesting)."""
    from carbonscape.io import ingesting
    from carbonscape.rasterize import lazy_zones

    with ingesting(made.landuse, store, chunk=128) as staged:
        zones = lazy_zones(zone_polygons, like=staged.store, id_field="county")
        result = supply(staged.store, zones, made.pools, out=out, scheduler=address, code_histogram=staged.histogram)
        staged.finish(result.tables["code_histogram"])
    return result


def test_a_worker_killed_mid_fused_ingest_and_supply_changes_no_chunk_and_no_table(region, cluster, tmp_path):
    """Each chunk is read from the GeoTIFF, written and counted in one task: a task lost with its
    worker re-runs elsewhere and rewrites the same bytes; the store equals `ingest`'s, every chunk
    whole, the tables equal a run without faults, and no staging is left."""
    made, lu, _, base = region
    store, out = tmp_path / "lu.zarr", tmp_path / "tables"
    thread, outcome = _in_thread(_fused_ingest_and_supply, made, store, made.counties, out, cluster.address)
    done, total = cluster.kill_one_when("", thread, share=0.15)
    thread.join(timeout=600)
    assert "error" not in outcome, outcome.get("error")
    assert 0 < done < total, (done, total)
    assert cluster.workers[1].returncode == -signal.SIGKILL
    expected, got = _chunk_files(lu), _chunk_files(store)
    assert len(got) == len(expected) > 1000
    assert got == expected  # every chunk complete and byte-identical: none half-written
    assert (store / "zarr.json").read_bytes() == (lu / "zarr.json").read_bytes()  # code counts, fingerprint: what ingest records
    for table in TABLES:
        assert (out / f"{table}.csv").read_bytes() == (base / "tables" / f"{table}.csv").read_bytes(), table
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".lu.tmp")], "staging left behind"
