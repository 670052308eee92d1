"""Many maps in one pass: two maps' supply tables and their transfer matrix against one map's supply.

Usage (after ``python benchmarks/run.py --size N``, whose stores it reuses)::

    python benchmarks/maps.py --size 10000 [--repeats 5]

Makes a second land-use store beside the first (about 10 % of the pixels change class, in blocks,
written by carbonscape's own store writer), then, against one running LocalCluster and alternating
the two so that both see the same load, times (best and median of ``repeats``):

- ``supply``: :func:`carbonscape.supply` of one map (counts per county and class, tables);
- ``two maps``: :func:`carbonscape.change.maps_pass` of both maps with their transfer matrix
  (both maps' supply tables and the change tables), one read of each chunk of each map;
- ``three maps``: the same with a third map (a → b → c: two transfer matrices), to see what a
  further map adds (its own read and one more transitions table per chunk);
- ``read``: reading and decoding the county store and one land-use store, nothing else.

The issue's target: two maps ≤ 1.6 × one map's supply pass.

``--memory`` also runs each pass once in a fresh process (a LocalCluster inside it) and records
that process's peak RSS: one map's supply, two maps with their transfer matrix, three maps.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np


def _changed_again(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
    out = block.copy()
    out[(block == 2) & (np.arange(block.shape[1])[None, :] % 7 == 0)] = 3  # arbor → shrub forest in thin stripes
    return out


def _changed(block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
    row0, col0 = (loc[0] for loc in block_info[0]["array-location"])  # type: ignore[index]
    rows, cols = np.ogrid[row0 : row0 + block.shape[0], col0 : col0 + block.shape[1]]
    out = block.copy()
    stripe = ((rows // 500) + (cols // 500)) % 10 == 0
    out[stripe & (block == 1)] = 2  # cropland → arbor forest in one 500-pixel block in ten
    out[stripe & (block == 6)] = 9  # grassland → built-up
    return out


_PEAK = """
import resource, sys
import carbonscape
from carbonscape.change import maps_pass
from carbonscape.cluster import executor
lu, alt, third, zones, pools, what = sys.argv[1:]
table = carbonscape.read_pools(pools)
with executor(None) as run:
    if what == "supply":
        carbonscape.supply(lu, zones, table, run=run)
    elif what == "two maps":
        maps_pass({"a": lu, "b": alt}, zones, {"a": table, "b": table}, pairs=[("a", "b")], run=run)
    else:
        maps_pass({"a": lu, "b": alt, "c": third}, zones, {"a": table, "b": table, "c": table}, pairs=[("a", "b"), ("b", "c")], run=run)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mib(lu: Path, alt: Path, third: Path, zones: Path, pools: Path) -> dict[str, float]:
    """Peak RSS (MiB) of a fresh process running each pass once (numba's cache warm)."""
    import subprocess
    import sys

    out = {}
    for what in ("supply", "two maps", "three maps"):
        done = subprocess.run([sys.executable, "-c", _PEAK, str(lu), str(alt), str(third), str(zones), str(pools), what],
                              capture_output=True, text=True, check=True)
        out[what] = round(int(done.stdout.split()[-1]) / 1024, 1)  # ru_maxrss is in KiB on Linux
    return out


def main() -> None:
    import carbonscape
    from carbonscape.change import maps_pass
    from carbonscape.cluster import executor
    from carbonscape.io import open_store, raster_dataset, write_store

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10000)
    parser.add_argument("--data", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--memory", action="store_true", help="also the peak RSS of each pass in a fresh process")
    args = parser.parse_args()
    data = args.data / f"r{args.size}"
    lu, zones, pools = data / "landuse.zarr", data / "zones.zarr", data / "region" / "pools.csv"
    alt, third = data / "landuse_alt.zarr", data / "landuse_third.zarr"
    import os

    load_before = os.getloadavg()
    times: dict[str, list[float]] = {"supply": [], "two maps": [], "three maps": [], "read": []}
    with executor(None) as run:
        if not alt.exists():
            land = open_store(lu)
            ds = raster_dataset(land.data.map_blocks(_changed, dtype=land.data.dtype), land.grid, name="landuse",
                                nodata=land.nodata, attrs={"carbonscape_kind": "landuse"})
            write_store(ds, alt, grid=land.grid, run=run)
        if not third.exists():
            land = open_store(alt)
            ds = raster_dataset(land.data.map_blocks(_changed_again, dtype=land.data.dtype), land.grid, name="landuse",
                                nodata=land.nodata, attrs={"carbonscape_kind": "landuse"})
            write_store(ds, third, grid=land.grid, run=run)
        from carbonscape.rasterize import open_zones

        def read() -> None:
            run.compute(open_store(lu).data.sum(), open_zones(zones)[0].data.sum())
        table = carbonscape.read_pools(pools)
        for _ in range(2):  # warm up: numba compile, file cache
            carbonscape.supply(lu, zones, table, run=run)
            maps_pass({"a": lu, "b": alt}, zones, {"a": table, "b": table}, pairs=[("a", "b")], run=run)
        for _ in range(args.repeats):
            t = time.perf_counter()
            carbonscape.supply(lu, zones, table, run=run)
            times["supply"].append(time.perf_counter() - t)
            t = time.perf_counter()
            result = maps_pass({"a": lu, "b": alt}, zones, {"a": table, "b": table}, pairs=[("a", "b")], run=run)
            times["two maps"].append(time.perf_counter() - t)
            t = time.perf_counter()
            maps_pass({"a": lu, "b": alt, "c": third}, zones, {"a": table, "b": table, "c": table}, pairs=[("a", "b"), ("b", "c")], run=run)
            times["three maps"].append(time.perf_counter() - t)
            t = time.perf_counter()
            read()
            times["read"].append(time.perf_counter() - t)
        where = run.description
    report = {
        "pixels_per_map": args.size**2,
        "where": where,
        "seconds": {k: {"best": min(v), "median": statistics.median(v), "all": v} for k, v in times.items()},
        "two_maps_over_supply": {
            "best": min(times["two maps"]) / min(times["supply"]),
            "median": statistics.median(times["two maps"]) / statistics.median(times["supply"]),
        },
        "third_map_adds_over_one_read": {
            "best": (min(times["three maps"]) - min(times["two maps"])) / min(times["read"]),
            "median": (statistics.median(times["three maps"]) - statistics.median(times["two maps"])) / statistics.median(times["read"]),
        },
        "changed_pixels": result.changes[("a", "b")].summary["changed_pixels"],
    }
    if args.memory:
        report["peak_rss_mib"] = peak_rss_mib(lu, alt, third, zones, pools)
    report["load_average"] = {"before": load_before, "after": os.getloadavg()}
    out = Path(__file__).parent / "results" / f"maps_{args.size}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
