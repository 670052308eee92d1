"""Maps of a study (the paper's Figs. 1–5 and the carbon-per-pixel map), drawn headless.

Figures are built with :class:`matplotlib.figure.Figure` and the Agg canvas directly, not pyplot,
so drawing touches no global state and never picks a GUI backend. Text is drawn in DejaVu Sans
with the bundled Noto Sans CJK SC as per-glyph fallback (:mod:`carbonscape.fonts`), so Chinese
names render on any machine.

Every county is identifiable on Figs. 2–5: its name where the name fits inside it, otherwise a
number (inside it, on it, or beside it with a leader line) and a key beside the map; the key is
also written to ``maps/county_key.csv``. The placement is computed once and shared by the four
maps, so a county has the same number on each. Each sheet carries the study's name, year, data
sources and CRS, and is sized to the region's shape so the map fills its frame.

Colours follow one logic: the supply–demand ratio runs from green (low ratio: supply exceeds
demand) to red (high ratio), in Fig. 4's classes and in Fig. 5's zones alike, and legends list the
highest class (or zone) first.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import math
import os
import textwrap
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import matplotlib
import matplotlib.image
import numpy as np
import pandas as pd
import shapely
from carbonscape.breaks import classify, natural_breaks
from carbonscape.errors import InputError
from carbonscape.fonts import FONT_FAMILIES, LATIN_FAMILY, register_cjk_font
from carbonscape.zoning import zone_groups, zone_keys
from matplotlib import colormaps, patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ft2font import RenderMode
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.patches import Patch
from matplotlib.path import Path as MplPath
from matplotlib.textpath import TextToPath

log = logging.getLogger(__name__)

MAP_FILES = {
    "fig1_supply_by_class": "Carbon supply by county for each land-use class",
    "fig2_supply": "Carbon supply by county",
    "fig3_demand": "Carbon demand by county",
    "fig4_ratio": "Supply–demand ratio by county",
    "fig5_zones": "Functional zones",
    "carbon_per_pixel": "Carbon per pixel",
}
KEY_FILE = "county_key.csv"
FORMATS = ("png", "svg", "pdf")
DPI = 150
# Low ratio (supply exceeds demand) green, high ratio red: Fig. 4's classes and Fig. 5's zones.
RATIO_CMAP = "RdYlGn_r"
NO_VALUE = (0.85, 0.85, 0.85, 1.0)
NO_SUPPLY = (0.15, 0.15, 0.15, 1.0)  # beyond the top red: a zero supply makes the ratio infinite
HALO = [patheffects.withStroke(linewidth=2.0, foreground="white")]
NAME_SIZE = 6.0  # points
NUMBER_SIZE = 5.0
KEY_SIZE = 6.0
LEGEND_SIZE = 7.5
KEY_TITLE = "counties by number"
# Sheet geometry, inches: title band, credit band, margins, legend column.
TOP, BOTTOM, LEFT, GAP = 0.75, 0.55, 0.25, 0.2
# Fig. 1 names or numbers every county on every panel up to this many texts (counties × panels).
FIG1_MAX_TEXTS = 12_000
# Demand density (t CO2/km²) in counties.gpkg: the current name first, then an older one.
DEMAND_COLUMNS = ("demand_t_co2_per_km2", "demand_demand_t_per_km2")


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


# --------------------------------------------------------------------------------------------
# What the maps are drawn from


@dataclass
class MapInputs:
    """Everything the maps show, in memory.

    ``counties`` holds one row per county: a string ``county`` key, the polygons, and the figure
    columns (``supply_t``, ``demand_t_co2_per_km2``, ``ratio``, ``ratio_infinite``, ``class``,
    ``zone``, ``zone_en``, ``zone_key``; any may be missing and its map is then skipped).
    """

    counties: gpd.GeoDataFrame
    edges: np.ndarray | None = None  # the study's ratio class edges (Fig. 4)
    by_class: pd.DataFrame | None = None  # supply by land-use class: lucode, name, supply_t, share_pct, [name_zh]
    by_county_class: pd.DataFrame | None = None  # county, lucode, supply_t
    overview: Path | None = None  # carbon per pixel, a small GeoTIFF
    study: str = ""
    year: int | None = None
    sources: tuple[str, ...] = ()
    version: str = ""
    notes: dict[str, Any] = field(default_factory=dict)
    # The counties' outlines prepared for drawing (:func:`prepare_shapes`), built on first use.
    shapes: Shapes | None = field(default=None, repr=False, compare=False)

    def shapes_for(self, sheet: Sheet) -> Shapes:
        """The outlines simplified to a pixel of ``sheet`` (Figs. 2–5's frame; Fig. 1's smaller
        panels reuse them), prepared once."""
        if self.shapes is None:
            self.shapes = prepare_shapes(self.counties.geometry, tolerance=pixel_tolerance(sheet.xlim, sheet.ylim, sheet.width, sheet.height))
        return self.shapes


def crs_label(crs: Any) -> str:
    """A short, readable name of a CRS: its name (or projection and datum) and EPSG code."""
    if crs is None:
        return "CRS unknown"
    name = crs.name if crs.name and crs.name.lower() != "unknown" else ""
    if not name:
        method = crs.coordinate_operation.method_name if crs.coordinate_operation is not None else ""
        datum = crs.datum.name if crs.datum is not None else ""
        name = ", ".join(part for part in (method, datum.replace("Unknown based on ", "")) if part) or "custom CRS"
    epsg = crs.to_epsg(min_confidence=90)
    return f"{name} (EPSG:{epsg})" if epsg else name


def credit_line(inputs: MapInputs) -> str:
    """The sheet's source line: study, year, data sources, CRS, software."""
    return _credit(inputs.study, inputs.year, inputs.sources, inputs.counties.crs, inputs.version)


def _credit(study: str, year: Any, sources: Sequence[str], crs: Any, version: str) -> str:
    parts = [study or "carbonscape study"]
    if year:
        parts.append(str(year))
    if sources:
        parts.append("data: " + "; ".join(sources))
    parts.append("CRS: " + crs_label(crs))
    parts.append(f"carbonscape {version}".strip())
    return " · ".join(parts)


def result_credit(result: Any, crs: Any = None) -> str:
    """The credit line of :func:`credit_line` for any map of a study result (the spatial statistics,
    matching, uncertainty and cell maps): from its record (``run_info``) and ``crs`` (default: the
    county polygons')."""
    info = getattr(result, "run_info", None) or {}
    study = info.get("study") or {}
    if crs is None and getattr(result, "polygons", None) is not None:
        crs = result.polygons.crs
    return _credit(str(study.get("name") or ""), study.get("year"), sources_of(info), crs, str(info.get("carbonscape", "")))


# --------------------------------------------------------------------------------------------
# County outlines prepared once for drawing

@dataclass(frozen=True)
class Shapes:
    """The counties' outlines as matplotlib paths, one compound path per county (its polygons and
    holes), simplified to about a pixel of the map they are drawn on; built once and drawn on
    every figure as one :class:`~matplotlib.collections.PathCollection`.

    geopandas' ``plot`` builds a patch per polygon and redraws the whole figure on each call (its
    ``draw_idle`` renders on the Agg canvas): at 2,900 counties that was most of the maps' time.
    """

    paths: tuple[MplPath, ...]
    bounds: tuple[float, float, float, float]

    def __len__(self) -> int:
        return len(self.paths)


def prepare_shapes(geometries: Any, *, tolerance: float = 0.0) -> Shapes:
    """County outlines for drawing: simplified by ``tolerance`` (data units; 0 keeps every vertex)
    with the shared borders simplified alike (:func:`shapely.coverage_simplify`, Visvalingam–Whyatt;
    a topology-preserving simplification of each county where the counties do not form a clean
    coverage), exteriors counter-clockwise and holes clockwise, one path per county.

    Parameters
    ----------
    geometries
        ``n`` polygons or multipolygons (a GeoSeries, array or list); None or empty ones get an
        empty path.
    tolerance
        About one pixel of the output, in the geometries' units.
    """
    geoms = np.asarray(getattr(geometries, "values", geometries), dtype=object)
    geoms = np.array([g if g is not None else shapely.Polygon() for g in geoms], dtype=object)
    n = len(geoms)
    bounds = tuple(float(v) for v in shapely.total_bounds(geoms)) if n else (0.0, 0.0, 1.0, 1.0)
    if tolerance > 0 and n:
        try:
            simplified = shapely.coverage_simplify(geoms, tolerance)
            ok = shapely.is_valid(simplified) & ~shapely.is_empty(simplified) | shapely.is_empty(geoms)
            geoms = np.where(ok, simplified, shapely.simplify(geoms, tolerance / 2, preserve_topology=True))
        except Exception:  # noqa: BLE001 - GEOS refuses a non-coverage (overlaps, invalid rings)
            geoms = shapely.simplify(geoms, tolerance / 2, preserve_topology=True)
    geoms = shapely.orient_polygons(geoms)
    parts, part_of = shapely.get_parts(geoms, return_index=True)
    rings, ring_of = shapely.get_rings(parts, return_index=True)
    coords, coord_of = shapely.get_coordinates(rings, return_index=True)
    codes = np.full(len(coords), MplPath.LINETO, dtype=MplPath.code_type)
    if len(coords):
        starts = np.r_[0, np.flatnonzero(np.diff(coord_of)) + 1]
        codes[starts] = MplPath.MOVETO
        codes[np.r_[starts[1:], len(coords)] - 1] = MplPath.CLOSEPOLY
    county_of = part_of[ring_of][coord_of] if len(coords) else np.zeros(0, dtype=np.int64)
    cuts = np.searchsorted(county_of, np.arange(n + 1))
    paths = tuple(MplPath(coords[a:b], codes[a:b]) for a, b in zip(cuts[:-1], cuts[1:]))
    return Shapes(paths=paths, bounds=bounds)


