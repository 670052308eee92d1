"""Grid cells as a study's units (``[units] grid = SIZE``), beside its counties.

With ``[units] grid`` a study does its whole analysis a second time on square cells of ``SIZE``
CRS units aligned to the land use's top-left corner (:class:`carbonscape.cells.CellGrid`), and
writes it into ``cells/`` of the results folder, under the same names as the county outputs:

* **supply** per cell, each cell's table made in the chunk that holds it (``supply_by_cell.csv``);
* **demand** per cell from the counties' demand densities, area-weighted: each land-use pixel
  takes the demand density (t CO₂/km²) of the county its centre lies in (the county-id raster the
  county pass already rasterized), and a cell's demand density is the area-weighted mean over its
  pixels that lie in a county, ``D_cell = Σ_p a_p·D_county(p) / Σ_p a_p``, summed in the same pass
  as the supply (:data:`carbonscape.cells.CELL_VALUES`). A cell astride a border so takes each
  county's density in proportion to the share of the cell it covers (at the pixel's resolution),
  not the density of the county holding its centre. Only the pixels inside the counties (the
  study region) count, for the supply and the continuous rasters alike, so that the cells' totals
  are the counties'; ``region_share`` is the share of a cell's area inside the region. This
  is the county density spread evenly over each county's land, as the county analysis assumes;
* **demand** per cell from a population raster instead, when the study gives ``[continuous]
  population`` and one per-capita emission (:func:`cell_demand_source`): the raster's people are
  summed per cell in the same pass (``P = Σ d·a``, :func:`carbonscape.cells.cell_value_specs`), and
  ``D_cell = P × per-capita emission / the cell's land area``; the counties then only bound the
  region. NPP gives each cell its yearly sequestration, and every continuous raster's per-cell sums
  are written to ``continuous_by_cell.csv``;
* **ratio** (demand density over supply density, the study's ``[ratio] units``), **zones** (the
  study's ``[zoning]`` method and k applied to the cells' own ratios, weighted by area if asked),
  the **matching indices** and, with ``[statistics]``, **Moran's I, LISA and Gi\\*** on libpysal
  lattice weights (queen or rook contiguity of the cells, :func:`carbonscape.spatial.lattice_weights`),
  and with spreads in the pools table the **density uncertainty** per cell;
* ``cells.gpkg`` (every column per cell polygon), GeoTIFFs of cell values (supply density, demand
  density, ratio, class, zone) and maps drawn as rasters.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
from carbonscape.cells import CellFactors, CellGrid, CellSupplyResult, supply_cells, write_cell_geotiff, write_cells_gpkg
from carbonscape.cluster import Executor
from carbonscape.errors import GridError, InputError, StudyError
from carbonscape.grid import Grid
from carbonscape.io import atomic_path
from carbonscape.matching import matching_indices
from carbonscape.rasterize import open_zones
from carbonscape.ratio import supply_demand_ratio
from carbonscape.study.file import Study
from carbonscape.zoning import get_scheme, zone_ratios

log = logging.getLogger(__name__)

__all__ = ["CELLS_FOLDER", "CellStudy", "analyse_cell_demand", "analyse_cells", "cells_problems", "county_density_lookup", "county_density_raster", "supply_and_demand_cells"]

CELLS_FOLDER = "cells"
SETTING = "[units] grid"
# Files of the cell analysis, inside CELLS_FOLDER, with what each holds.
CELL_OUTPUTS = {
    "supply_by_cell.csv": "supply per cell (t C) with per-class columns",
    "ratio_zones_by_cell.csv": "supply and demand densities, ratio, class, zone and matching indices per cell",
    "cells.gpkg": "the cells as polygons with every column",
    "continuous_by_cell.csv": "each continuous raster's sum and area-weighted mean per cell (people for population)",
    "moran.csv": "global and bivariate Moran's I of the cells",
    "lisa.csv": "LISA cluster per cell and variable",
    "hotspots.csv": "Getis–Ord Gi* hot and cold spots per cell and variable",
    "uncertainty_by_cell.csv": "Monte Carlo interval of supply and ratio, and zone shares, per cell",
}
GEOTIFFS = {
    "supply_density": ("supply_t_per_km2", "cell_supply_t_per_km2.tif", "t C/km²", "float32"),
    "demand_density": ("demand_t_per_km2", "cell_demand_t_per_km2.tif", "", "float32"),
    "ratio": ("ratio", "cell_ratio.tif", "", "float32"),
    "class": ("class", "cell_class.tif", "ratio class (1 = lowest, 0 = no ratio)", "int16"),
    "zone": ("zone_number", "cell_zone.tif", "", "int16"),
}


DEMAND_WORDS = {
    "counties": "area-weighted mean of the demand densities of the counties holding the cell's pixels",
    "population": "people per cell (the population raster summed over the cell) x per-capita emission, over the cell's land area",
}


# GeoTIFFs of the columns continuous rasters add to the cells' table, when they do.
CONTINUOUS_GEOTIFFS = {
    "population": ("population", "cell_population.tif", "people"),
    "sequestration": ("sequestration_t_c", "cell_sequestration_t_c.tif", "t C/yr"),
}


def grid_size(study: Study) -> float | None:
    """The study's ``[units] grid`` (cell edge in CRS units), or None."""
    return study.setting("units", "grid")


