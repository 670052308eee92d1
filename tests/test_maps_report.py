"""Maps drawn headless and the HTML report, opened in a real headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import shutil
import subprocess
import warnings
from html.parser import HTMLParser

import geopandas as gpd
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import shapely
from carbonscape import fonts
from carbonscape.errors import InputError
from carbonscape.maps import (
    HALO,
    draw_maps,
    label_counties,
    legend_labels,
    nice_scale_length,
    place_county_texts,
    sheet_for,
    tonnes_scale,
)
from carbonscape.report import write_report
from carbonscape.zoning import zone_groups, zone_ratios
from conftest import DEMAND_ZONING


def _voronoi_cells(n: int, size: float, rng: np.random.Generator) -> list:
    """``n`` irregular counties tiling a square of ``size`` metres (a Voronoi diagram)."""
    frame = shapely.box(0, -size, size, 0)
    points = shapely.multipoints(np.column_stack([rng.uniform(0, size, n), rng.uniform(-size, 0, n)]))
    cells = shapely.voronoi_polygons(points, extend_to=frame)
    return [cell.intersection(frame) for cell in shapely.get_parts(cells)]


def fake_run(folder, *, n_side: int = 0, n: int = 0, layout: str = "grid", chinese: bool = True, seed: int = 0,
             supply_range: tuple[float, float] = (1e6, 1e8), equal_supply: float | None = None, infinite: int = 0, missing: int = 0,
             class_names: tuple[str, str] = ("cropland", "forest"), overview: bool = False):
    """A run folder with the tables, counties.gpkg and run.json of a study: an n_side × n_side grid
    of square counties, or n Voronoi counties (layout="voronoi"). Zones are the paper's scheme on
    7 natural-break classes of the ratio, as run_study writes them; ``infinite`` counties have no
    supply and ``missing`` ones no ratio."""
    rng = np.random.default_rng(seed)
    size = 10_000.0
    if layout == "voronoi":
        geoms = _voronoi_cells(n, size * 50, rng)
    else:
        geoms = [shapely.box(j * size, -(i + 1) * size, (j + 1) * size, -i * size) for i in range(n_side) for j in range(n_side)]
    n = len(geoms)
    names = [(f"县{k:04d}" if chinese else f"C{k:04d}") for k in range(n)]
    supply = np.full(n, equal_supply) if equal_supply is not None else rng.uniform(*supply_range, n)
    demand = rng.uniform(100, 10_000, n)
    supply[:infinite] = 0.0
    demand[infinite:infinite + missing] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = demand / (supply / 100)
    finite = np.isfinite(ratio)
    if np.unique(ratio[finite]).size >= 7:
        zones, zoning = zone_ratios(pd.Series(ratio, index=names), k=7, scheme="paper")
    else:  # too few counties for 7 natural breaks: 7 equal manual classes around them
        lo, hi = (np.nanmin(ratio[finite]), np.nanmax(ratio[finite])) if finite.any() else (1.0, 1.0)
        zones, zoning = zone_ratios(pd.Series(ratio, index=names), k=7, method="manual", breaks=np.linspace(lo * 0.9, hi * 1.1 + 1e-9, 8), scheme="paper")
    gdf = gpd.GeoDataFrame({
        "county": names, "name_en": [f"County {k}" for k in range(n)], "supply_t": supply, "demand_demand_t_per_km2": demand,
        "ratio": ratio, "ratio_infinite": np.isinf(ratio), "class": zones["class"].to_numpy(), "zone": zones["zone"].to_numpy(),
        "zone_en": zones["zone_en"].to_numpy(), "zone_key": zones["zone_key"].to_numpy(),
    }, geometry=geoms, crs="EPSG:32648")
    folder.mkdir(parents=True, exist_ok=True)
    gdf.to_file(folder / "counties.gpkg", layer="counties")
    total = supply.sum()
    pd.DataFrame({"county": names, "supply_t": supply, "share_pct": 100 * supply / total, "pixels": 100, "area_km2": 100.0}).to_csv(folder / "supply_by_county.csv", index=False)
    pd.DataFrame({"lucode": [1, 2], "name": list(class_names), "supply_t": [total * 0.3, total * 0.7], "share_pct": [30.0, 70.0], "pixels": [10, 20], "area_ha": [1.0, 2.0]}).to_csv(folder / "supply_by_class.csv", index=False)
    pairs = pd.DataFrame({"county": np.repeat(names, 2), "lucode": np.tile([1, 2], n), "pixels": 50, "supply_t": np.column_stack([supply * 0.3, supply * 0.7]).ravel()})
    pairs.to_csv(folder / "supply_by_county_class.csv", index=False)
    pd.DataFrame({"county": names, "population": 1000, "area_km2": 100.0, "density_per_km2": 10.0, "demand_t_per_km2": demand, "share_pct": 100 * demand / np.nansum(demand)}).to_csv(folder / "demand_by_county.csv", index=False)
    pd.DataFrame({"county": names, "supply_t": supply, "supply_t_per_km2": supply / 100, "demand_t_per_km2": demand, "ratio": ratio, "ratio_infinite": np.isinf(ratio),
                  "class": zones["class"].to_numpy(), "zone": zones["zone"].to_numpy(), "zone_en": zones["zone_en"].to_numpy()}).to_csv(folder / "ratio_zones.csv", index=False)
    (folder / "run.json").write_text(json.dumps({
        "carbonscape": "0.1.0", "started": "2026-01-01T00:00:00+00:00", "study": {"name": "测试 study <b>", "per_capita_t": 3.9},
        "totals": {"supply_t": float(total), "sum_of_county_densities_t_per_km2": float(np.nansum(demand)), "regional_density_t_per_km2": 1.0, "total_population": 1000.0 * n},
        "zoning": {"method": zoning["method"], "k": 7, "edges": [float(e) for e in zoning["edges"]], "gvf": 0.9, "scheme": "paper"},
        "inputs": [{"role": "landuse", "path": "landuse.tif", "sha256": "ab" * 32, "bytes": 10}],
        "versions": {"carbonscape": "0.1.0"}, "timings_s": {"supply": 1.0}, "where": {"scheduler": "threads"},
    }, ensure_ascii=False), encoding="utf-8")
    if overview:
        import rasterio
        from rasterio.transform import from_origin

        left, bottom, right, top = gdf.total_bounds
        shape = (200, 200)
        carbon = rng.uniform(0, 300, shape).astype("float32")
        carbon[:20, :20] = np.nan
        profile = dict(driver="GTiff", width=shape[1], height=shape[0], count=1, dtype="float32", crs="EPSG:32648", nodata=np.nan,
                       transform=from_origin(left, top, (right - left) / shape[1], (top - bottom) / shape[0]))
        with rasterio.open(folder / "carbon_overview.tif", "w", **profile) as dst:
            dst.write(carbon, 1)
    return folder


def test_legend_labels_and_scale_length():
    assert legend_labels([0, 1.5e6, 3e6], scale=1e6) == ["0.00 – 1.50", "1.50 – 3.00"]
    assert legend_labels([100, 2500, 12000]) == ["100 – 2,500", "2,500 – 12,000"]
    assert nice_scale_length(230_000) == 20_000 and nice_scale_length(260_000) == 50_000 and nice_scale_length(9_000) == 1_000


def test_legend_bounds_that_differ_print_differently():
    labels = legend_labels([0.00049, 0.000512, 0.00053, 0.0007])
    bounds = [part for label in labels for part in label.split(" – ")]
    assert len(bounds) == 6 and len({bounds[0], bounds[1], bounds[3], bounds[5]}) == 4, labels
    assert all(lo != hi for lo, hi in (label.split(" – ") for label in labels))
    assert legend_labels([12_345.0, 12_345.0]) == ["12,345"]  # one value: one class, no "a – a"
    assert legend_labels([3.0, 3.0, 7.0]) == ["3.00", "3.00 – 7.00"]  # natural breaks' [min, min, ...]


def test_tonnes_scale_follows_the_data():
    assert tonnes_scale(np.array([1_200.0, 16_500.0])) == (1e3, "10³ t C")
    assert tonnes_scale(np.array([2.5e6, 8.3e7, np.inf])) == (1e6, "10⁶ t C")
    assert tonnes_scale(np.array([5.0, 2_500.0, np.nan])) == (1.0, "t C")
    assert tonnes_scale(np.array([np.nan])) == (1.0, "t C")


def test_maps_of_a_small_study(tmp_path):
    run = fake_run(tmp_path / "run", n_side=7)
    written = draw_maps(run, formats=("png", "svg"))
    stems = {p.stem for p in written if p.suffix != ".csv"}
    assert stems == {"fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"}
    assert run / "maps" / "county_key.csv" in written
    image = matplotlib.image.imread(run / "maps" / "fig2_supply.png")
    assert image.shape[0] >= 900 and image.shape[1] >= 1200
    assert (run / "maps" / "fig5_zones.svg").read_text().count("<svg") == 1


def _maps_as_drawn(run, monkeypatch, formats=("png",)):
    """Draw the run's maps and return, per map, the figure's width and height and, per legend, its
    box in pixels, title, labels and colours (the figure as it is saved)."""
    from carbonscape import maps

    drawn: dict[str, dict] = {}

    def measure(fig, canvas, out, stem, formats):
        canvas.draw()
        renderer = canvas.get_renderer()
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        drawn[stem] = {
            "size": (fig.bbox.width, fig.bbox.height),
            "boxes": [legend.get_window_extent(renderer) for legend in legends],
            "titles": [legend.get_title().get_text() for legend in legends],
            "labels": [[t.get_text() for t in legend.get_texts()] for legend in legends],
            "colours": [[tuple(h.get_facecolor()) for h in legend.legend_handles] for legend in legends],
            "fig": fig,
        }
        return []

    monkeypatch.setattr(maps, "_save", measure)
    maps.draw_maps(run, formats=formats)
    return drawn


@pytest.mark.parametrize("n_side", [7, 55])
def test_every_legend_is_inside_its_map(tmp_path, monkeypatch, n_side):
    run = fake_run(tmp_path / "run", n_side=n_side, chinese=n_side < 10)
    drawn = _maps_as_drawn(run, monkeypatch)
    assert set(drawn) == {"fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"}
    for stem, sheet in drawn.items():
        width, height = sheet["size"]
        assert sheet["boxes"], stem
        for box in sheet["boxes"]:
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, (stem, box, width)
    assert len(drawn["fig2_supply"]["labels"][0]) == 5  # five classes, each "lo – hi"
    assert all(" – " in label for label in drawn["fig2_supply"]["labels"][0])
    gdf = gpd.read_file(run / "counties.gpkg")
    counts = gdf.groupby(["zone", "zone_en"]).size()
    expected = [f"{zh} {en} ({n:,})" if fonts.find_cjk_font() else f"{en} ({n:,})" for (zh, en), n in counts.items()]
    assert sorted(drawn["fig5_zones"]["labels"][0]) == sorted(expected)


def test_legend_titles_carry_units(tmp_path, monkeypatch):
    run = fake_run(tmp_path / "run", n_side=6)  # county supply 10⁶–10⁸ t
    drawn = _maps_as_drawn(run, monkeypatch)
    assert drawn["fig2_supply"]["titles"] == ["supply (10⁶ t C)"]
    assert drawn["fig3_demand"]["titles"] == ["demand (t CO₂/km²)"]
    assert drawn["fig4_ratio"]["titles"] == ["ratio class (demand / supply density)"]
    assert set(drawn["fig1_supply_by_class"]["titles"]) == {"supply (10⁶ t C)"}
    small = fake_run(tmp_path / "small", n_side=6, supply_range=(1_200, 16_500))
    drawn = _maps_as_drawn(small, monkeypatch)
    assert drawn["fig2_supply"]["titles"] == ["supply (10³ t C)"]
    top = float(drawn["fig2_supply"]["labels"][0][0].split(" – ")[1].replace(",", ""))
    assert 10 < top < 17  # 16,500 t read as 16.5 × 10³ t, not 0.0165 × 10⁶ t
    for sheet in drawn.values():
        assert not any("^" in text for text in [*sheet["titles"], *sum(sheet["labels"], [])])


def _reddish(rgba) -> bool:
    return rgba[0] > rgba[1] + 0.2


def _greenish(rgba) -> bool:
    return rgba[1] > rgba[0] + 0.2


def test_ratio_map_uses_the_study_classes_and_the_zones_colours(tmp_path, monkeypatch):
    run = fake_run(tmp_path / "run", n_side=8, infinite=2, missing=1)
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))["zoning"]
    drawn = _maps_as_drawn(run, monkeypatch)
    ratio_labels, ratio_colours = drawn["fig4_ratio"]["labels"][0], drawn["fig4_ratio"]["colours"][0]
    # The study's 7 classes, highest first, then infinite and missing values apart.
    assert ratio_labels == ["no supply (∞)", *reversed(legend_labels(info["edges"])), "no value"]
    assert len(set(ratio_colours)) == len(ratio_colours)
    assert _reddish(ratio_colours[1]) and _greenish(ratio_colours[-2])
    # Fig. 5: the scheme's order (highest ratio first) in the same green → red, so urban cores
    # are red in both maps.
    zone_labels, zone_colours = drawn["fig5_zones"]["labels"][0], drawn["fig5_zones"]["colours"][0]
    named = [label for label in zone_labels if not label.startswith("no zone")]
    order = ["optimization", "sink development", "coordinated", "low-carbon"]
    present = [word for word in order if any(word in label for label in named)]
    assert [next(w for w in order if w in label) for label in named] == present
    assert _reddish(zone_colours[0]) and _greenish(zone_colours[len(named) - 1])


def test_zone_order_follows_the_scheme(tmp_path):
    frame = pd.DataFrame({
        "county": list("abcdef"), "class": [1, 7, 3, 4, 2, 5],
        "zone": ["低碳保持区", "固碳优化区", "协调发展区", "碳汇发展区", "低碳保持区", "固碳优化区"],
        "zone_en": ["low", "opt", "coord", "sink", "low", "opt"],
    })
    assert [g.zone_en for g in zone_groups(frame)] == ["opt", "sink", "coord", "low"]
    assert [g.counties for g in zone_groups(frame)][0] == ("b", "f")


@pytest.mark.parametrize("kind", ["one county", "equal values"])
def test_one_value_is_one_class(tmp_path, monkeypatch, kind):
    run = fake_run(tmp_path / "run", n_side=1) if kind == "one county" else fake_run(tmp_path / "run", n_side=3, equal_supply=5e6)
    assert len([p for p in draw_maps(run) if p.suffix == ".png"]) == 5
    drawn = _maps_as_drawn(run, monkeypatch)
    assert set(drawn) == {"fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"}
    assert len(drawn["fig2_supply"]["labels"][0]) == 1 and " – " not in drawn["fig2_supply"]["labels"][0][0]
    if kind == "equal values":
        assert drawn["fig2_supply"]["labels"][0] == ["5.00"] and drawn["fig2_supply"]["titles"] == ["supply (10⁶ t C)"]


def _label_texts(ax):
    return [t for t in ax.texts if (t.get_gid() or "").startswith(("name:", "number:"))]


def _assert_every_county_named_or_keyed(gdf, texts, renderer, ax, *, key=None):
    """Each county is drawn once, by name or by number; names lie inside their county; no two
    texts overlap; each number is in the key with its county's name."""
    counties = gdf["county"].astype(str).tolist()
    shown = {}
    for text in texts:
        kind, county = text.get_gid().split(":", 1)
        assert county not in shown, county
        shown[county] = (kind, text)
    assert sorted(shown) == sorted(counties)
    boxes = [t.get_window_extent(renderer) for t in texts]
    order = np.argsort([b.x0 for b in boxes])
    for a_pos, i in enumerate(order):  # sweep along x: overlaps only with boxes starting before a's end
        a = boxes[i]
        for j in order[a_pos + 1:]:
            if boxes[j].x0 >= a.x1:
                break
            assert not a.overlaps(boxes[j]), (texts[i].get_text(), texts[j].get_text())
    geoms = dict(zip(counties, gdf.geometry))
    to_data = ax.transData.inverted()
    numbers = {}
    for county, (kind, text) in shown.items():
        assert text.get_path_effects() == HALO
        if kind == "name":
            assert text.get_text() == county
            box = text.get_window_extent(renderer)
            (x0, y0), (x1, y1) = to_data.transform([[box.x0, box.y0], [box.x1, box.y1]])
            assert geoms[county].contains(shapely.box(x0, y0, x1, y1)), county
        else:
            numbers[int(text.get_text())] = county
    if key is not None:
        assert dict(key) == numbers
    return numbers