def pixel_tolerance(xlim: tuple[float, float], ylim: tuple[float, float], width_in: float, height_in: float, *,
                    dpi: float = DPI) -> float:
    """One pixel of a map ``width_in`` × ``height_in`` inches showing ``xlim`` × ``ylim``, in data units."""
    return min((xlim[1] - xlim[0]) / max(width_in * dpi, 1.0), (ylim[1] - ylim[0]) / max(height_in * dpi, 1.0))


def draw_shapes(ax: Any, shapes: Shapes, colours: Any, *, edgecolor: Any, linewidth: float, autoscale: bool = False) -> PathCollection:
    """Fill each county with its colour and outline it: one collection, one draw call.

    ``colours`` holds one colour per county (or one for all; ``"none"`` for outlines only).
    With ``autoscale`` the axes' limits are set from the counties' bounds, as geopandas does.
    """
    collection = PathCollection(list(shapes.paths), facecolors=colours, edgecolors=edgecolor, linewidths=linewidth)
    ax.add_collection(collection, autolim=False)
    if autoscale:
        x0, y0, x1, y1 = shapes.bounds
        ax.update_datalim([(x0, y0), (x1, y1)])
        ax.autoscale_view()
    return collection


# --------------------------------------------------------------------------------------------
# One geometry for every single-map sheet, and county names or numbers placed once


@dataclass(frozen=True)
class Sheet:
    """The map frame shared by Figs. 2–5: its size in inches and its data limits."""

    width: float
    height: float
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    @property
    def scale(self) -> tuple[float, float]:
        """Pixels per data unit in x and y at :data:`DPI`."""
        return (self.width * DPI / (self.xlim[1] - self.xlim[0]), self.height * DPI / (self.ylim[1] - self.ylim[0]))


def sheet_for(gdf: gpd.GeoDataFrame) -> Sheet:
    """A frame of the region's own shape: 7 in along its longer side for up to 300 counties,
    larger for more (up to 20 in), so counties keep room for a name or a number."""
    left, bottom, right, top = (float(v) for v in gdf.total_bounds)
    if not all(np.isfinite([left, bottom, right, top])):
        left, bottom, right, top = 0.0, 0.0, 1.0, 1.0
    width, height = max(right - left, 1e-9), max(top - bottom, 1e-9)
    pad_x, pad_y = 0.03 * width, 0.03 * height  # a margin on each side, as a share of each span
    left, right, bottom, top = left - pad_x, right + pad_x, bottom - pad_y, top + pad_y
    # On a geographic CRS a degree of longitude is shorter than one of latitude (as geopandas draws).
    stretch = 1.0
    if gdf.crs is not None and gdf.crs.is_geographic:
        stretch = 1.0 / max(math.cos(math.radians((bottom + top) / 2)), 0.1)
    data_w, data_h = right - left, (top - bottom) * stretch
    longer = float(np.clip(7.0 * math.sqrt(max(len(gdf), 1) / 300), 7.0, 20.0))
    if data_h >= data_w:
        h, w = longer, longer * data_w / data_h
    else:
        w, h = longer, longer * data_h / data_w
    # A very thin region: widen the frame's short side rather than draw a sliver.
    if w < 3.0:
        extra = (3.0 / w - 1) * (right - left) / 2
        left, right, w = left - extra, right + extra, 3.0
    if h < 3.0:
        extra = (3.0 / h - 1) * (top - bottom) / 2
        bottom, top, h = bottom - extra, top + extra, 3.0
    return Sheet(width=w, height=h, xlim=(left, right), ylim=(bottom, top))


@dataclass(frozen=True)
class PlacedText:
    """A county name or number at ``(x, y)`` (data units, centred), with an optional leader line
    from ``anchor`` (a point inside the county) when the number sits beside its county."""

    county: str
    kind: str  # "name" or "number"
    text: str
    x: float
    y: float
    size: float
    anchor: tuple[float, float] | None = None
    crowded: bool = False  # no free spot was found: drawn at its county, over a neighbour's text


@dataclass
class Placement:
    texts: list[PlacedText]
    key: list[tuple[int, str]]  # (number, county) of counties drawn by number

    def of(self, county: str) -> list[PlacedText]:
        return [t for t in self.texts if t.county == county]


class _Boxes:
    """Boxes already taken, hashed on a grid so a new box is checked only against its neighbours."""

    def __init__(self, cell: float) -> None:
        self.cell = max(cell, 1e-12)
        self.grid: dict[tuple[int, int], list[tuple[float, float, float, float]]] = defaultdict(list)

    def _cells(self, box: tuple[float, float, float, float]) -> Iterator[tuple[int, int]]:
        x0, y0, x1, y1 = box
        for i in range(int(math.floor(x0 / self.cell)), int(math.floor(x1 / self.cell)) + 1):
            for j in range(int(math.floor(y0 / self.cell)), int(math.floor(y1 / self.cell)) + 1):
                yield i, j

    def free(self, box: tuple[float, float, float, float]) -> bool:
        x0, y0, x1, y1 = box
        for cell in self._cells(box):
            for a0, b0, a1, b1 in self.grid[cell]:
                if x0 < a1 and a0 < x1 and y0 < b1 and b0 < y1:
                    return False
        return True

    def add(self, box: tuple[float, float, float, float]) -> None:
        for cell in self._cells(box):
            self.grid[cell].append(box)


def reserved_boxes(sheet: Sheet) -> list[tuple[float, float, float, float]]:
    """Where the scale bar (lower left, at most a fifth of the width: :func:`add_scale_bar`) and
    the north arrow (upper right: :func:`add_north_arrow`) are drawn, in data units."""
    (x0, x1), (y0, y1) = sheet.xlim, sheet.ylim
    w, h = x1 - x0, y1 - y0
    inch_x, inch_y = w / sheet.width, h / sheet.height
    bar = (x0 + 0.04 * w - 0.05 * inch_x, y0 + 0.03 * h - 0.06 * inch_y, x0 + 0.24 * w + 0.05 * inch_x, y0 + 0.042 * h + 0.2 * inch_y)
    arrow = (x0 + 0.96 * w - 0.12 * inch_x, y0 + 0.88 * h - 0.12 * inch_y, x0 + 0.96 * w + 0.12 * inch_x, y0 + 0.97 * h + 0.03 * inch_y)
    return [bar, arrow]