def cells_problems(study: Study, grid: Grid | None) -> list[str]:
    """Problems of ``[units] grid`` for `check`: a size that is not a whole number of pixels,
    cells without counties to take demand from, and too few cells for spatial statistics."""
    from carbonscape.spatial import MIN_UNITS

    size = grid_size(study)
    if size is None:
        return []
    problems = []
    if study.counties is None:
        problems.append(f"{SETTING} needs the cells' population: add [counties] and [demand] (each cell takes the demand density of "
                        "the counties it lies in, area-weighted, or with [continuous] population its own people); the counties bound "
                        "the study region, so a population raster alone, without counties, is not supported yet")
    if grid is None:
        return problems
    try:
        cells = CellGrid.from_size(grid, size, setting=SETTING)
    except GridError as exc:
        return [*problems, f"{exc}: a cell must be a whole number of land-use pixels"]
    n = cells.shape[0] * cells.shape[1]
    k = study.zoning.k
    if isinstance(k, int) and not isinstance(k, bool) and k > n:
        # The cells of the whole raster bound those of the region: k above them can never be classified.
        lo, hi = 1, cells.cell  # the largest cell (pixels) giving at least k cells: the count falls as the cell grows
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if math.ceil(grid.shape[0] / mid) * math.ceil(grid.shape[1] / mid) >= k:
                lo = mid
            else:
                hi = mid - 1
        problems.append(f"[zoning] k = {k} ratio classes need at least {k} cells, and {SETTING} = {size:g} gives {n} cell(s) "
                        f"({cells.shape[0]} × {cells.shape[1]}) over the whole land use, fewer in the counties; use [zoning] k = {n} or "
                        f"less, or a {SETTING} of at most {lo * grid.resolution[0]:g} (more cells; best well below, for cells with land "
                        "in the counties)")
    # Too few cells for spatial statistics is not a problem of the study: `[statistics] enabled =
    # true` asks for the counties' statistics too, which still run; the cells' are left out with a
    # note (cells_notes, the log, run.json's cells.statistics_left_out and the report).
    return problems


def too_few_cells_note(n_cells: int, size: float, *, land: bool = True) -> str:
    """The note that the cells' spatial statistics are left out: why, and the setting that would give them."""
    from carbonscape.spatial import MIN_UNITS

    where = "with land in the counties" if land else "over the land use"
    return (f"spatial statistics of the cells left out: {SETTING} = {size:g} gives {n_cells} cell(s) {where}, and Moran's I, LISA and "
            f"Gi* need at least {MIN_UNITS}; the counties' statistics are unaffected. For the cells' statistics, use a smaller "
            f"{SETTING}")


