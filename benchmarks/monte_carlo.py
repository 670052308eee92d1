"""Benchmark of the Monte Carlo of the densities (carbonscape.uncertainty).

Usage (from the repository root)::

    python benchmarks/monte_carlo.py                       # the issue's sizes
    python benchmarks/monte_carlo.py --draws 1000 --units 300
    python benchmarks/monte_carlo.py --corrected            # also with densities corrected per county and class

The Monte Carlo row is the issue's target: 10,000 draws × 3,000 counties × 20 classes in ≤ 10 s,
ratio and zone shares included, after one warm-up call on a small table. Nothing here reads a raster:
the county × class area table is random (the sizes, not the values, set the cost).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import pandas as pd
from carbonscape.uncertainty import read_spreads, supply_uncertainty
from carbonscape.zoning import PAPER_SCHEME


def monte_carlo_case(*, draws: int, units: int, classes: int, seed: int = 0, corrected: bool = False) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    codes = np.arange(1, classes + 1)
    density = rng.uniform(0, 100, size=(classes, 4))
    table = pd.DataFrame({"lucode": codes, **{f"c_{p}": density[:, i] for i, p in enumerate(("above", "below", "soil", "dead"))},
                          **{f"c_{p}_sd": density[:, i] * 0.1 for i, p in enumerate(("above", "below", "soil", "dead"))}})
    spreads = read_spreads(table)
    assert spreads is not None
    index = pd.Index([f"u{i}" for i in range(units)], name="county")
    area_ha = pd.DataFrame(rng.uniform(0, 5000, size=(units, classes)), index=index, columns=codes)
    area_km2 = area_ha.sum(axis=1) / 100
    demand = pd.Series(rng.uniform(100, 5000, size=units), index=index)
    edges = [0.0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.2, 10.0]
    zones = [(z.key, z.classes) for z in PAPER_SCHEME.zones]

    # [continuous] factors: each pool's mean correction factor per county and class (0.8-1.2).
    factors = rng.uniform(0.8, 1.2, size=(units, classes, 4))

    def run(n_draws: int, n_units: int, with_factors: bool = False) -> float:
        started = time.perf_counter()
        supply_uncertainty(area_ha.iloc[:n_units], spreads, area_km2=area_km2, demand_t_per_km2=demand, edges=edges, zones=zones,
                           draws=n_draws, seed=1, factors=factors[:n_units] if with_factors else None)
        return time.perf_counter() - started

    run(100, 10)  # warm-up
    result = {"draws": draws, "units": units, "classes": classes, "seconds": round(run(draws, units), 3)}
    if corrected:
        run(100, 10, True)
        result["seconds_corrected"] = round(run(draws, units, True), 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=10_000)
    parser.add_argument("--units", type=int, default=3_000)
    parser.add_argument("--classes", type=int, default=20)
    parser.add_argument("--corrected", action="store_true", help="also time the Monte Carlo of corrected densities (factors)")
    args = parser.parse_args()
    result = monte_carlo_case(draws=args.draws, units=args.units, classes=args.classes, corrected=args.corrected)
    result["machine"] = f"{platform.processor() or platform.machine()}, {platform.system()}"
    print(json.dumps(result))


if __name__ == "__main__":
    main()