def place_county_texts(gdf: gpd.GeoDataFrame, sheet: Sheet, *, names: Sequence[str] | None = None, name_size: float = NAME_SIZE,
                       number_size: float = NUMBER_SIZE, numbers: dict[str, int] | None = None) -> Placement:
    """Place each county's name where its whole box fits inside the county and overlaps nothing
    placed before (larger counties first); number the others in reading order (north to south,
    west to east) and place each number inside its county, else over it, else beside it with a
    leader line, never over another text when any free spot exists.

    Parameters
    ----------
    gdf
        Counties with a ``county`` column (the text drawn unless ``names`` is given).
    sheet
        The frame the texts will be drawn in (sizes in points become data units through it).
    numbers
        Counties (by ``county`` key) that keep the number they have elsewhere (Fig. 1's panels
        keep the numbers of Figs. 2–5); they are numbered, never named, and the other counties
        drawn by number are numbered after the largest of them.

    Returns
    -------
    Placement
        The texts, and the key of numbered counties.
    """
    register_cjk_font()
    names = [str(n) for n in (gdf["county"] if names is None else names)]
    keys = gdf["county"].astype(str).tolist()
    geoms = np.asarray(gdf.geometry.to_numpy(), dtype=object)
    n = len(keys)
    sx, sy = sheet.scale
    name_font, number_font = float(name_size), float(number_size)

    def half(text: str, size: float) -> tuple[float, float]:
        # A text's box is at least as tall as "lp" (matplotlib's line height), whatever it holds.
        w, h = _text_size(text, size)
        _, h_line = _text_size("lp", size)
        return (w / 2 + 2.0) / sx, (max(h, h_line) / 2 + 1.5) / sy

    (ax0, ax1), (ay0, ay1) = sheet.xlim, sheet.ylim
    hw0, hh0 = half("000", number_font)
    taken = _Boxes(cell=8 * max(hw0, hh0))
    for box in reserved_boxes(sheet):
        taken.add(box)

    valid = np.array([g is not None and not g.is_empty for g in geoms], dtype=bool)
    centres = np.full((n, 2), np.nan)
    if valid.any():
        shapely.prepare(geoms[valid])
        tolerance = max(ax1 - ax0, ay1 - ay0) / 500
        circles = shapely.maximum_inscribed_circle(geoms[valid], tolerance)
        centres[valid] = shapely.get_coordinates(shapely.get_point(circles, 0))

    def candidates(i: int) -> list[tuple[float, float]]:
        geom = geoms[i]
        points = [tuple(centres[i])]
        centroid = geom.centroid
        if geom.contains(centroid):
            points.insert(0, (centroid.x, centroid.y))  # the visual centre of a compact county
        rep = geom.representative_point()
        points.append((rep.x, rep.y))
        return points

    def box_at(x: float, y: float, hw: float, hh: float) -> tuple[float, float, float, float]:
        return (x - hw, y - hh, x + hw, y + hh)

    def inside_frame(box: tuple[float, float, float, float]) -> bool:
        return ax0 <= box[0] and box[2] <= ax1 and ay0 <= box[1] and box[3] <= ay1

    texts: list[PlacedText] = []
    named = np.zeros(n, dtype=bool)
    areas = np.array([g.area if ok else 0.0 for g, ok in zip(geoms, valid)])
    fixed = {k: int(v) for k, v in (numbers or {}).items()}
    for i in np.argsort(-areas, kind="stable"):
        if not valid[i] or not names[i].strip() or keys[i] in fixed:
            continue
        hw, hh = half(names[i], name_font)
        for x, y in candidates(i):
            box = box_at(x, y, hw, hh)
            if inside_frame(box) and taken.free(box) and geoms[i].contains(shapely.box(*box)):
                taken.add(box)
                texts.append(PlacedText(keys[i], "name", names[i], x, y, name_size))
                named[i] = True
                break

    unnamed = [i for i in range(n) if valid[i] and not named[i]]
    # Reading order: rows of a twentieth of the frame's height from the north, then west to east.
    band = (ay1 - ay0) / 20
    unnamed.sort(key=lambda i: (-math.floor((centres[i][1] - ay0) / band), centres[i][0]))
    start = max(fixed.values(), default=0)
    free = [i for i in unnamed if keys[i] not in fixed]
    numbers = {i: start + k + 1 for k, i in enumerate(free)} | {i: fixed[keys[i]] for i in unnamed if keys[i] in fixed}
    # The smallest counties have the fewest free spots: they choose first.
    for i in sorted(unnamed, key=lambda i: areas[i]):
        label = str(numbers[i])
        hw, hh = half(label, number_font)
        spots = candidates(i)
        placed = None
        for x, y in spots:  # inside the county
            box = box_at(x, y, hw, hh)
            if inside_frame(box) and taken.free(box) and geoms[i].contains(shapely.box(*box)):
                placed = (x, y, None)
                break
        if placed is None:  # over the county, across its border
            for x, y in spots:
                box = box_at(x, y, hw, hh)
                if inside_frame(box) and taken.free(box):
                    placed = (x, y, None)
                    break
        if placed is None:  # beside it, with a leader line
            cx, cy = spots[0]
            step = 2.2 * math.hypot(hw, hh)
            for ring in (1, 1.6, 2.4, 3.5, 5, 7):
                for angle in np.radians([45, 135, 225, 315, 90, 270, 0, 180, 22.5, 67.5, 112.5, 157.5, 202.5, 247.5, 292.5, 337.5]):
                    x, y = cx + ring * step * math.cos(angle), cy + ring * step * math.sin(angle)
                    box = box_at(x, y, hw, hh)
                    if inside_frame(box) and taken.free(box):
                        placed = (x, y, (cx, cy))
                        break
                if placed is not None:
                    break
        crowded = placed is None
        if placed is None:
            placed = (spots[0][0], spots[0][1], None)
        x, y, anchor = placed
        taken.add(box_at(x, y, hw, hh))
        texts.append(PlacedText(keys[i], "number", label, x, y, number_size, anchor=anchor, crowded=crowded))
    key = [(numbers[i], names[i]) for i in unnamed]
    key.sort()
    return Placement(texts=texts, key=key)


def _family(text: str) -> list[str] | str:
    """DejaVu Sans alone for a text it fully covers (numbers, Latin names: no per-glyph fallback to
    look up), else DejaVu Sans with the CJK fallback."""
    return LATIN_FAMILY if text.isascii() else FONT_FAMILIES


@functools.lru_cache(maxsize=65_536)
def _text_size(text: str, size: float) -> tuple[float, float]:
    """Width and height (pixels at :data:`DPI`) of ``text`` at ``size`` points as Agg draws it, in
    the family :func:`draw_county_texts` gives it (remembered: Fig. 1's panels place the same texts again)."""
    w, h, _ = _MEASURE.get_text_width_height_descent(text, FontProperties(family=_family(text), size=size), ismath=False)
    return w, h


class _TextToPath(TextToPath):
    """matplotlib's text-to-path conversion with one glyph map for every text: each glyph's outline
    is read from the font once, not once per text (a nation's 2,900 haloed numbers are drawn as
    paths). The outlines are those matplotlib reads (same font, size and flags), so the paths are
    the same."""

    def __init__(self) -> None:
        super().__init__()
        self._outlines: dict[Any, Any] = {}

    def get_glyphs_with_font(self, font: Any, s: str, glyph_map: Any = None, return_new_glyphs_only: bool = False,
                             **kwargs: Any) -> Any:
        if glyph_map is not None or return_new_glyphs_only:
            return super().get_glyphs_with_font(font, s, glyph_map=glyph_map, return_new_glyphs_only=return_new_glyphs_only, **kwargs)
        glyphs, new, rects = super().get_glyphs_with_font(font, s, glyph_map=self._outlines, return_new_glyphs_only=True, **kwargs)
        self._outlines.update(new)
        return glyphs, self._outlines, rects


# Text metrics by (dpi, text, font properties), shared by the renderers of one drawing (cleared by
# :func:`draw_maps`): the county names and numbers measured to place them are the texts drawn.
_METRICS: dict[tuple[float, str, FontProperties], tuple[float, float, float]] = {}
_TEXT_TO_PATH = _TextToPath()


class _Renderer(RendererAgg):
    """Agg, remembering text metrics across figures and glyph outlines across texts: what the maps
    draw is unchanged, each text is measured and each glyph read once."""

    def __init__(self, width: int, height: int, dpi: float) -> None:
        super().__init__(width, height, dpi)
        self._text2path = _TEXT_TO_PATH

    def get_text_width_height_descent(self, s: str, prop: FontProperties, ismath: Any) -> tuple[float, float, float]:
        if ismath:
            return super().get_text_width_height_descent(s, prop, ismath)
        key = (float(self.dpi), s, prop)
        found = _METRICS.get(key)
        if found is None:
            found = _METRICS[(float(self.dpi), s, prop.copy())] = super().get_text_width_height_descent(s, prop, ismath)
        return found


    def _draw_text_glyphs_and_boxes(self, gc: Any, x: float, y: float, angle: float, glyphs: Any, boxes: Any) -> None:
        """matplotlib's own glyph drawing (:meth:`RendererAgg._draw_text_glyphs_and_boxes`), each
        glyph's bitmap rendered by FreeType once per sub-pixel phase and reused: FreeType moves a
        glyph by a whole pixel without changing its bitmap, so a glyph at the same fraction of a
        pixel is the same bitmap one or more pixels over. Upright, unslanted glyphs only (the maps'
        texts); anything else is drawn as matplotlib draws it."""
        if angle:
            return super()._draw_text_glyphs_and_boxes(gc, x, y, angle, glyphs, boxes)
        load_flags = get_hinting_flag()
        antialiased = bool(gc.get_antialiased())
        mode = RenderMode.NORMAL if antialiased else RenderMode.MONO
        height = int(self.height)
        rest, last = [], {}
        for glyph in glyphs:
            font, size, glyph_index, slant, extend, dx, dy = glyph
            if slant or extend != 1:
                rest.append(glyph)
                continue
            # As matplotlib computes them at angle 0 (cos 1, sin 0), in 26.6 fixed point.
            tx, ty = round(0x40 * (x + dx)), round(0x40 * (self.height - y + dy))
            key = (font.fname, font.postscript_name, size, self.dpi, glyph_index, load_flags, antialiased, tx & 0x3F, ty & 0x3F)
            found = _GLYPHS.get(key)
            if found is None:
                font.set_size(size, self.dpi)
                font._set_transform(np.array([[0x10000, 0], [0, 0x10000]]), [tx & 0x3F, ty & 0x3F])
                bitmap = font._render_glyph(glyph_index, load_flags, mode)
                buffer = np.array(bitmap.buffer)
                if not antialiased:
                    buffer *= 0xFF
                found = _GLYPHS[key] = (buffer, int(bitmap.left), int(bitmap.top))
            buffer, left, top = found
            self._renderer.draw_text_image(buffer, left + (tx >> 6), height - (top + (ty >> 6)) + buffer.shape[0], 0, gc)
            last[id(font)] = (font, size, tx, ty)
        for font, size, tx, ty in last.values():  # each font left as matplotlib leaves it: at its last glyph
            font.set_size(size, self.dpi)
            font._set_transform(np.array([[0x10000, 0], [0, 0x10000]]), [tx, ty])
        if rest or boxes:
            super()._draw_text_glyphs_and_boxes(gc, x, y, angle, rest, boxes)