def cells_notes(study: Study, grid: Grid | None) -> list[str]:
    """What `check` says of ``[units] grid`` beside the inputs it checked: the number of cells,
    and when ``[statistics] enabled = true`` meets fewer than 5 of them, that the cells'
    statistics will be left out (the counties' run)."""
    from carbonscape.spatial import MIN_UNITS

    size = grid_size(study)
    if size is None or grid is None:
        return []
    try:
        cells = CellGrid.from_size(grid, size, setting=SETTING)
    except GridError:
        return []
    n = cells.shape[0] * cells.shape[1]
    lines = [f"cells      {SETTING} = {size:g}: {n:,} cells ({cells.shape[0]} × {cells.shape[1]}, {cells.cell} pixels a side) over the land use"]
    if study.setting("statistics", "enabled") is True and n < MIN_UNITS:
        lines.append(f"cells      {too_few_cells_note(n, size, land=False)}")
    return lines


def county_density_lookup(table: Any, density: pd.Series | None) -> np.ndarray:
    """The density (e.g. demand, t CO₂/km²) of each county by its id in the county store (a zone
    table's ``ids``/``values``): ``(n_zones,)`` float64, NaN for id 0 (outside every county) and
    for ids without a county; ``density`` is indexed by county key (text), None gives 1 in every county."""
    lookup = np.full(table.n_zones, np.nan, dtype=np.float64)
    if density is None:
        lookup[[int(i) for i in table.ids]] = 1.0
    else:
        keyed = density.copy()
        keyed.index = keyed.index.astype(str)
        for zone_id, key in zip(table.ids, table.values):
            lookup[int(zone_id)] = float(keyed.get(str(key), np.nan))
    return lookup


def county_density_raster(county_store: str | Path, density: pd.Series | None) -> da.Array:
    """Per pixel, the density (e.g. demand, t CO₂/km²) of the county holding its centre; NaN outside
    every county. ``density`` is indexed by county key (text); None gives 1 in every county (the
    study region, when the demand comes from elsewhere). Lazily, on the county store's chunks
    (the cell pass itself looks the densities up inside its tasks, :func:`county_density_lookup`)."""
    store, table = open_zones(county_store)
    lookup = county_density_lookup(table, density)
    return store.data.map_blocks(lambda block: lookup[block], dtype=np.float64)


def cell_demand_source(study: Study) -> str:
    """Where the cells' demand comes from: ``"population"`` when the study gives a population
    raster (``[continuous] population``) and one per-capita emission for the region (``[demand]
    per_capita_t``, or total emissions and population), so that each cell's demand is its own
    people × that emission; else ``"counties"``: each cell takes the demand densities of the
    counties its pixels lie in, area-weighted (a county inventory, ``emissions_column``, has no
    per-capita emission to give a cell's people)."""
    if study.setting("continuous", "population") is not None and study.demand.per_capita() is not None:
        return "population"
    return "counties"


