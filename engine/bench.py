"""``carbonscape bench``: speed, memory and task graphs of each stage, on the user's own machine or cluster.

Three kinds of figures, each in the JSON and in the markdown table:

- **Command line**: each stage (``ingest``, ``zones``, ``supply``, ``run``) runs as the real
  command in a subprocess, as a user runs it; peak memory is the largest summed RSS of that process
  and all its children (dask workers included), sampled every 20 ms.
- **In-process**: the stages timed against an already running executor (best of ``repeats``),
  next to the time to merely read and decode the two stores (the floor of the supply pass), and
  the peers on the same inputs when installed (exactextract, flox, rasterstats).
- **Graphs**: each stage's task graph built through the real code path by a
  :class:`GraphOnly` executor that computes nothing (flox's ``track_num_tasks`` idea): task
  count, layers, pickled size and, optionally, the memory a real ``dask scheduler`` process
  takes to hold it. :func:`project` does this for any size without data (sparse GeoTIFF tiles
  that hold no pixels, Voronoi units) and projects a wall time from per-chunk costs measured here.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from carbonscape.cluster import Executor
from carbonscape.errors import CarbonscapeError, InputError

STAGES = ("ingest", "zones", "supply", "run")
CLI = [sys.executable, "-m", "carbonscape.cli.main", "-q"]


# -- measuring ------------------------------------------------------------------------------------
class PeakMemory:
    """Peak summed RSS of a process tree, sampled in a background thread."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                total = 0
                for proc in [self.root, *self.root.children(recursive=True)]:
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


# What each peer computes, beside its time (the ratio is against carbonscape's pixel-centre supply).
PEER_WORK = {
    "exactextract": "exact coverage fractions per county and class, from the GeoTIFF",
    "flox": "pixel-centre counts per county and class, from the same stores",
    "rasterstats": "pixel-centre counts per county and class, from the GeoTIFF",
}


