"""A whole study, composed: executor → ingest → counties → supply → demand → ratio → zoning.

:func:`run_study` checks everything first (as `carbonscape check` does), computes, and hands the
:class:`StudyResult` to :mod:`.outputs`.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import asdict
from pathlib import Path
from datetime import UTC, datetime
from collections.abc import Mapping
from typing import Any

import pandas as pd
from carbonscape import remote
from carbonscape.carbon import supply
from carbonscape.cluster import executor, scheduler_from_settings
from carbonscape.demand import demand_by_county, demand_totals
from carbonscape.errors import InputError, StudyError
from carbonscape.io import ingest, ingesting
from carbonscape.matching import matching_indices
from carbonscape.rasterize import geodesic_areas_km2, lazy_zones, rasterize_zones
from carbonscape.ratio import supply_demand_ratio
from carbonscape.study.continuous import ContinuousRun, prepare_continuous
from carbonscape.study.file import Study
from carbonscape.carbon import read_pools
from carbonscape.rasterize import open_zones
from carbonscape.study.inputs import Inputs, checked_inputs, input_paths
from carbonscape.study.outputs import draw_outputs, relocate, relocate_result, results_folder, units, write_outputs
from carbonscape.study.provenance import Timings, describe_inputs, jsonable, versions, where
from carbonscape.study.result import StudyResult
from carbonscape.zoning import zone_ratios

log = logging.getLogger(__name__)

__all__ = ["compute_study", "run_study", "study_owner"]


def run_study(
    study: Study | str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    maps: bool | None = None,
    report: bool | None = None,
    overwrite: bool = False,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> StudyResult:
    """Run a whole study and write its outputs, all or nothing.

    Every output is built in a staging folder beside ``out`` and swapped in only when all of it
    is written: a failed or interrupted run leaves the previous folder exactly as it was.

    Parameters
    ----------
    study
        A :class:`Study` or the path of its TOML file.
    out
        Output folder (default: the file's ``[outputs] dir``, else ``results`` beside it).
    scheduler
        See :func:`carbonscape.cluster.executor`.
    progress
        Show progress bars.
    maps, report
        Draw the maps and write ``report.html`` (default: as the study file says).
    overwrite
        Replace an ``out`` that holds files carbonscape did not write or another study's
        results (a rerun of the same study always replaces its own results).
    settings
        ``{section: {key: value}}`` put over the study file's settings (None values are left
        out), e.g. ``{"uncertainty": {"draws": 10000}}``; checked like the file's own.

    Returns
    -------
    StudyResult

    Raises
    ------
    StudyError
        Every problem of the settings and inputs, before anything is computed.
    InputError
        When ``out`` holds other files or another study's results and ``overwrite`` is not set.
    """
    if settings:
        study = with_settings(study, settings)
    # The same check as `carbonscape check`, before any compute: settings and inputs, all at once.
    problems, checked, inputs = checked_inputs(study, out=out, scan=False, folder=False)
    if problems or checked is None:
        raise StudyError(problems, path=str(study.path if isinstance(study, Study) else study))
    final = checked.output_dir(out).absolute()
    with results_folder(final, owner=study_owner(checked), overwrite=overwrite, inputs=[p for _, p in input_paths(checked)]) as work:
        result = compute_study(checked, inputs, work=work, final=final, scheduler=scheduler, progress=progress, maps=maps, report=report)
    return relocate_result(result, work, final)


def study_owner(study: Study) -> dict[str, str]:
    """What marks a results folder as this study's (see :func:`outputs.results_folder`)."""
    return {"kind": "study", "study": str(study.path)}


