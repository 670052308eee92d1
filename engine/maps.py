"""Maps of a run (the paper's Figs. 1–5 and the carbon-per-pixel map), drawn headless.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, not pyplot,
so drawing touches no global state and never picks a GUI backend.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from carbonscape.breaks import classify, natural_breaks
from carbonscape.errors import InputError
from carbonscape.fonts import INSTALL_HINT, find_cjk_font, has_cjk
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

log = logging.getLogger(__name__)

MAP_FILES = {
    "fig1_supply_by_class": "Carbon supply by county for each land-use class",
    "fig2_supply": "Carbon supply by county",
    "fig3_demand": "Carbon demand by county",
    "fig4_ratio": "Supply–demand ratio by county",
    "fig5_zones": "Functional zones",
    "carbon_per_pixel": "Carbon per pixel",
}
ZONE_COLOURS = {"optimization": "#1a9641", "sink_development": "#a6d96a", "coordinated": "#fdae61", "low_carbon": "#d7191c"}
DPI = 150


def legend_labels(edges: Sequence[float], *, scale: float = 1.0, digits: int | None = None) -> list[str]:
    """``"a – b"`` labels for classes between consecutive edges, values divided by ``scale``."""
    values = np.asarray(edges, dtype=float) / scale
    if digits is None:
        span = np.nanmax(np.abs(values)) if len(values) else 1.0
        digits = 0 if span >= 1000 else 1 if span >= 10 else 2 if span >= 1 else 4
    return [f"{lo:,.{digits}f} – {hi:,.{digits}f}" for lo, hi in zip(values[:-1], values[1:])]


def nice_scale_length(width: float) -> float:
    """A round length (1, 2 or 5 × 10^n) of about a fifth of ``width``."""
    target = width / 5
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


class _Labeller:
    """County names where they fit, in a CJK font when one is installed."""

    def __init__(self, gdf: gpd.GeoDataFrame) -> None:
        self.font = find_cjk_font()
        names = gdf["county"].astype(str)
        if self.font is None and names.map(has_cjk).any():
            warnings.warn(f"no CJK font found, so Chinese names cannot be drawn; {INSTALL_HINT}. Labels are romanized.", stacklevel=3)
            fallback = gdf["name_en"].astype(str) if "name_en" in gdf.columns else names.map(lambda s: s.encode("ascii", "replace").decode())
            names = fallback
        self.names = names.to_numpy()

    def text_kwargs(self) -> dict[str, str]:
        return {"fontfamily": self.font} if self.font else {}


def _axes_pixels_per_unit(fig: Figure, ax) -> float:
    ax.apply_aspect()  # the equal-aspect box, not the box the layout first gave the axes
    width_px = ax.get_position().width * fig.get_figwidth() * fig.dpi
    left, right = ax.get_xlim()
    return width_px / max(abs(right - left), 1e-9)


def label_counties(fig: Figure, ax, gdf: gpd.GeoDataFrame, labeller: _Labeller, *, fontsize: float = 6.0) -> int:
    """Write each county's name at its representative point when the polygon is wide and tall
    enough on screen for the text; returns how many labels were drawn."""
    scale = _axes_pixels_per_unit(fig, ax)
    char_px = fontsize * fig.dpi / 72
    drawn = 0
    points = gdf.geometry.representative_point()
    for geom, point, name in zip(gdf.geometry, points, labeller.names):
        minx, miny, maxx, maxy = geom.bounds
        width_px, height_px = (maxx - minx) * scale, (maxy - miny) * scale
        text_px = char_px * (len(name) * (1.0 if has_cjk(name) else 0.6))
        if width_px >= text_px * 1.1 and height_px >= char_px * 1.6:
            ax.annotate(name, (point.x, point.y), ha="center", va="center", fontsize=fontsize, color="#222222", **labeller.text_kwargs())
            drawn += 1
    return drawn


def add_scale_bar(ax, gdf: gpd.GeoDataFrame) -> None:
    left, bottom, right, top = gdf.total_bounds
    if gdf.crs is not None and gdf.crs.is_geographic:
        from pyproj import Geod

        mid = (bottom + top) / 2
        metres_per_unit = Geod(ellps="WGS84").inv(left, mid, right, mid)[2] / max(right - left, 1e-12)
    else:
        metres_per_unit = gdf.crs.axis_info[0].unit_conversion_factor if gdf.crs is not None else 1.0
    width_m = (right - left) * metres_per_unit
    length_m = nice_scale_length(width_m)
    length_units = length_m / metres_per_unit
    x0 = left + (right - left) * 0.05
    y0 = bottom + (top - bottom) * 0.04
    ax.plot([x0, x0 + length_units], [y0, y0], color="black", linewidth=2.5, solid_capstyle="butt")
    ax.text(x0 + length_units / 2, y0 + (top - bottom) * 0.015, f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m", ha="center", va="bottom", fontsize=7)


def add_north_arrow(ax) -> None:
    ax.annotate("N", xy=(0.95, 0.95), xytext=(0.95, 0.86), xycoords="axes fraction", ha="center", va="center", fontsize=9,
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.2})


def _edge_width(n_counties: int) -> float:
    """County borders thin out with their number, so 3,000 borders do not hide the colours."""
    return float(np.clip(2.0 / math.sqrt(max(n_counties, 1)), 0.05, 0.4))


def _new_figure(width: float = 9.0, height: float = 7.0) -> tuple[Figure, FigureCanvasAgg]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, FigureCanvasAgg(fig)


def _place_legend(fig: Figure, ax, handles: list[Patch], *, title: str, own_sheet: bool, prop: dict | None = None) -> None:
    """A map alone on its sheet gets a figure legend at the right, for which the constrained layout
    reserves room (an axes legend anchored outside its axes is not counted and was cut off); a small
    multiple keeps its legend beside its own axes, where the grid's gaps leave room."""
    style = {"title": title, "title_fontsize": 7, "frameon": False, "prop": prop or {"size": 7}}
    if own_sheet:
        fig.legend(handles=handles, loc="outside right center", **style)
    else:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.35), **style)


