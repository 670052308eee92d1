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
from carbonscape.carbon import SupplyResult, read_pools, supply
from carbonscape.cluster import executor
from carbonscape.demand import (
    demand_by_county,
    demand_totals,
    per_capita_emission,
    read_county_table,
)
from carbonscape.errors import InputError, StudyError
from carbonscape.io import atomic_path, ingest
from carbonscape.rasterize import geodesic_areas_km2, rasterize_zones, read_polygons
from carbonscape.ratio import supply_demand_ratio
from carbonscape.zoning import zone_ratios

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
    """Parse a study TOML file; every missing or bad setting is reported in one :class:`StudyError`."""
    toml_path = Path(path)
    if not toml_path.is_file():
        raise StudyError(f"no such study file; create one with `carbonscape init {toml_path}`", path=str(toml_path))
    try:
        raw = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise StudyError(f"not valid TOML: {exc}", path=str(toml_path)) from exc
    folder = toml_path.resolve().parent
    problems: list[str] = []

    def section(name: str) -> dict[str, Any]:
        value = raw.get(name)
        if value is None:
            problems.append(f"missing section [{name}]")
            return {}
        if not isinstance(value, dict):
            problems.append(f"[{name}] must be a table")
            return {}
        return value

    def need(table: dict[str, Any], key: str, where: str) -> Any:
        if key not in table:
            problems.append(f"[{where}] needs `{key}`")
        return table.get(key)

    study_section = raw.get("study", {})
    landuse_section = section("landuse")
    counties_section = section("counties")
    pools_section = section("pools")
    demand_section = section("demand")
    zoning_section = raw.get("zoning", {})
    ratio_section = raw.get("ratio", {})
    outputs_section = raw.get("outputs", {})

    rasters = landuse_section.get("rasters", landuse_section.get("raster"))
    if rasters is None:
        problems.append("[landuse] needs `rasters` (a path or a list of tiles)")
        rasters = []
    if isinstance(rasters, str):
        rasters = [rasters]
    counties_path = need(counties_section, "path", "counties")
    id_field = need(counties_section, "id_field", "counties")
    pools_path = need(pools_section, "path", "pools")
    table = need(demand_section, "table", "demand")
    key = demand_section.get("key", id_field)
    sources = [k for k in ("per_capita_t", "total_emissions_t", "emissions_column") if k in demand_section]
    if len(sources) != 1:
        problems.append(
            "[demand] needs exactly one of `per_capita_t`, `total_emissions_t` (with `total_population`) "
            f"or `emissions_column`; found {sources or 'none'}"
        )
    if "total_emissions_t" in demand_section and "total_population" not in demand_section:
        problems.append("[demand] `total_emissions_t` needs `total_population` too (Cem / Yyn)")
    for number in ("per_capita_t", "total_emissions_t", "total_population"):
        value = demand_section.get(number)
        if value is not None and (not isinstance(value, (int, float)) or value <= 0):
            problems.append(f"[demand] `{number}` must be a positive number, not {value!r}")
    method = str(zoning_section.get("method", "jenks"))
    if method not in ZONING_METHODS:
        problems.append(f"[zoning] method {method!r} is not one of {list(ZONING_METHODS)}")
    k = zoning_section.get("k", 7)
    breaks = zoning_section.get("breaks")
    if not isinstance(k, int) or k < 2:
        problems.append(f"[zoning] k must be an integer >= 2, not {k!r}")
    if method == "manual":
        if not isinstance(breaks, list) or len(breaks) != (k if isinstance(k, int) else 0) + 1:
            problems.append(f"[zoning] manual zoning needs `breaks`: k + 1 = {k + 1 if isinstance(k, int) else '?'} class edges")
    weights = zoning_section.get("weights")
    if weights not in (None, "area", "none"):
        problems.append(f"[zoning] weights must be \"area\" or \"none\", not {weights!r}")
    units = str(ratio_section.get("units", "paper"))
    if units not in RATIO_UNITS:
        problems.append(f"[ratio] units {units!r} is not one of {list(RATIO_UNITS)}")
    chunk = landuse_section.get("chunk", 4096)
    if not isinstance(chunk, int) or chunk < 256:
        problems.append(f"[landuse] chunk must be an integer >= 256, not {chunk!r}")
    if problems:
        raise StudyError(problems, path=str(toml_path))
    out_value = outputs_section.get("dir")
    return Study(
        path=toml_path.resolve(),
        name=str(study_section.get("name", toml_path.stem)),
        year=study_section.get("year"),
        landuse=tuple(_resolve(folder, r) for r in rasters),
        chunk=int(chunk),
        counties=_resolve(folder, counties_path),
        layer=counties_section.get("layer"),
        id_field=str(id_field),
        pools=_resolve(folder, pools_path),
        demand=DemandSpec(
            table=_resolve(folder, table),
            key=str(key),
            population=str(demand_section.get("population", "population")),
            per_capita_t=demand_section.get("per_capita_t"),
            total_emissions_t=demand_section.get("total_emissions_t"),
            total_population=demand_section.get("total_population"),
            emissions_column=demand_section.get("emissions_column"),
            sheet=demand_section.get("sheet"),
        ),
        zoning=ZoningSpec(
            method=method, k=int(k), breaks=tuple(float(b) for b in breaks) if breaks else None,
            weights=None if weights in (None, "none") else str(weights), scheme=zoning_section.get("scheme", "paper"),
        ),
        ratio_units=units,
        out=_resolve(folder, out_value) if out_value else None,
        pixel_maps=bool(outputs_section.get("pixel_maps", False)),
        maps=bool(outputs_section.get("maps", True)),
        report=bool(outputs_section.get("report", True)),
        raw=raw,
    )


