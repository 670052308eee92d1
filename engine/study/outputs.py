"""A study's outputs from its :class:`StudyResult`: the demand and ratio tables, ``counties.gpkg``
and ``run.json`` (the supply tables are written by :func:`carbonscape.supply` beside them), and
the maps and report drawn from them."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd
from carbonscape.demand import demand_totals_table
from carbonscape.io import atomic_path
from carbonscape.ratio import CO2_TO_C, DEMAND_UNITS, UNITS
from carbonscape.study.result import StudyResult

__all__ = ["draw_outputs", "units", "write_outputs", "write_run_json"]

log = logging.getLogger(__name__)

DEMAND_COLUMNS = ["population", "area_km2", "density_per_km2", "demand_t_per_km2", "share_pct", "pixel_area_km2", "emissions_t"]
RATIO_COLUMNS = ["supply_t", "supply_t_per_km2", "demand_t_per_km2", "ratio", "ratio_infinite", "class", "zone", "zone_en", "demand_unit"]


def _write_csv(frame: pd.DataFrame, path: Path, *, index: bool = False) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index, encoding="utf-8", float_format="%.10g")
    return path


def units(ratio_units: str) -> dict[str, Any]:
    """What each output column holds, for run.json: the same name can hold t CO2 or t C."""
    return {
        "ratio_units": ratio_units,
        "ratio": UNITS[ratio_units],
        "supply_t": "t C",
        "supply_t_per_km2": "t C/km²",
        "demand_by_county.csv": {"demand_t_per_km2": DEMAND_UNITS["co2_per_c"], "emissions_t": "t CO2"},
        "ratio_zones.csv": {"demand_t_per_km2": DEMAND_UNITS[ratio_units]},
        "totals": {"sum_of_county_densities_t_per_km2": "t CO2/km²", "regional_density_t_per_km2": "t CO2/km²", "total_demand_t": "t CO2"},
        "counties.gpkg": {
            "supply_t": "t C", "supply_t_c_per_km2": "t C/km²", "emissions_t_co2": "t CO2", "demand_t_co2_per_km2": "t CO2/km²",
            "demand_t_c_per_km2": "t C/km² (demand × 12/44)", "ratio": UNITS[ratio_units],
        },
    }


def write_outputs(result: StudyResult, out: Path, *, id_field: str, per_capita_t: float | None) -> dict[str, Path]:
    """Write the demand and ratio tables, ``counties.gpkg`` and ``run.json`` into ``out``.

    Returns the files written, by name (also added to ``result.files``).
    """
    files: dict[str, Path] = {}
    demand = result.demand
    demand_out = demand[[c for c in DEMAND_COLUMNS if c in demand.columns]].reset_index().rename(columns={demand.index.name or "index": "county"})
    demand_out["demand_unit"] = DEMAND_UNITS["co2_per_c"]  # demand itself is always t CO2/km²
    files["demand_by_county"] = _write_csv(demand_out, out / "demand_by_county.csv")
    files["demand_totals"] = _write_csv(demand_totals_table(demand, per_capita_t=per_capita_t), out / "demand_totals.csv")
    ratio_out = result.ratio_zones[[c for c in RATIO_COLUMNS if c in result.ratio_zones.columns]].reset_index()
    files["ratio_zones"] = _write_csv(ratio_out, out / "ratio_zones.csv")
    if result.polygons is not None:
        files["counties"] = _write_counties(result, out=out, id_field=id_field)
    result.files.update(files)
    files["run"] = write_run_json(result, out)
    return files


def write_run_json(result: StudyResult, out: Path) -> Path:
    """``run.json``: parameters, totals, units, inputs, versions, timings."""
    path = out / "run.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(result.run_info, indent=2, ensure_ascii=False), encoding="utf-8")
    result.files["run"] = path
    return path


def _write_counties(result: StudyResult, *, out: Path, id_field: str) -> Path:
    """``counties.gpkg``: the polygons with every county figure, each column named with its unit."""
    polygons = result.polygons
    assert polygons is not None
    keys = polygons[id_field].astype(str)
    index = pd.Index(keys, name="county")
    by_county = result.supply.by_county.assign(county=result.supply.by_county["county"].astype(str)).set_index("county")
    demand, ratio_zones = result.demand, result.ratio_zones
    columns = {
        "area_km2": demand["area_km2"].reindex(index),
        "pixel_area_km2": by_county["area_km2"].reindex(index),
        "pixels": by_county["pixels"].reindex(index),
        "supply_t": by_county["supply_t"].reindex(index),  # t C
        "supply_share_pct": by_county["share_pct"].reindex(index),
        "supply_t_c_per_km2": ratio_zones["supply_t_per_km2"].reindex(index),
        "population": demand["population"].reindex(index),
        "population_per_km2": demand["density_per_km2"].reindex(index),
        "emissions_t_co2": demand["emissions_t"].reindex(index),
        "demand_t_co2_per_km2": demand["demand_t_per_km2"].reindex(index),
        "demand_t_c_per_km2": demand["demand_t_per_km2"].reindex(index) * CO2_TO_C,
        "demand_share_pct": demand["share_pct"].reindex(index),
        **{c: ratio_zones[c].reindex(index) for c in ("ratio", "ratio_infinite", "class", "zone", "zone_en", "zone_key") if c in ratio_zones},
        "ratio_demand_unit": ratio_zones["demand_unit"].reindex(index),
    }
    attributes = polygons.copy()
    # The id field itself named "county" is the same values, not a clash worth a message.
    clashing = [c for c in ["county", *columns] if c in attributes.columns and c != polygons.geometry.name and c != id_field]
    if clashing:
        log.info("counties.gpkg: the computed %s replace the polygon file's columns of the same name", clashing)
    attributes = attributes.drop(columns=clashing)
    attributes["county"] = keys.to_numpy()
    for name, values in columns.items():
        attributes[name] = values.to_numpy()
    path = out / "counties.gpkg"
    with atomic_path(path) as tmp:
        attributes.to_file(tmp, layer="counties", driver="GPKG", engine="pyogrio")
    return path


def draw_outputs(result: StudyResult, *, maps: bool = True, report: bool = True, title: str | None = None) -> None:
    """Draw the maps and write report.html of a finished run, recording their timings in run.json."""
    if not (maps or report):
        return
    timings = result.run_info["timings_s"]
    if maps:
        from carbonscape.maps import draw_maps

        clock = time.perf_counter()
        for path in draw_maps(result.out):
            result.files[f"map:{path.stem}"] = path
        timings["maps"] = round(time.perf_counter() - clock, 3)
    if report:
        from carbonscape.report import write_report

        clock = time.perf_counter()
        result.files["report"] = write_report(result.out, title=title)
        timings["report"] = round(time.perf_counter() - clock, 3)
    write_run_json(result, result.out)