def compute_study(
    study: Study,
    inputs: Inputs,
    *,
    work: Path,
    final: Path | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    maps: bool | None = None,
    report: bool | None = None,
) -> StudyResult:
    """Run a checked study, writing every output into ``work`` (a staging folder that becomes
    ``final``: paths recorded in run.json already say ``final``)."""
    polygons, table = inputs.polygons, inputs.table
    assert polygons is not None and (table is not None or study.setting("continuous", "population") is not None) and study.landuse is not None
    assert study.counties is not None and study.id_field is not None and study.pools is not None
    assert study.zoning.method is not None and study.zoning.k is not None
    out_dir = work
    stores = study.stores_dir(work)
    timings = Timings()
    started = datetime.now(UTC)

    with executor(scheduler_from_settings(scheduler, study.values.get("cluster", {}))) as run, contextlib.ExitStack() as fused:
        staged = None
        if _fuses_ingest(study):
            # The supply pass ingests: each chunk is read from the GeoTIFFs once, written to the
            # staged store and counted in one task; the store moves into place after that pass
            # (a current store is read as it is). "ingest" is then only the plan of the pass.
            staged = fused.enter_context(ingesting(list(study.landuse), remote.join(stores, "landuse.zarr"), chunk=study.chunk))
            landuse_store: Any = staged.store
        else:
            landuse_store = ingest(list(study.landuse), remote.join(stores, "landuse.zarr"), chunk=study.chunk, progress=progress, run=run)
        timings.lap("ingest")
        coverage = study.setting("counties", "coverage", "centre")
        if _needs_zone_store(study):
            county_store: Any = rasterize_zones(study.counties, like=landuse_store, id_field=study.id_field, out=remote.join(stores, "zones.zarr"),
                                                layer=study.layer, encoding=study.encoding, progress=progress, run=run, coverage=coverage)
        else:
            # The counties' ids are burned chunk by chunk inside the supply pass, in the task that
            # reads that chunk's land use: no 10^10-pixel id store is written and read back. The
            # table, overlap check and coverage areas are made here, as the store would hold them.
            county_store = lazy_zones(study.counties, like=landuse_store, id_field=study.id_field, layer=study.layer,
                                      encoding=study.encoding, coverage=coverage)
        timings.lap("zones")
        continuous = prepare_continuous(study, stores=stores, landuse=landuse_store, run=run, progress=progress)
        supply_result = supply(landuse_store, county_store, study.pools, out=out_dir, pixel_maps=study.pixel_maps and not continuous.corrects,
                               progress=progress, run=run,
                               min_coverage=study.setting("counties", "min_coverage"),
                               extra=continuous.specs, rasters=continuous.rasters(),
                               code_histogram=None if staged is None or staged.current else staged.histogram)
        if staged is not None:  # the pass succeeded: the store records its code counts and moves into place
            staged.finish(supply_result.tables.get("code_histogram"))
            fused.close()
            landuse_store = staged.store.path
        if continuous.active:  # population, NPP and factors summed in the same pass; densities corrected
            supply_result = continuous.finish(supply_result, zone_table=open_zones(county_store)[1], pools=read_pools(study.pools))
            supply_result.write(out_dir)
            if study.pixel_maps and continuous.corrects:  # carbon per pixel of the corrected densities
                supply_result.files.update(continuous.write_pixel_maps(out_dir, landuse=landuse_store, zones=county_store,
                                                                       pools=read_pools(study.pools), run=run, progress=progress))
        timings.lap("supply")
        cell_supply = area_km2 = None
        if study.setting("units", "grid") is not None:  # [units] grid: supply and demand per cell, one more pass
            from carbonscape.study.cells import supply_and_demand_cells

            area_km2 = _polygon_areas_km2(polygons, study.id_field, county_store)
            cell_supply = supply_and_demand_cells(study, landuse_store=landuse_store, county_store=county_store, run=run, progress=progress,
                                                  polygons=polygons, table=table, continuous=continuous, area_km2=area_km2)
            timings.lap("cells")
        maps_summary = maps_result = None
        if study.setting("landuse", "maps"):
            from carbonscape.study.landuse_maps import run_maps

            maps_result = run_maps(study, stores=stores, county_store=county_store, base_store=landuse_store, out=out_dir,
                                   run=run, progress=progress, polygons=polygons, draw=study.maps if maps is None else maps,
                                   table=table)
            maps_summary = maps_result.summary
            timings.lap("maps")
        ran_on = where(run.description, run.workers)

    keys = polygons[study.id_field].astype(str)
    # Once per run: the [units] grid pass above needed them already.
    area_km2 = area_km2 if area_km2 is not None else _polygon_areas_km2(polygons, study.id_field, county_store)
    by_county = supply_result.by_county.assign(county=supply_result.by_county["county"].astype(str)).set_index("county")
    if continuous.population is not None:  # people per pixel summed per county, over the table's population column
        table = pd.DataFrame(index=keys.rename("county")) if table is None else table.copy()
        table.index = table.index.astype(str)
        table[study.demand.population] = continuous.population.reindex(table.index).to_numpy()
    table.index = table.index.astype(str)
    per_capita_t = study.demand.per_capita()
    demand = demand_by_county(
        table, area_km2=area_km2, pixel_area_km2=by_county["area_km2"], per_capita_t=per_capita_t,
        emissions_column=study.demand.emissions_column, population_column=study.demand.population,
    )
    totals_demand = demand_totals(demand)
    timings.lap("demand")
    supply_area_km2 = _supply_area_km2(by_county, area_km2)
    ratio = supply_demand_ratio(by_county["supply_t"], demand, units=study.ratio_units, supply_area_km2=supply_area_km2)
    ratio = _with_coverage(ratio, by_county)
    weights = ratio["area_km2"] if study.zoning.weights == "area" else None
    try:
        zones_frame, zoning_info = zone_ratios(
            ratio["ratio"], method=study.zoning.method, k=study.zoning.k,
            breaks=list(study.zoning.breaks) if study.zoning.breaks else None, weights=weights, scheme=study.zoning.scheme,
        )
    except InputError as exc:
        # Only known once supply is computed (ties among the ratios): the study's setting to change
        # is [zoning] k or method. Nothing has been written to the results folder.
        raise StudyError(f"[zoning] k = {study.zoning.k} ({study.zoning.method}): {exc}", path=str(study.path)) from exc
    ratio_zones = pd.concat([ratio, zones_frame], axis=1)
    ratio_zones.index.name = "county"
    timings.lap("ratio_zoning")
    ratio_zones = pd.concat([ratio_zones, matching_indices(ratio_zones, alpha=study.setting("matching", "supply_weight", 0.5),
                                                            beta=study.setting("matching", "demand_weight", 0.5))], axis=1)
    statistics = _spatial_statistics(study, polygons, ratio_zones)
    uncertainty = _uncertainty(study, inputs.spreads, supply_result, ratio_zones, zoning_info)
    timings.lap("statistics")
    cells = None
    if cell_supply is not None:
        from carbonscape.study.cells import analyse_cells

        cells = analyse_cells(study, cell_supply, spreads=inputs.spreads)
        timings.lap("cells_analysis")

    totals = {
        "supply_t": supply_result.total_t,
        # Over the areas the counties' own densities are over (a county a lowered min_coverage let
        # through counts its covered area, not its whole polygon, as its density does).
        "supply_t_per_km2_regional": regional_supply_density(supply_result.total_t, area_km2, supply_area_km2),
        **totals_demand,
        "counties": int(len(ratio_zones)),
        "counties_with_infinite_ratio": int(ratio_zones["ratio_infinite"].sum()) if "ratio_infinite" in ratio_zones else 0,
        "area_km2_polygons": float(area_km2.sum()),
        "area_km2_pixels": float(by_county["area_km2"].sum()),
    }
    scheme = study.zoning.scheme if isinstance(study.zoning.scheme, str) else study.zoning.scheme.get("name", "custom")
    found_versions = versions()
    run_info = {
        "carbonscape": found_versions.get("carbonscape", ""),
        "started": started.isoformat(timespec="seconds"),
        "study": {
            "name": study.name, "year": study.year, "source": study.setting("study", "source"), "file": str(study.path), "id_field": study.id_field,
            "ratio_units": study.ratio_units, "chunk": study.chunk,
            "demand": jsonable(asdict(study.demand)),
            "per_capita_t": per_capita_t,
        },
        "totals": totals,
        "units": units(study.ratio_units),
        "zoning": {**jsonable(zoning_info), "scheme": scheme, "weights": study.zoning.weights},
        "supply_summary": jsonable(supply_result.summary),
        **({"landuse_maps": jsonable(maps_summary)} if maps_summary is not None else {}),
        "inputs": describe_inputs(input_paths(study)),
        "versions": found_versions,
        "timings_s": timings,
        "where": ran_on,
    }
    if final is not None:
        run_info = relocate(run_info, work, final)
    result = StudyResult(landuse_maps=maps_result, out=out_dir, supply=supply_result, demand=demand, ratio_zones=ratio_zones, zoning=zoning_info,
                         totals=totals, run_info=run_info, files=dict(supply_result.files), polygons=polygons,
                         statistics=statistics, uncertainty=uncertainty, cells=cells)
    if cells is not None:
        run_info["cells"] = cells.info
    if statistics is not None:
        run_info["statistics"] = {**asdict(statistics.settings), "islands": statistics.islands}
    if uncertainty is not None:
        run_info["uncertainty"] = jsonable(uncertainty.info)
    if continuous.active:
        run_info["continuous"] = jsonable(continuous.provenance)
        result.files.update(continuous.write(out_dir, demand=demand, ratio_units=study.ratio_units))
    write_outputs(result, out_dir, id_field=study.id_field, per_capita_t=per_capita_t)
    draw_outputs(result, maps=study.maps if maps is None else maps, report=study.report if report is None else report, title=study.name)
    return result


