"""Maps of the second half of a study: LISA clusters, Gi* hot spots, matching quadrants, balance, zone stability.

Drawn in the manner of :mod:`carbonscape.maps` (a :class:`~matplotlib.figure.Figure` on the Agg
canvas, no pyplot, a CJK fallback font for names, a scale bar and a north arrow), from the result
objects and the unit polygons in memory, never from files read back. Colours follow GeoDa's
conventions for clusters (HH red, LL blue, HL pink, LH light blue, not significant grey) and
ArcGIS's for hot spots (hot red, cold blue).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import operator
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import matplotlib
import numpy as np
import pandas as pd
from carbonscape.errors import InputError
from carbonscape.fonts import find_cjk_font
from carbonscape.maps import DPI, FORMATS, NO_VALUE, add_north_arrow, add_scale_bar, draw_shapes, legend_labels, pixel_tolerance, prepare_shapes
from carbonscape.maps import Shapes, _Canvas, _release, keep_for_report, png_options
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import TwoSlopeNorm, to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

log = logging.getLogger(__name__)

STAT_MAP_FILES = {
    "lisa_clusters": "LISA clusters (local Moran's I)",
    "hotspots": "Getis–Ord Gi* hot and cold spots",
    "matching_quadrants": "Supply–demand quadrants",
    "matching_balance": "Supply–demand balance",
    "zone_stability": "Zone stability under density uncertainty",
}
CLUSTER_COLOURS = {
    "HH": "#d7191c", "LL": "#2c7bb6", "HL": "#fdae61", "LH": "#abd9e9", "not significant": "#eeeeee",
}
CLUSTER_LABELS = {
    "HH": "High–High", "LL": "Low–Low", "HL": "High–Low", "LH": "Low–High", "not significant": "not significant",
}
SPOT_COLOURS = {"hot spot": "#d7191c", "cold spot": "#2c7bb6", "not significant": "#eeeeee"}
QUADRANT_COLOURS = {"HS-HD": "#fdae61", "HS-LD": "#1a9641", "LS-HD": "#d7191c", "LS-LD": "#abd9e9"}
QUADRANT_LABELS = {
    "HS-HD": "high supply, high demand", "HS-LD": "high supply, low demand",
    "LS-HD": "low supply, high demand", "LS-LD": "low supply, low demand",
}
VARIABLE_TITLES = {"supply_t_per_km2": "supply density", "demand_t_per_km2": "demand density", "ratio": "supply–demand ratio"}


@contextlib.contextmanager
def _fonts() -> Iterator[None]:
    cjk = find_cjk_font()
    with matplotlib.rc_context({"font.family": ["DejaVu Sans", cjk] if cjk else ["DejaVu Sans"]}):
        yield


def _figure(n_panels: int) -> tuple[Figure, FigureCanvasAgg, list[Any]]:
    ncols = min(3, max(n_panels, 1))
    nrows = math.ceil(max(n_panels, 1) / ncols)
    fig = Figure(figsize=(4.6 * ncols + 1.2, 4.4 * nrows + 0.4) if n_panels > 1 else (9.0, 7.0), dpi=DPI, layout="compressed")
    canvas = _Canvas(fig)
    axes = [fig.add_subplot(nrows, ncols, i + 1) for i in range(max(n_panels, 1))]
    return fig, canvas, axes


def _edge_width(n: int) -> float:
    return float(np.clip(2.0 / math.sqrt(max(n, 1)), 0.05, 0.4))


def _shapes(ax: Any, gdf: gpd.GeoDataFrame) -> Shapes:
    """The units' outlines simplified to about a pixel of the panel ``ax`` (:func:`carbonscape.maps.prepare_shapes`);
    panels of one size share them."""
    x0, y0, x1, y1 = (float(v) for v in gdf.total_bounds) if len(gdf) else (0.0, 0.0, 1.0, 1.0)
    bbox = ax.get_position()
    fig = ax.get_figure()
    tolerance = pixel_tolerance((x0, x1), (y0, y1), bbox.width * fig.get_figwidth(), bbox.height * fig.get_figheight())
    geoms = np.asarray(gdf.geometry.values, dtype=object)
    for kept, kept_tolerance, shapes in _SHAPES:
        if kept_tolerance == tolerance and len(kept) == len(geoms) and all(map(operator.is_, kept, geoms)):
            return shapes
    shapes = prepare_shapes(geoms, tolerance=tolerance)
    _SHAPES.append((geoms, tolerance, shapes))
    return shapes


# The outlines prepared for the last few panel sizes (the statistics maps of one study share a
# few panel sizes): the same polygons at the same tolerance are simplified once, not per map.
_SHAPES: collections.deque[tuple[np.ndarray, float, Shapes]] = collections.deque(maxlen=4)


def _fill(ax: Any, gdf: gpd.GeoDataFrame, colours: Any, shapes: Shapes | None = None) -> Shapes:
    """The units filled with their colours and outlined, as one collection; returns the outlines drawn."""
    shapes = shapes if shapes is not None else _shapes(ax, gdf)
    draw_shapes(ax, shapes, colours, edgecolor="#8c8c8c", linewidth=_edge_width(len(gdf)), autoscale=True)
    return shapes


def _finish(ax: Any, gdf: gpd.GeoDataFrame, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()
    ax.set_aspect("equal")
    add_scale_bar(ax, gdf)
    add_north_arrow(ax)


def _categorical(ax: Any, gdf: gpd.GeoDataFrame, labels: pd.Series, colours: Mapping[str, str], names: Mapping[str, str], *,
                 legend_title: str, shapes: Shapes | None = None) -> Shapes:
    """Fill units by category; units without one (left out of the statistic) in the no-value grey;
    a legend of the categories present, with their unit counts."""
    values = labels.reindex(gdf.index)
    # One colour form (RGBA) for every unit: a mix of hex texts and tuples cannot be laid out as
    # one array when geopandas repeats colours over the parts of multipolygons.
    fill = np.array([to_rgba(colours[v]) if isinstance(v, str) and v in colours else to_rgba(NO_VALUE) for v in values], dtype=float).reshape(-1, 4)
    shapes = _fill(ax, gdf, fill, shapes)
    counts = values.value_counts()
    handles = [Patch(facecolor=colours[key], edgecolor="#8c8c8c", linewidth=0.3, label=f"{names.get(key, key)} ({int(counts[key]):,})")
               for key in colours if key in counts.index]
    missing = int(values.isna().sum() + (~values.dropna().isin(list(colours))).sum())
    if missing:
        handles.append(Patch(facecolor=NO_VALUE, edgecolor="none", label=f"no value ({missing:,})"))
    ax.legend(handles=handles, title=legend_title, title_fontsize=7, prop={"size": 7}, frameon=False, loc="upper left",
              bbox_to_anchor=(1.0, 0.5))
    return shapes


def _footer(fig: Figure, credit: str) -> None:
    """The credit line of :func:`carbonscape.maps.credit_line` (study, year, data sources, CRS,
    software) under the map, as on Figs 1–5; the layout keeps room for it."""
    if not credit:
        return
    chars = int(fig.get_figwidth() * 72 / (6.5 * 0.55))
    fig.supxlabel("\n".join(textwrap.wrap(credit, chars)[:3]), x=0.01, ha="left", fontsize=6.5, color="#444444")


def _fit(fig: Figure) -> None:
    """Widen or heighten the sheet until every text and legend lies inside it (the layout places
    legends beside maps of a fixed aspect; a long label could still reach past the edge)."""
    for _ in range(6):
        renderer = fig.canvas.get_renderer()
        fig.draw_without_rendering()
        tight = fig.get_tightbbox(renderer)
        width, height = fig.get_size_inches()
        over_x = max(tight.x1 - width, 0.0) + max(-tight.x0, 0.0)
        over_y = max(tight.y1 - height, 0.0) + max(-tight.y0, 0.0)
        if over_x <= 0.0 and over_y <= 0.0:
            return
        fig.set_size_inches(width + (2 * over_x + 0.1 if over_x > 0 else 0.0), height + (2 * over_y + 0.1 if over_y > 0 else 0.0))


def _save(fig: Figure, out: Path, stem: str, formats: Sequence[str], credit: str = "") -> list[Path]:
    _footer(fig, credit)
    _fit(fig)
    written = []
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        tmp = path.with_name(f".{path.stem}.tmp.{fmt}")
        fig.savefig(tmp, format=fmt, dpi=DPI, **({"pil_kwargs": png_options()} if fmt == "png" else {}))
        tmp.replace(path)
        if fmt == "png":
            keep_for_report(fig.canvas, path)
        written.append(path)
    _release(fig)
    return written


def _check(out: Path, formats: Sequence[str]) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"map formats {unknown} are not supported; use png, svg or pdf")
    out.mkdir(parents=True, exist_ok=True)


def _per_variable(gdf: gpd.GeoDataFrame, table: pd.DataFrame, unit: str, column: str, colours: Mapping[str, str],
                  names: Mapping[str, str], *, title: str, legend_title: str, out: Path, stem: str,
                  formats: Sequence[str], credit: str = "") -> list[Path]:
    variables = list(dict.fromkeys(table["variable"]))
    if not variables:
        return []
    with _fonts():
        fig, _canvas, axes = _figure(len(variables))
        fig.suptitle(title, fontsize=12)
        shapes = None
        for ax, variable in zip(axes, variables):
            rows = table[table["variable"] == variable]
            labels = pd.Series(rows[column].to_numpy(), index=rows[unit].astype(str).to_numpy())
            shapes = _categorical(ax, gdf, labels, colours, names, legend_title=legend_title, shapes=shapes)
            _finish(ax, gdf, VARIABLE_TITLES.get(variable, variable))
        return _save(fig, out, stem, formats, credit)


def _keyed(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    gdf = units.copy()
    gdf.index = gdf.index.astype(str)
    return gdf


def draw_lisa_clusters(units: gpd.GeoDataFrame, lisa: pd.DataFrame, out: str | Path, *, alpha: float, unit: str = "county",
                       formats: Sequence[str] = ("png",), credit: str = "") -> list[Path]:
    """``lisa_clusters.png``: one panel per variable, units coloured HH, LL, HL, LH or not significant.

    Parameters
    ----------
    units
        Unit polygons indexed by the unit key.
    lisa
        :attr:`carbonscape.spatial.SpatialStatistics.lisa`.
    out
        The maps folder.
    alpha
        The significance level, shown in the legend.
    """
    folder = Path(out)
    _check(folder, formats)
    return _per_variable(_keyed(units), lisa, unit, "cluster", CLUSTER_COLOURS, CLUSTER_LABELS, title="LISA clusters (local Moran's I)",
                         legend_title=f"cluster (p < {alpha:g})", out=folder, stem="lisa_clusters", formats=formats, credit=credit)


def draw_hotspots(units: gpd.GeoDataFrame, hotspots: pd.DataFrame, out: str | Path, *, alpha: float, unit: str = "county",
                  formats: Sequence[str] = ("png",), credit: str = "") -> list[Path]:
    """``hotspots.png``: one panel per variable, units coloured hot spot, cold spot or not significant."""
    folder = Path(out)
    _check(folder, formats)
    return _per_variable(_keyed(units), hotspots, unit, "spot", SPOT_COLOURS, {}, title="Getis–Ord Gi* hot and cold spots",
                         legend_title=f"Gi* (p < {alpha:g})", out=folder, stem="hotspots", formats=formats, credit=credit)


def draw_matching(units: gpd.GeoDataFrame, matching: pd.DataFrame, out: str | Path, *, unit_label: str = "t/km²",
                  formats: Sequence[str] = ("png",), credit: str = "") -> list[Path]:
    """``matching_quadrants.png`` (z-score quadrants) and ``matching_balance.png`` (supply − demand,
    diverging at zero: green surplus, red deficit).

    Parameters
    ----------
    matching
        :func:`carbonscape.matching.matching_indices`, indexed by the unit key.
    unit_label
        The unit of the balance, for its legend.
    """
    folder = Path(out)
    _check(folder, formats)
    gdf = _keyed(units)
    table = matching.copy()
    table.index = table.index.astype(str)
    written: list[Path] = []
    with _fonts():
        fig, _canvas, (ax,) = _figure(1)
        shapes = _categorical(ax, gdf, table["quadrant"].replace("", np.nan), QUADRANT_COLOURS, QUADRANT_LABELS,
                              legend_title="quadrant (z-scores)")
        _finish(ax, gdf, "Supply–demand quadrants")
        written += _save(fig, folder, "matching_quadrants", formats, credit)

        fig, _canvas, (ax,) = _figure(1)
        balance = table["balance"].reindex(gdf.index).to_numpy(dtype=float)
        finite = balance[np.isfinite(balance)]
        span = float(np.max(np.abs(finite))) if finite.size else 1.0
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-span or -1.0, vmax=span or 1.0)
        colours = colormaps["RdYlGn"](norm(np.where(np.isfinite(balance), balance, 0.0)))
        colours[~np.isfinite(balance)] = NO_VALUE
        _fill(ax, gdf, colours, shapes)
        mappable = ScalarMappable(norm=norm, cmap="RdYlGn")
        fig.colorbar(mappable, ax=ax, shrink=0.6, label=f"supply − demand ({unit_label}); > 0 surplus, < 0 deficit")
        _finish(ax, gdf, "Supply–demand balance")
        written += _save(fig, folder, "matching_balance", formats, credit)
    return written


def draw_zone_stability(units: gpd.GeoDataFrame, uncertainty: pd.DataFrame, zones: pd.Series, out: str | Path, *,
                        formats: Sequence[str] = ("png",), credit: str = "") -> list[Path]:
    """``zone_stability.png``: each unit coloured by the share of Monte Carlo draws that keep it in
    the zone the point estimate gives it (1 = always).

    Parameters
    ----------
    uncertainty
        :attr:`carbonscape.uncertainty.UncertaintyResult.by_unit` (``p_zone_<key>`` columns).
    zones
        The point estimate's zone key per unit.
    """
    folder = Path(out)
    _check(folder, formats)
    gdf = _keyed(units)
    table = uncertainty.copy()
    table.index = table.index.astype(str)
    keys = zones.copy()
    keys.index = keys.index.astype(str)
    keys = keys.reindex(gdf.index)
    share = np.array([
        float(table.at[unit, f"p_zone_{key}"]) if isinstance(key, str) and f"p_zone_{key}" in table.columns and unit in table.index else np.nan
        for unit, key in zip(gdf.index, keys)
    ])
    edges = [0.0, 0.5, 0.75, 0.9, 0.95, 1.0]
    classes = np.digitize(share, edges[1:-1], right=False)
    palette = colormaps["Blues"](np.linspace(0.15, 0.95, len(edges) - 1))
    with _fonts():
        fig, _canvas, (ax,) = _figure(1)
        fill = np.array([palette[c] if np.isfinite(s) else NO_VALUE for c, s in zip(classes, share)], dtype=float).reshape(-1, 4)
        _fill(ax, gdf, fill)
        labels = legend_labels(edges, digits=2)
        handles = [Patch(facecolor=palette[i], edgecolor="none", label=labels[i]) for i in reversed(range(len(labels)))]
        if not np.isfinite(share).all():
            handles.append(Patch(facecolor=NO_VALUE, edgecolor="none", label="no value"))
        fig.legend(handles=handles, title="share of draws in its zone", title_fontsize=7, prop={"size": 7}, frameon=False,
                   loc="outside right center")
        _finish(ax, gdf, "Zone stability under density uncertainty")
        return _save(fig, folder, "zone_stability", formats, credit)


# -- grid cells, drawn as rasters ------------------------------------------------------------------
# A study's cells can number a million: each map is one image of the cell lattice (imshow, nearest),
# not a million polygons, so drawing takes seconds whatever the number of cells.

CELL_MAP_FILES = {
    "cells_supply_demand": "Supply and demand density per cell",
    "cells_ratio_zones": "Supply–demand ratio and zones per cell",
    "cells_matching": "Supply–demand quadrants and balance per cell",
    "cells_lisa_clusters": "LISA clusters of the cells",
    "cells_hotspots": "Getis–Ord Gi* hot and cold spots of the cells",
    "cells_zone_stability": "Zone stability of the cells under density uncertainty",
}


def _lattice(cells: Any, table: pd.DataFrame, values: Any, *, fill: float = np.nan) -> np.ndarray:
    """``values`` (aligned with ``table``'s rows) laid on the cell lattice; ``fill`` elsewhere."""
    image = np.full(tuple(cells.shape), fill, dtype=np.float64)
    image[table["row"].to_numpy(), table["col"].to_numpy()] = np.asarray(values, dtype=np.float64)
    return image


def _extent(cells: Any) -> tuple[float, float, float, float]:
    a, _, c, _, e, f = cells.transform
    rows, cols = cells.shape
    return (c, c + a * cols, f + e * rows, f)


# Cells outside the study region (not in the cells' table): white, hatched in grey, named in the
# legend, unlike the grey of "no value" and the light grey of "not significant".
OUTSIDE_HATCH = "////"
OUTSIDE_EDGE = "#9a9a9a"
OUTSIDE_LABEL = "outside the study region"


def _outside_patch(**kwargs: Any) -> Patch:
    """The legend's patch of the cells outside the study region."""
    return Patch(facecolor="white", edgecolor=OUTSIDE_EDGE, hatch=OUTSIDE_HATCH, linewidth=0.0, **kwargs)


def _inside(cells: Any, table: pd.DataFrame) -> np.ndarray:
    """True on the lattice where a cell of ``table`` (the study region's cells) lies."""
    return _lattice(cells, table, np.ones(len(table)), fill=0.0) > 0


def _cell_panel(ax: Any, cells: Any, image: np.ndarray, *, cmap: Any, norm: Any, title: str, table: pd.DataFrame | None = None) -> Any:
    """One cell map: ``image`` over a hatched white ground (the cells outside the study region);
    cells of ``table`` without a value in the no-value grey."""
    left, right, bottom, top = _extent(cells)
    ax.set_facecolor("white")
    from matplotlib.patches import Rectangle

    ax.add_patch(Rectangle((left, bottom), right - left, top - bottom, facecolor="white", edgecolor=OUTSIDE_EDGE, hatch=OUTSIDE_HATCH,
                           linewidth=0.0, zorder=0))
    if table is not None:
        blank = _inside(cells, table) & ~np.isfinite(image)
        if blank.any():
            from matplotlib.colors import ListedColormap

            ax.imshow(np.ma.masked_where(~blank, np.ones(blank.shape)), cmap=ListedColormap([NO_VALUE]), extent=_extent(cells),
                      interpolation="nearest", origin="upper", zorder=1)
    shown = ax.imshow(np.ma.masked_invalid(image), cmap=cmap, norm=norm, extent=_extent(cells), interpolation="nearest", origin="upper",
                      zorder=2)
    ax.set_xlim(left, right)
    ax.set_ylim(bottom, top)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    add_scale_bar(ax, cells.grid.crs, xlim=(left, right), ylim=(bottom, top))
    add_north_arrow(ax)
    return shown


def plain_log_ticks(vmin: float, vmax: float) -> list[float]:
    """Ticks of a log colour bar from ``vmin`` to ``vmax`` at 1, 2 and 5 × 10ⁿ, or (a range narrower
    than that) four steps evenly spaced on the log scale, rounded to two significant figures."""
    if not (np.isfinite(vmin) and np.isfinite(vmax) and 0 < vmin < vmax):
        return []
    steps = [(m, m * 10.0 ** e) for e in range(math.floor(math.log10(vmin)), math.ceil(math.log10(vmax)) + 1) for m in (1, 2, 5)]
    steps = [(m, t) for m, t in steps if vmin * (1 - 1e-9) <= t <= vmax * (1 + 1e-9)]
    if len(steps) > 7:  # many decades: the powers of ten only
        steps = [(m, t) for m, t in steps if m == 1] or steps
    ticks = [float(f"{t:.6g}") for _, t in steps]
    if len(ticks) < 3:
        ticks = sorted({float(f"{t:.2g}") for t in np.geomspace(vmin, vmax, 4)})
    return ticks


def _plain_log_colorbar(colorbar: Any, norm: Any) -> None:
    """The log colour bar labelled with plain numbers (0.6, 1, 2), not powers of ten (6×10⁻¹)."""
    from matplotlib.ticker import NullFormatter

    ticks = plain_log_ticks(float(norm.vmin), float(norm.vmax))
    colorbar.ax.yaxis.set_minor_formatter(NullFormatter())
    colorbar.set_ticks(ticks, labels=[f"{t:g}" for t in ticks])


def _continuous(fig: Figure, ax: Any, cells: Any, table: pd.DataFrame, column: str, *, cmap: str, label: str, title: str,
                diverging: bool = False) -> None:
    values = table[column].to_numpy(dtype=np.float64)
    finite = values[np.isfinite(values)]
    if diverging:
        span = float(np.percentile(np.abs(finite), 98)) if finite.size else 1.0
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-(span or 1.0), vmax=span or 1.0)
        values = np.clip(values, -(span or 1.0), span or 1.0)
    else:
        # 2nd–98th percentiles: one cell of a city centre must not wash the rest of the map out.
        low, high = (float(v) for v in np.percentile(finite, [2, 98])) if finite.size else (0.0, 1.0)
        from matplotlib.colors import Normalize

        norm = Normalize(vmin=low, vmax=high if high > low else low + 1.0)
    shown = _cell_panel(ax, cells, _lattice(cells, table, values), cmap=cmap, norm=norm, title=title, table=table)
    fig.colorbar(shown, ax=ax, shrink=0.7, label=label, extend="both" if not diverging else "neither")