# Glyph bitmaps by font, size, dpi, glyph, flags and sub-pixel phase (see _Renderer).
_GLYPHS: dict[tuple[Any, ...], tuple[np.ndarray, int, int]] = {}


class _Canvas(FigureCanvasAgg):
    """The Agg canvas of every map sheet, drawing with :class:`_Renderer`."""

    def get_renderer(self) -> RendererAgg:
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = _Renderer(w, h, self.figure.dpi)
            self._lastKey = key
        return self.renderer


_MEASURE = _Renderer(8, 8, DPI)


def draw_county_texts(ax: Any, placement: Placement) -> list[Any]:
    """Draw the placed names and numbers (dark, white halo) and the numbers' leader lines (one
    collection). Each text's gid is ``"name:<county>"`` or ``"number:<county>"``. Returns the
    artists drawn."""
    artists: list[Any] = []
    leaders = [[item.anchor, (item.x, item.y)] for item in placement.texts if item.anchor is not None]
    if leaders:
        lines = LineCollection(leaders, colors="#333333", linewidths=0.35, zorder=5,
                               path_effects=[patheffects.Stroke(linewidth=1.2, foreground="white"), patheffects.Normal()])
        lines.set_gid("leader_lines")
        ax.add_collection(lines, autolim=False)
        artists.append(lines)
    for item in placement.texts:
        text = ax.text(item.x, item.y, item.text, ha="center", va="center", fontsize=item.size, color="#1a1a1a",
                       path_effects=HALO, zorder=6, fontfamily=_family(item.text))
        text.set_gid(f"{item.kind}:{item.county}")
        artists.append(text)
    return artists


def label_counties(fig: Figure, ax: Any, gdf: gpd.GeoDataFrame, *, names: Sequence[str] | None = None) -> Placement:
    """Name or number every county of an existing axes (its current size and limits), as on
    Figs. 2–5. Returns the placement (its ``key`` lists the numbered counties)."""
    fig.draw_without_rendering()
    bbox = ax.get_window_extent()
    sheet = Sheet(width=bbox.width / fig.dpi, height=bbox.height / fig.dpi, xlim=tuple(ax.get_xlim()), ylim=tuple(ax.get_ylim()))
    if fig.dpi != DPI:
        sheet = Sheet(width=sheet.width * fig.dpi / DPI, height=sheet.height * fig.dpi / DPI, xlim=sheet.xlim, ylim=sheet.ylim)
    placement = place_county_texts(gdf, sheet, names=names)
    draw_county_texts(ax, placement)
    return placement


# --------------------------------------------------------------------------------------------
# Sheets


def add_scale_bar(ax: Any, crs: Any, *, xlim: tuple[float, float] | None = None, ylim: tuple[float, float] | None = None) -> None:
    """A round-length scale bar at the lower left, haloed to read on any fill.

    ``crs`` is the map's CRS, or a GeoDataFrame whose CRS and bounds are used (limits default to
    its bounds, else to the axes' limits)."""
    if isinstance(crs, gpd.GeoDataFrame):
        x0, y0, x1, y1 = (float(v) for v in crs.total_bounds)
        xlim, ylim, crs = xlim or (x0, x1), ylim or (y0, y1), crs.crs
    left, right = xlim or ax.get_xlim()
    bottom, top = ylim or ax.get_ylim()
    if crs is not None and crs.is_geographic:
        from pyproj import Geod

        mid = (bottom + top) / 2
        metres_per_unit = Geod(ellps="WGS84").inv(left, mid, right, mid)[2] / max(right - left, 1e-12)
    else:
        metres_per_unit = crs.axis_info[0].unit_conversion_factor if crs is not None else 1.0
    width_m = (right - left) * metres_per_unit
    if not width_m > 0:
        return
    length_m = nice_scale_length(width_m)
    length_units = length_m / metres_per_unit
    x0 = left + (right - left) * 0.04
    y0 = bottom + (top - bottom) * 0.03
    ax.plot([x0, x0 + length_units], [y0, y0], color="black", linewidth=2.5, solid_capstyle="butt", zorder=6,
            path_effects=[patheffects.Stroke(linewidth=4.5, foreground="white"), patheffects.Normal()])
    ax.text(x0 + length_units / 2, y0 + (top - bottom) * 0.012, f"{length_m / 1000:g} km" if length_m >= 1000 else f"{length_m:g} m",
            ha="center", va="bottom", fontsize=7, path_effects=HALO, zorder=6)


def add_north_arrow(ax: Any) -> None:
    """An "N" arrow at the upper right (maps are north-up), haloed to read on any fill."""
    arrow = ax.annotate("N", xy=(0.96, 0.97), xytext=(0.96, 0.88), xycoords="axes fraction", ha="center", va="center", fontsize=9,
                        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.2}, path_effects=HALO, zorder=6)
    arrow.arrow_patch.set_path_effects([patheffects.Stroke(linewidth=3.0, foreground="white"), patheffects.Normal()])


def _edge_width(n_counties: int) -> float:
    """County borders thin out with their number, so 3,000 borders do not hide the colours."""
    return float(np.clip(2.0 / math.sqrt(max(n_counties, 1)), 0.05, 0.4))


@dataclass
class _SheetFigure:
    fig: Figure
    canvas: FigureCanvasAgg
    ax: Any
    legend_x: float  # figure fraction where the legend column starts
    top: float  # figure fraction of the map's top edge
    key_texts: list[Any] = field(default_factory=list)  # the county key's texts, beside the legend
    key_x: float = 0.0  # inches from the sheet's left edge to the key


def _key_columns(sheet: Sheet, key: list[tuple[int, str]]) -> tuple[int, int, float]:
    """Rows per column, columns and column width (in) of the key beside the map."""
    if not key:
        return 0, 0, 0.0
    line = KEY_SIZE * 1.4 / 72
    rows = max(int((sheet.height - 0.25) / line), 1)
    columns = math.ceil(len(key) / rows)
    width = _text_width([f"{number} {name}" for number, name in key], KEY_SIZE) + 0.15
    if columns == 1:
        width = max(width, _text_width([KEY_TITLE], LEGEND_SIZE) + 0.1)
    return rows, columns, width


def _text_width(texts: Sequence[str], size: float) -> float:
    """Widest of ``texts`` at ``size`` points, in inches, as Agg draws them (with the CJK fallback)."""
    return _widest(tuple(texts), float(size))


# Past this many texts, only the widest by an estimate (the sum of their characters' widths) are measured.
MEASURED_TEXTS = 40


@functools.lru_cache(maxsize=64)
def _widest(texts: tuple[str, ...], size: float) -> float:
    """:func:`_text_width`, remembered: Figs. 2–5 share one key of up to thousands of names. Of many
    texts, the :data:`MEASURED_TEXTS` widest by the sum of their characters' widths are measured
    whole (kerning moves a width by far less than the gap between them and the rest)."""
    renderer = RendererAgg(10, 10, 72)
    font = FontProperties(family=FONT_FAMILIES, size=size)

    def measure(text: str) -> float:
        return renderer.get_text_width_height_descent(text, font, ismath=False)[0] / 72

    if len(texts) > MEASURED_TEXTS:
        chars = {ch: measure(ch) if not ch.isspace() else measure("a a") - measure("aa") for ch in set("".join(texts))}
        estimate = np.array([sum(chars[ch] for ch in text) for text in texts])
        texts = tuple(texts[i] for i in np.argsort(-estimate, kind="stable")[:MEASURED_TEXTS])
    return max((measure(t) for t in texts), default=0.0)


def _legend_width(handles: Sequence[Patch], title: str) -> float:
    """Inches the legend column needs: its widest label beside a colour patch, or its title."""
    return max(_text_width([h.get_label() for h in handles], LEGEND_SIZE) + 0.45, _text_width([title], LEGEND_SIZE) + 0.1, 1.2)