def _polygon_areas_km2(polygons: Any, id_field: str, county_store: Any) -> pd.Series:
    """Each county's geodesic area (km², :func:`carbonscape.rasterize.geodesic_areas_km2`) by key.

    On grids whose pixels count true (not nominal) areas, the county table already holds exactly
    these (coverage measured the same polygons the same way): they are taken from it, not measured
    twice (2,900 counties densified to 4,000 points each: ~9 s)."""
    from carbonscape.grid import AREA_NOMINAL

    keys = pd.Index(polygons[id_field].astype(str), name="county")
    store, table = open_zones(county_store)
    if store.grid.area_model.rule != AREA_NOMINAL and table.area_km2 is not None:
        known = pd.Series(table.area_km2, index=[str(v) for v in table.values]).reindex(keys)
        if len(table.values) == len(keys) and not known.isna().any():
            return known.rename(None)
    return pd.Series(geodesic_areas_km2(polygons), index=keys)


def _fuses_ingest(study: Study) -> bool:
    """Whether `run` ingests the land use in the supply pass itself (:func:`carbonscape.io.ingesting`):
    when that pass is the only reader of the land-use store in the run. A county-id store, pixel
    maps and continuous rasters read (or are made against) the finished store, so with any of them
    the store is ingested first, as `carbonscape ingest` does."""
    return not _needs_zone_store(study) and not study.pixel_maps and not ContinuousRun(study=study).active


