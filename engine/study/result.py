"""What a study run produced, in memory: :class:`StudyResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
from carbonscape.carbon import SupplyResult

__all__ = ["StudyResult"]


@dataclass
class StudyResult:
    """What a study run produced.

    Attributes
    ----------
    out
        The output folder.
    supply
        The supply tables (t C) per county, class, county and class, pool.
    demand
        Per county (index ``county``, text): population, area_km2, density_per_km2,
        demand_t_per_km2 (t CO2/km²), share_pct, pixel_area_km2, emissions_t.
    ratio_zones
        Per county: supply_t, supply_t_per_km2, demand_t_per_km2 (unit in ``demand_unit``), ratio,
        ratio_infinite, class, zone, zone_en, zone_key.
    zoning
        ``{method, k, edges, gvf, scheme, clipped}``.
    totals
        Region totals, each named with its unit.
    run_info
        What ``run.json`` holds.
    files
        Every file written, by name.
    polygons
        The county polygons as read, with ``county`` (text key) and ``area_km2`` (true area).
    statistics
        Moran's I, LISA and Gi* tables (:class:`carbonscape.spatial.SpatialStatistics`), or None.
    uncertainty
        Monte Carlo intervals per county (:class:`carbonscape.uncertainty.UncertaintyResult`), or None.
    cells
        The analysis on grid cells (:class:`carbonscape.study.cells.CellStudy`), or None.
    """

    out: Path
    supply: SupplyResult
    demand: pd.DataFrame
    ratio_zones: pd.DataFrame
    zoning: dict[str, Any]
    totals: dict[str, Any]
    run_info: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    polygons: gpd.GeoDataFrame | None = None
    landuse_maps: Any = None  # carbonscape.change.MapsResult of a study with [landuse.maps]
    statistics: Any = None
    uncertainty: Any = None
    cells: Any = None  # carbonscape.study.cells.CellStudy of a study with [units] grid