def _categories(fig: Figure, ax: Any, cells: Any, table: pd.DataFrame, labels: pd.Series, colours: Mapping[str, str],
                names: Mapping[str, str], *, title: str, legend_title: str) -> None:
    from matplotlib.colors import ListedColormap

    keys = list(colours)
    codes = labels.map({k: i for i, k in enumerate(keys)}).to_numpy(dtype=np.float64)
    cmap = ListedColormap([to_rgba(colours[k]) for k in keys])
    from matplotlib.colors import BoundaryNorm

    norm = BoundaryNorm(np.arange(len(keys) + 1) - 0.5, len(keys))
    _cell_panel(ax, cells, _lattice(cells, table, codes), cmap=cmap, norm=norm, title=title, table=table)
    counts = labels.value_counts()
    handles = [Patch(facecolor=colours[k], edgecolor="#8c8c8c", linewidth=0.3, label=f"{names.get(k, k)} ({int(counts[k]):,})")
               for k in keys if k in counts.index]
    missing = int(labels.isna().sum() + (~labels.dropna().isin(keys)).sum())
    if missing:
        handles.append(Patch(facecolor=NO_VALUE, edgecolor="none", label=f"no value ({missing:,})"))
    if not _inside(cells, table).all():
        handles.append(_outside_patch(label=OUTSIDE_LABEL))
    ax.legend(handles=handles, title=legend_title, title_fontsize=7, prop={"size": 7}, frameon=False, loc="upper left",
              bbox_to_anchor=(1.0, 0.5))


