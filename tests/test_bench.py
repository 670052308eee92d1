"""`carbonscape bench`: the benchmark suite as a command, and graphs built without computing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from carbonscape import bench
from carbonscape.synthetic import make_region

CLI = [sys.executable, "-m", "carbonscape.cli.main"]


def test_stage_graphs_are_built_through_the_real_stages_and_compute_nothing(tmp_path):
    region = make_region(tmp_path / "in", shape=(1000, 700), n_counties=5, seed=2)
    graphs = bench.stage_graphs([region.landuse], region.counties, region.pools, work=tmp_path, chunk=256)
    chunks = math.ceil(1000 / 256) * math.ceil(700 / 256)  # 4 × 3 = 12
    assert set(graphs) == {"ingest", "zones", "supply"}
    for stats in graphs.values():
        # At least a read and a write or count per chunk, plus the tree of partial tables.
        assert stats["tasks"] >= 2 * chunks and stats["graph_mib"] > 0
    # Nothing was computed: the stores hold metadata only, no chunk.
    assert not list((tmp_path / "landuse.zarr" / "landuse").rglob("c/*/*"))
    assert not list((tmp_path / "zones.zarr" / "zones").rglob("c/*/*"))


def test_graph_only_projection_from_the_command_line(tmp_path):
    done = subprocess.run([*CLI, "-q", "bench", "--graph-only", "--project", "1e8", "--project-units", "40", "--project-tiles", "3",
                           "--data", str(tmp_path), "--json", str(tmp_path / "b.json")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "b.json").read_text())
    projection = results["projection"]
    assert projection["pixels"] == 10_000**2 and projection["chunks"] == 9 and projection["units"] == 40
    # The scheduler held each graph: its memory was measured, and the supply graph has its tree.
    assert all(projection["graphs"][s]["scheduler_mib"] is not None for s in ("ingest", "zones", "supply"))
    assert projection["graphs"]["supply"]["tasks"] > projection["graphs"]["ingest"]["tasks"] / 2
    assert done.stdout.startswith("### Graph-only projection: 1.00e+08 pixels (10,000², 3 tiles), 40 units")
    assert "| supply |" in done.stdout


def test_a_measured_size_gives_every_stage_a_row_and_a_projected_wall_time(tmp_path):
    done = subprocess.run([*CLI, "-q", "bench", "--size", "600", "--stages", "supply", "--no-peers", "--repeats", "1", "--data", str(tmp_path),
                           "--json", str(tmp_path / "b.json"), "--project", "1e8", "--project-units", "20", "--project-tiles", "2"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "b.json").read_text())
    (run,) = results["sizes"]
    assert set(run["cli"]) == {"ingest", "zones", "supply"}
    assert all(stage["seconds"] > 0 and stage["peak_rss_mib"] > 50 for stage in run["cli"].values())
    assert run["in_process"][0]["supply_s"] > 0 and run["graphs"]["supply"]["tasks"] > 0
    wall = results["projection"]["wall_time"]
    assert wall["workers"] == 16 and wall["projected_total_s"] > 0
    assert "| supply |" in done.stdout and "| read + decode both stores |" in done.stdout


def test_bad_bench_options_are_bad_input(tmp_path):
    done = subprocess.run([*CLI, "bench", "--stages", "supply,colour", "--data", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--stages colour: not a stage" in done.stderr
    done = subprocess.run([*CLI, "bench", "--graph-only", "--data", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--graph-only needs --project" in done.stderr
    done = subprocess.run([*CLI, "bench", "--scheduler", "slurm", "--data", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--scheduler slurm for bench: give a scheduler address or scheduler file" in done.stderr


def test_a_stage_that_fails_is_reported_in_its_own_words_with_its_exit_code(tmp_path):
    """An unreachable scheduler: the stage's own message once, exit 1 (infrastructure), not a
    RuntimeError wrapping a command line and a second '--debug' hint."""
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "2s"}
    done = subprocess.run([*CLI, "bench", "--size", "300", "--no-peers", "--repeats", "1", "--scheduler", "tcp://127.0.0.1:1",
                           "--data", str(tmp_path)], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 1, done.stderr
    assert "the ingest stage (`carbonscape ingest ...`) failed: could not reach the dask scheduler 'tcp://127.0.0.1:1'" in done.stderr
    assert "RuntimeError" not in done.stderr and done.stderr.count("--debug") == 1

