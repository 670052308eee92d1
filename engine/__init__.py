"""carbonscape: carbon supply, demand and their balance per county from land-use rasters.

The public API: :func:`ingest` (GeoTIFF → Zarr), :func:`rasterize_zones` (polygons → zone ids on
the land-use grid), :func:`supply` (carbon tables), and the pieces they are built from.
"""

from carbonscape.breaks import (
    classify,
    equal_interval_breaks,
    goodness_of_variance_fit,
    manual_breaks,
    natural_breaks,
    quantile_breaks,
)
from carbonscape.carbon import PoolTable, SupplyResult, read_pools, supply
from carbonscape.change import ChangeResult, Valuation, change, valuation_constant
from carbonscape.demand import (
    demand_by_county,
    demand_totals,
    per_capita_emission,
    read_county_table,
)
from carbonscape.errors import (
    AlignmentError,
    CarbonscapeError,
    ClusterError,
    GridError,
    InputError,
    PoolTableError,
    StorageError,
    StudyError,
    TableError,
    ZoneError,
)
from carbonscape.grid import Grid
from carbonscape.io import RasterStore, ingest, open_store
from carbonscape.rasterize import (
    ZoneTable,
    geodesic_areas_km2,
    open_zones,
    lazy_zones,
    rasterize_zones,
    read_polygons,
)
from carbonscape.ratio import supply_demand_ratio
from carbonscape.study import (
    Study,
    StudyResult,
    check_study,
    demand_stage,
    load_study,
    read_outputs,
    run_study,
    statistics_stage,
    cells_stage,
    write_study_template,
    zoning_stage,
)
from carbonscape.synthetic import Region, make_region
from carbonscape.zoning import (
    PAPER_RATIO_BREAKS,
    PAPER_SCHEME,
    Zone,
    ZoneGroup,
    ZoneScheme,
    zone_groups,
    zone_ratios,
)

__version__ = "0.1.0"

# Drawing pulls in matplotlib (~0.2 s of start-up) that ingest/zones/supply never need.
_LAZY = {"draw_maps": "carbonscape.maps", "write_report": "carbonscape.report", "run_demo": "carbonscape.demo"}
_LAZY["redraw_maps"] = "carbonscape.study.outputs"  # every map of a results folder (`carbonscape maps`)


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'carbonscape' has no attribute {name!r}")

__all__ = [
    "draw_maps",
    "redraw_maps",
    "run_demo",
    "write_report",
    "PAPER_RATIO_BREAKS",
    "PAPER_SCHEME",
    "Study",
    "StudyResult",
    "Zone",
    "ZoneScheme",
    "check_study",
    "demand_stage",
    "classify",
    "demand_by_county",
    "demand_totals",
    "equal_interval_breaks",
    "goodness_of_variance_fit",
    "load_study",
    "read_outputs",
    "manual_breaks",
    "natural_breaks",
    "per_capita_emission",
    "quantile_breaks",
    "read_county_table",
    "run_study",
    "supply_demand_ratio",
    "write_study_template",
    "zone_groups",
    "zone_ratios",
    "zoning_stage",
    "statistics_stage",
    "cells_stage",
    "ZoneGroup",
    "AlignmentError",
    "CarbonscapeError",
    "ClusterError",
    "Grid",
    "GridError",
    "InputError",
    "PoolTable",
    "PoolTableError",
    "RasterStore",
    "Region",
    "StorageError",
    "StudyError",
    "SupplyResult",
    "TableError",
    "ZoneError",
    "ZoneTable",
    "geodesic_areas_km2",
    "ingest",
    "make_region",
    "open_store",
    "open_zones",
    "lazy_zones",
    "rasterize_zones",
    "read_polygons",
    "read_pools",
    "supply",
    "change",
    "ChangeResult",
    "Valuation",
    "valuation_constant",
]