def _single_sheet(inputs: MapInputs, sheet: Sheet, placement: Placement, title: str, legend_width: float = 1.6, *,
                  key: bool = True) -> _SheetFigure:
    """A map sheet: title and study above, the map at the region's own aspect, the legend and the
    county key beside it (its room only, without ``key``: :class:`TextLayer` lays it), the credit
    line (data sources, CRS) below."""
    register_cjk_font()
    rows, columns, col_width = _key_columns(sheet, placement.key)
    width = LEFT + sheet.width + GAP + legend_width + columns * col_width + 0.15
    height = TOP + sheet.height + BOTTOM
    fig = Figure(figsize=(width, height), dpi=DPI)
    canvas = _Canvas(fig)
    ax = fig.add_axes((LEFT / width, BOTTOM / height, sheet.width / width, sheet.height / height))
    ax.set_axis_off()
    _sheet_texts(fig, inputs, title, width, height)
    top = (BOTTOM + sheet.height) / height
    key_x = round((LEFT + sheet.width + GAP + legend_width) * DPI) / DPI  # at a whole pixel, where TextLayer lays it
    key_texts = _draw_key(fig, placement.key, key_x / width, top, rows, col_width, width, height) if columns and key else []
    return _SheetFigure(fig, canvas, ax, (LEFT + sheet.width + GAP) / width, top, key_texts=key_texts, key_x=key_x)


# --------------------------------------------------------------------------------------------
# Figs. 2–5's county texts rendered once

# From this many texts (county names and numbers, and key lines) Figs. 2–5's PNGs share one
# rendering of them (:class:`TextLayer`); below it each sheet draws its own.
LAYER_MIN_TEXTS = 1000
# The attribute of a figure whose PNG lays a shared text image over the sheet: the artists it
# replaces, and the images with their pixel offsets (rendered on first use). On the figure itself,
# so that it goes with the figure (the artists refer to their figure).
OVERLAY = "_carbonscape_text_layer"


@dataclass
class TextLayer:
    """Figs. 2–5 name or number the same counties at the same places with the same key: at a
    nation's thousands of counties, drawing those texts (glyph layout and halo, a few ms each)
    four times was most of the maps' time. They are rendered once, as transparent images of the
    map's frame and of the key, and laid over each sheet's PNG at the pixel they would be drawn
    at. The texts stay in each figure as artists (hidden only while its PNG is written), so an
    SVG or PDF keeps them as vector text."""

    sheet: Sheet
    placement: Placement
    images: dict[Any, tuple[np.ndarray, int, int]] = field(default_factory=dict)

    def attach(self, page: _SheetFigure, texts: list[Any]) -> None:
        """Lay the layer over ``page``'s PNG in place of ``texts`` and its key."""
        height, key_x = page.fig.get_figheight(), page.key_x
        setattr(page.fig, OVERLAY, (texts + page.key_texts, [lambda: self._labels(height), lambda: self._key(key_x, height)]))

    def _render(self, width: float, height: float, draw: Any) -> tuple[np.ndarray, int, int]:
        """What ``draw(figure)`` adds to a transparent ``width`` × ``height`` in figure: the image
        cut to its drawn pixels, and the pixel offset of its lower-left corner."""
        fig = Figure(figsize=(width, height), dpi=DPI)
        fig.patch.set_alpha(0.0)
        canvas = _Canvas(fig)
        draw(fig)
        canvas.draw()
        image = np.asarray(canvas.buffer_rgba())
        rows, cols = np.flatnonzero(image[..., 3].any(axis=1)), np.flatnonzero(image[..., 3].any(axis=0))
        if not rows.size:
            cut = np.zeros((1, 1, 4), dtype=np.uint8), 0, 0
        else:
            r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            cut = image[r0:r1, c0:c1].copy(), int(c0), int(image.shape[0] - r1)
        del image
        _release(fig)
        return cut

    def _labels(self, height: float) -> tuple[np.ndarray, int, int]:
        """The county texts over the map's frame: a sheet's left part, from its left edge."""
        if ("labels", height) not in self.images:
            sheet, width = self.sheet, LEFT + self.sheet.width + GAP

            def draw(fig: Figure) -> None:
                ax = fig.add_axes((LEFT / width, BOTTOM / height, sheet.width / width, sheet.height / height))
                ax.set_axis_off()
                _frame(ax, sheet)
                draw_county_texts(ax, self.placement)

            self.images["labels", height] = self._render(width, height, draw)
        return self.images["labels", height]

    def _key(self, key_x: float, height: float) -> tuple[np.ndarray, int, int]:
        """The key, laid at the pixel nearest ``key_x`` (inches), where each sheet draws it (the
        sheets' legends differ in width: one image serves them all, within half a pixel)."""
        if ("key", height) not in self.images:
            rows, columns, col_width = _key_columns(self.sheet, self.placement.key)
            width = columns * col_width + 0.15
            top = (BOTTOM + self.sheet.height) / height
            self.images["key", height] = self._render(
                width, height, lambda fig: _draw_key(fig, self.placement.key, 0.0, top, rows, col_width, width, height))
        image, xo, yo = self.images["key", height]
        return image, round(key_x * DPI) + xo, yo


def _lay_over(canvas: Any, images: list[tuple[np.ndarray, int, int]]) -> np.ndarray:
    """The canvas's pixels (RGBA, top row first) with each straight-alpha ``image`` laid over them
    ("over" compositing, in integers) with its lower-left corner ``(xo, yo)`` pixels from the
    canvas's.

    Composited in place in the canvas's own buffer (the figure is saved and released next), only
    at the image's pixels that are not transparent (over a transparent pixel the formula gives the
    canvas's pixel back), in 16-bit integers (255 × 255 + 127 fits) and in bands of rows: a
    nation's 12-Mpx sheet no longer takes a copy of its pixels and 32-bit temporaries (about 160 MiB,
    the peak of a whole run)."""
    pixels = np.asarray(canvas.buffer_rgba())
    if not pixels.flags.writeable:
        pixels = pixels.copy()
    height, width = pixels.shape[:2]
    for image, xo, yo in images:
        top = height - yo - image.shape[0]
        r0, r1 = max(0, -top), min(image.shape[0], height - top)
        c0, c1 = max(0, -xo), min(image.shape[1], width - xo)
        for start in range(r0, r1, 128):
            stop = min(start + 128, r1)
            band = image[start:stop, c0:c1]
            drawn = band[..., 3] != 0
            if not drawn.any():
                continue
            dst = pixels[top + start:top + stop, xo + c0:xo + c1]
            src = band[drawn].astype(np.uint16)
            under = dst[drawn].astype(np.uint16)
            alpha = src[:, 3:]
            rest = 255 - alpha
            mixed = (src * alpha + under * rest + 127) // 255
            mixed[:, 3:] = alpha + (under[:, 3:] * rest + 127) // 255
            dst[drawn] = mixed.astype(np.uint8)
    return pixels



def study_line(inputs: MapInputs) -> str:
    """The sheet's second line: the study's name and year (the year once, when the name holds it)."""
    year = str(inputs.year or "")
    return " · ".join(p for p in (inputs.study, "" if year and year in inputs.study else year) if p)


def _sheet_texts(fig: Figure, inputs: MapInputs, title: str, width: float, height: float) -> None:
    """Title and study line above, the credit line (data sources, CRS) below; sizes in inches."""
    fig.text(LEFT / width, 1 - 0.12 / height, title, ha="left", va="top", fontsize=13, fontfamily=FONT_FAMILIES)
    fig.text(LEFT / width, 1 - 0.42 / height, study_line(inputs), ha="left", va="top", fontsize=8.5, color="#333333",
             fontfamily=FONT_FAMILIES)
    chars = int(width * 72 / (6.5 * 0.55))
    fig.text(LEFT / width, 0.08 / height, "\n".join(textwrap.wrap(credit_line(inputs), chars)[:3]), ha="left", va="bottom", fontsize=6.5,
             color="#444444", fontfamily=FONT_FAMILIES)


def _draw_key(fig: Figure, key: list[tuple[int, str]], x: float, top: float, rows: int, col_width: float, width: float,
              height: float) -> list[Any]:
    """The key of counties drawn by number, in columns from ``x`` (figure fraction) down from ``top``.
    Returns the texts drawn."""
    drawn = [fig.text(x, top, KEY_TITLE, ha="left", va="top", fontsize=LEGEND_SIZE, fontfamily=FONT_FAMILIES)]
    line = KEY_SIZE * 1.4 / 72 / height
    for k, (number, name) in enumerate(key):
        column, row = divmod(k, rows)
        text = f"{number} {name}"
        drawn.append(fig.text(x + column * col_width / width, top - 0.2 / height - row * line, text, ha="left", va="top",
                              fontsize=KEY_SIZE, gid=f"key:{number}", fontfamily=_family(text)))
    return drawn