def run_command(args: Sequence[str]) -> dict[str, float]:
    """Run a command; its wall time and the peak RSS of its process tree.

    Raises
    ------
    InputError
        The command refused its input (exit 2), with its own message.
    CarbonscapeError
        The command failed otherwise (e.g. a scheduler that cannot be reached), with its message.
    """
    start = time.perf_counter()
    proc = subprocess.Popen(list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with PeakMemory(proc.pid) as memory:
        _, err = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        said = [line.removeprefix("Error: ") for line in err.splitlines() if line.startswith("Error: ")]
        stage = next((a for a in args if a in STAGES), " ".join(args[-3:]))
        message = f"the {stage} stage (`carbonscape {stage} ...`) failed: {said[-1] if said else err.strip()[-2000:]}"
        raise (InputError if proc.returncode == 2 else CarbonscapeError)(message)
    return {"seconds": round(elapsed, 3), "peak_rss_mib": round(memory.peak / 2**20, 1)}


def best_of(n: int, func: Callable[[], Any]) -> float:
    times = []
    for _ in range(max(1, n)):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


# -- graphs without computing ---------------------------------------------------------------------
def graph_stats(collections: Sequence[Any]) -> dict[str, Any]:
    """Task count, layers and pickled size of the graph ``compute`` would send to the scheduler."""
    import cloudpickle
    from dask.base import collections_to_expr

    # What dask.compute sends: the collections optimized and materialized into one task graph.
    tasks = dict(collections_to_expr(list(collections), optimize_graph=True).__dask_graph__())
    prefixes = {key[0] if isinstance(key, tuple) else str(key) for key in tasks}
    layers = len({p.rsplit("-", 1)[0] if "-" in p else p for p in prefixes})
    return {"tasks": len(tasks), "layers": layers, "graph_mib": round(len(cloudpickle.dumps(tasks)) / 2**20, 3)}


@dataclass
class GraphOnly(Executor):
    """An executor that records the graph of each ``compute`` and returns zeros of the right shape
    and dtype instead of computing: the real stages run end to end on no data. With
    ``scheduler_address`` each graph is also submitted to that (worker-less) scheduler and the
    growth of its process's memory while it holds the graph is recorded."""

    description: str = "graph only"
    graphs: list[dict[str, Any]] = field(default_factory=list)
    scheduler_address: str | None = None
    scheduler_pid: int | None = None

    def compute(self, *collections: Any, progress: bool | None = False, label: str = "") -> tuple[Any, ...]:
        stats = {"label": label, **graph_stats(collections)}
        if self.scheduler_address is not None:
            stats["scheduler_mib"] = _scheduler_memory(self.scheduler_address, self.scheduler_pid, collections, stats["tasks"])
        self.graphs.append(stats)
        return tuple(np.zeros(c.shape, dtype=c.dtype) for c in collections)


def _scheduler_memory(address: str, pid: int | None, collections: Sequence[Any], tasks: int) -> float | None:
    """MiB the scheduler process grows by while it holds ``collections``' tasks (no workers run them)."""
    import psutil
    from distributed import Client

    if pid is None:
        return None
    proc = psutil.Process(pid)
    with Client(address, set_as_default=False) as client:
        before = proc.memory_info().rss
        futures = client.compute(list(collections))
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            held = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
            if held >= tasks * 0.95:
                break
            time.sleep(0.2)
        grown = proc.memory_info().rss - before
        client.cancel(futures)
        del futures
    return round(grown / 2**20, 1)


def _warm_scheduler() -> None:
    import carbonscape.accumulate
    import carbonscape.io
    import carbonscape.rasterize  # noqa: F401


@contextmanager
def worker_less_scheduler() -> Iterator[tuple[str, int]]:
    """A real ``dask scheduler`` process on 127.0.0.1 with no workers: (address, pid)."""
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "scheduler.json"
        proc = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", str(file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            if not file.exists():
                raise RuntimeError("the dask scheduler did not start")
            address = json.loads(file.read_text())["address"]
            from distributed import Client

            # Imports the graphs' functions need (carbonscape, numba, rasterio...) happen on the
            # first graph the scheduler unpickles: do them first, so they are not counted as graph.
            with Client(address, set_as_default=False) as client:
                client.run_on_scheduler(_warm_scheduler)
            yield address, proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def stage_graphs(landuse: Sequence[str | os.PathLike[str]], counties: str | os.PathLike[str], pools: str | os.PathLike[str], *,
                 work: Path, chunk: int = 4096, id_field: str = "county", scheduler_memory: bool = False) -> dict[str, dict[str, Any]]:
    """Build (never compute) the graphs of ingest, zones and supply through the real functions.

    Only metadata is written (``work``): the stores' ``zarr.json`` and coordinates, no chunk.
    """
    import carbonscape

    def run_all(executor: GraphOnly) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        started = time.perf_counter()
        lu = carbonscape.ingest(list(map(os.fspath, landuse)), work / "landuse.zarr", chunk=chunk, force=True, run=executor)
        out["ingest"] = {**executor.graphs[-1], "build_s": round(time.perf_counter() - started, 2)}
        started = time.perf_counter()
        zones = carbonscape.rasterize_zones(counties, like=lu, id_field=id_field, out=work / "zones.zarr", force=True, run=executor)
        out["zones"] = {**executor.graphs[-1], "build_s": round(time.perf_counter() - started, 2)}
        started = time.perf_counter()
        # The graph-only executor returns zero tables: every county would hold no land use, which
        # supply refuses after its (recorded) pass whatever min_coverage is; only the graph is wanted.
        from carbonscape.coverage import CoverageError

        with contextlib.suppress(CoverageError):
            carbonscape.supply(lu, zones, pools, run=executor, min_coverage=0.0)
        out["supply"] = {**executor.graphs[-1], "build_s": round(time.perf_counter() - started, 2)}
        for stats in out.values():
            stats.pop("label", None)
        return out

    with _engine_warnings_off():
        if not scheduler_memory:
            return run_all(GraphOnly())
        with worker_less_scheduler() as (address, pid):
            return run_all(GraphOnly(scheduler_address=address, scheduler_pid=pid))


@contextmanager
def _engine_warnings_off() -> Iterator[None]:
    """Graphs of empty data and repeated timing runs would repeat the engine's data warnings
    (no pixels in a unit, nodata inside units) many times: keep them out of the benchmark's log."""
    import logging

    engine = logging.getLogger("carbonscape")
    level = engine.level
    engine.setLevel(logging.ERROR)
    try:
        yield
    finally:
        engine.setLevel(level)


# -- measured runs ----------------------------------------------------------------------------------
def _touch(block: np.ndarray) -> np.ndarray:
    return np.zeros((1, 1), dtype=np.int64)


def in_process(data: Path, scheduler: str | None, repeats: int) -> dict[str, Any]:
    """Stage times with the executor already up (no interpreter or cluster start-up)."""
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
        "supply_s": round(supply_s, 4), "supply_mpx_s": round(pixels / supply_s / 1e6, 1),
        "read_decode_s": round(read_s, 4), "supply_over_read": round(supply_s / read_s, 3),
        "ingest_s": round(ingest_s, 4), "ingest_mpx_s": round(pixels / ingest_s / 1e6, 1),
        "zones_s": round(zones_s, 4), "zones_mpx_s": round(pixels / zones_s / 1e6, 1),
    }


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def peer_exactextract(data: Path) -> dict[str, float] | None:
    if not _has("exactextract"):
        return None
    import exactextract
    import geopandas as gpd

    counties = gpd.read_file(data / "region" / "counties.gpkg")
    start = time.perf_counter()
    # Per county: the classes present, their (coverage-weighted) shares and the pixel count —
    # the same per-county, per-class table the supply pass makes.
    exactextract.exact_extract(str(data / "region" / "landuse.tif"), counties, ["unique", "frac", "count"], include_cols=["county"], output="pandas")
    return {"seconds": round(time.perf_counter() - start, 3)}


