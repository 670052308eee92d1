"""Deliberate faults, applied by monkeypatching, that the suite must catch (test_mutations.py).

A mutant is switched on by the environment variable ``CARBONSCAPE_MUTANT=<name>`` together with
this folder's ``mutant_site/`` on ``PYTHONPATH``: its ``sitecustomize`` applies the mutant at the
start of every Python process, so the pytest run and every `carbonscape` process a test starts
carry the same fault. Each fault replaces one function by a faulty wrapper everywhere carbonscape
holds a reference to it (``from x import f`` copies included), and refuses to run when the function
it breaks is gone, so a refactor cannot turn a mutant into a silent no-op.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ENV = "CARBONSCAPE_MUTANT"


@dataclass(frozen=True)
class Mutant:
    name: str
    fault: str
    apply: Callable[[], int]
    tests: tuple[str, ...]  # the test ids expected to catch it (at least one must fail)


def _load_all() -> None:
    import carbonscape

    for info in pkgutil.walk_packages(carbonscape.__path__, "carbonscape."):
        if info.name.startswith(("carbonscape.demo.build_data",)):
            continue
        importlib.import_module(info.name)


def replace(module_name: str, attribute: str, make: Callable[[Any], Any]) -> int:
    """Replace ``module.attribute`` by ``make(original)`` in every carbonscape module holding it."""
    _load_all()
    module = importlib.import_module(module_name)
    if not hasattr(module, attribute):
        raise RuntimeError(f"mutant target {module_name}.{attribute} is gone; update tests/mutants.py")
    original = getattr(module, attribute)
    faulty = make(original)
    replaced = 0
    for name, loaded in list(sys.modules.items()):
        if not (name == "carbonscape" or name.startswith("carbonscape.")) or loaded is None:
            continue
        for key, value in list(vars(loaded).items()):
            if value is original:
                setattr(loaded, key, faulty)
                replaced += 1
    return replaced


def _faulty_fills(change) -> int:
    """Counties are filled as one matplotlib ``PathCollection(paths, facecolors=[...])`` per map:
    wrap its constructor so ``change(paths, colours) -> (paths, colours)`` alters what is filled.
    maps.py itself is left alone, so it can be rewritten freely; a mutant that no longer reaches the
    drawing shows as "NOT caught"."""
    import matplotlib.collections as collections

    original = collections.PathCollection.__init__

    def init(self, paths, sizes=None, **kwargs):
        colours = kwargs.get("facecolors")
        if colours is not None and not isinstance(colours, str) and len(colours) == len(paths) > 1:
            paths, colours = change(list(paths), list(colours))
            kwargs["facecolors"] = colours
        original(self, paths, sizes, **kwargs)

    collections.PathCollection.__init__ = init
    return 1


def _reversed_fills() -> int:
    from matplotlib.colors import to_rgba

    def reverse(paths, colours):
        # The distinct fills ordered from dark to light, each swapped with its mirror: the highest
        # class takes the lowest class's colour and back.
        rgba = [to_rgba(c) for c in colours]
        distinct = sorted(set(rgba), key=lambda c: 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2])
        mirror = dict(zip(distinct, distinct[::-1]))
        return paths, [mirror[c] for c in rgba]

    return _faulty_fills(reverse)


def _county_missing_from_maps() -> int:
    return _faulty_fills(lambda paths, colours: (paths[:-1], colours[:-1]))


def _doubled_supply() -> int:
    def make(read_pools):
        def read_pools_doubled(*args, **kwargs):
            pools = read_pools(*args, **kwargs)
            for column in ("c_above", "c_below", "c_soil", "c_dead"):
                pools.table[column] = pools.table[column] * 2
            return pools
        return read_pools_doubled

    return replace("carbonscape.carbon", "read_pools", make)


def _equal_intervals_for_jenks() -> int:
    from carbonscape.breaks import equal_interval_breaks

    def make(natural_breaks):
        def equal_instead(values, k, weights=None):
            return equal_interval_breaks(values, k)
        return equal_instead

    return replace("carbonscape.breaks", "natural_breaks", make)


def _sampled_jenks() -> int:
    import numpy as np

    def make(natural_breaks):
        def sampled(values, k, weights=None):
            # xarray-spatial's shortcut: breaks of a sample, then widened to the data's range.
            x = np.asarray(values, dtype=float)
            if x.size <= 5_000:
                return natural_breaks(values, k, weights)
            edges = natural_breaks(x[:: x.size // 2_000], k)
            edges[0], edges[-1] = np.nanmin(x), np.nanmax(x)
            return edges
        return sampled

    return replace("carbonscape.breaks", "natural_breaks", make)


def _ignored_weights() -> int:
    import numpy as np

    def make(kernel):
        def unweighted(values, weights, k):
            return kernel(values, np.ones_like(weights), k)
        return unweighted

    return replace("carbonscape.kernels.jenks", "fisher_jenks_starts", make)


def _mosaic_nodata_overwrites() -> int:
    import numpy as np
    import rasterio
    from rasterio.windows import Window

    def make(read_window):
        def read_window_overwriting(tiles, rows, cols, dtype, fill):
            r0, r1 = rows
            c0, c1 = cols
            out = np.full((r1 - r0, c1 - c0), fill, dtype=dtype)
            for tile in tiles:
                tr0, tr1 = max(r0, tile.row), min(r1, tile.row + tile.height)
                tc0, tc1 = max(c0, tile.col), min(c1, tile.col + tile.width)
                if tr0 >= tr1 or tc0 >= tc1:
                    continue
                with rasterio.open(tile.path) as src:
                    out[tr0 - r0:tr1 - r0, tc0 - c0:tc1 - c0] = src.read(1, window=Window(tc0 - tile.col, tr0 - tile.row, tc1 - tc0, tr1 - tr0))
            return out
        return read_window_overwriting

    return replace("carbonscape.io", "_read_window", make)


def _dropped_county() -> int:
    def make(supply):
        def supply_dropping_one(*args, **kwargs):
            result = supply(*args, **kwargs)
            last = result.by_county["county"].iloc[-1]
            result.by_county.drop(result.by_county.index[-1], inplace=True)
            pairs = result.by_county_class
            pairs.drop(pairs.index[pairs["county"] == last], inplace=True)
            return result
        return supply_dropping_one

    return replace("carbonscape.carbon", "supply", make)


def _inverted_ratio() -> int:
    def make(ratio_of):
        def inverted(*args, **kwargs):
            frame = ratio_of(*args, **kwargs)
            frame["ratio"] = 1.0 / frame["ratio"]
            return frame
        return inverted

    return replace("carbonscape.ratio", "supply_demand_ratio", make)


def _demand_over_pixel_area() -> int:
    def make(demand_by_county):
        def over_pixel_area(table, *, area_km2, pixel_area_km2=None, **kwargs):
            return demand_by_county(table, area_km2=pixel_area_km2 if pixel_area_km2 is not None else area_km2, pixel_area_km2=pixel_area_km2, **kwargs)
        return over_pixel_area

    return replace("carbonscape.demand", "demand_by_county", make)


E2E_API = "tests/test_e2e_behaviours.py::test_the_hand_built_study_through_the_python_api"
MAPS_SUPPLY = "tests/test_maps_meaning.py::test_supply_map_colours_each_county_by_its_natural_break_class"
MAPS_RATIO = "tests/test_maps_meaning.py::test_ratio_map_colours_each_county_by_its_study_class_green_to_red"

MUTANTS = {m.name: m for m in [
    Mutant("reversed_fills", "map fills reversed: the highest class drawn in the lowest class's colour", _reversed_fills, (MAPS_SUPPLY, MAPS_RATIO)),
    Mutant("county_missing_from_maps", "the last county is left out of every map", _county_missing_from_maps, (MAPS_SUPPLY,)),
    Mutant("doubled_supply", "every carbon density (so every supply figure) doubled", _doubled_supply,
           (E2E_API, "tests/test_e2e_cli.py::test_step_by_step_supply_equals_the_hand_computed_supply")),
    Mutant("equal_intervals_for_jenks", "natural breaks replaced by equal intervals", _equal_intervals_for_jenks,
           ("tests/test_breaks.py::test_hand_computed_two_clusters", E2E_API)),
    Mutant("sampled_jenks", "natural breaks of a 2,000-value sample (valid-looking, not optimal)", _sampled_jenks,
           ("tests/test_breaks.py::test_large_input_is_optimal",)),
    Mutant("ignored_weights", "the Fisher-Jenks kernel ignores its weights", _ignored_weights,
           ("tests/test_breaks.py::test_integer_weights_equal_repetition", "tests/test_e2e_behaviours.py::test_area_weights_change_the_natural_breaks")),
    Mutant("mosaic_nodata_overwrites", "a tile's nodata overwrites another tile's data in a mosaic", _mosaic_nodata_overwrites,
           ("tests/test_e2e_behaviours.py::test_overlapping_tiles_keep_each_others_data",)),
    Mutant("dropped_county", "supply leaves the last county out of its tables", _dropped_county, (E2E_API,)),
    Mutant("inverted_ratio", "ratio = supply density / demand density", _inverted_ratio, (E2E_API,)),
    Mutant("demand_over_pixel_area", "demand density over the raster's pixel area, not the county's true area", _demand_over_pixel_area,
           (E2E_API,)),
]}

STATUS: str | None = None


def apply_from_environment() -> None:
    """Apply the mutant ``CARBONSCAPE_MUTANT`` names (called by mutant_site/sitecustomize.py)."""
    global STATUS
    name = os.environ.get(ENV)
    if not name:
        return
    if name not in MUTANTS:
        raise RuntimeError(f"{ENV}={name!r}: no such mutant; known: {sorted(MUTANTS)}")
    replaced = MUTANTS[name].apply()
    if replaced == 0:
        raise RuntimeError(f"mutant {name}: nothing was replaced")
    STATUS = f"carbonscape mutant: {name} ({replaced} references replaced)"
