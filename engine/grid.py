"""The raster grid as a value: CRS, affine transform, shape and chunking (odc-geo's GeoBox)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any

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
        """Area of one pixel in each row, in m² (true ellipsoidal areas on a geographic grid).

        On a projected grid these are the nominal areas (``pixel_area_m2``); the true ones are
        given by :attr:`area_model` (:meth:`pixel_areas_m2`).
        """
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
    def area_model(self) -> AreaModel:
        """Which pixel areas are true on this grid, decided by measurement (see :class:`AreaModel`)."""
        return AreaModel.measure(self)

    def exact_pixel_areas_m2(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """True ground area (m²) of pixels ``(rows[k], cols[k])`` on the CRS's ellipsoid.

        Each pixel's outline (straight edges in the grid's CRS) is traced in lon/lat and its area
        integrated with Green's theorem, ``A = -∮ Z(φ) dλ``, where ``Z(φ)`` is the ellipsoidal
        area from the equator to latitude φ per radian of longitude (the authalic-latitude
        closed form of :func:`ellipsoid_band_areas`). The edges are densified (8 and 16 segments,
        Richardson-extrapolated: the error falls as the fourth power of the segment length), so
        the result is exact to ~1e-11 relative for any pixel of a smooth projection. On a
        geographic grid this is the closed-form row area.
        """
        rows = np.asarray(rows, dtype=np.int64).ravel()
        cols = np.asarray(cols, dtype=np.int64).ravel()
        if self.is_geographic:
            return np.array([self.row_areas_m2(int(r), int(r) + 1)[0] for r in rows]) if rows.size < 64 else self.row_areas_m2()[rows]
        coarse = self._outline_areas(rows, cols, segments=8)
        fine = self._outline_areas(rows, cols, segments=16)
        return (16.0 * fine - coarse) / 15.0

    def _outline_areas(self, rows: np.ndarray, cols: np.ndarray, *, segments: int) -> np.ndarray:
        a, _, c, _, e, f = self.transform
        t = np.arange(segments, dtype=np.float64) / segments
        # Counter-clockwise in (x, y) starting at the bottom-left corner, in pixel units.
        du = np.concatenate([t, np.ones(segments), 1.0 - t, np.zeros(segments)])
        dv = np.concatenate([np.ones(segments), 1.0 - t, np.zeros(segments), t])
        x = c + a * (cols[:, None] + du[None, :])
        y = f + e * (rows[:, None] + dv[None, :])
        lon, lat = self._to_lonlat.transform(x, y, radians=True)
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        if not (np.all(np.isfinite(lon)) and np.all(np.isfinite(lat))):
            raise GridError(
                f"pixels of the grid lie outside the valid area of its CRS {self.crs.name!r} (their corners do not "
                "transform to lon/lat); check the raster's CRS and extent"
            )
        ellipsoid = self.crs.ellipsoid
        zone = _zone(lat, semi_major=ellipsoid.semi_major_metre, inverse_flattening=ellipsoid.inverse_flattening)
        zone = zone - zone[:, :1]  # ∮ const dλ = 0; subtracting keeps the sum's digits
        nxt = np.roll(np.arange(4 * segments), -1)
        dlon = lon[:, nxt] - lon
        dlon = (dlon + np.pi) % (2.0 * np.pi) - np.pi  # across the antimeridian
        return np.abs(-0.5 * ((zone + zone[:, nxt]) * dlon).sum(axis=1))

    @cached_property
    def _to_lonlat(self) -> Any:
        from pyproj import Transformer

        return Transformer.from_crs(self.crs, self.crs.geodetic_crs, always_xy=True)

    def pixel_areas_m2(self, rows: slice, cols: slice) -> np.ndarray:
        """The area (m²) carbonscape counts for every pixel of a window, ``(rows, cols)`` float64 (plain
        numpy, from :attr:`area_model`; the kernels compute the same values row by row): the nominal
        area where the grid's nominal areas are within ``EQUAL_AREA_TOLERANCE`` of ground, else the
        true ground area."""
        if self.area_model.nominal:
            n_rows = len(range(*rows.indices(self.shape[0])))
            n_cols = len(range(*cols.indices(self.shape[1])))
            return np.full((n_rows, n_cols), self.pixel_area_m2)
        return self.area_model.window(rows, cols)

    # -- the accumulation layer's AreaSource protocol -----------------------------------------
    def area_block(self, rows: slice, cols: slice) -> np.ndarray:
        """True pixel areas (m²) of a window, broadcastable to it: ``(1, 1)`` where nominal areas
        are true, ``(n_rows, 1)`` where areas vary by row only, else ``(n_rows, n_cols)``."""
        model = self.area_model
        if model.nominal:
            return np.full((1, 1), self.pixel_area_m2)
        if model.by_row:
            return model.window(rows, slice(0, 1))
        return model.window(rows, cols)

    def uniform_area_m2(self) -> float | None:
        """The one true pixel area when every pixel has it (measured equal-area grids), else None."""
        return self.pixel_area_m2 if self.area_model.nominal else None

    def area_lattice(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(lattice, node_rows, node_cols)`` for :mod:`carbonscape.kernels.area`."""
        model = self.area_model
        if model.nominal:  # nominal areas are what this grid counts (see EQUAL_AREA_TOLERANCE)
            return np.full_like(model.lattice, self.pixel_area_m2), model.node_rows, model.node_cols
        return model.lattice, model.node_rows, model.node_cols

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


