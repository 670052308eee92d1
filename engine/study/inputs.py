"""A study's input files, read and checked before any compute: :func:`load_inputs`.

Reading and checking are one pass: what is read for the check (pools, polygons, the county
table) is what the pipeline then uses, and every problem is gathered, not just the first.
Messages name study keys (``[counties] id_field``), never command-line flags.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from carbonscape import remote
from carbonscape.carbon import PoolTable, block_codes, read_pools, unknown_codes_message
from carbonscape.demand import check_county_table
from carbonscape.errors import GridError, InputError
from carbonscape.grid import Grid
from carbonscape.io import LANDUSE_VARIABLE, source_fingerprint, store_is_current
from carbonscape.rasterize import read_polygons
from carbonscape.study.file import Study
from carbonscape.uncertainty import PoolSpreads

__all__ = ["Inputs", "RasterInfo", "check_report", "check_study", "describe", "load_inputs", "scan_codes"]

# How messages about a study's inputs name the settings that fix them.
STUDY_NAMES = {"id_field": "[counties] id_field", "layer": "[counties] layer", "encoding": "[counties] encoding"}


@dataclass(frozen=True)
class RasterInfo:
    """A land-use GeoTIFF's grid as its header says."""

    path: Path
    grid: Grid
    dtype: str
    nodata: float | None


@dataclass
class Inputs:
    """The inputs of a study as read for its check; None where a file could not be read."""

    pools: PoolTable | None = None
    polygons: gpd.GeoDataFrame | None = None
    table: pd.DataFrame | None = None
    code_counts: dict[int, int] | None = None
    rasters: list[RasterInfo] = field(default_factory=list)
    coverage: pd.Series | None = None  # share of each county's area inside the rasters' footprint
    pixels: pd.Series | None = None  # about how many pixels each county holds (its area over a pixel's)
    spreads: PoolSpreads | None = None  # the pools' density spreads, when the table gives them
    read_pixels: bool = False  # `check` reads the pixels (scan): counties' nodata shares are checked too


def load_inputs(study: Study, *, out: str | os.PathLike[str] | None = None, scan: bool = True) -> tuple[Inputs, list[str]]:
    """Read and check every input file of a study.

    Parameters
    ----------
    study
        From :func:`carbonscape.study.read_study` (settings that are None are not checked).
    out
        The output folder whose ``stores/landuse.zarr`` code counts may be reused.
    scan
        Scan the GeoTIFFs for their land-use codes when no up-to-date store has their counts
        (`run` passes False: its ingest counts the codes in its own pass).

    Returns
    -------
    (Inputs, list of str)
        What was read, and every problem, each naming the file, the values and the fix.
    """
    import rasterio

    problems: list[str] = []
    inputs = Inputs()
    rasters_ok = study.landuse is not None
    for raster in study.landuse or ():
        if not remote.is_url(raster) and not raster.is_file():
            problems.append(f"land use: {raster}: no such file")
            rasters_ok = False
            continue
        try:
            with remote.gdal_env_for(raster), rasterio.open(raster) as src:
                if src.crs is None:
                    problems.append(f"land use: {raster}: no CRS; assign one, e.g. `gdal_edit.py -a_srs EPSG:XXXX {raster}`")
                    rasters_ok = False
                if np.dtype(src.dtypes[0]).kind not in "iu":
                    problems.append(f"land use: {raster}: codes must be integers, not {src.dtypes[0]}; convert it, e.g. `gdal_translate -ot Int16`")
                    rasters_ok = False
                if src.crs is not None:
                    try:
                        grid = Grid.from_affine(crs=src.crs, transform=src.transform, shape=(src.height, src.width))
                        inputs.rasters.append(RasterInfo(path=raster, grid=grid, dtype=str(src.dtypes[0]), nodata=src.nodata))
                    except GridError as exc:
                        problems.append(f"land use: {raster}: {exc}")
                        rasters_ok = False
        except rasterio.errors.RasterioIOError as exc:
            problems.append(f"land use: {raster}: unreadable ({exc})")
            rasters_ok = False
    if study.pools is not None:
        try:
            inputs.pools = read_pools(study.pools)
        except InputError as exc:
            problems.append(f"pools: {exc}")
        problems.extend(_spreads_problems(study, inputs))
    inputs.read_pixels = scan
    if rasters_ok and inputs.pools is not None:
        counts = _store_codes(study, out=out)
        if counts is None and scan:
            counts = {}
            for raster in study.landuse or ():
                for code, count in scan_codes(raster).items():
                    counts[code] = counts.get(code, 0) + count
        inputs.code_counts = counts
        if counts is not None:
            problems.extend(_missing_codes(study, inputs.pools, counts))
    if study.setting("landuse", "maps"):
        from carbonscape.study.landuse_maps import check_maps, study_maps

        problems.extend(check_maps(study_maps(study), pools=inputs.pools, scan=scan))
    if study.counties is not None and study.id_field is not None:
        try:
            inputs.polygons = read_polygons(study.counties, id_field=study.id_field, layer=study.layer, encoding=study.encoding,
                                            names=STUDY_NAMES)
        except InputError as exc:
            problems.append(f"counties: {exc}")
    if study.demand.table is not None and study.demand.key is not None:
        demand = study.demand
        numeric = ([demand.population] if study.setting("continuous", "population") is None else []) + (
            [demand.emissions_column] if demand.emissions_column else [])
        inputs.table, table_problems = check_county_table(demand.table, key=demand.key, sheet=demand.sheet, numeric=numeric)
        problems.extend(f"demand: {problem}" for problem in table_problems)
        if inputs.table is not None and inputs.polygons is not None and study.id_field is not None:
            problems.extend(_key_mismatches(inputs.polygons[study.id_field], inputs.table.index, study))
    if rasters_ok and inputs.rasters and inputs.polygons is not None and study.id_field is not None:
        problems.extend(_coverage(study, inputs))
    problems.extend(_classes_problems(study, inputs))
    problems.extend(_statistics_problems(study, inputs))
    if study.setting("units", "grid") is not None:  # [units] grid: cells beside the counties
        from carbonscape.study.cells import cells_problems

        problems.extend(cells_problems(study, inputs.rasters[0].grid if inputs.rasters else None))
    from carbonscape.study.continuous import continuous_problems

    problems.extend(continuous_problems(study, inputs))
    return inputs, problems


