"""How much of each county the land-use raster sees: covered, nodata and outside-the-raster shares.

A county's supply is a sum over the pixels assigned to it, so it is only as complete as the
raster's cover of the county. Per county, against its polygon's geodesic area ``A``:

- ``covered_share``: true area of its pixels holding a land-use class / ``A``;
- ``nodata_share``: true area of its nodata pixels / ``A``;
- ``outside_share``: geodesic area of its part beyond the raster's extent / ``A``.

With exact partial pixels (``coverage = "fraction"``) these are the true areas of the county's
pixel parts, and the three add up to 1 (to the digits of the areas). Under the pixel-centre rule
(``"centre"``, the default) the county's pixels cover its polygon only roughly: their area is off
by the county's centre-rule error (−13 % to +8 % for the real Central Yunnan counties under 0.05°
MODIS pixels), which says nothing about the raster's cover. There the part inside the raster,
``1 - outside_share``, is split between covered and nodata as the county's pixels split (their
true areas), so the shares still add up to 1 and a coarse county is not taken for a poorly
covered one; the centre-rule error itself is what :func:`warn_coarse` reports.
A county covered less than ``min_coverage`` is refused before anything is written; a study that
lowers the threshold gets that county's supply density over its covered area, flagged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from carbonscape.errors import InputError

log = logging.getLogger(__name__)

# How pixels are given to counties: the one list (zones, the study's [counties] coverage, the CLI).
# "centre": a pixel belongs wholly to the county holding its centre (ArcGIS, InVEST, GDAL's
# rasterize); "fraction": a boundary pixel is shared by the exact covered fraction (exactextract).
COVERAGE_MODES = ("centre", "fraction")


# The default threshold (a share of the county's area its pixels leave uncovered through the raster's
# extent or nodata) does not trip on boundary pixels: in fraction mode they are exact, and in centre
# mode the shares leave the centre rule's error out (see the module's docstring; the real 49 Central
# Yunnan counties under 0.05° MODIS pixels, 12 to 218 pixels each, have centre-rule areas −13 % to
# +9 % off their polygons, which would trip any threshold on the raw pixel areas). A county 10 % outside
# the raster or under nodata is refused: its supply would be 10 % short (a raster clipped to another
# boundary, a tile left out); a study can accept it, flagged, with a lower value.
DEFAULT_MIN_COVERAGE = 0.9
# Below these, centre-rule totals of a county are too coarse to trust; fraction mode is suggested.
COARSE_PIXELS = 100
COARSE_AREA_ERROR = 0.02
M2_PER_KM2 = 1e6


class CoverageError(InputError):
    """Counties the land-use raster covers less than ``min_coverage`` of."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def check_min_coverage(value: Any, *, where: str = "min_coverage") -> float:
    """``value`` as a share in [0, 1], or :class:`InputError` naming it."""
    try:
        share = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where} must be a number between 0 and 1 (e.g. {DEFAULT_MIN_COVERAGE}), not {value!r}") from None
    if not 0.0 <= share <= 1.0 or not np.isfinite(share):
        raise InputError(f"{where} must be between 0 and 1 (a share of each county's area, e.g. {DEFAULT_MIN_COVERAGE}), not {value!r}")
    return share


