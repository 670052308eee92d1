"""carbonscape: carbon supply, demand and their balance per county from land-use rasters.

The public API: :func:`ingest` (GeoTIFF → Zarr), :func:`rasterize_zones` (polygons → zone ids on
the land-use grid), :func:`supply` (carbon tables), and the pieces they are built from.
"""

from carbonscape.errors import (
    AlignmentError,
    CarbonscapeError,
    ClusterError,
    GridError,
    InputError,
    PoolTableError,
    StudyError,
    TableError,
    ZoneError,
)
from carbonscape.grid import Grid
from carbonscape.io import RasterStore, ingest, open_store
from carbonscape.rasterize import ZoneTable, geodesic_areas_km2, open_zones, rasterize_zones, read_polygons
from carbonscape.carbon import PoolTable, SupplyResult, read_pools, supply
from carbonscape.synthetic import Region, make_region

__version__ = "0.1.0"

__all__ = [
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
    "rasterize_zones",
    "read_polygons",
    "read_pools",
    "supply",
]