def peer_flox(data: Path, scheduler: str | None) -> dict[str, float] | None:
    if not _has("flox"):
        return None
    import flox.xarray
    import xarray as xr

    import carbonscape
    from carbonscape.cluster import executor

    lu = xr.open_zarr(data / "landuse.zarr")["landuse"].rename("lucode")
    zones = xr.open_zarr(data / "zones.zarr")["zones"].rename("zone")
    n_zones = len(carbonscape.open_zones(data / "zones.zarr")[1].ids) + 1
    ones = xr.ones_like(lu, dtype=np.int64)
    with executor(scheduler) as run:
        def compute() -> None:
            result = flox.xarray.xarray_reduce(ones, zones, lu, func="sum", expected_groups=(np.arange(n_zones), np.arange(256)),
                                               engine="numbagg" if _has("numbagg") else "numpy", method="map-reduce")
            run.compute(result.data)
        compute()  # warm
        seconds = best_of(2, compute)
    return {"seconds": round(seconds, 3)}


def peer_rasterstats(data: Path) -> dict[str, float] | None:
    if not _has("rasterstats"):
        return None
    import rasterstats

    start = time.perf_counter()
    rasterstats.zonal_stats(str(data / "region" / "counties.gpkg"), str(data / "region" / "landuse.tif"), categorical=True, nodata=255)
    return {"seconds": round(time.perf_counter() - start, 3)}


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


