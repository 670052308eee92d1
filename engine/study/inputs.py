"""A study's input files, read and checked before any compute: :func:`load_inputs`.

Reading and checking are one pass: what is read for the check (pools, polygons, the county
table) is what the pipeline then uses, and every problem is gathered, not just the first.
Messages name study keys (``[counties] id_field``), never command-line flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from carbonscape.carbon import PoolTable, block_codes, read_pools, unknown_codes_message
from carbonscape.demand import check_county_table
from carbonscape.errors import InputError
from carbonscape.io import LANDUSE_VARIABLE, source_fingerprint, store_is_current
from carbonscape.rasterize import read_polygons
from carbonscape.study.file import Study

__all__ = ["Inputs", "load_inputs", "scan_codes"]

# How messages about a study's inputs name the settings that fix them.
STUDY_NAMES = {"id_field": "[counties] id_field", "layer": "[counties] layer", "encoding": "[counties] encoding"}


@dataclass
class Inputs:
    """The inputs of a study as read for its check; None where a file could not be read."""

    pools: PoolTable | None = None
    polygons: gpd.GeoDataFrame | None = None
    table: pd.DataFrame | None = None
    code_counts: dict[int, int] | None = None


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
        if not raster.is_file():
            problems.append(f"land use: {raster}: no such file")
            rasters_ok = False
            continue
        try:
            with rasterio.open(raster) as src:
                if src.crs is None:
                    problems.append(f"land use: {raster}: no CRS; assign one, e.g. `gdal_edit.py -a_srs EPSG:XXXX {raster}`")
                if np.dtype(src.dtypes[0]).kind not in "iu":
                    problems.append(f"land use: {raster}: codes must be integers, not {src.dtypes[0]}; convert it, e.g. `gdal_translate -ot Int16`")
                    rasters_ok = False
        except rasterio.errors.RasterioIOError as exc:
            problems.append(f"land use: {raster}: unreadable ({exc})")
            rasters_ok = False
    if study.pools is not None:
        try:
            inputs.pools = read_pools(study.pools)
        except InputError as exc:
            problems.append(f"pools: {exc}")
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
        numeric = [demand.population] + ([demand.emissions_column] if demand.emissions_column else [])
        inputs.table, table_problems = check_county_table(demand.table, key=demand.key, sheet=demand.sheet, numeric=numeric)
        problems.extend(f"demand: {problem}" for problem in table_problems)
        if inputs.table is not None and inputs.polygons is not None and study.id_field is not None:
            problems.extend(_key_mismatches(inputs.polygons[study.id_field], inputs.table.index, study))
    zoning = study.zoning
    polygons = inputs.polygons
    if polygons is not None and zoning.k is not None and zoning.method in ("jenks", "quantile") and zoning.k > len(polygons):
        name = study.counties.name if study.counties is not None else "the counties file"
        problems.append(
            f"[zoning] k = {zoning.k} {zoning.method} classes need at least {zoning.k} counties with distinct "
            f"ratios, and {name} has {len(polygons)}; use k <= {len(polygons)}"
        )
    return inputs, problems


def _key_mismatches(polygon_keys: pd.Series, table_keys: pd.Index, study: Study) -> list[str]:
    polygons = {str(v) for v in polygon_keys}
    table = {str(v) for v in table_keys}
    counties = study.counties.name if study.counties is not None else "the counties file"
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
            f"demand: {len(polygons - table)} polygon(s) of {counties} have no row in {demand.name}: "
            f"{sorted(polygons - table)[:20]}; add their rows"
        )
    return problems


def _missing_codes(study: Study, pools: PoolTable, counts: dict[int, int]) -> list[str]:
    """Land-use codes (not nodata) that the pools table lacks, with their pixel counts."""
    listed = set(pools.codes)
    missing = {code: n for code, n in counts.items() if code not in listed}
    if not missing:
        return []
    return ["land use: " + unknown_codes_message(", ".join(p.name for p in study.landuse or ()), pools, missing)]


def _store_codes(study: Study, *, out: str | os.PathLike[str] | None) -> dict[int, int] | None:
    """The code counts an up-to-date ingested store keeps (nodata left out), or None."""
    import zarr

    if study.landuse is None:
        return None
    store = study.output_dir(out) / "stores" / "landuse.zarr"
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
    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(path) as src:
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
    assert study.landuse is not None and study.counties is not None and study.pools is not None and study.demand.table is not None
    more: list[tuple[str, Path]] = []
    if study.setting("landuse", "maps"):
        from carbonscape.study.landuse_maps import study_maps

        for m in study_maps(study):
            more += [(f"landuse {m.label}", p) for p in m.rasters if p not in study.landuse]
            more += [(f"pools {m.label}", m.pools)] if m.pools is not None else []
    return [*(("landuse", p) for p in study.landuse), *more, ("counties", study.counties), ("pools", study.pools),
            ("demand", study.demand.table), ("study", study.path)]


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
    study: Study | str | os.PathLike[str], *, out: str | os.PathLike[str] | None = None, scan: bool = True
) -> tuple[list[str], Study | None, Inputs]:
    """Every problem of a study's settings and inputs, the study, and its inputs as read."""
    from carbonscape.study.file import read_study

    if isinstance(study, Study):
        parsed: Study | None = study
        problems = _settings_problems(study)
    else:
        parsed, problems = read_study(study)
    if parsed is None:
        return problems, None, Inputs()
    inputs, more = load_inputs(parsed, out=out, scan=scan)
    return problems + more, parsed, inputs
