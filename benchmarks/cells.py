"""Benchmark: the grid-cell pass against the county pass on the same land-use store.

Usage (from the repository root; a region from `carbonscape generate`)::

    python benchmarks/cells.py REGION_DIR --cell 990 --repeats 5

Ingests the region's GeoTIFF and rasterizes its counties (into ``REGION_DIR/bench``), then times,
in-process on one LocalCluster after a warm-up of each, ``carbonscape.supply`` per county (A) and
``carbonscape.cells.supply_cells`` into cells of ``--cell`` CRS units (B), writing nothing. A and
B alternate (A B A B ...) in one process, so that a shared machine's load weighs on both alike;
the load average before and after, the date and the machine are printed with the figures. The
issue's target: the cell pass takes no longer than the county pass.

``--values`` adds a float raster (each county's id as a float, a stand-in for a demand density)
to the cell pass, as a study with ``[units] grid`` reads it: the cell pass then reads two stores,
as the county pass does. ``--region`` masks the cell pass to the counties (``region=`` the county
ids, as a study's cell pass: pixels outside every county count nowhere, and ``region_share`` is
summed per cell); with ``--values`` too, the cell pass is the one a study runs.

With both, the float raster is each pixel's county id looked up in the pass's own task
(``values_by_region``), as a study's cell pass looks up its counties' demand densities.

``--landuse STORE --zones STORE --pools CSV`` time existing stores (e.g. read-only benchmark data)
instead of ingesting ``REGION_DIR``: nothing is then written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from carbonscape import ingest, rasterize_zones, supply
from carbonscape.cells import supply_cells
from carbonscape.cluster import executor
from carbonscape.io import open_store


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("region", type=Path, nargs="?", help="a region folder to ingest (or give --landuse, --zones, --pools)")
    parser.add_argument("--cell", type=float, default=990.0, help="cell edge in CRS units (a multiple of the pixel)")
    parser.add_argument("--repeats", type=int, default=5, help="alternating A/B pairs after the warm-up")
    parser.add_argument("--values", action="store_true", help="also sum a float raster per cell in the same pass")
    parser.add_argument("--region", dest="mask", action="store_true", help="mask the cell pass to the counties, as a study does")
    parser.add_argument("--landuse", type=Path, help="an existing land-use store (with --zones and --pools: nothing ingested)")
    parser.add_argument("--zones", type=Path, help="an existing county store on --landuse's grid")
    parser.add_argument("--pools", type=Path, help="the pools table of --landuse")
    args = parser.parse_args()
    load_before = os.getloadavg()
    with executor(None) as run:
        if args.landuse is not None:
            if args.zones is None or args.pools is None:
                parser.error("--landuse needs --zones and --pools")
            landuse, zones, pools = args.landuse, args.zones, args.pools
        else:
            if args.region is None:
                parser.error("give REGION_DIR, or --landuse, --zones and --pools")
            work = args.region / "bench"
            landuse = ingest(args.region / "landuse.tif", work / "landuse.zarr", run=run)
            zones = rasterize_zones(args.region / "counties.gpkg", like=landuse, id_field="county", out=work / "zones.zarr", run=run)
            pools = args.region / "pools.csv"
        ids = open_store(zones, variable="zones").data
        values = ids.astype("float32") if args.values else None
        region = ids if args.mask else None
        by_region = None
        if args.values and args.mask:  # as a study's cell pass: a value per county id, looked up in the pass's tasks
            import numpy as np
            from carbonscape.rasterize import open_zones

            by_region = np.arange(open_zones(zones)[1].n_zones, dtype=np.float64)
            by_region[0] = np.nan
            values = None

        def county() -> None:
            supply(landuse, zones, pools, run=run)

        def cells() -> None:
            supply_cells(landuse, pools, size=args.cell, run=run, values=values, region=region, values_by_region=by_region)

        county()
        cells()
        a_times, b_times = [], []
        for _ in range(args.repeats):
            a_times.append(_timed(county))
            b_times.append(_timed(cells))
        n_cells = len(supply_cells(landuse, pools, size=args.cell, run=run, region=region).by_cell)
    load_after = os.getloadavg()
    a, b = min(a_times), min(b_times)
    print(json.dumps({
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "pixels": int(open_store(landuse).grid.shape[0]) * int(open_store(landuse).grid.shape[1]), "cell": args.cell, "cells": n_cells,
        "values": bool(args.values), "region": bool(args.mask),
        "county_pass_s": [round(t, 3) for t in a_times], "cell_pass_s": [round(t, 3) for t in b_times],
        "county_best_s": round(a, 3), "cell_best_s": round(b, 3), "cell_over_county_best": round(b / a, 2),
        "cell_over_county_median": round(statistics.median(b_times) / statistics.median(a_times), 2),
        "load_average_before": [round(v, 2) for v in load_before], "load_average_after": [round(v, 2) for v in load_after],
    }))


if __name__ == "__main__":
    main()
