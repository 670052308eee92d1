"""The maps mean what they say: each county is filled with its class's colour, the colours run the
way the legend says, legends list the classes in order, and every county's name is on it.

The figures are read as they are saved (``Figure.savefig`` is wrapped, nothing else of the drawing
code is touched): each filled county is found from its drawn outline, its face colour read, and
compared with the class the test computes itself, with jenkspy's natural breaks of the values or
the study's own classes. These tests know nothing of how maps.py draws.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import handbuilt
import jenkspy
import numpy as np
import pandas as pd
import pytest
import shapely
from carbonscape import draw_maps, run_study
from matplotlib.collections import PatchCollection, PathCollection
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.text import Annotation

STEMS = ("fig1_supply_by_class", "fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones")
ZONE_ORDER = ("optimization", "sink_development", "coordinated", "low_carbon")  # the paper's scheme, highest ratio first
ZONE_NAMES = {"optimization": ("固碳优化区", "optimization"), "sink_development": ("碳汇发展区", "sink development"),
              "coordinated": ("协调发展区", "coordinated"), "low_carbon": ("低碳保持区", "low-carbon")}
ZONE_KEY = {names[0]: key for key, names in ZONE_NAMES.items()}


@dataclass
class Sheet:
    fig: Figure
    stems: list[str] = field(default_factory=list)


def draw_and_capture(run_dir: Path, monkeypatch) -> dict[str, Figure]:
    """Draw a run's maps (PNG) and return each saved figure by map name."""
    saved: dict[str, Figure] = {}
    original = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        name = Path(str(fname)).name
        stem = next((s for s in STEMS if s in name), None)
        if stem is not None:
            saved[stem] = self
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    draw_maps(run_dir)
    return saved


def _rgba(colour) -> tuple[float, ...]:
    return tuple(round(float(v), 4) for v in to_rgba(colour))


def fills(ax, counties: gpd.GeoDataFrame) -> dict[str, tuple[float, ...]]:
    """Each county's face colour as drawn in ``ax``: every filled outline of the axes' patch
    collections is matched with the county that contains a point inside it."""
    found: dict[str, tuple[float, ...]] = {}
    for collection in ax.collections:
        if not isinstance(collection, (PatchCollection, PathCollection)):  # geopandas draws patches, the maps one path per county
            continue
        colours = collection.get_facecolor()
        transform = collection.get_transform() - ax.transData  # the paths' coordinates → data coordinates
        for i, path in enumerate(collection.get_paths()):
            rings = [ring for ring in transform.transform_path(path).to_polygons() if len(ring) >= 4]
            if not rings or len(colours) == 0:
                continue
            outline = max((shapely.Polygon(ring) for ring in rings), key=lambda p: p.area)
            point = outline.buffer(0).representative_point()
            hits = counties.index[counties.contains(point)]
            if len(hits) == 1:
                found[str(hits[0])] = _rgba(colours[i % len(colours)])
    return found


def legend_of(fig: Figure, ax) -> list[tuple[str, tuple[float, ...]]]:
    """(label, colour) of each legend entry, top to bottom: the axes' own legend, else the figure's."""
    legend = ax.get_legend() or (fig.legends[0] if fig.legends else None)
    assert legend is not None, "no legend"
    return [(text.get_text(), _rgba(handle.get_facecolor())) for text, handle in zip(legend.get_texts(), legend.legend_handles)]


def _numbers(label: str) -> list[float]:
    return [float(n.replace(",", "")) for n in re.findall(r"-?[\d,]*\.?\d+(?:e[-+]?\d+)?", label)]


def natural_classes(values: pd.Series, k: int) -> tuple[pd.Series, np.ndarray]:
    """jenkspy's breaks of the values (k, or fewer when fewer distinct values), class 1..k each."""
    k = min(k, values.nunique())
    edges = np.asarray(jenkspy.jenks_breaks(values.to_numpy(dtype=float), n_classes=k), dtype=float)
    classes = np.clip(np.searchsorted(edges[1:-1], values.to_numpy(), side="left") + 1, 1, k)
    return pd.Series(classes, index=values.index), edges


