"""Carbon supply (InVEST's carbon storage): pools table, per-county/per-class tables, pixel maps.

Every supply total is a pixel area times a density, so the tables come from one pass of the
accumulation layer (:mod:`carbonscape.accumulate`): (county, class) pixel counts, and true areas
where pixels differ in area; per-pool rasters are never needed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
from carbonscape import remote
from carbonscape.accumulate.library import COUNTS_AREAS, SPAN_COUNTS, SPAN_COUNTS_AREAS
from carbonscape.accumulate import AREAS, CODE_HISTOGRAM, COUNTS, Accumulation, ClassIndex, Layout, accumulate, finalize, lookup, pixel_areas
from carbonscape.cluster import Executor, using
from carbonscape.errors import AlignmentError, InputError, PoolTableError
from carbonscape.io import RasterStore, atomic_path, open_store, raster_dataset, staged_outputs, write_store
from carbonscape.rasterize import COUNTY_RINGS, open_zones
from carbonscape.tables import read_table

log = logging.getLogger(__name__)

POOLS = ("above", "below", "soil", "dead")
POOL_COLUMNS = tuple(f"c_{p}" for p in POOLS)
M2_PER_HA = 10_000.0
M2_PER_KM2 = 1_000_000.0
PIXEL_MAP_FILES = {"carbon_zarr": "carbon_t_per_ha.zarr", "carbon_cog": "carbon_t_per_ha.tif", "carbon_overview": "carbon_overview.tif"}


@dataclass(frozen=True)
class PoolTable:
    """Carbon densities (t/ha) of the four pools per land-use code, in InVEST's table format."""

    table: pd.DataFrame  # index lucode; columns c_above, c_below, c_soil, c_dead, name
    source: str = "<table>"

    @property
    def codes(self) -> list[int]:
        return [int(c) for c in self.table.index]

    @property
    def total_density(self) -> np.ndarray:
        """t/ha of all four pools per class, in the order of :attr:`codes`."""
        return self.table[list(POOL_COLUMNS)].sum(axis=1).to_numpy(dtype=np.float64)

    @property
    def names(self) -> list[str]:
        return [str(n) for n in self.table["name"]]


def read_pools(path: str | os.PathLike[str] | pd.DataFrame) -> PoolTable:
    """Read and check an InVEST carbon pools table.

    Columns (case-insensitive, as InVEST reads them): ``lucode, c_above, c_below, c_soil, c_dead``
    in t/ha, optionally ``LULC_name``. CSV in any common separator, decimal mark and encoding, or
    an Excel sheet (the first); the header may sit below title rows
    (:func:`carbonscape.tables.read_table`). Raises :class:`PoolTableError` naming the rows at fault.
    """
    if isinstance(path, pd.DataFrame):
        raw, source = path.copy(), "<table>"
    else:
        source = os.fspath(path)
        if not remote.is_url(source) and not os.path.exists(source):
            raise PoolTableError(f"{source}: no such file")
        try:
            # Any separator, decimal mark, encoding, CSV or Excel, header below title rows (as InVEST
            # lets pandas sniff the separator, natcap/invest#1296).
            raw, _ = read_table(source, columns=["lucode"], text_columns=["lulc_name", "name", "lulc_desc", "name_zh", "name_en"],
                                case_insensitive=True)
        except InputError as exc:
            message = str(exc)
            if message.endswith("the file is empty"):
                message += "; a pools table has a header lucode, c_above, c_below, c_soil, c_dead and one row per class"
            raise PoolTableError(message) from None
    raw.columns = [str(c).strip().lower() for c in raw.columns]
    missing = [c for c in ("lucode", *POOL_COLUMNS) if c not in raw.columns]
    if missing:
        raise PoolTableError(
            f"{source}: missing column(s) {missing}; a pools table has lucode, c_above, c_below, c_soil, "
            f"c_dead (t/ha) and optionally LULC_name — found {list(raw.columns)}"
        )
    raw = raw.dropna(how="all")
    codes = pd.to_numeric(raw["lucode"], errors="coerce")
    bad = raw.loc[codes.isna() | (codes != codes.round()), "lucode"]
    if not bad.empty:
        raise PoolTableError(f"{source}: lucode must be an integer; bad value(s) {bad.tolist()[:10]}")
    raw["lucode"] = codes.astype(np.int64)
    duplicated = raw.loc[raw["lucode"].duplicated(keep=False), "lucode"]
    if not duplicated.empty:
        raise PoolTableError(f"{source}: lucode {sorted(set(duplicated.tolist()))} appears more than once; keep one row per class")
    problems = []
    for column in POOL_COLUMNS:
        values = pd.to_numeric(raw[column], errors="coerce")
        for code, value, parsed in zip(raw["lucode"], raw[column], values):
            if pd.isna(parsed) or not np.isfinite(parsed):
                shown = "empty" if pd.isna(value) else repr(value.item() if isinstance(value, np.generic) else value)
                problems.append(f"lucode {code}: {column} = {shown} is not a number")
            elif parsed < 0:
                problems.append(f"lucode {code}: {column} = {float(parsed):g} is negative")
        raw[column] = values
    if problems:
        raise PoolTableError(f"{source}: densities must be non-negative numbers (t/ha): " + "; ".join(problems[:10]))
    name_column = next((c for c in ("lulc_name", "name", "lulc_desc") if c in raw.columns), None)
    names = raw[name_column].astype(str) if name_column else raw["lucode"].map(lambda c: f"class {c}")
    table = pd.DataFrame({c: raw[c].to_numpy(dtype=np.float64) for c in POOL_COLUMNS}, index=pd.Index(raw["lucode"], name="lucode"))
    table["name"] = names.to_numpy()
    for extra in raw.columns:
        if extra.startswith("lulc_name_") or extra in ("name_zh", "name_en"):
            table[extra] = raw[extra].to_numpy()
    return PoolTable(table=table.sort_index(), source=source)