def check_study(study: Study | str | os.PathLike[str]) -> list[str]:
    """Validate every input of a study without computing; return all problems (empty when fine)."""
    if not isinstance(study, Study):
        try:
            study = load_study(study)
        except StudyError as exc:
            return exc.problems
    return _check_inputs(study)[0]


def _check_inputs(study: Study) -> tuple[list[str], gpd.GeoDataFrame | None, pd.DataFrame | None]:
    """All problems of a study's inputs, and the polygons and county table as read for the check."""
    import rasterio

    problems: list[str] = []
    for raster in study.landuse:
        if not raster.is_file():
            problems.append(f"land use: {raster}: no such file")
            continue
        try:
            with rasterio.open(raster) as src:
                if src.crs is None:
                    problems.append(f"land use: {raster}: no CRS")
                if np.dtype(src.dtypes[0]).kind not in "iu":
                    problems.append(f"land use: {raster}: codes must be integers, not {src.dtypes[0]}")
        except rasterio.errors.RasterioIOError as exc:
            problems.append(f"land use: {raster}: unreadable ({exc})")
    try:
        read_pools(study.pools)
    except InputError as exc:
        problems.append(f"pools: {exc}")
    polygons = None
    try:
        polygons = read_polygons(study.counties, id_field=study.id_field, layer=study.layer)
    except InputError as exc:
        problems.append(f"counties: {exc}")
    try:
        table = read_county_table(study.demand.table, key=study.demand.key, sheet=study.demand.sheet)
    except InputError as exc:
        problems.append(f"demand: {exc}")
        table = None
    if table is not None:
        needed = [study.demand.population] + ([study.demand.emissions_column] if study.demand.emissions_column else [])
        missing = [c for c in needed if c not in table.columns]
        if missing:
            problems.append(f"demand: {study.demand.table}: missing column(s) {missing}; found {list(table.columns)}")
        if polygons is not None:
            problems.extend(_key_mismatches(polygons[study.id_field], table.index, study))
    return problems, polygons, table


def _key_mismatches(polygon_keys: pd.Series, table_keys: pd.Index, study: Study) -> list[str]:
    polygons = {str(v) for v in polygon_keys}
    table = {str(v) for v in table_keys}
    problems = []
    if table - polygons:
        problems.append(f"demand: {study.demand.table}: {len(table - polygons)} county(ies) have no polygon in {study.counties.name}: {sorted(table - polygons)[:20]}")
    if polygons - table:
        problems.append(f"demand: {len(polygons - table)} polygon(s) of {study.counties.name} have no row in {study.demand.table.name}: {sorted(polygons - table)[:20]}")
    return problems


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
    if not isinstance(study, Study):
        study = load_study(study)
    problems, polygons, table = _check_inputs(study)
    if problems:
        raise StudyError(problems, path=str(study.path))
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

    with executor(scheduler, announce=progress) as run:
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
    files["demand_by_county"] = _write_csv(demand_out, out_dir / "demand_by_county.csv")
    ratio_columns = ["supply_t", "supply_t_per_km2", "demand_t_per_km2", "ratio", "ratio_infinite", "class", "zone", "zone_en"]
    ratio_out = ratio_zones[[c for c in ratio_columns if c in ratio_zones.columns]].reset_index()
    files["ratio_zones"] = _write_csv(ratio_out, out_dir / "ratio_zones.csv")

    attributes = polygons.copy()
    attributes["county"] = keys.to_numpy()
    joined = by_county.add_prefix("supply_").rename(columns={"supply_supply_t": "supply_t", "supply_share_pct": "supply_share_pct"})
    zone_columns = [c for c in [*ratio_columns, "zone_key"] if c in ratio_zones.columns and c != "supply_t"]
    for frame in (joined, demand.drop(columns=[c for c in ("area_km2",) if c in demand.columns]).add_prefix("demand_"), ratio_zones[zone_columns]):
        attributes = attributes.merge(frame, left_on="county", right_index=True, how="left", suffixes=("", "_dup"))
    attributes["area_km2"] = area_km2.reindex(keys).to_numpy()
    attributes = attributes.loc[:, ~attributes.columns.str.endswith("_dup")]
    gpkg = out_dir / "counties.gpkg"
    with atomic_path(gpkg) as tmp:
        attributes.to_file(tmp, layer="counties", driver="GPKG", engine="pyogrio")
    files["counties"] = gpkg

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
# breaks = [0.0055, 0.0138, 0.0256, 0.0409, 0.0769, 0.1362, 0.3563, 0.6373]   # manual: k + 1 edges
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
