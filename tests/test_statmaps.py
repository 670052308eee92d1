"""The maps of clusters, hot spots, quadrants, balance and zone stability: drawn in the right colours."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import geopandas as gpd
import matplotlib.image
import matplotlib.text
import numpy as np
import pandas as pd
import pyproj
import pytest
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


# -- what Figs 1–5 carry: the credit line, legends inside the sheet, plain numbers ------------------

CREDIT = "Test study · 2020 · data: land use lu.tif · CRS: WGS 84 / UTM zone 48N (EPSG:32648) · carbonscape 0"


@pytest.fixture
def sheets(monkeypatch):
    """Each sheet as saved: its figure, after the layout, before it is released."""
    from carbonscape import statmaps

    drawn: dict[str, Any] = {}

    def keep(fig):
        drawn[fig._suptitle.get_text() if fig._suptitle is not None else fig.axes[0].get_title()] = fig

    monkeypatch.setattr(statmaps, "_release", keep)
    return drawn


def _inside_sheet(fig) -> None:
    renderer = fig.canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend() is not None)]
    for artist in legends:
        box = artist.get_window_extent(renderer)
        assert box.x0 >= -0.5 and box.y0 >= -0.5 and box.x1 <= width + 0.5 and box.y1 <= height + 0.5, (artist, box, width, height)
    # Everything drawn (titles, credit line, colour bars), in inches.
    tight = fig.get_tightbbox(renderer)
    w, h = fig.get_size_inches()
    assert tight.x0 >= -0.01 and tight.y0 >= -0.01 and tight.x1 <= w + 0.01 and tight.y1 <= h + 0.01, (tight, w, h)


def _texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.findobj(matplotlib.text.Text)).replace("\n", " ")


def test_county_maps_carry_the_credit_line_and_keep_their_legends_inside(tmp_path, sheets):
    units = lattice()
    # Long labels with thousands of units: the legend must still fit.
    matching = pd.DataFrame({"quadrant": ["HS-LD", "LS-HD", "HS-HD", "LS-LD"] * 2 + ["HS-HD"], "balance": np.linspace(-5, 5, 9)},
                            index=units.index)
    draw_matching(units, matching, tmp_path, credit=CREDIT)
    lisa = pd.DataFrame({"county": list(units.index) * 3, "variable": ["supply_t_per_km2"] * 9 + ["ratio"] * 9 + ["demand_t_per_km2"] * 9,
                         "local_i": 0.0, "p_sim": 0.5, "cluster": ["HH", "LL", "HL", "LH"] * 6 + ["not significant"] * 3})
    draw_lisa_clusters(units, lisa, tmp_path, alpha=0.05, credit=CREDIT)
    draw_hotspots(units, lisa.assign(spot=["hot spot", "cold spot", "not significant"] * 9), tmp_path, alpha=0.05, credit=CREDIT)
    stability = pd.DataFrame({"p_zone_a": np.linspace(0, 1, 9)}, index=units.index)
    draw_zone_stability(units, stability, pd.Series(["a"] * 9, index=units.index), tmp_path, credit=CREDIT)
    assert len(sheets) == 5, list(sheets)
    for title, fig in sheets.items():
        _inside_sheet(fig)
        text = _texts(fig)
        for part in ("Test study", "2020", "data: land use lu.tif", "CRS: WGS 84 / UTM zone 48N (EPSG:32648)"):
            assert part in text, (title, part)
    legend = sheets["Supply–demand quadrants"].axes[0].get_legend()
    assert "high supply, high demand (3)" in [t.get_text() for t in legend.get_texts()]


class _Grid:
    crs = pyproj.CRS.from_epsg(32648)


class _Cells:
    """A 6 × 6 lattice of 1 km cells; only its shape, transform and CRS are drawn."""

    shape = (6, 6)
    transform = (1000.0, 0.0, 0.0, 0.0, -1000.0, 6000.0)
    grid = _Grid()


def _cell_table() -> pd.DataFrame:
    rows, cols = np.divmod(np.arange(36), 6)
    inside = ~((rows < 2) & (cols < 2))  # the top-left 2 × 2 cells lie outside the study region
    rows, cols = rows[inside], cols[inside]
    n = len(rows)
    ratio = np.geomspace(0.6, 2.2, n)
    return pd.DataFrame({
        "row": rows, "col": cols, "supply_t_per_km2": np.linspace(100, 900, n), "demand_t_per_km2": np.linspace(50, 500, n),
        "ratio": ratio, "class": np.digitize(ratio, [1.0, 1.6]) + 1, "zone_key": np.where(ratio > 1.0, "deficit", "surplus"),
        "zone_en": np.where(ratio > 1.0, "deficit", "surplus"), "quadrant": np.where(ratio > 1.0, "LS-HD", "HS-LD"),
        "balance": np.linspace(-5, 5, n), "demand_unit": "t CO₂/km²",
    }, index=pd.Index(np.flatnonzero(inside), name="cell"))


def test_cell_maps_plain_numbers_outside_apart_and_the_credit_line(tmp_path, sheets):
    from types import SimpleNamespace

    from carbonscape.statmaps import CELL_MAP_FILES, OUTSIDE_LABEL, draw_cell_maps, plain_log_ticks

    table = _cell_table()
    lisa = pd.DataFrame({"cell": table.index, "variable": "ratio", "cluster": ["HH", "LL"] * 4 + ["not significant"] * (len(table) - 8)})
    spots = pd.DataFrame({"cell": table.index, "variable": "ratio", "spot": ["hot spot"] * 5 + ["not significant"] * (len(table) - 5)})
    statistics = SimpleNamespace(lisa=lisa, hotspots=spots, settings=SimpleNamespace(alpha=0.05))
    paths = draw_cell_maps(_Cells(), table, tmp_path, statistics=statistics, credit=CREDIT)
    assert len(paths) == 5
    for title, fig in sheets.items():
        _inside_sheet(fig)
        assert "CRS: WGS 84 / UTM zone 48N (EPSG:32648)" in _texts(fig) and "Test study · 2020" in _texts(fig), title
    # The ratio's log colour bar in plain numbers.
    ratio_fig = sheets[CELL_MAP_FILES["cells_ratio_zones"]]
    bar = [ax for ax in ratio_fig.axes if ax.get_label() == "<colorbar>"][0]
    labels = [t.get_text() for t in bar.yaxis.get_ticklabels() if t.get_text()]
    assert labels and all(re.fullmatch(r"\d+(\.\d+)?", label) for label in labels), labels
    assert len(labels) >= 3 and [float(x) for x in labels] == sorted(float(x) for x in labels)
    assert plain_log_ticks(0.3, 6.0) == [0.5, 1.0, 2.0, 5.0] and plain_log_ticks(0.05, 20.0) == [0.1, 1.0, 10.0]
    # Outside the study region: white hatched and in the legend, apart from "not significant".
    for stem in ("cells_lisa_clusters", "cells_hotspots"):
        ax = sheets[CELL_MAP_FILES[stem]].axes[0]
        handles = {t.get_text(): h for t, h in zip(ax.get_legend().get_texts(), ax.get_legend().legend_handles)}
        assert OUTSIDE_LABEL in handles, list(handles)
        assert handles[OUTSIDE_LABEL].get_hatch() and to_rgb(handles[OUTSIDE_LABEL].get_facecolor()) == (1.0, 1.0, 1.0)
        assert any(label.startswith("not significant") for label in handles)
    # In the picture: the outside corner is white (between hatch lines), not the grey of "no value".
    image = matplotlib.image.imread(tmp_path / "cells_lisa_clusters.png")[..., :3]
    assert share_of(tmp_path / "cells_lisa_clusters.png", "#ffffff") > 0.3 and image.size