def supply_and_demand_cells(study: Study, *, landuse_store: Path, county_store: Path, run: Executor, polygons: Any = None,
                            table: pd.DataFrame | None = None, continuous: Any = None, progress: bool = False,
                            area_km2: pd.Series | None = None) -> CellSupplyResult:
    """Supply per cell, the study region's share of each cell, and the continuous rasters of
    ``[continuous]`` summed per cell (people, NPP, factors), in one pass over the land use, the
    county ids and those rasters.

    With demand from the counties (:func:`cell_demand_source`) the county-id raster carries each
    county's demand density (from ``table``, the population raster's people per county when it
    gives them), else 1 in every county (only the region's extent is taken from it). ``area_km2``:
    the counties' geodesic areas by key when the caller has them (else measured here).
    """
    from carbonscape.cells import cell_value_specs
    from carbonscape.demand import demand_by_county
    from carbonscape.rasterize import geodesic_areas_km2

    size = grid_size(study)
    assert size is not None and study.pools is not None and study.id_field is not None
    density = None
    if cell_demand_source(study) == "counties":
        assert polygons is not None
        county_table = pd.DataFrame(index=polygons[study.id_field].astype(str).rename("county")) if table is None else table.copy()
        county_table.index = county_table.index.astype(str)
        people = getattr(continuous, "population", None) if continuous is not None else None
        if people is not None:  # as the county analysis: the raster's people replace the table's column
            county_table[study.demand.population] = people.reindex(county_table.index).to_numpy()
        keys = pd.Index(polygons[study.id_field].astype(str), name="county")
        if area_km2 is None:
            area_km2 = pd.Series(geodesic_areas_km2(polygons), index=keys)
        density = demand_by_county(county_table, area_km2=area_km2,
                                   per_capita_t=study.demand.per_capita(), emissions_column=study.demand.emissions_column,
                                   population_column=study.demand.population)["demand_t_per_km2"]
    names = list(continuous.stores) if continuous is not None else []
    # Only the pixels inside the counties count (supply, people, NPP): the cells' totals are the counties'.
    # Each pixel's demand density is its county's, looked up from the ids inside the pass's task.
    region, zone_table = open_zones(county_store)
    return supply_cells(landuse_store, study.pools, size=float(size), run=run, progress=progress,
                        values_by_region=county_density_lookup(zone_table, density),
                        extra=cell_value_specs(names), rasters=continuous.rasters() if names else None, region=region.data,
                        factors=cell_factors(study, zone_table))


def cell_factors(study: Study, zone_table: Any) -> CellFactors | None:
    """The study's ``[continuous] factors`` and ``factor_table`` for the cell pass (each pool's
    factor raster by the name the pass reads it under; the table as factors by county id), so
    that each cell's supply uses the densities its counties' supply uses; None without them."""
    from carbonscape.continuous import county_factor_array, factor_table
    from carbonscape.study.continuous import factor_pools

    rasters = factor_pools(study)
    path = study.setting("continuous", "factor_table")
    if not rasters and path is None:
        return None
    by_county = None
    if path is not None:
        table = factor_table(path, key=study.setting("continuous", "factor_key") or study.id_field, counties=[str(v) for v in zone_table.values])
        by_county = county_factor_array(table, zone_table)
    return CellFactors(rasters=rasters, county_factors=by_county)