def _choropleth(fig: Figure, ax, gdf: gpd.GeoDataFrame, values: np.ndarray, *, k: int, cmap: str, title: str, unit: str,
                scale: float = 1.0, own_sheet: bool = True) -> np.ndarray:
    finite = np.isfinite(values)
    distinct = np.unique(values[finite]).size
    edges = natural_breaks(values[finite], min(k, distinct)) if distinct >= 2 else np.array([np.nanmin(values), np.nanmax(values) + 1e-12])
    classes = classify(np.where(finite, values, np.nan), edges, clip=True)
    palette = colormaps[cmap](np.linspace(0.15, 0.95, len(edges) - 1))
    colours = [palette[c - 1] if c > 0 else (0.85, 0.85, 0.85, 1.0) for c in classes]
    gdf.plot(ax=ax, color=colours, edgecolor="white", linewidth=_edge_width(len(gdf)))
    handles = [Patch(facecolor=palette[i], edgecolor="none", label=label) for i, label in enumerate(legend_labels(edges, scale=scale))]
    if (~finite).any():
        handles.append(Patch(facecolor=(0.85, 0.85, 0.85), label="no value / infinite"))
    _place_legend(fig, ax, handles, title=unit, own_sheet=own_sheet)
    ax.set_title(title, fontsize=11)
    ax.set_axis_off()
    ax.set_aspect("equal")
    return edges


def _read_run(run_dir: Path) -> gpd.GeoDataFrame:
    path = run_dir / "counties.gpkg"
    if not path.exists():
        raise InputError(f"{run_dir}: no counties.gpkg; run `carbonscape run` (or `demo`) into this folder first")
    return gpd.read_file(path, layer="counties", engine="pyogrio")


