"""Transition tables in fraction mode: what sharing each pair's boundary pixels by covered
fraction adds to a two-map pass.

Usage (the issue-7 area benchmark's inputs: a land-use store and the same counties' centre- and
fraction-mode county stores on its grid)::

    python benchmarks/change_fraction.py --landuse LU.zarr --centre ZC.zarr --fraction ZF.zarr \
        --pools pools.csv --out FOLDER [--repeats 3]

Makes a second map beside ``--out`` (about 10 % of the pixels change class, in blocks: the
``_changed`` rule of ``benchmarks/maps.py``), then times :func:`carbonscape.change.maps_pass` of
both maps with their transfer matrix, alternating on one LocalCluster so that all see the same load:

- ``centre``: the centre-mode county store;
- ``fraction, centre transitions``: the fraction-mode store with the transition moves switched off
  (each map's supply shared by fraction, the transfer matrix by pixel centres: the code before
  :data:`~carbonscape.accumulate.fraction_pairs.FRACTION_TRANSITIONS`);
- ``fraction``: the fraction-mode store, every table shared by fraction (each map's areas the
  margins of its pair's moved cells);
- ``change, centre`` and ``change, fraction``: :func:`carbonscape.change` (the transfer matrix
  alone, no per-map pass) on each store.

Writes ``results/change_fraction_<pixels>.json`` with best and median seconds and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def main() -> None:
    import importlib

    import carbonscape

    change_module = importlib.import_module("carbonscape.change")  # the module: carbonscape.change is also the function
    from carbonscape.cluster import executor
    from carbonscape.io import open_store, raster_dataset, write_store

    from maps import _changed  # the second map of benchmarks/maps.py

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--landuse", type=Path, required=True)
    parser.add_argument("--centre", type=Path, required=True)
    parser.add_argument("--fraction", type=Path, required=True)
    parser.add_argument("--pools", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the second map's store")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tag", default="", help="added to the result file's name")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    alt = args.out / "landuse_alt.zarr"
    table = carbonscape.read_pools(args.pools)
    moves = change_module._fraction_moves
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {"centre": [], "fraction, centre transitions": [], "fraction": [], "change, centre": [], "change, fraction": []}
    results = {}
    with executor(None) as run:
        if not alt.exists():
            land = open_store(args.landuse)
            ds = raster_dataset(land.data.map_blocks(_changed, dtype=land.data.dtype), land.grid, name="landuse",
                                nodata=land.nodata, attrs={"carbonscape_kind": "landuse"})
            write_store(ds, alt, grid=land.grid, run=run)

        def two_maps(zones: Path, *, with_moves: bool = True):  # type: ignore[no-untyped-def]
            change_module._fraction_moves = moves if with_moves else (lambda *a, **k: None)
            try:
                return change_module.maps_pass({"a": args.landuse, "b": alt}, zones, {"a": table, "b": table}, pairs=[("a", "b")], run=run)
            finally:
                change_module._fraction_moves = moves

        variants = {
            "centre": lambda: two_maps(args.centre),
            "fraction, centre transitions": lambda: two_maps(args.fraction, with_moves=False),
            "fraction": lambda: two_maps(args.fraction),
            "change, centre": lambda: carbonscape.change(args.landuse, alt, args.centre, table, run=run),
            "change, fraction": lambda: carbonscape.change(args.landuse, alt, args.fraction, table, run=run),
        }
        for call in variants.values():  # warm up: numba compile, file cache
            call()
        for _ in range(args.repeats):
            for name, call in variants.items():
                t = time.perf_counter()
                results[name] = call()
                times[name].append(time.perf_counter() - t)
        where = run.description
    best = {k: min(v) for k, v in times.items()}
    median = {k: statistics.median(v) for k, v in times.items()}
    cells = results["fraction"].changes[("a", "b")].transitions_by_county
    report = {
        "pixels_per_map": int(open_store(args.landuse).data.size),
        "counties": int(cells["county"].nunique()),
        "where": where,
        "fraction_store": str(args.fraction.name),
        "seconds": {k: {"best": best[k], "median": median[k], "all": v} for k, v in times.items()},
        "fraction_over_centre": {"best": best["fraction"] / best["centre"], "median": median["fraction"] / median["centre"]},
        "change_fraction_over_centre": {"best": best["change, fraction"] / best["change, centre"],
                                        "median": median["change, fraction"] / median["change, centre"]},
        "fraction_transitions_add_over_fraction_supply_only": {
            "best": best["fraction"] / best["fraction, centre transitions"],
            "median": median["fraction"] / median["fraction, centre transitions"],
        },
        "load_average": {"before": load_before, "after": os.getloadavg()},
    }
    out = Path(__file__).parent / "results" / f"change_fraction_{report['pixels_per_map']}{'_' + args.tag if args.tag else ''}.json"
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
