"""Maps drawn headless and the HTML report, opened in a real headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser

import geopandas as gpd
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import shapely
from carbonscape import fonts
from carbonscape.maps import _Labeller, draw_maps, label_counties, legend_labels, nice_scale_length
from carbonscape.report import write_report


def fake_run(folder, *, n_side: int, chinese: bool = True, seed: int = 0):
    """A run folder with the tables and counties.gpkg of an n_side × n_side grid of counties."""
    rng = np.random.default_rng(seed)
    size = 10_000.0
    geoms, names = [], []
    for i in range(n_side):
        for j in range(n_side):
            geoms.append(shapely.box(j * size, -(i + 1) * size, (j + 1) * size, -i * size))
            names.append(f"县{i:02d}{j:02d}" if chinese else f"C{i:02d}{j:02d}")
    n = len(names)
    supply = rng.uniform(1e6, 1e8, n)
    demand = rng.uniform(100, 10_000, n)
    ratio = demand / (supply / 100)
    zones = np.array(["低碳保持区", "协调发展区", "碳汇发展区", "固碳优化区"])[np.minimum(3, (ratio / ratio.max() * 4).astype(int))]
    keys = {"低碳保持区": "low_carbon", "协调发展区": "coordinated", "碳汇发展区": "sink_development", "固碳优化区": "optimization"}
    gdf = gpd.GeoDataFrame({
        "county": names, "name_en": [f"County {k}" for k in range(n)], "supply_t": supply, "demand_demand_t_per_km2": demand,
        "ratio": ratio, "class": rng.integers(1, 8, n), "zone": zones, "zone_en": zones, "zone_key": [keys[z] for z in zones],
    }, geometry=geoms, crs="EPSG:32648")
    folder.mkdir(parents=True, exist_ok=True)
    gdf.to_file(folder / "counties.gpkg", layer="counties")
    pd.DataFrame({"county": names, "supply_t": supply, "share_pct": 100 * supply / supply.sum(), "pixels": 100, "area_km2": 100.0}).to_csv(folder / "supply_by_county.csv", index=False)
    pd.DataFrame({"lucode": [1, 2], "name": ["cropland", "forest"], "supply_t": [supply.sum() * 0.3, supply.sum() * 0.7], "share_pct": [30.0, 70.0], "pixels": [10, 20], "area_ha": [1.0, 2.0]}).to_csv(folder / "supply_by_class.csv", index=False)
    pairs = pd.DataFrame({"county": np.repeat(names, 2), "lucode": np.tile([1, 2], n), "pixels": 50, "supply_t": np.column_stack([supply * 0.3, supply * 0.7]).ravel()})
    pairs.to_csv(folder / "supply_by_county_class.csv", index=False)
    pd.DataFrame({"county": names, "population": 1000, "area_km2": 100.0, "density_per_km2": 10.0, "demand_t_per_km2": demand, "share_pct": 100 * demand / demand.sum()}).to_csv(folder / "demand_by_county.csv", index=False)
    pd.DataFrame({"county": names, "supply_t": supply, "supply_t_per_km2": supply / 100, "demand_t_per_km2": demand, "ratio": ratio, "ratio_infinite": False, "class": 1, "zone": zones, "zone_en": zones}).to_csv(folder / "ratio_zones.csv", index=False)
    (folder / "run.json").write_text(json.dumps({
        "carbonscape": "0.1.0", "started": "2026-01-01T00:00:00+00:00", "study": {"name": "测试 study <b>", "per_capita_t": 3.9},
        "totals": {"supply_t": float(supply.sum()), "sum_of_county_densities_t_per_km2": float(demand.sum()), "regional_density_t_per_km2": 1.0, "total_population": 1000.0 * n},
        "zoning": {"method": "jenks", "k": 7, "edges": [0.1, 0.2], "gvf": 0.9, "scheme": "paper"},
        "inputs": [{"role": "landuse", "path": "landuse.tif", "sha256": "ab" * 32, "bytes": 10}],
        "versions": {"carbonscape": "0.1.0"}, "timings_s": {"supply": 1.0}, "where": {"scheduler": "threads"},
    }, ensure_ascii=False), encoding="utf-8")
    return folder


def test_legend_labels_and_scale_length():
    assert legend_labels([0, 1.5e6, 3e6], scale=1e6) == ["0.00 – 1.50", "1.50 – 3.00"]
    assert legend_labels([100, 2500, 12000]) == ["100 – 2,500", "2,500 – 12,000"]
    assert nice_scale_length(230_000) == 20_000 and nice_scale_length(260_000) == 50_000 and nice_scale_length(9_000) == 1_000


def test_maps_of_a_small_study(tmp_path):
    run = fake_run(tmp_path / "run", n_side=7)
    written = draw_maps(run, formats=("png", "svg"))
    stems = {p.stem for p in written}
    assert stems == {"fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"}
    image = matplotlib.image.imread(run / "maps" / "fig2_supply.png")
    assert image.shape[0] >= 900 and image.shape[1] >= 1200
    assert (run / "maps" / "fig5_zones.svg").read_text().count("<svg") == 1


def _legend_boxes_by_map(run, monkeypatch):
    """Draw the run's maps and return, per map, the figure's width and height and each legend's box
    in pixels (the figure as it is saved)."""
    from carbonscape import maps

    boxes: dict[str, tuple] = {}

    def measure(fig, canvas, out, stem, formats):
        canvas.draw()
        renderer = canvas.get_renderer()
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
        boxes[stem] = (fig.bbox.width, fig.bbox.height, [legend.get_window_extent(renderer) for legend in legends],
                       [[t.get_text() for t in legend.get_texts()] for legend in legends])
        return []

    monkeypatch.setattr(maps, "_save", measure)
    maps.draw_maps(run)
    return boxes


@pytest.mark.parametrize("n_side", [7, 55])
def test_every_legend_is_inside_its_map(tmp_path, monkeypatch, n_side):
    run = fake_run(tmp_path / "run", n_side=n_side, chinese=n_side < 10)
    boxes = _legend_boxes_by_map(run, monkeypatch)
    assert set(boxes) == {"fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"}
    for stem, (width, height, legends, texts) in boxes.items():
        assert legends, stem
        for box in legends:
            assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, (stem, box, width)
    assert len(boxes["fig2_supply"][3][0]) == 5  # five classes, each "lo – hi"
    assert all(" – " in label for label in boxes["fig2_supply"][3][0])
    zones = gpd.read_file(run / "counties.gpkg")["zone"]
    assert sorted(boxes["fig5_zones"][3][0]) == sorted(f"{z} {z} ({n})" if fonts.find_cjk_font() else f"{z} ({n})" for z, n in zones.value_counts().items())


def test_three_thousand_counties_stay_legible(tmp_path):
    run = fake_run(tmp_path / "big", n_side=55, chinese=False)  # 3,025 counties
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    gdf = gpd.read_file(run / "counties.gpkg")
    fig = Figure(figsize=(9, 7), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    gdf.plot(ax=ax)
    drawn = label_counties(fig, ax, gdf, _Labeller(gdf))
    assert drawn == 0  # 3,025 cells of ~12 px: no label fits, none is drawn over another
    small = gdf.iloc[[i * 55 + j for i in range(7) for j in range(7)]].copy()  # a 7 × 7 block
    fig2 = Figure(figsize=(9, 7), dpi=150)
    FigureCanvasAgg(fig2)
    ax2 = fig2.add_subplot()
    small.plot(ax=ax2)
    assert label_counties(fig2, ax2, small, _Labeller(small)) == 49
    assert len(draw_maps(run)) == 5


def test_without_a_cjk_font_labels_are_romanized(tmp_path, monkeypatch):
    from carbonscape import maps

    monkeypatch.setattr(maps, "find_cjk_font", lambda: None)
    run = fake_run(tmp_path / "run", n_side=3)
    gdf = gpd.read_file(run / "counties.gpkg")
    with pytest.warns(UserWarning, match="no CJK font found.*fonts-wqy-microhei"):
        labeller = maps._Labeller(gdf)
    assert labeller.names[0] == "County 0"


def test_cjk_font_is_found_when_installed():
    if not any("wqy" in path.lower() or "noto" in path.lower() and "cjk" in path.lower() for path in __import__("matplotlib.font_manager", fromlist=["x"]).findSystemFonts()):
        pytest.skip("no CJK font installed here (CI installs fonts-wqy-microhei)")
    assert fonts.find_cjk_font() is not None


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


def test_report_is_self_contained(tmp_path):
    run = fake_run(tmp_path / "run", n_side=4)
    draw_maps(run)
    page = write_report(run)
    text = page.read_text(encoding="utf-8")
    parser = _Collect()
    parser.feed(text)
    assert {"supply-by-class", "supply-by-county", "demand-by-county", "ratio-zones", "inputs"} <= set(parser.tables)
    assert len(parser.images) == 5 and all(img["src"].startswith("data:image/png;base64,") and img["class"] == "map" for img in parser.images)
    assert not parser.links and "http://" not in text and "https://" not in text
    assert "测试 study &lt;b&gt;" in text  # escaped


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary (CI installs Debian's chromium)")
def test_report_opens_in_headless_chromium(tmp_path):
    run = fake_run(tmp_path / "run", n_side=4)
    draw_maps(run)
    page = write_report(run)
    done = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    for table_id in ("supply-by-class", "supply-by-county", "demand-by-county", "ratio-zones"):
        assert f'id="{table_id}"' in dom
    assert dom.count('class="map"') == 5 and "县0000" in dom
