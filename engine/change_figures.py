"""Figures of a change between two maps: the region's transitions as a Sankey (alluvial) diagram and
the carbon change per county as a map. Drawn from a :class:`~carbonscape.change.ChangeResult` in
memory (nothing is read back from disk), headless (a :class:`~matplotlib.figure.Figure` on the Agg
canvas, never pyplot).

Every class with a flow is labelled on the Sankey, its small classes too: the labels of a side are
stacked in a column beside the bars without overlapping, and a label that had to move away from its
bar is joined to it by a leader line. The county map is a sheet of the study's maps (Figs. 2–5):
each county named or numbered (the same numbers, the same key), the study line and the source/CRS
footer, a scale bar and a north arrow (all from :mod:`carbonscape.maps`).
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["change_map_figure", "change_title", "draw_change_map", "draw_transitions", "map_label", "sankey_figure", "spread_labels"]

LABEL_SIZE = 7.0  # points, class labels of the Sankey
LABEL_PAD = 0.02  # inches between two stacked labels


def _palette(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def map_label(label: str | None, year: int | None) -> str:
    """How a figure names one map: its year, with the rest of its label (a scenario's name) in
    brackets: ``("2030 ecological protection", 2030)`` → ``"2030 (ecological protection)"``,
    ``("2020", 2020)`` → ``"2020"``, ``("baseline", 2030)`` → ``"2030 (baseline)"``, ``("eco", None)`` →
    ``"eco"``; a path is left out when the year is known; a name holding brackets is kept as it is (``"2030 eco (SYNTHETIC)"``)."""
    text = str(label or "").strip()
    if year is None:
        return text or "?"
    if re.search(r"[/\\]|\.(zarr|tiff?|vrt)$", text, flags=re.IGNORECASE):
        return str(int(year))  # a store's path (`carbonscape change` without labels): the year says it
    rest = re.sub(rf"^\s*{int(year)}\b[\s_:,-]*", "", text).strip()
    if not rest:
        return str(int(year))
    return f"{int(year)} {rest}" if "(" in rest else f"{int(year)} ({rest})"  # "2030 eco (SYNTHETIC)": no brackets in brackets


def _map_labels(change: Any) -> dict[str, str]:
    """The two maps as a figure names them (:func:`map_label`): year and scenario name."""
    labels = dict(change.summary.get("maps") or {})
    years = change.summary.get("years") or [None, None]
    return {side: map_label(labels.get(side, side), years[i] if len(years) == 2 else None) for i, side in enumerate(("from", "to"))}


def change_title(change: Any, what: str) -> str:
    """``"<what>, 2020 → 2030 (ecological protection)"``: a change figure's title."""
    labels = _map_labels(change)
    return f"{what}, {labels['from']} → {labels['to']}"


def spread_labels(centres: Sequence[float], heights: Sequence[float], *, low: float, high: float, pad: float = 0.0) -> np.ndarray:
    """Centres for 1-D labels (e.g. the class labels of a Sankey side) as near as possible to
    ``centres`` with no two overlapping, kept within ``[low, high]`` where they fit.

    Labels keep their order. Overlapping labels are merged into a block centred on the mean of its
    members' wished centres, blocks merged until none overlap (the least-squares placement of a
    stack in order), then the blocks are pushed inside ``[low, high]``.

    Parameters
    ----------
    centres, heights
        Wished centre and height of each label (same units, any order).
    low, high
        The room (the labels' total height beyond it overflows at ``high``).
    pad
        Gap between two labels.

    Returns
    -------
    numpy.ndarray
        The centres, in the order given.
    """
    centres = np.asarray(centres, dtype=float)
    heights = np.asarray(heights, dtype=float) + pad
    order = np.argsort(centres, kind="stable")
    blocks: list[list[int]] = []  # each: label indices in order; a block's labels are stacked tight

    def top_of(block: list[int]) -> float:
        # The block's top when its labels are stacked around the mean of their wished offsets.
        offsets = np.cumsum([0.0, *heights[block][:-1]]) + heights[block] / 2
        return float(np.mean(centres[block] - offsets))

    for i in order:
        blocks.append([int(i)])
        while len(blocks) > 1:
            prev, last = blocks[-2], blocks[-1]
            if top_of(prev) + heights[prev].sum() <= top_of(last):
                break
            blocks[-2:] = [prev + last]
    tops = [top_of(b) for b in blocks]
    # Push into [low, high]: down from low first, then up from high (overflow, if any, at high).
    cursor = low
    for k, block in enumerate(blocks):
        tops[k] = max(tops[k], cursor)
        cursor = tops[k] + heights[block].sum()
    cursor = high
    for k in range(len(blocks) - 1, -1, -1):
        tops[k] = min(tops[k], cursor - heights[blocks[k]].sum())
        cursor = tops[k]
    cursor = low  # no room for all: they keep their order and overflow at high
    for k, block in enumerate(blocks):
        tops[k] = max(tops[k], cursor)
        cursor = tops[k] + heights[block].sum()
    out = np.empty(len(centres))
    for top, block in zip(tops, blocks):
        y = top
        for i in block:
            out[i] = y + heights[i] / 2
            y += heights[i]
    return out


def _area_text(area: float) -> str:
    """A class area for a label, readable at any size (``12,345 km²``, ``3.4 km²``, ``0.052 km²``)."""
    if area >= 100:
        return f"{area:,.0f} km²"
    if area >= 1:
        return f"{area:.1f} km²"
    return f"{area:.2g} km²"


def sankey_figure(change: Any, *, title: str | None = None, min_share: float = 0.001) -> Any:
    """The Sankey diagram of :func:`draw_transitions` as a :class:`~matplotlib.figure.Figure`
    (Agg canvas attached). Each class label's gid is ``"class:from:<code>"`` or
    ``"class:to:<code>"``; its leader line (when it had to move off its bar) ``"leader:…"``."""
    from carbonscape.fonts import FONT_FAMILIES, register_cjk_font
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch, Rectangle
    from matplotlib.path import Path as MplPath

    register_cjk_font()
    t = change.transitions
    t = t[t["area_km2"] > 0]
    labels = _map_labels(change)
    total = float(t["area_km2"].sum()) or 1.0
    left = t.groupby(["from_code", "from_name"])["area_km2"].sum()
    right = t.groupby(["to_code", "to_name"])["area_km2"].sum()
    codes = sorted({int(c) for c, _ in left.index} | {int(c) for c, _ in right.index})
    colour = dict(zip(codes, _palette(len(codes))))
    gap = total * 0.01

    def stack(side: Any) -> dict[int, tuple[float, float, str]]:
        y, out = 0.0, {}
        for (code, name), area in side.items():
            out[int(code)] = (y, y + float(area), str(name))
            y += float(area) + gap
        return out

    lpos, rpos = stack(left), stack(right)
    # Label sizes (two lines of LABEL_SIZE) as Agg draws them, in inches; the bars are as tall as
    # the longer column of stacked labels needs (at least 6 in), the margins as wide as the widest.
    from matplotlib.backends.backend_agg import RendererAgg

    renderer = RendererAgg(10, 10, 72)
    font = FontProperties(family=FONT_FAMILIES, size=LABEL_SIZE)

    def text_of(name: str, area: float) -> str:
        return f"{name}\n{_area_text(area)}"

    def inches(text: str) -> tuple[float, float]:
        lines = text.split("\n")
        w = max(renderer.get_text_width_height_descent(line, font, ismath=False)[0] for line in lines) / 72
        return w, LABEL_SIZE * 1.25 * len(lines) / 72  # matplotlib's line spacing is 1.2

    texts = {side: {code: text_of(name, y1 - y0) for code, (y0, y1, name) in pos.items()} for side, pos in (("from", lpos), ("to", rpos))}
    label_h = max((inches(s)[1] for side in texts.values() for s in side.values()), default=0.2)
    widest = max((inches(s)[0] for side in texts.values() for s in side.values()), default=1.0)
    column_in = max(len(lpos), len(rpos)) * (label_h + LABEL_PAD)
    bars_in = max(6.0, column_in * 1.08)  # the bars' height, room for the stacked labels of the longer side
    band_w = 4.0  # inches of the bands between the two bars
    axes_w = band_w + 2 * (widest + 0.45)
    # The maps' names above the bars, wrapped to the room between them.
    # A header is centred on its bar: half of it over the bands, half over the labels' margin.
    header_chars = int(2 * min(band_w / 2, widest + 0.55) * 72 / (10 * 0.6))
    headers = {side: textwrap.wrap(labels[side], header_chars) or [""] for side in labels}
    header_in = max(len(lines) for lines in headers.values()) * 10 * 1.25 / 72 + 0.12
    axes_h = bars_in + header_in
    fig_w, fig_h = axes_w + 0.3, axes_h + 0.9
    fig = Figure(figsize=(fig_w, fig_h), dpi=150)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.15 / fig_w, 0.2 / fig_h, axes_w / fig_w, axes_h / fig_h))
    top = max(max(v[1] for v in lpos.values()), max(v[1] for v in rpos.values())) if lpos and rpos else 1.0
    # x: the bars at 0 and 1, labels beyond; y: data (km²) downward from 0, the headers above it.
    margin = (widest + 0.45) / band_w
    ax.set_xlim(-margin, 1 + margin)
    y_bottom = top * 1.02
    per_inch = y_bottom / bars_in  # km² of the y axis per inch
    y_top = -header_in * per_inch
    ax.set_ylim(y_bottom, y_top)
    for side, pos, x in (("from", lpos, 0.0), ("to", rpos, 1.0)):
        items = list(pos.items())
        for code, (y0, y1, _name) in items:
            ax.add_patch(Rectangle((x - 0.03, y0), 0.06, y1 - y0, color=colour[code], lw=0))
        centres = [(y0 + y1) / 2 for _, (y0, y1, _n) in items]
        placed = spread_labels(centres, [label_h * per_inch] * len(items), low=-0.02 * per_inch, high=y_bottom, pad=LABEL_PAD * per_inch)
        sign = -1 if x == 0 else 1
        tx = x + sign * 0.11
        for (code, (y0, y1, _name)), y in zip(items, placed):
            text = ax.text(tx, y, texts[side][code], ha="right" if x == 0 else "left", va="center", fontsize=LABEL_SIZE, fontfamily=FONT_FAMILIES,
                           linespacing=1.2)
            text.set_gid(f"class:{side}:{code}")
            if not y0 <= y <= y1:  # moved off its bar: a leader line from the bar to the label
                line = ax.plot([x + sign * 0.035, x + sign * 0.06, tx - sign * 0.01], [(y0 + y1) / 2, y, y], color="#555555", lw=0.5)[0]
                line.set_gid(f"leader:{side}:{code}")
    lcur = {code: pos[0] for code, pos in lpos.items()}
    rcur = {code: pos[0] for code, pos in rpos.items()}
    for row in t.sort_values(["from_code", "to_code"]).itertuples():
        area = float(row.area_km2)
        a, b = int(row.from_code), int(row.to_code)
        ya, yb = lcur[a], rcur[b]
        lcur[a] += area
        rcur[b] += area
        if area < total * min_share:
            continue
        verts = [(0.03, ya), (0.5, ya), (0.5, yb), (0.97, yb), (0.97, yb + area), (0.5, yb + area), (0.5, ya + area), (0.03, ya + area), (0.03, ya)]
        codes_path = [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4, MplPath.LINETO, MplPath.CURVE4, MplPath.CURVE4,
                      MplPath.CURVE4, MplPath.CLOSEPOLY]
        ax.add_patch(PathPatch(MplPath(verts, codes_path), facecolor=colour[a], alpha=0.45 if a != b else 0.15, lw=0))
    for side, x in (("from", 0.0), ("to", 1.0)):
        ax.text(x, -0.06 * per_inch, "\n".join(headers[side]), ha="center", va="bottom", fontsize=10, fontfamily=FONT_FAMILIES, gid=f"header:{side}")
    ax.axis("off")
    heading = title or change_title(change, "Land-use transitions") + " (km², true areas)"
    ax.set_title("\n".join(textwrap.wrap(heading, int(fig_w * 72 / (10 * 0.52)))), fontsize=10, fontfamily=FONT_FAMILIES)
    return fig


