"""A nation at 30 m on one machine: a 10^10-pixel, 2,900-county study, end to end (issue: scale).

Usage (from the repository root)::

    python benchmarks/nation.py                       # generate (once, ~2-4 min) and run
    python benchmarks/nation.py --tiles 10 --edge 31623 --units-per-tile 290
    python benchmarks/nation.py --study DIR --out OUT --no-maps --two-pass   # A/B: ingest's own pass, then supply

The data: one synthetic tile (``carbonscape.synthetic.make_region``: 31,623² uint8 pixels at 30 m
in an equal-area CRS, 290 Voronoi counties) copied into ``--tiles`` GeoTIFFs whose transforms are
shifted side by side (two rows of tiles), and its counties shifted with them (ids ``T<t>-<id>``),
with a population table. Tiles of one generated tile are enough for timing: every pixel is read,
decoded, written and counted as in any other raster.

The measure: ``carbonscape run study.toml`` as a user runs it (a subprocess; LocalCluster sized to
the machine), wall time and the peak RSS of its whole process tree (sampled every 20 ms), and the
stage times ``run.json`` records (ingest, zones, supply, ... maps, report). Then, to find where
the time goes, the ingest's parts in-process: GDAL decode of every tile alone, and the ingest with
the store already current removed (read + decode + write). Results go to
``benchmarks/results/nation-<pixels>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CRS = "EPSG:6933"  # EASE-Grid 2.0, equal-area: a nation-wide grid whose nominal pixel areas are true


def generate(base: Path, *, tiles: int, edge: int, units_per_tile: int, pixel: float) -> Path:
    """The study folder (tiles, counties, pools, population, study.toml); reused when present."""
    import geopandas as gpd
    import pandas as pd
    import rasterio
    from carbonscape.synthetic import make_region

    study = base / "study.toml"
    if study.is_file():
        return study
    base.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    one = make_region(base / "one", shape=(edge, edge), pixel_size=pixel, n_counties=units_per_tile, seed=7, crs=CRS)
    print(f"one tile made in {time.perf_counter() - start:.1f} s", flush=True)
    counties = gpd.read_file(one.counties)
    per_row = (tiles + 1) // 2
    parts, names = [], []
    for t in range(tiles):
        dx, dy = (t % per_row) * edge * pixel, -(t // per_row) * edge * pixel
        tile = base / f"landuse_{t:02d}.tif"
        shutil.copyfile(one.landuse, tile)
        with rasterio.open(tile, "r+") as dst:
            dst.transform = rasterio.Affine(pixel, 0, dst.transform.c + dx, 0, -pixel, dst.transform.f + dy)
        shifted = counties.copy()
        shifted["geometry"] = shifted.geometry.translate(xoff=dx, yoff=dy)
        shifted["county"] = [f"T{t:02d}-{c}" for c in counties["county"]]
        parts.append(shifted)
        names.append(tile.name)
    allc = pd.concat(parts, ignore_index=True)
    gpd.GeoDataFrame(allc, crs=counties.crs).to_file(base / "counties.gpkg", layer="counties", engine="pyogrio")
    shutil.copyfile(one.pools, base / "pools.csv")
    pd.DataFrame({"county": allc["county"], "population": (50_000 + (allc.index.to_numpy() * 7919) % 900_000)}).to_csv(
        base / "population.csv", index=False)
    rasters = ", ".join(f'"{n}"' for n in names)
    study.write_text(f"""[study]
name = "A nation at 30 m ({tiles} tiles, {len(allc)} counties)"
year = 2020

[landuse]
rasters = [{rasters}]

[counties]
path = "counties.gpkg"
id_field = "county"

[pools]
path = "pools.csv"

[demand]
table = "population.csv"
key = "county"
per_capita_t = 6.9

