"""Benchmark: peak memory of the grid-cell pass as the raster grows (the issue's "10^9 px into 1 km
cells with memory flat").

Usage (from the repository root; land-use stores from `carbonscape ingest`, a pools table)::

    python benchmarks/cells_memory.py POOLS STORE_1e8.zarr STORE_1e9.zarr --cell 990 --cell 29970

Each (store, cell size) runs ``carbonscape.cells.supply_cells`` in a fresh process (its default
in-process LocalCluster, nothing written) and reports the wall time, the cells and the process's
peak resident memory (``ru_maxrss``): a store 10× larger at the same cell size has 10× the cells
(the output grows with them), at a size giving a thousand cells the peak must stay flat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime

_CHILD = """
import resource, sys, time
from carbonscape.cells import supply_cells
started = time.perf_counter()
result = supply_cells(sys.argv[1], sys.argv[2], size=float(sys.argv[3]))
print(len(result.by_cell), time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pools")
    parser.add_argument("stores", nargs="+")
    parser.add_argument("--cell", type=float, action="append", help="cell edge in CRS units (repeat)")
    args = parser.parse_args()
    rows = []
    for store in args.stores:
        for size in args.cell or [990.0]:
            load = os.getloadavg()[0]
            done = subprocess.run([sys.executable, "-c", _CHILD, store, args.pools, str(size)], capture_output=True, text=True, check=True)
            cells, seconds, peak = done.stdout.split()[-3:]
            rows.append({"store": os.path.basename(os.path.normpath(store)), "cell": size, "cells": int(cells),
                         "wall_s": round(float(seconds), 2), "peak_rss_mib": round(float(peak)), "load_1min": round(load, 2)})
            print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"date": datetime.now(UTC).isoformat(timespec="seconds"),
                      "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}", "runs": rows}))


if __name__ == "__main__":
    main()