def _legend(sheet_fig: _SheetFigure, handles: list[Patch], title: str) -> None:
    sheet_fig.fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(sheet_fig.legend_x, sheet_fig.top), title=title,
                         title_fontproperties=FontProperties(family=FONT_FAMILIES, size=LEGEND_SIZE), frameon=False,
                         prop=FontProperties(family=FONT_FAMILIES, size=LEGEND_SIZE), alignment="left", borderaxespad=0,
                         borderpad=0)


def _frame(ax: Any, sheet: Sheet) -> None:
    ax.set_xlim(*sheet.xlim)
    ax.set_ylim(*sheet.ylim)
    ax.set_aspect("auto")  # the axes already has the region's shape (sheet_for)
    ax.set_axis_off()


# Public for the other county maps (carbonscape.change_figures): the sheet, frame and borders of Figs. 2–5.
single_sheet, frame, edge_width = _single_sheet, _frame, _edge_width


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


def _class_handles(classes: np.ndarray, palette: np.ndarray, labels: list[str], infinite: np.ndarray,
                   infinite_label: str) -> list[Patch]:
    handles = [Patch(facecolor=palette[i], edgecolor="none", label=labels[i]) for i in reversed(range(len(labels)))]
    if infinite.any():
        handles.insert(0, Patch(facecolor=NO_SUPPLY, edgecolor="none", label=infinite_label))
    if ((classes == 0) & ~infinite).any():
        handles.append(Patch(facecolor=NO_VALUE, edgecolor="none", label="no value"))
    return handles


def _colours(classes: np.ndarray, palette: np.ndarray, infinite: np.ndarray) -> np.ndarray:
    """One RGBA row per county: its class's colour (class ``c`` → ``palette[c - 1]``), the no-value
    grey for class 0, the no-supply black where ``infinite``. An array, not a list of tuples:
    matplotlib converts a list colour by colour (a nation's 2,900 counties, ~0.1 s a map)."""
    table = np.vstack([np.asarray(NO_VALUE, dtype=float)[None, :], np.asarray(palette, dtype=float).reshape(-1, 4)])
    classes = np.asarray(classes)
    colours = table[np.where(classes > 0, classes, 0)]
    colours[np.asarray(infinite, dtype=bool)] = NO_SUPPLY
    return colours


def _palette(cmap: str, n: int) -> np.ndarray:
    return colormaps[cmap](np.linspace(0.15, 0.95, n)) if n > 1 else colormaps[cmap](np.array([0.6]))


def _save(fig: Figure, canvas: FigureCanvasAgg, out: Path, stem: str, formats: Sequence[str]) -> list[Path]:
    written = []
    overlay = getattr(fig, OVERLAY, None)
    for fmt in formats:
        path = out / f"{stem}.{fmt}"
        tmp = path.with_name(f".{path.stem}.tmp.{fmt}")
        if fmt == "png" and overlay is not None:  # the shared texts as one image (TextLayer)
            artists, images = overlay
            for artist in artists:
                artist.set_visible(False)
            try:
                canvas.draw()
            finally:
                for artist in artists:
                    artist.set_visible(True)
            matplotlib.image.imsave(tmp, _lay_over(canvas, [make() for make in images]), format="png", dpi=DPI, pil_kwargs=png_options(),
                                    metadata={"Software": f"matplotlib version{matplotlib.__version__}, https://matplotlib.org/"})
        else:
            fig.savefig(tmp, format=fmt, dpi=DPI, **({"pil_kwargs": png_options()} if fmt == "png" else {}))
        tmp.replace(path)
        if fmt == "png":
            keep_for_report(canvas, path)
        written.append(path)
    _release(fig)
    return written


def keep_for_report(canvas: Any, path: Path) -> None:
    """Hand the pixels of the PNG just written from ``canvas`` to the report
    (:func:`carbonscape.report.keep_report_image`), which then need not decode it again."""
    from carbonscape.report import keep_report_image

    renderer = getattr(canvas, "renderer", None)
    if renderer is not None:
        keep_report_image(path, np.asarray(renderer.buffer_rgba()))


def png_options() -> dict[str, Any]:
    """Pillow's PNG options for the maps: zlib level 3, which on these flat-coloured sheets writes
    files no larger than the default level 6 in 60 % of the time (a nation's 12-Mpx sheet: 0.39 s
    against 0.65 s)."""
    return {"compress_level": 3}


def _release(fig: Figure) -> None:
    """Free the pixels of a sheet as soon as it is saved: a figure and its canvas refer to each
    other, so a nation's sheets (tens of MB of pixels each) would pile up until the garbage
    collector happened to run. The canvas lets go of its renderer, and a collection frees the
    figure; inside :func:`frozen_heap` (the drawing of a run) it walks only the drawing's own
    objects, not every object of the run (0.1–0.4 s a sheet at a nation's 2,900 counties)."""
    canvas = fig.canvas
    if isinstance(canvas, FigureCanvasAgg):
        canvas.__dict__.pop("renderer", None)
        canvas._lastKey = None
    gc.collect()


