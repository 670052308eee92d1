"""Continuous rasters in the supply pass: ingest (nearest resampling of a population grid 3× coarser,
a same-grid NPP copy) and the pass with and without their sums, vs a separate pass.

    python benchmarks/continuous.py [--size 8192] [--dir DIR]

Prints seconds and ratios measured in the same run (the machine may be shared: compare ratios).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from carbonscape import ingest, rasterize_zones, supply
from carbonscape.accumulate import Layout, accumulate
from carbonscape.cells import WEIGHTED_SUM
from carbonscape.cluster import executor
from carbonscape.continuous import ingest_continuous, open_continuous, value_specs
from carbonscape.rasterize import open_zones
from carbonscape.synthetic import make_region


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192, help="raster edge in pixels (30 m)")
    parser.add_argument("--dir", type=Path, default=None, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.dir or Path(tmp)
        n = args.size
        region = make_region(base / "region", shape=(n, n), pixel_size=30.0, n_counties=60, seed=1)
        with rasterio.open(region.landuse) as src:
            t, crs = src.transform, src.crs
        profile = dict(driver="GTiff", count=1, dtype="float32", crs=crs, tiled=True, blockxsize=512, blockysize=512, compress="deflate")
        people = np.random.default_rng(0).gamma(1.0, 5.0, size=(n // 3 + 1, n // 3 + 1)).astype(np.float32)
        with rasterio.open(base / "pop.tif", "w", width=people.shape[1], height=people.shape[0],
                           transform=rasterio.Affine(90, 0, t.c, 0, -90, t.f), **profile) as dst:
            dst.write(people, 1)
        with rasterio.open(base / "npp.tif", "w", width=n, height=n, transform=t, **profile) as dst:
            dst.write(np.random.default_rng(1).uniform(200, 900, size=(n, n)).astype(np.float32), 1)
        with executor("threads") as run:
            lu = ingest(region.landuse, base / "lu.zarr", run=run)
            zones = rasterize_zones(region.counties, like=lu, id_field="county", out=base / "z.zarr", run=run)
            for name, path, quantity in (("pop", base / "pop.tif", "count"), ("npp", base / "npp.tif", "density")):
                started = time.perf_counter()
                ingest_continuous(path, base / f"{name}.zarr", like=lu, quantity=quantity, run=run, force=True)
                print(f"ingest {name} ({quantity}) onto {n}×{n}: {time.perf_counter() - started:.2f} s")
            pop, npp = open_continuous(base / "pop.zarr"), open_continuous(base / "npp.zarr")
            store, table = open_zones(zones)
            for rep in range(3):
                started = time.perf_counter()
                supply(lu, zones, region.pools, run=run, min_coverage=0)
                alone = time.perf_counter() - started
                started = time.perf_counter()
                supply(lu, zones, region.pools, run=run, min_coverage=0, extra=value_specs("pop"), rasters={"pop": pop.data})
                with_pop = time.perf_counter() - started
                started = time.perf_counter()
                supply(lu, zones, region.pools, run=run, min_coverage=0, extra=value_specs("pop") + value_specs("npp"),
                       rasters={"pop": pop.data, "npp": npp.data})
                with_both = time.perf_counter() - started
                started = time.perf_counter()
                lazy = accumulate([WEIGHTED_SUM], store.data, {"values": pop.data}, layout=Layout(n_counties=table.n_zones), grid=pop.grid)
                run.compute(*lazy.values())
                own = time.perf_counter() - started
                print(f"rep {rep}: supply {alone:.2f} s; + population {with_pop:.2f} s ({with_pop / alone:.2f}×); + population + NPP "
                      f"{with_both:.2f} s ({with_both / alone:.2f}×); population in its own pass {own:.2f} s; "
                      f"one pass / two passes {with_pop / (alone + own):.2f}")


if __name__ == "__main__":
    main()
