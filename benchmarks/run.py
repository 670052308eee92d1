"""carbonscape benchmark suite: speed and memory of each stage, side by side with the peers.

Usage (from the repository root, with the project installed as ``pip install -e .[bench]``)::

    python benchmarks/run.py --size 10000              # 10^8 pixels: stages, peers, memory
    python benchmarks/run.py --size 31623 --no-peers   # 10^9 pixels: memory flatness

Each stage runs the real command line in a subprocess (the way a user runs it) and its peak
memory is the largest summed RSS of that process and all its children (dask workers included),
sampled every 20 ms. The supply pass is also timed in-process against an already running
cluster, next to the time to merely read and decode the two stores. Peers (exactextract, flox,
rasterstats) compute the same per-county, per-class pixel counts on the same inputs. Results go to
``benchmarks/results/<size>.json``; ``benchmarks/README.md`` records them by hand with the date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
CLI = [sys.executable, "-m", "carbonscape.cli.main", "-q"]


class PeakMemory:
    """Peak summed RSS of a process tree, sampled in a background thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                total = 0
                for proc in procs:
                    try:
                        total += proc.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, total)
            except psutil.Error:
                pass
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_command(args: list[str]) -> dict[str, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with PeakMemory(proc.pid) as memory:
        _, err = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"command failed: {' '.join(args)}\n{err}")
    return {"seconds": elapsed, "peak_rss_mib": memory.peak / 2**20}


def best_of(n: int, func) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def _touch(block: np.ndarray) -> np.ndarray:
    return np.zeros((1, 1), dtype=np.int64)


def in_process(data: Path, scheduler: str | None, repeats: int) -> dict[str, float]:
    """Stage times with the cluster already up (no interpreter or cluster start-up)."""
    import carbonscape
    from carbonscape.cluster import executor

    with executor(scheduler) as run:
        lu, zones, pools = data / "landuse.zarr", data / "zones.zarr", data / "region" / "pools.csv"
        carbonscape.supply(lu, zones, pools, run=run)  # warm numba and the workers
        supply_s = best_of(repeats, lambda: carbonscape.supply(lu, zones, pools, run=run))
        a, b = carbonscape.open_store(lu).data, carbonscape.open_store(zones).data
        read_s = best_of(repeats, lambda: run.compute(a.map_blocks(_touch, chunks=(1, 1)).sum(), b.map_blocks(_touch, chunks=(1, 1)).sum()))
        tif = data / "region" / "landuse.tif"
        ingest_s = best_of(max(1, repeats - 1), lambda: carbonscape.ingest(tif, data / "bench-lu.zarr", force=True, run=run))
        zones_s = best_of(max(1, repeats - 1), lambda: carbonscape.rasterize_zones(
            data / "region" / "counties.gpkg", like=lu, id_field="county", out=data / "bench-z.zarr", force=True, run=run))
        workers = run.workers
    pixels = float(np.prod(carbonscape.open_store(lu).grid.shape))
    return {
        "scheduler": scheduler or "LocalCluster", "workers": workers,
        "supply_s": supply_s, "supply_mpx_s": pixels / supply_s / 1e6,
        "read_decode_s": read_s, "supply_over_read": supply_s / read_s,
        "ingest_s": ingest_s, "ingest_mpx_s": pixels / ingest_s / 1e6,
        "zones_s": zones_s, "zones_mpx_s": pixels / zones_s / 1e6,
    }


def peer_exactextract(data: Path) -> dict[str, float] | None:
    try:
        import exactextract
        import geopandas as gpd
    except ImportError:
        return None
    counties = gpd.read_file(data / "region" / "counties.gpkg")
    start = time.perf_counter()
    # Per county: the classes present and their (coverage-weighted) shares and the pixel count —
    # the same per-county, per-class table the supply pass makes.
    exactextract.exact_extract(str(data / "region" / "landuse.tif"), counties, ["unique", "frac", "count"], include_cols=["county"], output="pandas")
    return {"seconds": time.perf_counter() - start}