def _coverage(study: Study, inputs: Inputs) -> list[str]:
    """Whether the rasters cover the counties: none covered, or counties wholly outside, are
    problems (run would give them no pixels); the share covered and the pixels of each county
    are kept for the summary."""
    import shapely

    polygons, grid = inputs.polygons, inputs.rasters[0].grid
    assert polygons is not None and study.id_field is not None
    keys = polygons[study.id_field].astype(str).to_numpy()
    footprint = shapely.union_all([shapely.box(*info.grid.bounds) for info in inputs.rasters])
    with warnings.catch_warnings():
        # Shares and pixel counts in the raster's own CRS, degrees included: both are ratios of
        # areas in that CRS, which is what "pixels inside" means (geopandas warns of degrees).
        warnings.simplefilter("ignore", UserWarning)
        try:
            projected = polygons.geometry.to_crs(grid.crs)
        except Exception as exc:  # noqa: BLE001 - pyproj's errors vary by version
            return [f"counties: {study.counties}: the polygons cannot be put in the raster's CRS {grid.crs.name!r} ({exc})"]
        if not np.all(np.isfinite(projected.total_bounds)):
            return [f"counties: {study.counties}: the polygons do not fit the raster's CRS {grid.crs.name!r}; check both files' declared CRS"]
        area = projected.area.to_numpy()
        inside = projected.intersection(footprint).area.to_numpy()
    share = np.divide(inside, area, out=np.zeros_like(area), where=area > 0)
    inputs.coverage = pd.Series(share, index=keys)
    xres, yres = grid.resolution
    inputs.pixels = pd.Series(inside / abs(xres * yres), index=keys)
    landuse = ", ".join(remote.name_of(p.path) for p in inputs.rasters)
    counties = remote.name_of(study.counties) if study.counties is not None else "the counties"
    if not (share > 1e-9).any():
        left, bottom, right, top = footprint.bounds
        return [
            f"land use: {landuse} covers none of the {len(keys)} counties of {counties} (raster bounds "
            f"{left:.6g}, {bottom:.6g}, {right:.6g}, {top:.6g} in {grid.crs.name!r}; counties' bounds "
            f"{', '.join(f'{v:.6g}' for v in projected.total_bounds)}); check that both cover the same region and that their CRSs are declared right"
        ]
    outside = [k for k, v in zip(keys, share) if v <= 1e-9]
    problems = []
    if outside:
        problems.append(
            f"land use: {landuse} does not reach {len(outside)} of the counties of {counties} ({', '.join(outside[:20])}): they would get "
            "no pixels; give a raster that covers them, or leave them out of the counties file"
        )
    problems.extend(_min_coverage(study, inputs, crossing=[i for i, v in enumerate(share) if 1e-9 < v < 1.0 - 1e-9], keys=keys))
    problems.extend(_nodata_coverage(study, inputs, projected=projected, keys=keys, share=share))
    problems.extend(_centreless(study, inputs, projected=projected, keys=keys, share=share))
    problems.extend(_overlaps(study, inputs, projected=projected))
    return problems


