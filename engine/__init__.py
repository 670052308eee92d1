"""carbonscape: carbon supply, demand and their balance per county from land-use rasters."""

from carbonscape.errors import (
    AlignmentError,
    CarbonscapeError,
    GridError,
    InputError,
    PoolTableError,
    StudyError,
    TableError,
    ZoneError,
)

__version__ = "0.1.0"
