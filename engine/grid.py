"""The raster grid as a value: CRS, affine transform, shape and chunking (odc-geo's GeoBox)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from affine import Affine
from carbonscape.errors import AlignmentError, GridError
from pyproj import CRS

Shape2d = tuple[int, int]
# Tolerance for comparing transforms, as a fraction of a pixel: grids written by different tools
# disagree in the last few bits of the origin.
_PIXEL_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid.

    Parameters
    ----------
    crs_wkt
        The coordinate reference system as WKT2.
    transform
        The affine transform as ``(a, b, c, d, e, f)`` (rasterio's order): ``x = a*col + b*row + c``.
    shape
        ``(rows, cols)``.
    chunks
        ``(rows, cols)`` of one chunk; edge chunks are smaller.
    """

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    shape: Shape2d
    chunks: Shape2d = (4096, 4096)

    def __post_init__(self) -> None:
        a, b, _, d, e, _ = self.transform
        if b != 0 or d != 0:
            raise GridError(
                f"the grid is rotated or sheared (transform {self.transform}); carbonscape needs a "
                "north-up grid: warp it first, e.g. `gdalwarp -t_srs <CRS> in.tif out.tif`"
            )
        if a <= 0 or e >= 0:
            raise GridError(
                f"the grid must have positive x and negative y pixel sizes (got {a}, {e}); "
                "flip the raster to north-up with gdalwarp"
            )
        if min(self.shape) <= 0 or min(self.chunks) <= 0:
            raise GridError(f"empty grid or chunk: shape {self.shape}, chunks {self.chunks}")
        # Fail at construction, not mid-run, on a CRS we cannot measure areas in.
        _ = self.linear_unit_m if not self.is_geographic else None

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_affine(
        cls, *, crs: CRS | str, transform: Affine, shape: Shape2d, chunks: Shape2d = (4096, 4096)
    ) -> Grid:
        """Build a grid from a pyproj/rasterio CRS (or any string pyproj understands)."""
        if crs is None or str(crs) == "":
            raise GridError("the raster has no CRS; assign one first, e.g. `gdal_edit.py -a_srs EPSG:XXXX`")
        crs_obj = CRS.from_user_input(crs if not hasattr(crs, "to_wkt") else crs.to_wkt())
        return cls(
            crs_wkt=crs_obj.to_wkt(),
            transform=tuple(float(v) for v in tuple(transform)[:6]),  # type: ignore[arg-type]
            shape=(int(shape[0]), int(shape[1])),
            chunks=(int(min(chunks[0], shape[0])), int(min(chunks[1], shape[1]))),
        )

    def with_chunks(self, chunks: Shape2d) -> Grid:
        """The same grid cut into other chunks."""
        return Grid(self.crs_wkt, self.transform, self.shape, (min(chunks[0], self.shape[0]), min(chunks[1], self.shape[1])))

    # -- geometry ---------------------------------------------------------------------------
    @cached_property
    def crs(self) -> CRS:
        return CRS.from_wkt(self.crs_wkt)

    @property
    def affine(self) -> Affine:
        return Affine(*self.transform)

    @property
    def resolution(self) -> tuple[float, float]:
        """Pixel size ``(x, y)``, both positive, in CRS units."""
        return (self.transform[0], -self.transform[4])

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` in CRS units."""
        a, _, c, _, e, f = self.transform
        return (c, f + e * self.shape[0], c + a * self.shape[1], f)

    @property
    def is_geographic(self) -> bool:
        return bool(self.crs.is_geographic)

    @cached_property
    def linear_unit_m(self) -> float:
        """Metres per CRS unit of a projected grid."""
        axis = self.crs.axis_info[0] if self.crs.axis_info else None
        factor = getattr(axis, "unit_conversion_factor", None)
        if axis is None or not factor or axis.unit_name.strip().lower() in ("", "unknown", "unnamed"):
            raise GridError(
                f"the CRS has no linear units ({self.crs.name!r}); carbonscape cannot compute pixel "
                "areas. Reproject to a projected CRS in metres (an equal-area one is best) or to "
                "geographic lat/lon"
            )
        return float(factor)

    @property
    def pixel_area_m2(self) -> float:
        """Area of one pixel in m² (projected grids only)."""
        if self.is_geographic:
            raise GridError("pixel areas of a geographic grid vary by row; use row_areas_m2()")
        x, y = self.resolution
        return x * y * self.linear_unit_m**2

    def row_areas_m2(self, row_start: int = 0, row_stop: int | None = None) -> np.ndarray:
        """Area of one pixel in each row, in m² (true ellipsoidal areas on a geographic grid)."""
        stop = self.shape[0] if row_stop is None else row_stop
        if not self.is_geographic:
            return np.full(stop - row_start, self.pixel_area_m2)
        ellipsoid = self.crs.ellipsoid
        top = self.transform[5]
        dy = self.transform[4]
        dx_rad = math.radians(self.transform[0] * self._angular_unit_deg)
        edges = top + dy * np.arange(row_start, stop + 1, dtype=np.float64)
        return ellipsoid_band_areas(
            edges * self._angular_unit_deg,
            semi_major=ellipsoid.semi_major_metre,
            inverse_flattening=ellipsoid.inverse_flattening,
            dlon_rad=dx_rad,
        )

    @cached_property
    def _angular_unit_deg(self) -> float:
        axis = self.crs.axis_info[0]
        return math.degrees(axis.unit_conversion_factor) if axis.unit_conversion_factor else 1.0

    # -- chunks -----------------------------------------------------------------------------
    @property
    def dask_chunks(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (_split(self.shape[0], self.chunks[0]), _split(self.shape[1], self.chunks[1]))

    def chunk_windows(self) -> Iterator[tuple[tuple[int, int], tuple[slice, slice]]]:
        """Yield ``((i, j), (row_slice, col_slice))`` for every chunk, row-major."""
        rows, cols = self.dask_chunks
        r0 = 0
        for i, h in enumerate(rows):
            c0 = 0
            for j, w in enumerate(cols):
                yield (i, j), (slice(r0, r0 + h), slice(c0, c0 + w))
                c0 += w
            r0 += h

    def window_transform(self, row: int, col: int) -> Affine:
        """Transform of a sub-window whose top-left pixel is ``(row, col)``."""
        return self.affine @ Affine.translation(col, row)

    def window_bounds(self, rows: slice, cols: slice) -> tuple[float, float, float, float]:
        a, _, c, _, e, f = self.transform
        return (c + a * cols.start, f + e * rows.stop, c + a * cols.stop, f + e * rows.start)

    def x_coords(self) -> np.ndarray:
        a, _, c, *_ = self.transform
        return c + a * (np.arange(self.shape[1]) + 0.5)

    def y_coords(self) -> np.ndarray:
        *_, e, f = self.transform
        return f + e * (np.arange(self.shape[0]) + 0.5)

    # -- comparison -------------------------------------------------------------------------
    def same_grid(self, other: Grid) -> bool:
        """True when both grids put the same pixels at the same places (chunks may differ)."""
        if self.shape != other.shape or not self.crs.equals(other.crs, ignore_axis_order=True):
            return False
        tol = _PIXEL_TOLERANCE * min(self.resolution)
        return all(abs(p - q) <= tol for p, q in zip(self.transform, other.transform))

    def check_same_grid(self, other: Grid, *, what: str, reference: str) -> None:
        """Raise :class:`AlignmentError` naming both sources when the grids differ."""
        if self.same_grid(other):
            return
        differences = []
        if self.shape != other.shape:
            differences.append(f"shape {other.shape} vs {self.shape}")
        if not self.crs.equals(other.crs, ignore_axis_order=True):
            differences.append(f"CRS {other.crs.name!r} vs {self.crs.name!r}")
        if self.transform != other.transform:
            differences.append(f"transform {other.transform} vs {self.transform}")
        raise AlignmentError(
            f"{what} is not on the grid of {reference} ({'; '.join(differences)}); "
            f"rebuild it against {reference} (e.g. `carbonscape zones ... --like {reference}`)"
        )

    def to_attrs(self) -> dict[str, object]:
        return {"crs_wkt": self.crs_wkt, "transform": list(self.transform), "shape": list(self.shape)}


def _split(total: int, size: int) -> tuple[int, ...]:
    full, rest = divmod(total, size)
    return (size,) * full + ((rest,) if rest else ())


def ellipsoid_band_areas(
    lat_edges_deg: np.ndarray, *, semi_major: float, inverse_flattening: float, dlon_rad: float
) -> np.ndarray:
    """Areas (m²) of cells between consecutive latitude edges, ``dlon_rad`` wide, on an ellipsoid.

    Uses the closed form of the area between the equator and latitude φ on an ellipsoid of
    revolution (the authalic-latitude integral), so a 1° cell is as exact as a 1″ one.
    """
    f = 1.0 / inverse_flattening if inverse_flattening else 0.0
    a = semi_major
    b = a * (1.0 - f)
    phi = np.radians(np.asarray(lat_edges_deg, dtype=np.float64))
    sin_phi = np.sin(phi)
    if f == 0.0:
        zone = a * a * sin_phi
    else:
        e = math.sqrt(f * (2.0 - f))
        es = e * sin_phi
        zone = (b * b / 2.0) * (
            sin_phi / (1.0 - es * es) + np.log((1.0 + es) / (1.0 - es)) / (2.0 * e)
        )
    # zone(φ) is the area from the equator to φ per radian of longitude.
    return np.abs(np.diff(zone)) * dlon_rad