def draw_cell_maps(cells: Any, table: pd.DataFrame, out: str | Path, *, statistics: Any = None, uncertainty: Any = None,
                   formats: Sequence[str] = ("png",), credit: str = "") -> list[Path]:
    """The maps of a study's grid cells (:data:`CELL_MAP_FILES`), each cell one pixel of an image.

    Parameters
    ----------
    cells
        The :class:`carbonscape.cells.CellGrid`.
    table
        Per cell (:attr:`carbonscape.study.cells.CellStudy.table`): ``row, col``, the densities,
        ``ratio``, ``zone_key``, ``zone_en``, ``quadrant``, ``balance``, ``demand_unit``.
    out
        The folder of the cell maps.
    statistics, uncertainty
        The cells' spatial statistics and Monte Carlo result, or None.
    """
    from carbonscape.maps import RATIO_CMAP

    folder = Path(out)
    _check(folder, formats)
    demand_unit = str(table["demand_unit"].iloc[0]) if len(table) and "demand_unit" in table else "t/km²"
    written: list[Path] = []
    with _fonts():
        fig, _canvas, axes = _figure(2)
        fig.suptitle(CELL_MAP_FILES["cells_supply_demand"], fontsize=12)
        _continuous(fig, axes[0], cells, table, "supply_t_per_km2", cmap="YlGn", label="t C/km²", title="supply density")
        _continuous(fig, axes[1], cells, table, "demand_t_per_km2", cmap="OrRd", label=demand_unit, title="demand density")
        written += _save(fig, folder, "cells_supply_demand", formats, credit)

        fig, _canvas, axes = _figure(2)
        fig.suptitle(CELL_MAP_FILES["cells_ratio_zones"], fontsize=12)
        ratio = table["ratio"].to_numpy(dtype=np.float64)
        positive = ratio[np.isfinite(ratio) & (ratio > 0)]
        from matplotlib.colors import LogNorm

        norm = LogNorm(vmin=float(np.percentile(positive, 2)), vmax=float(np.percentile(positive, 98))) if positive.size > 1 and np.ptp(positive) > 0 else None
        shown = _cell_panel(axes[0], cells, _lattice(cells, table, np.where(np.isfinite(ratio) & (ratio > 0), ratio, np.nan)),
                            cmap=RATIO_CMAP, norm=norm, title="supply–demand ratio (log scale)", table=table)
        bar = fig.colorbar(shown, ax=axes[0], shrink=0.7, label=f"demand ({demand_unit}) / supply (t C/km²)", extend="both")
        if isinstance(norm, LogNorm):
            _plain_log_colorbar(bar, norm)
        # Each zone coloured by where its classes sit on the ratio scale (low ratio green, high red, as
        # the county maps), listed from the highest ratio down.
        top = max(int(table["class"].max()), 2) if len(table) else 2
        position = table[table["class"] > 0].groupby("zone_key")["class"].mean().sort_values(ascending=False)
        zone_colours = {key: colormaps[RATIO_CMAP]((mean - 1) / (top - 1)) for key, mean in position.items()}
        names = dict(zip(table["zone_key"], table["zone_en"].where(table["zone_en"].astype(str) != "", table["zone_key"]))) if "zone_en" in table else {}
        _categories(fig, axes[1], cells, table, table["zone_key"], zone_colours, names, title="zones", legend_title="zone")
        written += _save(fig, folder, "cells_ratio_zones", formats, credit)

        if "quadrant" in table.columns:
            fig, _canvas, axes = _figure(2)
            fig.suptitle(CELL_MAP_FILES["cells_matching"], fontsize=12)
            _categories(fig, axes[0], cells, table, table["quadrant"].replace("", np.nan), QUADRANT_COLOURS, QUADRANT_LABELS,
                        title="quadrants", legend_title="quadrant (z-scores)")
            label = "t C/km²" if demand_unit == "t C/km²" else f"t C/km² − {demand_unit}"
            _continuous(fig, axes[1], cells, table, "balance", cmap="RdYlGn", label=f"supply − demand ({label})", title="balance",
                        diverging=True)
            written += _save(fig, folder, "cells_matching", formats, credit)

        if statistics is not None:
            for stem, frame, column, colours, names_, legend in (
                    ("cells_lisa_clusters", statistics.lisa, "cluster", CLUSTER_COLOURS, CLUSTER_LABELS, "cluster"),
                    ("cells_hotspots", statistics.hotspots, "spot", SPOT_COLOURS, {}, "Gi*")):
                variables = list(dict.fromkeys(frame["variable"]))
                if not variables:
                    continue
                fig, _canvas, axes = _figure(len(variables))
                fig.suptitle(CELL_MAP_FILES[stem], fontsize=12)
                for ax, variable in zip(axes, variables):
                    rows = frame[frame["variable"] == variable].set_index("cell")[column]
                    _categories(fig, ax, cells, table, rows.reindex(table.index), colours, names_,
                                title=VARIABLE_TITLES.get(variable, variable), legend_title=f"{legend} (p < {statistics.settings.alpha:g})")
                written += _save(fig, folder, stem, formats, credit)

        if uncertainty is not None and "zone_key" in table.columns:
            by_unit = uncertainty.by_unit.reindex(table.index)
            share = np.array([by_unit.at[i, f"p_zone_{k}"] if isinstance(k, str) and f"p_zone_{k}" in by_unit.columns else np.nan
                              for i, k in zip(table.index, table["zone_key"])], dtype=np.float64)
            fig, _canvas, (ax,) = _figure(1)
            from matplotlib.colors import Normalize

            shown = _cell_panel(ax, cells, _lattice(cells, table, share), cmap="Blues", norm=Normalize(0.0, 1.0),
                                title=CELL_MAP_FILES["cells_zone_stability"], table=table)
            fig.colorbar(shown, ax=ax, shrink=0.7, label="share of draws in its zone")
            written += _save(fig, folder, "cells_zone_stability", formats, credit)
    return written
