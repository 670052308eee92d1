"""Benchmarks of true areas and fraction coverage (issue: right on any grid).

Usage (from the repository root, ``pip install -e .[bench]``)::

    python benchmarks/areas.py --size 10000 --counties 3000

Rows, each a ratio of two timings measured in the same run (in-process, cluster already up, best
of ``--repeats``), so that a busy machine affects both sides alike:

- **Web Mercator vs nominal**: ``supply`` on a 10^8-pixel raster in EPSG:3857 (true areas: the
  area lattice, interpolated per row in the kernel) against the same pixels and polygons in an
  equal-area CRS (EPSG:6933, where nominal areas are true and the pass only counts pixels).
- **fraction vs centre**: ``zones`` + ``supply`` with ``coverage="fraction"`` against the
  pixel-centre pair, on ``--counties`` Voronoi counties.
- **exactextract**: the same per-county, per-class coverage-weighted table (``unique``, ``frac``,
  ``count``) from the GeoTIFF and the polygons, against our fraction pair, and against fraction-mode
  supply alone (its county store made once).
- with ``--fused`` (only these rows): counties + land use → supply tables as ``run`` does it, the
  ids burned and the county rings clipped inside the supply pass (no county store): fused fraction
  vs exactextract, fused centre vs fused fraction, fused vs stored fraction pair
  (``results/areas-fused-<size>-c<counties>.json``).
- with ``--fused --gdal-burn`` also: the ids burned by our scanline spans (``kernels/spans.py``)
  against GDAL's rasterize (the burn before it), per chunk (every chunk of the grid burned both
  ways, pixels compared); and fused fraction and centre runs counted along the spans (no id
  raster) against the same with GDAL's burn and an id raster (the code before), and with the span
  burn and an id raster.
- with ``--kernel`` (only this row): the covered-fraction kernel alone, in-process, on every chunk
  of the equal-area region (``share_by_spans``, the fused pass's call, with the chunk's rings as
  :func:`carbonscape.rasterize.chunk_rings` clips them and its spans); with ``--kernel-baseline
  FILE`` (a ``kernels/fraction.py`` of another checkout) the two kernels alternate, round by
  round, and their tables are compared (``results/areas-kernel-<size>-c<counties>.json``).
- with ``--memory``: the peak resident memory of one fraction pair and one centre pair (this
  process and the LocalCluster's workers, sampled every 50 ms).

Results go to ``benchmarks/results/areas-<size>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent


def best_of(n: int, func) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return min(times)


def alternate(n: int, a, b) -> dict[str, object]:
    """Time ``a`` and ``b`` turn about, ``n`` times each, on a shared machine: each round's
    ratio b/a is measured under the same load; the load average is kept beside every round."""
    rounds = []
    for _ in range(n):
        start = time.perf_counter()
        a()
        ta = time.perf_counter() - start
        start = time.perf_counter()
        b()
        tb = time.perf_counter() - start
        rounds.append({"a_s": round(ta, 3), "b_s": round(tb, 3), "b_over_a": round(tb / ta, 3), "load_average": os.getloadavg()})
    ratios = sorted(r["b_over_a"] for r in rounds)
    return {"rounds": rounds, "a_best_s": min(r["a_s"] for r in rounds), "b_best_s": min(r["b_s"] for r in rounds),
            "b_over_a_median": ratios[len(ratios) // 2], "b_over_a_of_bests": round(min(r["b_s"] for r in rounds) / min(r["a_s"] for r in rounds), 3)}


def peak_rss_mib(func, *, every_s: float = 0.05) -> float:
    """Peak of the summed resident memory of this process and its children (the LocalCluster's
    workers) while ``func`` runs, sampled every ``every_s`` seconds (MiB)."""
    import threading

    me = psutil.Process()
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            peak = max(peak, total)
            done.wait(every_s)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        func()
    finally:
        done.set()
        thread.join()
    return round(peak / 2**20, 1)


def validate(lu, zones, pools, folder: Path, *, run) -> dict[str, float]:
    """Every (county, class) area of fraction-mode supply against exactextract's (``frac`` ×
    ``count`` × the one cell area) on the same GeoTIFF and polygons: the largest relative difference."""
    import carbonscape
    import exactextract
    import geopandas as gpd
    import pandas as pd

    gdf = gpd.read_file(folder / "counties.gpkg")
    frame = exactextract.exact_extract(str(folder / "landuse.tif"), gdf, ["unique", "frac", "count"], include_cols=["county"], output="pandas")
    cell_km2 = abs(carbonscape.open_store(lu).grid.resolution[0] * carbonscape.open_store(lu).grid.resolution[1]) / 1e6
    rows = [(county, int(code), f * count * cell_km2) for county, codes, fracs, count in zip(frame["county"], frame["unique"], frame["frac"], frame["count"])
            for code, f in zip(codes, fracs)]
    want = pd.DataFrame(rows, columns=["county", "lucode", "area_km2"]).set_index(["county", "lucode"])["area_km2"]
    got = carbonscape.supply(lu, zones, pools, run=run, min_coverage=0).by_county_class.set_index(["county", "lucode"])["area_km2"]
    common = want.index.intersection(got.index)
    return {"pairs_exactextract": len(want), "pairs_ours": len(got), "pairs_common": len(common),
            "max_relative_difference": float(((got[common] - want[common]).abs() / want[common]).max())}


def main() -> None:
    import carbonscape
    from carbonscape.cluster import executor
    from carbonscape.synthetic import make_region

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000, help="raster edge in pixels (square)")
    parser.add_argument("--counties", type=int, default=3000)
    parser.add_argument("--pixel", type=float, default=10.0, help="pixel size in CRS metres")
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--work", type=Path, default=None, help="where the timed runs write their county stores (default: beside the data, which may be read-only)")
    parser.add_argument("--validate", action="store_true", help="also compare every (county, class) area of the fraction pair with exactextract's")
    parser.add_argument("--memory", action="store_true", help="also the peak memory (RSS of this process and its workers) of one fraction pair")
    parser.add_argument("--fused", action="store_true", help="only the fused rows: counties + land use → supply tables as `run` does it (no county store)")
    parser.add_argument("--gdal-burn", action="store_true", help="with --fused: also our span burn against GDAL's rasterize (per chunk and in the fused runs)")
    parser.add_argument("--kernel", action="store_true", help="only the covered-fraction kernel, in-process, on every chunk (see above)")
    parser.add_argument("--kernel-baseline", type=Path, default=None, help="with --kernel: another checkout's kernels/fraction.py, alternated with this one")
    args = parser.parse_args()
    if args.kernel:
        kernel_rows(args)
        return
    if args.fused:
        fused_rows(args)
        return

    base = args.data / f"areas-r{args.size}-c{args.counties}"
    regions = {}
    for name, crs in (("mercator", "EPSG:3857"), ("equal_area", "EPSG:6933")):
        folder = base / name
        if not (folder / "landuse.tif").exists():
            print(f"generating {name} ({crs}) {args.size}² in {folder}", file=sys.stderr)
            make_region(folder, shape=(args.size, args.size), pixel_size=args.pixel, n_counties=args.counties, crs=crs, seed=7)
        regions[name] = folder
    results: dict[str, object] = {
        "pixels": args.size**2, "counties": args.counties, "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "platform": platform.platform(),
                    "load_average": os.getloadavg()},
    }
    with executor(None) as run:
        stores = {}
        for name, folder in regions.items():
            lu = carbonscape.ingest(folder / "landuse.tif", base / f"{name}-lu.zarr", run=run)
            z = carbonscape.rasterize_zones(folder / "counties.gpkg", like=lu, id_field="county", out=base / f"{name}-zc.zarr", run=run)
            stores[name] = (lu, z, folder / "pools.csv")
        grid = carbonscape.open_store(stores["mercator"][0]).grid
        results["mercator_area_model"] = grid.area_model.describe()
        (lu_m, z_m, pools_m), (lu_e, z_e, pools_e) = stores["mercator"], stores["equal_area"]
        for lu, z, pools in stores.values():
            carbonscape.supply(lu, z, pools, run=run, min_coverage=0)  # warm numba and the workers
        # A: the equal-area raster's nominal-area pass; B: the same pixels in Web Mercator, true areas.
        results["mercator_vs_nominal"] = alternate(
            args.repeats,
            lambda: carbonscape.supply(lu_e, z_e, pools_e, run=run, min_coverage=0),
            lambda: carbonscape.supply(lu_m, z_m, pools_m, run=run, min_coverage=0),
        )

        lu, _, pools = stores["equal_area"]
        counties = regions["equal_area"] / "counties.gpkg"
        work = args.work or base
        work.mkdir(parents=True, exist_ok=True)

        def pair(coverage: str) -> None:
            z = carbonscape.rasterize_zones(counties, like=lu, id_field="county", out=work / f"bench-z-{coverage}.zarr", coverage=coverage, force=True, run=run)
            carbonscape.supply(lu, z, pools, run=run, min_coverage=0)

        pair("fraction")  # warm
        # A: zones + supply with the pixel-centre rule; B: the same with exact partial pixels.
        results["fraction_vs_centre"] = alternate(args.repeats, lambda: pair("centre"), lambda: pair("fraction"))
        if not args.no_peers:
            import exactextract
            import geopandas as gpd

            gdf = gpd.read_file(counties)

            def peer() -> None:
                # The same work: per county its classes, each one's share of the covered area, and
                # the covered area itself (Σ coverage fractions; × the one cell area here), which
                # per-class areas need. (Without "count": the same time within 1 %, measured.)
                exactextract.exact_extract(str(regions["equal_area"] / "landuse.tif"), gdf, ["unique", "frac", "count"], include_cols=["county"], output="pandas")

            # A: our fraction pair; B: exactextract's per-county class fractions from the GeoTIFF.
            results["exactextract_vs_fraction"] = alternate(max(1, args.repeats - 1), lambda: pair("fraction"), peer)
            # A: fraction-mode supply alone, its county store made once (as a study reuses it for
            # every map and run); B: exactextract, which has no store to reuse.
            made = work / "bench-z-fraction.zarr"
            results["exactextract_vs_fraction_supply"] = alternate(
                max(1, args.repeats - 1), lambda: carbonscape.supply(lu, made, pools, run=run, min_coverage=0), peer)
        if args.validate and not args.no_peers:
            results["fraction_vs_exactextract_areas"] = validate(lu, work / "bench-z-fraction.zarr", pools, regions["equal_area"], run=run)
        if args.memory:
            results["fraction_pair_peak_rss_mib"] = peak_rss_mib(lambda: pair("fraction"))
            results["centre_pair_peak_rss_mib"] = peak_rss_mib(lambda: pair("centre"))
    out = HERE / "results" / f"areas-{args.size}-c{args.counties}.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def fused_rows(args: argparse.Namespace) -> None:
    """The user-facing work as `run` does it: the counties read, checked and measured, their ids
    burned (and in fraction mode their rings clipped) chunk by chunk inside the supply pass, no
    county store written or read (:func:`carbonscape.rasterize.lazy_zones`), until the supply
    tables (in memory, as exactextract's frame is). The land-use store is ingested once beforehand,
    under ``--work`` (every run has one; timed once apart, ``ingest_s``, not in the rounds); only
    the equal-area region is used, so exactextract's ``count`` × the one cell area is the covered
    area. Nothing is written beside the data."""
    import carbonscape
    import exactextract
    import geopandas as gpd
    from carbonscape.cluster import executor
    from carbonscape.rasterize import lazy_zones

    base = args.data / f"areas-r{args.size}-c{args.counties}"
    folder = base / "equal_area"
    counties, pools, tif = folder / "counties.gpkg", folder / "pools.csv", folder / "landuse.tif"
    if not tif.exists():
        from carbonscape.synthetic import make_region

        print(f"generating equal_area (EPSG:6933) {args.size}² in {folder}", file=sys.stderr)
        make_region(folder, shape=(args.size, args.size), pixel_size=args.pixel, n_counties=args.counties, crs="EPSG:6933", seed=7)
    work = args.work or base
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, object] = {
        "pixels": args.size**2, "counties": args.counties, "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1), "platform": platform.platform(),
                    "load_average": os.getloadavg()},
    }
    with executor(None) as run:
        start = time.perf_counter()
        lu = carbonscape.ingest(tif, work / "equal_area-lu.zarr", run=run, force=True)
        results["ingest_s"] = round(time.perf_counter() - start, 3)

        def fused(coverage: str) -> object:
            zones = lazy_zones(counties, like=lu, id_field="county", coverage=coverage)
            return carbonscape.supply(lu, zones, pools, run=run, min_coverage=0)

        def stored(coverage: str) -> object:
            zones = carbonscape.rasterize_zones(counties, like=lu, id_field="county", out=work / f"bench-z-{coverage}.zarr", coverage=coverage,
                                                force=True, run=run)
            return carbonscape.supply(lu, zones, pools, run=run, min_coverage=0)

        gdf = gpd.read_file(counties)

        def peer() -> None:
            exactextract.exact_extract(str(tif), gdf, ["unique", "frac", "count"], include_cols=["county"], output="pandas")

        fused("fraction"), fused("centre"), stored("fraction")  # warm numba, the workers and the page cache
        a, b = fused("fraction"), stored("fraction")
        results["fused_equals_stored"] = bool(a.by_county_class.equals(b.by_county_class) and a.by_county.equals(b.by_county))  # type: ignore[attr-defined]
        # A: our fused fraction run; B: exactextract (unique, frac, count) from the GeoTIFF.
        results["exactextract_vs_fused_fraction"] = alternate(args.repeats, lambda: fused("fraction"), peer)
        # A: fused centre; B: fused fraction (what exact partial pixels cost on the fused path).
        results["fused_fraction_vs_fused_centre"] = alternate(args.repeats, lambda: fused("centre"), lambda: fused("fraction"))
        # A: fused fraction; B: the stored path's fraction pair (zones store written, then supply).
        results["stored_vs_fused_fraction"] = alternate(max(1, args.repeats - 1), lambda: fused("fraction"), lambda: stored("fraction"))
        if args.gdal_burn:
            results.update(gdal_burn_rows(args, lu, counties, pools, run=run))
        if args.validate:
            results["fused_fraction_vs_exactextract_areas"] = validate(lu, lazy_zones(counties, like=lu, id_field="county", coverage="fraction"),
                                                                      pools, folder, run=run)
    out = HERE / "results" / f"areas-fused-{args.size}-c{args.counties}.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def kernel_rows(args: argparse.Namespace) -> None:
    """The covered-fraction kernel (``share_by_spans``) alone, in-process, over every chunk of the
    equal-area region: its seconds summed over the chunks for each round, the boundary (cell,
    county) entries it shares, and with ``--kernel-baseline`` the baseline's seconds in the same
    rounds (alternating) and how its tables differ (county rows bitwise; id 0, outside every
    county, takes every polygon's additions and may differ in their order)."""
    import importlib.util

    import carbonscape
    import geopandas as gpd
    from carbonscape.accumulate import ClassIndex
    from carbonscape.carbon import read_pools
    from carbonscape.kernels import fraction
    from carbonscape.kernels.spans import chunk_spans
    from carbonscape.rasterize import chunk_rings

    folder = args.data / f"areas-r{args.size}-c{args.counties}" / "equal_area"
    work = args.work or folder.parent
    work.mkdir(parents=True, exist_ok=True)
    lu = carbonscape.open_store(carbonscape.ingest(folder / "landuse.tif", work / "equal_area-lu.zarr"))
    gdf = gpd.read_file(folder / "counties.gpkg").to_crs(lu.grid.crs)
    rings = chunk_rings(gdf, lu.grid, ids=np.arange(1, len(gdf) + 1))
    index = ClassIndex.build(read_pools(folder / "pools.csv").codes, nodata=lu.nodata)
    chunks = []
    for (i, j), (rows, cols) in lu.grid.chunk_windows():
        codes = np.asarray(lu.data[rows, cols])
        ring = rings[(i, j)]
        chunks.append((codes, ring, chunk_spans(ring.xs, ring.ys, ring.ring_starts, ring.polygon_starts, ring.counties, *codes.shape)))
    kernels = {"kernel": fraction.share_by_spans}
    if args.kernel_baseline is not None:
        spec = importlib.util.spec_from_file_location("fraction_baseline", args.kernel_baseline)
        baseline = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(baseline)  # type: ignore[union-attr]
        kernels["baseline"] = baseline.share_by_spans

    def run(kernel) -> tuple[float, np.ndarray]:  # type: ignore[no-untyped-def]
        seconds, tables = 0.0, []
        for codes, ring, spans in chunks:
            table = np.zeros((len(gdf) + 1, index.n_cols))
            start = time.perf_counter()
            kernel(table, codes, index.lut, index.offset, index.unknown_col, index.nodata_code, index.nodata_col, np.full(codes.shape[0], 100.0),
                   np.zeros((1, 1)), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64), 0, 0,
                   ring.xs, ring.ys, ring.ring_starts, ring.polygon_starts, ring.counties, *spans)
            seconds += time.perf_counter() - start
            tables.append(table)
        return seconds, np.stack(tables)

    for kernel in kernels.values():
        run(kernel)  # compile
    rounds = []
    for _ in range(args.repeats):
        rounds.append({name: round(run(kernel)[0], 4) for name, kernel in kernels.items()} | {"load_average": os.getloadavg()})
    results: dict[str, object] = {
        "pixels": args.size**2, "counties": args.counties, "chunks": len(chunks), "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "rounds": rounds,
        "kernel_best_s": min(r["kernel"] for r in rounds),
        "boundary_entries": int(sum(len(fraction.ring_fractions(ring.xs, ring.ys, ring.ring_starts, ring.polygon_starts, ring.counties,
                                                                  codes.shape[1], codes.shape[0])[0]) for codes, ring, _ in chunks)),
    }
    if "baseline" in kernels:
        ratios = sorted(r["baseline"] / r["kernel"] for r in rounds)
        new, old = run(kernels["kernel"])[1], run(kernels["baseline"])[1]
        results |= {
            "baseline_best_s": min(r["baseline"] for r in rounds), "baseline_over_kernel_median": round(ratios[len(ratios) // 2], 3),
            "county_rows_identical": bool(np.array_equal(new[:, 1:], old[:, 1:])), "tables_identical": bool(np.array_equal(new, old)),
            "max_abs_difference_m2": float(np.abs(new - old).max()),
        }
    out = HERE / "results" / f"areas-kernel-{args.size}-c{args.counties}.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def gdal_burn(wkbs, ids, transform, shape, dtype):
    """The chunk burn before ``kernels/spans.py``: GDAL's rasterize of the clipped polygons (defined
    here, so that it travels to the workers by value)."""
    import shapely
    from affine import Affine
    from rasterio.features import rasterize

    if not wkbs:
        return np.zeros(shape, dtype=dtype)
    return rasterize(zip(shapely.from_wkb(list(wkbs)), ids), out_shape=shape, transform=Affine(*transform), fill=0, all_touched=False, dtype=dtype)


def gdal_burn_rows(args: argparse.Namespace, lu, counties: Path, pools: Path, *, run) -> dict[str, object]:
    """Our span burn against GDAL's: every chunk burned both ways in this process (seconds summed,
    pixels that differ), then fused fraction and centre runs with GDAL's burn (B) against ours (A)."""
    import carbonscape
    import carbonscape.rasterize as rasterize
    import geopandas as gpd
    from carbonscape.rasterize import _chunk_tasks, lazy_zones, zone_dtype

    grid = carbonscape.open_store(lu).grid
    gdf = gpd.read_file(counties).to_crs(grid.crs)
    ids = np.arange(1, len(gdf) + 1)
    dtype = zone_dtype(len(ids)).str
    tasks = _chunk_tasks(gdf, grid, ids=ids)
    rasterize._burn_chunk(*next(iter(tasks.values())), dtype)  # compile
    ours_s = gdal_s = 0.0
    differ = 0
    for wkbs, chunk_ids, transform, shape in tasks.values():
        start = time.perf_counter()
        theirs = gdal_burn(wkbs, chunk_ids, transform, shape, dtype)
        middle = time.perf_counter()
        ours = rasterize._burn_chunk(wkbs, chunk_ids, transform, shape, dtype)
        ours_s += time.perf_counter() - middle
        gdal_s += middle - start
        differ += int((ours != theirs).sum())
    out: dict[str, object] = {"burn_per_chunk": {"chunks": len(tasks), "spans_s_per_chunk": round(ours_s / len(tasks), 4),
                                                 "gdal_s_per_chunk": round(gdal_s / len(tasks), 4), "gdal_over_spans": round(gdal_s / ours_s, 2),
                                                 "pixels_differing": differ, "load_average": os.getloadavg()}}
    spans = rasterize._burn_chunk

    def fused(coverage: str, how: str) -> object:
        """``how``: "spans" (counted along the spans, no id raster: kernels/spans.py's span_tables),
        "ids" (ids burned by spans, then counted from the id raster), "gdal" (ids burned by GDAL,
        then counted from the id raster: the code before kernels/spans.py)."""
        import dataclasses

        import carbonscape.carbon as carbon
        from carbonscape.accumulate.library import COUNTS, COUNTS_AREAS, SPAN_COUNTS, SPAN_COUNTS_AREAS

        if how != "spans":  # the pass reads the burned ids instead of counting along the spans
            carbon.SPAN_COUNTS = COUNTS
            carbon.SPAN_COUNTS_AREAS = dataclasses.replace(COUNTS_AREAS, reads=(*COUNTS_AREAS.reads, rasterize.COUNTY_RINGS))
        rasterize._burn_chunk = gdal_burn if how == "gdal" else spans  # zones_and_rings puts the module's burn into the graph
        try:
            zones = lazy_zones(counties, like=lu, id_field="county", coverage=coverage)
            return carbonscape.supply(lu, zones, pools, run=run, min_coverage=0)
        finally:
            rasterize._burn_chunk = spans
            carbon.SPAN_COUNTS, carbon.SPAN_COUNTS_AREAS = SPAN_COUNTS, SPAN_COUNTS_AREAS

    for how in ("gdal", "ids"):
        fused("fraction", how)  # warm
    for coverage in ("fraction", "centre"):
        a, b, c = fused(coverage, "spans"), fused(coverage, "ids"), fused(coverage, "gdal")
        out[f"fused_{coverage}_tables_equal"] = {
            "spans_vs_ids": bool(a.by_county_class.equals(b.by_county_class)),  # type: ignore[attr-defined]
            "spans_vs_gdal": bool(a.by_county_class.equals(c.by_county_class)),  # type: ignore[attr-defined]
        }
        # A: counted along the spans; B: GDAL's burn and the id raster (before kernels/spans.py).
        out[f"fused_{coverage}_gdal_burn_vs_spans"] = alternate(args.repeats, lambda c=coverage: fused(c, "spans"), lambda c=coverage: fused(c, "gdal"))
        # A: counted along the spans; B: burned by spans into an id raster, then counted.
        out[f"fused_{coverage}_id_raster_vs_spans"] = alternate(args.repeats, lambda c=coverage: fused(c, "spans"), lambda c=coverage: fused(c, "ids"))
    return out


if __name__ == "__main__":
    main()