def _zone(lat_rad: np.ndarray, *, semi_major: float, inverse_flattening: float) -> np.ndarray:
    """Ellipsoidal area (m²) from the equator to latitude φ (radians) per radian of longitude."""
    f = 1.0 / inverse_flattening if inverse_flattening else 0.0
    a = semi_major
    b = a * (1.0 - f)
    sin_phi = np.sin(lat_rad)
    if f == 0.0:
        return a * a * sin_phi
    e = math.sqrt(f * (2.0 - f))
    es = e * sin_phi
    return (b * b / 2.0) * (sin_phi / (1.0 - es * es) + np.log((1.0 + es) / (1.0 - es)) / (2.0 * e))


# Area rules, named as check, the logs and run.json give them.
AREA_ELLIPSOIDAL_ROWS = "ellipsoidal rows"  # lon/lat: every row's pixels share one exact area
AREA_NOMINAL = "nominal"  # equal-area projection: every pixel's nominal area is its ground area
AREA_TRUE_ROWS = "true, by row"  # e.g. Web Mercator: ground area varies along columns only by row
AREA_TRUE_PIXELS = "true, per pixel"  # conformal grids (UTM, Lambert conformal...): varies both ways
# Nominal pixel areas are taken as ground areas when no pixel's differs from its ground area by more
# than this. Equal-area projections measure 1e-11..1e-9. UTM and Gauss-Krüger grids inside their own
# zones stay within their design scale error (0.9996² ≈ 1 − 8e-4 at the central meridian, about
# +8e-4 at the zone's edge): that is how ArcGIS, InVEST and the studies made in those CRSs measure
# area, and what users check their tables against. Beyond 0.1 % (Web Mercator, UTM outside its zone,
# a Lambert conformal grid over a large region) the nominal area is no longer the ground area and
# every pixel gets its true area.
EQUAL_AREA_TOLERANCE = 1e-3
# Largest relative error allowed for a pixel area interpolated between lattice nodes. The lattice
# is refined until the measured error at every cell's midpoints is under it; 1e-8 keeps county and
# class totals well within the 1e-6 the areas are tested to.
INTERPOLATION_TOLERANCE = 1e-8
# Lattice spacing the refinement starts from, in pixels (and at least 8 nodes a side are measured).
_START_STEP = 4096
# The refinement stops at this many nodes whatever the error (recorded in interpolation_error);
# smooth projections need a few hundred.
_MAX_NODES = 1 << 20
# Pixels whose outlines are traced through pyproj at once (~25 MiB of coordinates).
_BATCH_PIXELS = 1 << 14
# The interpolation error below which a grid whose samples are all well within
# EQUAL_AREA_TOLERANCE of nominal stops refining its (then unused) lattice.
_NOMINAL_EARLY_ERROR = 1e-6


def _nodes(n: int, step: int) -> np.ndarray:
    return np.unique(np.concatenate([np.arange(0, n, step), [n - 1]])).astype(np.int64)