def bench_size(size: int, *, data_dir: Path, stages: Sequence[str] = STAGES, peers: bool = True, rasterstats: bool = False,
               repeats: int = 3, counties: int = 50, scheduler: str | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Benchmark one ``size × size`` synthetic region (generated once into ``data_dir``)."""
    import psutil

    data = data_dir / f"r{size}"
    region = data / "region"
    if not (region / "landuse.tif").exists():
        log(f"generating a {size}×{size} region with {counties} counties in {region}")
        subprocess.run([*CLI, "generate", str(region), "--size", f"{size}x{size}", "--counties", str(counties)], check=True,
                       stdout=subprocess.DEVNULL)  # stdout is the benchmark's table
    sched = ["--scheduler", scheduler] if scheduler else []
    commands = {
        "ingest": [*CLI, "ingest", str(region / "landuse.tif"), "--out", str(data / "landuse.zarr"), "--force", "--no-progress", *sched],
        "zones": [*CLI, "zones", str(region / "counties.gpkg"), "--like", str(data / "landuse.zarr"), "--id-field", "county",
                  "--out", str(data / "zones.zarr"), "--force", "--no-progress", *sched],
        "supply": [*CLI, "supply", "--landuse", str(data / "landuse.zarr"), "--zones", str(data / "zones.zarr"), "--pools",
                   str(region / "pools.csv"), "--out", str(data / "tables"), "--no-progress", *sched],
    }
    if "run" in stages:
        study = _write_study(data)
        for store in ("landuse.zarr", "zones.zarr"):
            shutil.rmtree(data / "study-out" / "stores" / store, ignore_errors=True)
        commands["run"] = [*CLI, "run", str(study), "--out", str(data / "study-out"), "--no-maps", "--no-report", "--no-progress", *sched]
    # ingest and zones make the stores the later stages read: they always run.
    wanted = [name for name in commands if name in stages or name in ("ingest", "zones")]
    result: dict[str, Any] = {
        "pixels": size * size, "size": size, "counties": counties,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
                    "load_1min": round(os.getloadavg()[0], 2), "platform": platform.platform(), "python": platform.python_version()},
    }
    cli: dict[str, Any] = {}
    for name in wanted:
        log(f"  {size}² {name} (command line)")
        cli[name] = run_command(commands[name])
    result["cli"] = cli
    log(f"  {size}² stages in-process")
    with _engine_warnings_off():
        result["in_process"] = [in_process(data, scheduler, repeats)] + ([in_process(data, "threads", repeats)] if scheduler is None else [])
    log(f"  {size}² task graphs")
    with tempfile.TemporaryDirectory(dir=data) as work:
        result["graphs"] = stage_graphs([region / "landuse.tif"], region / "counties.gpkg", region / "pools.csv", work=Path(work))
    if peers:
        log(f"  {size}² peers")
        found: dict[str, Any] = {"exactextract": peer_exactextract(data), "flox_dask_localcluster": peer_flox(data, None),
                                 "flox_dask_threads": peer_flox(data, "threads")}
        if rasterstats:
            found["rasterstats"] = peer_rasterstats(data)
        result["peers"] = {name: value for name, value in found.items() if value is not None}
    return result


# -- projection past this machine -------------------------------------------------------------------
def _sparse_tiles(folder: Path, *, rows: int, cols: int, tiles: int, pixel_size: float, crs: str) -> list[Path]:
    """``tiles`` side-by-side GeoTIFF strips covering ``rows × cols`` that store no pixel (sparse):
    the mosaic and every window read are real, the files are a few kilobytes."""
    import rasterio
    from rasterio.transform import from_origin

    paths = []
    width = -(-cols // tiles)
    for t in range(tiles):
        c0 = t * width
        w = min(width, cols - c0)
        if w <= 0:
            break
        path = folder / f"tile{t:02d}.tif"
        profile = {"driver": "GTiff", "width": w, "height": rows, "count": 1, "dtype": "uint8", "crs": crs, "nodata": 255,
                   "transform": from_origin(500_000.0 + c0 * pixel_size, 9_000_000.0, pixel_size, pixel_size),
                   "tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "YES", "SPARSE_OK": "TRUE", "compress": "deflate"}
        with rasterio.open(path, "w", **profile):
            pass
        paths.append(path)
    return paths


def _voronoi_units(path: Path, *, rows: int, cols: int, units: int, pixel_size: float, crs: str, seed: int = 0) -> Path:
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    left, top = 500_000.0, 9_000_000.0
    right, bottom = left + cols * pixel_size, top - rows * pixel_size
    points = np.column_stack([rng.uniform(left, right, units), rng.uniform(bottom, top, units)])
    box = shapely.box(left, bottom, right, top)
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.MultiPoint(points), extend_to=box))
    cells = shapely.intersection(cells, box)
    cells = cells[~shapely.is_empty(cells)]
    gpd.GeoDataFrame({"county": [f"U{i:06d}" for i in range(len(cells))]}, geometry=cells, crs=crs).to_file(path)
    return path


def project(pixels: float, *, units: int, tiles: int = 10, chunk: int = 4096, pixel_size: float = 30.0, work: Path | None = None,
            scheduler_memory: bool = True, measured: dict[str, Any] | None = None, workers: int = 16,
            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Build the graphs of ingest, zones and supply for a ``pixels``-pixel run with ``units``
    counties (no data: sparse tiles, Voronoi units) and project its wall time on ``workers``
    single-thread workers from the per-chunk costs of a measured run (:func:`bench_size`)."""
    from carbonscape.synthetic import DEFAULT_CRS, make_region

    side = int(round(pixels**0.5))
    with tempfile.TemporaryDirectory(dir=work) as folder:
        base = Path(folder)
        log(f"projection: {side}×{side} pixels in {tiles} sparse tiles, {units} units")
        paths = _sparse_tiles(base, rows=side, cols=side, tiles=tiles, pixel_size=pixel_size, crs=DEFAULT_CRS)
        counties = _voronoi_units(base / "units.gpkg", rows=side, cols=side, units=units, pixel_size=pixel_size, crs=DEFAULT_CRS)
        pools = make_region(base / "pools", shape=(64, 64), n_counties=2).pools
        graphs = stage_graphs(paths, counties, pools, work=base, chunk=chunk, scheduler_memory=scheduler_memory)
    chunks = math.ceil(side / chunk) ** 2
    result: dict[str, Any] = {"pixels": side * side, "side": side, "units": units, "tiles": tiles, "chunk": chunk, "chunks": chunks,
                              "graphs": graphs}
    if measured:
        result["wall_time"] = _project_time(measured, graphs, chunks=chunks, chunk=chunk, workers=workers)
    return result


#: Scheduler time per task assumed for the projection (distributed's documented order of magnitude,
#: "about 1 ms of overhead per task"); the scheduler is one thread, so this term does not shrink with workers.
SCHEDULER_S_PER_TASK = 0.001


def _project_time(measured: dict[str, Any], graphs: dict[str, Any], *, chunks: int, chunk: int, workers: int) -> dict[str, Any]:
    """Per-chunk CPU cost of each stage measured in-process here (seconds × threads / chunks),
    scaled to ``chunks`` chunks over ``workers`` single-thread workers, plus the scheduler's
    per-task time."""
    run = measured["in_process"][0]
    threads = max(1, int(run["workers"]))
    measured_chunks = math.ceil(measured["size"] / chunk) ** 2
    out: dict[str, Any] = {"workers": workers, "measured_at_pixels": measured["pixels"], "measured_threads": threads,
                           "scheduler_s_per_task": SCHEDULER_S_PER_TASK}
    total = 0.0
    for stage in ("ingest", "zones", "supply"):
        per_chunk = run[f"{stage}_s"] * threads / measured_chunks
        compute = chunks * per_chunk / workers
        scheduling = graphs[stage]["tasks"] * SCHEDULER_S_PER_TASK
        seconds = max(compute, scheduling) + min(compute, scheduling) * 0.1
        out[stage] = {"cpu_s_per_chunk": round(per_chunk, 4), "compute_s": round(compute, 1), "scheduler_s": round(scheduling, 1),
                      "projected_s": round(seconds, 1)}
        total += seconds
    out["projected_total_s"] = round(total, 1)
    return out


# -- report -----------------------------------------------------------------------------------------
def markdown(results: dict[str, Any]) -> str:
    """The results as markdown tables (one per size, one for the projection)."""
    lines: list[str] = []
    for run in results.get("sizes", []):
        m = run["machine"]
        lines += [f"### {run['pixels']:.0e} pixels ({run['size']:,} × {run['size']:,}, {run['counties']} counties)", "",
                  f"{m['cpus']} cores, {m['memory_gib']} GiB, load {m['load_1min']} at start, {run['date']}, Python {m['python']}", "",
                  "| stage | command line (s) | peak RSS (MiB) | in-process (s) | Mpx/s | tasks | graph (MiB) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        first = run["in_process"][0]
        for stage in ("ingest", "zones", "supply", "run"):
            cli = run["cli"].get(stage)
            if cli is None:
                continue
            graph = run.get("graphs", {}).get(stage, {})
            inproc = first.get(f"{stage}_s")
            mpx = first.get(f"{stage}_mpx_s")
            lines.append(f"| {stage} | {cli['seconds']:.2f} | {cli['peak_rss_mib']:.0f} | {'' if inproc is None else f'{inproc:.3f}'} | "
                         f"{'' if mpx is None else mpx} | {graph.get('tasks', '')} | {graph.get('graph_mib', '')} |")
        lines.append(f"| read + decode both stores | | | {first['read_decode_s']:.3f} | | | |")
        lines.append(f"| supply / read | | | {first['supply_over_read']:.2f}× | | | |")
        for peer, value in run.get("peers", {}).items():
            work = next((text for name, text in PEER_WORK.items() if peer.startswith(name)), "")
            lines.append(f"| peer: {peer}{f' ({work})' if work else ''} | | | {value['seconds']:.3f} | "
                         f"{first['supply_s'] and value['seconds'] / first['supply_s']:.1f}× carbonscape supply (pixel centre, from the stores) | | |")
        lines.append("")
    projection = results.get("projection")
    if projection:
        lines += [f"### Graph-only projection: {projection['pixels']:.2e} pixels ({projection['side']:,}², {projection['tiles']} tiles), "
                  f"{projection['units']:,} units, chunks {projection['chunk']}² ({projection['chunks']:,})", "",
                  "| stage | tasks | layers | graph (MiB) | scheduler memory (MiB) | graph build (s) | projected wall on "
                  f"{projection.get('wall_time', {}).get('workers', '—')} workers (s) |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
        wall = projection.get("wall_time", {})
        for stage, graph in projection["graphs"].items():
            lines.append(f"| {stage} | {graph['tasks']:,} | {graph.get('layers') or ''} | {graph['graph_mib']} | {graph.get('scheduler_mib', '')} | "
                         f"{graph.get('build_s', '')} | {wall.get(stage, {}).get('projected_s', '')} |")
        if wall:
            lines.append(f"| total | | | | | | {wall['projected_total_s']} |")
        lines.append("")
    return "\n".join(lines)


def run_bench(sizes: Sequence[int], *, data_dir: Path, stages: Sequence[str] = STAGES, peers: bool = True, rasterstats: bool = False,
              repeats: int = 3, counties: int = 50, scheduler: str | None = None, project_pixels: float | None = None,
              project_units: int = 45_000, project_tiles: int = 10, project_workers: int = 16,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every size measured, then the projection (from the largest measured size's per-chunk costs)."""
    results: dict[str, Any] = {"carbonscape": _version(), "sizes": []}
    for size in sizes:
        results["sizes"].append(bench_size(size, data_dir=data_dir, stages=stages, peers=peers, rasterstats=rasterstats, repeats=repeats,
                                           counties=counties, scheduler=scheduler, log=log))
    if project_pixels:
        measured = max(results["sizes"], key=lambda r: r["pixels"]) if results["sizes"] else None
        data_dir.mkdir(parents=True, exist_ok=True)
        results["projection"] = project(project_pixels, units=project_units, tiles=project_tiles, work=data_dir, measured=measured,
                                        workers=project_workers, log=log)
    return results


def _version() -> str:
    import carbonscape

    return carbonscape.__version__
