"""Maps of a run (the paper's Figs. 1–5 and the carbon-per-pixel map), drawn headless.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, not pyplot,
so drawing touches no global state and never picks a GUI backend. Every text is drawn with a font
list ending in a CJK font when one is installed, so Chinese names render anywhere on a sheet.

Colours follow one logic: the supply–demand ratio runs from green (low ratio: supply exceeds
demand) to red (high ratio), in Fig. 4's classes and in Fig. 5's zones alike, and legends list the
highest class (or zone) first.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
import shapely
from carbonscape.breaks import classify, natural_breaks
from carbonscape.errors import InputError
from carbonscape.fonts import INSTALL_HINT, find_cjk_font, has_cjk
from carbonscape.zoning import zone_groups, zone_keys
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
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
FORMATS = ("png", "svg", "pdf")
DPI = 150
# Low ratio (supply exceeds demand) green, high ratio red: Fig. 4's classes and Fig. 5's zones.
RATIO_CMAP = "RdYlGn_r"
NO_VALUE = (0.85, 0.85, 0.85, 1.0)
NO_SUPPLY = (0.15, 0.15, 0.15, 1.0)  # beyond the top red: a zero supply makes the ratio infinite
# Above this many counties a few labels are noise, not information: none are drawn.
MAX_LABELLED_COUNTIES = 300
HALO = [patheffects.withStroke(linewidth=2.0, foreground="white")]
# Demand density (t CO2/km²) in counties.gpkg: the current name first, then the newer one.
DEMAND_COLUMNS = ("demand_demand_t_per_km2", "demand_t_co2_per_km2")


def legend_labels(edges: Sequence[float], *, scale: float = 1.0, digits: int | None = None) -> list[str]:
    """``"a – b"`` labels for the classes between consecutive edges, values divided by ``scale``.

    Parameters
    ----------
    edges
        The ``k + 1`` class edges.
    scale
        Divisor of the values (1e6 to show 10⁶ t).
    digits
        Decimals; by default enough for the values' size, and more until bounds that differ
        print differently (no ``"0.0005 – 0.0005"``).

    Returns
    -------
    list of str
        One label per class; a class whose bounds are equal is labelled by its one value.
    """
    values = np.asarray(edges, dtype=float) / scale
    if values.size < 2:
        return []

    def show(value: float, places: int) -> str:
        return f"{value:,.{places}f}"

    if digits is None:
        finite = values[np.isfinite(values)]
        span = float(np.max(np.abs(finite))) if finite.size else 1.0
        digits = 0 if span >= 1000 else 1 if span >= 10 else 2 if span >= 1 else 4
        distinct = [(a, b) for a, b in zip(values[:-1], values[1:]) if a != b and np.isfinite(a) and np.isfinite(b)]
        while digits < 12 and any(show(a, digits) == show(b, digits) for a, b in distinct):
            digits += 1
    labels = []
    for lo, hi in zip(values[:-1], values[1:]):
        a, b = show(lo, digits), show(hi, digits)
        labels.append(a if a == b else f"{a} – {b}")
    return labels


def tonnes_scale(values: np.ndarray, unit: str = "t C") -> tuple[float, str]:
    """The divisor (1, 10³ or 10⁶) and unit for showing tonnes, chosen from the largest value.

    Examples: a largest value of 16,500 t gives ``(1e3, "10³ t C")``; 8.3e7 t gives
    ``(1e6, "10⁶ t C")``; 2,500 t stays ``(1.0, "t C")``.
    """
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    top = float(np.max(np.abs(finite))) if finite.size else 0.0
    if top >= 1e6:
        return 1e6, f"10⁶ {unit}"
    if top >= 1e4:
        return 1e3, f"10³ {unit}"
    return 1.0, unit


def nice_scale_length(width: float) -> float:
    """A round length (1, 2 or 5 × 10^n) of about a fifth of ``width``."""
    target = width / 5
    power = 10 ** math.floor(math.log10(target))
    return max(m * power for m in (1, 2, 5) if m * power <= target)


def ratio_palette(n: int) -> np.ndarray:
    """``n`` colours from low ratio (green) to high ratio (red); shared by Figs. 4 and 5."""
    if n <= 1:
        return colormaps[RATIO_CMAP](np.array([0.5]))
    return colormaps[RATIO_CMAP](np.linspace(0.05, 0.95, n))


class _Labeller:
    """County names where they fit; romanized when no CJK font can draw Chinese ones (draw_maps
    warns about that once)."""

    def __init__(self, gdf: gpd.GeoDataFrame) -> None:
        self.font = find_cjk_font()
        # The fallback list also when labels are drawn outside draw_maps' font context.
        self.family = ["DejaVu Sans", self.font] if self.font else None
        names = gdf["county"].astype(str)
        if self.font is None and names.map(has_cjk).any():
            fallback = gdf["name_en"].astype(str) if "name_en" in gdf.columns else names.map(lambda s: s.encode("ascii", "replace").decode())
            names = fallback
        self.names = names.to_numpy()


def _freeze_layout(fig: Figure) -> None:
    """Lay the figure out once and keep that layout, so positions measured now still hold when it
    is saved (the constrained layout would otherwise move the axes again)."""
    fig.draw_without_rendering()
    if isinstance(fig.get_layout_engine(), ConstrainedLayoutEngine):
        fig.set_layout_engine("none")


def _label_points(geom: Any) -> Iterator[Any]:
    centroid = geom.centroid
    if geom.contains(centroid):
        yield centroid  # the visual centre of a compact county
    yield geom.representative_point()


def label_counties(fig: Figure, ax: Any, gdf: gpd.GeoDataFrame, labeller: _Labeller, *, fontsize: float = 6.0,
                   max_counties: int = MAX_LABELLED_COUNTIES) -> int:
    """Write county names, larger counties first, each only where its whole text box lies inside
    its polygon and overlaps no label (or scale bar, north arrow) already drawn.

    Names are dark with a white halo, legible on the darkest fills. Above ``max_counties`` no
    name is drawn. Fixes the figure's layout first (see :func:`_freeze_layout`).

    Returns
    -------
    int
        How many labels were drawn.
    """
    if len(gdf) == 0 or len(gdf) > max_counties:
        return 0
    _freeze_layout(fig)
    renderer = fig.canvas.get_renderer()
    to_data = ax.transData.inverted()
    placed = [artist.get_window_extent(renderer) for artist in [*ax.texts, *ax.lines]]
    drawn = 0
    # Only the order of the areas matters here (largest label first), in the map's own units:
    # shapely's planar area, without geopandas' warning about degrees.
    areas = shapely.area(gdf.geometry.to_numpy())
    for i in np.argsort(-areas, kind="stable"):
        geom, name = gdf.geometry.iloc[i], str(labeller.names[i])
        if geom is None or geom.is_empty or not name.strip():
            continue
        text = ax.text(0, 0, name, ha="center", va="center", fontsize=fontsize, color="#1a1a1a", path_effects=HALO, zorder=5,
                       fontfamily=labeller.family)
        box = None
        for point in _label_points(geom):
            text.set_position((point.x, point.y))
            extent = text.get_window_extent(renderer).padded(1.0)
            if any(extent.overlaps(other) for other in placed):
                continue
            (x0, y0), (x1, y1) = to_data.transform([[extent.x0, extent.y0], [extent.x1, extent.y1]])
            if geom.contains(shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))):
                box = extent
                break
        if box is None:
            text.remove()
        else:
            placed.append(box)
            drawn += 1
    return drawn


def add_scale_bar(ax: Any, gdf: gpd.GeoDataFrame) -> None:
    """A round-length scale bar at the lower left, haloed to read on any fill."""
    left, bottom, right, top = gdf.total_bounds
    if gdf.crs is not None and gdf.crs.is_geographic:
        from pyproj import Geod

        mid = (bottom + top) / 2
        metres_per_unit = Geod(ellps="WGS84").inv(left, mid, right, mid)[2] / max(right - left, 1e-12)
    else:
        metres_per_unit = gdf.crs.axis_info[0].unit_conversion_factor if gdf.crs is not None else 1.0
    width_m = (right - left) * metres_per_unit
    if not width_m > 0:
        return
    length_m = nice_scale_length(width_m)
    length_units = length_m / metres_per_unit
    x0 = left + (right - left) * 0.05
    y0 = bottom + (top - bottom) * 0.04
    ax.plot([x0, x0 + length_units], [y0, y0], color="black", linewidth=2.5, solid_capstyle="butt", zorder=6,
            path_effects=[patheffects.Stroke(linewidth=4.5, foreground="white"), patheffects.Normal()])
    ax.text(x0 + length_units / 2, y0 + (top - bottom) * 0.015, f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m",
            ha="center", va="bottom", fontsize=7, path_effects=HALO, zorder=6)


def add_north_arrow(ax: Any) -> None:
    """An "N" arrow at the upper right (maps are north-up), haloed to read on any fill."""
    arrow = ax.annotate("N", xy=(0.95, 0.95), xytext=(0.95, 0.86), xycoords="axes fraction", ha="center", va="center", fontsize=9,
                        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.2}, path_effects=HALO, zorder=6)
    arrow.arrow_patch.set_path_effects([patheffects.Stroke(linewidth=3.0, foreground="white"), patheffects.Normal()])


def _edge_width(n_counties: int) -> float:
    """County borders thin out with their number, so 3,000 borders do not hide the colours."""
    return float(np.clip(2.0 / math.sqrt(max(n_counties, 1)), 0.05, 0.4))


def _new_figure(width: float = 9.0, height: float = 7.0) -> tuple[Figure, FigureCanvasAgg]:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    return fig, FigureCanvasAgg(fig)


def _place_legend(fig: Figure, ax: Any, handles: list[Patch], *, title: str, own_sheet: bool) -> None:
    """A map alone on its sheet gets a figure legend at the right, for which the constrained layout
    reserves room (an axes legend anchored outside its axes is not counted and was cut off); a small
    multiple keeps its legend beside its own axes, where the grid's gaps leave room."""
    style = {"title": title, "title_fontsize": 7, "frameon": False, "prop": {"size": 7}}
    if own_sheet:
        fig.legend(handles=handles, loc="outside right center", **style)
    else:
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 0.35), **style)