def _overlaps(study: Study, inputs: Inputs, *, projected: Any) -> list[str]:
    """Polygons that overlap where `run` would refuse them (the same test, in the raster's CRS)."""
    from carbonscape.errors import ZoneError
    from carbonscape.rasterize import _check_overlaps

    if len(inputs.rasters) != 1 or inputs.polygons is None or study.id_field is None:
        return []
    frame = inputs.polygons.set_geometry(projected.to_numpy(), crs=projected.crs)
    try:
        _check_overlaps(frame, id_field=study.id_field, grid=inputs.rasters[0].grid, path=remote.name_of(study.counties),
                        coverage=study.setting("counties", "coverage", "centre"))
    except ZoneError as exc:
        return [f"counties: {exc}"]
    return []


def _centreless(study: Study, inputs: Inputs, *, projected: Any, keys: np.ndarray, share: np.ndarray) -> list[str]:
    """Under the pixel-centre rule, counties (reached by the raster) that hold no pixel centre:
    `run` finds them covered 0 and refuses them, so `check` counts the centres of the small ones
    (:func:`carbonscape.rasterize._centres_inside`, GDAL's rule, over each county's bounds only)."""
    from carbonscape.coverage import COARSE_PIXELS, DEFAULT_MIN_COVERAGE, coverage_problems
    from carbonscape.rasterize import _centres_inside, geodesic_areas_km2

    minimum = study.setting("counties", "min_coverage", DEFAULT_MIN_COVERAGE)
    if study.setting("counties", "coverage", "centre") != "centre" or minimum is None or len(inputs.rasters) != 1 or inputs.pixels is None:
        return []
    grid = inputs.rasters[0].grid
    small = [i for i, (n, s) in enumerate(zip(inputs.pixels.to_numpy(), share)) if n < COARSE_PIXELS and s > 1e-9]
    empty = [i for i in small if _centres_inside(projected.iloc[i], grid) == 0]
    if not empty:
        return []
    frame = pd.DataFrame({
        "county": keys[empty], "polygon_area_km2": geodesic_areas_km2(inputs.polygons.iloc[empty]), "covered_share": 0.0,
        "nodata_share": 0.0, "outside_share": 1.0 - share[empty],
    })
    landuse = ", ".join(remote.name_of(p.path) for p in inputs.rasters)
    found = coverage_problems(frame, min_coverage=minimum, mode="centre")
    return [f"land use: {landuse}: no pixel centre falls in these counties (pixel-centre rule): " + problem for problem in found]