[zoning]
method = "jenks"
k = 7
""", encoding="utf-8")
    shutil.rmtree(base / "one")
    print(f"data made in {time.perf_counter() - start:.1f} s", flush=True)
    return study


def run_with_stage_memory(args: list[str], out: Path) -> dict:
    """``carbonscape run`` as a subprocess: wall time, peak RSS of its process tree, and the peak
    within each stage run.json times (stage windows placed from its ``started`` second, so a
    stage's peak may take in up to a second of its neighbours)."""
    import threading
    from datetime import datetime

    import psutil

    samples: list[tuple[float, int]] = []
    start = time.perf_counter()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    root, stop = psutil.Process(proc.pid), threading.Event()

    def sample() -> None:
        while not stop.is_set():
            total = 0
            try:
                for p in [root, *root.children(recursive=True)]:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                pass
            samples.append((time.time(), total))
            time.sleep(0.02)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    _, err = proc.communicate()
    stop.set()
    thread.join()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"command failed: {' '.join(args)}\n{err}")
    report = json.loads((out / "run.json").read_text())
    t0 = datetime.fromisoformat(report["started"]).timestamp()
    stages, edge = {}, t0
    for stage, took in report.get("timings_s", {}).items():
        inside = [rss for t, rss in samples if edge - 0.5 <= t <= edge + took + 0.5]
        stages[stage] = round(max(inside, default=0) / 2**20, 1)
        edge += took
    return {"seconds": round(seconds, 3), "peak_rss_mib": round(max((r for _, r in samples), default=0) / 2**20, 1),
            "stage_peak_rss_mib": stages, "stages_s": report.get("timings_s")}


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiles", type=int, default=10)
    parser.add_argument("--edge", type=int, default=31_623, help="tile edge in pixels")
    parser.add_argument("--units-per-tile", type=int, default=290)
    parser.add_argument("--pixel", type=float, default=30.0)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--runs", type=int, default=1, help="times to run the study (the first also ingests)")
    parser.add_argument("--study", type=Path, default=None,
                        help="an existing study folder (its study.toml) to run instead of generating one; read only")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default: results/ beside the study)")
    parser.add_argument("--no-maps", action="store_true", help="leave out maps and report (the raster stages only)")
    parser.add_argument("--two-pass", action="store_true",
                        help="ingest first and count in a second pass over the store (as before the fused ingest), for A/B runs")
    args = parser.parse_args()

    pixels = args.tiles * args.edge * args.edge
    if args.study is not None:
        base, study = args.study, args.study / "study.toml"
    else:
        base = args.data / f"nation-{args.tiles}x{args.edge}"
        study = generate(base, tiles=args.tiles, edge=args.edge, units_per_tile=args.units_per_tile, pixel=args.pixel)
    carbonscape = [sys.executable, "-m", "carbonscape.cli.main"]
    if args.two_pass:  # the same code with the ingest's own pass: what the fused ingest is measured against
        carbonscape = [sys.executable, "-c", "import sys; from carbonscape.study import pipeline; pipeline._fuses_ingest = lambda study: False; "
                       "from carbonscape.cli.main import main; sys.argv[0] = 'carbonscape'; sys.exit(main())"]
    runs = []
    for i in range(args.runs):
        out = args.out or base / "results"
        shutil.rmtree(out, ignore_errors=True)  # a cold run: ingest, zones and all, nothing reused
        load = os.getloadavg()[0]
        measured = run_with_stage_memory([*carbonscape, "run", str(study), "--out", str(out), "--no-progress",
                                          *(["--no-maps", "--no-report"] if args.no_maps else [])], out)
        runs.append({**measured, "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)})
        print(json.dumps(runs[-1]), flush=True)
    result = {
        "pixels": pixels, "tiles": args.tiles, "edge": args.edge, "units": args.tiles * args.units_per_tile,
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d %H:%M"), "maps": not args.no_maps, "two_pass": args.two_pass, "runs": runs,
    }
    target = HERE / "results" / (f"nation-{pixels:.0e}".replace("+", "") + ("-nomaps" if args.no_maps else "") + ("-twopass" if args.two_pass else "") + ".json")
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"written {target.relative_to(HERE.parent)}")


if __name__ == "__main__":
    sys.exit(main())