def _natural_classes(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``k`` natural-break classes of the finite values: ``(edges, class per value)``, class 0
    for a non-finite value. One distinct value is one class (edges ``[v, v]``); none, no class."""
    finite = np.isfinite(values)
    distinct = np.unique(values[finite])
    if distinct.size == 0:
        return np.array([]), np.zeros(values.shape, dtype=np.int64)
    if distinct.size == 1:
        return np.array([distinct[0], distinct[0]]), np.where(finite, 1, 0)
    edges = natural_breaks(values[finite], min(k, distinct.size))
    return edges, classify(np.where(finite, values, np.nan), edges, clip=True)


def _paint(fig: Figure, ax: Any, gdf: gpd.GeoDataFrame, classes: np.ndarray, palette: np.ndarray, labels: list[str], *, title: str,
           legend_title: str, own_sheet: bool, infinite: np.ndarray | None = None, infinite_label: str = "no supply (∞)",
           edgecolor: str = "white") -> None:
    """Fill counties by class (1..k, 0 = no value), legend highest class first, with separate
    entries for infinite values and missing ones."""
    infinite = np.zeros(len(gdf), dtype=bool) if infinite is None else infinite
    colours = [NO_SUPPLY if inf else palette[c - 1] if c > 0 else NO_VALUE for c, inf in zip(classes, infinite)]
    gdf.plot(ax=ax, color=colours, edgecolor=edgecolor, linewidth=_edge_width(len(gdf)))
    handles = [Patch(facecolor=palette[i], edgecolor="none", label=labels[i]) for i in reversed(range(len(labels)))]
    if infinite.any():
        handles.insert(0, Patch(facecolor=NO_SUPPLY, edgecolor="none", label=infinite_label))
    if ((classes == 0) & ~infinite).any():
        handles.append(Patch(facecolor=NO_VALUE, edgecolor="none", label="no value"))
    _place_legend(fig, ax, handles, title=legend_title, own_sheet=own_sheet)
    ax.set_title(title, fontsize=11)
    ax.set_axis_off()
    ax.set_aspect("equal")


def _choropleth(fig: Figure, ax: Any, gdf: gpd.GeoDataFrame, values: np.ndarray, *, k: int, cmap: str, title: str, quantity: str,
                unit: str, tonnes: bool = False, own_sheet: bool = True) -> np.ndarray:
    """Natural-break classes of ``values``; in tonnes the legend's scale (t, 10³ t, 10⁶ t) follows
    the data. Returns the class edges."""
    values = np.asarray(values, dtype=float)
    edges, classes = _natural_classes(values, k)
    scale, unit = tonnes_scale(values, unit) if tonnes else (1.0, unit)
    n = max(len(edges) - 1, 0)
    palette = colormaps[cmap](np.linspace(0.15, 0.95, n)) if n > 1 else colormaps[cmap](np.array([0.6]))
    _paint(fig, ax, gdf, classes, palette, legend_labels(edges, scale=scale), title=title, legend_title=f"{quantity} ({unit})",
           own_sheet=own_sheet, infinite=np.isposinf(values), infinite_label="infinite")
    return edges


def _read_run(run_dir: Path) -> gpd.GeoDataFrame:
    path = run_dir / "counties.gpkg"
    if not path.exists():
        raise InputError(f"{run_dir}: no counties.gpkg; run `carbonscape run` (or `demo`) into this folder first")
    import pyogrio.errors

    try:
        gdf = gpd.read_file(path, layer="counties", engine="pyogrio")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, OSError, ValueError) as exc:
        # pyogrio's own text (GDAL driver hints) is kept on the chained exception, for --debug.
        what = "has no `counties` layer" if isinstance(exc, pyogrio.errors.DataLayerError) else "is not a readable GeoPackage"
        raise InputError(
            f"{path} {what}: it is damaged or was left by an interrupted run; run `carbonscape run` (or `demo`) into "
            f"{run_dir} again to rewrite it"
        ) from exc
    if "county" not in gdf.columns:
        raise InputError(f"{path}: no `county` column; it was not written by carbonscape: run `carbonscape run` into {run_dir} again")
    return gdf


def _read_zoning(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "run.json"
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")).get("zoning") or {})
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, AttributeError) as exc:
        log.warning("%s cannot be read (%s); Fig. 4 uses natural breaks of its own", path, exc)
        return {}


def _save(fig: Figure, canvas: FigureCanvasAgg, out: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    written = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        tmp = path.with_name(f".{path.stem}.tmp.{fmt}")
        fig.savefig(tmp, format=fmt, dpi=DPI)
        tmp.replace(path)
        written.append(path)
    return written


@contextlib.contextmanager
def _fonts(texts: Sequence[str]) -> Iterator[str | None]:
    """Every text of the drawing may hold Chinese: DejaVu Sans with the CJK font as fallback. With
    no CJK font, one warning (when there is Chinese to draw) instead of one per missing glyph."""
    cjk = find_cjk_font()
    if cjk is not None:
        with matplotlib.rc_context({"font.family": ["DejaVu Sans", cjk]}):
            yield cjk
        return
    if any(has_cjk(t) for t in texts):
        log.warning("no CJK font found, so Chinese text cannot be drawn: county labels are romanized and zones named in "
                    "English; %s", INSTALL_HINT)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
        yield None


def draw_maps(run_dir: str | Path, *, formats: Sequence[str] = ("png",), overview: bool = True) -> list[Path]:
    """Draw the maps of a run into ``run_dir/maps`` and return their paths.

    Map files of earlier draws that this draw did not write (another format, or a map this run no
    longer has) are removed, so ``maps/`` and the report show the current run only.

    Parameters
    ----------
    run_dir
        A folder written by ``carbonscape run`` or ``demo``.
    formats
        Any of ``png``, ``svg``, ``pdf``.
    overview
        Also draw the per-pixel carbon map from ``carbon_overview.tif`` when it is there.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    run = Path(run_dir)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"map formats {unknown} are not supported; use png, svg or pdf")
    gdf = _read_run(run)
    out = run / "maps"
    out.mkdir(exist_ok=True)
    classes = _class_table(run)
    texts = [*gdf["county"].astype(str), *(gdf["zone"].fillna("").astype(str) if "zone" in gdf.columns else []),
             *(classes["title"] if classes is not None else [])]
    written: list[Path] = []
    with _fonts(texts) as cjk:
        labeller = _Labeller(gdf)
        specs = [
            ("fig2_supply", ("supply_t",), "Carbon supply by county", "supply", "t C", True, "Greens"),
            ("fig3_demand", DEMAND_COLUMNS, "Carbon demand by county", "demand", "t CO₂/km²", False, "Reds"),
        ]
        for stem, columns, title, quantity, unit, tonnes, cmap in specs:
            column = next((c for c in columns if c in gdf.columns), None)
            if column is None:
                log.warning("counties.gpkg has no %s column; skipping %s", " or ".join(columns), stem)
                continue
            fig, canvas = _new_figure()
            ax = fig.add_subplot()
            _choropleth(fig, ax, gdf, gdf[column].to_numpy(dtype=float), k=5, cmap=cmap, title=title, quantity=quantity, unit=unit,
                        tonnes=tonnes)
            _finish_map(fig, ax, gdf, labeller)
            written += _save(fig, canvas, out, stem, formats)
        if "ratio" in gdf.columns:
            written += _draw_ratio(run, gdf, labeller, out, formats)
        else:
            log.warning("counties.gpkg has no ratio column; skipping fig4_ratio")
        if "zone" in gdf.columns:
            written += _draw_zones(gdf, labeller, out, formats, cjk=cjk is not None)
        if classes is not None:
            written += _draw_class_sheet(run, gdf, classes, out, formats)
        overview_path = run / "carbon_overview.tif"
        if overview and overview_path.exists():
            written += _draw_overview(overview_path, gdf, out, formats)
    _remove_stale(out, written)
    return written