def luminance(colour: tuple[float, ...]) -> float:
    r, g, b = colour[:3]
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def redness(colour: tuple[float, ...]) -> float:
    return colour[0] - colour[1]


def check_classed_map(fig: Figure, ax, counties: gpd.GeoDataFrame, classes: pd.Series, edges: np.ndarray | None, *,
                      scale: float = 1.0, darker_is_higher: bool | None = None, redder_is_higher: bool = False) -> None:
    """Each county in its class's colour, the legend's entries highest class first, each entry's
    bounds the class's edges, and the colours running one way along the classes."""
    drawn = fills(ax, counties)
    assert sorted(drawn) == sorted(counties.index), f"counties without a fill: {sorted(set(counties.index) - set(drawn))}"
    entries = legend_of(fig, ax)
    k = int(len(edges) - 1) if edges is not None else int(classes.max())
    class_entries = [entry for entry in entries if _numbers(entry[0])][:k]
    assert len(class_entries) == k, entries
    colour_of_class = {k - i: colour for i, (_, colour) in enumerate(class_entries)}  # highest class first
    for county, klass in classes.items():
        assert drawn[county] == colour_of_class[int(klass)], (county, int(klass), drawn[county], colour_of_class)
    if edges is not None:
        for i, (label, _) in enumerate(class_entries):
            klass = k - i
            numbers = _numbers(label)
            decimals = max((len(n.split(".")[1]) if "." in n else 0) for n in re.findall(r"[\d,]*\.?\d+", label))
            tolerance = 0.51 * 10.0 ** -decimals
            assert numbers[0] == pytest.approx(edges[klass - 1] / scale, abs=tolerance), (label, edges)
            assert numbers[-1] == pytest.approx(edges[klass] / scale, abs=tolerance), (label, edges)
    ordered = [colour_of_class[c] for c in sorted(colour_of_class)]
    if darker_is_higher is not None:
        shades = [luminance(c) for c in ordered]
        assert shades == sorted(shades, reverse=darker_is_higher) and len(set(shades)) == len(shades), shades
    if redder_is_higher:
        reds = [redness(c) for c in ordered]
        assert reds == sorted(reds) and len(set(reds)) == len(reds), reds


def check_labels(ax, counties: gpd.GeoDataFrame, names: dict[str, set[str]], *, every: bool) -> None:
    """County names are drawn inside their own county (and, with ``every``, for every county)."""
    labelled = set()
    for text in ax.texts:
        if isinstance(text, Annotation) or text.get_transform() != ax.transData:
            continue  # the north arrow's "N" and other furniture placed in axes coordinates
        owners = [county for county, spellings in names.items() if text.get_text() in spellings]
        if not owners:
            continue
        x, y = text.get_position()
        inside = [county for county in owners if counties.loc[county].geometry.contains(shapely.Point(x, y))]
        assert inside, f"label {text.get_text()!r} at ({x:.0f}, {y:.0f}) lies outside its county"
        labelled.update(inside)
    if every:
        assert labelled == set(counties.index), f"no label for {sorted(set(counties.index) - labelled)}"
    else:
        assert labelled, "no county is labelled"


def axes_titled(fig: Figure, pattern: str):
    matches = [ax for ax in fig.axes if re.search(pattern, ax.get_title())]
    assert len(matches) == 1, [ax.get_title() for ax in fig.axes]
    return matches[0]


# -- the hand-built study: every class computed by the test ----------------------------------------


@pytest.fixture(scope="module")
def handbuilt_maps(tmp_path_factory):
    study = handbuilt.write_handbuilt(tmp_path_factory.mktemp("maps"))
    out = study.folder / "results"
    run_study(study.study, out=out, scheduler="threads", maps=False, report=False)
    with pytest.MonkeyPatch.context() as monkeypatch:
        figures = draw_and_capture(out, monkeypatch)
    counties = gpd.read_file(study.counties).set_index("county")
    return figures, counties, handbuilt.expected()


