"""The stages of :func:`~carbonscape.run_study` one at a time, over one results folder.

`carbonscape run` does ingest → zones → supply → demand → ratio and zoning → maps → report in
one go. The step-by-step path does the same with one command (and one function) per stage, so a
user can redo one stage with other settings and keep the rest:

============  ==============================  ================================================
stage         function                        writes
============  ==============================  ================================================
ingest        :func:`carbonscape.ingest`         a land-use Zarr store
zones         :func:`carbonscape.rasterize_zones`  a county-id Zarr store on the land-use grid
supply        :func:`carbonscape.supply`         ``supply_by_*.csv``, ``supply_summary.json``
demand        :func:`demand_stage`               ``demand_by_county.csv``, ``demand_totals.csv``
zoning        :func:`zoning_stage`               ``ratio_zones.csv``, ``counties.gpkg``, ``run.json``
statistics    :func:`statistics_stage`           ``moran.csv``, ``lisa.csv``, ``hotspots.csv``, ``uncertainty_by_county.csv``
cells         :func:`cells_stage`                ``cells/``: the grid-cell analysis again, from its supply and demand
maps          :func:`carbonscape.draw_maps`      ``maps/``
report        :func:`carbonscape.write_report`   ``report.html``
============  ==============================  ================================================

Each stage after supply reads the folder through :func:`~carbonscape.read_outputs` and writes
through the same writers as `run`, so the folder ends up as `run` leaves it. The demand stage
records its settings (county polygons, id field, per-capita emission) in ``stages.json`` for the
zoning stage.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from carbonscape.demand import demand_by_county, demand_totals, demand_totals_table, per_capita_emission, read_county_table
from carbonscape.errors import InputError
from carbonscape.io import atomic_path
from carbonscape.matching import matching_indices
from carbonscape.rasterize import geodesic_areas_km2, read_polygons
from carbonscape.ratio import DEMAND_UNITS, UNIT_ALIASES, supply_demand_ratio
from carbonscape.study.outputs import DEMAND_COLUMNS, write_outputs
from carbonscape.study.pipeline import _supply_area_km2, _with_coverage, regional_supply_density
from carbonscape.study.outputs import units as output_units
from carbonscape.study.provenance import Timings, describe_inputs, jsonable, versions, where
from carbonscape.study.read import read_outputs
from carbonscape.study.result import StudyResult
from carbonscape.zoning import zone_ratios

__all__ = ["cells_stage", "demand_stage", "statistics_stage", "zoning_stage"]

STAGES_FILE = "stages.json"


def _stages(out: Path) -> dict[str, Any]:
    path = out / STAGES_FILE
    if not path.exists():
        return {}
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} cannot be read ({exc}); run `carbonscape demand` into {out} again") from exc


def _write_json(path: Path, value: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, ensure_ascii=False), encoding="utf-8")


def _need_supply(result: StudyResult, stage: str) -> pd.DataFrame:
    by_county = result.supply.by_county
    if by_county.empty or "supply_t" not in by_county.columns:
        raise InputError(f"{result.out}: no supply_by_county.csv; run `carbonscape supply ... --out {result.out}` before `carbonscape {stage}`")
    return by_county.assign(county=by_county["county"].astype(str)).set_index("county")


def demand_stage(
    out: str | os.PathLike[str],
    *,
    counties: str | os.PathLike[str],
    id_field: str,
    table: str | os.PathLike[str],
    key: str | None = None,
    population: str = "population",
    per_capita_t: float | None = None,
    total_emissions_t: float | None = None,
    total_population: float | None = None,
    emissions_column: str | None = None,
    layer: str | None = None,
    sheet: str | None = None,
) -> StudyResult:
    """Carbon demand per county (t CO₂/km²) beside the supply tables of ``out``.

    Demand = per-capita emission × population density (METHOD.md formula 3), or each county's
    own emissions / its area; areas are the polygons' true (ellipsoidal) areas.

    Parameters
    ----------
    out
        The folder ``carbonscape supply`` wrote.
    counties, id_field, layer
        The county polygons (the same as for the zones stage) and their key field.
    table, key, population, sheet
        The county table (CSV or XLSX), its key column (default: ``id_field``) and population column.
    per_capita_t, total_emissions_t, total_population, emissions_column
        Exactly one of: the emission per person (t CO₂); the region's total emissions and
        population (per capita = their quotient); a column of each county's emissions (t CO₂).

    Returns
    -------
    StudyResult
        The folder as read back, with ``demand`` filled (``demand_by_county.csv`` and
        ``demand_totals.csv`` written).

    Raises
    ------
    InputError
        No supply tables in ``out``, a bad table or polygons, or not exactly one demand source.
    """
    folder = Path(out)
    result = read_outputs(folder)
    by_county = _need_supply(result, "demand")
    given = [name for name, value in (("per_capita_t", per_capita_t), ("emissions_column", emissions_column)) if value is not None]
    if total_emissions_t is not None or total_population is not None:
        if total_emissions_t is None or total_population is None:
            raise InputError("give both total_emissions_t and total_population (per capita = their quotient), or per_capita_t")
        given.append("total_emissions_t/total_population")
    if len(given) != 1:
        raise InputError(f"give exactly one demand source: per_capita_t, total_emissions_t with total_population, or emissions_column "
                         f"(got {', '.join(given) or 'none'})")
    if per_capita_t is None and total_emissions_t is not None and total_population is not None:
        per_capita_t = per_capita_emission(total_emissions_t=total_emissions_t, total_population=total_population)
    polygons = read_polygons(counties, id_field=id_field, layer=layer)
    keys = polygons[id_field].astype(str)
    area_km2 = pd.Series(geodesic_areas_km2(polygons), index=pd.Index(keys, name="county"))
    numeric = [population] + ([emissions_column] if emissions_column else [])
    county_table = read_county_table(table, key=key or id_field, sheet=sheet, numeric=numeric)
    county_table.index = county_table.index.astype(str)
    demand = demand_by_county(county_table, area_km2=area_km2, pixel_area_km2=by_county["area_km2"], per_capita_t=per_capita_t,
                              emissions_column=emissions_column, population_column=population)
    demand_out = demand[[c for c in DEMAND_COLUMNS if c in demand.columns]].reset_index().rename(columns={demand.index.name or "index": "county"})
    demand_out["demand_unit"] = DEMAND_UNITS["co2_per_c"]  # demand itself is always t CO2/km²
    for name, frame in (("demand_by_county", demand_out), ("demand_totals", demand_totals_table(demand, per_capita_t=per_capita_t))):
        with atomic_path(folder / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False, encoding="utf-8", float_format="%.10g")
    inputs = [("counties", Path(counties).absolute()), ("demand", Path(table).absolute())]
    _write_json(folder / STAGES_FILE, {**_stages(folder), "demand": {
        "counties": str(Path(counties).absolute()), "id_field": id_field, "layer": layer, "table": str(Path(table).absolute()),
        "key": key or id_field, "population": population, "per_capita_t": per_capita_t, "total_emissions_t": total_emissions_t,
        "total_population": total_population, "emissions_column": emissions_column, "sheet": sheet,
        "inputs": describe_inputs(inputs),
    }})
    return read_outputs(folder)


def zoning_stage(
    out: str | os.PathLike[str],
    *,
    ratio_units: str = "co2_per_c",
    method: str = "jenks",
    k: int = 7,
    breaks: list[float] | None = None,
    weights: str | None = None,
    scheme: str = "four_zones",
    name: str | None = None,
    year: int | None = None,
    source: str | None = None,
    supply_weight: float = 0.5,
    demand_weight: float = 0.5,
) -> StudyResult:
    """The supply–demand ratio and its functional zones for the supply and demand of ``out``,
    and the study's combined outputs: ``ratio_zones.csv``, ``counties.gpkg`` and ``run.json``.

    Ratio = demand density / supply density (METHOD.md formula 4); classes by ``method`` (exact
    Fisher–Jenks natural breaks, quantiles, equal intervals or manual ``breaks``), zones by
    ``scheme`` (formula 5).

    Parameters
    ----------
    out
        The folder the supply and demand stages wrote.
    ratio_units
        ``"co2_per_c"`` (t CO₂ over t C, compared directly) or ``"carbon"`` (demand × 12/44).
    method, k, breaks, weights, scheme
        As in the study file's ``[zoning]``; ``weights="area"`` weighs each county by its area.
    name, year, source
        What the maps and report call the study, its year and its data sources.
    supply_weight, demand_weight
        Weights of the coupling coordination degree among the matching indices (``[matching]``).

    Returns
    -------
    StudyResult
        Complete: ready for :func:`~carbonscape.draw_maps` and :func:`~carbonscape.write_report`.

    Raises
    ------
    InputError
        No supply or demand in ``out`` (the stage to run is named), or bad zoning settings.
    """
    folder = Path(out)
    timings = Timings()
    started = datetime.now(UTC)
    previous = read_outputs(folder)
    by_county = _need_supply(previous, "zoning")
    settings = _stages(folder).get("demand")
    if previous.demand.empty or not settings:
        raise InputError(f"{folder}: no demand_by_county.csv from `carbonscape demand`; run `carbonscape demand {folder} ...` before "
                         "`carbonscape zoning`")
    ratio_units = UNIT_ALIASES.get(ratio_units, ratio_units)
    polygons = read_polygons(settings["counties"], id_field=settings["id_field"], layer=settings.get("layer"))
    keys = polygons[settings["id_field"]].astype(str)
    polygons = polygons.assign(county=keys.to_numpy())
    area_km2 = pd.Series(geodesic_areas_km2(polygons), index=pd.Index(keys, name="county"))
    polygons["area_km2"] = area_km2.to_numpy()
    demand = previous.demand
    demand.index = demand.index.astype(str)
    supply_area_km2 = _supply_area_km2(by_county, area_km2)  # low-coverage counties: their covered area, as `run`
    ratio = supply_demand_ratio(by_county["supply_t"], demand, units=ratio_units, supply_area_km2=supply_area_km2)
    ratio = _with_coverage(ratio, by_county)
    zones_frame, zoning_info = zone_ratios(ratio["ratio"], method=method, k=k, breaks=breaks,
                                           weights=ratio["area_km2"] if weights == "area" else None, scheme=scheme)
    ratio_zones = pd.concat([ratio, zones_frame], axis=1)
    ratio_zones.index.name = "county"
    timings.lap("ratio_zoning")
    ratio_zones = pd.concat([ratio_zones, matching_indices(ratio_zones, alpha=supply_weight, beta=demand_weight)], axis=1)
    total_t = float(by_county["supply_t"].sum())
    totals = {
        "supply_t": total_t,
        "supply_t_per_km2_regional": regional_supply_density(total_t, area_km2, supply_area_km2),
        **demand_totals(demand),
        "counties": int(len(ratio_zones)),
        "counties_with_infinite_ratio": int(ratio_zones["ratio_infinite"].sum()) if "ratio_infinite" in ratio_zones else 0,
        "area_km2_polygons": float(area_km2.sum()),
        "area_km2_pixels": float(by_county["area_km2"].sum()),
    }
    found_versions = versions()
    run_info = {
        "carbonscape": found_versions.get("carbonscape", ""),
        "started": started.isoformat(timespec="seconds"),
        "study": {"name": name or folder.absolute().name, "year": year, "source": source, "file": None, "id_field": settings["id_field"],
                  "ratio_units": ratio_units, "per_capita_t": settings.get("per_capita_t"), "stages": True},
        "totals": totals,
        "units": output_units(ratio_units),
        "zoning": {**jsonable(zoning_info), "scheme": scheme, "weights": weights},
        "supply_summary": jsonable(previous.supply.summary),
        "inputs": settings.get("inputs", []),
        "versions": found_versions,
        "timings_s": timings,
        "where": where("in process", 1),
    }
    result = StudyResult(out=folder, supply=previous.supply, demand=demand, ratio_zones=ratio_zones, zoning=zoning_info, totals=totals,
                         run_info=run_info, files=dict(previous.files), polygons=polygons)
    write_outputs(result, folder, id_field=settings["id_field"], per_capita_t=settings.get("per_capita_t"))
    return result


def statistics_stage(
    out: str | os.PathLike[str],
    *,
    weights: str = "queen",
    permutations: int = 999,
    seed: int = 12345,
    alpha: float = 0.05,
    pools: str | os.PathLike[str] | None = None,
    draws: int = 1000,
    draws_seed: int = 12345,
    maps: bool = True,
) -> StudyResult:
    """The spatial statistics and the density uncertainty of the counties of ``out``, as `run`
    makes them: ``moran.csv``, ``lisa.csv``, ``hotspots.csv`` and, with a pools table that gives
    spreads, ``uncertainty_by_county.csv``; their maps (matching quadrants and balance, LISA
    clusters, hot spots, zone stability) into ``maps/``; their settings into ``run.json``.

    Parameters
    ----------
    out
        The folder the zoning stage wrote (``ratio_zones.csv``, ``counties.gpkg``, ``run.json``).
    weights, permutations, seed, alpha
        As the study file's ``[statistics]`` (see :class:`carbonscape.spatial.SpatialSettings`).
    pools
        The pools table with spreads (``c_above_sd`` … or ``_min``/``_max``); None: no Monte Carlo.
    draws, draws_seed
        As ``[uncertainty] draws`` and ``seed``.
    maps
        Draw the maps of the statistics.

    Returns
    -------
    StudyResult
        The folder as read back, with ``statistics`` (and ``uncertainty``) filled.

    Raises
    ------
    InputError
        No zoning stage in ``out``, too few counties, bad settings, or a pools table without spreads.
    """
    from carbonscape.spatial import SpatialSettings, spatial_statistics
    from carbonscape.study.outputs import _draw_statistics, write_run_json
    from carbonscape.uncertainty import check_draws, factors_from_pairs, read_spreads, supply_uncertainty
    from carbonscape.zoning import get_scheme

    folder = Path(out)
    result = read_outputs(folder)
    id_field = (result.run_info.get("study") or {}).get("id_field")
    if result.ratio_zones.empty or result.polygons is None or not result.run_info or not id_field:
        raise InputError(f"{folder}: no ratio_zones.csv and counties.gpkg from `carbonscape zoning`; run `carbonscape zoning {folder}` "
                         "before `carbonscape statistics`")
    settings = SpatialSettings(weights=weights, permutations=permutations, seed=seed, alpha=alpha)
    spreads = None
    if pools is not None:
        check_draws(draws, draws_seed)
        spreads = read_spreads(pools)
        if spreads is None:
            raise InputError(f"--pools {pools} gives no spreads: add c_above_sd, c_below_sd, c_soil_sd, c_dead_sd (or c_<pool>_min and "
                             "c_<pool>_max) columns in t/ha, or leave --pools out")
    units = result.polygons.set_index(result.polygons[id_field].astype(str).rename("county"))
    ratio_zones = result.ratio_zones.set_axis(result.ratio_zones.index.astype(str))
    result.statistics = spatial_statistics(units, ratio_zones, settings=settings)
    result.files.update(result.statistics.write(folder))
    result.run_info["statistics"] = {**asdict(settings), "islands": result.statistics.islands}
    if spreads is not None:
        pairs = result.supply.by_county_class.assign(county=result.supply.by_county_class["county"].astype(str),
                                                     area_ha=result.supply.by_county_class["area_km2"] * 100.0)
        area_ha = pairs.pivot_table(index="county", columns="lucode", values="area_ha", aggfunc="sum", fill_value=0.0)
        area_ha = area_ha.reindex(ratio_zones.index, fill_value=0.0)
        scheme = get_scheme(result.zoning.get("scheme", "four_zones"), k=int(result.zoning["k"]))
        result.uncertainty = supply_uncertainty(
            area_ha, spreads, area_km2=_ratio_area_km2(result, units, ratio_zones.index), demand_t_per_km2=ratio_zones["demand_t_per_km2"],
            edges=result.zoning["edges"], zones=[(zone.key, zone.classes) for zone in scheme.zones], draws=draws, seed=draws_seed,
            factors=factors_from_pairs(pairs, area_ha))  # as `run` corrects the densities ([continuous])
        result.files["uncertainty"] = result.uncertainty.write(folder)
        result.run_info["uncertainty"] = jsonable(result.uncertainty.info)
    if maps:
        for path in _draw_statistics(result):
            result.files[f"map:{path.stem}"] = path
    write_run_json(result, folder)
    return result


def _ratio_area_km2(result: StudyResult, units: Any, index: pd.Index) -> pd.Series:
    """Each county's area (km²) as the ratio used it, read back: ``ratio_zones.csv`` does not keep it,
    so demand's table (``demand_by_county.csv``, the polygon's true area), else ``counties.gpkg``'s."""
    for table in (result.ratio_zones, result.demand, units):
        if table is not None and "area_km2" in getattr(table, "columns", ()):
            area = table["area_km2"].set_axis(table.index.astype(str)).reindex(index).astype("float64")
            if area.notna().all():
                return area
    raise InputError(f"{result.out}: no area_km2 per county in demand_by_county.csv or counties.gpkg; run `carbonscape demand` "
                     "and `carbonscape zoning` again before `carbonscape statistics --pools`")