def coverage_table(
    areas_m2: np.ndarray,
    counts: np.ndarray | None,
    *,
    ids: Sequence[int],
    values: Sequence[Any],
    area_km2: Sequence[float],
    outside_km2: Sequence[float],
    n_classes: int,
    nodata_col: int,
    centre: bool = False,
) -> pd.DataFrame:
    """Coverage of every county from the (county, column) true-area table of the supply pass.

    Parameters
    ----------
    areas_m2
        ``(n_counties, n_classes + 2)`` true areas (m²): classes, nodata, unknown codes.
    counts
        The matching pixel counts (pixels whose centre is in the county), or None.
    ids, values
        County ids (rows of the tables) and names, in table order.
    area_km2, outside_km2
        Each polygon's geodesic area and its geodesic area beyond the raster (km²), in ``ids`` order.
    n_classes, nodata_col
        Class columns come first; ``nodata_col`` is the nodata column.
    centre
        Pixel-centre zones: covered and nodata shares are the county's inside share split as its
        pixels' areas split (see the module's docstring); a county that holds no pixel centre is
        covered 0. Otherwise (fraction mode) they are its pixel areas over its polygon's.

    Returns
    -------
    pandas.DataFrame
        ``county, polygon_area_km2, covered_km2, covered_share, nodata_share, outside_share``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    polygon = np.asarray(area_km2, dtype=np.float64)
    covered = areas_m2[ids, :n_classes].sum(axis=1) / M2_PER_KM2
    nodata = areas_m2[ids, nodata_col] / M2_PER_KM2
    with np.errstate(divide="ignore", invalid="ignore"):
        outside_share = np.where(polygon > 0, np.asarray(outside_km2, dtype=np.float64) / polygon, 1.0)
        if centre:
            pixels = covered + nodata
            inside = np.clip(1.0 - outside_share, 0.0, 1.0)
            covered_share = np.where(pixels > 0, inside * covered / pixels, 0.0)
            nodata_share = np.where(pixels > 0, inside * nodata / pixels, 0.0)
        else:
            covered_share = np.where(polygon > 0, covered / polygon, 0.0)
            nodata_share = np.where(polygon > 0, nodata / polygon, 0.0)
        frame = pd.DataFrame({
            "county": list(values),
            "polygon_area_km2": polygon,
            "covered_km2": covered,
            "covered_share": covered_share,
            "nodata_share": nodata_share,
            "outside_share": outside_share,
        })
    if counts is not None:
        frame["pixels_all"] = counts[ids].sum(axis=1)
        frame["pixel_area_all_km2"] = areas_m2[ids].sum(axis=1) / M2_PER_KM2
    return frame


def describe(row: Any) -> str:
    """``C: covered 40.0 % (nodata 0.0 %, outside the raster 60.0 %) of its 200 km²``; a nodata
    share not yet known (NaN: `check` reads no pixels) makes it ``covered at most 40.0 %``."""
    if np.isnan(row.nodata_share):
        return (f"{row.county}: covered at most {100 * row.covered_share:.1f} % (outside the raster {100 * row.outside_share:.1f} %) "
                f"of its {row.polygon_area_km2:,.4g} km²")
    return (
        f"{row.county}: covered {100 * row.covered_share:.1f} % (nodata {100 * row.nodata_share:.1f} %, outside the raster "
        f"{100 * row.outside_share:.1f} %) of its {row.polygon_area_km2:,.4g} km²"
    )


def low_coverage(coverage: pd.DataFrame, min_coverage: float) -> pd.DataFrame:
    """The counties covered less than ``min_coverage``."""
    return coverage[coverage["covered_share"] < min_coverage - 1e-9]  # 9 of 10 pixels is 0.9, not 0.8999999999


def coverage_problems(coverage: pd.DataFrame, *, min_coverage: float, mode: str = "centre") -> list[str]:
    """One message naming every county below ``min_coverage`` with its shares and the fixes, and
    one naming every county the raster covers nothing of, whatever ``min_coverage`` is (even 0:
    a county with no land-use data has no supply density, and would get an infinite ratio)."""
    empty = coverage[~(coverage["covered_share"] > 0)]
    problems = []
    if not empty.empty and min_coverage <= 1e-9:
        problems.append(_named_with_fixes(
            empty, f"{len(empty)} county(ies) hold no land-use data at all, so they have no supply density even with min_coverage {min_coverage:g}",
            ("extend the land-use raster over them", "fill their nodata pixels",
             "use `coverage = \"fraction\"` ([counties], or --coverage fraction) for counties smaller than a pixel"),
            "or remove them from the county file", mode=mode,
        ))
    low = low_coverage(coverage, min_coverage)
    if low.empty:
        return problems
    return problems + [_named_with_fixes(
        low, f"{len(low)} county(ies) are covered by the land-use raster less than min_coverage {min_coverage:g}",
        ("extend the land-use raster over them (its extent stops short of these counties)", "fill the nodata pixels",
         "use `coverage = \"fraction\"` ([counties], or --coverage fraction) for counties too small for the pixels"),
        f"or lower min_coverage ([counties] min_coverage, --min-coverage; now {min_coverage:g}) to accept supply densities "
        "over the covered area, flagged in the tables", mode=mode,
    )]


def _named_with_fixes(rows: pd.DataFrame, head: str, fixes: tuple[str, str, str], last: str, *, mode: str) -> str:
    """``head``, the counties of ``rows`` with their shares (the first 20), then the fixes that
    apply to them: ``fixes`` for counties reaching beyond the raster, holding nodata, and (centre
    mode) too small for the pixels, and always ``last``."""
    listed = "; ".join(describe(row) for row in rows.head(20).itertuples())
    more = f" and {len(rows) - 20} more" if len(rows) > 20 else ""
    outside, nodata, small = fixes
    wanted = []
    if (rows["outside_share"] > 0.01).any():
        wanted.append(outside)
    if (rows["nodata_share"] > 0.01).any():
        wanted.append(nodata)
    if mode == "centre" and ((rows["outside_share"] + rows["nodata_share"]) <= 0.01).any():
        wanted.append(small)
    wanted.append(last)
    return f"{head}: {listed}{more}. " + wanted[0].capitalize() + ("; " + "; ".join(wanted[1:]) if len(wanted) > 1 else "")


def coarse_counties(coverage: pd.DataFrame) -> pd.DataFrame:
    """Counties whose centre-rule totals are coarse: fewer than :data:`COARSE_PIXELS` pixels, or
    the area of their pixels more than :data:`COARSE_AREA_ERROR` off the polygon's area inside the
    raster."""
    if "pixels_all" not in coverage:
        return coverage.iloc[:0]
    inside = coverage["polygon_area_km2"] * (1.0 - coverage["outside_share"])
    with np.errstate(divide="ignore", invalid="ignore"):
        error = (coverage["pixel_area_all_km2"] / inside - 1.0).abs()
    coarse = (coverage["pixels_all"] < COARSE_PIXELS) | (error > COARSE_AREA_ERROR)
    return coverage[coarse & (inside > 0)]


def warn_coarse(coverage: pd.DataFrame) -> list[str]:
    """Log one warning naming the coarse counties (centre mode) and suggesting fraction mode."""
    coarse = coarse_counties(coverage)
    if coarse.empty:
        return []
    inside = coarse["polygon_area_km2"] * (1.0 - coarse["outside_share"])
    listed = ", ".join(
        f"{row.county} ({int(row.pixels_all):,} px, {100 * (row.pixel_area_all_km2 / a - 1):+.1f} %)"
        for row, a in zip(coarse.head(10).itertuples(), inside.head(10))
    )
    more = f" and {len(coarse) - 10} more" if len(coarse) > 10 else ""
    log.warning(
        "pixels are coarse against %d county(ies) (under %d pixels, or pixel-centre area more than %g %% off the polygon): %s%s; "
        "their totals carry that error. For exact partial pixels use coverage = \"fraction\" ([counties]) or `carbonscape zones ... --coverage fraction`",
        len(coarse), COARSE_PIXELS, 100 * COARSE_AREA_ERROR, listed, more,
    )
    return [str(v) for v in coarse["county"]]


# Beyond boundary-pixel noise: a county missing more than this share of its area (outside the
# raster or nodata) but accepted by min_coverage is named in a warning.
PARTIAL_SHARE = 0.01


def warn_partial(coverage: pd.DataFrame, *, min_coverage: float) -> list[str]:
    """Log one warning naming the counties missing more than :data:`PARTIAL_SHARE` of their area
    (outside the raster or nodata) yet accepted by ``min_coverage``: their densities are over the
    whole polygon, as if the missing part held no carbon (a user found one 4.5 % low, unnamed)."""
    missing = coverage["outside_share"] + coverage["nodata_share"]
    partial = coverage[(missing > PARTIAL_SHARE) & (coverage["covered_share"] >= min_coverage - 1e-9)]
    if partial.empty:
        return []
    listed = "; ".join(describe(row) for row in partial.head(10).itertuples())
    more = f" and {len(partial) - 10} more" if len(partial) > 10 else ""
    log.warning(
        "%d county(ies) miss more than %g %% of their area (outside the raster or nodata) but are above min_coverage %g: "
        "their supply densities are over the whole polygon, as if the missing part held no carbon: %s%s. Extend or fill the "
        "land-use raster, or raise min_coverage to refuse them",
        len(partial), 100 * PARTIAL_SHARE, min_coverage, listed, more,
    )
    return [str(v) for v in partial["county"]]


# `check` counts each county's nodata pixels (a read of the rasters and a burn of the counties:
# 10.5 s for 10^8 pixels and 3,000 counties on this 2-core machine under a load of 10) up to this
# many pixels; beyond, `run` reports them from its supply pass, still before writing anything.
NODATA_CHECK_MAX_PIXELS = 10**9


def nodata_pixels_by_county(path: Any, geoms: Any, *, window_pixels: int = 1 << 22) -> tuple[np.ndarray, np.ndarray]:
    """Pixels and nodata pixels of each polygon in a land-use GeoTIFF, by the pixel-centre rule
    (:func:`carbonscape.rasterize.burn_window`, as `zones` and `run` burn them), read window by window (whole blocks) so memory
    stays flat.

    Parameters
    ----------
    path
        The land-use GeoTIFF (local or remote).
    geoms
        Polygons (shapely, in the raster's CRS), one per county.
    window_pixels
        About how many pixels a window holds.

    Returns
    -------
    (pixels, nodata)
        int64 ``(n,)`` each, in the order of ``geoms``; a raster without a nodata value has none.
    """
    import rasterio
    import shapely
    from carbonscape import remote
    from carbonscape.rasterize import burn_window
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    pixels = np.zeros(n + 1, dtype=np.int64)
    nodata_pixels = np.zeros(n + 1, dtype=np.int64)
    tree = shapely.STRtree(geoms)
    with remote.gdal_env_for(path), rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(path) as src:
        nodata = src.nodata
        block_rows, block_cols = src.block_shapes[0]
        cols = src.width if block_cols >= src.width else min(src.width, max(block_cols, int(np.sqrt(window_pixels)) // block_cols * block_cols))
        rows = max(block_rows, window_pixels // max(cols, 1) // block_rows * block_rows)
        for row in range(0, src.height, rows):
            for col in range(0, src.width, cols):
                window = Window(col, row, min(cols, src.width - col), min(rows, src.height - row))
                left, bottom, right, top = rasterio.windows.bounds(window, src.transform)
                hits = tree.query(shapely.box(min(left, right), min(bottom, top), max(left, right), max(bottom, top)))
                if not len(hits):
                    continue
                shape = (int(window.height), int(window.width))
                hits = np.sort(hits)  # in county order, as the supply pass burns them
                ids = burn_window(geoms[hits], hits + 1, tuple(window_transform(window, src.transform))[:6], shape, dtype=np.uint32)
                pixels += np.bincount(ids.ravel(), minlength=n + 1)
                if nodata is not None:
                    block = src.read(1, window=window)
                    missing = np.isnan(block) if np.isnan(nodata) else block == nodata
                    nodata_pixels += np.bincount(ids[missing], minlength=n + 1)
    return pixels[1:], nodata_pixels[1:]