def test_supply_map_colours_each_county_by_its_natural_break_class(handbuilt_maps):
    figures, counties, want = handbuilt_maps
    fig = figures["fig2_supply"]
    classes, edges = natural_classes(want["supply_t"], 5)
    scale = 1e3 if want["supply_t"].max() >= 1e4 else 1.0  # the legend's unit: t or 10³ t
    check_classed_map(fig, fig.axes[0], counties, classes, edges, scale=scale, darker_is_higher=True)


def test_demand_map_colours_each_county_by_its_natural_break_class(handbuilt_maps):
    figures, counties, want = handbuilt_maps
    fig = figures["fig3_demand"]
    classes, edges = natural_classes(want["demand_t_per_km2"], 5)
    check_classed_map(fig, fig.axes[0], counties, classes, edges, darker_is_higher=True)


def test_ratio_map_colours_each_county_by_its_study_class_green_to_red(handbuilt_maps):
    figures, counties, want = handbuilt_maps
    fig = figures["fig4_ratio"]
    ax = fig.axes[0]
    finite = np.isfinite(want["ratio"])
    check_classed_map(fig, ax, counties.loc[finite], want["class"][finite], want.attrs["edges"], redder_is_higher=True)
    # The zero-supply county: its own colour, the legend's "no supply" entry, first.
    drawn = fills(ax, counties)
    entries = legend_of(fig, ax)
    assert "∞" in entries[0][0] or "no supply" in entries[0][0] or "infinite" in entries[0][0], entries
    assert drawn[handbuilt.ZERO_SUPPLY] == entries[0][1]
    assert entries[0][1] not in {drawn[c] for c in counties.index[finite]}


def test_zone_map_colours_each_county_by_its_zone_in_the_schemes_order(handbuilt_maps):
    figures, counties, want = handbuilt_maps
    fig = figures["fig5_zones"]
    ax = fig.axes[0]
    drawn = fills(ax, counties)
    assert sorted(drawn) == sorted(counties.index)
    entries = legend_of(fig, ax)
    present = [key for key in ZONE_ORDER if key in set(want["zone"].map(ZONE_KEY))]
    assert len(entries) == len(present), entries
    for (label, colour), key in zip(entries, present):
        assert any(name in label for name in ZONE_NAMES[key]), (label, key)
        members = want.index[want["zone"].map(ZONE_KEY) == key]
        assert f"({len(members)})" in label, label
        assert {drawn[c] for c in members} == {colour}, (key, label)
    reds = [redness(colour) for _, colour in entries]
    assert reds == sorted(reds, reverse=True), reds  # highest-ratio zone reddest


def test_class_sheet_colours_each_county_by_its_class_supply(handbuilt_maps):
    figures, counties, _ = handbuilt_maps
    fig = figures["fig1_supply_by_class"]
    codes = handbuilt.make_codes()
    # Every panel is in one unit (the issue: Fig. 1's panels share one), chosen by the largest value on the sheet.
    largest = max(float((codes[r, c] == code).sum() * density) for code, density in handbuilt.DENSITY.items()
                  for r, c in handbuilt.county_slices().values())
    for code, density in handbuilt.DENSITY.items():
        if density == 0:
            assert not [ax for ax in fig.axes if re.search(rf"\bclass {code}\b", ax.get_title())]  # no panel for a class storing nothing
            continue
        values = pd.Series({name: float((codes[r, c] == code).sum() * density) for name, (r, c) in handbuilt.county_slices().items()})
        ax = axes_titled(fig, rf"\bclass {code}\b")
        classes, edges = natural_classes(values, 5)
        scale = 1e6 if largest >= 1e6 else 1e3 if largest >= 1e4 else 1.0
        check_classed_map(fig, ax, counties, classes, edges, scale=scale, darker_is_higher=True)


