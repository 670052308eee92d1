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
    _Labeller,
    draw_maps,
    label_counties,
    legend_labels,
    nice_scale_length,
    tonnes_scale,
)
from carbonscape.report import write_report
from carbonscape.zoning import zone_groups, zone_ratios


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
    stems = {p.stem for p in written}
    assert stems == {"fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"}
    image = matplotlib.image.imread(run / "maps" / "fig2_supply.png")
    assert image.shape[0] >= 900 and image.shape[1] >= 1200
    assert (run / "maps" / "fig5_zones.svg").read_text().count("<svg") == 1


def _maps_as_drawn(run, monkeypatch):
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
    maps.draw_maps(run)
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
    assert len(draw_maps(run)) == 5
    drawn = _maps_as_drawn(run, monkeypatch)
    assert set(drawn) == {"fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"}
    assert len(drawn["fig2_supply"]["labels"][0]) == 1 and " – " not in drawn["fig2_supply"]["labels"][0][0]
    if kind == "equal values":
        assert drawn["fig2_supply"]["labels"][0] == ["5.00"] and drawn["fig2_supply"]["titles"] == ["supply (10⁶ t C)"]


def _label_texts(ax):
    return [t for t in ax.texts if t.get_path_effects() == HALO and t.get_text() not in ("N",) and not t.get_text().endswith("km")]


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
    drawn = label_counties(fig, ax, gdf, _Labeller(gdf))
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = _label_texts(ax)  # dark names with the white halo
    assert 10 <= drawn == len(texts) < len(gdf)  # some fit, the smallest counties do not
    boxes = [t.get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):
        assert not any(a.overlaps(b) for b in boxes[i + 1:])
    geoms = dict(zip(gdf["county"], gdf.geometry))
    to_data = ax.transData.inverted()
    for text, box in zip(texts, boxes):
        (x0, y0), (x1, y1) = to_data.transform([[box.x0, box.y0], [box.x1, box.y1]])
        assert geoms[text.get_text()].contains(shapely.box(x0, y0, x1, y1)), text.get_text()