def _save(fig: Figure, canvas: FigureCanvasAgg, out: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    written = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        tmp = path.with_name(f".{path.stem}.tmp.{fmt}")
        fig.savefig(tmp, format=fmt, dpi=DPI)
        tmp.replace(path)
        written.append(path)
    return written


def draw_maps(run_dir: str | Path, *, formats: Sequence[str] = ("png",), overview: bool = True) -> list[Path]:
    """Draw the maps of a run into ``run_dir/maps`` and return their paths.

    Parameters
    ----------
    run_dir
        A folder written by ``carbonscape run`` or ``demo``.
    formats
        Any of ``png``, ``svg``, ``pdf``.
    overview
        Also draw the per-pixel carbon map from ``carbon_overview.tif`` when it is there.
    """
    run = Path(run_dir)
    unknown = [f for f in formats if f not in ("png", "svg", "pdf")]
    if unknown:
        raise InputError(f"map formats {unknown} are not supported; use png, svg or pdf")
    gdf = _read_run(run)
    out = run / "maps"
    out.mkdir(exist_ok=True)
    labeller = _Labeller(gdf)
    written: list[Path] = []

    specs = [
        ("fig2_supply", "supply_t", "Carbon supply by county", "10^6 t C", 1e6, "Greens"),
        ("fig3_demand", "demand_demand_t_per_km2", "Carbon demand by county", "t/km²", 1.0, "Reds"),
        ("fig4_ratio", "ratio", "Supply–demand ratio by county", "demand / supply density", 1.0, "RdYlGn_r"),
    ]
    for stem, column, title, unit, scale, cmap in specs:
        if column not in gdf.columns:
            log.warning("counties.gpkg has no %s column; skipping %s", column, stem)
            continue
        fig, canvas = _new_figure()
        ax = fig.add_subplot()
        values = gdf[column].to_numpy(dtype=float)
        _choropleth(fig, ax, gdf, values, k=5, cmap=cmap, title=title, unit=unit, scale=scale)
        label_counties(fig, ax, gdf, labeller)
        add_scale_bar(ax, gdf)
        add_north_arrow(ax)
        written += _save(fig, canvas, out, stem, formats)

    if "zone" in gdf.columns:
        written += _draw_zones(gdf, labeller, out, formats)
    written += _draw_class_sheet(run, gdf, labeller, out, formats)
    overview_path = run / "carbon_overview.tif"
    if overview and overview_path.exists():
        written += _draw_overview(overview_path, gdf, out, formats)
    return written


def _draw_zones(gdf: gpd.GeoDataFrame, labeller: _Labeller, out: Path, formats: Sequence[str]) -> list[Path]:
    fig, canvas = _new_figure()
    ax = fig.add_subplot()
    keys = gdf["zone_key"].fillna("") if "zone_key" in gdf.columns else gdf["zone"].fillna("")
    distinct = [k for k in dict.fromkeys(keys) if k]
    fallback = colormaps["tab10"](np.linspace(0, 1, max(len(distinct), 1)))
    colour_of = {k: ZONE_COLOURS.get(k, fallback[i]) for i, k in enumerate(distinct)}
    gdf.plot(ax=ax, color=[colour_of.get(k, (0.85, 0.85, 0.85, 1)) for k in keys], edgecolor="white", linewidth=_edge_width(len(gdf)))
    handles = []
    for key in distinct:
        row = gdf[keys == key].iloc[0]
        zh, en = str(row.get("zone", "")), str(row.get("zone_en", ""))
        label = f"{zh} {en}" if labeller.font and zh else en or zh
        handles.append(Patch(facecolor=colour_of[key], label=f"{label} ({int((keys == key).sum())})"))
    _place_legend(fig, ax, handles, title="zone (counties)", own_sheet=True,
                  prop={"family": labeller.font, "size": 7} if labeller.font else None)
    ax.set_title("Functional zones", fontsize=11)
    ax.set_axis_off()
    ax.set_aspect("equal")
    label_counties(fig, ax, gdf, labeller)
    add_scale_bar(ax, gdf)
    add_north_arrow(ax)
    return _save(fig, canvas, out, "fig5_zones", formats)


def _draw_class_sheet(run: Path, gdf: gpd.GeoDataFrame, labeller: _Labeller, out: Path, formats: Sequence[str]) -> list[Path]:
    pairs_path, classes_path = run / "supply_by_county_class.csv", run / "supply_by_class.csv"
    if not pairs_path.exists() or not classes_path.exists():
        return []
    pairs = pd.read_csv(pairs_path, dtype={"county": str})
    classes = pd.read_csv(classes_path)
    classes = classes[classes["supply_t"] > 0].sort_values("supply_t", ascending=False)
    if classes.empty:
        return []
    table = pairs.pivot_table(index="county", columns="lucode", values="supply_t", aggfunc="sum").fillna(0.0)
    n = len(classes)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, canvas = _new_figure(4.0 * ncols, 3.8 * nrows + 0.4)
    fig.suptitle("Carbon supply by county for each land-use class (10^6 t C)", fontsize=12)
    keys = gdf["county"].astype(str)
    for i, (_, row) in enumerate(classes.iterrows()):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        values = table.get(row["lucode"], pd.Series(dtype=float)).reindex(keys).fillna(0.0).to_numpy()
        _choropleth(fig, ax, gdf, values, k=5, cmap="YlGn", title=f"{row['name']} ({row['share_pct']:.1f}%)", unit="10^6 t", scale=1e6,
                    own_sheet=False)
        add_scale_bar(ax, gdf)
    return _save(fig, canvas, out, "fig1_supply_by_class", formats)


def _draw_overview(path: Path, gdf: gpd.GeoDataFrame, out: Path, formats: Sequence[str]) -> list[Path]:
    import rasterio

    with rasterio.open(path) as src:
        data = src.read(1, masked=True)
        left, bottom, right, top = src.bounds
        crs = src.crs
    fig, canvas = _new_figure()
    ax = fig.add_subplot()
    image = ax.imshow(data, extent=(left, right, bottom, top), cmap="YlGn", interpolation="nearest")
    outline = gdf.to_crs(crs) if crs is not None and gdf.crs is not None else gdf
    outline.boundary.plot(ax=ax, color="#444444", linewidth=0.3)
    fig.colorbar(image, ax=ax, shrink=0.6, label="t C / ha")
    ax.set_title("Carbon per pixel (overview)", fontsize=11)
    ax.set_axis_off()
    ax.set_aspect("equal")
    add_scale_bar(ax, outline)
    return _save(fig, canvas, out, "carbon_per_pixel", formats)