@dataclass
class CellStudy:
    """A study's analysis on grid cells.

    Attributes
    ----------
    supply
        Supply per cell (:class:`carbonscape.cells.CellSupplyResult`), with ``values``: the
        demand density's area-weighted sums.
    table
        Per cell (index ``cell``): ``row, col, supply_t, area_km2, supply_t_per_km2,
        demand_t_per_km2, emissions_t, ratio, ratio_infinite, demand_unit, class, zone, zone_en,
        zone_key, zone_number`` and the matching indices.
    zoning
        The cells' class edges and scheme (as a study's ``zoning``).
    statistics, uncertainty
        :class:`~carbonscape.spatial.SpatialStatistics` and
        :class:`~carbonscape.uncertainty.UncertaintyResult` of the cells, or None.
    info
        What run.json records under ``cells``.
    """

    supply: CellSupplyResult
    table: pd.DataFrame
    zoning: dict[str, Any]
    statistics: Any = None
    uncertainty: Any = None
    info: dict[str, Any] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def cells(self) -> CellGrid:
        return self.supply.cells

    def write(self, out: Path) -> dict[str, Path]:
        """Every table, ``cells.gpkg`` and GeoTIFF into ``out/cells``; returns them by name
        (``cells:<name>``)."""
        folder = Path(out) / CELLS_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        files = {f"cells:{k}": v for k, v in self.supply.write(folder, polygons=False).items()}
        table = self.table.reset_index()
        target = folder / "ratio_zones_by_cell.csv"
        with atomic_path(target) as tmp:
            table.drop(columns=["zone_number"]).to_csv(tmp, index=False, encoding="utf-8", float_format="%.10g")
        files["cells:ratio_zones"] = target
        # cells.gpkg: supply's columns and the ratio table's, one polygon per cell.
        whole = self.supply.by_cell.merge(table.drop(columns=["row", "col", "supply_t", "area_km2", "supply_t_per_km2", "zone_number"]),
                                          on="cell", how="left")
        files["cells:polygons"] = write_cells_gpkg(self.cells, whole, folder / "cells.gpkg")
        demand_unit = str(self.table["demand_unit"].iloc[0]) if len(self.table) else ""
        for name, (column, file_name, unit, dtype) in GEOTIFFS.items():
            if name == "demand_density":
                unit = demand_unit
            elif name == "ratio":
                unit = f"demand ({demand_unit}) / supply (t C/km²)"
            elif name == "zone":
                unit = "; ".join(f"{n} = {key}" for key, n in self.info.get("zone_numbers", {}).items())
            files[f"cells:{name}_tif"] = write_cell_geotiff(self.cells, table, column, folder / file_name, unit=unit, dtype=dtype)
        for name, (column, file_name, unit) in CONTINUOUS_GEOTIFFS.items():  # with [continuous] population / npp
            if column in table.columns:
                files[f"cells:{name}_tif"] = write_cell_geotiff(self.cells, table, column, folder / file_name, unit=unit)
        values = self.supply.continuous_table()
        if values is not None:
            target = folder / "continuous_by_cell.csv"
            with atomic_path(target) as tmp:
                values.to_csv(tmp, index=False, encoding="utf-8", float_format="%.10g")
            files["cells:continuous"] = target
        if self.statistics is not None:
            files.update({f"cells:{k}": v for k, v in self.statistics.write(folder).items()})
        if self.uncertainty is not None:
            files["cells:uncertainty"] = self.uncertainty.write(folder, unit="cell", name="uncertainty_by_cell.csv")
        self.files.update(files)
        return files

    def draw(self, out: Path) -> list[Path]:
        """The cell maps, drawn as rasters into ``out/cells/maps``."""
        from carbonscape.statmaps import draw_cell_maps

        return draw_cell_maps(self.cells, self.table, Path(out) / CELLS_FOLDER / "maps", statistics=self.statistics,
                              uncertainty=self.uncertainty)


