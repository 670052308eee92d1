"""A whole study from one TOML file: ingest → zones → supply → demand → ratio → zoning → outputs.

Relative paths in the file resolve against the file's folder. :func:`check_study` validates
every input without computing and reports all problems at once; :func:`run_study` runs it,
reusing the Zarr stores that are already up to date, and writes every table, ``counties.gpkg``
and ``run.json`` (parameters, totals, input checksums, versions, timings).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import socket
import time
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from carbonscape.breaks import manual_breaks
from carbonscape.carbon import (
    PoolTable,
    SupplyResult,
    block_codes,
    read_pools,
    supply,
    unknown_codes_message,
)
from carbonscape.cluster import executor
from carbonscape.demand import (
    check_county_table,
    demand_by_county,
    demand_totals,
    demand_totals_table,
    per_capita_emission,
)
from carbonscape.errors import InputError, StudyError
from carbonscape.io import (
    LANDUSE_VARIABLE,
    atomic_path,
    ingest,
    source_fingerprint,
    store_is_current,
)
from carbonscape.rasterize import geodesic_areas_km2, rasterize_zones, read_polygons
from carbonscape.ratio import CO2_TO_C, DEMAND_UNITS, UNITS, supply_demand_ratio
from carbonscape.zoning import SCHEME_NAMES, get_scheme, zone_ratios

log = logging.getLogger(__name__)

ZONING_METHODS = ("jenks", "quantile", "equal", "manual")
RATIO_UNITS = ("paper", "carbon")


@dataclass(frozen=True)
class DemandSpec:
    """Where demand comes from: a county table plus a per-capita figure or county emissions."""

    table: Path
    key: str
    population: str = "population"
    per_capita_t: float | None = None
    total_emissions_t: float | None = None
    total_population: float | None = None
    emissions_column: str | None = None
    sheet: str | None = None

    def per_capita(self) -> float | None:
        if self.per_capita_t is not None:
            return float(self.per_capita_t)
        if self.total_emissions_t is not None and self.total_population is not None:
            return per_capita_emission(total_emissions_t=self.total_emissions_t, total_population=self.total_population)
        return None


@dataclass(frozen=True)
class ZoningSpec:
    method: str = "jenks"
    k: int = 7
    breaks: tuple[float, ...] | None = None
    weights: str | None = None  # "area": weight each county by its area, as classifying a ratio map does
    scheme: str | dict[str, Any] = "paper"


@dataclass(frozen=True)
class Study:
    """A parsed study file."""

    path: Path
    name: str
    landuse: tuple[Path, ...]
    counties: Path
    id_field: str
    pools: Path
    demand: DemandSpec
    zoning: ZoningSpec
    ratio_units: str = "paper"
    chunk: int = 4096
    layer: str | None = None
    out: Path | None = None
    pixel_maps: bool = False
    maps: bool = True
    report: bool = True
    year: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def folder(self) -> Path:
        return self.path.parent

    def output_dir(self, out: str | os.PathLike[str] | None = None) -> Path:
        if out is not None:
            return Path(out)
        return self.out if self.out is not None else self.folder / "results"


def _resolve(folder: Path, value: Any) -> Path:
    path = Path(str(value)).expanduser()
    return path if path.is_absolute() else folder / path


def load_study(path: str | os.PathLike[str]) -> Study:
    """Parse a study TOML file; every missing or bad setting is reported in one :class:`StudyError`.

    Parameters
    ----------
    path
        The study file. Relative paths in it resolve against its folder.

    Returns
    -------
    Study
    """
    study, problems, _ = _read_study(path)
    if problems or study is None:
        raise StudyError(problems, path=str(path))
    return study


# Names of the settings whose inputs cannot be checked when the setting itself is missing or bad.
_LANDUSE, _COUNTIES, _POOLS, _DEMAND, _METHOD, _K = "landuse", "counties", "pools", "demand", "method", "k"


def _read_study(path: str | os.PathLike[str]) -> tuple[Study | None, list[str], frozenset[str]]:
    """The study as far as its file can be read, every problem of its settings, and the settings
    too broken to check their inputs with.

    The study is built even when settings are bad (missing paths become placeholders named in the
    third value) so that :func:`check_study` can still check every input file that is named;
    it is None only when the file is missing or not TOML. :func:`load_study` refuses any problem.
    """
    toml_path = Path(path)
    if not toml_path.is_file():
        return None, [f"no such study file; create one with `carbonscape init {toml_path}`"], frozenset()
    try:
        raw = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        return None, [f"not valid TOML: {exc}"], frozenset()
    except UnicodeDecodeError as exc:
        return None, [f"not UTF-8 text ({exc}); save the study file as UTF-8"], frozenset()
    folder = toml_path.resolve().parent
    problems: list[str] = []
    broken: set[str] = set()

    def section(name: str, *, required: bool = True) -> dict[str, Any]:
        value = raw.get(name)
        if value is None:
            if required:
                problems.append(f"missing section [{name}]")
            return {}
        if not isinstance(value, dict):
            problems.append(f"[{name}] must be a table")
            return {}
        return value

    def need(table: dict[str, Any], key: str, where: str) -> Any:
        value = table.get(key)
        if value is None:
            problems.append(f"[{where}] needs `{key}`")
        elif not isinstance(value, str) or not value.strip():
            problems.append(f"[{where}] `{key}` must be a text, not {value!r}")
            value = None
        if value is None:
            broken.add(where)
        return value

    study_section = section("study", required=False)
    landuse_section = section("landuse")
    counties_section = section("counties")
    pools_section = section("pools")
    demand_section = section("demand")
    zoning_section = section("zoning", required=False)
    ratio_section = section("ratio", required=False)
    outputs_section = section("outputs", required=False)

    rasters = landuse_section.get("rasters", landuse_section.get("raster"))
    if isinstance(rasters, str):
        rasters = [rasters]
    if rasters is None:
        problems.append("[landuse] needs `rasters` (a path or a list of tiles)")
    elif not isinstance(rasters, list) or not rasters or not all(isinstance(r, str) and r.strip() for r in rasters):
        problems.append(f"[landuse] `rasters` must be a path or a non-empty list of paths, not {rasters!r}")
        rasters = None
    if rasters is None:
        broken.add(_LANDUSE)
        rasters = []
    counties_path = need(counties_section, "path", _COUNTIES)
    id_field = need(counties_section, "id_field", _COUNTIES)
    pools_path = need(pools_section, "path", _POOLS)
    table = need(demand_section, "table", _DEMAND)
    key = demand_section.get("key", id_field)
    if key is not None and not isinstance(key, str):
        problems.append(f"[demand] `key` must be the name of the column matching [counties] id_field, not {key!r}")
    if not isinstance(key, str):
        broken.add(_DEMAND)  # no key column to read the table by (a missing id_field is reported already)
    sources = [k for k in ("per_capita_t", "total_emissions_t", "emissions_column") if k in demand_section]
    if len(sources) != 1:
        problems.append(
            "[demand] needs exactly one of `per_capita_t`, `total_emissions_t` (with `total_population`) "
            f"or `emissions_column`; found {sources or 'none'}"
        )
    if "total_emissions_t" in demand_section and "total_population" not in demand_section:
        problems.append("[demand] `total_emissions_t` needs `total_population` too (Cem / Yyn)")
    numbers: dict[str, float | None] = {}
    for number in ("per_capita_t", "total_emissions_t", "total_population"):
        value = demand_section.get(number)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not np.isfinite(value)):
            problems.append(f"[demand] `{number}` must be a positive number, not {value!r}")
            value = None
        numbers[number] = value
    columns: dict[str, str | None] = {}
    for name, default in (("population", "population"), ("emissions_column", None)):
        value = demand_section.get(name, default)
        if value is not None and not isinstance(value, str):
            problems.append(f"[demand] `{name}` must be a column name (text), not {value!r}")
            value = default
        columns[name] = value
    sheet = demand_section.get("sheet")

    method = zoning_section.get("method", "jenks")
    k = zoning_section.get("k", 7)
    breaks = zoning_section.get("breaks")
    weights = zoning_section.get("weights")
    scheme = zoning_section.get("scheme", "paper")
    zoning_problems, zoning_broken = _zoning_problems(method=method, k=k, breaks=breaks, weights=weights, scheme=scheme)
    problems += zoning_problems
    broken |= zoning_broken
    units = ratio_section.get("units", "paper")
    if units not in RATIO_UNITS:
        problems.append(f"[ratio] units {units!r} is not one of {list(RATIO_UNITS)}")
    chunk = landuse_section.get("chunk", 4096)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 256:
        problems.append(f"[landuse] chunk must be an integer >= 256, not {chunk!r}")
        chunk = 4096
    out_value = outputs_section.get("dir")
    # Placeholders stand in for missing settings; `broken` says which, so nothing checks them.
    placeholder = Path(os.devnull)
    study = Study(
        path=toml_path.resolve(),
        name=str(study_section.get("name", toml_path.stem)),
        year=study_section.get("year"),
        landuse=tuple(_resolve(folder, r) for r in rasters),
        chunk=int(chunk),
        counties=_resolve(folder, counties_path) if counties_path else placeholder,
        layer=counties_section.get("layer"),
        id_field=str(id_field) if id_field else "",
        pools=_resolve(folder, pools_path) if pools_path else placeholder,
        demand=DemandSpec(
            table=_resolve(folder, table) if table else placeholder,
            key=str(key) if isinstance(key, str) else "",
            population=columns["population"] or "population",
            per_capita_t=numbers["per_capita_t"],
            total_emissions_t=numbers["total_emissions_t"],
            total_population=numbers["total_population"],
            emissions_column=columns["emissions_column"],
            sheet=sheet,
        ),
        zoning=ZoningSpec(
            method=str(method),
            k=k if _K not in broken else 7,
            breaks=tuple(float(b) for b in breaks) if "breaks" not in broken and breaks else None,
            weights=None if weights in (None, "none") else str(weights),
            scheme=scheme if isinstance(scheme, (str, dict)) else str(scheme),
        ),
        ratio_units=str(units),
        out=_resolve(folder, out_value) if out_value else None,
        pixel_maps=bool(outputs_section.get("pixel_maps", False)),
        maps=bool(outputs_section.get("maps", True)),
        report=bool(outputs_section.get("report", True)),
        raw=raw,
    )
    return study, problems, frozenset(broken)


def _zoning_problems(*, method: Any, k: Any, breaks: Any, weights: Any, scheme: Any) -> tuple[list[str], set[str]]:
    """Problems of the [zoning] settings, and which of method / k / breaks are unusable."""
    problems: list[str] = []
    broken: set[str] = set()
    if method not in ZONING_METHODS:
        problems.append(f"[zoning] method {method!r} is not one of {list(ZONING_METHODS)}")
        broken.add(_METHOD)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 2:
        problems.append(f"[zoning] k must be an integer >= 2, not {k!r}")
        broken.add(_K)
    if breaks is not None:
        edges = list(breaks) if isinstance(breaks, (list, tuple)) else None
        if edges is None or not all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in edges):
            problems.append(f"[zoning] breaks must be a list of numbers, not {breaks!r}")
            broken.add("breaks")
        elif method == "manual":
            try:
                manual_breaks(edges)
            except InputError:
                problems.append(
                    f"[zoning] breaks {edges} must be finite and strictly increasing; list the k + 1 class edges "
                    "from the lowest to the highest"
                )
                broken.add("breaks")
    if method == "manual" and _K not in broken and (breaks is None or "breaks" not in broken and len(breaks) != k + 1):
        given = "none" if breaks is None else len(breaks)
        problems.append(f"[zoning] manual zoning needs `breaks`: k + 1 = {k + 1} class edges, got {given}")
    if weights not in (None, "area", "none"):
        problems.append(f"[zoning] weights must be \"area\" or \"none\", not {weights!r}")
    if _K not in broken:
        try:
            get_scheme(scheme, k=k)
        except InputError as exc:
            problems.append(f"[zoning] {exc}")
    elif isinstance(scheme, str) and scheme not in SCHEME_NAMES:
        problems.append(f"[zoning] unknown zone scheme {scheme!r}; use \"paper\", \"classes\" or a table of zones")
    return problems, broken


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
    return _check(study, out=out)[0]


def _check(
    study: Study | str | os.PathLike[str], *, out: str | os.PathLike[str] | None, scan_codes: bool = True
) -> tuple[list[str], Study | None, gpd.GeoDataFrame | None, pd.DataFrame | None]:
    """Problems of the settings and inputs, the study, and the polygons and table as read.

    ``scan_codes=False`` leaves out the land-use codes' check when no up-to-date store holds
    their counts: `run` does not read the rasters twice, since ingest counts the codes in its own
    pass and supply refuses codes missing from the pools table from those counts, before its pass."""
    if isinstance(study, Study):
        zoning = study.zoning
        problems, broken = _zoning_problems(
            method=zoning.method, k=zoning.k, breaks=list(zoning.breaks) if zoning.breaks is not None else None,
            weights=zoning.weights, scheme=zoning.scheme,
        )
        if study.ratio_units not in RATIO_UNITS:
            problems.append(f"[ratio] units {study.ratio_units!r} is not one of {list(RATIO_UNITS)}")
        parsed: Study | None = study
    else:
        parsed, problems, frozen = _read_study(study)
        broken = set(frozen)
    if parsed is None:
        return problems, None, None, None
    more, polygons, table = _check_inputs(parsed, broken=frozenset(broken), out=out, scan_codes=scan_codes)
    return problems + more, parsed, polygons, table


def _check_inputs(
    study: Study, *, broken: frozenset[str] = frozenset(), out: str | os.PathLike[str] | None = None, scan_codes: bool = True
) -> tuple[list[str], gpd.GeoDataFrame | None, pd.DataFrame | None]:
    """All problems of a study's input files, and the polygons and county table as read for it.

    ``broken`` names the settings that are missing or bad (see :func:`_read_study`); the inputs
    they name are not checked.
    """
    import rasterio

    problems: list[str] = []
    rasters_ok = _LANDUSE not in broken
    for raster in study.landuse if _LANDUSE not in broken else ():
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
    pools = None
    if _POOLS not in broken:
        try:
            pools = read_pools(study.pools)
        except InputError as exc:
            problems.append(f"pools: {exc}")
    if rasters_ok and pools is not None:
        problems.extend(_missing_codes(study, pools, out=out, scan=scan_codes))
    polygons = None
    if _COUNTIES not in broken:
        try:
            polygons = read_polygons(study.counties, id_field=study.id_field, layer=study.layer)
        except InputError as exc:
            problems.append(f"counties: {exc}")
    table = None
    if _DEMAND not in broken:
        numeric = [study.demand.population] + ([study.demand.emissions_column] if study.demand.emissions_column else [])
        table, table_problems = check_county_table(study.demand.table, key=study.demand.key, sheet=study.demand.sheet, numeric=numeric)
        problems.extend(f"demand: {problem}" for problem in table_problems)
        if table is not None and polygons is not None:
            problems.extend(_key_mismatches(polygons[study.id_field], table.index, study))
    if polygons is not None and not broken & {_METHOD, _K} and study.zoning.method in ("jenks", "quantile") and study.zoning.k > len(polygons):
        problems.append(
            f"[zoning] k = {study.zoning.k} {study.zoning.method} classes need at least {study.zoning.k} counties with distinct "
            f"ratios, and {study.counties.name} has {len(polygons)}; use k <= {len(polygons)}"
        )
    return problems, polygons, table


def _key_mismatches(polygon_keys: pd.Series, table_keys: pd.Index, study: Study) -> list[str]:
    polygons = {str(v) for v in polygon_keys}
    table = {str(v) for v in table_keys}
    problems = []
    if table - polygons:
        problems.append(
            f"demand: {study.demand.table}: {len(table - polygons)} county(ies) have no polygon in {study.counties.name}: "
            f"{sorted(table - polygons)[:20]}; make the keys match (same spelling in both files)"
        )
    if polygons - table:
        problems.append(
            f"demand: {len(polygons - table)} polygon(s) of {study.counties.name} have no row in {study.demand.table.name}: "
            f"{sorted(polygons - table)[:20]}; add their rows"
        )
    return problems


# About 4 Mpx per window: a few MiB of codes (and bincount's int64 copy) whatever the raster size.
_SCAN_PIXELS = 1 << 22


def _missing_codes(study: Study, pools: PoolTable, *, out: str | os.PathLike[str] | None, scan: bool = True) -> list[str]:
    """Land-use codes (not nodata) that the pools table lacks, with their pixel counts."""
    counts = _store_codes(study, out=out)
    if counts is None and not scan:
        return []
    if counts is None:
        counts = {}
        for raster in study.landuse:
            for code, count in scan_codes(raster).items():
                counts[code] = counts.get(code, 0) + count
    listed = set(pools.codes)
    missing = {code: n for code, n in counts.items() if code not in listed}
    if not missing:
        return []
    return ["land use: " + unknown_codes_message(", ".join(p.name for p in study.landuse), pools, missing)]


def _store_codes(study: Study, *, out: str | os.PathLike[str] | None) -> dict[int, int] | None:
    """The code counts an up-to-date ingested store keeps (nodata left out), or None."""
    import zarr

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


def scan_codes(path: str | os.PathLike[str]) -> dict[int, int]:
    """Pixel count of every land-use code in a GeoTIFF's first band, nodata left out.

    Reads window by window (whole blocks, about 4 Mpx each), so memory stays flat whatever the
    raster's size; a 10^8-pixel uint8 raster takes well under a second.

    Parameters
    ----------
    path
        An integer GeoTIFF.

    Returns
    -------
    dict
        ``{code: pixels}``, sorted by code.
    """
    import rasterio
    from rasterio.windows import Window

    found: dict[int, int] = {}
    # Each block is read once: a small GDAL block cache keeps memory flat (the default is 5% of RAM).
    with rasterio.Env(GDAL_CACHEMAX=64), rasterio.open(path) as src:
        dtype = np.dtype(src.dtypes[0])
        if dtype.kind not in "iu":
            raise InputError(f"{path}: land-use codes must be integers, not {dtype}")
        nodata = src.nodata
        block_rows, block_cols = src.block_shapes[0]
        # Whole blocks per window: striped files are read in full-width bands, tiled ones in squares.
        cols = src.width if block_cols >= src.width else min(src.width, max(block_cols, int(np.sqrt(_SCAN_PIXELS)) // block_cols * block_cols))
        rows = max(block_rows, _SCAN_PIXELS // max(cols, 1) // block_rows * block_rows)
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


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        return ""
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    names = ["carbonscape", "numpy", "numba", "dask", "distributed", "xarray", "zarr", "rasterio", "geopandas", "pyogrio", "shapely", "pyproj", "pandas", "matplotlib"]
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    import rasterio

    found["gdal"] = rasterio.__gdal_version__
    return found


@dataclass
class StudyResult:
    """What a study run produced."""

    out: Path
    supply: SupplyResult
    demand: pd.DataFrame
    ratio_zones: pd.DataFrame
    zoning: dict[str, Any]
    totals: dict[str, Any]
    run_info: dict[str, Any]
    files: dict[str, Path]


def _write_csv(frame: pd.DataFrame, path: Path, *, index: bool = False) -> Path:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=index, encoding="utf-8", float_format="%.10g")
    return path


def run_study(
    study: Study | str | os.PathLike[str],
    *,
    out: str | os.PathLike[str] | None = None,
    scheduler: str | None = None,
    progress: bool = False,
    maps: bool | None = None,
    report: bool | None = None,
) -> StudyResult:
    """Run a whole study and write its outputs.

    Parameters
    ----------
    study
        A :class:`Study` or the path of its TOML file.
    out
        Output folder (default: the file's ``[outputs] dir``, else ``results`` beside it).
    scheduler
        See :func:`carbonscape.cluster.executor`.
    progress
        Show progress bars.
    maps, report
        Draw the maps and write ``report.html`` (default: as the study file says).

    Returns
    -------
    StudyResult
    """
    # The same check as `carbonscape check`, before any compute: settings and inputs, all at once.
    problems, checked, polygons, table = _check(study, out=out, scan_codes=False)
    if problems or checked is None:
        raise StudyError(problems, path=str(study.path if isinstance(study, Study) else study))
    study = checked
    assert polygons is not None and table is not None
    out_dir = study.output_dir(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stores = out_dir / "stores"
    timings: dict[str, float] = {}
    started = datetime.now(UTC)
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 3)
        clock = now

    with executor(scheduler) as run:
        landuse_store = ingest(list(study.landuse), stores / "landuse.zarr", chunk=study.chunk, progress=progress, run=run)
        lap("ingest")
        zone_store = rasterize_zones(study.counties, like=landuse_store, id_field=study.id_field, out=stores / "zones.zarr", layer=study.layer, progress=progress, run=run)
        lap("zones")
        supply_result = supply(landuse_store, zone_store, study.pools, out=out_dir, pixel_maps=study.pixel_maps, progress=progress, run=run)
        lap("supply")
        where = {"scheduler": run.description, "workers": run.workers, "host": socket.gethostname()}

    keys = polygons[study.id_field].astype(str)
    area_km2 = pd.Series(geodesic_areas_km2(polygons), index=pd.Index(keys, name="county"))
    by_county = supply_result.by_county.assign(county=supply_result.by_county["county"].astype(str)).set_index("county")
    table.index = table.index.astype(str)
    demand = demand_by_county(
        table, area_km2=area_km2, pixel_area_km2=by_county["area_km2"], per_capita_t=study.demand.per_capita(),
        emissions_column=study.demand.emissions_column, population_column=study.demand.population,
    )
    totals_demand = demand_totals(demand)
    lap("demand")
    ratio = supply_demand_ratio(by_county["supply_t"], demand, units=study.ratio_units)
    weights = ratio["area_km2"] if study.zoning.weights == "area" else None
    finite = ratio["ratio"]
    zones_frame, zoning_info = zone_ratios(
        finite, method=study.zoning.method, k=study.zoning.k, breaks=list(study.zoning.breaks) if study.zoning.breaks else None,
        weights=weights, scheme=study.zoning.scheme,
    )
    ratio_zones = pd.concat([ratio, zones_frame], axis=1)
    ratio_zones.index.name = "county"
    lap("ratio_zoning")

    files: dict[str, Path] = dict(supply_result.files)
    demand_columns = ["population", "area_km2", "density_per_km2", "demand_t_per_km2", "share_pct", "pixel_area_km2", "emissions_t"]
    demand_out = demand[[c for c in demand_columns if c in demand.columns]].reset_index().rename(columns={demand.index.name or "index": "county"})
    demand_out["demand_unit"] = DEMAND_UNITS["paper"]  # demand itself is always t CO2/km²
    files["demand_by_county"] = _write_csv(demand_out, out_dir / "demand_by_county.csv")
    files["demand_totals"] = _write_csv(demand_totals_table(demand, per_capita_t=study.demand.per_capita()), out_dir / "demand_totals.csv")
    ratio_columns = ["supply_t", "supply_t_per_km2", "demand_t_per_km2", "ratio", "ratio_infinite", "class", "zone", "zone_en", "demand_unit"]
    ratio_out = ratio_zones[[c for c in ratio_columns if c in ratio_zones.columns]].reset_index()
    files["ratio_zones"] = _write_csv(ratio_out, out_dir / "ratio_zones.csv")
    files["counties"] = _write_counties(polygons, keys=keys, area_km2=area_km2, by_county=by_county, demand=demand, ratio_zones=ratio_zones, out_dir=out_dir)

    totals = {
        "supply_t": supply_result.total_t,
        "supply_t_per_km2_regional": supply_result.total_t / float(area_km2.sum()),
        **totals_demand,
        "counties": int(len(ratio_zones)),
        "counties_with_infinite_ratio": int(ratio_zones["ratio_infinite"].sum()) if "ratio_infinite" in ratio_zones else 0,
        "area_km2_polygons": float(area_km2.sum()),
        "area_km2_pixels": float(by_county["area_km2"].sum()),
    }
    inputs = [{"role": "landuse", "path": str(p), "sha256": sha256(p), "bytes": p.stat().st_size} for p in study.landuse]
    for role, path in (("counties", study.counties), ("pools", study.pools), ("demand", study.demand.table), ("study", study.path)):
        inputs.append({"role": role, "path": str(path), "sha256": sha256(path), "bytes": path.stat().st_size})
    run_info = {
        "carbonscape": _versions().get("carbonscape", ""),
        "started": started.isoformat(timespec="seconds"),
        "study": {
            "name": study.name, "year": study.year, "file": str(study.path), "id_field": study.id_field,
            "ratio_units": study.ratio_units, "chunk": study.chunk,
            "demand": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(study.demand).items()},
            "per_capita_t": study.demand.per_capita(),
        },
        "totals": totals,
        "units": _units(study.ratio_units),
        "zoning": {**_jsonable(zoning_info), "scheme": study.zoning.scheme if isinstance(study.zoning.scheme, str) else study.zoning.scheme.get("name", "custom"), "weights": study.zoning.weights},
        "supply_summary": _jsonable(supply_result.summary),
        "inputs": inputs,
        "versions": _versions(),
        "timings_s": timings,
        "where": {**where, "platform": platform.platform(), "cpus": os.cpu_count()},
    }
    run_json = out_dir / "run.json"
    with atomic_path(run_json) as tmp:
        tmp.write_text(json.dumps(run_info, indent=2, ensure_ascii=False), encoding="utf-8")
    files["run"] = run_json
    result = StudyResult(out=out_dir, supply=supply_result, demand=demand, ratio_zones=ratio_zones, zoning=zoning_info, totals=totals, run_info=run_info, files=files)
    draw_outputs(result, maps=study.maps if maps is None else maps, report=study.report if report is None else report, title=study.name)
    return result


def _units(ratio_units: str) -> dict[str, Any]:
    """What each output column holds, for run.json: the same name can hold t CO2 or t C."""
    return {
        "ratio_units": ratio_units,
        "ratio": UNITS[ratio_units],
        "supply_t": "t C",
        "supply_t_per_km2": "t C/km²",
        "demand_by_county.csv": {"demand_t_per_km2": DEMAND_UNITS["paper"], "emissions_t": "t CO2"},
        "ratio_zones.csv": {"demand_t_per_km2": DEMAND_UNITS[ratio_units]},
        "totals": {"sum_of_county_densities_t_per_km2": "t CO2/km²", "regional_density_t_per_km2": "t CO2/km²", "total_demand_t": "t CO2"},
        "counties.gpkg": {
            "supply_t": "t C", "supply_t_c_per_km2": "t C/km²", "emissions_t_co2": "t CO2", "demand_t_co2_per_km2": "t CO2/km²",
            "demand_t_c_per_km2": "t C/km² (demand × 12/44)", "ratio": UNITS[ratio_units],
        },
    }


def _write_counties(
    polygons: gpd.GeoDataFrame,
    *,
    keys: pd.Series,
    area_km2: pd.Series,
    by_county: pd.DataFrame,
    demand: pd.DataFrame,
    ratio_zones: pd.DataFrame,
    out_dir: Path,
) -> Path:
    """``counties.gpkg``: the polygons with every county figure, each column named with its unit."""
    index = pd.Index(keys, name="county")
    columns = {
        "area_km2": area_km2.reindex(index),
        "pixel_area_km2": by_county["area_km2"].reindex(index),
        "pixels": by_county["pixels"].reindex(index),
        "supply_t": by_county["supply_t"].reindex(index),  # t C
        "supply_share_pct": by_county["share_pct"].reindex(index),
        "supply_t_c_per_km2": ratio_zones["supply_t_per_km2"].reindex(index),
        "population": demand["population"].reindex(index),
        "population_per_km2": demand["density_per_km2"].reindex(index),
        "emissions_t_co2": demand["emissions_t"].reindex(index),
        "demand_t_co2_per_km2": demand["demand_t_per_km2"].reindex(index),
        "demand_t_c_per_km2": demand["demand_t_per_km2"].reindex(index) * CO2_TO_C,
        "demand_share_pct": demand["share_pct"].reindex(index),
        **{c: ratio_zones[c].reindex(index) for c in ("ratio", "ratio_infinite", "class", "zone", "zone_en", "zone_key") if c in ratio_zones},
        "ratio_demand_unit": ratio_zones["demand_unit"].reindex(index),
    }
    attributes = polygons.copy()
    # The id field itself named "county" is the same values, not a clash worth a message.
    clashing = [c for c in ["county", *columns] if c in attributes.columns and c != polygons.geometry.name and c != keys.name]
    if clashing:
        log.info("counties.gpkg: the computed %s replace the polygon file's columns of the same name", clashing)
    attributes = attributes.drop(columns=clashing)
    attributes["county"] = keys.to_numpy()
    for name, values in columns.items():
        attributes[name] = values.to_numpy()
    path = out_dir / "counties.gpkg"
    with atomic_path(path) as tmp:
        attributes.to_file(tmp, layer="counties", driver="GPKG", engine="pyogrio")
    return path


def draw_outputs(result: StudyResult, *, maps: bool = True, report: bool = True, title: str | None = None) -> None:
    """Draw the maps and write report.html of a finished run, recording their timings in run.json."""
    if not (maps or report):
        return
    timings = result.run_info["timings_s"]
    if maps:
        from carbonscape.maps import draw_maps

        clock = time.perf_counter()
        for path in draw_maps(result.out):
            result.files[f"map:{path.stem}"] = path
        timings["maps"] = round(time.perf_counter() - clock, 3)
    if report:
        from carbonscape.report import write_report

        clock = time.perf_counter()
        result.files["report"] = write_report(result.out, title=title)
        timings["report"] = round(time.perf_counter() - clock, 3)
    with atomic_path(result.files["run"]) as tmp:
        tmp.write_text(json.dumps(result.run_info, indent=2, ensure_ascii=False), encoding="utf-8")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


STUDY_TEMPLATE = '''# carbonscape study file. Paths are relative to this file's folder.
# Check it with `carbonscape check study.toml`, run it with `carbonscape run study.toml`.

[study]
name = "My region 2020"
year = 2020

[landuse]
# One GeoTIFF of integer land-use codes, or several tiles of one grid.
rasters = ["landuse.tif"]
# chunk = 4096                  # chunk edge in pixels

[counties]
path = "counties.gpkg"          # GeoPackage, Shapefile, GeoJSON...
id_field = "county"             # unique name or code of each county
# layer = "counties"            # when the file has several layers

[pools]
# InVEST carbon pools table: lucode, c_above, c_below, c_soil, c_dead (t/ha), optional LULC_name.
path = "pools.csv"

[demand]
table = "population.csv"       # CSV or XLSX with one row per county
key = "county"                  # column matching [counties] id_field
population = "population"
# Demand = per-capita emission × population density. Give exactly one of:
total_emissions_t = 2.0e8       # the region's (province's) total CO2 emissions, t ...
total_population = 4.858e7      # ... and its population: per capita = total_emissions_t / total_population
# per_capita_t = 4.1            # or a per-capita figure directly (t CO2 per person)
# emissions_column = "co2_t"    # or each county's own emissions (e.g. a CEADs county inventory)

[ratio]
units = "paper"                 # "paper": t CO2 demand over t C supply, as the 2025 study;
                                # "carbon": demand converted to carbon (× 12/44)

[zoning]
method = "jenks"                # jenks (exact Fisher-Jenks), quantile, equal, manual
k = 7
# weights = "area"              # weight counties by area, as classifying a ratio map does
# breaks = [0.005517, 0.013832, 0.025549, 0.040932, 0.076898, 0.136217, 0.356339, 0.637277]   # manual: k + 1 edges (the paper's Table 4)
scheme = "paper"                # the paper's 7 classes → 4 functional zones

[outputs]
# dir = "results"
maps = true
report = true
pixel_maps = false              # also carbon per pixel (t/ha) as Zarr and Cloud-Optimized GeoTIFF
'''


def write_study_template(path: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write a commented ``study.toml`` template; refuse to overwrite unless ``force``."""
    target = Path(path)
    if target.exists() and not force:
        raise InputError(f"{target} exists; pass --force to overwrite it")
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:
        tmp.write_text(STUDY_TEMPLATE, encoding="utf-8")
    return target