def _remove_stale(out: Path, written: list[Path]) -> None:
    keep = {path.name for path in written}
    for stem in MAP_FILES:
        for fmt in FORMATS:
            path = out / f"{stem}.{fmt}"
            if path.name not in keep and path.exists():
                path.unlink()
                log.debug("removed %s of an earlier draw", path)


def _finish_map(fig: Figure, ax: Any, gdf: gpd.GeoDataFrame, labeller: _Labeller | None) -> None:
    """Scale bar and north arrow, then the county names around them."""
    add_scale_bar(ax, gdf)
    add_north_arrow(ax)
    if labeller is not None:
        label_counties(fig, ax, gdf, labeller)


def _ratio_classes(run: Path, gdf: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """The study's ratio classes (run.json ``zoning.edges``, the gpkg's ``class``), or None when
    this run does not carry them consistently."""
    zoning = _read_zoning(run)
    edges = np.asarray(zoning.get("edges") or [], dtype=float)
    if edges.size < 2 or "class" not in gdf.columns:
        return None
    classes = pd.to_numeric(gdf["class"], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
    if classes.min() < 0 or classes.max() > edges.size - 1:
        log.warning("counties.gpkg's classes do not match run.json's %d zoning classes; Fig. 4 uses natural breaks of its own", edges.size - 1)
        return None
    return edges, classes


def _draw_ratio(run: Path, gdf: gpd.GeoDataFrame, labeller: _Labeller, out: Path, formats: Sequence[str]) -> list[Path]:
    """Fig. 4 in the study's own ratio classes, so it matches the zones of Fig. 5."""
    fig, canvas = _new_figure()
    ax = fig.add_subplot()
    ratio = gdf["ratio"].to_numpy(dtype=float)
    infinite = np.isposinf(ratio)
    if "ratio_infinite" in gdf.columns:
        infinite |= gdf["ratio_infinite"].fillna(False).astype(bool).to_numpy()
    study = _ratio_classes(run, gdf)
    if study is not None:
        edges, classes = study
        title = "ratio class (demand / supply density)"
    else:
        edges, classes = _natural_classes(np.where(infinite, np.nan, ratio), 5)
        title = "ratio (demand / supply density)"
    classes = np.where(np.isnan(ratio) & ~infinite, 0, classes)
    _paint(fig, ax, gdf, classes, ratio_palette(len(edges) - 1), legend_labels(edges), title="Supply–demand ratio by county",
           legend_title=title, own_sheet=True, infinite=infinite, edgecolor="#8c8c8c")
    _finish_map(fig, ax, gdf, labeller)
    return _save(fig, canvas, out, "fig4_ratio", formats)


def _draw_zones(gdf: gpd.GeoDataFrame, labeller: _Labeller, out: Path, formats: Sequence[str], *, cjk: bool) -> list[Path]:
    """Fig. 5: zones coloured along the ratio's green → red, legend in the scheme's order."""
    fig, canvas = _new_figure()
    ax = fig.add_subplot()
    groups = zone_groups(gdf)
    palette = ratio_palette(len(groups))[::-1]  # groups run from the highest ratio down
    keys = zone_keys(gdf)
    colour_of = {group.key: palette[i] for i, group in enumerate(groups)}
    gdf.plot(ax=ax, color=[colour_of.get(k, NO_VALUE) for k in keys], edgecolor="#8c8c8c", linewidth=_edge_width(len(gdf)))
    handles = []
    for group in groups:
        label = f"{group.zone} {group.zone_en}" if cjk and group.zone and group.zone_en else group.zone_en or group.zone
        handles.append(Patch(facecolor=colour_of[group.key], edgecolor="none", label=f"{label} ({len(group.counties):,})"))
    if (~keys.isin(list(colour_of))).any():
        handles.append(Patch(facecolor=NO_VALUE, edgecolor="none", label=f"no zone ({int((~keys.isin(list(colour_of))).sum()):,})"))
    _place_legend(fig, ax, handles, title="zone (counties)", own_sheet=True)
    ax.set_title("Functional zones", fontsize=11)
    ax.set_axis_off()
    ax.set_aspect("equal")
    _finish_map(fig, ax, gdf, labeller)
    return _save(fig, canvas, out, "fig5_zones", formats)


def _class_table(run: Path) -> pd.DataFrame | None:
    """Land-use classes with supply, largest first, and a panel title each (Chinese name too when
    the table carries one)."""
    pairs_path, classes_path = run / "supply_by_county_class.csv", run / "supply_by_class.csv"
    if not pairs_path.exists() or not classes_path.exists():
        return None
    classes = pd.read_csv(classes_path)
    classes = classes[classes["supply_t"] > 0].sort_values("supply_t", ascending=False)
    if classes.empty:
        return None
    zh = next((c for c in ("name_zh", "lulc_name_zh", "LULC_name_zh") if c in classes.columns), None)
    titles = []
    for _, row in classes.iterrows():
        name = str(row["name"])
        if zh and pd.notna(row[zh]) and str(row[zh]) not in name:
            name = f"{row[zh]} {name}"
        titles.append(f"{name} ({row['share_pct']:.1f}%)")
    return classes.assign(title=titles)


def _draw_class_sheet(run: Path, gdf: gpd.GeoDataFrame, classes: pd.DataFrame, out: Path, formats: Sequence[str]) -> list[Path]:
    pairs = pd.read_csv(run / "supply_by_county_class.csv", dtype={"county": str})
    table = pairs.pivot_table(index="county", columns="lucode", values="supply_t", aggfunc="sum").fillna(0.0)
    n = len(classes)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig, canvas = _new_figure(4.0 * ncols, 3.8 * nrows + 0.4)
    fig.suptitle("Carbon supply by county for each land-use class", fontsize=12)
    keys = gdf["county"].astype(str)
    for i, (_, row) in enumerate(classes.iterrows()):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        values = table.get(row["lucode"], pd.Series(dtype=float)).reindex(keys).fillna(0.0).to_numpy()
        _choropleth(fig, ax, gdf, values, k=5, cmap="YlGn", title=row["title"], quantity="supply", unit="t C", tonnes=True, own_sheet=False)
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
    outline.boundary.plot(ax=ax, color="#444444", linewidth=_edge_width(len(gdf)))
    fig.colorbar(image, ax=ax, shrink=0.6, label="t C / ha")
    ax.set_title("Carbon per pixel (overview)", fontsize=11)
    ax.set_axis_off()
    ax.set_aspect("equal")
    _finish_map(fig, ax, outline, None)
    return _save(fig, canvas, out, "carbon_per_pixel", formats)