def analyse_cells(study: Study, supply: CellSupplyResult, *, spreads: Any = None) -> CellStudy:
    """Demand, ratio, zones, matching indices, spatial statistics and uncertainty of the cells.

    Raises
    ------
    StudyError
        When the study's zoning cannot classify the cells' ratios (``[zoning] k`` above the
        distinct ratios), naming the setting.
    """
    assert study.zoning.method is not None and study.zoning.k is not None
    if supply.values is None:
        raise InputError("the cell pass made no demand densities (values); run it with the county densities")
    # The study region is its counties: the cell pass counted only their pixels (region_share), so
    # supply_by_cell.csv holds the cells with land in the counties; a cell whose land inside is all
    # nodata for the demand density (none in practice) is left out of the analysis.
    inside = (supply.values["pixels"] > 0).to_numpy()
    by_cell = supply.by_cell[inside].set_index("cell")
    values = supply.values[inside].set_index(by_cell.index)
    source = cell_demand_source(study) if "population" in supply.raster_names else "counties"
    people = None
    if source == "population":
        # People per cell (Σ d·a of the population store, people per m² × m²) × the per-capita
        # emission, over the cell's land area: emissions_t is the cell's people's emissions.
        people = supply.raster_values("population")["sum_va"][inside].set_axis(by_cell.index)  # type: ignore[index]
        emissions = people * float(study.demand.per_capita())  # type: ignore[arg-type]
        with np.errstate(divide="ignore", invalid="ignore"):
            density = emissions / by_cell["area_km2"]
    else:
        density = values["mean"]  # t CO2/km², area-weighted over the cell's pixels in counties
        emissions = density * by_cell["area_km2"]
    demand = pd.DataFrame({
        "area_km2": by_cell["area_km2"],
        "demand_t_per_km2": density,
        "emissions_t": emissions,
    })
    extras = pd.DataFrame(index=by_cell.index)
    if people is not None:
        extras["population"] = people
    npp = supply.raster_values("npp") if "npp" in supply.raster_names else None
    if npp is not None:  # yearly sequestration per cell, as per county (carbonscape.continuous.sequestration_by_county)
        from carbonscape.continuous import C_TO_CO2, NPP_UNITS

        npp = npp[inside].set_axis(by_cell.index)
        extras["npp_mean"] = npp["mean"]
        extras["sequestration_t_c"] = npp["sum_va"] * NPP_UNITS[study.setting("continuous", "npp_units", "g C m-2 yr-1")]
        extras["sequestration_t_co2"] = extras["sequestration_t_c"] * C_TO_CO2
    return analyse_cell_demand(study, supply, by_cell, demand, extras=extras, spreads=spreads,
                               info={"cells_outside_counties": int((~inside).sum()),
                                     "cells_on_region_edge": int((by_cell["region_share"] < 1).sum()) if "region_share" in by_cell else 0,
                                     "demand": DEMAND_WORDS[source], "demand_source": source,
                                     **({"density_correction": supply.summary["density_correction"]}
                                        if "density_correction" in supply.summary else {})})


def analyse_cell_demand(study: Study, supply: CellSupplyResult, by_cell: pd.DataFrame, demand: pd.DataFrame, *,
                        extras: pd.DataFrame | None = None, spreads: Any = None, info: dict[str, Any] | None = None) -> CellStudy:
    """Ratio, zones, matching indices, spatial statistics and uncertainty of the cells of
    ``by_cell`` (indexed by ``cell``) with their ``demand`` (``area_km2, demand_t_per_km2,
    emissions_t``, same index): the half of :func:`analyse_cells` after the demand, which the
    cells stage (:func:`carbonscape.study.stages.cells_stage`) runs again from a results folder.
    ``extras`` are columns put beside the demand in the table (population, sequestration)."""
    assert study.zoning.method is not None and study.zoning.k is not None
    ratio = supply_demand_ratio(by_cell["supply_t"], demand, units=study.ratio_units)
    ratio.index.name = "cell"
    weights = ratio["area_km2"] if study.zoning.weights == "area" else None
    try:
        zones_frame, zoning_info = zone_ratios(ratio["ratio"], method=study.zoning.method, k=study.zoning.k,
                                               breaks=list(study.zoning.breaks) if study.zoning.breaks else None, weights=weights,
                                               scheme=study.zoning.scheme)
    except InputError as exc:
        raise StudyError(f"[zoning] k = {study.zoning.k} ({study.zoning.method}) on the {len(ratio):,} cells of {SETTING}: {exc}",
                         path=str(study.path)) from exc
    scheme = get_scheme(study.zoning.scheme, k=int(zoning_info["k"]))
    numbers = {zone.key: n for n, zone in enumerate(scheme.zones, start=1)}
    table = pd.concat([by_cell[["row", "col"]], ratio, zones_frame], axis=1)
    table["emissions_t"] = demand["emissions_t"]
    for column in extras.columns if extras is not None else []:
        table[column] = extras[column]
    table["zone_number"] = table["zone_key"].map(numbers).fillna(0).astype(np.int16)
    table = pd.concat([table, matching_indices(table, alpha=study.setting("matching", "supply_weight", 0.5),
                                                beta=study.setting("matching", "demand_weight", 0.5))], axis=1)
    statistics, left_out = _statistics(study, supply.cells, table)
    uncertainty = _uncertainty(study, spreads, supply, table, zoning_info, scheme)
    info = {
        "size": supply.cells.size, "unit": supply.cells.unit, "pixels_per_cell_edge": supply.cells.cell, "grid_shape": list(supply.cells.shape),
        "cells": int(len(table)), **(info or {}),
        "landuse_grid": supply.cells.grid.to_attrs(),
        "supply_t": float(table["supply_t"].sum()), "zoning": _jsonable(zoning_info), "zone_numbers": numbers,
        **({"statistics": {"weights": statistics.settings.weights, "permutations": statistics.settings.permutations,
                           "seed": statistics.settings.seed, "alpha": statistics.settings.alpha,
                           "islands": len(statistics.islands)}} if statistics is not None else {}),
        **({"uncertainty": _jsonable(uncertainty.info)} if uncertainty is not None else {}),
        **({"statistics_left_out": left_out} if left_out else {}),
    }
    return CellStudy(supply=supply, table=table, zoning=zoning_info, statistics=statistics, uncertainty=uncertainty, info=info)