def draw_transitions(change: Any, path: str | os.PathLike[str], *, title: str | None = None, min_share: float = 0.001) -> Path:
    """A Sankey diagram of the region's transitions: each class's area in the first map (left) and
    the second (right), a band per from → to transition as wide as its area (km²); transitions under
    ``min_share`` of the total are left out of the bands (never out of the tables, nor the labels:
    every class with a flow is labelled)."""
    fig = sankey_figure(change, title=title, min_share=min_share)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, bbox_inches="tight")
    return target


def draw_change_map(change: Any, polygons: Any, id_field: str, path: str | os.PathLike[str], *, title: str | None = None,
                    inputs: Any = None) -> Path:
    """Carbon change per county (:func:`change_map_figure`) written to ``path``."""
    import matplotlib
    from carbonscape.fonts import FONT_FAMILIES

    with matplotlib.rc_context({"font.family": FONT_FAMILIES}):
        fig = change_map_figure(change, polygons, id_field, title=title, inputs=inputs)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(target)
    return target


def change_map_figure(change: Any, polygons: Any, id_field: str, *, title: str | None = None, inputs: Any = None) -> Any:
    """Carbon change per county, diverging colours centred on zero, as a sheet of the study's maps:
    every county named or numbered (the numbers and key of Figs. 2–5), the study line and the
    source/CRS footer, scale bar and north arrow; the colour bar in t C, 10³ t C or 10⁶ t C as the
    values need (:func:`carbonscape.maps.tonnes_scale`), never an offset.

    ``inputs`` is the study's :class:`~carbonscape.maps.MapInputs` (name, sources, version) when
    known; its counties are replaced by ``polygons`` keyed by ``id_field``."""
    import dataclasses

    import geopandas as gpd
    import matplotlib
    from carbonscape import maps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import TwoSlopeNorm
    from matplotlib.ticker import ScalarFormatter

    by = change.by_county.assign(county=change.by_county["county"].astype(str)).set_index("county")["change_t"]
    gdf = gpd.GeoDataFrame({"county": polygons[id_field].astype(str).to_numpy()}, geometry=polygons.geometry.to_numpy(), crs=polygons.crs)
    values = gdf["county"].map(by).to_numpy(dtype=float)
    scale, unit = maps.tonnes_scale(values, "t C")
    shown = values / scale
    span = float(np.nanmax(np.abs(shown))) if np.isfinite(shown).any() else 0.0
    span = span or 1.0
    norm = TwoSlopeNorm(vmin=-span, vcenter=0.0, vmax=span)
    cmap = matplotlib.colormaps["RdYlGn"]
    inputs = dataclasses.replace(inputs, counties=gdf) if inputs is not None else maps.MapInputs(counties=gdf)
    sheet = maps.sheet_for(gdf)
    placement = maps.place_county_texts(gdf, sheet)
    page = maps.single_sheet(inputs, sheet, placement, title or change_title(change, "Carbon change per county"), 1.3)
    ax = page.ax
    gdf.plot(ax=ax, color=[cmap(norm(v)) if np.isfinite(v) else maps.NO_VALUE for v in shown], edgecolor="#555555",
             linewidth=maps.edge_width(len(gdf)))
    maps.frame(ax, sheet)
    cax = page.fig.add_axes((page.legend_x + 0.02, page.top - 0.45, 0.02, 0.4))
    bar = page.fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
    formatter = ScalarFormatter(useOffset=False)  # the unit carries the scale: no "1e7" above the bar
    formatter.set_scientific(False)
    bar.formatter = formatter
    bar.update_ticks()
    bar.set_label(f"carbon change ({unit})")
    maps.add_scale_bar(ax, gdf.crs, xlim=sheet.xlim, ylim=sheet.ylim)
    maps.add_north_arrow(ax)
    maps.draw_county_texts(ax, placement)
    return page.fig