def test_three_thousand_counties_stay_legible(tmp_path):
    run = fake_run(tmp_path / "big", n_side=55, chinese=False)  # 3,025 counties
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    gdf = gpd.read_file(run / "counties.gpkg")
    fig = Figure(figsize=(9, 7), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    gdf.plot(ax=ax)
    assert label_counties(fig, ax, gdf, _Labeller(gdf)) == 0 and not _label_texts(ax)
    small = gdf.iloc[[i * 55 + j for i in range(7) for j in range(7)]].copy()  # a 7 × 7 block
    fig2 = Figure(figsize=(9, 7), dpi=150)
    FigureCanvasAgg(fig2)
    ax2 = fig2.add_subplot()
    small.plot(ax=ax2)
    assert label_counties(fig2, ax2, small, _Labeller(small)) == 49


def test_three_thousand_irregular_counties(tmp_path, monkeypatch):
    run = fake_run(tmp_path / "big", n=3000, layout="voronoi", supply_range=(1_200, 16_500), infinite=3, overview=True)
    drawn = _maps_as_drawn(run, monkeypatch)
    assert set(drawn) == {"fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones", "carbon_per_pixel"}
    for stem, sheet in drawn.items():
        width, height = sheet["size"]
        for box in sheet["boxes"]:
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, (stem, box)
        for ax in sheet["fig"].axes:
            assert not _label_texts(ax), stem  # no county names: a handful of 3,000 is noise
    assert drawn["fig2_supply"]["titles"] == ["supply (10³ t C)"]
    assert "no supply (∞)" in drawn["fig4_ratio"]["labels"][0]
    page = write_report(run).read_text(encoding="utf-8")
    zones = page[page.index("<h2>Zones</h2>"):page.index("<h2>Maps</h2>")]
    assert len(zones) < 4_000 and zones.count("… and ") >= 1
    assert re.search(r"\(2,\d{3} counties\)|\(\d{3} counties\)", zones)


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


def test_chinese_class_names_render_with_the_cjk_font(tmp_path):
    if fonts.find_cjk_font() is None:
        pytest.skip("no CJK font installed here (CI installs fonts-wqy-microhei)")
    run = fake_run(tmp_path / "run", n_side=3, class_names=("耕地", "乔木林地"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw_maps(run, formats=("png", "svg"))
    assert not [w for w in caught if "missing from font" in str(w.message)], [str(w.message) for w in caught]
    assert "乔木林地 (70.0%)" in (run / "maps" / "fig1_supply_by_class.svg").read_text(encoding="utf-8")
    # The control: outside draw_maps' font fallback, the same title does miss glyphs.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure()
    canvas = FigureCanvasAgg(fig)
    fig.suptitle("乔木林地", fontfamily="DejaVu Sans")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        canvas.draw()
    assert [w for w in caught if "missing from font" in str(w.message)]


def test_without_a_cjk_font_labels_are_romanized_and_one_warning_is_logged(tmp_path, monkeypatch, caplog):
    from carbonscape import maps

    monkeypatch.setattr(maps, "find_cjk_font", lambda: None)
    run = fake_run(tmp_path / "run", n_side=3, class_names=("耕地", "乔木林地"))
    gdf = gpd.read_file(run / "counties.gpkg")
    assert maps._Labeller(gdf).names[0] == "County 0"
    with caplog.at_level(logging.WARNING, logger="carbonscape"), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        draw_maps(run)
    messages = [r.getMessage() for r in caplog.records if "CJK" in r.getMessage()]
    assert len(messages) == 1 and "fonts-wqy-microhei" in messages[0]
    assert not [w for w in caught if "missing from font" in str(w.message)]  # one log line, not one per glyph


def test_cjk_font_is_found_when_installed():
    if not any("wqy" in path.lower() or "noto" in path.lower() and "cjk" in path.lower() for path in __import__("matplotlib.font_manager", fromlist=["x"]).findSystemFonts()):
        pytest.skip("no CJK font installed here (CI installs fonts-wqy-microhei)")
    assert fonts.find_cjk_font() is not None


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


def test_report_is_self_contained(tmp_path):
    run = fake_run(tmp_path / "run", n_side=4)
    draw_maps(run)
    page = write_report(run)
    text = page.read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(text)
    assert {"supply-by-class", "supply-by-county", "demand-by-county", "ratio-zones", "inputs"} <= set(parser.tables)
    assert len(parser.images) == 5 and all(img["src"].startswith("data:image/png;base64,") and img["class"] == "map" for img in parser.images)
    assert all(image.shape[0] >= 500 and image.shape[1] >= 1000 and image[..., :3].std() > 0.05 for image in _decoded_images(parser))
    assert not parser.links and "http://" not in text and "https://" not in text
    assert "测试 study &lt;b&gt;" in text  # escaped
    zones = text[text.index("<h2>Zones</h2>"):text.index("<h2>Maps</h2>")]
    positions = [zones.find(name) for name in ("固碳优化区", "碳汇发展区", "协调发展区", "低碳保持区") if name in zones]
    assert positions == sorted(positions) and len(positions) >= 2  # the scheme's order, highest ratio first


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (CI installs Debian's chromium)")
def test_report_opens_in_headless_chromium(tmp_path):
    run = fake_run(tmp_path / "run", n_side=4)
    draw_maps(run)
    page = write_report(run)
    # A test copy of the page records, once loaded, the size each image decoded to in Chromium.
    probe = tmp_path / "probe.html"
    script = ("<script>addEventListener('load', () => { document.body.dataset.decoded = "
              "[...document.images].map(i => i.complete ? i.naturalWidth + 'x' + i.naturalHeight : 'pending').join(' '); });</script>")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", script + "</body>"), encoding="utf-8")
    for target in (page, probe):
        done = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", target.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        dom = done.stdout
        for table_id in ("supply-by-class", "supply-by-county", "demand-by-county", "ratio-zones"):
            assert f'id="{table_id}"' in dom
        assert dom.count('class="map"') == 5 and "县0000" in dom
    decoded = re.search(r'data-decoded="([^"]*)"', dom)
    assert decoded, "the probe script did not run"
    sizes = decoded.group(1).split()
    assert len(sizes) == 5 and all(re.fullmatch(r"\d{4}x\d{3,4}", size) for size in sizes), sizes