def assert_every_panel_names_or_keys_every_county(fig, gdf, *, main_key: dict[int, str] | None = None) -> dict[int, str]:
    """Fig. 1 as rendered: on each of its map panels every county is drawn once, by its name inside
    it or by a number found in the sheet's key with that county's name; texts never overlap. The
    panels share one numbering, which keeps the numbers of Figs. 2–5 (``main_key``)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert panels and all(_label_texts(ax) for ax in panels), [ax.get_title() for ax in fig.axes]
    keyed = {t.get_gid(): t.get_text() for t in fig.texts if (t.get_gid() or "").startswith("key:")}
    shared = None
    for ax in panels:
        numbers = _assert_every_county_named_or_keyed(gdf, _label_texts(ax), renderer, ax)
        assert shared is None or numbers == shared, ax.get_title()
        shared = numbers
        assert keyed == {f"key:{n}": f"{n} {county}" for n, county in numbers.items()}, ax.get_title()
    width, height = fig.bbox.width, fig.bbox.height
    for text in fig.texts:  # the key and the titles inside the sheet
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= width + 1 and box.y0 >= 0 and box.y1 <= height + 1, text.get_text()
    for ax in panels:
        legend = ax.get_legend().get_window_extent(renderer)
        assert legend.x1 <= width and legend.y0 >= 0, ax.get_title()
    if main_key is not None:
        assert all(shared.get(n) == county for n, county in main_key.items()), "Fig. 1 renumbers counties of Figs. 2–5"
    return shared


def test_labels_have_a_halo_fit_their_county_and_never_overlap(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    run = fake_run(tmp_path / "run", n=120, layout="voronoi")
    gdf = gpd.read_file(run / "counties.gpkg")
    fig = Figure(figsize=(6, 5), dpi=150, layout="constrained")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    gdf.plot(ax=ax, color="#00441b")  # the darkest fill
    ax.set_axis_off()
    placement = label_counties(fig, ax, gdf)
    canvas.draw()
    texts = _label_texts(ax)  # dark names and numbers with the white halo
    numbers = _assert_every_county_named_or_keyed(gdf, texts, canvas.get_renderer(), ax, key=placement.key)
    named = len(gdf) - len(numbers)
    assert named >= 10 and numbers  # some names fit, the smallest counties get numbers
    assert sorted(numbers) == list(range(1, len(numbers) + 1))
    assert not any(t.crowded for t in placement.texts)


def test_numbers_run_in_reading_order_and_small_counties_get_them():
    # A big county with two tiny ones inside its bounding box: north first, then west to east.
    big = shapely.box(0, 0, 100_000, 100_000)
    tiny = [shapely.box(10_000, 80_000, 10_400, 80_400), shapely.box(60_000, 80_000, 60_400, 80_400), shapely.box(30_000, 20_000, 30_400, 20_400)]
    gdf = gpd.GeoDataFrame({"county": ["大县", "东北", "西北", "南"]}, geometry=[big.difference(shapely.union_all(tiny)), tiny[1], tiny[0], tiny[2]],
                           crs="EPSG:32648")
    placement = place_county_texts(gdf, sheet_for(gdf))
    assert [t.kind for t in placement.of("大县")] == ["name"]
    assert placement.key == [(1, "西北"), (2, "东北"), (3, "南")]


def test_three_thousand_counties_are_all_named_or_keyed(tmp_path, monkeypatch):
    run = fake_run(tmp_path / "big", n=3000, layout="voronoi", supply_range=(1_200, 16_500), infinite=3, overview=True)
    # As SVG too, so each sheet holds its texts as artists (the PNGs share one text layer: below).
    drawn = _maps_as_drawn(run, monkeypatch, formats=("png", "svg"))
    assert set(drawn) == {"fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones", "carbon_per_pixel"}
    gdf = gpd.read_file(run / "counties.gpkg")
    key = pd.read_csv(run / "maps" / "county_key.csv", dtype={"county": str})
    assert sorted(key["county"]) == sorted(gdf["county"]) and set(key["shown_as"]) <= {"name", "number"}
    for stem in ("fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"):
        fig = drawn[stem]["fig"]
        ax = fig.axes[0]
        texts = _label_texts(ax)
        numbers = _assert_every_county_named_or_keyed(gdf, texts, fig.canvas.get_renderer(), ax)
        assert numbers == dict(zip(key.loc[key["shown_as"] == "number", "number"].astype(int), key.loc[key["shown_as"] == "number", "county"]))
        keyed = {t.get_gid(): t.get_text() for t in fig.texts if (t.get_gid() or "").startswith("key:")}
        assert keyed == {f"key:{n}": f"{n} {county}" for n, county in numbers.items()}
        width, height = drawn[stem]["size"]  # the key beside the map, inside the sheet
        for text in fig.texts:
            box = text.get_window_extent(fig.canvas.get_renderer())
            assert box.x0 >= 0 and box.x1 <= width + 1 and box.y0 >= 0 and box.y1 <= height + 1, text.get_text()
    numbered = key.loc[key["shown_as"] == "number"]
    assert_every_panel_names_or_keys_every_county(drawn["fig1_supply_by_class"]["fig"], gdf,
                                                  main_key=dict(zip(numbered["number"].astype(int), numbered["county"])))
    for stem, sheet in drawn.items():
        width, height = sheet["size"]
        for box in sheet["boxes"]:
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, (stem, box)
    assert drawn["fig2_supply"]["titles"] == ["supply (10³ t C)"]
    assert "no supply (∞)" in drawn["fig4_ratio"]["labels"][0]


def test_thousands_of_counties_share_one_text_layer_drawn_as_each_sheet_would(tmp_path, monkeypatch):
    """Past LAYER_MIN_TEXTS the county names, numbers and key of Figs. 2–5 are rendered once and
    laid over each sheet's PNG: the PNGs are those the sheets draw with their own texts (a few
    pixels apart where a halo meets the scale bar), and every county is named or numbered."""
    from carbonscape import maps

    run = fake_run(tmp_path / "run", n=300, layout="voronoi")
    stems = ("fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones")
    monkeypatch.setattr(maps, "LAYER_MIN_TEXTS", 10**9)
    maps.draw_maps(run)
    direct = {stem: matplotlib.image.imread(run / "maps" / f"{stem}.png") for stem in stems}
    rendered = []
    render = maps.TextLayer._render
    monkeypatch.setattr(maps.TextLayer, "_render", lambda self, *a: rendered.append(a) or render(self, *a))
    monkeypatch.setattr(maps, "LAYER_MIN_TEXTS", 0)
    maps.draw_maps(run)
    assert len(rendered) == 2  # the labels and the key, once for the four sheets
    key = pd.read_csv(run / "maps" / "county_key.csv")
    assert len(key) == 300 and set(key["shown_as"]) == {"name", "number"}
    for stem in stems:
        layered = matplotlib.image.imread(run / "maps" / f"{stem}.png")
        assert layered.shape == direct[stem].shape, stem
        differ = (np.abs(layered - direct[stem]).max(axis=2) > 0.25).sum()
        assert differ <= 50, (stem, differ)


def test_fig1_of_a_nation_keeps_its_panels_small_and_says_where_counties_are_named(tmp_path, monkeypatch):
    """Past FIG1_MAX_TEXTS (counties × panels; a nation's 2,900 counties × 10 classes) Fig. 1's
    panels carry no per-county texts (they would have to be as large as Figs. 2–5) and the sheet
    says that Figs. 2–5 name or number every county; below it every panel is labelled (above)."""
    from carbonscape import maps

    run = fake_run(tmp_path / "run", n=120, layout="voronoi")
    monkeypatch.setattr(maps, "FIG1_MAX_TEXTS", 120 * 2 - 1)
    drawn = _maps_as_drawn(run, monkeypatch)
    fig = drawn["fig1_supply_by_class"]["fig"]
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert len(panels) == 2 and not any(_label_texts(ax) for ax in panels)
    note = [t.get_text() for t in fig.texts if t.get_gid() == "fig1:unlabelled"]
    assert note == ["120 counties, too many to label on each panel: they are named or numbered on Figs. 2–5 (key: county_key.csv)"]
    assert not [t for t in fig.texts if (t.get_gid() or "").startswith("key:")]
    assert _label_texts(drawn["fig2_supply"]["fig"].axes[0])  # Figs. 2–5 still name every county
    monkeypatch.setattr(maps, "FIG1_MAX_TEXTS", 120 * 2)
    drawn = _maps_as_drawn(run, monkeypatch)
    assert not [t for t in drawn["fig1_supply_by_class"]["fig"].texts if t.get_gid() == "fig1:unlabelled"]
    assert_every_panel_names_or_keys_every_county(drawn["fig1_supply_by_class"]["fig"], gpd.read_file(run / "counties.gpkg"))


def test_per_pixel_overview_map(tmp_path, monkeypatch):
    run = fake_run(tmp_path / "run", n_side=5, overview=True)
    written = draw_maps(run)
    assert run / "maps" / "carbon_per_pixel.png" in written
    image = matplotlib.image.imread(run / "maps" / "carbon_per_pixel.png")
    assert image.shape[0] >= 900 and image[..., :3].std() > 0.05
    drawn = _maps_as_drawn(run, monkeypatch)
    ax = drawn["carbon_per_pixel"]["fig"].axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert "N" in texts and any(t.endswith("km") for t in texts)  # north arrow and scale bar
    assert all(t.get_path_effects() for t in ax.texts)  # haloed on the dark pixels


@pytest.fixture
def system_fonts_hidden(monkeypatch):
    """matplotlib sees only its own fonts (DejaVu, STIX, Computer Modern), as on a server with no
    CJK font: every font of the system (fonts-wqy-microhei or Noto CJK where installed) is hidden."""
    from pathlib import Path

    import matplotlib
    from matplotlib import font_manager

    own = Path(matplotlib.get_data_path()).resolve()
    manager = font_manager.fontManager
    kept = [entry for entry in manager.ttflist if own in Path(str(entry.fname)).resolve().parents]
    assert kept and len(kept) < len(manager.ttflist) + 1
    monkeypatch.setattr(manager, "ttflist", kept)
    manager._findfont_cached.cache_clear()
    font_manager._get_font.cache_clear()
    # None of them draws Chinese (matplotlib's "Last Resort" only draws a placeholder box per block).
    assert not [entry.name for entry in kept if 0x4E54 in fonts._face(str(entry.fname), 0)[1] and not entry.name.startswith("Last Resort")]
    yield
    manager._findfont_cached.cache_clear()
    font_manager._get_font.cache_clear()


def _glyph_image(text: str, family, halo: bool = False) -> np.ndarray:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(0.5, 0.5), dpi=100)
    canvas = FigureCanvasAgg(fig)
    fig.text(0.5, 0.5, text, fontsize=20, family=family, ha="center", va="center", path_effects=HALO if halo else None)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., 0].copy()


def test_chinese_text_renders_with_the_systems_fonts_hidden(tmp_path, system_fonts_hidden, monkeypatch):
    from matplotlib.text import Text

    from carbonscape import maps

    # The control: with only matplotlib's own fonts, Chinese has no glyphs; two characters are
    # drawn as the same missing-glyph box.
    assert set(fonts.glyph_fonts("乔木林地", ["DejaVu Sans"]).values()) == {None}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert np.array_equal(_glyph_image("乔", ["DejaVu Sans"]), _glyph_image("县", ["DejaVu Sans"]))
    assert [w for w in caught if "missing from font" in str(w.message)]

    run = fake_run(tmp_path / "run", n_side=5, class_names=("耕地", "乔木林地"))
    figures = {}
    save = maps._save

    def keep(fig, canvas, out, stem, formats):
        figures[stem] = fig
        return save(fig, canvas, out, stem, formats)

    monkeypatch.setattr(maps, "_save", keep)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw_maps(run, formats=("png", "svg"))
    assert not [w for w in caught if "missing from font" in str(w.message) or "findfont" in str(w.message)]
    # Every character of every text on every map resolves to a font that has it, and each
    # Chinese one to the bundled Noto Sans CJK SC.
    chinese = set()
    for stem, fig in figures.items():
        texts = [t for t in fig.findobj(Text) if t.get_text().strip()]
        assert texts, stem
        drawn_here, plain = set(), set()
        for text in texts:
            resolved = fonts.glyph_fonts(text.get_text(), text.get_fontfamily())
            assert None not in resolved.values(), (stem, text.get_text(), resolved)
            for ch, family in resolved.items():
                if fonts.has_cjk(ch):
                    assert family == fonts.CJK_FAMILY, (stem, ch, family)
                    drawn_here.add(ch)
                    if not text.get_path_effects():
                        plain.add(ch)
        # In the drawn SVG, the Chinese characters are the bundled face's own glyphs: as many
        # distinct glyphs as distinct characters, none of them glyph 0 (the missing-glyph box),
        # and no placeholder from matplotlib's Last Resort font. (Haloed labels are drawn as
        # plain paths, without glyph ids: their pixels are checked below.)
        svg = (run / "maps" / f"{stem}.svg").read_text(encoding="utf-8")
        glyphs = set(re.findall(r'id="NotoSansCJKsc-Regular-([0-9a-f]+)"', svg))
        assert len(glyphs) >= len(plain) and "0" not in glyphs, stem
        assert "LastResort" not in svg and 'id="DejaVuSans-0"' not in svg, stem
        chinese |= drawn_here
    assert {"县", "乔", "耕", "固", "碳"} <= chinese  # county names, class names, zones
    # ... and the rendered pixels of two characters differ (boxes would be identical).
    assert not np.array_equal(_glyph_image("乔", fonts.FONT_FAMILIES), _glyph_image("县", fonts.FONT_FAMILIES))
    assert not np.array_equal(_glyph_image("乔", fonts.FONT_FAMILIES, halo=True), _glyph_image("县", fonts.FONT_FAMILIES, halo=True))


def test_the_bundled_cjk_font_is_an_open_licensed_package_file():
    from importlib.metadata import metadata

    path = fonts.cjk_font_path()
    assert path.is_file() and path.suffix == ".ttc" and path.stat().st_size > 10_000_000
    assert "OFL" in (metadata(fonts.FONT_PACKAGE).get("License-Expression") or "") and fonts.FONT_LICENCE == "SIL Open Font License 1.1"
    assert fonts.register_cjk_font() == fonts.CJK_FAMILY == "Noto Sans CJK SC"
    assert fonts.glyph_fonts("五华区") == {"五": fonts.CJK_FAMILY, "华": fonts.CJK_FAMILY, "区": fonts.CJK_FAMILY}


@pytest.mark.parametrize("damage", ["garbage", "no layer"])
def test_a_damaged_counties_file_is_bad_input(tmp_path, damage):
    run = fake_run(tmp_path / "run", n_side=2)
    if damage == "garbage":
        (run / "counties.gpkg").write_bytes(b"\x00not a geopackage" * 64)
    else:
        gdf = gpd.read_file(run / "counties.gpkg")
        (run / "counties.gpkg").unlink()
        gdf.to_file(run / "counties.gpkg", layer="other")
    with pytest.raises(InputError, match=r"counties\.gpkg .*carbonscape run") as caught:
        draw_maps(run)
    assert "DRIVER" not in str(caught.value)


def test_maps_of_an_earlier_draw_do_not_linger(tmp_path):
    run = fake_run(tmp_path / "run", n_side=3, overview=True)
    draw_maps(run)
    assert (run / "maps" / "carbon_per_pixel.png").exists()
    (run / "carbon_overview.tif").unlink()
    written = draw_maps(run, formats=("svg",))
    assert sorted(p.name for p in (run / "maps").iterdir()) == sorted(p.name for p in written)
    parser = _Collect()
    parser.feed(write_report(run).read_text(encoding="utf-8"))
    assert len(parser.images) == 5 and all(img["src"].startswith("data:image/svg+xml;base64,") for img in parser.images)


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tables, self.images, self.links = [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id"):
            self.tables.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs)
        for key in ("href", "src"):
            if attrs.get(key, "").startswith(("http:", "https:")):
                self.links.append(attrs[key])


def _decoded_images(parser: _Collect) -> list[np.ndarray]:
    images = []
    for img in parser.images:
        header, data = img["src"].split(",", 1)
        assert header == "data:image/png;base64"
        images.append(matplotlib.image.imread(io.BytesIO(base64.b64decode(data)), format="png"))
    return images


def _text_of(fragment: str) -> str:
    return re.sub(r"<[^>]+>", " ", fragment)


def test_report_is_self_contained(tmp_path):
    run = fake_run(tmp_path / "run", n_side=4)
    draw_maps(run)
    page = write_report(run)
    text = page.read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(text)
    assert {"supply-by-class", "supply-by-county", "demand-by-county", "ratio-zones", "inputs", "highest", "lowest"} <= set(parser.tables)
    assert len(parser.images) == 5 and all(img["src"].startswith("data:image/png;base64,") and img["class"] == "map" for img in parser.images)
    assert all(image.shape[0] >= 500 and image.shape[1] >= 1000 and image[..., :3].std() > 0.05 for image in _decoded_images(parser))
    assert not parser.links and "http://" not in text and "https://" not in text
    assert "测试 study &lt;b&gt;" in text  # escaped
    # The Chinese characters travel with the page (a subset of the bundled font), for browsers
    # on machines with no CJK font.
    assert re.search(r'@font-face\{font-family:"carbonscape CJK";src:url\("data:font/otf;base64,[A-Za-z0-9+/=]{1000,}"\)', text)
    # No folder of the machine that ran it: inputs by file name only.
    assert str(tmp_path) not in text and "/tmp/" not in text and "landuse.tif" in text


def test_the_report_is_light_enough_to_email(tmp_path):
    from PIL import Image

    run = fake_run(tmp_path / "run", n=400, layout="voronoi", chinese=False)
    draw_maps(run)
    page = write_report(run)
    text = page.read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(text)
    assert len(parser.images) == 5
    full = 0
    for img in parser.images:
        data = base64.b64decode(img["src"].split(",", 1)[1])
        stem = {"Functional zones": "fig5_zones", "Supply–demand ratio by county": "fig4_ratio", "Carbon supply by county": "fig2_supply",
                "Carbon demand by county": "fig3_demand", "Carbon supply by county for each land-use class": "fig1_supply_by_class"}[img["alt"]]
        original = run / "maps" / f"{stem}.png"
        full += original.stat().st_size
        with Image.open(io.BytesIO(data)) as image:
            # A screen's width, a palette, a fraction of the full file's bytes ...
            assert image.mode == "P" and 1000 <= image.width <= 1800, (stem, image.mode, image.size)
        assert len(data) < 0.6 * original.stat().st_size, stem
        # ... and a link to the full-resolution map beside the page.
        assert f'<a href="maps/{stem}.png">' in text and (page.parent / "maps" / f"{stem}.png").exists()
    assert page.stat().st_size < 0.6 * full


def test_report_opens_with_a_summary_for_planners(tmp_path):
    run = fake_run(tmp_path / "run", n_side=5, infinite=1)
    page = write_report(run).read_text(encoding="utf-8")
    body = page[page.index("<body>"):]
    assert body.index('<section id="summary">') < body.index("<h2>Maps</h2>") < body.index("<h2>Tables</h2>")
    summary = body[body.index('<section id="summary">'):body.index("</section>")]
    ratio = pd.read_csv(run / "ratio_zones.csv", dtype={"county": str})
    # Totals in words, rounded: 3 significant figures, never the CSV's full precision.
    totals = json.loads((run / "run.json").read_text(encoding="utf-8"))["totals"]
    words = _text_of(summary)
    for number in re.findall(r"\d[\d,]*\.?\d*", words):
        digits = number.replace(",", "").replace(".", "").lstrip("0")
        assert len(digits.rstrip("0")) <= 3, number
    assert f"{totals['supply_t'] / 1e9:.3g} billion t C" in words or f"{totals['supply_t'] / 1e6:.3g} million t C" in words
    # Each zone, highest ratio first, with what it means for planning and every one of its counties.
    groups = zone_groups(ratio)
    items = re.findall(r"<li .*?</li>", summary)
    assert len(items) == len(groups) >= 2
    for group, item in zip(groups, items):
        assert group.zone in item and f"{len(group.counties):,} counties" in item
        assert all(county in item for county in group.counties)
    meanings = [re.search(r'<div class="what">(.*?)</div>', item) for item in items]
    assert all(m and len(m.group(1)) > 60 for m in meanings) and len({m.group(1) for m in meanings}) == len(items)
    # The five highest and lowest finite ratios, in order.
    finite = ratio[np.isfinite(ratio["ratio"])].sort_values("ratio", ascending=False)
    for table_id, expected in (("highest", finite.head(5)), ("lowest", finite.tail(5).iloc[::-1])):
        table = summary[summary.index(f'id="{table_id}"'):]
        table = table[:table.index("</table>")]
        assert re.findall(r"<tr><td>([^<]+)</td>", table) == expected["county"].tolist()
    assert "1 county stores no carbon (infinite ratio)" in words
    # Long tables are collapsed: each sits in a closed <details>.
    for table_id in ("ratio-zones", "supply-by-county", "demand-by-county", "supply-by-class", "inputs"):
        opening = body.rindex("<details", 0, body.index(f'id="{table_id}"'))
        assert body.rindex("</details>", 0, body.index(f'id="{table_id}"')) < opening if "</details>" in body[:opening] else True
        assert "<details open" not in body


def test_a_large_zone_lists_every_county_behind_a_click(tmp_path):
    run = fake_run(tmp_path / "run", n_side=12, chinese=False)  # 144 counties
    page = write_report(run).read_text(encoding="utf-8")
    summary = page[page.index('<section id="summary">'):page.index("</section>")]
    ratio = pd.read_csv(run / "ratio_zones.csv", dtype={"county": str})
    big = max(zone_groups(ratio), key=lambda g: len(g.counties))
    assert len(big.counties) > 20
    item = next(i for i in re.findall(r"<li .*?</li>", summary) if big.zone in i)
    hidden = item[item.index("<details>"):item.index("</details>")]
    assert all(county in hidden for county in big.counties) and "more" not in item


def test_numbers_are_rounded_to_meaningful_digits():
    from carbonscape.report import amount, fmt

    assert fmt(2_351_010_252.11) == "2,350,000,000" and amount(2_351_010_252.11, "t C") == "2.35 billion t C"
    assert fmt(67_613.69566) == "67,600" and fmt(776.0517) == "776" and fmt(0.5599018) == "0.560" and fmt(0.00550659) == "0.00551"
    assert fmt(float("inf")) == "∞" and fmt(float("nan")) == "" and fmt(0) == "0" and fmt(-1234.5) == "-1,230"
    assert amount(86_400_247.2, "t CO₂") == "86.4 million t CO₂" and amount(3.911, "t") == "3.91 t"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


# In the page as Chromium lays it out in a 1280 × 900 window, once its fonts are ready: what
# comes first, where the summary lies, which <details> are open, whether the embedded CJK font
# serves a county name, and the size each map decoded to.
PROBE = """<script>
addEventListener('load', () => document.fonts.ready.then(() => {
  const summary = document.getElementById('summary');
  const box = summary.getBoundingClientRect();
  const hit = document.elementFromPoint(box.left + 20, box.top + 20);
  const first = [...document.body.children].find(e => e.tagName !== 'HEADER' && e.tagName !== 'SCRIPT');
  Object.assign(document.body.dataset, {
    first: first ? first.id : '',
    summaryTop: Math.round(box.top), summaryBottom: Math.round(box.bottom), viewport: innerHeight,
    summaryHit: String(summary.contains(hit)), summaryDisplay: getComputedStyle(summary).display,
    openDetails: document.querySelectorAll('details[open]').length, details: document.querySelectorAll('details').length,
    cjk: String(document.fonts.check('16px "carbonscape CJK"', '县')),
    cjkLoaded: [...document.fonts].filter(f => f.family.includes('carbonscape CJK') && f.status === 'loaded').length,
    decoded: [...document.images].map(i => i.complete ? i.naturalWidth + 'x' + i.naturalHeight : 'pending').join(' '),
  });
}));
</script>"""


def _open_in_chromium(page, tmp_path) -> str:
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    profile = tmp_path / "chromium-profile"
    profile.mkdir()
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}", "--window-size=1280,900",
         "--virtual-time-budget=20000", "--dump-dom", probe.as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _data(dom: str, name: str) -> str:
    found = re.search(rf'data-{name}="([^"]*)"', dom)
    assert found, f"the probe script did not record {name}"
    return found.group(1)


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (CI installs Debian's chromium)")
def test_report_opens_in_headless_chromium_with_its_summary_first(tmp_path):
    run = fake_run(tmp_path / "run", n_side=7)
    draw_maps(run)
    dom = _open_in_chromium(write_report(run), tmp_path)
    assert _data(dom, "first") == "summary"
    # The summary is on the first screen, whole, and nothing covers it.
    assert 0 <= int(_data(dom, "summary-top")) < int(_data(dom, "summary-bottom")) <= int(_data(dom, "viewport"))
    assert int(_data(dom, "viewport")) >= 700  # a laptop's screen (1280 × 900 window)
    assert _data(dom, "summary-hit") == "true" and _data(dom, "summary-display") != "none"
    # Long tables and provenance are collapsed until clicked.
    assert _data(dom, "open-details") == "0" and int(_data(dom, "details")) >= 6
    # Chinese names are drawn with the page's own font subset.
    assert _data(dom, "cjk") == "true" and int(_data(dom, "cjk-loaded")) >= 1
    sizes = _data(dom, "decoded").split()
    assert len(sizes) == 5 and all(re.fullmatch(r"\d{4}x\d{3,4}", size) for size in sizes), sizes
    for table_id in ("supply-by-class", "supply-by-county", "demand-by-county", "ratio-zones", "highest", "lowest"):
        assert f'id="{table_id}"' in dom
    assert dom.count('class="map"') == 5 and "县0000" in dom


def test_drawers_take_the_result_not_the_disk(tmp_path):
    from carbonscape import read_outputs

    run = fake_run(tmp_path / "run", n_side=4, class_names=("耕地", "乔木林地"))
    result = read_outputs(run)
    assert result.polygons is not None and len(result.polygons) == 16 and result.ratio_zones.index.name == "county"
    assert result.zoning["edges"] and result.totals["supply_t"] > 0
    for path in list(run.iterdir()):  # nothing of the folder is read again
        path.unlink()
    run.rmdir()
    elsewhere = tmp_path / "elsewhere"
    written = draw_maps(result, out=elsewhere, formats=("svg",))
    assert {p.name for p in written} == {"fig1_supply_by_class.svg", "fig2_supply.svg", "fig3_demand.svg", "fig4_ratio.svg", "fig5_zones.svg",
                                         "county_key.csv"}
    page = write_report(result, out=elsewhere).read_text(encoding="utf-8")
    assert page.count('class="map"') == 5 and "乔木林地" in page and not run.exists()


def test_a_folder_without_polygons_says_which_stage_to_run(tmp_path):
    from carbonscape import read_outputs

    run = fake_run(tmp_path / "run", n_side=2)
    for name in ("counties.gpkg", "run.json", "ratio_zones.csv"):
        (run / name).unlink()
    result = read_outputs(run)
    with pytest.raises(InputError, match=r"no counties\.gpkg.*carbonscape zoning"):
        draw_maps(result)
    with pytest.raises(InputError, match=r"no run\.json.*carbonscape zoning"):
        write_report(result)
    with pytest.raises(InputError, match="holds no carbonscape outputs"):
        read_outputs(tmp_path)


def test_every_county_of_the_demo_is_named_or_keyed(tmp_path):
    from carbonscape.demo.generate import demo_paths
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from carbonscape.maps import MapInputs, Placement, _single_sheet, draw_county_texts

    gdf = gpd.read_file(demo_paths()["counties"])  # the 49 real Central Yunnan counties
    sheet = sheet_for(gdf)
    placement = place_county_texts(gdf, sheet)
    assert isinstance(placement, Placement) and not any(t.crowded for t in placement.texts)
    page = _single_sheet(MapInputs(counties=gdf, study="demo", year=2020), sheet, placement, "test")
    gdf.plot(ax=page.ax)
    page.ax.set_xlim(*sheet.xlim)
    page.ax.set_ylim(*sheet.ylim)
    page.ax.set_aspect("auto")
    draw_county_texts(page.ax, placement)
    assert isinstance(page.canvas, FigureCanvasAgg)
    page.canvas.draw()
    numbers = _assert_every_county_named_or_keyed(gdf, _label_texts(page.ax), page.canvas.get_renderer(), page.ax, key=placement.key)
    # The small central districts (Kunming's core, the highest ratios) are numbered, not dropped.
    smallest = gdf.assign(area=gdf.area).nsmallest(5, "area")["county"]
    shown = {t.county: t.kind for t in placement.texts}
    assert all(shown[c] in ("name", "number") for c in smallest) and numbers
    keyed = {t.get_gid(): t.get_text() for t in page.fig.texts if (t.get_gid() or "").startswith("key:")}
    assert keyed == {f"key:{n}": f"{n} {county}" for n, county in numbers.items()}


def test_each_map_carries_study_year_sources_and_crs(tmp_path, monkeypatch):
    run = fake_run(tmp_path / "run", n_side=4)
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    info["study"].update(year=2020, source="land use: ESA WorldCover; boundaries: county map")
    (run / "run.json").write_text(json.dumps(info, ensure_ascii=False), encoding="utf-8")
    drawn = _maps_as_drawn(run, monkeypatch)
    for stem, sheet in drawn.items():
        text = " ".join(t.get_text() for t in sheet["fig"].findobj(matplotlib.text.Text)).replace("\n", " ")
        for part in ("测试 study <b>", "2020", "data: land use: ESA WorldCover; boundaries: county map", "CRS: WGS 84 / UTM zone 48N (EPSG:32648)"):
            assert part in text, (stem, part)
    # Without a source text, the inputs are credited by file name, never by their folders.
    del info["study"]["source"]
    info["inputs"] = [{"role": "landuse", "path": str(tmp_path / "deep" / "lu.tif")}, {"role": "counties", "path": "/x/y/c.gpkg"}]
    from carbonscape.maps import sources_of

    assert sources_of(info) == ("land use lu.tif", "boundaries c.gpkg")


def test_the_study_file_takes_a_source_for_the_maps(tmp_path):
    from carbonscape.study import read_study

    (tmp_path / "study.toml").write_text('[study]\nname = "x"\nsource = "land use: ESA WorldCover 2020"\n', encoding="utf-8")
    study, _ = read_study(tmp_path / "study.toml")
    assert study is not None and study.setting("study", "source") == "land use: ESA WorldCover 2020"


@pytest.mark.parametrize("shape", ["wide", "tall"])
def test_the_map_fills_its_frame(tmp_path, monkeypatch, shape):
    from shapely.affinity import scale

    run = fake_run(tmp_path / "run", n_side=6)
    gdf = gpd.read_file(run / "counties.gpkg")
    factor = (2.0, 1.0) if shape == "wide" else (1.0, 1.8)
    gdf["geometry"] = [scale(g, xfact=factor[0], yfact=factor[1], origin=(0, 0)) for g in gdf.geometry]
    gdf.to_file(run / "counties.gpkg", layer="counties")
    drawn = _maps_as_drawn(run, monkeypatch)
    for stem in ("fig2_supply", "fig5_zones"):
        fig = drawn[stem]["fig"]
        ax = fig.axes[0]
        renderer = fig.canvas.get_renderer()
        frame = ax.get_window_extent(renderer)
        left, bottom, right, top = gdf.total_bounds
        (x0, y0), (x1, y1) = ax.transData.transform([[left, bottom], [right, top]])
        # The region spans its frame (3 % margins), at its true aspect: no empty band beside it.
        assert (x1 - x0) / frame.width > 0.9 and (y1 - y0) / frame.height > 0.9, (stem, shape)
        assert (x1 - x0) / (y1 - y0) == pytest.approx((right - left) / (top - bottom), rel=0.01)
        # The frame holds most of the sheet beside the legend: no wide margin around the map.
        legend = fig.legends[0].get_window_extent(renderer)
        assert frame.x0 < 0.05 * fig.bbox.width and legend.x0 - frame.x1 < 0.05 * fig.bbox.width


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (CI installs Debian's chromium)")
def test_the_second_half_maps_open_in_headless_chromium_in_their_sections(tmp_path):
    from carbonscape.statmaps import draw_matching, draw_zone_stability

    run = fake_run(tmp_path / "run", n_side=5)
    draw_maps(run)
    counties = gpd.read_file(run / "counties.gpkg")
    units = counties.set_index(counties["county"].astype(str))
    matching = pd.DataFrame({"quadrant": ["HS-LD", "LS-HD", "HS-HD", "LS-LD", "HS-HD"] * 5, "balance": np.linspace(-5, 5, 25)},
                            index=units.index)
    draw_matching(units, matching, run / "maps", credit="test")
    stability = pd.DataFrame({"p_zone_a": np.linspace(0, 1, 25)}, index=units.index)
    draw_zone_stability(units, stability, pd.Series("a", index=units.index), run / "maps", credit="test")
    dom = _open_in_chromium(write_report(run), tmp_path)
    sizes = _data(dom, "decoded").split()
    assert len(sizes) == 8 and "pending" not in sizes, sizes  # Figs 1–5, quadrants, balance, zone stability
    assert all(int(size.split("x")[0]) <= 1200 for size in sizes[5:]), sizes
    assert '<section id="matching-maps">' in dom and '<section id="uncertainty-maps">' in dom
    assert 'id="spatial-maps"' not in dom and 'id="cells-maps"' not in dom  # shown only when drawn
    for link in ("maps/matching_quadrants.png", "maps/matching_balance.png", "maps/zone_stability.png"):
        assert f'<a href="{link}">' in dom


REDRAW_STUDY = """
[study]
name = "Redrawn"
year = 2020

[landuse.maps]
"2020" = ["region/landuse.tif"]
"2030" = { rasters = ["lu2030.tif"], year = 2030, scenario = true }

[counties]
path = "region/counties.gpkg"
id_field = "county"

[units]
grid = 600

[pools]
path = "pools.csv"
""" + DEMAND_ZONING + """
[statistics]
permutations = 99
seed = 3

[uncertainty]
draws = 100
seed = 8

[outputs]
maps = true
report = true
"""


def test_the_maps_command_redraws_every_map_the_run_drew(small_study):
    """`carbonscape maps DIR` draws again every map `run` drew, from the folder's tables: Figs. 1–5,
    the matching, LISA, hot-spot and zone-stability maps, the cell maps and the land-use change
    figures, each pixel for pixel as the run drew it; a map the folder gives no table for is not
    made up, and the report is written again with them."""
    import rasterio

    from conftest import CARBONSCAPE

    made = small_study("redraw", REDRAW_STUDY, shape=(400, 380), n_counties=12, seed=5)
    base = made.base
    with rasterio.open(made.region.landuse) as src:
        profile, lu = src.profile, src.read(1)
    lu[(lu == 1) & (np.arange(lu.shape[0])[:, None] % 3 == 0)] = 2  # cropland → forest
    with rasterio.open(base / "lu2030.tif", "w", **profile) as dst:
        dst.write(lu, 1)
    pools = pd.read_csv(made.region.pools)
    for pool in ("above", "below", "soil", "dead"):
        pools[f"c_{pool}_sd"] = pools[f"c_{pool}"] * 0.1
    pools.to_csv(base / "pools.csv", index=False)
    out = base / "results"
    done = subprocess.run([str(CARBONSCAPE), "run", str(base / "study.toml"), "--out", str(out), "--no-progress"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    drawn = {p.relative_to(out): matplotlib.image.imread(p) for p in out.rglob("*.png")}
    names = {p.as_posix() for p in drawn}
    assert {"maps/fig2_supply.png", "maps/lisa_clusters.png", "maps/hotspots.png", "maps/matching_balance.png",
            "maps/zone_stability.png", "cells/maps/cells_ratio_zones.png", "cells/maps/cells_lisa_clusters.png",
            "changes/2020_to_2030/transitions_sankey.png", "changes/2020_to_2030/carbon_change_by_county.png"} <= names, sorted(names)
    for path in drawn:
        (out / path).unlink()
    (out / "report.html").unlink()
    (out / "report.html").write_text("an older page", encoding="utf-8")
    again = subprocess.run([str(CARBONSCAPE), "maps", str(out)], capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    redrawn = {p.relative_to(out): matplotlib.image.imread(p) for p in out.rglob("*.png")}
    assert set(redrawn) == set(drawn)
    for path, pixels in drawn.items():
        assert redrawn[path].shape == pixels.shape, path
        assert np.array_equal(redrawn[path], pixels), (path, int((np.abs(redrawn[path] - pixels).max(axis=-1) > 0).sum()))
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "an older page" not in page and 'id="cells-maps"' in page and 'id="spatial-maps"' in page


def test_the_maps_renderer_draws_every_pixel_as_matplotlib_s_agg():
    """The sheets' renderer (remembered text metrics, glyph outlines read once, glyph bitmaps reused
    per sub-pixel phase) gives the very pixels of matplotlib's own Agg renderer: plain and haloed
    texts at many sub-pixel positions, Chinese names through the font fallback, a rotated text."""
    from carbonscape import maps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    def draw(canvas_class, *, fresh=True):
        if fresh:
            maps._METRICS.clear()
            maps._GLYPHS.clear()
        fonts.register_cjk_font()
        fig = Figure(figsize=(6, 4), dpi=maps.DPI)
        canvas = canvas_class(fig)
        rng = np.random.default_rng(4)
        for i, (x, y) in enumerate(rng.uniform(0.02, 0.95, (300, 2))):
            text = ["2,917", "T03-C118", "昆明市 Kunming", "41 五华区"][i % 4]
            fig.text(x, y, text, fontsize=[5.0, 6.0, 6.5][i % 3], fontfamily=maps._family(text),
                     path_effects=maps.HALO if i % 2 else None, ha=["left", "center"][i % 2], va=["top", "center"][i % 2])
        fig.text(0.5, 0.5, "rotated 30°", rotation=30, fontsize=9)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba()).copy()

    plain = draw(FigureCanvasAgg)
    assert (plain[..., :3] < 128).any()
    np.testing.assert_array_equal(draw(maps._Canvas), plain)
    np.testing.assert_array_equal(draw(maps._Canvas, fresh=False), plain)  # again, from what the first draw remembered