def _needs_zone_store(study: Study) -> bool:
    """Whether `run` writes the county-id store (``stores/zones.zarr``): for a ``[units] grid`` and
    ``[landuse] maps`` (their passes read the store). Otherwise the ids are burned on the fly in the
    supply pass (:func:`carbonscape.rasterize.lazy_zones`), in fraction coverage with each chunk's
    county rings clipped in the same task."""
    return study.setting("units", "grid") is not None or bool(study.setting("landuse", "maps"))


def _supply_area_km2(by_county: pd.DataFrame, area_km2: pd.Series) -> pd.Series | None:
    """The area each county's supply density is over: its polygon's, except for the counties a
    lowered ``[counties] min_coverage`` let through (``low_coverage``), whose supply is over the
    true area of their covered pixels only (dividing it by the whole polygon would understate
    their density by the missing share)."""
    if "low_coverage" not in by_county.columns or not by_county["low_coverage"].any():
        return None
    area = area_km2.astype("float64").copy()
    low = by_county["low_coverage"].reindex(area.index, fill_value=False).astype(bool)
    area[low] = by_county["area_km2"].reindex(area.index)[low]
    return area


def regional_supply_density(total_t: float, area_km2: pd.Series, supply_area_km2: pd.Series | None) -> float:
    """The region's supply density (t C/km²): total supply over the areas the counties' densities
    are over: each polygon's, or for a county a lowered ``min_coverage`` let through its covered
    area (:func:`_supply_area_km2`), so that the region and its counties agree."""
    area = float((area_km2 if supply_area_km2 is None else supply_area_km2).sum())
    return total_t / area if area > 0 else float("nan")


