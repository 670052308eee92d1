"""Figures of a change between two maps: the region's transitions as a Sankey (alluvial) diagram and
the carbon change per county as a map. Drawn from a :class:`~carbonscape.change.ChangeResult` in
memory (nothing is read back from disk).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["draw_change_map", "draw_transitions"]


def _palette(n: int) -> list[Any]:
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return [cmap(i % 20) for i in range(n)]


def _map_labels(change: Any) -> dict[str, str]:
    """The two maps as a title names them: their years when the change has them, else their labels."""
    labels = dict(change.summary.get("maps", {}))
    years = change.summary.get("years")
    if years and len(years) == 2:
        labels = {"from": str(years[0]), "to": str(years[1])}
    return labels


def draw_transitions(change: Any, path: str | os.PathLike[str], *, title: str | None = None, min_share: float = 0.001) -> Path:
    """A Sankey diagram of the region's transitions: each class's area in the first map (left) and
    the second (right), a band per from → to transition as wide as its area (km²); transitions under
    ``min_share`` of the total are left out of the bands (never out of the tables)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import PathPatch, Rectangle
    from matplotlib.path import Path as MplPath

    t = change.transitions
    labels = _map_labels(change)
    total = float(t["area_km2"].sum())
    left = t.groupby(["from_code", "from_name"])["area_km2"].sum()
    right = t.groupby(["to_code", "to_name"])["area_km2"].sum()
    codes = sorted({int(c) for c, _ in left.index} | {int(c) for c, _ in right.index})
    colour = dict(zip(codes, _palette(len(codes))))
    gap = total * 0.01
    fig, ax = plt.subplots(figsize=(9, 7), dpi=150)

    def stack(side: Any) -> dict[int, list[float]]:
        y, out = 0.0, {}
        for (code, name), area in side.items():
            out[int(code)] = [y, y + area, str(name)]
            y += area + gap
        return out

    lpos, rpos = stack(left), stack(right)
    for pos, x in ((lpos, 0.0), (rpos, 1.0)):
        for code, (y0, y1, name) in pos.items():
            ax.add_patch(Rectangle((x - 0.03, y0), 0.06, y1 - y0, color=colour[code], lw=0))
            if y1 - y0 > total * 0.01:
                ax.text(x + (-0.05 if x == 0 else 0.05), (y0 + y1) / 2, f"{name}\n{y1 - y0:,.0f} km²", ha="right" if x == 0 else "left",
                        va="center", fontsize=7)
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
    top = max(max(v[1] for v in lpos.values()), max(v[1] for v in rpos.values()))
    ax.set_xlim(-0.45, 1.45)
    ax.set_ylim(top * 1.02, -top * 0.06)
    ax.text(0, -top * 0.03, str(labels.get("from", "from")), ha="center", fontsize=9, weight="bold")
    ax.text(1, -top * 0.03, str(labels.get("to", "to")), ha="center", fontsize=9, weight="bold")
    ax.axis("off")
    ax.set_title(title or f"Land-use transitions, {labels.get('from', '')} → {labels.get('to', '')} (km², true areas)", fontsize=10)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, bbox_inches="tight")
    plt.close(fig)
    return target


def draw_change_map(change: Any, polygons: Any, id_field: str, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Carbon change per county (t C), diverging colours centred on zero, from the change tables and
    the county polygons."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    by = change.by_county.assign(county=change.by_county["county"].astype(str)).set_index("county")["change_t"]
    frame = polygons.assign(_key=polygons[id_field].astype(str))
    frame["change_t"] = frame["_key"].map(by)
    values = frame["change_t"].to_numpy(dtype=float)
    span = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    norm = TwoSlopeNorm(vmin=-span or -1.0, vcenter=0.0, vmax=span or 1.0)
    fig, ax = plt.subplots(figsize=(8, 7), dpi=150)
    frame.plot(column="change_t", ax=ax, cmap="RdYlGn", norm=norm, edgecolor="#555555", linewidth=0.3, legend=True,
               legend_kwds={"label": "carbon change (t C)", "shrink": 0.6})
    labels = _map_labels(change)
    ax.set_title(title or f"Carbon change per county, {labels.get('from', '')} → {labels.get('to', '')}", fontsize=10)
    ax.axis("off")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, bbox_inches="tight")
    plt.close(fig)
    return target
