"""One self-contained HTML page per run: parameters, totals, tables, maps and provenance.

Images are embedded as data URIs and the CSS is inline, so the file opens from disk in any
browser with no network.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd
from carbonscape.errors import InputError
from carbonscape.io import atomic_path
from carbonscape.maps import MAP_FILES
from carbonscape.zoning import zone_groups

# Zones of thousands of counties: the count, and this many names before "… and N more".
ZONE_NAMES_SHOWN = 20

CSS = """
body{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei","PingFang SC",system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{border-bottom:1px solid #ccc;padding-bottom:.2rem;margin-top:2rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1rem}th,td{border:1px solid #ddd;padding:.2rem .5rem}
th{background:#f3f5f3;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#666;font-size:.85rem}figure{margin:1rem 0}img.map{max-width:100%;border:1px solid #eee}
.totals td:first-child{font-weight:600}.zones li{margin:.2rem 0}code{background:#f4f4f4;padding:0 .2rem}
"""

TABLES = [
    ("supply-by-class", "supply_by_class.csv", "Carbon supply by land-use class",
     {"lucode": "code", "name": "class", "supply_t": "supply (t C)", "share_pct": "share (%)", "pixels": "pixels", "area_ha": "area (ha)"}),
    ("supply-by-county", "supply_by_county.csv", "Carbon supply by county",
     {"county": "county", "supply_t": "supply (t C)", "share_pct": "share (%)", "pixels": "pixels", "area_km2": "pixel area (km²)"}),
    ("demand-by-county", "demand_by_county.csv", "Carbon demand by county",
     {"county": "county", "population": "population", "area_km2": "area (km²)", "density_per_km2": "people / km²",
      "demand_t_per_km2": "demand (t/km²)", "share_pct": "share (%)"}),
    ("ratio-zones", "ratio_zones.csv", "Supply–demand ratio and functional zones",
     {"county": "county", "supply_t": "supply (t C)", "supply_t_per_km2": "supply (t/km²)", "demand_t_per_km2": "demand (t/km²)",
      "ratio": "ratio", "class": "class", "zone": "zone", "zone_en": "zone (en)"}),
]


def _format(value: Any, column: str) -> tuple[str, bool]:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and pd.notna(value):
        if column in ("lucode", "class", "pixels", "population"):
            return f"{int(value):,}", True
        if column == "ratio":
            return f"{value:.6f}", True
        return f"{value:,.2f}", True
    return html.escape("" if pd.isna(value) else str(value)), False


def _table_html(table_id: str, frame: pd.DataFrame, columns: dict[str, str]) -> str:
    present = [c for c in columns if c in frame.columns]
    head = "".join(f"<th>{html.escape(columns[c])}</th>" for c in present)
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for c in present:
            text, numeric = _format(row[c], c)
            cells.append(f'<td class="n">{text}</td>' if numeric else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _kv_table(pairs: list[tuple[str, Any]], css_class: str = "") -> str:
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in pairs)
    return f'<table class="{css_class}">{rows}</table>'


def _number(value: Any, unit: str = "") -> str:
    if isinstance(value, (int, float)):
        return f"{value:,.2f}{(' ' + unit) if unit else ''}"
    return str(value)


def write_report(run_dir: str | Path, *, title: str | None = None) -> Path:
    """Write ``run_dir/report.html`` from the run's tables, maps and ``run.json``.

    Parameters
    ----------
    run_dir
        A folder written by ``carbonscape run`` or ``demo``.
    title
        Page title (default: the study's name).
    """
    run = Path(run_dir)
    info_path = run / "run.json"
    if not info_path.exists():
        raise InputError(f"{run}: no run.json; run `carbonscape run` (or `demo`) into this folder first")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    study = info.get("study", {})
    heading = title or study.get("name", "carbonscape run")
    parts = [f"<h1>{html.escape(heading)}</h1>",
             f'<p class="note">carbonscape {html.escape(str(info.get("carbonscape", "")))} · started {html.escape(str(info.get("started", "")))}</p>']

    totals = info.get("totals", {})
    parts.append("<h2>Totals</h2>")
    parts.append(_kv_table([
        ("carbon supply", _number(totals.get("supply_t"), "t C")),
        ("supply per km² (regional)", _number(totals.get("supply_t_per_km2_regional"), "t C/km²")),
        ("demand, sum of county densities (a sum of densities, not a density)", _number(totals.get("sum_of_county_densities_t_per_km2"), "t CO₂/km²")),
        ("demand, regional density (total demand / total area)", _number(totals.get("regional_density_t_per_km2"), "t CO₂/km²")),
        ("total demand", _number(totals.get("total_demand_t"), "t CO₂/year")),
        ("population", f"{totals['total_population']:,.0f}" if isinstance(totals.get("total_population"), (int, float)) else ""),
        ("area (polygons, ellipsoidal)", _number(totals.get("area_km2_polygons"), "km²")),
        ("area (raster pixels)", _number(totals.get("area_km2_pixels"), "km²")),
        ("counties", totals.get("counties", "")),
        ("counties with zero supply (infinite ratio)", totals.get("counties_with_infinite_ratio", 0)),
    ], "totals"))

    zoning = info.get("zoning", {})
    parts.append("<h2>Parameters</h2>")
    parts.append(_kv_table([
        ("study file", study.get("file", "")),
        ("county id field", study.get("id_field", "")),
        ("per-capita emission", _number(study.get("per_capita_t"), "t/person")),
        ("ratio units", study.get("ratio_units", "")),
        ("zoning", f"{zoning.get('method', '')}, k = {zoning.get('k', '')}, scheme {zoning.get('scheme', '')}"),
        ("class edges", ", ".join(f"{e:.6g}" for e in zoning.get("edges", []))),
        ("goodness of variance fit", f"{zoning.get('gvf', float('nan')):.4f}" if isinstance(zoning.get("gvf"), (int, float)) else zoning.get("gvf", "")),
    ]))

    ratio_path = run / "ratio_zones.csv"
    if ratio_path.exists():
        ratio = pd.read_csv(ratio_path, dtype={"county": str})
        groups = zone_groups(ratio)
        if groups:
            items = []
            for group in groups:
                names = "、".join(group.counties[:ZONE_NAMES_SHOWN])
                more = len(group.counties) - ZONE_NAMES_SHOWN
                if more > 0:
                    names += f" … and {more:,} more"
                items.append(f"<li><b>{html.escape(group.zone)}</b> {html.escape(group.zone_en)} ({len(group.counties):,} counties): "
                             f"{html.escape(names)}</li>")
            parts.append('<h2>Zones</h2><p class="note">Highest supply–demand ratio first.</p><ul class="zones">' + "".join(items) + "</ul>")

    maps_dir = run / "maps"
    figures = []
    for stem, caption in MAP_FILES.items():
        # draw_maps leaves only the files of its latest draw; a PNG is embedded, else an SVG.
        for suffix, mime in ((".png", "image/png"), (".svg", "image/svg+xml")):
            image = maps_dir / f"{stem}{suffix}"
            if image.exists():
                data = base64.b64encode(image.read_bytes()).decode("ascii")
                figures.append(f'<figure><img class="map" alt="{html.escape(caption)}" src="data:{mime};base64,{data}">'
                               f"<figcaption>{html.escape(caption)}</figcaption></figure>")
                break
    note = '<p class="note">No maps in this run; draw them with <code>carbonscape maps</code>.</p>'
    if not figures and any(maps_dir.glob("*.pdf")):
        note = f'<p class="note">The maps were drawn as PDF only (in {html.escape(str(maps_dir))}); <code>carbonscape maps</code> draws the PNGs this page shows.</p>'
    parts.append("<h2>Maps</h2>" + ("".join(figures) if figures else note))

    parts.append("<h2>Tables</h2>")
    for table_id, name, caption, columns in TABLES:
        path = run / name
        if path.exists():
            frame = pd.read_csv(path, dtype={"county": str})
            parts.append(f"<h3>{html.escape(caption)}</h3>" + _table_html(table_id, frame, columns))

    parts.append("<h2>Provenance</h2>")
    inputs = info.get("inputs", [])
    parts.append('<table id="inputs"><thead><tr><th>role</th><th>file</th><th>bytes</th><th>sha256</th></tr></thead><tbody>'
                 + "".join(f"<tr><td>{html.escape(str(i.get('role', '')))}</td><td>{html.escape(str(i.get('path', '')))}</td>"
                           f"<td class=\"n\">{int(i.get('bytes', 0)):,}</td><td><code>{html.escape(str(i.get('sha256', '')))}</code></td></tr>" for i in inputs)
                 + "</tbody></table>")
    parts.append("<h3>Where and how long</h3>" + _kv_table([(k, v) for k, v in info.get("where", {}).items()]
                                                           + [(f"time: {k}", f"{v:.2f} s") for k, v in info.get("timings_s", {}).items()]))
    parts.append("<h3>Versions</h3>" + _kv_table(list(info.get("versions", {}).items())))
    page = (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{CSS}</style></head><body>'
            + "\n".join(parts) + "</body></html>")
    target = run / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target