def _midpoints(nodes: np.ndarray) -> np.ndarray:
    gaps = np.diff(nodes)
    return (nodes[:-1] + gaps // 2)[gaps > 1]


@dataclass(frozen=True)
class AreaModel:
    """The area rule of a grid and, where areas are not nominal, the lattice they come from.

    ``rule`` is one of ``"ellipsoidal rows"`` (lon/lat grids: closed-form ellipsoidal row areas),
    ``"nominal"`` (measured equal-area: nominal areas are true), ``"true, by row"`` or ``"true,
    per pixel"`` (areas interpolated from exact areas at the lattice nodes).
    ``largest_difference`` is the largest ``nominal / true - 1`` over the grid (signed, the one of
    largest magnitude; 0 on lon/lat grids, whose pixels have no nominal area); ``interpolation_error``
    the largest relative interpolation error measured at the lattice's cell midpoints.
    """

    rule: str
    nominal_m2: float | None
    node_rows: np.ndarray
    node_cols: np.ndarray
    lattice: np.ndarray
    largest_difference: float
    interpolation_error: float

    @property
    def nominal(self) -> bool:
        """True when every pixel's nominal area is its ground area."""
        return self.rule == AREA_NOMINAL

    @property
    def by_row(self) -> bool:
        return self.rule in (AREA_ELLIPSOIDAL_ROWS, AREA_TRUE_ROWS)

    def window(self, rows: slice, cols: slice) -> np.ndarray:
        """Pixel areas (m²) of a window, plain numpy (the reference for the kernels)."""
        from carbonscape.kernels.area import lattice_areas_numpy

        return lattice_areas_numpy(self.lattice, self.node_rows, self.node_cols, rows, cols)

    def describe(self) -> dict[str, Any]:
        """For run.json and ``check``: the rule and the largest nominal-vs-true difference."""
        return {
            "rule": self.rule,
            "nominal_pixel_area_m2": self.nominal_m2,
            # None on a lon/lat grid: its pixels have no nominal area to differ from.
            "largest_nominal_vs_true_difference_pct": None if self.nominal_m2 is None else 100.0 * self.largest_difference,
            "lattice_nodes": [int(len(self.node_rows)), int(len(self.node_cols))],
            "interpolation_error_max": self.interpolation_error,
        }

    def sentence(self) -> str:
        """One line for logs and ``check``."""
        if self.rule == AREA_ELLIPSOIDAL_ROWS:
            return "pixel areas: exact ellipsoidal row areas (lon/lat grid)"
        if self.rule == AREA_NOMINAL:
            return (f"pixel areas: nominal {self.nominal_m2:,.6g} m² (measured within {100 * EQUAL_AREA_TOLERANCE:g} % of ground area "
                    f"everywhere; largest difference {100 * self.largest_difference:+.2g} %)")
        where = "varies by row" if self.rule == AREA_TRUE_ROWS else "varies by row and column"
        return (
            f"pixel areas: true ground areas on the ellipsoid ({where}); nominal {self.nominal_m2:,.6g} m² would be off by up to "
            f"{100 * self.largest_difference:+.3g} %"
        )

    @classmethod
    def measure(cls, grid: Grid) -> AreaModel:
        """Measure a grid's areas: exact areas at a lattice of pixels, refined until cubic
        interpolation between its nodes is within :data:`INTERPOLATION_TOLERANCE` at every cell's
        midpoints (where the interpolation error of a smooth function is largest). The interpolation is
        cubic (Lagrange through the 4 nearest nodes each way; :mod:`carbonscape.kernels.area`)."""
        n_rows, n_cols = grid.shape
        if grid.is_geographic:
            rows = np.arange(n_rows, dtype=np.int64)
            areas = grid.row_areas_m2()
            return cls(AREA_ELLIPSOIDAL_ROWS, None, rows, np.zeros(1, np.int64), areas[:, None], 0.0, 0.0)
        from carbonscape.kernels.area import lattice_areas_numpy

        nominal = grid.pixel_area_m2

        def exact(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
            rr, cc = np.meshgrid(rows, cols, indexing="ij")
            rr, cc = rr.ravel(), cc.ravel()
            # In batches: each pixel's outline is ~100 points through pyproj, so a lattice of 10^5
            # pixels at once held ~300 MiB of coordinates (memory must stay flat as grids grow).
            out = np.empty(rr.size, dtype=np.float64)
            for start in range(0, rr.size, _BATCH_PIXELS):
                stop = start + _BATCH_PIXELS
                out[start:stop] = grid.exact_pixel_areas_m2(rr[start:stop], cc[start:stop])
            return out.reshape(len(rows), len(cols))

        step = min(_START_STEP, max(1, (max(n_rows, n_cols) - 1) // 8))
        while True:
            node_rows, node_cols = _nodes(n_rows, step), _nodes(n_cols, step)
            lattice = exact(node_rows, node_cols)
            mid_rows, mid_cols = _midpoints(node_rows), _midpoints(node_cols)
            error = 0.0
            samples = [lattice]
            for rows, cols in ((mid_rows, node_cols), (node_rows, mid_cols), (mid_rows, mid_cols)):
                if len(rows) and len(cols):
                    true = exact(rows, cols)
                    samples.append(true)
                    error = max(error, float(np.max(np.abs(lattice_areas_numpy(lattice, node_rows, node_cols, rows, cols) / true - 1.0))))
            if error <= INTERPOLATION_TOLERANCE or step == 1 or lattice.size > _MAX_NODES:
                break
            # Clearly equal-area already (every sample within half the tolerance, and the pixels
            # between samples follow them to 1e-6): nominal areas will be used and the lattice
            # never read, so refining it further would only cost time (seconds at 10^9 pixels).
            seen = np.concatenate([sample.ravel() for sample in samples])
            if error <= _NOMINAL_EARLY_ERROR and np.max(np.abs(nominal / seen - 1.0)) <= EQUAL_AREA_TOLERANCE / 2:
                break
            step = max(1, step // 2)
        every = np.concatenate([s.ravel() for s in samples])
        ratios = nominal / every - 1.0
        largest = float(ratios[np.argmax(np.abs(ratios))])
        if abs(largest) <= EQUAL_AREA_TOLERANCE:
            rule = AREA_NOMINAL
        elif np.max(np.abs(lattice / lattice[:, :1] - 1.0)) <= INTERPOLATION_TOLERANCE:
            rule = AREA_TRUE_ROWS
            lattice, node_cols = lattice[:, :1].copy(), node_cols[:1]
        else:
            rule = AREA_TRUE_PIXELS
        return cls(rule, nominal, node_rows, node_cols, lattice, largest, error)