def test_every_county_is_labelled_inside_itself_on_every_map(handbuilt_maps):
    figures, counties, _ = handbuilt_maps
    names = {county: {county} for county in counties.index}
    for stem in ("fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"):
        check_labels(figures[stem].axes[0], counties, names, every=True)


# -- README's demo: 49 real counties in the paper's classes ---------------------------------------


@pytest.fixture(scope="module")
def demo_maps(demo_run):
    with pytest.MonkeyPatch.context() as monkeypatch:
        figures = draw_and_capture(demo_run.out, monkeypatch)
    counties = gpd.read_file(demo_run.out / "counties.gpkg", layer="counties").set_index("county")
    zones = pd.read_csv(demo_run.out / "ratio_zones.csv").set_index("county")
    names = pd.read_csv(demo_run.out / "inputs" / "counties.csv").set_index("county")["name_en"]
    return figures, counties, zones, names


def test_demo_ratio_map_shows_the_papers_classes(demo_maps):
    figures, counties, zones, _ = demo_maps
    fig = figures["fig4_ratio"]
    from carbonscape import PAPER_RATIO_BREAKS

    check_classed_map(fig, fig.axes[0], counties, zones["class"], np.asarray(PAPER_RATIO_BREAKS), redder_is_higher=True)


def test_demo_supply_map_colours_follow_the_supply(demo_maps):
    figures, counties, zones, _ = demo_maps
    classes, edges = natural_classes(zones["supply_t"], 5)
    check_classed_map(figures["fig2_supply"], figures["fig2_supply"].axes[0], counties, classes, edges, scale=1e6, darker_is_higher=True)


def test_demo_zone_map_and_labels(demo_maps):
    figures, counties, zones, names = demo_maps
    fig = figures["fig5_zones"]
    drawn = fills(fig.axes[0], counties)
    entries = legend_of(fig, fig.axes[0])
    assert [next(key for key in ZONE_ORDER if any(n in label for n in ZONE_NAMES[key])) for label, _ in entries] == list(ZONE_ORDER)
    for (label, colour), key in zip(entries, ZONE_ORDER):
        members = zones.index[zones["zone"].map(ZONE_KEY) == key]
        assert f"({len(members)})" in label and {drawn[c] for c in members} == {colour}, label
    spellings = {county: {county, str(names.get(county, county))} for county in counties.index}
    for stem in ("fig2_supply", "fig4_ratio", "fig5_zones"):
        check_labels(figures[stem].axes[0], counties, spellings, every=False)


def test_demo_every_county_is_named_or_keyed_on_every_map_and_panel(demo_maps, demo_run):
    from test_maps_report import _assert_every_county_named_or_keyed, _label_texts, assert_every_panel_names_or_keys_every_county

    figures, counties, _, _ = demo_maps
    gdf = counties.reset_index()
    key = pd.read_csv(demo_run.out / "maps" / "county_key.csv", dtype={"county": str})
    numbered = key.loc[key["shown_as"] == "number"]
    main_key = dict(zip(numbered["number"].astype(int), numbered["county"]))
    assert len(main_key) >= 5  # the small central districts
    for stem in ("fig2_supply", "fig3_demand", "fig4_ratio", "fig5_zones"):
        fig = figures[stem]
        fig.canvas.draw()
        numbers = _assert_every_county_named_or_keyed(gdf, _label_texts(fig.axes[0]), fig.canvas.get_renderer(), fig.axes[0])
        assert numbers == main_key, stem
    panels = assert_every_panel_names_or_keys_every_county(figures["fig1_supply_by_class"], gdf, main_key=main_key)
    assert len(panels) > len(main_key)  # the panels are smaller: more counties go by number there


def test_the_demo_report_is_light_enough_to_email(demo_run):
    page = demo_run.out / "report.html"
    assert page.stat().st_size < 1_200_000  # was 2.2–13.6 MB with the full-resolution PNGs embedded
    text = page.read_text(encoding="utf-8")
    for stem in STEMS:
        assert f'<a href="maps/{stem}.png">' in text and (demo_run.out / "maps" / f"{stem}.png").exists(), stem
