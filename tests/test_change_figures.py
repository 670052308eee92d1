"""The change figures as a reader sees them: every Sankey class labelled and no two texts on top of
each other (measured on the rendered text extents), titles that name the scenario, and a county
change map that names or numbers its counties, credits its sources and CRS, and shows its colour
bar in a readable unit without matplotlib's offset."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from carbonscape.change_figures import change_map_figure, change_title, map_label, sankey_figure, spread_labels
from hypothesis import given, settings
from hypothesis import strategies as st


def rendered_boxes(fig, prefix: str = "") -> dict[str, object]:
    """Window extents (pixels) of the figure's visible, non-empty texts, by gid (or text)."""
    renderer = fig.canvas.get_renderer()
    fig.draw(renderer)
    boxes = {}
    for text in fig.findobj(lambda artist: hasattr(artist, "get_text") and hasattr(artist, "get_window_extent")):
        if text.get_visible() and text.get_text().strip() and (text.get_gid() or "").startswith(prefix):
            boxes[text.get_gid() or f"text:{text.get_text()}:{id(text)}"] = text.get_window_extent(renderer)
    return boxes


def assert_no_overlap(boxes: dict[str, object]) -> None:
    for (a, box_a), (b, box_b) in itertools.combinations(boxes.items(), 2):
        # Boxes that only touch do not overlap (a pixel of tolerance for rounding).
        overlap_x = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        overlap_y = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        assert overlap_x <= 1 or overlap_y <= 1, f"{a!r} overlaps {b!r}: {box_a} / {box_b}"


def assert_every_class_labelled(fig, transitions: pd.DataFrame) -> None:
    boxes = rendered_boxes(fig, "class:")
    flowing = transitions[transitions["area_km2"] > 0]
    wanted = {f"class:from:{c}" for c in flowing["from_code"]} | {f"class:to:{c}" for c in flowing["to_code"]}
    assert wanted <= set(boxes), f"classes without a label: {sorted(wanted - set(boxes))}"
    inside = fig.bbox
    for gid, box in boxes.items():  # every label on the sheet, readable size
        assert inside.x0 - 1 <= box.x0 and box.x1 <= inside.x1 + 1 and inside.y0 - 1 <= box.y0 and box.y1 <= inside.y1 + 1, gid
    sizes = {t.get_fontsize() for t in fig.axes[0].texts if (t.get_gid() or "").startswith("class:")}
    assert min(sizes) >= 6


def change_of(transitions: pd.DataFrame, summary: dict) -> SimpleNamespace:
    return SimpleNamespace(transitions=transitions, summary=summary)


def many_tiny_classes() -> pd.DataFrame:
    """24 classes: two large, the rest from 50 km² down to 0.001 km², some only in one map."""
    rng = np.random.default_rng(4)
    areas = np.r_[60_000.0, 30_000.0, np.geomspace(50, 0.001, 22)]
    rows = []
    for code, area in enumerate(areas, start=1):
        rows.append((code, f"class {code}", code, f"class {code}", area * 0.9))
        rows.append((code, f"class {code}", int(rng.integers(1, 25)), "", area * 0.1))
    rows.append((25, "only before", 1, "", 0.004))  # a class of the first map only
    rows.append((2, "", 26, "only after", 0.02))  # of the second only
    frame = pd.DataFrame(rows, columns=["from_code", "from_name", "to_code", "to_name", "area_km2"])
    names = {code: name for code, name in zip(frame["from_code"], frame["from_name"]) if name} | {
        code: name for code, name in zip(frame["to_code"], frame["to_name"]) if name}
    frame["from_name"] = frame["from_code"].map(names)
    frame["to_name"] = frame["to_code"].map(names)
    return frame.groupby(["from_code", "from_name", "to_code", "to_name"], as_index=False)["area_km2"].sum()