def _trim_heap() -> None:
    """Give the C heap's free pages back to the system (glibc's ``malloc_trim``) before drawing: a
    run's raster stages leave freed memory in its allocator's arenas, which counts in the process's
    resident size while the sheets are drawn on top of it. Nothing where glibc is not the C library."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


@contextlib.contextmanager
def frozen_heap() -> Iterator[None]:
    """Move every object alive now out of the garbage collector's sight while drawing
    (:func:`gc.freeze`), so the collections that free each sheet (:func:`_release`) walk only the
    objects the drawing makes; given back to the collector afterwards. Nested uses freeze once."""
    if gc.get_freeze_count():
        yield
        return
    gc.collect()
    _trim_heap()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextlib.contextmanager
def _fonts() -> Iterator[str]:
    """Every text of the drawing may hold Chinese: DejaVu Sans with the bundled CJK font as fallback."""
    family = register_cjk_font()
    with matplotlib.rc_context({"font.family": FONT_FAMILIES}):
        yield family


# --------------------------------------------------------------------------------------------
# From a study's result


def map_inputs(result: Any) -> MapInputs:
    """What the maps show, from a :class:`~carbonscape.study.StudyResult`: the county polygons
    joined by key to supply (t C), demand (t CO₂/km²), ratio, class and zone.

    Raises
    ------
    InputError
        The result has no county polygons yet (a folder of the supply or demand stage only).
    """
    if result.polygons is None or len(result.polygons) == 0:
        raise InputError(f"{result.out}: no counties.gpkg; the maps need the county polygons and the ratio: run "
                         f"`carbonscape zoning {result.out}` (or `carbonscape run` / `demo`) into this folder first")
    polygons = result.polygons
    id_field = ((result.run_info or {}).get("study") or {}).get("id_field")
    key = "county" if "county" in polygons.columns else id_field if id_field in polygons.columns else None
    if key is None:
        raise InputError(f"{result.out}: the county polygons have no `county` key column; run `carbonscape run` into it again")
    gdf = gpd.GeoDataFrame({"county": polygons[key].astype(str).to_numpy()}, geometry=polygons.geometry.to_numpy(), crs=polygons.crs)
    keys = pd.Index(gdf["county"])
    by_county = result.supply.by_county
    if not by_county.empty and "supply_t" in by_county.columns:
        gdf["supply_t"] = by_county.assign(county=by_county["county"].astype(str)).set_index("county")["supply_t"].reindex(keys).to_numpy()
    demand = result.demand
    if not demand.empty and "demand_t_per_km2" in demand.columns:
        gdf["demand_t_co2_per_km2"] = demand["demand_t_per_km2"].set_axis(demand.index.astype(str)).reindex(keys).to_numpy()
    ratio_zones = result.ratio_zones
    for column in ("ratio", "ratio_infinite", "class", "zone", "zone_en", "zone_key"):
        if column in ratio_zones.columns:
            gdf[column] = ratio_zones[column].set_axis(ratio_zones.index.astype(str)).reindex(keys).to_numpy()
    info = result.run_info or {}
    study = info.get("study") or {}
    edges = np.asarray((result.zoning or {}).get("edges") or [], dtype=float)
    files = getattr(result.supply, "files", {}) or {}
    overview = Path(files.get("carbon_overview") or Path(result.out) / "carbon_overview.tif")
    return MapInputs(
        counties=gdf, edges=edges if edges.size >= 2 else None,
        by_class=None if result.supply.by_class.empty else result.supply.by_class,
        by_county_class=None if result.supply.by_county_class.empty else result.supply.by_county_class,
        overview=overview if overview.exists() else None, study=str(study.get("name") or ""), year=study.get("year"),
        sources=sources_of(info), version=str(info.get("carbonscape", "")),
    )


def sources_of(info: dict[str, Any]) -> tuple[str, ...]:
    """The data sources a map credits: the study's own ``source`` text, else its input files by
    role and file name (never a full path)."""
    study = info.get("study") or {}
    if study.get("source"):
        return (str(study["source"]),)
    roles = {"landuse": "land use", "counties": "boundaries", "pools": "carbon pools", "demand": "population"}
    found = []
    for item in info.get("inputs") or []:
        role = roles.get(str(item.get("role", "")))
        if role:
            found.append(f"{role} {Path(str(item.get('path', ''))).name}")
    return tuple(found)


# --------------------------------------------------------------------------------------------
# The maps


def draw_maps(result: Any, *, out: str | os.PathLike[str] | None = None, formats: Sequence[str] = ("png",),
              overview: bool = True) -> list[Path]:
    """Draw the maps of a study into ``out/maps`` and return their paths.

    Map files of earlier draws that this draw did not write (another format, or a map this study
    no longer has) are removed, so ``maps/`` and the report show the current study only.

    Parameters
    ----------
    result
        The :class:`~carbonscape.study.StudyResult` of :func:`~carbonscape.run_study` (or of
        :func:`~carbonscape.read_outputs` for a folder; a folder path is read that way too).
    out
        The folder whose ``maps/`` receives them (default: the result's own ``out``).
    formats
        Any of ``png``, ``svg``, ``pdf``.
    overview
        Also draw the per-pixel carbon map from ``carbon_overview.tif`` when the study has one.

    Returns
    -------
    list of pathlib.Path
        The files written (maps and ``county_key.csv``).

    Raises
    ------
    InputError
        An unknown format, or a result without county polygons.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise InputError(f"map formats {unknown} are not supported; use png, svg or pdf")
    if isinstance(result, (str, os.PathLike)):
        from carbonscape.study.read import read_outputs

        result = read_outputs(result)
    inputs = map_inputs(result)
    run = Path(out) if out is not None else Path(result.out)
    gdf = inputs.counties
    out = run / "maps"
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    _METRICS.clear()
    _GLYPHS.clear()
    with _fonts(), frozen_heap():
        sheet = sheet_for(gdf)
        placement = place_county_texts(gdf, sheet)
        crowded = sum(t.crowded for t in placement.texts)
        if crowded:
            log.warning("%d county numbers found no free spot and overlap others; draw the maps as SVG or PDF to zoom in", crowded)
        written.append(_write_key(out / KEY_FILE, placement, gdf))
        layer = TextLayer(sheet, placement) if "png" in formats and len(placement.texts) + len(placement.key) >= LAYER_MIN_TEXTS else None
        specs = [
            ("fig2_supply", ("supply_t",), MAP_FILES["fig2_supply"], "supply", "t C", True, "Greens"),
            ("fig3_demand", DEMAND_COLUMNS, MAP_FILES["fig3_demand"], "demand", "t CO₂/km²", False, "Reds"),
        ]
        for stem, columns, title, quantity, unit, tonnes, cmap in specs:
            column = next((c for c in columns if c in gdf.columns), None)
            if column is None:
                log.warning("the counties have no %s column; skipping %s", " or ".join(columns), stem)
                continue
            values = gdf[column].to_numpy(dtype=float)
            edges, classes = _natural_classes(values, 5)
            scale, shown = tonnes_scale(values, unit) if tonnes else (1.0, unit)
            palette = _palette(cmap, max(len(edges) - 1, 0))
            infinite = np.isposinf(values)
            written += _draw_single(inputs, sheet, placement, stem, title, _colours(classes, palette, infinite),
                                    _class_handles(classes, palette, legend_labels(edges, scale=scale), infinite, "infinite"),
                                    f"{quantity} ({shown})", out, formats, layer=layer)
        if "ratio" in gdf.columns:
            written += _draw_ratio(inputs, sheet, placement, out, formats, layer=layer)
        else:
            log.warning("the counties have no ratio column; skipping fig4_ratio")
        if "zone" in gdf.columns:
            written += _draw_zones(inputs, sheet, placement, out, formats, layer=layer)
        classes_table = _class_table(inputs.by_class)
        if classes_table is not None and inputs.by_county_class is not None:
            written += _draw_class_sheet(inputs, classes_table, out, formats, sheet, placement)
        if overview and inputs.overview is not None and Path(inputs.overview).exists():
            written += _draw_overview(inputs, Path(inputs.overview), out, formats)
    _remove_stale(out, written)
    return written


def _write_key(path: Path, placement: Placement, gdf: gpd.GeoDataFrame) -> Path:
    """``county_key.csv``: every county with how it is shown on Figs. 2–5 (its name, or a number)."""
    numbers = {name: number for number, name in placement.key}
    shown = {t.county: t for t in placement.texts}
    rows = []
    for county in gdf["county"].astype(str):
        item = shown.get(county)
        rows.append({"county": county, "shown_as": "number" if county in numbers else "name" if item else "none",
                     "number": numbers.get(county, pd.NA), "leader_line": bool(item and item.anchor is not None)})
    frame = pd.DataFrame(rows)
    tmp = path.with_name(f".{path.name}.tmp")
    frame.to_csv(tmp, index=False, encoding="utf-8")
    tmp.replace(path)
    return path


def _draw_single(inputs: MapInputs, sheet: Sheet, placement: Placement, stem: str, title: str, colours: Any, handles: list[Patch],
                 legend_title: str, out: Path, formats: Sequence[str], *, edgecolor: str = "white", layer: TextLayer | None = None) -> list[Path]:
    # A sheet drawn only as PNG with the shared text layer needs no text artists of its own.
    vector = any(fmt != "png" for fmt in formats)
    page = _single_sheet(inputs, sheet, placement, title, _legend_width(handles, legend_title), key=layer is None or vector)
    draw_shapes(page.ax, inputs.shapes_for(sheet), colours, edgecolor=edgecolor, linewidth=_edge_width(len(inputs.counties)))
    _frame(page.ax, sheet)
    _legend(page, handles, legend_title)
    add_scale_bar(page.ax, inputs.counties.crs, xlim=sheet.xlim, ylim=sheet.ylim)
    add_north_arrow(page.ax)
    texts = draw_county_texts(page.ax, placement) if layer is None or vector else []
    if layer is not None:
        layer.attach(page, texts)
    return _save(page.fig, page.canvas, out, stem, formats)


def _remove_stale(out: Path, written: list[Path]) -> None:
    keep = {path.name for path in written}
    for name in [f"{stem}.{fmt}" for stem in MAP_FILES for fmt in FORMATS] + [KEY_FILE]:
        path = out / name
        if name not in keep and path.exists():
            path.unlink()
            log.debug("removed %s of an earlier draw", path)


def _ratio_classes(inputs: MapInputs) -> tuple[np.ndarray, np.ndarray] | None:
    """The study's ratio classes (its zoning edges and the counties' ``class``), or None when the
    inputs do not carry them consistently."""
    gdf = inputs.counties
    if inputs.edges is None or len(inputs.edges) < 2 or "class" not in gdf.columns:
        return None
    edges = np.asarray(inputs.edges, dtype=float)
    classes = pd.to_numeric(gdf["class"], errors="coerce").fillna(0).to_numpy(dtype=np.int64)
    if classes.min() < 0 or classes.max() > edges.size - 1:
        log.warning("the counties' classes do not match the study's %d zoning classes; Fig. 4 uses natural breaks of its own", edges.size - 1)
        return None
    return edges, classes


def _draw_ratio(inputs: MapInputs, sheet: Sheet, placement: Placement, out: Path, formats: Sequence[str], *,
                layer: TextLayer | None = None) -> list[Path]:
    """Fig. 4 in the study's own ratio classes, so it matches the zones of Fig. 5."""
    gdf = inputs.counties
    ratio = gdf["ratio"].to_numpy(dtype=float)
    infinite = np.isposinf(ratio)
    if "ratio_infinite" in gdf.columns:
        infinite |= gdf["ratio_infinite"].fillna(False).astype(bool).to_numpy()
    study = _ratio_classes(inputs)
    if study is not None:
        edges, classes = study
        title = "ratio class (demand / supply density)"
    else:
        edges, classes = _natural_classes(np.where(infinite, np.nan, ratio), 5)
        title = "ratio (demand / supply density)"
    classes = np.where(np.isnan(ratio) & ~infinite, 0, classes)
    palette = ratio_palette(len(edges) - 1)
    return _draw_single(inputs, sheet, placement, "fig4_ratio", MAP_FILES["fig4_ratio"], _colours(classes, palette, infinite),
                        _class_handles(classes, palette, legend_labels(edges), infinite, "no supply (∞)"), title, out, formats,
                        edgecolor="#8c8c8c", layer=layer)


def _draw_zones(inputs: MapInputs, sheet: Sheet, placement: Placement, out: Path, formats: Sequence[str], *,
                layer: TextLayer | None = None) -> list[Path]:
    """Fig. 5: zones coloured along the ratio's green → red, legend in the scheme's order."""
    gdf = inputs.counties
    groups = zone_groups(gdf)
    palette = ratio_palette(len(groups))[::-1]  # groups run from the highest ratio down
    keys = zone_keys(gdf)
    colour_of = {group.key: palette[i] for i, group in enumerate(groups)}
    handles = []
    for group in groups:
        label = f"{group.zone} {group.zone_en}" if group.zone and group.zone_en and group.zone != group.zone_en else group.zone_en or group.zone
        handles.append(Patch(facecolor=colour_of[group.key], edgecolor="none", label=f"{label} ({len(group.counties):,})"))
    unzoned = int((~keys.isin(list(colour_of))).sum())
    if unzoned:
        handles.append(Patch(facecolor=NO_VALUE, edgecolor="none", label=f"no zone ({unzoned:,})"))
    return _draw_single(inputs, sheet, placement, "fig5_zones", MAP_FILES["fig5_zones"],
                        np.array([colour_of.get(k, NO_VALUE) for k in keys], dtype=float).reshape(-1, 4),
                        handles, "zone (counties)", out, formats, edgecolor="#8c8c8c", layer=layer)


def _class_table(by_class: pd.DataFrame | None) -> pd.DataFrame | None:
    """Land-use classes with supply, largest first, and a panel title each (Chinese name too when
    the table carries one)."""
    if by_class is None or by_class.empty:
        return None
    classes = by_class[by_class["supply_t"] > 0].sort_values("supply_t", ascending=False)
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


def _panel_placement(gdf: gpd.GeoDataFrame, sheet: Sheet, placement: Placement) -> tuple[Sheet, Placement]:
    """Fig. 1's panel frame and its county texts: the smallest frame (from about half of Figs. 2–5's,
    at least 3.5 in along its longer side, growing up to theirs) in which every county gets its name
    or a number without covering another's. Counties numbered on Figs. 2–5 keep their numbers."""
    fixed = {county: number for number, county in _keyed_counties(placement, gdf)}
    longer = max(sheet.width, sheet.height)
    factor = min(max(0.55, 3.5 / longer), 1.0)
    while True:
        panel = Sheet(width=sheet.width * factor, height=sheet.height * factor, xlim=sheet.xlim, ylim=sheet.ylim)
        texts = place_county_texts(gdf, panel, numbers=fixed)
        if factor >= 1.0 or not any(t.crowded for t in texts.texts):
            return panel, texts
        factor = min(factor * 1.2, 1.0)


def _keyed_counties(placement: Placement, gdf: gpd.GeoDataFrame) -> list[tuple[int, str]]:
    """``(number, county key)`` of the counties a placement draws by number."""
    return sorted((int(t.text), t.county) for t in placement.texts if t.kind == "number")


def _draw_class_sheet(inputs: MapInputs, classes: pd.DataFrame, out: Path, formats: Sequence[str], sheet: Sheet,
                      placement: Placement) -> list[Path]:
    """Fig. 1: one small map per land-use class, all in one unit (chosen from the largest county
    value of any class), each with its own natural-break classes. Every county is named or
    numbered on every panel (the numbers of Figs. 2–5, and more where a name no longer fits),
    with one key beside the panels."""
    gdf = inputs.counties
    pairs = inputs.by_county_class
    assert pairs is not None
    table = pairs.assign(county=pairs["county"].astype(str)).pivot_table(index="county", columns="lucode", values="supply_t",
                                                                          aggfunc="sum").fillna(0.0)
    keys = gdf["county"].astype(str)
    panels = [table.get(row["lucode"], pd.Series(dtype=float)).reindex(keys).fillna(0.0).to_numpy() for _, row in classes.iterrows()]
    scale, unit = tonnes_scale(np.concatenate(panels) if panels else np.array([]), "t C")
    labelled = len(gdf) * len(panels) <= FIG1_MAX_TEXTS
    if labelled:
        panel, texts = _panel_placement(gdf, sheet, placement)
    else:
        # A nation's thousands of counties on every panel: each panel would have to be as large as
        # Figs. 2–5 for its numbers to fit (a 2,900-county, 10-class Fig. 1 took 2 minutes and
        # gigabytes to draw, and no one reads 29,000 numbers); the panels stay small and the sheet
        # says where the counties are named.
        factor = min(max(0.55, 3.5 / max(sheet.width, sheet.height)), 1.0)
        panel = Sheet(width=sheet.width * factor, height=sheet.height * factor, xlim=sheet.xlim, ylim=sheet.ylim)
        texts = Placement(texts=[], key=[])
    legend_title = f"supply ({unit})"
    drawn = []
    for values in panels:
        edges, classes_of = _natural_classes(values, 5)
        palette = _palette("YlGn", max(len(edges) - 1, 0))
        infinite = np.zeros(len(values), dtype=bool)
        drawn.append((classes_of, palette, _class_handles(classes_of, palette, legend_labels(edges, scale=scale), infinite, "infinite")))
    legend_w = max(_legend_width(handles, legend_title) for _, _, handles in drawn) if drawn else 1.2
    n = len(classes)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    title_band, row_gap = 0.3, 0.15
    area = Sheet(width=panel.width, height=nrows * (title_band + panel.height) + (nrows - 1) * row_gap, xlim=sheet.xlim, ylim=sheet.ylim)
    rows, columns, col_width = _key_columns(area, texts.key)
    cell_w = panel.width + GAP + legend_w
    width = LEFT + ncols * cell_w + columns * col_width + 0.15
    height = TOP + area.height + BOTTOM
    register_cjk_font()
    fig = Figure(figsize=(width, height), dpi=DPI)
    canvas = _Canvas(fig)
    _sheet_texts(fig, inputs, f"{MAP_FILES['fig1_supply_by_class']} ({unit})", width, height)
    if not labelled:
        fig.text(1 - 0.15 / width, 1 - 0.42 / height, f"{len(gdf):,} counties, too many to label on each panel: they are named or "
                 "numbered on Figs. 2–5 (key: county_key.csv)", ha="right", va="top", fontsize=8.5, color="#333333",
                 fontfamily=FONT_FAMILIES, gid="fig1:unlabelled")
    top = (BOTTOM + area.height) / height
    for i, ((_, row), (classes_of, palette, handles)) in enumerate(zip(classes.iterrows(), drawn)):
        r, c = divmod(i, ncols)
        x0 = LEFT + c * cell_w
        y0 = BOTTOM + area.height - (r + 1) * (title_band + panel.height) - r * row_gap
        ax = fig.add_axes((x0 / width, y0 / height, panel.width / width, panel.height / height))
        infinite = np.zeros(len(classes_of), dtype=bool)
        draw_shapes(ax, inputs.shapes_for(sheet), _colours(classes_of, palette, infinite), edgecolor="white", linewidth=_edge_width(len(gdf)) / 2)
        _frame(ax, panel)
        ax.set_title(row["title"], fontsize=9, fontfamily=FONT_FAMILIES)
        add_scale_bar(ax, gdf.crs, xlim=sheet.xlim, ylim=sheet.ylim)
        draw_county_texts(ax, texts)
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1 + GAP / panel.width, 1.0), title=legend_title,
                  title_fontproperties=FontProperties(family=FONT_FAMILIES, size=6.5), frameon=False,
                  prop=FontProperties(family=FONT_FAMILIES, size=6.5), alignment="left", borderaxespad=0, borderpad=0)
    if columns:
        _draw_key(fig, texts.key, (LEFT + ncols * cell_w) / width, top, rows, col_width, width, height)
    return _save(fig, canvas, out, "fig1_supply_by_class", formats)


