"""One self-contained HTML page per study, written for planners.

It opens with a one-screen summary: the totals, each functional zone with what it means for
planning and its counties, and the five highest and lowest supply–demand ratios. The maps follow,
then the tables (collapsed), the parameters and the provenance. Numbers in the text are rounded to
the digits that mean something (three significant figures); the CSV files keep full precision.
No path of the machine that ran the study appears: inputs are named by file name.

Images are embedded as data URIs (each map cut to a screen's width and a 64-colour palette, a few
hundred kB for a whole study, with a link to its full-resolution file in ``maps/``), the CSS is inline, and the Chinese characters the page uses are
embedded as a small subset of the bundled Noto Sans CJK SC (SIL OFL 1.1), so the file opens from
disk in any browser, with no network and no CJK font installed.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import logging
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from carbonscape.coverage import DEFAULT_MIN_COVERAGE
from carbonscape.errors import InputError
from carbonscape.io import atomic_path
from carbonscape.zoning import zone_groups

log = logging.getLogger(__name__)

MAP_CAPTIONS = {
    "fig5_zones": "Functional zones",
    "fig4_ratio": "Supply–demand ratio by county",
    "fig2_supply": "Carbon supply by county",
    "fig3_demand": "Carbon demand by county",
    "fig1_supply_by_class": "Carbon supply by county for each land-use class",
    "carbon_per_pixel": "Carbon per pixel",
}
# The maps of the second half of a study (issue 10), by section: (id, heading, note, [(file beside
# the page, caption)]). A section is shown only when one of its maps exists.
SECOND_HALF_MAPS = [
    ("matching-maps", "Supply–demand matching", "From ratio_zones.csv: quadrants and balance of each county.", [
        ("maps/matching_quadrants", "Supply–demand quadrants: each county by the signs of the z-scores of its supply and demand "
                                    "densities (high/low supply × high/low demand), with the number of counties in each"),
        ("maps/matching_balance", "Supply–demand balance: supply density − demand density per county, green a surplus, red a deficit"),
    ]),
    ("spatial-maps", "Spatial statistics", "From lisa.csv and hotspots.csv; grey counties are not significant at the study's alpha.", [
        ("maps/lisa_clusters", "LISA clusters (local Moran's I) per variable: High–High and Low–Low counties like their neighbours, "
                               "High–Low and Low–High outliers"),
        ("maps/hotspots", "Getis–Ord Gi* hot and cold spots per variable: counties whose neighbourhood is significantly high or low"),
    ]),
    ("uncertainty-maps", "Uncertainty", "From uncertainty_by_county.csv (Monte Carlo of the pools' densities).", [
        ("maps/zone_stability", "Zone stability: the share of Monte Carlo draws that keep each county in the zone of the point "
                                "estimate (1 = always)"),
    ]),
    ("cells-maps", "Grid cells", "The study again on square cells (cells/); each cell one pixel of the map, white hatched cells lie "
     "outside the study region.", [
        ("cells/maps/cells_supply_demand", "Supply density (t C/km²) and demand density per cell"),
        ("cells/maps/cells_ratio_zones", "Supply–demand ratio per cell (log scale) and the cells' functional zones"),
        ("cells/maps/cells_matching", "Supply–demand quadrants and balance (supply − demand density) per cell"),
        ("cells/maps/cells_lisa_clusters", "LISA clusters of the cells per variable"),
        ("cells/maps/cells_hotspots", "Getis–Ord Gi* hot and cold spots of the cells per variable"),
        ("cells/maps/cells_zone_stability", "Zone stability of the cells: the share of Monte Carlo draws that keep each cell in its zone"),
    ]),
]
# A zone's county list is written out in the summary up to this many names; longer ones open on click.
NAMES_INLINE = 20
SUBSET_FAMILY = "carbonscape CJK"
# The maps as the page embeds them: a screen's width and a palette (maps/ keeps the full files).
REPORT_IMAGE_WIDTH = 1800
REPORT_IMAGE_COLOURS = 64
# The maps of the second half (matching, statistics, uncertainty, cells) narrower still: the page
# stays light enough to email with a dozen more maps; their full files are linked.
SECOND_HALF_IMAGE_WIDTH = 1200

# What each zone of the 2025 study's scheme means for planning (METHOD.md, formula 5 and Table 4).
ZONE_MEANINGS = {
    "optimization": "Emissions weigh most heavily on the carbon stock (ratio classes 5–7). Plan to cut emissions first "
                    "(energy, transport, buildings), contain the spread of built-up land, and add urban green space and sinks.",
    "sink_development": "Demand is high for the carbon stored (class 4). Grow the sinks: afforestation, restoring degraded "
                        "land, raising the carbon density of forest and farmland, while steering new emissions.",
    "coordinated": "Supply and demand are in middling balance (class 3). Keep development and conservation in step: grow "
                   "within the ecological limits and protect the sinks that hold the balance.",
    "low_carbon": "The carbon stock far exceeds the emissions (classes 1–2). Protect forests and grasslands as the region's "
                  "carbon reservoir, limit land conversion, and consider ecological compensation.",
}



def zone_meaning(*names: str) -> str:
    """What a zone of the paper's scheme means for planning, found by its key, Chinese or English
    name; "" for a zone of another scheme."""
    from carbonscape.zoning import PAPER_SCHEME

    for zone in PAPER_SCHEME.zones:
        if {zone.key, zone.name_zh, zone.name_en} & set(names):
            return ZONE_MEANINGS.get(zone.key, "")
    return ""


CSS = """
@font-face{font-family:"carbonscape CJK";src:url(FONT_URL) format("opentype")}
body{font-family:system-ui,"DejaVu Sans",sans-serif,"carbonscape CJK";margin:0 auto;max-width:1100px;color:#222;line-height:1.35;padding:.4rem 1rem 2rem}
h1{font-size:1.35rem;margin:.1rem 0}h2{border-bottom:1px solid #ccc;padding-bottom:.15rem;margin:1.5rem 0 .5rem;font-size:1.15rem}
h3{font-size:.92rem;margin:.5rem 0 .2rem}.note{color:#666;font-size:.8rem;margin:.15rem 0}header .note{margin-bottom:.4rem}
#summary{border:1px solid #cfd8cf;background:#f7faf7;border-radius:6px;padding:.2rem .8rem .4rem}
#summary h2{margin:.2rem 0 .1rem;border:0;font-size:1.05rem}.figures{display:flex;flex-wrap:wrap;gap:.2rem 1rem;margin:.1rem 0 .2rem}
.figure b{display:block;font-size:.98rem}.figure span{font-size:.74rem;color:#555}
.columns{display:flex;gap:1.2rem;align-items:flex-start}.columns>div:first-child{flex:1}
.zones{list-style:none;padding:0;margin:.2rem 0}.zones li{margin:.2rem 0;padding-left:.5rem;border-left:6px solid var(--c);font-size:.86rem}
.zones .what{font-size:.76rem;color:#444}.zones .who{font-size:.78rem}.zones details{display:inline}
.extremes table{margin:.1rem 0 .3rem;font-size:.76rem}
table{border-collapse:collapse;font-size:.82rem;margin:.4rem 0 .8rem}th,td{border:1px solid #ddd;padding:.08rem .4rem}
th{background:#f3f5f3;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
details{margin:.3rem 0}summary{cursor:pointer;color:#1d5e2f}
figure{margin:.8rem 0}img.map{max-width:100%;border:1px solid #eee}code{background:#f4f4f4;padding:0 .2rem}
"""


# --------------------------------------------------------------------------------------------
# Numbers as people read them


def round_sig(value: float, digits: int = 3) -> float:
    """``value`` rounded to ``digits`` significant figures (0 stays 0; inf and nan pass)."""
    if not np.isfinite(value) or value == 0:
        return value
    return round(value, digits - 1 - int(math.floor(math.log10(abs(value)))))


def fmt(value: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant figures with thousands separators (67,600; 0.560; 3.91);
    integers below 10,000 as they are; ∞ and blanks for infinite and missing values."""
    if value is None or isinstance(value, str):
        return "" if value is None else value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return ""
    if math.isinf(number):
        return "∞" if number > 0 else "−∞"
    if number == 0:
        return "0"
    rounded = round_sig(number, digits)
    magnitude = int(math.floor(math.log10(abs(rounded)))) if rounded else 0
    decimals = max(digits - 1 - magnitude, 0)
    return f"{rounded:,.{decimals}f}"


def amount(value: Any, unit: str = "") -> str:
    """A total in words: 2.35 billion t C, 86.4 million t CO₂, 776 t CO₂/km²."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if not math.isfinite(number):
        return fmt(number)
    for size, word in ((1e9, "billion"), (1e6, "million")):
        if abs(number) >= size:
            return f"{fmt(number / size)} {word} {unit}".strip()
    return f"{fmt(number)} {unit}".strip()


# --------------------------------------------------------------------------------------------
# What a report is written from


@dataclass
class ReportInputs:
    """Everything the page shows, in memory: ``info`` is the study's record (as in ``run.json``:
    study, totals, zoning, units, inputs, versions, timings, where) and ``tables`` its tables by
    name (``ratio_zones`` with a ``county`` column, ``supply_by_class``, ...)."""

    info: dict[str, Any]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    key: pd.DataFrame | None = None  # maps/county_key.csv: counties drawn by number


TABLES = [
    ("ratio_zones", "ratio-zones", "Supply–demand ratio and functional zone by county",
     {"county": "county", "ratio": "ratio", "class": "class", "zone": "zone", "zone_en": "zone (en)", "supply_t": "supply (t C)",
      "supply_t_per_km2": "supply (t C/km²)", "demand_t_per_km2": "demand (t CO₂/km²)"}),
    ("supply_by_class", "supply-by-class", "Carbon supply by land-use class",
     {"lucode": "code", "name_zh": "类别", "name": "class", "supply_t": "supply (t C)", "share_pct": "share (%)", "area_ha": "area (ha)"}),
    ("supply_by_county", "supply-by-county", "Carbon supply by county",
     {"county": "county", "supply_t": "supply (t C)", "share_pct": "share (%)", "area_km2": "pixel area (km²)",
      "covered_share": "covered (share of area)", "nodata_share": "nodata (share)", "outside_share": "outside the raster (share)",
      "low_coverage": "low coverage"}),
    ("demand_by_county", "demand-by-county", "Carbon demand by county",
     {"county": "county", "population": "population", "area_km2": "area (km²)", "density_per_km2": "people / km²",
      "demand_t_per_km2": "demand (t CO₂/km²)", "emissions_t": "emissions (t CO₂)", "share_pct": "share (%)"}),
    ("supply_by_pool", "supply-by-pool", "Carbon supply by pool", {"pool": "pool", "supply_t": "supply (t C)"}),
    # The second half of a study (issue 10): matching indices, spatial statistics, uncertainty, grid cells.
    ("matching", "matching", "Supply–demand matching by county (ratio_zones.csv): balance = supply − demand density; ESDR = "
     "(S − D) / ((S_max + D_max) / 2), > 0 surplus; quadrant from the signs of the z-scores of S and D; coupling coordination "
     "degree √(C·T), 0–1",
     {"county": "county", "balance": "balance", "esdr": "ESDR", "quadrant": "quadrant", "coupling": "coupling C", "ccd": "coordination"}),
    ("moran", "moran", "Global Moran's I (moran.csv): spatial autocorrelation of each variable over the counties, I above EI = "
     "clustering; p_sim is the permutation pseudo p-value; the bivariate row is supply density against neighbours' demand",
     {"variable": "variable", "I": "I", "EI": "EI", "z": "z", "p_sim": "p"}),
    ("lisa", "lisa", "LISA clusters (lisa.csv): local Moran's I per county; HH/LL a county like its neighbours (high/low), "
     "HL/LH an outlier, at p_sim < alpha",
     {"county": "county", "variable": "variable", "local_i": "local I", "p_sim": "p", "cluster": "cluster"}),
    ("hotspots", "hotspots", "Getis–Ord Gi* hot and cold spots (hotspots.csv): counties whose neighbourhood is significantly high "
     "(hot) or low (cold)", {"county": "county", "variable": "variable", "gi_star_z": "Gi* z", "p_sim": "p", "spot": "spot"}),
    ("uncertainty_by_county", "uncertainty", "Density uncertainty (uncertainty_by_county.csv): Monte Carlo of the pools' densities; "
     "5–95 % intervals of supply and ratio, and the share of draws that put each county in each zone",
     {"county": "county", "supply_t_mean": "supply mean (t C)", "supply_t_p05": "supply p05", "supply_t_p95": "supply p95",
      "ratio_p05": "ratio p05", "ratio_p95": "ratio p95"}),
    ("cells_moran", "cells-moran", "Grid cells (cells/): the study again on square cells: supply_by_cell.csv, ratio_zones_by_cell.csv "
     "(densities, ratio, zone, matching per cell), cells.gpkg, cell GeoTIFFs, lisa.csv, hotspots.csv and uncertainty_by_cell.csv; "
     "here the cells' global Moran's I", {"variable": "variable", "I": "I", "EI": "EI", "z": "z", "p_sim": "p"}),
]
EXACT_COLUMNS = ("lucode", "class", "population", "pixels")
# Tables of the page that are not a file of their own name.
TABLE_FILES = {"matching": "ratio_zones.csv", "cells_moran": "cells/moran.csv"}


def report_inputs(result: Any, out: Path) -> ReportInputs:
    """What the page shows, from a :class:`~carbonscape.study.StudyResult` (tables keyed by
    ``county``) and the county key that :func:`~carbonscape.draw_maps` wrote into ``out/maps``."""
    if not result.run_info:
        raise InputError(f"{result.out}: no run.json; the report needs the whole study: run `carbonscape zoning {result.out}` "
                         "(or `carbonscape run` / `demo`) into this folder first")

    def keyed(frame: pd.DataFrame) -> pd.DataFrame | None:
        if frame is None or frame.empty:
            return None
        return frame.reset_index().rename(columns={frame.index.name or "index": "county"}) if "county" not in frame.columns else frame

    tables = {
        "ratio_zones": keyed(result.ratio_zones),
        "supply_by_class": result.supply.by_class if not result.supply.by_class.empty else None,
        "supply_by_county": result.supply.by_county if not result.supply.by_county.empty else None,
        "demand_by_county": keyed(result.demand),
        "supply_by_pool": result.supply.by_pool if not result.supply.by_pool.empty else None,
    }
    tables.update(_second_half_tables(result, keyed))
    key_path = out / "maps" / "county_key.csv"
    key = pd.read_csv(key_path, dtype={"county": str}) if key_path.exists() else None
    return ReportInputs(info=result.run_info, tables={k: v for k, v in tables.items() if v is not None}, key=key)


def _second_half_tables(result: Any, keyed: Any) -> dict[str, pd.DataFrame | None]:
    """The matching, spatial statistics, uncertainty and grid-cell tables a result holds."""
    statistics, uncertainty, cells = (getattr(result, name, None) for name in ("statistics", "uncertainty", "cells"))
    ratio = keyed(result.ratio_zones)
    return {
        "matching": ratio if ratio is not None and "esdr" in ratio.columns else None,
        "moran": statistics.moran if statistics is not None else None,
        "lisa": statistics.lisa if statistics is not None else None,
        "hotspots": statistics.hotspots if statistics is not None else None,
        "uncertainty_by_county": uncertainty.by_unit.rename_axis("county").reset_index() if uncertainty is not None else None,
        "cells_moran": cells.statistics.moran if cells is not None and cells.statistics is not None else None,
    }


# --------------------------------------------------------------------------------------------
# The page


def _cell(value: Any, column: str) -> tuple[str, bool]:
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        if pd.isna(value):
            return "", True
        if column in EXACT_COLUMNS and float(value).is_integer():
            return f"{int(value):,}", True
        return fmt(value), True
    return html.escape("" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)), False


def _table_html(table_id: str, frame: pd.DataFrame, columns: dict[str, str]) -> str:
    present = [c for c in columns if c in frame.columns]
    head = "".join(f"<th>{html.escape(columns[c])}</th>" for c in present)
    rows = []
    for record in frame[present].itertuples(index=False):
        cells = []
        for c, value in zip(present, record):
            text, numeric = _cell(value, c)
            cells.append(f'<td class="n">{text}</td>' if numeric else f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _kv_table(pairs: Iterable[tuple[str, Any]], css_id: str = "") -> str:
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>" for k, v in pairs)
    return f'<table{f" id={css_id!r}" if css_id else ""}>{rows}</table>'


def _file_name(value: Any) -> str:
    """A path shown by its file name only: the report never shows the folders of the machine."""
    text = str(value or "")
    return Path(text).name if text else ""


def _zone_colours(n: int) -> list[str]:
    from matplotlib import colormaps, colors

    from carbonscape.maps import RATIO_CMAP

    values = [0.5] if n <= 1 else list(np.linspace(0.95, 0.05, n))  # highest ratio first: red → green
    return [colors.to_hex(colormaps[RATIO_CMAP](v)) for v in values]


def _summary(inputs: ReportInputs) -> str:
    info = inputs.info
    totals = info.get("totals") or {}
    units = info.get("units") or {}
    figures = [
        (amount(totals.get("supply_t"), "t C"), "carbon stored (supply)"),
        (amount(totals.get("total_demand_t"), "t CO₂/yr"), "emitted a year (demand)"),
        (amount(totals.get("regional_density_t_per_km2"), "t CO₂/km²"), "regional demand density"),
        (amount(totals.get("supply_t_per_km2_regional"), "t C/km²"),
         "regional supply density" + (f" ({LOW_MARK} counties over their covered area)" if _low_coverage_names(inputs.tables.get("ratio_zones")) else "")),
        (amount(totals.get("total_population"), "people"), "population"),
        (amount(totals.get("area_km2_polygons") or totals.get("total_area_km2"), "km²"), "area"),
        (f"{int(totals['counties']):,}" if isinstance(totals.get("counties"), (int, float)) else "", "counties"),
    ]
    parts = ['<section id="summary"><h2>Summary</h2><div class="figures">']
    parts += [f'<div class="figure"><b>{html.escape(v)}</b><span>{html.escape(label)}</span></div>' for v, label in figures if v]
    parts.append("</div>")
    infinite = totals.get("counties_with_infinite_ratio") or 0
    ratio_table = inputs.tables.get("ratio_zones")
    if ratio_table is not None and "ratio" in ratio_table.columns:
        infinite = int(np.isposinf(pd.to_numeric(ratio_table["ratio"], errors="coerce")).sum())
    ratio_unit = str(units.get("ratio") or "demand density over supply density").split(" (ratio = ")[0]
    parts.append(f'<p class="note">Ratio = carbon demand density ÷ supply density: the higher it is, the more a county\'s yearly emissions '
                 f"weigh on the carbon it stores. Units: {html.escape(str(ratio_unit))}."
                 + (f" {int(infinite):,} {'county stores' if infinite == 1 else 'counties store'} no carbon (infinite ratio), listed apart from the "
                    "ratios below." if infinite else "") + "</p>")
    parts.append(_grid_note(info))
    ratio = inputs.tables.get("ratio_zones")
    zones_html = extremes_html = ""
    low = _low_coverage_names(ratio)
    if low:
        parts.append(f'<p class="note" id="low-coverage-note">{LOW_MARK} {len(low):,} '
                     f"{'county is' if len(low) == 1 else 'counties are'} covered by the land-use raster less than "
                     f"{LOW_COVERAGE_SHARE:g} of {'its' if len(low) == 1 else 'their'} area, accepted by the study's min_coverage: "
                     f"{'its supply density is' if len(low) == 1 else 'their supply densities are'} over the covered area only, "
                     f"so {'its' if len(low) == 1 else 'their'} ratio is less certain: {html.escape('、'.join(sorted(low)))}.</p>")
    if ratio is not None and not ratio.empty:
        groups = zone_groups(ratio)
        if groups:
            ratios = pd.to_numeric(ratio["ratio"], errors="coerce") if "ratio" in ratio.columns else None
            items = []
            for group, colour in zip(groups, _zone_colours(len(groups))):
                members = ratio["county"].astype(str).isin(group.counties)
                span = ""
                if ratios is not None:
                    finite = ratios[members & np.isfinite(ratios)]
                    if not finite.empty:
                        span = f"ratio {fmt(finite.min())}–{fmt(finite.max())}"
                meaning = zone_meaning(group.key, group.zone, group.zone_en)
                names = [html.escape(n) + (LOW_MARK if n in low else "") for n in group.counties]
                if len(names) <= NAMES_INLINE:
                    who = "、".join(names)
                else:
                    who = ("、".join(names[:NAMES_INLINE // 2]) + f' … <details><summary>all {len(names):,} counties</summary>'
                           + "、".join(names) + "</details>")
                title = " ".join(html.escape(p) for p in dict.fromkeys((group.zone, group.zone_en)) if p)
                items.append(f'<li style="--c:{colour}"><b>{title}</b> · {len(group.counties):,} counties'
                             + (f" · {span}" if span else "")
                             + (f'<div class="what">{html.escape(meaning)}</div>' if meaning else "")
                             + f'<div class="who">{who}</div></li>')
            zones_html = '<div><h3>Functional zones, highest ratio first</h3><ul class="zones">' + "".join(items) + "</ul></div>"
        if "ratio" in ratio.columns:
            ranked = ratio.assign(rank_ratio=pd.to_numeric(ratio["ratio"], errors="coerce"))
            ranked = ranked[np.isfinite(ranked["rank_ratio"])]  # counties with no supply are counted apart
            ranked = ranked.sort_values("rank_ratio", ascending=False, kind="stable")
            n = min(5, len(ranked))
            if n:
                tables = []
                for title, rows, table_id in (("Five highest ratios", ranked.head(n), "highest"),
                                              ("Five lowest ratios", ranked.tail(n).iloc[::-1], "lowest")):
                    body = "".join(f'<tr><td>{html.escape(str(r.county))}{LOW_MARK if str(r.county) in low else ""}</td><td class="n">{fmt(r.rank_ratio)}</td>'
                                   f"<td>{html.escape(str(getattr(r, 'zone', '') or ''))}</td></tr>" for r in rows.itertuples())
                    tables.append(f'<div><h3>{title}</h3><table id="{table_id}"><thead><tr><th>county</th><th>ratio</th><th>zone</th></tr>'
                                  f"</thead><tbody>{body}</tbody></table></div>")
                extremes_html = '<div class="extremes">' + "".join(tables) + "</div>"
    if zones_html or extremes_html:
        parts.append(f'<div class="columns">{zones_html}{extremes_html}</div>')
    parts.append("</section>")
    return "".join(parts)


LOW_MARK = "†"  # beside a county accepted with low coverage, in the summary's zone lists and tables
LOW_COVERAGE_SHARE = DEFAULT_MIN_COVERAGE  # below it an accepted county's density is over its covered area


def _low_coverage_names(ratio: pd.DataFrame | None) -> set[str]:
    """The counties flagged ``low_coverage`` in the ratio table (accepted by a lowered min_coverage)."""
    if ratio is None or ratio.empty or "low_coverage" not in ratio.columns:
        return set()
    flags = ratio["low_coverage"].map(lambda v: str(v).strip().lower() in ("true", "1", "1.0"))
    return set(ratio.loc[flags, "county"].astype(str))


def _grid_note(info: dict[str, Any]) -> str:
    """How areas and coverage were measured (run.json's ``supply_summary``): the raster's CRS and
    pixel size, the area rule and how far nominal pixel areas would have been off, the coverage
    rule and ``min_coverage``, and the counties the warnings named (partial cover, coarse pixels)."""
    summary = info.get("supply_summary") or {}
    if not summary:
        return ""
    sentences = []
    crs, size = summary.get("crs"), summary.get("pixel_size")
    if crs:
        pixel = ""
        if isinstance(size, (list, tuple)) and len(size) == 2:
            unit = "°" if summary.get("geographic") else " m"
            pixel = f", pixels {abs(size[0]):.6g} × {abs(size[1]):.6g}{unit}"
        sentences.append(f"Land-use grid: {html.escape(str(crs))}{pixel}.")
    areas = summary.get("areas") or {}
    if areas.get("rule"):
        rule = f"Pixel areas: {html.escape(str(areas['rule']))}"
        off = areas.get("largest_nominal_vs_true_difference_pct")
        if isinstance(off, (int, float)) and off > 0:
            rule += f" (the nominal pixel area would be off by up to {fmt(off)} %)"
        sentences.append(rule + ".")
    coverage = summary.get("coverage") or {}
    if coverage.get("mode"):
        how = ("boundary pixels shared among counties by their exact covered fraction" if coverage["mode"] == "fraction"
               else "each pixel in the county holding its centre")
        threshold = coverage.get("min_coverage")
        sentences.append(f"Counties: {how}; min_coverage {threshold:g}." if isinstance(threshold, (int, float)) else f"Counties: {how}.")
    for key, what in (("partial_counties", "missing more than 1 % of their area (outside the raster or nodata), densities over the whole polygon"),
                      ("coarse_counties", "coarse for the pixels (under 100 pixels or their pixel area over 2 % off the polygon): "
                                          "consider coverage = \"fraction\"")):
        names = coverage.get(key) or []
        if names:
            shown = "、".join(html.escape(str(n)) for n in names[:20]) + (f" … ({len(names):,} in all)" if len(names) > 20 else "")
            sentences.append(f"{len(names):,} {'county' if len(names) == 1 else 'counties'} {what}: {shown}.")
    return f'<p class="note" id="grid-note">{" ".join(sentences)}</p>' if sentences else ""


def _found(out: Path, stem: str) -> tuple[Path, str] | None:
    """The map ``out/stem`` as the page embeds it: its PNG, else its SVG, else None."""
    for suffix, mime in ((".png", "image/png"), (".svg", "image/svg+xml")):
        if (out / f"{stem}{suffix}").exists():
            return out / f"{stem}{suffix}", mime
    return None


def _figures(out: Path, entries: list[tuple[str, str]], *, max_width: int = REPORT_IMAGE_WIDTH) -> list[str]:
    """The ``<figure>`` of each map of ``entries`` (stem relative to ``out``, caption) found on disk,
    cut to a screen's width and linked to its full-resolution file."""
    found = [(stem, caption, _found(out, stem)) for stem, caption in entries]
    found = [(stem, caption, entry) for stem, caption, entry in found if entry is not None]
    pngs = [entry[0] for _, _, entry in found if entry[1] == "image/png"]
    if not found:
        return []
    # Pillow decodes, resizes, quantises and encodes without the GIL: the maps in parallel.
    from concurrent.futures import ThreadPoolExecutor

    kept = {path: _taken_image(path, max_width) for path in pngs}
    left = [path for path in pngs if kept[path] is None]
    with ThreadPoolExecutor(max_workers=max(1, min(len(left), os.cpu_count() or 1))) as pool:
        cut = {**kept, **dict(zip(left, pool.map(lambda path: report_image(path, max_width=max_width), left)))}
    figures = []
    for _stem, caption, (image, mime) in found:
        raw = cut[image] if mime == "image/png" else image.read_bytes()
        data = base64.b64encode(raw).decode("ascii")
        link = image.relative_to(out).as_posix()
        figures.append(f'<figure><img class="map" alt="{html.escape(caption)}" src="data:{mime};base64,{data}">'
                       f'<figcaption>{html.escape(caption)} · full resolution beside this page: <a href="{link}">{link}</a>'
                       "</figcaption></figure>")
    return figures


def _maps(out: Path | None, inputs: ReportInputs) -> str:
    figures = []
    maps_dir = out / "maps" if out is not None else None
    if out is not None:
        # draw_maps leaves only the files of its latest draw; a PNG is embedded, else an SVG.
        figures = _figures(out, [(f"maps/{stem}", caption) for stem, caption in MAP_CAPTIONS.items()])
    if not figures:
        note = "No maps in this study's folder; draw them with <code>carbonscape maps</code>."
        if maps_dir is not None and any(maps_dir.glob("*.pdf")):
            note = "The maps were drawn as PDF only (in <code>maps/</code>); <code>carbonscape maps</code> draws the PNGs this page shows."
        return f'<h2>Maps</h2><p class="note">{note}</p>'
    key = ""
    if inputs.key is not None and "number" in inputs.key.columns:
        numbered = inputs.key.dropna(subset=["number"]).sort_values("number")
        if not numbered.empty:
            rows = "".join(f'<tr><td class="n">{int(r.number)}</td><td>{html.escape(str(r.county))}</td></tr>' for r in numbered.itertuples())
            key = (f"<details><summary>Counties shown by number on the maps ({len(numbered):,})</summary>"
                   f'<table id="county-key"><thead><tr><th>number</th><th>county</th></tr></thead><tbody>{rows}</tbody></table></details>')
    return "<h2>Maps</h2>" + key + "".join(figures)


def _second_half_maps(out: Path | None) -> str:
    """A section per part of the second half (matching, spatial statistics, uncertainty, grid cells)
    whose maps exist beside the page."""
    if out is None:
        return ""
    parts = []
    for section_id, heading, note, entries in SECOND_HALF_MAPS:
        figures = _figures(out, entries, max_width=SECOND_HALF_IMAGE_WIDTH)
        if figures:
            parts.append(f'<section id="{section_id}"><h2>{html.escape(heading)}</h2><p class="note">{html.escape(note)}</p>'
                         + "".join(figures) + "</section>")
    return "".join(parts)


# The page's images of maps drawn in this process, made from the pixels in memory as each PNG was
# written (:func:`keep_report_image`): by (file, its size and mtime, width).
_KEPT: dict[tuple[str, int, int, int], bytes] = {}
_KEEPING = [False]


@contextlib.contextmanager
def keeping_images() -> Iterator[None]:
    """While inside, each map PNG drawn hands its page image to the report
    (:func:`keep_report_image`): for a drawing that a report follows (a run's, or `carbonscape
    maps` rewriting a report.html). Images kept earlier and never taken are dropped."""
    _KEPT.clear()
    was, _KEEPING[0] = _KEEPING[0], True
    try:
        yield
    finally:
        _KEEPING[0] = was


def _file_key(path: Path, max_width: int) -> tuple[str, int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, int(max_width))


def _taken_image(path: Path, max_width: int) -> bytes | None:
    """The page's image of ``path`` kept when it was drawn, if the file is still that one."""
    key = _file_key(path, max_width)
    return _KEPT.pop(key, None) if key is not None else None


def embedded_width(path: Path) -> int:
    """How wide the page embeds the map ``path`` (Figs. 1–5 a screen's width, the second half's maps
    narrower)."""
    return REPORT_IMAGE_WIDTH if Path(path).stem in MAP_CAPTIONS else SECOND_HALF_IMAGE_WIDTH


def keep_report_image(path: Path, pixels: Any) -> None:
    """Make the page's image of the map PNG just written at ``path`` from its pixels still in memory
    (``pixels``: RGBA rows, top first, exactly the PNG's), so that the report does not decode the
    file again: a nation's sheets are 12 Mpx, and two decoded at once in the report's threads were
    the run's memory peak. Kept until the report takes it, for the file as it is now."""
    if not _KEEPING[0]:
        return
    from PIL import Image

    max_width = embedded_width(path)
    key = _file_key(path, max_width)
    if key is None:
        return
    pixels = np.asarray(pixels)
    with Image.open(path) as written:  # the header only: the pixels must be the file's
        if written.size != (pixels.shape[1], pixels.shape[0]):
            return
    image = Image.frombuffer("RGBA", (pixels.shape[1], pixels.shape[0]), np.ascontiguousarray(pixels), "raw", "RGBA", 0, 1)
    _KEPT[key] = _cut(image, max_width=max_width, colours=REPORT_IMAGE_COLOURS)


def report_image(path: Path, *, max_width: int = REPORT_IMAGE_WIDTH, colours: int = REPORT_IMAGE_COLOURS) -> bytes:
    """A map PNG as the page embeds it: at most ``max_width`` pixels wide (a screen's width; the
    full-resolution file stays in ``maps/`` for print) and cut to a palette of ``colours``
    colours, without dithering, so the flat fills and text compress a few times smaller.

    Pillow does this (a well-kept library; matplotlib already depends on it)."""
    from PIL import Image

    with Image.open(path) as image:
        image.load()
        return _cut(image, max_width=max_width, colours=colours)


def _cut(image: Any, *, max_width: int, colours: int) -> bytes:
    """:func:`report_image` of a decoded image."""
    from PIL import Image

    rgb = image.convert("RGB")
    if rgb.width > max_width:
        rgb = rgb.resize((max_width, round(rgb.height * max_width / rgb.width)), Image.Resampling.BOX)
    palette = rgb.quantize(colors=colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _tables(inputs: ReportInputs) -> str:
    parts = ['<h2>Tables</h2><p class="note">Rounded to three significant figures here; the CSV files beside this page keep full '
             "precision.</p>"]
    for name, table_id, caption, columns in TABLES:
        frame = inputs.tables.get(name)
        if frame is None:
            continue
        parts.append(f"<details><summary>{html.escape(caption)} ({len(frame):,} rows, <code>{TABLE_FILES.get(name, name + '.csv')}</code>)</summary>"
                     + _table_html(table_id, frame, columns) + "</details>")
    return "".join(parts)


def _parameters(info: dict[str, Any]) -> str:
    study = info.get("study") or {}
    zoning = info.get("zoning") or {}
    edges = zoning.get("edges") or []
    gvf = zoning.get("gvf")
    pairs = [
        ("study file", _file_name(study.get("file"))),
        ("county id field", study.get("id_field", "")),
        ("per-capita emission", amount(study.get("per_capita_t"), "t CO₂/person")),
        ("ratio units", study.get("ratio_units", "")),
        ("zoning", f"{zoning.get('method', '')}, k = {zoning.get('k', '')}, scheme {zoning.get('scheme', '')}"),
        ("class edges", ", ".join(fmt(e, 4) for e in edges)),
        ("goodness of variance fit", fmt(gvf) if isinstance(gvf, (int, float)) else gvf or ""),
    ]
    left_out = (info.get("cells") or {}).get("statistics_left_out")
    if left_out:  # [statistics] enabled = true with too few grid cells: the counties' statistics ran, the cells' did not
        pairs.append(("grid-cell statistics", left_out))
    return "<details><summary>Parameters</summary>" + _kv_table(pairs, "parameters") + "</details>"


def _provenance(info: dict[str, Any]) -> str:
    inputs = info.get("inputs") or []
    rows = "".join(f"<tr><td>{html.escape(str(i.get('role', '')))}</td><td>{html.escape(_file_name(i.get('path')))}</td>"
                   f"<td class=\"n\">{int(i.get('bytes', 0) or 0):,}</td><td><code>{html.escape(str(i.get('sha256', '')))}</code></td></tr>"
                   for i in inputs)
    where = [(k, v) for k, v in (info.get("where") or {}).items()]
    timings = [(f"time: {k}", f"{fmt(v)} s") for k, v in (info.get("timings_s") or {}).items() if isinstance(v, (int, float))]
    return ("<details><summary>Provenance: input files, versions, timings</summary>"
            '<table id="inputs"><thead><tr><th>role</th><th>file</th><th>bytes</th><th>sha256</th></tr></thead><tbody>' + rows + "</tbody></table>"
            + "<h3>Where and how long</h3>" + _kv_table(where + timings)
            + "<h3>Versions</h3>" + _kv_table(list((info.get("versions") or {}).items())) + "</details>")


def cjk_font_face(text: str) -> str:
    """A data URL of the bundled CJK font cut to the Chinese characters of ``text`` (a few kB per
    hundred characters), or "" when there are none."""
    from carbonscape.fonts import CJK_FAMILY, cjk_font_path, has_cjk

    # The distinct characters first: the page holds megabytes of embedded images.
    chars = sorted(ch for ch in set(text) if has_cjk(ch) or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef")
    if not chars:
        return ""
    from fontTools import subset
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(cjk_font_path()), lazy=True)
    font = next(f for f in collection.fonts if f["name"].getDebugName(1) == CJK_FAMILY)
    subsetter = subset.Subsetter(subset.Options(layout_features=["*"], name_IDs=["*"], notdef_outline=True))
    subsetter.populate(text="".join(chars))
    subsetter.subset(font)
    buffer = io.BytesIO()
    font.save(buffer)
    return "data:font/otf;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def write_report(result: Any, *, out: str | os.PathLike[str] | None = None, title: str | None = None) -> Path:
    """Write ``out/report.html`` for a study.

    Parameters
    ----------
    result
        The :class:`~carbonscape.study.StudyResult` of :func:`~carbonscape.run_study` (or of
        :func:`~carbonscape.read_outputs` for a folder; a folder path is read that way too).
    out
        The folder to write into, whose ``maps/`` the page embeds (default: the result's ``out``).
    title
        Page title (default: the study's name).

    Raises
    ------
    InputError
        The result lacks the study record (a folder of the supply or demand stage only).
    """
    if isinstance(result, (str, os.PathLike)):
        from carbonscape.study.read import read_outputs

        result = read_outputs(result)
    out = Path(out) if out is not None else Path(result.out)
    inputs = report_inputs(result, out)
    info = inputs.info
    study = info.get("study") or {}
    heading = title or study.get("name") or "carbonscape study"
    year = f" · {study['year']}" if study.get("year") else ""
    started = str(info.get("started", ""))[:10]
    parts = [
        f"<header><h1>{html.escape(str(heading))}</h1>"
        f'<p class="note">carbon supply and demand by county{html.escape(year)} · computed {html.escape(started)} with carbonscape '
        f"{html.escape(str(info.get('carbonscape', '')))}</p></header>",
        _summary(inputs),
        _maps(out, inputs),
        _second_half_maps(out),
        _tables(inputs),
        "<h2>Method and provenance</h2>",
        _parameters(info),
        _provenance(info),
    ]
    body = "\n".join(parts)
    font = cjk_font_face(body + str(heading))
    css = CSS.replace("FONT_URL", f'"{font}"') if font else CSS.replace('@font-face{font-family:"carbonscape CJK";src:url(FONT_URL) format("opentype")}\n', "")
    page = (f'<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>{html.escape(str(heading))}</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{css}</style></head><body>'
            + body + "</body></html>")
    target = out / "report.html"
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target