def test_every_class_of_many_tiny_ones_gets_a_label_and_no_two_texts_overlap():
    transitions = many_tiny_classes()
    long = "2030 ecological protection with the county plans of 2021 and the province's red lines"  # a long scenario name
    fig = sankey_figure(change_of(transitions, {"maps": {"from": "2000 land survey of the whole province", "to": long}, "years": [2000, 2030]}))
    assert_every_class_labelled(fig, transitions)
    assert_no_overlap(rendered_boxes(fig))
    for gid, box in rendered_boxes(fig, "header:").items():  # the maps' long names wrapped within the sheet
        assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, gid
    # Labels that could not sit beside their bar are tied to it.
    leaders = [line for line in fig.axes[0].lines if (line.get_gid() or "").startswith("leader:")]
    assert leaders


def test_the_labels_of_a_side_keep_the_order_of_its_bars():
    transitions = many_tiny_classes()
    fig = sankey_figure(change_of(transitions, {"maps": {"from": "2000", "to": "2030"}, "years": [2000, 2030]}))
    boxes = rendered_boxes(fig, "class:from:")
    codes = sorted(int(gid.rsplit(":", 1)[1]) for gid in boxes)
    tops = [boxes[f"class:from:{code}"].y1 for code in codes]
    assert tops == sorted(tops, reverse=True)  # the first class at the top, as its bar


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0.1, 5)), min_size=1, max_size=40))
def test_spread_labels_never_overlaps_keeps_order_and_stays_in_room_when_it_fits(items):
    centres = np.array([c for c, _ in items])
    heights = np.array([h for _, h in items])
    low, high = 0.0, max(100.0, heights.sum() + 1)
    placed = spread_labels(centres, heights, low=low, high=high, pad=0.05)
    order = np.argsort(centres, kind="stable")
    top, bottom = placed[order] - heights[order] / 2, placed[order] + heights[order] / 2
    assert np.all(top[1:] >= bottom[:-1] + 0.05 - 1e-9)  # in order, apart
    assert top[0] >= low - 1e-9 and bottom[-1] <= high + 1e-9


def test_spread_labels_leaves_labels_that_fit_where_they_are():
    placed = spread_labels([5.0, 20.0, 40.0], [2.0, 2.0, 2.0], low=0.0, high=50.0)
    np.testing.assert_allclose(placed, [5.0, 20.0, 40.0])
    # Two that collide move apart about their mean.
    np.testing.assert_allclose(spread_labels([10.0, 10.5], [2.0, 2.0], low=0.0, high=50.0), [9.25, 11.25])


def test_figures_name_each_map_by_year_and_scenario():
    assert map_label("2030 ecological protection", 2030) == "2030 (ecological protection)"
    assert map_label("2020", 2020) == "2020" and map_label("eco", None) == "eco" and map_label("stores/lu.zarr", 2000) == "2000"
    change = change_of(many_tiny_classes(), {"maps": {"from": "2020", "to": "2030 ecological protection"}, "years": [2020, 2030]})
    assert change_title(change, "Carbon change per county") == "Carbon change per county, 2020 → 2030 (ecological protection)"
    fig = sankey_figure(change)
    assert "2020 → 2030 (ecological protection)" in " ".join(fig.axes[0].get_title().split())
    headers = {t.get_gid(): " ".join(t.get_text().split()) for t in fig.axes[0].texts if (t.get_gid() or "").startswith("header:")}
    assert headers == {"header:from": "2020", "header:to": "2030 (ecological protection)"}