def _nodata_coverage(study: Study, inputs: Inputs, *, projected: Any, keys: np.ndarray, share: np.ndarray) -> list[str]:
    """Counties that the rasters' nodata pixels (with their part beyond the extent) leave covered
    less than ``[counties] min_coverage``: found by reading the pixels, when `check` reads them (it
    scans the codes; `run` does not: its supply pass reports them) and they are at most :data:`carbonscape.coverage.NODATA_CHECK_MAX_PIXELS`;
    the part inside the raster is split between covered and nodata as the county's pixels split
    (as `run` does in centre mode). Counties the extent alone leaves short are reported by
    :func:`_min_coverage` already."""
    from carbonscape.coverage import DEFAULT_MIN_COVERAGE, NODATA_CHECK_MAX_PIXELS, coverage_problems, nodata_pixels_by_county
    from carbonscape.rasterize import geodesic_areas_km2

    minimum = study.setting("counties", "min_coverage", DEFAULT_MIN_COVERAGE)
    total = sum(info.grid.shape[0] * info.grid.shape[1] for info in inputs.rasters)
    if minimum is None or not inputs.read_pixels or total > NODATA_CHECK_MAX_PIXELS:
        return []
    pixels = np.zeros(len(keys), dtype=np.int64)
    nodata = np.zeros(len(keys), dtype=np.int64)
    for info in inputs.rasters:
        found, missing = nodata_pixels_by_county(info.path, projected.to_crs(info.grid.crs).to_numpy())
        pixels += found
        nodata += missing
    inside = np.clip(share, 0.0, 1.0)
    nodata_share = inside * np.divide(nodata, pixels, out=np.zeros(len(keys)), where=pixels > 0)
    covered = inside - nodata_share
    # Below min_coverage through nodata, or (even with min_coverage 0) no land-use data at all.
    low = ((covered < minimum) & (inside >= minimum) | (covered <= 1e-12) & (inside > 0)) & (nodata > 0)
    if not low.any():
        return []
    assert inputs.polygons is not None
    rows = np.flatnonzero(low)
    frame = pd.DataFrame({
        "county": keys[rows], "polygon_area_km2": geodesic_areas_km2(inputs.polygons.iloc[rows].reset_index(drop=True)),
        "covered_share": inside[rows] - nodata_share[rows], "nodata_share": nodata_share[rows], "outside_share": 1.0 - inside[rows],
    })
    found = coverage_problems(frame, min_coverage=minimum, mode=study.setting("counties", "coverage", "centre"))
    landuse = ", ".join(remote.name_of(p.path) for p in inputs.rasters)
    return [f"land use: {landuse}: " + problem.replace("covered by the land-use raster", "covered by it") for problem in found]