def _with_coverage(ratio: pd.DataFrame, by_county: pd.DataFrame) -> pd.DataFrame:
    """The coverage columns of supply's table beside the ratio (``ratio_zones.csv``, counties.gpkg)."""
    for column in ("covered_share", "nodata_share", "outside_share", "low_coverage"):
        if column in by_county.columns:
            ratio[column] = by_county[column].reindex(ratio.index)
    return ratio


def _spatial_statistics(study: Study, polygons: Any, ratio_zones: pd.DataFrame) -> Any:
    """Moran's I, LISA and Gi* of the counties (``[statistics]``): always when enabled = true (check
    refused too few counties), by default when there are enough counties, never when false."""
    from carbonscape.spatial import MIN_UNITS, SpatialSettings, spatial_statistics

    enabled = study.setting("statistics", "enabled")
    if enabled is False or polygons is None:
        return None
    if enabled is None and len(polygons) < MIN_UNITS:
        log.info("spatial statistics left out: %d counties, fewer than %d", len(polygons), MIN_UNITS)
        return None
    settings = SpatialSettings(
        weights=study.setting("statistics", "weights", "queen"), permutations=study.setting("statistics", "permutations", 999),
        seed=study.setting("statistics", "seed", 12345), alpha=study.setting("statistics", "alpha", 0.05),
    )
    units = polygons.set_index(polygons[study.id_field].astype(str).rename("county"))
    return spatial_statistics(units, ratio_zones, settings=settings)


def _uncertainty(study: Study, spreads: Any, supply_result: Any, ratio_zones: pd.DataFrame, zoning_info: dict[str, Any]) -> Any:
    """Monte Carlo of the densities (``[uncertainty]``) when the pools table gives spreads."""
    from carbonscape.uncertainty import DEFAULT_DRAWS, DEFAULT_SEED, factors_from_pairs, supply_uncertainty
    from carbonscape.zoning import get_scheme

    if spreads is None or study.setting("uncertainty", "enabled") is False:
        return None
    # supply_by_county_class carries true areas in km²; the Monte Carlo multiplies t/ha densities by hectares.
    pairs = supply_result.by_county_class.assign(county=supply_result.by_county_class["county"].astype(str),
                                                 area_ha=supply_result.by_county_class["area_km2"] * 100.0)
    area_ha = pairs.pivot_table(index="county", columns="lucode", values="area_ha", aggfunc="sum", fill_value=0.0)
    area_ha = area_ha.reindex(ratio_zones.index, fill_value=0.0)
    scheme = get_scheme(study.zoning.scheme, k=int(zoning_info["k"]))
    return supply_uncertainty(
        area_ha, spreads, area_km2=ratio_zones["area_km2"], demand_t_per_km2=ratio_zones["demand_t_per_km2"],
        edges=zoning_info["edges"], zones=[(zone.key, zone.classes) for zone in scheme.zones],
        draws=study.setting("uncertainty", "draws", DEFAULT_DRAWS), seed=study.setting("uncertainty", "seed", DEFAULT_SEED),
        factors=factors_from_pairs(pairs, area_ha),  # the densities [continuous] corrected, as the supply tables use them
    )


def with_settings(study: Study | str | os.PathLike[str], settings: Mapping[str, Mapping[str, Any]]) -> Study:
    """The study with ``settings`` put over its file's (the command line's flags), each checked
    against the settings table and its section's rules.

    Raises
    ------
    StudyError
        A problem of the file, or of a value given here, naming the setting.
    """
    from carbonscape.study.file import load_study
    from carbonscape.study.settings import RULES, SETTINGS, _convert

    base = study if isinstance(study, Study) else load_study(study)
    values = {section: dict(table) for section, table in base.values.items()}
    problems: list[str] = []
    for section, table in settings.items():
        for key, value in table.items():
            if value is None:
                continue
            row = next((s for s in SETTINGS if s.section == section and s.key == key), None)
            if row is None:
                raise ValueError(f"[{section}] {key} is not a study setting")
            converted, problem = _convert(row, value, folder=base.folder)
            if problem:
                problems.append(problem)
            else:
                values.setdefault(section, {})[key] = converted
    for rule in RULES:
        if rule.section in settings:
            problems.extend(rule.check(values.get(rule.section, {}), frozenset(values.get(rule.section, {}))))
    if problems:
        raise StudyError(problems, path=str(base.path))
    return Study.from_values(base.path, values, base.raw)