def _draw_overview(inputs: MapInputs, path: Path, out: Path, formats: Sequence[str]) -> list[Path]:
    import rasterio

    with rasterio.open(path) as src:
        data = src.read(1, masked=True)
        left, bottom, right, top = src.bounds
        crs = src.crs
    gdf = inputs.counties
    outline = gdf.to_crs(crs) if crs is not None and gdf.crs is not None else gdf
    sheet = sheet_for(outline)
    page = _single_sheet(inputs, sheet, Placement([], []), "Carbon per pixel (overview)", 1.3)
    ax = page.ax
    image = ax.imshow(data, extent=(left, right, bottom, top), cmap="YlGn", interpolation="nearest")
    draw_shapes(ax, prepare_shapes(outline.geometry, tolerance=pixel_tolerance(sheet.xlim, sheet.ylim, sheet.width, sheet.height)), "none",
                edgecolor="#444444", linewidth=_edge_width(len(gdf)))
    _frame(ax, sheet)
    cax = page.fig.add_axes((page.legend_x + 0.02, page.top - 0.45, 0.02, 0.4))
    page.fig.colorbar(image, cax=cax, label="carbon (t C/ha)")
    add_scale_bar(ax, outline.crs, xlim=sheet.xlim, ylim=sheet.ylim)
    add_north_arrow(ax)
    return _save(page.fig, page.canvas, out, "carbon_per_pixel", formats)