def cells_stage(
    out: str | os.PathLike[str],
    *,
    ratio_units: str | None = None,
    method: str | None = None,
    k: int | None = None,
    breaks: list[float] | None = None,
    weights: str | None = None,
    scheme: str | None = None,
    supply_weight: float | None = None,
    demand_weight: float | None = None,
    statistics: bool | None = None,
    spatial_weights: str | None = None,
    permutations: int | None = None,
    seed: int | None = None,
    alpha: float | None = None,
    pools: str | os.PathLike[str] | None = None,
    draws: int | None = None,
    draws_seed: int | None = None,
    maps: bool = True,
) -> StudyResult:
    """The analysis of the grid cells of ``out`` again (a folder `run` wrote for a study with
    ``[units] grid``), from its files: ratio, zones and matching indices per cell, Moran's I,
    LISA and Gi* of the cells and, with a pools table that gives spreads, their density
    uncertainty; written into ``cells/`` as `run` writes them (``ratio_zones_by_cell.csv``,
    ``cells.gpkg``, the cell GeoTIFFs, ``moran.csv``, ``lisa.csv``, ``hotspots.csv``,
    ``uncertainty_by_cell.csv``, maps), and their settings into ``run.json``'s ``cells``.

    Every setting left None is the one the run recorded in ``run.json`` (else the study file's
    default), so that the stage with no option reproduces the run's tables; the cells' supply
    and demand densities are read from ``cells/`` (the raster pass is not run again).

    Parameters
    ----------
    out
        The results folder.
    ratio_units, method, k, breaks, weights, scheme
        As the study file's ``[ratio] units`` and ``[zoning]``.
    supply_weight, demand_weight
        As ``[matching]``.
    statistics
        As ``[statistics] enabled`` (None: with 5 cells or more).
    spatial_weights, permutations, seed, alpha
        As ``[statistics] weights``, ``permutations``, ``seed`` and ``alpha``.
    pools, draws, draws_seed
        The pools table with spreads and ``[uncertainty] draws`` and ``seed``; without ``pools`` no Monte Carlo.
    maps
        Draw the cell maps into ``cells/maps``.

    Raises
    ------
    InputError
        A folder without a cell analysis, bad settings, or a pools table without spreads.
    StudyError
        Zoning that cannot classify the cells' ratios, or too few cells for ``statistics=True``.
    """
    from carbonscape.carbon import read_pools
    from carbonscape.study.cells import CELLS_FOLDER, analyse_cell_demand
    from carbonscape.study.file import Study
    from carbonscape.study.outputs import write_run_json
    from carbonscape.uncertainty import DEFAULT_DRAWS, DEFAULT_SEED, check_draws, read_spreads

    folder = Path(out)
    result = read_outputs(folder)
    cells = result.cells
    if cells is None:
        raise InputError(f"{folder}: no {CELLS_FOLDER}/ratio_zones_by_cell.csv and supply_by_cell.csv with run.json's `cells`: run "
                         f"`carbonscape run` on a study with [units] grid = SIZE into {folder} first")
    recorded = dict(cells.info)
    zoning = dict(recorded.get("zoning") or {})
    county_zoning = dict(result.run_info.get("zoning") or {})
    said = dict(recorded.get("statistics") or {})
    uncertain = dict(recorded.get("uncertainty") or {})

    def given(value: Any, fallback: Any) -> Any:
        return fallback if value is None else value

    values: dict[str, dict[str, Any]] = {section: {} for section in ("study", "landuse", "counties", "demand", "zoning", "outputs", "pools",
                                                                    "ratio", "matching", "statistics", "uncertainty")}
    units = given(ratio_units, (result.run_info.get("study") or {}).get("ratio_units", "co2_per_c"))
    values["ratio"]["units"] = UNIT_ALIASES.get(units, units)
    if breaks is not None:  # edges given: manual zoning, k from them
        if method not in (None, "manual"):
            raise InputError(f"--breaks goes with --method manual, not --method {method}; leave --breaks out or use --method manual")
        method = "manual"
        if k is not None and k != len(breaks) - 1:
            raise InputError(f"--breaks gives {len(breaks)} edges, k + 1 for k = {len(breaks) - 1} classes, not --k {k}: leave --k out "
                             f"(the breaks give k), or give {k + 1} edges")
        if len(breaks) < 2:
            raise InputError(f"--breaks needs at least two edges (k + 1 for k classes), got {len(breaks)}")
        k = len(breaks) - 1
    values["zoning"].update(method=given(method, zoning.get("method", "jenks")), k=int(given(k, zoning.get("k", 7))),
                            scheme=given(scheme, county_zoning.get("scheme", zoning.get("scheme", "four_zones"))),
                            weights=given(weights, county_zoning.get("weights") or "none"))
    if breaks is not None or (method is None and zoning.get("method") == "manual"):
        values["zoning"]["breaks"] = list(breaks if breaks is not None else zoning.get("edges", []))
    if k is not None or scheme is not None:  # a k or scheme from the command line: name the flags, not the study file's words
        from carbonscape.zoning import get_scheme

        chosen_k, chosen_scheme = values["zoning"]["k"], values["zoning"]["scheme"]
        try:
            get_scheme(chosen_scheme, k=chosen_k)
        except InputError as exc:
            import re

            if scheme is not None and "unknown zone scheme" in str(exc):
                raise InputError(f"--scheme {scheme}: {exc}") from None
            name = chosen_scheme if isinstance(chosen_scheme, str) else "the run's table of zones"
            with_k = f"--k {chosen_k}" if k is not None and breaks is None else (f"the {chosen_k} classes of --breaks" if breaks is not None
                                                                                  else f"k = {chosen_k} (the run's)")
            found = re.search(r"made for (\d+) classes", str(exc))
            made_for = int(found.group(1)) if found else None
            if scheme is None:
                raise InputError(f"the zone scheme {name!r} (the run's) is made for {made_for or 'another number of'} classes, not {with_k}: "
                                 f"add --scheme classes (one zone per class, any k)"
                                 + (f", or give --k {made_for}" if made_for and breaks is None else "")) from None
            raise InputError(f"--scheme {name} is made for {made_for or 'another number of'} classes, not {with_k}: use --scheme classes "
                             "(one zone per class, any k)" + (f" or --k {made_for}" if made_for and breaks is None else "")) from None
    values["matching"].update(supply_weight=given(supply_weight, 0.5), demand_weight=given(demand_weight, 0.5))
    if statistics is not None:
        values["statistics"]["enabled"] = statistics
    values["statistics"].update(weights=given(spatial_weights, said.get("weights", "queen")), permutations=given(permutations, said.get("permutations", 999)),
                                seed=given(seed, said.get("seed", 12345)), alpha=given(alpha, said.get("alpha", 0.05)))
    values["uncertainty"].update(draws=given(draws, uncertain.get("draws", DEFAULT_DRAWS)), seed=given(draws_seed, uncertain.get("seed", DEFAULT_SEED)))
    study = Study.from_values(folder / "run.json", values)
    spreads = None
    if pools is not None:
        check_draws(values["uncertainty"]["draws"], values["uncertainty"]["seed"])
        spreads = read_spreads(pools)
        if spreads is None:
            raise InputError(f"--pools {pools} gives no spreads: add c_above_sd, c_below_sd, c_soil_sd, c_dead_sd (or c_<pool>_min and "
                             "c_<pool>_max) columns in t/ha, or leave --pools out")
        cells.supply.area_ha = _cell_class_areas(cells.supply.by_cell, read_pools(pools))
        if recorded.get("density_correction"):
            import logging

            # supply_by_cell.csv's per-class supply is corrected: over the pools table's densities it
            # gives each class an effective area, so the draws centre on the corrected supply but
            # spread as if every pool had the same factor (the run's own Monte Carlo has each pool's).
            logging.getLogger(__name__).warning(
                "the run corrected the cells' densities (%s): the cells' Monte Carlo from the folder centres on the corrected "
                "supply with one factor for every pool of a class; `carbonscape run` draws each pool's own factor",
                ", ".join(recorded["density_correction"].get("pools", [])))
    table = cells.table
    by_cell = cells.supply.by_cell.set_index("cell").reindex(table.index)
    demand = table[["area_km2", "demand_t_per_km2", "emissions_t"]]
    extras = table[[c for c in ("population", "npp_mean", "sequestration_t_c", "sequestration_t_co2") if c in table.columns]]
    keep = {key: recorded[key] for key in ("cells_outside_counties", "cells_on_region_edge", "demand", "demand_source",
                                           "density_correction") if key in recorded}
    again = analyse_cell_demand(study, cells.supply, by_cell, demand, extras=extras, spreads=spreads, info=keep)
    result.files.update(again.write(folder))
    if maps:
        from carbonscape.study.outputs import _draw_cells

        for path in _draw_cells(result, cells=again, out=folder):
            result.files[f"cells:map:{path.stem}"] = path
    result.cells = again
    result.run_info["cells"] = again.info
    write_run_json(result, folder)
    return result


def _cell_class_areas(by_cell: pd.DataFrame, pools: Any) -> pd.DataFrame:
    """Area (ha) per cell and class from supply_by_cell.csv's per-class supply (t C) over each
    class's total density (t C/ha): what the Monte Carlo draws over. A class of zero density
    stores nothing whatever its area, so its area is taken as 0 (said in the log)."""
    import logging

    import numpy as np

    density = pd.Series(pools.total_density, index=list(pools.codes))
    columns = {}
    for code, d in density.items():
        column = f"supply_t_{code}"
        supply = by_cell[column].to_numpy(dtype=np.float64) if column in by_cell.columns else np.zeros(len(by_cell))
        columns[code] = supply / d if d > 0 else np.zeros(len(by_cell))
    zero = [str(code) for code, d in density.items() if d <= 0]
    if zero:
        logging.getLogger(__name__).info("classes %s have no carbon density: their cell areas are not in supply_by_cell.csv and are "
                                         "taken as 0 in the Monte Carlo", ", ".join(zero))
    return pd.DataFrame(columns, index=pd.Index(by_cell["cell"].to_numpy(), name="cell"))
