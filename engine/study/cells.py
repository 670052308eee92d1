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
  not the density of the county holding its centre. Cells with land but no pixel in a county lie
  outside the study region: they stay in ``supply_by_cell.csv`` and out of the analysis. This
  is the county density spread evenly over each county's land, as the county analysis assumes; a
  population raster (WorldPop-style), when a study gives one, is the finer source;
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
from carbonscape.cells import CellGrid, CellSupplyResult, supply_cells, write_cell_geotiff, write_cells_gpkg
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

__all__ = ["CELLS_FOLDER", "CellStudy", "analyse_cells", "cells_problems", "county_density_raster", "supply_and_demand_cells"]

CELLS_FOLDER = "cells"
SETTING = "[units] grid"
# Files of the cell analysis, inside CELLS_FOLDER, with what each holds.
CELL_OUTPUTS = {
    "supply_by_cell.csv": "supply per cell (t C) with per-class columns",
    "ratio_zones_by_cell.csv": "supply and demand densities, ratio, class, zone and matching indices per cell",
    "cells.gpkg": "the cells as polygons with every column",
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
                        "the counties it lies in, area-weighted); a population raster instead of counties is not supported yet")
    if grid is None:
        return problems
    try:
        cells = CellGrid.from_size(grid, size, setting=SETTING)
    except GridError as exc:
        return [*problems, f"{exc}: a cell must be a whole number of land-use pixels"]
    n = cells.shape[0] * cells.shape[1]
    if study.setting("statistics", "enabled") is True and n < MIN_UNITS:
        problems.append(f"[statistics] enabled = true needs at least {MIN_UNITS} units, and {SETTING} = {size:g} gives {n} cell(s) "
                        f"({cells.shape[0]} × {cells.shape[1]}) over the land use; use a smaller {SETTING}, or set [statistics] enabled = false")
    return problems


def county_density_raster(county_store: str | Path, density: pd.Series) -> da.Array:
    """Per pixel, the density (e.g. demand, t CO₂/km²) of the county holding its centre; NaN outside
    every county. ``density`` is indexed by county key (text); lazily, on the county store's chunks."""
    store, table = open_zones(county_store)
    lookup = np.full(table.n_zones, np.nan, dtype=np.float64)
    keyed = density.copy()
    keyed.index = keyed.index.astype(str)
    for zone_id, key in zip(table.ids, table.values):
        lookup[int(zone_id)] = float(keyed.get(str(key), np.nan))
    return store.data.map_blocks(lambda block: lookup[block], dtype=np.float64)


def supply_and_demand_cells(study: Study, *, landuse_store: Path, county_store: Path, demand_t_per_km2: pd.Series, run: Executor,
                            progress: bool = False) -> CellSupplyResult:
    """Supply per cell and the cells' area-weighted county demand density, in one pass over the
    land use and the county ids."""
    size = grid_size(study)
    assert size is not None and study.pools is not None
    values = county_density_raster(county_store, demand_t_per_km2)
    return supply_cells(landuse_store, study.pools, size=float(size), run=run, progress=progress, values=values)


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
    # The study region is its counties: cells with land but no pixel in any county stay in
    # supply_by_cell.csv only; the analysis is of the cells that hold county land.
    inside = (supply.values["pixels"] > 0).to_numpy()
    by_cell = supply.by_cell[inside].set_index("cell")
    values = supply.values[inside].set_index(by_cell.index)
    density = values["mean"]  # t CO2/km², area-weighted over the cell's pixels in counties
    demand = pd.DataFrame({
        "area_km2": by_cell["area_km2"],
        "demand_t_per_km2": density,
        "emissions_t": density * by_cell["area_km2"],
    })
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
    table["zone_number"] = table["zone_key"].map(numbers).fillna(0).astype(np.int16)
    table = pd.concat([table, matching_indices(table, alpha=study.setting("matching", "supply_weight", 0.5),
                                                beta=study.setting("matching", "demand_weight", 0.5))], axis=1)
    statistics = _statistics(study, supply.cells, table)
    uncertainty = _uncertainty(study, spreads, supply, table, zoning_info, scheme)
    info = {
        "size": supply.cells.size, "pixels_per_cell_edge": supply.cells.cell, "grid_shape": list(supply.cells.shape),
        "cells": int(len(table)), "cells_outside_counties": int((~inside).sum()),
        "demand": "area-weighted mean of the demand densities of the counties holding the cell's pixels",
        "supply_t": float(table["supply_t"].sum()), "zoning": _jsonable(zoning_info), "zone_numbers": numbers,
        **({"statistics": {"weights": statistics.settings.weights, "permutations": statistics.settings.permutations,
                           "seed": statistics.settings.seed, "alpha": statistics.settings.alpha,
                           "islands": len(statistics.islands)}} if statistics is not None else {}),
        **({"uncertainty": _jsonable(uncertainty.info)} if uncertainty is not None else {}),
    }
    return CellStudy(supply=supply, table=table, zoning=zoning_info, statistics=statistics, uncertainty=uncertainty, info=info)


def _statistics(study: Study, cells: CellGrid, table: pd.DataFrame) -> Any:
    from carbonscape.spatial import MIN_UNITS, SpatialSettings, lattice_weights, parse_weights, spatial_statistics, spatial_weights

    enabled = study.setting("statistics", "enabled")
    if enabled is False:
        return None
    if len(table) < MIN_UNITS:
        if enabled:
            raise StudyError(f"[statistics] enabled = true needs at least {MIN_UNITS} units; {SETTING} gives {len(table)} cell(s) with land",
                             path=str(study.path))
        log.info("spatial statistics of the cells left out: %d cells, fewer than %d", len(table), MIN_UNITS)
        return None
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
    return spatial_statistics(units, table, settings=settings, unit="cell", w=w)


def _uncertainty(study: Study, spreads: Any, supply: CellSupplyResult, table: pd.DataFrame, zoning_info: dict[str, Any], scheme: Any) -> Any:
    from carbonscape.uncertainty import DEFAULT_DRAWS, DEFAULT_SEED, supply_uncertainty

    if spreads is None or study.setting("uncertainty", "enabled") is False:
        return None
    return supply_uncertainty(
        supply.area_ha.reindex(table.index), spreads, area_km2=table["area_km2"], demand_t_per_km2=table["demand_t_per_km2"],
        edges=zoning_info["edges"], zones=[(zone.key, zone.classes) for zone in scheme.zones],
        draws=study.setting("uncertainty", "draws", DEFAULT_DRAWS), seed=study.setting("uncertainty", "seed", DEFAULT_SEED),
    )


def _jsonable(value: Any) -> Any:
    from carbonscape.study.provenance import jsonable

    return jsonable(value)

