"""The maps of clusters, hot spots, quadrants, balance and zone stability: drawn in the right colours."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import matplotlib.image
import numpy as np
import pandas as pd
import shapely
from carbonscape.statmaps import (
    CLUSTER_COLOURS,
    QUADRANT_COLOURS,
    draw_hotspots,
    draw_lisa_clusters,
    draw_matching,
    draw_zone_stability,
)
from matplotlib.colors import to_rgb


def lattice() -> gpd.GeoDataFrame:
    boxes = [shapely.box(1000 * c, 1000 * (2 - r), 1000 * (c + 1), 1000 * (3 - r)) for r in range(3) for c in range(3)]
    return gpd.GeoDataFrame(geometry=boxes, index=pd.Index([f"u{i}" for i in range(9)], name="county"), crs="EPSG:32648")


def share_of(path: Path, colour: str) -> float:
    """The share of the picture's pixels within a few levels of ``colour``."""
    image = matplotlib.image.imread(path)[..., :3]
    return float((np.abs(image - np.array(to_rgb(colour))).max(axis=-1) < 0.02).mean())


def test_lisa_map_shows_the_clusters_it_is_given(tmp_path: Path) -> None:
    units = lattice()
    lisa = pd.DataFrame({
        "county": list(units.index) * 2,
        "variable": ["supply_t_per_km2"] * 9 + ["ratio"] * 9,
        "local_i": 0.0, "p_sim": 0.5,
        "cluster": ["HH"] * 3 + ["not significant"] * 6 + ["LL"] * 2 + ["not significant"] * 7,
    })
    (path,) = draw_lisa_clusters(units, lisa, tmp_path, alpha=0.05)
    assert path.name == "lisa_clusters.png"
    assert share_of(path, CLUSTER_COLOURS["HH"]) > 0.01
    assert share_of(path, CLUSTER_COLOURS["LL"]) > 0.005
    assert share_of(path, CLUSTER_COLOURS["HL"]) == 0.0


def test_no_hot_spot_no_red(tmp_path: Path) -> None:
    units = lattice()
    hot = pd.DataFrame({"county": units.index, "variable": "ratio", "gi_star_z": -3.0, "p_sim": 0.01,
                        "spot": ["cold spot"] * 4 + ["not significant"] * 5})
    (path,) = draw_hotspots(units, hot, tmp_path, alpha=0.05)
    assert share_of(path, "#d7191c") == 0.0 and share_of(path, "#2c7bb6") > 0.01


def test_matching_and_stability_maps(tmp_path: Path) -> None:
    units = lattice()
    matching = pd.DataFrame({"quadrant": ["HS-LD"] * 5 + ["LS-HD"] * 4, "balance": np.linspace(-5, 5, 9)}, index=units.index)
    paths = draw_matching(units, matching, tmp_path)
    assert [p.name for p in paths] == ["matching_quadrants.png", "matching_balance.png"]
    assert share_of(paths[0], QUADRANT_COLOURS["HS-LD"]) > 0.01 and share_of(paths[0], QUADRANT_COLOURS["HS-HD"]) == 0.0
    stability = pd.DataFrame({"p_zone_a": np.linspace(0, 1, 9), "p_zone_b": 1 - np.linspace(0, 1, 9)}, index=units.index)
    (path,) = draw_zone_stability(units, stability, pd.Series(["a"] * 9, index=units.index), tmp_path)
    assert path.exists() and path.stat().st_size > 10_000


def test_units_without_a_value_beside_multipolygons(tmp_path: Path) -> None:
    """A unit left out of a statistic (no value) on a map whose units include multipolygons."""
    units = lattice()
    units.loc["u0", "geometry"] = shapely.MultiPolygon([shapely.box(0, 2000, 400, 3000), shapely.box(600, 2000, 1000, 3000)])
    lisa = pd.DataFrame({"county": list(units.index[1:]), "variable": "ratio", "local_i": 0.0, "p_sim": 0.5,
                         "cluster": ["HH"] + ["not significant"] * 7})
    (path,) = draw_lisa_clusters(units, lisa, tmp_path, alpha=0.05)
    assert share_of(path, CLUSTER_COLOURS["HH"]) > 0.005