@dataclass
class SupplyResult:
    """The supply tables of one run, and what the pass counted."""

    by_county: pd.DataFrame
    by_class: pd.DataFrame
    by_county_class: pd.DataFrame
    by_pool: pd.DataFrame
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    # The pass's tables by name when other statistics rode in it (``supply(extra=...)``): theirs,
    # and "counts" and "areas" (m²) per (county, class column).
    tables: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def total_t(self) -> float:
        return float(self.by_county["supply_t"].sum())

    def write(self, out: str | os.PathLike[str]) -> dict[str, Path]:
        """Write the four CSV tables and ``supply_summary.json`` (pixel counts, nodata pixels per
        county, grid) to ``out``, each atomically, and return their paths."""
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        tables = {
            "supply_by_county": self.by_county,
            "supply_by_class": self.by_class,
            "supply_by_county_class": self.by_county_class,
            "supply_by_pool": self.by_pool,
        }
        for name, table in tables.items():
            target = out_dir / f"{name}.csv"
            with atomic_path(target) as tmp:
                table.to_csv(tmp, index=False, encoding="utf-8", float_format="%.10g")
            self.files[name] = target
        target = out_dir / "supply_summary.json"
        with atomic_path(target) as tmp:
            tmp.write_text(json.dumps(self.summary, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
        self.files["supply_summary"] = target
        return dict(self.files)


class UnknownCodesError(PoolTableError):
    """The land-use raster holds codes that the pools table does not list."""


def unknown_codes_message(where: str | Path, pools: PoolTable, codes: Mapping[int, int]) -> str:
    """The one message for land-use codes (with their pixel counts) that the pools table lacks,
    from the supply pass and from ``carbonscape check`` alike."""
    shown = sorted(codes)[:20]
    listed = ", ".join(f"{code} ({codes[code]:,} pixels)" for code in shown)
    if len(codes) > 20:
        listed += f" and {len(codes) - 20} more code(s)"
    return (
        f"{where}: land-use code(s) missing from the pools table {pools.source}: {listed}; add rows for codes "
        f"{shown} to {Path(pools.source).name} (zeros if the class stores no carbon)"
        + (f", or, if {shown[0]} marks pixels with no data (a fill value), declare it the GeoTIFF's nodata value "
           f"(`gdal_edit.py -a_nodata {shown[0]} landuse.tif`) and ingest again" if len(codes) == 1 else
           "; codes that mark pixels with no data must be recoded to the GeoTIFF's nodata value before ingesting")
    )


def _found_codes(store_attrs: Mapping[str, Any]) -> dict[int, int] | None:
    counts = store_attrs.get("code_counts")
    return None if counts is None else {int(k): int(v) for k, v in counts.items()}


def supply_tables(
    counts: np.ndarray,
    *,
    pools: PoolTable,
    zone_values: pd.Series,
    areas_m2: np.ndarray,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Turn (zone, column) counts and areas into the four supply tables.

    ``counts`` and ``areas_m2`` are ``(n_zones, n_classes + 2)`` (classes, nodata, unknown);
    row 0 (outside every polygon) is left out of every table.
    """
    n_classes = len(pools.codes)
    ids = zone_values.index.to_numpy()
    class_counts = counts[ids, :n_classes]
    class_area_ha = areas_m2[ids, :n_classes] / M2_PER_HA
    density = pools.total_density
    supply = class_area_ha * density[None, :]
    total = supply.sum()
    share = (lambda v: 100.0 * v / total if total > 0 else np.zeros_like(v))
    county = pd.Series(zone_values.to_numpy(), name="county")
    by_county = pd.DataFrame({
        "county": county,
        "supply_t": supply.sum(axis=1),
        "share_pct": share(supply.sum(axis=1)),
        "pixels": class_counts.sum(axis=1),
        "area_km2": class_area_ha.sum(axis=1) * M2_PER_HA / M2_PER_KM2,
    })
    by_class = pd.DataFrame({
        "lucode": pools.codes,
        "name": pools.names,
        "supply_t": supply.sum(axis=0),
        "share_pct": share(supply.sum(axis=0)),
        "pixels": class_counts.sum(axis=0),
        "area_ha": class_area_ha.sum(axis=0),
    })
    # Names in other languages from the pools table (LULC_name_zh → name_zh) follow the required columns.
    for extra in pools.table.columns:
        if extra.startswith("lulc_name_") or extra in ("name_zh", "name_en"):
            by_class["name_" + extra.removeprefix("lulc_name_").removeprefix("name_")] = pools.table[extra].to_numpy()
    zz, kk = np.meshgrid(np.arange(len(ids)), np.arange(n_classes), indexing="ij")
    by_county_class = pd.DataFrame({
        "county": county.to_numpy()[zz.ravel()],
        "lucode": np.asarray(pools.codes)[kk.ravel()],
        "pixels": class_counts.ravel(),
        "area_km2": class_area_ha.ravel() * M2_PER_HA / M2_PER_KM2,
        "supply_t": supply.ravel(),
    })
    # A class present only as parts of boundary pixels (fraction mode) has area but no pixel centre.
    by_county_class = by_county_class[(by_county_class["pixels"] > 0) | (by_county_class["area_km2"] > 0)].reset_index(drop=True)
    area_per_class = class_area_ha.sum(axis=0)
    by_pool = pd.DataFrame({
        "pool": list(POOLS),
        "supply_t": [float((area_per_class * pools.table[column].to_numpy()).sum()) for column in POOL_COLUMNS],
    })
    return by_county, by_class, by_county_class, by_pool


def supply(
    landuse: str | os.PathLike[str] | RasterStore,
    zones: str | os.PathLike[str] | RasterStore,
    pools: str | os.PathLike[str] | PoolTable,
    *,
    out: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    pixel_maps: bool = False,
    progress: bool = False,
    run: Executor | None = None,
    min_coverage: float | None = None,
    extra: Sequence[Accumulation] = (),
    rasters: Mapping[str, da.Array] | None = None,
    code_histogram: tuple[int, int] | None = None,
) -> SupplyResult:
    """Carbon supply per county, per class, per county and class, and per pool.

    Parameters
    ----------
    landuse
        Land-use store from :func:`carbonscape.ingest` (its path or the opened store), or the
        store :func:`carbonscape.io.ingesting` is writing in this very pass.
    zones
        Zone store from :func:`carbonscape.rasterize_zones`, made against ``landuse``, or the
        counties of :func:`carbonscape.rasterize.lazy_zones`, burned chunk by chunk in the same
        tasks that read the land use (no zone store written or read).
    pools
        InVEST carbon pools table (path or :class:`PoolTable`).
    out
        Directory for the CSV tables (and pixel maps); nothing is written when None.
    scheduler
        See :func:`carbonscape.cluster.executor`.
    pixel_maps
        Also write total carbon per pixel (t/ha) as ``carbon_t_per_ha.zarr`` and a COG
        ``carbon_t_per_ha.tif``, plus a small overview for maps.
    progress
        Show progress bars.
    min_coverage
        Refuse (:class:`~carbonscape.coverage.CoverageError`, before writing anything) when a
        county's covered share is below this (default
        :data:`~carbonscape.coverage.DEFAULT_MIN_COVERAGE`); counties below the default but
        allowed by a lower value are flagged ``low_coverage``.

    Returns
    -------
    SupplyResult
        Tables in tonnes of carbon; ``summary`` holds pixel counts, nodata, the area rule,
        coverage and timings. Areas are true ground areas whatever the grid's CRS
        (:attr:`carbonscape.grid.Grid.area_model`); in fraction mode (a county store made with
        ``coverage="fraction"``) boundary pixels are shared by covered fraction.
    extra, rasters
        More statistics to accumulate in the same pass (one read of each chunk), reading the
        county ids, the land use and ``rasters`` (aligned stores by name, e.g. a continuous raster
        of :mod:`carbonscape.continuous`); their tables are in ``result.tables`` by name.
    code_histogram
        ``(lo, n)``: also count every land-use code ``lo .. lo+n-1`` in the pass (the
        :data:`~carbonscape.accumulate.CODE_HISTOGRAM` ingest records), in
        ``result.tables["code_histogram"]``: what a store ingested by this pass records.
    """
    started = time.perf_counter()
    pool_table = pools if isinstance(pools, PoolTable) else read_pools(pools)
    land = landuse if isinstance(landuse, RasterStore) else open_store(landuse)
    if land.attrs.get("carbonscape_kind") not in (None, "landuse"):
        raise InputError(
            f"{land.path} is a {land.attrs['carbonscape_kind']} store, not land use; pass the store "
            "`carbonscape ingest` wrote as --landuse"
        )
    zone_store, zone_table = open_zones(zones)
    land.grid.check_same_grid(zone_store.grid, what=f"the zone store {zone_store.path}", reference=str(land.path))
    found = _found_codes(land.attrs)
    if found is not None:
        unknown = {code: n for code, n in found.items() if code not in pool_table.codes and code != land.nodata}
        if unknown:
            raise UnknownCodesError(unknown_codes_message(land.path, pool_table, unknown))
    try:
        index = ClassIndex.build(pool_table.codes, nodata=land.nodata)
    except InputError as exc:
        raise PoolTableError(f"{pool_table.source} with {land.path}: {exc}") from None
    n_zones = zone_table.n_zones
    zone_data = zone_store.data
    if zone_data.chunks != land.data.chunks:
        raise AlignmentError(
            f"{zone_store.path} is chunked {zone_store.grid.chunks}, {land.path} {land.grid.chunks}; "
            f"rebuild the zones with `carbonscape zones ... --like {land.path}`"
        )
    fraction = zone_store.attrs.get("coverage") == "fraction"
    # Fraction mode shares boundary pixels by the counties' rings clipped to each chunk: read from a
    # fraction-mode store, or (counties burned on the fly) clipped in the pass's task of the chunk.
    rings = zone_store.attrs.get(COUNTY_RINGS) if fraction else None
    if fraction and rings is None and "polygons" in zone_store.attrs:
        raise ValueError("fraction coverage needs the counties' rings: make the counties with lazy_zones(coverage='fraction') or rasterize_zones")
    params = {} if not fraction else {"boundary_rings": COUNTY_RINGS} if rings is not None else {"boundary": str(zone_store.path)}
    layout = Layout(n_counties=n_zones, classes=index, params=params, codes=code_histogram)
    areas = pixel_areas(land.grid)
    log.info("%s", land.grid.area_model.sentence())
    # Counts always; true areas where pixels differ in area or are shared by fraction (else
    # areas = counts × the one area).
    # Pixels of unequal areas: counts and areas in one fused pass (COUNTS_AREAS); equal areas:
    # counts, and in fraction mode counts and areas in one pass too (COUNTS_AREAS: areas from the
    # counts, the boundary pixels shared; not the counting kernel twice).
    specs = [COUNTS_AREAS] if areas.uniform_area_m2() is None or fraction else [COUNTS]
    if rings is not None:  # the rings read beside the ids and the land use, one block per chunk
        specs = [dataclasses.replace(COUNTS_AREAS, reads=(*COUNTS_AREAS.reads, COUNTY_RINGS))]
        rasters = {**(rasters or {}), COUNTY_RINGS: rings}
    if COUNTY_RINGS in zone_store.attrs:  # counties burned on the fly: counted along their spans, no id raster (kernels/spans.py)
        specs = [SPAN_COUNTS if specs[0] is COUNTS else SPAN_COUNTS_AREAS]
        rasters = {**(rasters or {}), COUNTY_RINGS: zone_store.attrs[COUNTY_RINGS]}
    if rings is not None:  # fraction mode from rings read in the pass: the extras counting by county read them too (continuous sums)
        extra = [dataclasses.replace(s, reads=(*s.reads, COUNTY_RINGS)) if "counties" in s.reads and COUNTY_RINGS not in s.reads else s
                 for s in extra]
    specs += list(extra)
    # The code histogram: in centre mode the (county, class) counts already hold every pixel of
    # every listed code and of nodata (rows summed), so it is read off them after the pass (the
    # histogram kernel cost as much as the counting, 34 vs 42 ms per 4096² chunk); only fraction
    # mode, whose counts share boundary pixels, counts it in the pass.
    histogram_in_pass = code_histogram is not None and fraction
    if histogram_in_pass:
        specs.append(CODE_HISTOGRAM)
    lazy = accumulate(specs, zone_data, {"landuse": land.data, **(rasters or {})}, layout=layout, areas=areas)

    # Every output goes to a staging folder first and moves into ``out`` only when all are written.
    staging = staged_outputs(out) if out is not None else contextlib.nullcontext(None)
    with using(run, scheduler) as active, staging as stage:
        computed = active.compute(*lazy.values(), progress=progress, label=f"supply: {land.grid.shape[0]}×{land.grid.shape[1]} pixels")
        tables = {name: np.asarray(table) for name, table in zip(lazy, computed)}
        if "counts_areas" in tables:
            both = tables.pop("counts_areas")
            tables["counts"], tables["areas"] = np.rint(both[0]).astype(np.int64), both[1]
        counts = tables["counts"]
        if counts[:, index.unknown_col].sum():
            if histogram_in_pass:  # counted in this pass: no second one
                found = finalize(CODE_HISTOGRAM, tables["code_histogram"], layout)
                unknown = {code: n for code, n in sorted(found.items()) if code not in pool_table.codes and code != land.nodata}
            else:
                unknown = _count_unknown(land, pool_table, active)
            raise UnknownCodesError(unknown_codes_message(land.path, pool_table, unknown))
        if pixel_maps and stage is not None:
            _write_pixel_maps(land, index, pool_table, stage, active, progress=progress)
        area_m2 = tables["areas"] if "areas" in tables else counts * areas.uniform_area_m2()
        result = _supply_result(counts, area_m2, land=land, index=index, pools=pool_table, zone_table=zone_table, started=started)
        _add_coverage(result, counts, area_m2, index=index, zone_table=zone_table, min_coverage=min_coverage, fraction=fraction)
        if extra:
            result.tables = {**tables, "areas": area_m2}
        if code_histogram is not None:
            result.tables["code_histogram"] = tables["code_histogram"] if histogram_in_pass else _histogram_from_counts(counts, index, code_histogram)
        if stage is not None:
            result.write(stage)
    if out is not None:
        result.files = {name: Path(out).absolute() / path.name for name, path in result.files.items()}
        if pixel_maps:
            result.files.update({name: Path(out).absolute() / file for name, file in PIXEL_MAP_FILES.items()})
    return result


def _supply_result(
    counts: np.ndarray, areas: np.ndarray, *, land: Any, index: ClassIndex, pools: PoolTable, zone_table: Any, started: float
) -> SupplyResult:
    """The four tables and the summary (pixel counts, nodata, grid) from the pass's counts and true areas (m²)."""
    by_county, by_class, by_county_class, by_pool = supply_tables(counts, pools=pools, zone_values=zone_table.series(), areas_m2=areas)
    ids = list(zone_table.ids)
    # Per county as whole columns, not element by element (3,000 counties: ~15 ms of Python saved).
    nodata_by_county = counts[ids, index.nodata_col] if ids else np.zeros(0)
    summary = {
        "total_supply_t": float(by_county["supply_t"].sum()),
        "pixels_in_counties": int(counts[ids, : index.n_classes].sum()),
        "nodata_pixels_in_counties": int(counts[ids, index.nodata_col].sum()),
        "pixels_outside_counties": int(counts[0, : index.n_classes].sum()),
        "nodata_pixels_total": int(counts[:, index.nodata_col].sum()),
        "nodata_pixels_by_county": {str(v): int(n) for v, n in zip(zone_table.values, nodata_by_county.tolist()) if n},
        "grid_shape": list(land.grid.shape),
        "pixel_size": list(land.grid.resolution),
        "crs": land.grid.crs.name,
        "geographic": land.grid.is_geographic,
        "pixel_area_m2": None if land.grid.is_geographic else land.grid.pixel_area_m2,
        "areas": land.grid.area_model.describe(),
        "seconds": time.perf_counter() - started,
    }
    # By area, not pixel count: in fraction mode a county holding no pixel centre still has its share.
    held = areas[ids, : index.n_classes].sum(axis=1) > 0 if ids else np.zeros(0, dtype=bool)
    missing_counties = [str(v) for v, h in zip(zone_table.values, held.tolist()) if not h]
    if missing_counties:
        log.warning("%d county(ies) hold no land-use area: %s", len(missing_counties), missing_counties[:10])
        summary["counties_without_pixels"] = missing_counties
    if summary["nodata_pixels_in_counties"]:
        log.warning(
            "%s nodata pixels inside the counties count nowhere (%s)",
            f"{summary['nodata_pixels_in_counties']:,}",
            ", ".join(f"{k}: {v:,}" for k, v in list(summary["nodata_pixels_by_county"].items())[:5])
            + (f", … {len(summary['nodata_pixels_by_county']) - 5:,} more in supply_summary.json, nodata_pixels_by_county"
               if len(summary["nodata_pixels_by_county"]) > 5 else ""),
        )
    return SupplyResult(by_county=by_county, by_class=by_class, by_county_class=by_county_class, by_pool=by_pool, summary=summary)


def _add_coverage(
    result: SupplyResult, counts: np.ndarray, areas_m2: np.ndarray, *, index: ClassIndex, zone_table: Any, min_coverage: float | None, fraction: bool,
    warn: bool = True,
) -> None:
    """Coverage columns on ``by_county`` and in the summary; refuse counties below ``min_coverage``
    (``warn=False``: the columns only, for the per-map tables of a study whose base map was checked)."""
    from carbonscape.coverage import (
        DEFAULT_MIN_COVERAGE,
        CoverageError,
        check_min_coverage,
        coverage_problems,
        coverage_table,
        low_coverage,
        warn_coarse,
        warn_partial,
    )

    threshold = DEFAULT_MIN_COVERAGE if min_coverage is None else check_min_coverage(min_coverage)
    mode = "fraction" if fraction else "centre"
    result.summary["coverage"] = {"mode": mode, "min_coverage": threshold}
    if zone_table.area_km2 is None:  # a county store from before coverage was recorded
        log.warning("the county store records no polygon areas (made by an older carbonscape); coverage is not checked. Rebuild it with `carbonscape zones ... --force`")
        return
    coverage = coverage_table(
        areas_m2, counts, ids=zone_table.ids, values=zone_table.values, area_km2=zone_table.area_km2, outside_km2=zone_table.outside_km2,
        n_classes=index.n_classes, nodata_col=index.nodata_col, centre=not fraction,
    )
    problems = coverage_problems(coverage, min_coverage=threshold, mode=mode)
    if problems:
        raise CoverageError(problems)
    low = coverage["county"].isin(low_coverage(coverage, DEFAULT_MIN_COVERAGE)["county"])
    by_county = result.by_county
    for column in ("polygon_area_km2", "covered_share", "nodata_share", "outside_share"):
        by_county[column] = coverage[column].to_numpy()
    by_county["low_coverage"] = low.to_numpy()
    if not warn:
        return
    if low.any():
        from carbonscape.coverage import describe

        log.warning(
            "%d county(ies) are covered less than %g (accepted by min_coverage %g); their supply densities are over the covered "
            "area, flagged low_coverage: %s", int(low.sum()), DEFAULT_MIN_COVERAGE, threshold,
            "; ".join(describe(row) for row in coverage[low].head(10).itertuples()),
        )
    result.summary["coverage"].update({
        "low_coverage": [str(v) for v in coverage.loc[low, "county"]],
        "covered_share_min": float(coverage["covered_share"].min()) if len(coverage) else None,
        "outside_share_max": float(coverage["outside_share"].max()) if len(coverage) else None,
        "nodata_share_max": float(coverage["nodata_share"].max()) if len(coverage) else None,
    })
    partial = warn_partial(coverage[~low.to_numpy()], min_coverage=threshold)
    if partial:
        result.summary["coverage"]["partial_counties"] = partial
    if not fraction:
        coarse = warn_coarse(coverage)
        if coarse:
            result.summary["coverage"]["coarse_counties"] = coarse


def _histogram_from_counts(counts: np.ndarray, index: ClassIndex, codes: tuple[int, int]) -> np.ndarray:
    """:data:`CODE_HISTOGRAM`'s table over codes ``lo .. lo+n-1`` from a pass's (unit, column) pixel
    counts with no unknown code: each listed code's column and the nodata column summed over the
    units (row 0, outside every unit, included), i.e. every pixel of the raster."""
    lo, n = codes
    if counts[:, index.unknown_col].sum():
        raise ValueError("the counts hold codes missing from the class index: count the histogram itself")
    hist = np.zeros(n + 1, dtype=np.int64)
    totals = counts.sum(axis=0)
    for column, code in enumerate(index.codes):
        if totals[column]:
            hist[code - lo] = totals[column]  # codes outside lo..lo+n-1 cannot be in the raster: their totals are 0
    if index.nodata is not None and totals[index.nodata_col]:
        hist[index.nodata - lo] = totals[index.nodata_col]
    return hist


def _count_unknown(land: Any, pools: PoolTable, run: Executor) -> dict[int, int]:
    """Second pass, on the error path only: which unknown codes, and how many pixels of each.

    8/16-bit codes: the :data:`CODE_HISTOGRAM` accumulation over the dtype's range (the reduction
    ingest records as ``code_counts``). Wider codes have no small range, so each chunk reports only
    its distinct codes and counts (:func:`block_codes`); memory stays flat either way.
    """
    dtype = np.dtype(land.data.dtype)
    if dtype.kind in "iu" and dtype.itemsize <= 2:
        info = np.iinfo(dtype)
        layout = Layout(codes=(int(info.min), int(info.max) - int(info.min) + 1))
        lazy = accumulate([CODE_HISTOGRAM], None, {"landuse": land.data}, layout=layout)["code_histogram"]
        (hist,) = run.compute(lazy)
        found = finalize(CODE_HISTOGRAM, hist, layout)
        if land.nodata is not None:
            found.pop(int(land.nodata), None)
        return {code: n for code, n in sorted(found.items()) if code not in pools.codes}
    import dask

    parts = [dask.delayed(block_codes)(block, land.nodata) for block in land.data.to_delayed().ravel()]
    found: dict[int, int] = {}
    for values, counts in run.compute(*parts):
        for value, count in zip(values.tolist(), counts.tolist()):
            found[int(value)] = found.get(int(value), 0) + int(count)
    return {code: n for code, n in sorted(found.items()) if code not in pools.codes}


def block_codes(block: np.ndarray, nodata: Any) -> tuple[np.ndarray, np.ndarray]:
    """The distinct codes of a block and their pixel counts, ``nodata`` left out."""
    low, high = int(block.min()), int(block.max())
    if high - low < 1 << 16:  # a bincount over the block's range beats sorting it
        counts = np.bincount((block.astype(np.int64) - low).ravel())
        present = np.flatnonzero(counts)
        values, counts = present + low, counts[present]
    else:
        values, counts = np.unique(block, return_counts=True)
    keep = values != nodata if nodata is not None else np.ones(values.shape, dtype=bool)
    return values[keep], counts[keep]


def _write_pixel_maps(land: Any, index: ClassIndex, pools: PoolTable, out: Path, run: Executor, *, progress: bool,
                      carbon: da.Array | None = None) -> None:
    """Total carbon per pixel in t/ha (as InVEST >= 3.15 writes it): Zarr, COG and an overview.

    ``carbon``: the per-pixel t/ha to write instead of the pools table's densities looked up by
    class (the corrected densities of :func:`carbonscape.continuous.corrected_carbon`)."""
    import rasterio
    from rasterio.shutil import copy as rio_copy

    if carbon is None:
        carbon = lookup(land.data, index=index, values=pools.total_density)
    ds = raster_dataset(carbon, land.grid, name="carbon_t_per_ha", nodata=float("nan"), attrs={"units": "t/ha", "carbonscape_kind": "carbon"})
    ds["carbon_t_per_ha"].attrs["units"] = "t/ha"
    zarr_path = out / PIXEL_MAP_FILES["carbon_zarr"]
    write_store(ds, zarr_path, grid=land.grid, run=run, progress=progress, label=f"pixel map → {zarr_path}")
    stored = open_store(zarr_path, variable="carbon_t_per_ha")
    grid = land.grid
    profile = {
        "driver": "GTiff", "dtype": "float32", "count": 1, "width": grid.shape[1], "height": grid.shape[0],
        "crs": grid.crs_wkt, "transform": grid.affine, "nodata": float("nan"), "tiled": True,
        "blockxsize": 512, "blockysize": 512, "compress": "deflate", "predictor": 3, "BIGTIFF": "IF_SAFER",
    }
    tif_path = out / PIXEL_MAP_FILES["carbon_cog"]
    with atomic_path(tif_path) as tmp_cog:
        staging = tmp_cog.with_name(tmp_cog.name + ".tiled.tif")
        try:
            # Stream chunk by chunk into a tiled GeoTIFF, then let GDAL's COG driver add overviews.
            with rasterio.open(staging, "w", **profile) as dst:
                for (_, _), (rows, cols) in grid.chunk_windows():
                    block = np.asarray(stored.data[rows, cols].compute(scheduler="threads"))
                    dst.write(block, 1, window=rasterio.windows.Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start))
            rio_copy(staging, tmp_cog, driver="COG", compress="DEFLATE", predictor=3, overview_resampling="average", BIGTIFF="IF_SAFER")
        finally:
            if staging.exists():
                staging.unlink()
    write_overview(stored, out / PIXEL_MAP_FILES["carbon_overview"])


def write_overview(store: Any, path: Path, *, max_pixels: int = 1500) -> Path:
    """A block-averaged copy of a float raster store, at most ``max_pixels`` on its long side."""
    import rasterio

    grid = store.grid
    factor = max(1, int(np.ceil(max(grid.shape) / max_pixels)))
    rows, cols = grid.shape[0] // factor * factor, grid.shape[1] // factor * factor
    data = store.data[:rows, :cols]
    import dask.array as da

    small = da.coarsen(np.nanmean, data, {0: factor, 1: factor}, trim_excess=True) if factor > 1 else data
    array = np.asarray(small.compute(scheduler="threads"), dtype=np.float32)
    a, b, c, d, e, f = grid.transform
    with atomic_path(path) as tmp:
        with rasterio.open(
            tmp, "w", driver="GTiff", dtype="float32", count=1, width=array.shape[1], height=array.shape[0],
            crs=grid.crs_wkt, transform=rasterio.Affine(a * factor, b, c, d, e * factor, f), nodata=float("nan"), compress="deflate",
        ) as dst:
            dst.write(array, 1)
    return path