def _statistics(study: Study, cells: CellGrid, table: pd.DataFrame) -> tuple[Any, str | None]:
    """The cells' spatial statistics, and the note saying why they were left out when ``[statistics]
    enabled = true`` asked for them and there are too few cells (None otherwise)."""
    from carbonscape.spatial import MIN_UNITS, SpatialSettings, lattice_weights, parse_weights, spatial_statistics, spatial_weights

    enabled = study.setting("statistics", "enabled")
    if enabled is False:
        return None, None
    if len(table) < MIN_UNITS:
        if enabled:  # asked for: said where the user looks (log, run.json, report), not a refusal of the counties' analysis
            note = too_few_cells_note(len(table), cells.size)
            log.warning("%s", note)
            return None, note
        log.info("spatial statistics of the cells left out: %d cells, fewer than %d", len(table), MIN_UNITS)
        return None, None
    settings = SpatialSettings(
        weights=study.setting("statistics", "weights", "queen"), permutations=study.setting("statistics", "permutations", 999),
        seed=study.setting("statistics", "seed", 12345), alpha=study.setting("statistics", "alpha", 0.05),
    )
    rows, cols = table["row"].to_numpy(), table["col"].to_numpy()
    units = pd.DataFrame(index=table.index)
    if parse_weights(settings.weights)[0] == "knn":
        import geopandas as gpd

        units = gpd.GeoDataFrame(index=table.index, geometry=cells.polygons(rows, cols), crs=cells.grid.crs_wkt)
        w = spatial_weights(units, kind=settings.weights)
    else:
        w = lattice_weights(rows, cols, cells.shape, kind=settings.weights)
    log.info("spatial statistics of %d cells (%s weights, %d permutations)", len(table), settings.weights, settings.permutations)
    return spatial_statistics(units, table, settings=settings, unit="cell", w=w), None


def _uncertainty(study: Study, spreads: Any, supply: CellSupplyResult, table: pd.DataFrame, zoning_info: dict[str, Any], scheme: Any) -> Any:
    from carbonscape.uncertainty import DEFAULT_DRAWS, DEFAULT_SEED, supply_uncertainty

    if spreads is None or study.setting("uncertainty", "enabled") is False:
        return None
    return supply_uncertainty(
        supply.area_ha.reindex(table.index), spreads, area_km2=table["area_km2"], demand_t_per_km2=table["demand_t_per_km2"],
        edges=zoning_info["edges"], zones=[(zone.key, zone.classes) for zone in scheme.zones],
        draws=study.setting("uncertainty", "draws", DEFAULT_DRAWS), seed=study.setting("uncertainty", "seed", DEFAULT_SEED),
        factors=supply.mean_factors(table.index),  # the densities [continuous] corrected, as the cells' supply uses them
    )


def _jsonable(value: Any) -> Any:
    from carbonscape.study.provenance import jsonable

    return jsonable(value)