def county_change():
    """Nine 10 km counties in UTM, changes up to 2.5e7 t C (one county without a value)."""
    names = [f"county {i}" for i in range(9)]
    boxes = [shapely.box(500_000 + 10_000 * (i % 3), 2_800_000 + 10_000 * (i // 3), 510_000 + 10_000 * (i % 3), 2_810_000 + 10_000 * (i // 3))
             for i in range(9)]
    polygons = gpd.GeoDataFrame({"name": names}, geometry=boxes, crs="EPSG:32648")
    by_county = pd.DataFrame({"county": names[:8], "change_t": np.linspace(-2.5e7, 1.2e7, 8)})
    return SimpleNamespace(by_county=by_county, summary={"maps": {"from": "2020", "to": "2030 eco"}, "years": [2020, 2030]}), polygons


def test_the_county_change_map_is_a_sheet_of_the_study_maps():
    from carbonscape.maps import MapInputs

    change, polygons = county_change()
    inputs = MapInputs(counties=polygons, study="Test region", sources=("land use lu2020.tif; lu2030.tif",), version="0.1.0")
    fig = change_map_figure(change, polygons, "name", inputs=inputs)
    texts = [t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text") and hasattr(a, "get_window_extent"))]
    assert any(t.startswith("Carbon change per county, 2020 → 2030 (eco)") for t in texts)
    # Every county named or numbered (numbered ones in the key), as on Figs. 2–5.
    shown = {gid.split(":", 1)[1] for gid in rendered_boxes(fig) if gid.startswith(("name:", "number:"))}
    assert shown == set(polygons["name"])
    # The footer credits the study's sources and the CRS.
    footer = next(t for t in texts if "CRS:" in t)
    assert "lu2030.tif" in footer and "EPSG:32648" in footer and "Test region" in " ".join(texts)
    # The colour bar: a readable unit, plain numbers, no offset.
    bar = fig.axes[-1]
    fig.canvas.draw()
    assert bar.get_ylabel() == "carbon change (10⁶ t C)"
    assert bar.yaxis.get_offset_text().get_text() == ""
    low, high = sorted(bar.get_ylim())
    ticks = [t.get_text() for t, at in zip(bar.get_yticklabels(), bar.get_yticks()) if t.get_text() and low <= at <= high]
    assert ticks and all("e" not in t for t in ticks)
    values = [float(t.replace("−", "-").replace(",", "")) for t in ticks]
    assert max(map(abs, values)) <= 25 + 1e-9


@pytest.mark.parametrize("top, unit", [(2_500.0, "t C"), (48_000.0, "10³ t C")])
def test_the_colour_bar_unit_follows_the_values(top, unit):
    change, polygons = county_change()
    change.by_county["change_t"] = np.linspace(-top, top / 2, 8)
    fig = change_map_figure(change, polygons, "name")
    fig.canvas.draw()
    assert fig.axes[-1].get_ylabel() == f"carbon change ({unit})"
    assert fig.axes[-1].yaxis.get_offset_text().get_text() == ""


def test_a_study_s_change_map_credits_the_study_and_the_two_maps_files(tmp_path, monkeypatch):
    from pathlib import Path

    from carbonscape.study.landuse_maps import LandUseMap, draw_changes
    from matplotlib.figure import Figure

    texts = []
    save = Figure.savefig

    def keep(self, *args, **kwargs):
        texts.extend(t.get_text() for t in self.texts)
        return save(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    change, polygons = county_change()
    change.files, change.transitions = {}, many_tiny_classes()
    study = SimpleNamespace(name="Three maps", counties=Path("in/counties.gpkg"), pools=Path("in/pools.csv"),
                            setting=lambda section, key, default=None: default)
    maps = [LandUseMap("2020", (Path("in/lu2020.tif"),), 2020), LandUseMap("2030 eco", (Path("in/lu2030_eco.tif"),), 2030, True),
            LandUseMap("2000", (Path("in/lu2000.tif"),), 2000)]
    draw_changes(SimpleNamespace(changes={("2020", "2030 eco"): change}), tmp_path, polygons=polygons, id_field="name", study=study, maps=maps)
    footer = " ".join(next(t for t in texts if "CRS:" in t).split())  # as one line (the sheet wraps it)
    assert footer.startswith("Three maps") and "lu2020.tif" in footer and "lu2030_eco.tif" in footer and "lu2000.tif" not in footer
    assert "boundaries counties.gpkg" in footer and "carbon pools pools.csv" in footer and "in/" not in footer
    assert (tmp_path / "changes" / "2020_to_2030_eco" / "carbon_change_by_county.png").exists()
