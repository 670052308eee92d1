"""Where the raster stages of `carbonscape run` spend their time, per 4096² chunk (issue: scale).

Usage (from the repository root, after ``benchmarks/nation.py`` made the study)::

    python benchmarks/nation_profile.py STUDY_FOLDER [--chunks 12]

For a sample of the study's chunks (spread over the mosaic, one thread, no dask), each part of the
per-chunk work the ingest and supply tasks do, timed on its own: GDAL's read and decode of the
window, blosc encode, the chunk file's write (to a scratch folder), the code histogram ingest
records, blosc decode and the file read supply does when it re-reads the store, the county burn
(``rasterize.lazy_zones``' chunk task) and the counting kernel. Then a dask task's overhead on the
default LocalCluster (an empty task per chunk). Prints the milliseconds per chunk and the seconds
they make over the whole mosaic on two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numcodecs.blosc
import numpy as np


def _best(func, repeats: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = func()
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    import tomllib

    from carbonscape.accumulate import COUNTS, ClassIndex, Layout
    from carbonscape.accumulate.library import CODE_HISTOGRAM
    from carbonscape.accumulate.spec import Chunk
    from carbonscape.carbon import read_pools
    from carbonscape.io import RasterStore, _mosaic_grid, _read_window, raster_dataset  # noqa: F401
    from carbonscape.rasterize import lazy_zones

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("study", type=Path)
    parser.add_argument("--chunks", type=int, default=12)
    args = parser.parse_args()
    conf = tomllib.loads((args.study / "study.toml").read_text())
    paths = [str(args.study / p) for p in conf["landuse"]["rasters"]]
    grid, tiles, dtype, nodata = _mosaic_grid(paths, 4096)
    like = RasterStore(path="mosaic", grid=grid, data=None, nodata=nodata, attrs={})  # type: ignore[arg-type]
    start = time.perf_counter()
    zones = lazy_zones(args.study / conf["counties"]["path"], like=like, id_field=conf["counties"]["id_field"])
    graph_s = time.perf_counter() - start
    pools = read_pools(args.study / conf["pools"]["path"])
    index = ClassIndex.build(pools.codes, nodata=nodata)
    n_zones = len(zones.attrs["ids"]) + 1
    layout = Layout(n_counties=n_zones, classes=index, codes=(0, 256))
    windows = list(grid.chunk_windows())
    picks = [windows[k] for k in np.linspace(0, len(windows) - 1, args.chunks).astype(int)]
    parts: dict[str, list[float]] = {k: [] for k in ("gdal read+decode", "blosc encode", "write chunk file", "code histogram",
                                                     "read chunk file", "blosc decode", "burn counties", "count (county, class)")}
    pixels = 0
    zone_layer = zones.data.dask.layers[zones.data.name].mapping
    with tempfile.TemporaryDirectory() as scratch:
        for (i, j), (rows, cols) in picks:
            covering = tuple(t for t in tiles if t.row < rows.stop and t.row + t.height > rows.start
                             and t.col < cols.stop and t.col + t.width > cols.start)
            pixels += (rows.stop - rows.start) * (cols.stop - cols.start)
            took, block = _best(lambda: _read_window(covering, (rows.start, rows.stop), (cols.start, cols.stop), dtype.str, nodata))
            parts["gdal read+decode"].append(took)
            full = np.zeros((4096, 4096), dtype=block.dtype)
            full[: block.shape[0], : block.shape[1]] = block
            took, payload = _best(lambda: numcodecs.blosc.compress(full, b"lz4", 5, numcodecs.blosc.BITSHUFFLE))
            parts["blosc encode"].append(took)
            target = os.path.join(scratch, f"{i}.{j}")

            def write() -> None:
                with open(target + ".partial", "wb") as handle:
                    handle.write(payload)
                os.replace(target + ".partial", target)

            parts["write chunk file"].append(_best(write)[0])
            where = Chunk(layout=layout, rows=rows, cols=cols, location=(i, j))
            parts["code histogram"].append(_best(lambda: CODE_HISTOGRAM.chunk({"landuse": block}, where))[0])
            took, raw = _best(lambda: Path(target).read_bytes())
            parts["read chunk file"].append(took)
            parts["blosc decode"].append(_best(lambda: numcodecs.blosc.decompress(raw))[0])
            task = zone_layer[(zones.data.name, i, j)]
            took, ids = _best(lambda: task[0](*task[1:]))
            parts["burn counties"].append(took)
            parts["count (county, class)"].append(_best(lambda: COUNTS.chunk({"landuse": block, "counties": ids}, where))[0])
    n_chunks = len(windows)
    per_px = {k: sum(v) / pixels for k, v in parts.items()}
    total_px = grid.shape[0] * grid.shape[1]

    from distributed import Client, LocalCluster

    with LocalCluster(processes=False) as cluster, Client(cluster) as client:
        import dask

        def nothing(k: int) -> int:
            return k

        tasks = [dask.delayed(nothing)(k, dask_key_name=f"t-{k}") for k in range(n_chunks)]
        client.compute(tasks, sync=True)  # warm
        tasks = [dask.delayed(nothing)(k, dask_key_name=f"u-{k}") for k in range(n_chunks)]
        start = time.perf_counter()
        client.compute(tasks, sync=True)
        overhead = time.perf_counter() - start
    rows = {k: {"ms_per_4096sq": round(1e3 * v * 4096 * 4096, 1), "s_whole_mosaic_2_cores": round(v * total_px / 2, 1)} for k, v in per_px.items()}
    rows["dask task (empty), LocalCluster"] = {"ms_per_4096sq": round(1e3 * overhead / n_chunks, 2),
                                                "s_whole_mosaic_2_cores": round(overhead, 2)}
    rows["building the burn tasks (lazy_zones)"] = {"s_once": round(graph_s, 1)}
    print(json.dumps({"chunks": n_chunks, "sampled": len(picks), "pixels": total_px, "load": os.getloadavg(), "parts": rows}, indent=1))


if __name__ == "__main__":
    sys.exit(main())
