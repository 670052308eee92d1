"""Population sums in fraction mode vs centre mode, on `run`'s path (counties burned on the fly).

The inputs of ``benchmarks/areas.py`` (its ``--data`` folder: ``<name>-lu.zarr`` ingested and
``areas-r<size>-c<counties>/<name>/{counties.gpkg,pools.csv}``): the supply pass alone and with a
population raster's sums (:func:`carbonscape.continuous.value_specs`), in centre and fraction
coverage. The population is a dask array made in the pass's task (a constant people per m²), so
the time added is the statistic's, not a read. Best of ``--repeats`` in one process; on a shared
machine read the ratios.

    python benchmarks/continuous_fraction.py --data DATA --name equal_area --size 10000 --counties 3000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from carbonscape import supply
from carbonscape.continuous import value_specs
from carbonscape.io import open_store
from carbonscape.rasterize import lazy_zones


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--name", default="equal_area")
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--counties", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    inputs = args.data / f"areas-r{args.size}-c{args.counties}" / args.name
    land = open_store(args.data / f"{args.name}-lu.zarr")
    people = land.data.map_blocks(lambda block: np.full(block.shape, 1e-4, dtype=np.float32), dtype=np.float32)
    print(f"{land.grid.shape[0]} × {land.grid.shape[1]} pixels, chunks {land.grid.chunks}, {args.counties} counties")
    for coverage in ("centre", "fraction"):
        zones = lazy_zones(inputs / "counties.gpkg", like=land, id_field="county", coverage=coverage)
        for label, extra in (("supply", []), ("supply + population", value_specs("population"))):
            best = float("inf")
            for _ in range(args.repeats):
                start = time.perf_counter()
                supply(land, zones, inputs / "pools.csv", extra=extra, rasters={"population": people} if extra else None, scheduler="threads")
                best = min(best, time.perf_counter() - start)
            print(f"{coverage:8s} {label:20s} {best:6.2f} s", flush=True)


if __name__ == "__main__":
    main()