def peer_flox(data: Path, scheduler: str | None) -> dict[str, float] | None:
    try:
        import flox.xarray
        import xarray as xr
    except ImportError:
        return None
    import carbonscape
    from carbonscape.cluster import executor

    lu = xr.open_zarr(data / "landuse.zarr")["landuse"]
    zones = xr.open_zarr(data / "zones.zarr")["zones"]
    n_zones = len(carbonscape.open_zones(data / "zones.zarr")[1].ids) + 1
    ones = xr.ones_like(lu, dtype=np.int64)
    lu = lu.rename("lucode")
    zones = zones.rename("zone")
    with executor(scheduler) as run:
        def compute() -> None:
            result = flox.xarray.xarray_reduce(
                ones, zones, lu, func="sum", expected_groups=(np.arange(n_zones), np.arange(256)), engine="numbagg" if _has("numbagg") else "numpy",
                method="map-reduce",
            )
            run.compute(result.data)
        compute()  # warm
        seconds = best_of(2, compute)
    return {"seconds": seconds}


def peer_rasterstats(data: Path) -> dict[str, float] | None:
    try:
        import rasterstats
    except ImportError:
        return None
    start = time.perf_counter()
    rasterstats.zonal_stats(str(data / "region" / "counties.gpkg"), str(data / "region" / "landuse.tif"), categorical=True, nodata=255)
    return {"seconds": time.perf_counter() - start}


def _has(module: str) -> bool:
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def _write_study(data: Path) -> Path:
    import geopandas as gpd
    import pandas as pd

    names = gpd.read_file(data / "region" / "counties.gpkg")["county"]
    pd.DataFrame({"county": names, "population": 100_000}).to_csv(data / "population.csv", index=False)
    study = data / "study.toml"
    study.write_text(
        '[study]\nname = "benchmark"\n[landuse]\nrasters = ["region/landuse.tif"]\n[counties]\npath = "region/counties.gpkg"\n'
        'id_field = "county"\n[pools]\npath = "region/pools.csv"\n[demand]\ntable = "population.csv"\nkey = "county"\n'
        'per_capita_t = 4.0\n[zoning]\nmethod = "jenks"\nk = 5\nscheme = "classes"\n[outputs]\nmaps = false\nreport = false\n'
    )
    return study


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000, help="raster edge in pixels (square)")
    parser.add_argument("--data", type=Path, default=HERE / "data", help="where generated inputs are kept")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--rasterstats", action="store_true", help="also time rasterstats (slow)")
    args = parser.parse_args()

    data = args.data / f"r{args.size}"
    region = data / "region"
    if not (region / "landuse.tif").exists():
        print(f"generating a {args.size}×{args.size} region in {region}", file=sys.stderr)
        subprocess.run([*CLI, "generate", str(region), "--size", f"{args.size}x{args.size}"], check=True)
    pixels = args.size**2
    results: dict[str, object] = {
        "pixels": pixels,
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "platform": platform.platform(), "python": platform.python_version()},
    }
    # End to end through the command line, as a user runs it: GeoTIFF in, tables out.
    stages = {
        "ingest": [*CLI, "ingest", str(region / "landuse.tif"), "--out", str(data / "landuse.zarr"), "--force", "--no-progress"],
        "zones": [*CLI, "zones", str(region / "counties.gpkg"), "--like", str(data / "landuse.zarr"), "--id-field", "county", "--out", str(data / "zones.zarr"), "--force", "--no-progress"],
        "supply": [*CLI, "supply", "--landuse", str(data / "landuse.zarr"), "--zones", str(data / "zones.zarr"), "--pools", str(region / "pools.csv"), "--out", str(data / "tables"), "--no-progress"],
    }
    # The same in one command, as a study: GeoTIFF in, tables out, one cluster for all stages.
    study = _write_study(data)
    for store in ("landuse.zarr", "zones.zarr"):
        shutil.rmtree(data / "study-out" / "stores" / store, ignore_errors=True)
    stages["run_study"] = [*CLI, "run", str(study), "--out", str(data / "study-out"), "--no-maps", "--no-report", "--no-progress"]
    cli = {name: run_command(command) for name, command in stages.items()}
    cli["three_commands_s"] = sum(cli[name]["seconds"] for name in ("ingest", "zones", "supply"))  # type: ignore[index]
    cli["peak_rss_mib"] = max(stage["peak_rss_mib"] for stage in list(cli.values()) if isinstance(stage, dict))
    results["cli"] = cli
    results["in_process"] = [in_process(data, None, args.repeats), in_process(data, "threads", args.repeats)]
    if not args.no_peers:
        peers: dict[str, object] = {"exactextract": peer_exactextract(data), "flox_dask_localcluster": peer_flox(data, None), "flox_dask_threads": peer_flox(data, "threads")}
        if args.rasterstats:
            peers["rasterstats"] = peer_rasterstats(data)
        results["peers"] = peers
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / f"{args.size}.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
