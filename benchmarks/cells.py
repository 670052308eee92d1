"""Benchmark: the grid-cell pass against the county pass on the same land-use store.

Usage (from the repository root; a region from `carbonscape generate`)::

    python benchmarks/cells.py REGION_DIR --cell 990

Ingests the region's GeoTIFF and rasterizes its counties (into ``REGION_DIR/bench``), then times,
in-process on one LocalCluster (best of 3, after a warm-up), ``carbonscape.supply`` per county and
``carbonscape.cells.supply_cells`` into cells of ``--cell`` CRS units, writing nothing. The issue's
target: the cell pass takes no longer than the county pass.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from carbonscape import ingest, rasterize_zones, supply
from carbonscape.cells import supply_cells
from carbonscape.cluster import executor


def best(fn, repeat: int = 3) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("region", type=Path)
    parser.add_argument("--cell", type=float, default=990.0, help="cell edge in CRS units (a multiple of the pixel)")
    args = parser.parse_args()
    work = args.region / "bench"
    with executor(None) as run:
        landuse = ingest(args.region / "landuse.tif", work / "landuse.zarr", run=run)
        zones = rasterize_zones(args.region / "counties.gpkg", like=landuse, id_field="county", out=work / "zones.zarr", run=run)
        pools = args.region / "pools.csv"
        county = best(lambda: supply(landuse, zones, pools, run=run))
        cells = best(lambda: supply_cells(landuse, pools, size=args.cell, run=run))
        n_cells = len(supply_cells(landuse, pools, size=args.cell, run=run).by_cell)
    print(json.dumps({"county_pass_s": round(county, 3), "cell_pass_s": round(cells, 3), "cell_over_county": round(cells / county, 2),
                      "cells": n_cells, "cell": args.cell}))


if __name__ == "__main__":
    main()