def _min_coverage(study: Study, inputs: Inputs, *, crossing: list[int], keys: np.ndarray) -> list[str]:
    """Counties whose part beyond the rasters' extent leaves them covered less than
    ``[counties] min_coverage``, with their shares measured as `run` measures them (geodesic areas
    of each polygon and of its part beyond the raster, :func:`carbonscape.rasterize.outside_areas_km2`).
    Nodata shares need the pixels: `run` reports those before writing anything."""
    from carbonscape.coverage import DEFAULT_MIN_COVERAGE, coverage_problems
    from carbonscape.rasterize import county_areas_km2, geodesic_areas_km2

    polygons = inputs.polygons
    assert polygons is not None
    minimum = study.setting("counties", "min_coverage", DEFAULT_MIN_COVERAGE)
    if not crossing or minimum is None:
        return []
    part = polygons.iloc[crossing].reset_index(drop=True)
    if len(inputs.rasters) == 1:  # as zones measures them
        grid = inputs.rasters[0].grid
        area, outside = county_areas_km2(part, part.to_crs(grid.crs), grid)
    else:
        area = geodesic_areas_km2(part)  # tiles: the part beyond their union, in the rasters' CRS
        import shapely

        footprint = shapely.union_all([shapely.box(*info.grid.bounds) for info in inputs.rasters])
        projected = part.geometry.to_crs(inputs.rasters[0].grid.crs)
        beyond = (projected.area - projected.intersection(footprint).area).to_numpy()
        outside = area * np.divide(beyond, projected.area.to_numpy(), out=np.zeros(len(part)), where=projected.area.to_numpy() > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        outside_share = np.where(area > 0, outside / area, 1.0)
    frame = pd.DataFrame({
        "county": keys[crossing], "polygon_area_km2": area, "covered_share": 1.0 - outside_share,
        "nodata_share": np.nan, "outside_share": outside_share,  # nodata: known once run reads the pixels
    })
    mode = study.setting("counties", "coverage", "centre")
    found = coverage_problems(frame, min_coverage=minimum, mode=mode)
    landuse = ", ".join(p.path.name for p in inputs.rasters)
    return [f"land use: {landuse}: " + problem.replace("covered by the land-use raster", "covered by it") for problem in found]


def _classes_problems(study: Study, inputs: Inputs) -> list[str]:
    """k against the counties and against the distinct ratios they can have: counties with no
    demand (zero population or emissions) all have ratio 0, one value for the breaks."""
    zoning, polygons, table = study.zoning, inputs.polygons, inputs.table
    if polygons is None or zoning.k is None or zoning.method not in ("jenks", "quantile"):
        return []
    k, method = zoning.k, zoning.method
    name = remote.name_of(study.counties) if study.counties is not None else "the counties file"
    if k > len(polygons):
        return [f"[zoning] k = {k} {method} classes need at least {k} counties with distinct ratios, and {name} has "
                f"{len(polygons)}; use k <= {len(polygons)}"]
    column = study.demand.emissions_column or study.demand.population
    if table is None or column not in table.columns:
        return []
    values = pd.to_numeric(table[column], errors="coerce")
    if values.isna().any() or (values < 0).any():
        return []  # reported as a table problem already
    zero = list(values.index[values == 0].astype(str))
    distinct = int((values > 0).sum()) + (1 if zero else 0)
    if len(zero) > 1 and k > distinct:
        what = "emissions" if study.demand.emissions_column else "population"
        return [
            f"[zoning] k = {k} {method} classes need {k} distinct ratios, but {len(zero)} counties have no {what} "
            f"({', '.join(zero[:10])}{'...' if len(zero) > 10 else ''}: '{column}' is 0), so they share ratio 0 and at most "
            f"{distinct} distinct ratios remain; use k <= {distinct}"
        ]
    return []


def describe(study: Study, inputs: Inputs) -> list[str]:
    """What `check` checked, one line per input, for a study without problems."""
    lines = []
    polygons = inputs.polygons
    if polygons is not None and study.counties is not None:
        crs = polygons.crs
        lines.append(f"counties   {len(polygons)} in {remote.name_of(study.counties)} (id field {study.id_field!r}), CRS {crs.name if crs else '?'}; "
                     "demand uses their true areas on the ellipsoid")
    if inputs.rasters:
        grid = inputs.rasters[0].grid
        rows = sum(r.grid.shape[0] for r in inputs.rasters[:1])
        tiles = f"{len(inputs.rasters)} tiles, " if len(inputs.rasters) > 1 else ""
        xres, yres = grid.resolution
        epsg = grid.crs.to_epsg()
        crs = f"EPSG:{epsg}" if epsg else grid.crs.name
        if grid.is_geographic:
            rule = (f"geographic ({crs}): pixels {xres:.6g}° × {yres:.6g}°, each row's pixels get their true area on the "
                    f"{grid.crs.ellipsoid.name if grid.crs.ellipsoid else 'WGS 84'} ellipsoid")
        else:
            side_x, side_y = xres * grid.linear_unit_m, yres * grid.linear_unit_m
            rule = f"projected ({crs}): pixels {side_x:.6g} × {side_y:.6g} m"
            rule += f" = {side_x * side_y / 1e4:.6g} ha each" if grid.area_model.nominal else ""
        rule += f"; {grid.area_model.sentence()}"  # the area rule carbonscape applies, as the log says
        lines.append(f"land use   {tiles}{', '.join(remote.name_of(r.path) for r in inputs.rasters[:3])}: {grid.shape[0] if len(inputs.rasters) == 1 else rows}"
                     f" × {grid.shape[1]} pixels{' (first tile)' if tiles else ''}, {inputs.rasters[0].dtype}, nodata "
                     f"{_number(inputs.rasters[0].nodata)}; {rule}")
    if inputs.code_counts is not None and inputs.pools is not None:
        names = dict(zip(inputs.pools.codes, inputs.pools.names))
        shown = ", ".join(f"{code} {names.get(code, '?')} ({n:,} px)" for code, n in list(inputs.code_counts.items())[:12])
        more = f" and {len(inputs.code_counts) - 12} more" if len(inputs.code_counts) > 12 else ""
        lines.append(f"codes      {len(inputs.code_counts)} land-use codes, all in {remote.name_of(study.pools) if study.pools else 'the pools table'}: {shown}{more}")
    if inputs.pixels is not None and len(inputs.pixels):
        pixels = inputs.pixels
        smallest = pixels.idxmin()
        lines.append(f"pixels     per county about {pixels.min():,.0f} (fewest: {smallest}) to {pixels.max():,.0f}, median {pixels.median():,.0f}")
        mode = study.setting("counties", "coverage", "centre")
        rule = ("pixel centre (boundary pixels wholly in the county holding their centre)" if mode == "centre"
                else "fraction (boundary pixels shared by exact covered fraction)")
        lines.append(f"coverage   {rule}; counties covered less than min_coverage {study.setting('counties', 'min_coverage', 0.9):g} are refused")
        from carbonscape.coverage import COARSE_PIXELS

        few = pixels[pixels < COARSE_PIXELS]
        if mode == "centre" and len(few):
            lines.append(f"coarse     {len(few)} county(ies) hold fewer than {COARSE_PIXELS} pixels ({', '.join(few.sort_values().index[:10])}"
                         f"{'...' if len(few) > 10 else ''}): their pixel-centre totals are rough; consider [counties] coverage = \"fraction\"")
        if inputs.coverage is not None:
            partial = inputs.coverage[inputs.coverage < 0.99]
            if len(partial):
                lines.append("coverage   partly outside the land use: " + ", ".join(f"{k} ({100 * v:.1f}% covered)" for k, v in partial.head(10).items()))
    if inputs.table is not None and study.demand.table is not None:
        fmt = inputs.table.attrs.get("format", "")
        lines.append(f"demand     {len(inputs.table)} rows of {remote.name_of(study.demand.table)} ({fmt}); per capita "
                     f"{study.demand.per_capita():.6g} t CO2" if study.demand.per_capita() is not None else
                     f"demand     {len(inputs.table)} rows of {remote.name_of(study.demand.table)} ({fmt}); emissions from '{study.demand.emissions_column}'")
    from carbonscape.study.continuous import continuous_lines

    lines.extend(continuous_lines(study, inputs))
    from carbonscape.study.cells import cells_notes

    lines.extend(cells_notes(study, inputs.rasters[0].grid if inputs.rasters else None))
    zoning = study.zoning
    lines.append(f"zoning     {zoning.method}, k = {zoning.k}, scheme {zoning.scheme if isinstance(zoning.scheme, str) else 'custom'}; "
                 f"ratio units {study.ratio_units}")
    return lines


def _spreads_problems(study: Study, inputs: Inputs) -> list[str]:
    """Read the pools' spreads for ``[uncertainty]``; bad spreads, or none when asked for, are problems."""
    from carbonscape.uncertainty import read_spreads

    if inputs.pools is None or study.pools is None:
        return []
    enabled = study.setting("uncertainty", "enabled")
    if enabled is False:
        return []
    try:
        inputs.spreads = read_spreads(study.pools)
    except InputError as exc:
        return [f"pools: {exc}"]
    if inputs.spreads is None and enabled:
        return [f"[uncertainty] enabled = true, but the pools table {study.pools} gives no spreads: add c_above_sd, c_below_sd, "
                "c_soil_sd, c_dead_sd (or c_<pool>_min and c_<pool>_max) columns in t/ha, or set enabled = false"]
    if inputs.spreads is not None:
        missing = sorted(set(inputs.pools.codes) - set(inputs.spreads.codes))
        if missing:
            return [f"pools: {study.pools}: land-use code(s) {missing} have densities but no spreads"]
    return []


def _statistics_problems(study: Study, inputs: Inputs) -> list[str]:
    """Too few counties for spatial statistics that the study asks for."""
    from carbonscape.spatial import MIN_UNITS

    if study.setting("statistics", "enabled") is not True or inputs.polygons is None:
        return []
    if len(inputs.polygons) < MIN_UNITS:
        return [f"[statistics] enabled = true needs at least {MIN_UNITS} counties, and {study.counties} has {len(inputs.polygons)}; "
                "set [statistics] enabled = false (or leave it out: statistics then run only when there are enough counties)"]
    return []


def _key_mismatches(polygon_keys: pd.Series, table_keys: pd.Index, study: Study) -> list[str]:
    polygons = {str(v) for v in polygon_keys}
    table = {str(v) for v in table_keys}
    counties = remote.name_of(study.counties) if study.counties is not None else "the counties file"
    demand = study.demand.table
    assert demand is not None
    problems = []
    if table - polygons:
        problems.append(
            f"demand: {demand}: {len(table - polygons)} county(ies) have no polygon in {counties}: "
            f"{sorted(table - polygons)[:20]}; make the keys match (same spelling in both files)"
        )
    if polygons - table:
        problems.append(
            f"demand: {len(polygons - table)} polygon(s) of {counties} have no row in {remote.name_of(demand)}: "
            f"{sorted(polygons - table)[:20]}; add their rows"
        )
    return problems


def _missing_codes(study: Study, pools: PoolTable, counts: dict[int, int]) -> list[str]:
    """Land-use codes (not nodata) that the pools table lacks, with their pixel counts."""
    listed = set(pools.codes)
    missing = {code: n for code, n in counts.items() if code not in listed}
    if not missing:
        return []
    return ["land use: " + unknown_codes_message(", ".join(remote.name_of(p) for p in study.landuse or ()), pools, missing)]


def _store_codes(study: Study, *, out: str | os.PathLike[str] | None) -> dict[int, int] | None:
    """The code counts an up-to-date ingested store keeps (nodata left out), or None."""
    import zarr

    if study.landuse is None:
        return None
    store = remote.join(study.stores_dir(out), "landuse.zarr")
    # The same fingerprint ingest writes, so "up to date" means what `run` would reuse.
    fingerprint = source_fingerprint([os.fspath(p) for p in study.landuse], study.chunk)
    if not store_is_current(store, fingerprint, "carbonscape_source"):
        return None
    try:
        group = zarr.open_group(str(store), mode="r")
        counts = group.attrs.get("code_counts")
        nodata = group[LANDUSE_VARIABLE].attrs.get("nodata")
    except Exception:  # an unreadable store is not the user's input: scan the TIFFs instead
        return None
    if counts is None:
        return None
    return {int(code): int(n) for code, n in counts.items() if nodata is None or int(code) != nodata}


# About 4 Mpx per window: a few MiB of codes (and bincount's int64 copy) whatever the raster size.
SCAN_PIXELS = 1 << 22


def scan_codes(path: str | os.PathLike[str], *, window_pixels: int | None = None) -> dict[int, int]:
    """Pixel count of every land-use code in a GeoTIFF's first band, nodata left out.

    Reads window by window (whole blocks, about :data:`SCAN_PIXELS` each), so memory stays flat
    whatever the raster's size; a 10^8-pixel uint8 raster takes well under a second.

    Parameters
    ----------
    path
        An integer GeoTIFF.
    window_pixels
        Pixels per window (default :data:`SCAN_PIXELS`).

    Returns
    -------
    dict
        ``{code: pixels}``, sorted by code.
    """
    import rasterio
    from rasterio.windows import Window

    target = SCAN_PIXELS if window_pixels is None else window_pixels
    found: dict[int, int] = {}
    # Each block is read once: a small GDAL block cache keeps memory flat (the default is 5% of RAM).
    with remote.gdal_env_for(path), rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(path) as src:
        dtype = np.dtype(src.dtypes[0])
        if dtype.kind not in "iu":
            raise InputError(f"{path}: land-use codes must be integers, not {dtype}")
        nodata = src.nodata
        block_rows, block_cols = src.block_shapes[0]
        # Whole blocks per window: striped files are read in full-width bands, tiled ones in squares.
        cols = src.width if block_cols >= src.width else min(src.width, max(block_cols, int(np.sqrt(target)) // block_cols * block_cols))
        rows = max(block_rows, target // max(cols, 1) // block_rows * block_rows)
        small = dtype.kind == "u" and dtype.itemsize <= 2
        totals = np.zeros(1 << (8 * dtype.itemsize), dtype=np.int64) if small else None
        for row in range(0, src.height, rows):
            for col in range(0, src.width, cols):
                block = src.read(1, window=Window(col, row, min(cols, src.width - col), min(rows, src.height - row)))
                if totals is not None:
                    totals += np.bincount(block.ravel(), minlength=totals.size)
                    continue
                values, counts = block_codes(block, None)
                for code, count in zip(values.tolist(), counts.tolist()):
                    found[code] = found.get(code, 0) + count
        if totals is not None:
            present = np.flatnonzero(totals)
            found = dict(zip(present.tolist(), totals[present].tolist()))
    if nodata is not None and np.isfinite(nodata) and float(nodata).is_integer():
        found.pop(int(nodata), None)
    return dict(sorted(found.items()))


def input_paths(study: Study) -> list[tuple[str, Path]]:
    """Every input file of a complete study with its role (for provenance)."""
    from carbonscape.study.continuous import continuous_paths

    assert study.landuse is not None and study.counties is not None and study.pools is not None
    more: list[tuple[str, Path]] = []
    if study.setting("landuse", "maps"):
        from carbonscape.study.landuse_maps import study_maps

        for m in study_maps(study):
            more += [(f"landuse {m.label}", p) for p in m.rasters if p not in study.landuse]
            more += [(f"pools {m.label}", m.pools)] if m.pools is not None else []
    return [*(("landuse", p) for p in study.landuse), *more, ("counties", study.counties), ("pools", study.pools),
            *([("demand", study.demand.table)] if study.demand.table is not None else []), *continuous_paths(study), ("study", study.path)]


def _settings_problems(study: Study) -> list[str]:
    """The cross-setting rules and allowed values, for a :class:`Study` built in Python rather
    than read from a file (a file's are checked as it is read)."""
    from carbonscape.study.settings import RULES, SETTINGS, _convert

    zoning = study.zoning
    values: dict[str, dict[str, object]] = {
        "zoning": {k: v for k, v in (("method", zoning.method), ("k", zoning.k), ("breaks", zoning.breaks), ("scheme", zoning.scheme)) if v is not None},
        "ratio": {"units": study.ratio_units},
    }
    problems = []
    for setting in SETTINGS:
        value = values.get(setting.section, {}).get(setting.key)
        if value is not None and setting.kind in ("choice", "choice_or_table", "int"):
            converted, problem = _convert(setting, list(value) if isinstance(value, tuple) else value, folder=study.folder)
            if problem:
                problems.append(problem)
            else:
                values[setting.section][setting.key] = converted
    for rule in RULES:
        if rule.section in values:
            problems.extend(rule.check(values[rule.section], frozenset(values[rule.section])))
    return problems


def check_report(study: Study | str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None) -> tuple[list[str], list[str]]:
    """Every problem of a study (as :func:`check_study`), and when there is none, what was
    checked (:func:`describe`): counties, CRS and area rule, grid and pixel size, land-use codes
    with their pixel counts, pixels per county."""
    problems, parsed, inputs = checked_inputs(study, out=out)
    if problems or parsed is None:
        return problems, []
    return problems, describe(parsed, inputs)


def check_study(study: Study | str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None) -> list[str]:
    """Validate every setting and input of a study without computing; return all problems.

    Settings problems and input-file problems are gathered together: a bad setting does not stop
    the files that can still be checked. Land-use codes are compared with the pools table from the
    code counts of an up-to-date ingested store in the output folder, else from a window-by-window
    scan of the GeoTIFFs (memory stays flat; no store is written).

    Parameters
    ----------
    study
        A :class:`Study` or the path of its TOML file.
    out
        The output folder whose ``stores/landuse.zarr`` may be reused (default: the study's).

    Returns
    -------
    list of str
        Every problem, each naming the file or setting, the values at fault and the fix; empty
        when the study is ready to run.
    """
    return checked_inputs(study, out=out)[0]


def checked_inputs(
    study: Study | str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None, scan: bool = True, folder: bool = True
) -> tuple[list[str], Study | None, Inputs]:
    """Every problem of a study's settings and inputs (and, with ``folder``, of its results
    folder, which `run` would refuse), the study, and its inputs as read."""
    from carbonscape.study.file import read_study

    if isinstance(study, Study):
        parsed: Study | None = study
        problems = _settings_problems(study)
    else:
        parsed, problems = read_study(study)
    if parsed is None:
        return problems, None, Inputs()
    inputs, more = load_inputs(parsed, out=out, scan=scan)
    more.extend(_cluster_problems(parsed))
    if folder and parsed.landuse is not None and parsed.counties is not None and parsed.pools is not None and (
            parsed.demand.table is not None or parsed.setting("continuous", "population") is not None):
        from carbonscape.study.outputs import folder_problem

        where = folder_problem(parsed.output_dir(out), owner={"kind": "study", "study": str(parsed.path)},
                               inputs=[p for _, p in input_paths(parsed)])
        if where:
            more.append(f"results: {where}")
    return problems + more, parsed, inputs


def _cluster_problems(study: Study) -> list[str]:
    """A ``[cluster]`` job queue whose worker jobs lack settings `run` needs (cores, memory) or, on
    SLURM, that the controller refuses (``sbatch --test-only``: a wrong partition, account, memory
    or walltime), found before anything is submitted."""
    import logging

    from carbonscape.cluster import JobQueue, scheduler_from_settings, test_submission
    from carbonscape.errors import ClusterError

    try:
        queue = scheduler_from_settings(None, study.values.get("cluster", {}) or {})
        if isinstance(queue, JobQueue):
            # SLURM: `sbatch --test-only` of the worker job `run` would submit. A controller that
            # cannot be reached is not the study's fault (a study may be checked away from its
            # cluster): a warning, not a problem; `run` stops on it (exit 1).
            try:
                test_submission(queue)
            except ClusterError as exc:
                logging.getLogger(__name__).warning("cluster: the worker job was not tested: %s", exc)
    except InputError as exc:
        return [f"cluster: {exc}"]
    return []


def _number(value: float | None) -> str:
    if value is None:
        return "none"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
